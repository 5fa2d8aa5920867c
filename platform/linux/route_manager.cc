#include "route_manager.h"

#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <linux/fib_rules.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <charconv>
#include <algorithm>
#include <cstring>
#include <utility>

#include "core/log.h"
#include "netlink.h"

namespace vt::platform {
namespace {

constexpr size_t kMaxStateFile = 1 << 20;

Error sysError(const std::string& what, int err) {
  return Error(Errc::kIo, what + ": " + std::strerror(err));
}

// Entries that are already gone count as removed: restore is idempotent and
// a crashed run's routes vanished with its TUN device.
bool alreadyGone(int err) {
  return err == ENOENT || err == ESRCH || err == ENODEV || err == EAFNOSUPPORT;
}

const char* opName(const RouteEntry& e, bool add) {
  if (e.kind == RouteEntry::Kind::kRule) return add ? "RTM_NEWRULE" : "RTM_DELRULE";
  return add ? "RTM_NEWROUTE" : "RTM_DELROUTE";
}

Cidr hostCidr(int family, const sockaddr* sa) {
  Cidr c;
  c.family = family;
  if (family == AF_INET) {
    std::memcpy(c.addr, &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, 4);
    c.prefix = 32;
  } else {
    std::memcpy(c.addr, &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr, 16);
    c.prefix = 128;
  }
  return c;
}

bool isLinkLocal6(const Cidr& c) {
  return c.addr[0] == 0xfe && (c.addr[1] & 0xc0) == 0x80;
}

// The addresses of the TUN (for the routes' preferred source) and of every
// other non-loopback interface (for the inbound rules), at set-up time.
struct HostAddresses {
  std::vector<Cidr> tun;
  std::vector<Cidr> others;
};

Result<HostAddresses> collectAddresses(int tunIfindex) {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return sysError("getifaddrs", errno);
  HostAddresses out;
  for (ifaddrs* ifa = list; ifa != nullptr; ifa = ifa->ifa_next) {
    if (ifa->ifa_addr == nullptr) continue;
    const int family = ifa->ifa_addr->sa_family;
    if (family != AF_INET && family != AF_INET6) continue;
    if (ifa->ifa_flags & IFF_LOOPBACK) continue;
    Cidr c = hostCidr(family, ifa->ifa_addr);
    const bool onTun = static_cast<int>(if_nametoindex(ifa->ifa_name)) == tunIfindex;
    std::vector<Cidr>& into = onTun ? out.tun : out.others;
    bool dup = false;
    for (const Cidr& have : into) dup = dup || have == c;
    if (!dup) into.push_back(c);
  }
  freeifaddrs(list);
  return out;
}

bool kernelHasIpv6() {
  int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno != EAFNOSUPPORT;
  ::close(fd);
  return true;
}

Status writeAll(int fd, const std::string& text) {
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return sysError("write", errno);
    }
    done += static_cast<size_t>(n);
  }
  return Status::okStatus();
}

Status makeParentDirs(const std::string& file) {
  for (size_t slash = file.find('/', 1); slash != std::string::npos;
       slash = file.find('/', slash + 1)) {
    std::string dir = file.substr(0, slash);
    if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return sysError("mkdir " + dir, errno);
  }
  return Status::okStatus();
}

bool validIfname(std::string_view n) {
  return !n.empty() && n.size() < IFNAMSIZ && n.find_first_of("/ \t%") == std::string_view::npos;
}

Result<std::string> readSysctl(const std::string& path) {
  const std::string full = "/proc/sys/" + path;
  int fd = ::open(full.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return sysError("open " + full, errno);
  char buf[64];
  ssize_t n = ::read(fd, buf, sizeof buf - 1);
  const int err = errno;
  ::close(fd);
  if (n < 0) return sysError("read " + full, err);
  std::string v(buf, static_cast<size_t>(n));
  while (!v.empty() && (v.back() == '\n' || v.back() == ' ')) v.pop_back();
  return v;
}

// 0 or errno.
int writeSysctl(const std::string& path, const std::string& value) {
  const std::string full = "/proc/sys/" + path;
  int fd = ::open(full.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  ssize_t n = ::write(fd, value.data(), value.size());
  const int err = n < 0 ? errno : (n == static_cast<ssize_t>(value.size()) ? 0 : EIO);
  ::close(fd);
  return err;
}

NetlinkRequest iifRuleRequest(const RouteManager::Step& s, uint16_t type, uint16_t flags) {
  fib_rule_hdr frh{};
  frh.family = static_cast<uint8_t>(s.family);
  frh.table = s.table < 256 ? static_cast<uint8_t>(s.table) : static_cast<uint8_t>(RT_TABLE_UNSPEC);
  frh.action = FR_ACT_TO_TBL;
  NetlinkRequest req(type, flags, &frh, sizeof frh);
  req.addU32(FRA_PRIORITY, s.priority);
  req.addU32(FRA_TABLE, s.table);
  req.addAttr(FRA_IIFNAME, s.iif.c_str(), s.iif.size() + 1);
  return req;
}

// 0 or errno.
int addStep(NetlinkSocket& nl, const RouteManager::Step& s) {
  using K = RouteManager::Step::Kind;
  if (s.kind == K::kEntry) return addEntry(nl, s.entry);
  if (s.kind == K::kSysctl) return writeSysctl(s.path, s.value);
  NetlinkRequest req = iifRuleRequest(s, RTM_NEWRULE, NLM_F_CREATE | NLM_F_EXCL);
  return nl.transact(req);
}

int removeStep(NetlinkSocket& nl, const RouteManager::Step& s) {
  using K = RouteManager::Step::Kind;
  if (s.kind == K::kEntry) return deleteEntry(nl, s.entry);
  if (s.kind == K::kSysctl) return writeSysctl(s.path, s.old);  // ENOENT: the TUN is gone
  NetlinkRequest req = iifRuleRequest(s, RTM_DELRULE, 0);
  return nl.transact(req);
}

const char* stepOpName(const RouteManager::Step& s, bool add) {
  using K = RouteManager::Step::Kind;
  if (s.kind == K::kEntry) return opName(s.entry, add);
  if (s.kind == K::kSysctl) return "write";
  return add ? "RTM_NEWRULE" : "RTM_DELRULE";
}

// Undoes steps last to first; returns the ones that could not be undone
// and the first error.
std::vector<RouteManager::Step> removeAll(NetlinkSocket& nl,
                                          const std::vector<RouteManager::Step>& steps,
                                          Status& firstError) {
  std::vector<RouteManager::Step> left;
  for (size_t i = steps.size(); i-- > 0;) {
    const RouteManager::Step& s = steps[i];
    int err = removeStep(nl, s);
    if (err == 0 || alreadyGone(err)) continue;
    if (firstError.ok()) {
      firstError = sysError(std::string(stepOpName(s, false)) + " " + s.describe(), err);
    }
    left.insert(left.begin(), s);
  }
  return left;
}

}  // namespace

RouteManager::RouteManager(RouteOptions options) : options_(std::move(options)) {
  stateFile_ = options_.stateFile.empty() ? "/run/vless-tun/" + options_.tunName + ".routes"
                                          : options_.stateFile;
}

RouteManager::~RouteManager() {
  Status st = restore();
  if (!st.ok()) VT_ERROR("auto_route: restore failed: %s", st.error().toString().c_str());
}

Result<std::vector<RouteManager::Step>> RouteManager::plan() const {
  const RouteOptions& o = options_;
  auto invalid = [](const std::string& what) { return Error(Errc::kInvalidArgument, what); };
  if (o.tunName.empty() && o.tunIfindex <= 0) return invalid("auto_route: no TUN name or index");
  if (o.tunName.find('/') != std::string::npos) return invalid("auto_route: bad TUN name");
  if (o.table == 0 || o.table == RT_TABLE_MAIN || o.table == RT_TABLE_LOCAL ||
      o.table == RT_TABLE_DEFAULT) {
    return invalid("auto_route: table " + std::to_string(o.table) + " is reserved");
  }
  if (o.priority == 0 || o.priority > 32000) {
    return invalid("auto_route: rule priority must be within 1..32000");
  }
  if (!o.gatewayInterfaces.empty() && !o.keepLan) {
    return invalid("gateway: needs keepLan (else traffic between the LANs would be tunnelled)");
  }
  for (const std::string& lan : o.gatewayInterfaces) {
    if (!validIfname(lan) || lan == "lo" || lan == o.tunName) {
      return invalid("gateway: \"" + lan + "\" is not a LAN interface name");
    }
    if (if_nametoindex(lan.c_str()) == 0) {
      VT_WARN("gateway: interface %s does not exist (yet); its rule applies once it does",
              lan.c_str());
    }
  }
  int ifindex = o.tunIfindex;
  if (ifindex <= 0) ifindex = static_cast<int>(if_nametoindex(o.tunName.c_str()));
  if (ifindex <= 0) return sysError("auto_route: TUN \"" + o.tunName + "\" not found", errno);

  auto parseList = [](const std::vector<std::string>& texts, int family,
                      std::vector<Cidr>& out) -> Status {
    for (const std::string& t : texts) {
      Result<Cidr> c = parseCidr(t);
      if (!c.ok()) return Error(Errc::kInvalidArgument, "auto_route: " + c.error().message);
      if (family != 0 && c.value().family != family) {
        return Error(Errc::kInvalidArgument,
                     "auto_route: \"" + t + "\" is not " + (family == AF_INET ? "IPv4" : "IPv6"));
      }
      out.push_back(c.value());
    }
    return Status::okStatus();
  };
  std::vector<Cidr> capture4, capture6, bypass;
  if (Status st = parseList(o.captureV4, AF_INET, capture4); !st.ok()) return st.error();
  if (Status st = parseList(o.captureV6, AF_INET6, capture6); !st.ok()) return st.error();
  if (Status st = parseList(o.bypass, 0, bypass); !st.ok()) return st.error();

  Result<HostAddresses> addrs = collectAddresses(ifindex);
  if (!addrs.ok()) return addrs.error();
  const bool ipv6 = kernelHasIpv6();

  std::vector<RouteEntry> routes, lanRules, bypassRules, captureRules;
  std::vector<Step> gatewayRules;
  for (int family : {AF_INET, AF_INET6}) {
    if (family == AF_INET6 && !ipv6) {
      VT_WARN("auto_route: the kernel has no IPv6; only IPv4 rules are installed");
      continue;
    }
    const std::vector<Cidr>& capture = family == AF_INET ? capture4 : capture6;
    if (capture.empty()) continue;
    const char* tag = family == AF_INET ? "IPv4" : "IPv6";

    // A preferred source on the TUN keeps the kernel from picking a real
    // address for tunnelled connections: with the inbound rules such a
    // connection would match `from <real address>` and leave around the
    // tunnel.
    const Cidr* src = nullptr;
    for (const Cidr& c : addrs.value().tun) {
      if (c.family == family && !(family == AF_INET6 && isLinkLocal6(c))) {
        src = &c;
        break;
      }
    }
    if (src == nullptr && o.bypassInbound) {
      return invalid(std::string("auto_route: TUN has no ") + tag +
                     " address; carried traffic would pick a real source address and bypass "
                     "the tunnel (give the TUN an address, or turn off inbound bypass)");
    }
    RouteEntry route;
    route.kind = RouteEntry::Kind::kRoute;
    route.family = family;
    route.table = o.table;
    route.oif = ifindex;
    route.hasSrc = src != nullptr;
    if (src) route.src = *src;
    for (const Cidr& c : capture) {
      route.dst = c;
      routes.push_back(route);
    }

    RouteEntry rule;
    rule.kind = RouteEntry::Kind::kRule;
    rule.family = family;
    rule.table = RT_TABLE_MAIN;
    if (o.keepLan) {
      RouteEntry r = rule;
      r.priority = o.priority;
      r.suppressPrefixlen = 0;
      lanRules.push_back(r);
    }
    for (const Cidr& c : bypass) {
      if (c.family != family) continue;
      RouteEntry r = rule;
      r.priority = o.priority + 1;
      r.hasTo = true;
      r.to = c;
      bypassRules.push_back(r);
    }
    if (family == AF_INET || o.gatewayIpv6) {
      for (const std::string& lan : o.gatewayInterfaces) {
        Step g;
        g.kind = Step::Kind::kIifRule;
        g.family = family;
        g.priority = o.priority + 1;
        g.iif = lan;
        g.table = o.table;
        gatewayRules.push_back(g);
      }
    }
    if (o.bypassInbound) {
      for (const Cidr& c : addrs.value().others) {
        if (c.family != family) continue;
        RouteEntry r = rule;
        r.priority = o.priority + 1;
        r.hasFrom = true;
        r.from = c;
        bypassRules.push_back(r);
      }
    }
    RouteEntry r = rule;
    r.priority = o.priority + 2;
    r.invert = true;
    r.hasFwmark = true;
    r.fwmark = o.fwmark;
    r.table = o.table;
    captureRules.push_back(r);
  }
  // Routes before rules, the capture rule last: at no moment is traffic
  // captured while the LAN, bypass and inbound exceptions are missing. The
  // gateway rules go in before the bypass rules of the same priority (the
  // kernel keeps rules of one priority in the order they were added).
  std::vector<Step> all;
  auto addEntries = [&all](const std::vector<RouteEntry>& part) {
    for (const RouteEntry& e : part) {
      Step st;
      st.entry = e;
      all.push_back(st);
    }
  };
  addEntries(routes);
  addEntries(lanRules);
  all.insert(all.end(), gatewayRules.begin(), gatewayRules.end());
  addEntries(bypassRules);
  addEntries(captureRules);
  return all;
}

// Gateway mode's sysctls, with their current values; read after recover()
// put back what a crashed run changed. Unchanged ones are left out.
Result<std::vector<RouteManager::Step>> RouteManager::planSysctls() const {
  const RouteOptions& o = options_;
  std::vector<Step> out;
  if (o.gatewayInterfaces.empty()) return out;
  std::string tun = o.tunName;
  if (tun.empty()) {
    char name[IF_NAMESIZE] = {};
    if (if_indextoname(static_cast<unsigned>(o.tunIfindex), name) == nullptr) {
      return sysError("gateway: TUN #" + std::to_string(o.tunIfindex), errno);
    }
    tun = name;
  }
  std::vector<std::pair<std::string, std::string>> want = {
      // Loose reverse-path check on the TUN: replies from tunnelled
      // destinations that the main table would route elsewhere (bypassed
      // ranges) must not be dropped. rp_filter is max(all, dev).
      {"net/ipv4/conf/" + tun + "/rp_filter", "2"},
      {"net/ipv4/ip_forward", "1"},
  };
  if (o.gatewayIpv6 && kernelHasIpv6()) want.push_back({"net/ipv6/conf/all/forwarding", "1"});
  for (auto& [path, value] : want) {
    Result<std::string> old = readSysctl(path);
    if (!old.ok()) return Error(Errc::kIo, "gateway: " + old.error().message);
    if (old.value() == value) continue;
    if (old.value().empty() || old.value().find_first_of(" \t\n") != std::string::npos) {
      return Error(Errc::kIo, "gateway: unexpected value \"" + old.value() + "\" in " + path);
    }
    Step st;
    st.kind = Step::Kind::kSysctl;
    st.path = path;
    st.old = old.value();
    st.value = value;
    out.push_back(st);
  }
  return out;
}

void RouteManager::syncEntries() {
  entries_.clear();
  for (const Step& s : steps_) {
    if (s.kind == Step::Kind::kEntry) entries_.push_back(s.entry);
  }
}

std::string RouteManager::Step::describe() const {
  switch (kind) {
    case Kind::kEntry: return entry.describe();
    case Kind::kIifRule:
      return "rule pref " + std::to_string(priority) + " iif " + iif + " lookup " +
             std::to_string(table) + (family == AF_INET ? " (IPv4)" : " (IPv6)");
    case Kind::kSysctl: return "sysctl " + path + " = " + value + " (was " + old + ")";
  }
  return "?";
}

std::string RouteManager::Step::toStateLine() const {
  switch (kind) {
    case Kind::kEntry: return entry.toStateLine();
    case Kind::kIifRule:
      return std::string("iifrule ") + (family == AF_INET ? "4" : "6") + " pref " +
             std::to_string(priority) + " iif " + iif + " lookup " + std::to_string(table);
    case Kind::kSysctl: return "sysctl " + path + " " + old + " " + value;
  }
  return "";
}

Result<RouteManager::Step> RouteManager::Step::parseStateLine(std::string_view line) {
  auto bad = [&](const std::string& why) {
    return Error(Errc::kMalformed, "state line \"" + std::string(line) + "\": " + why);
  };
  std::vector<std::string_view> w;
  for (size_t i = 0; i < line.size();) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    const size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
    if (i > start) w.push_back(line.substr(start, i - start));
  }
  auto num = [](std::string_view t, uint32_t& out) {
    auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), out);
    return !t.empty() && ec == std::errc() && ptr == t.data() + t.size();
  };
  Step s;
  if (!w.empty() && w[0] == "iifrule") {
    s.kind = Kind::kIifRule;
    if (w.size() != 8 || (w[1] != "4" && w[1] != "6") || w[2] != "pref" || !num(w[3], s.priority) ||
        w[4] != "iif" || !validIfname(w[5]) || w[6] != "lookup" || !num(w[7], s.table) ||
        s.table == 0) {
      return bad("expected iifrule <4|6> pref <n> iif <name> lookup <table>");
    }
    s.family = w[1] == "4" ? AF_INET : AF_INET6;
    s.iif = std::string(w[5]);
    return s;
  }
  if (!w.empty() && w[0] == "sysctl") {
    s.kind = Kind::kSysctl;
    // Only the sysctls gateway mode changes: a state file must not be able
    // to write anywhere else.
    const bool known = w.size() == 4 &&
                       (w[1] == "net/ipv4/ip_forward" || w[1] == "net/ipv6/conf/all/forwarding" ||
                        (w[1].starts_with("net/ipv4/conf/") && w[1].ends_with("/rp_filter") &&
                         validIfname(w[1].substr(14, w[1].size() - 14 - 10))));
    if (!known) return bad("expected sysctl <forwarding or rp_filter path> <old> <new>");
    s.path = std::string(w[1]);
    s.old = std::string(w[2]);
    s.value = std::string(w[3]);
    return s;
  }
  Result<RouteEntry> e = RouteEntry::parseStateLine(line);
  if (!e.ok()) return e.error();
  s.entry = e.value();
  return s;
}

Status RouteManager::saveState() const {
  std::string text = "# vless-tun auto_route state: entries to remove on recovery\n";
  for (const Step& st : steps_) text += st.toStateLine() + "\n";
  const std::string tmp = stateFile_ + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return sysError("auto_route: open " + tmp, errno);
  Status st = writeAll(fd, text);
  if (st.ok() && fsync(fd) != 0) st = sysError("fsync " + tmp, errno);
  ::close(fd);
  if (st.ok() && rename(tmp.c_str(), stateFile_.c_str()) != 0) {
    st = sysError("rename " + tmp, errno);
  }
  if (!st.ok()) {
    unlink(tmp.c_str());
    return Error(Errc::kIo, "auto_route: state file: " + st.error().message);
  }
  // The rename itself must survive a crash too.
  const size_t slash = stateFile_.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : stateFile_.substr(0, slash + 1);
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    ::close(dfd);
  }
  return Status::okStatus();
}

Status RouteManager::apply() {
  if (applied()) {
    if (Status st = restore(); !st.ok()) return st;
  }
  Result<std::vector<Step>> wanted = plan();
  if (!wanted.ok()) return wanted.error();
  if (Status st = recover(stateFile_); !st.ok()) {
    return Error(st.error().code, "auto_route: leftovers of an earlier run could not be removed: " +
                                      st.error().message);
  }
  // After recover(): the old values are those from before a crashed run.
  Result<std::vector<Step>> sysctls = planSysctls();
  if (!sysctls.ok()) return sysctls.error();
  wanted.value().insert(wanted.value().end(), sysctls.value().begin(), sysctls.value().end());
  if (Status st = makeParentDirs(stateFile_); !st.ok()) return st;
  Result<NetlinkSocket> nl = NetlinkSocket::open();
  if (!nl.ok()) return nl.error();

  size_t gatewaySteps = 0;
  for (const Step& s : wanted.value()) {
    steps_.push_back(s);
    syncEntries();
    Status st = saveState();
    int err = st.ok() ? addStep(nl.value(), s) : 0;
    if (err == EEXIST) {
      // recover() found no state file naming it, so it is a leftover whose
      // state was lost, or someone's identical copy: our priority and table
      // make it ours. Routes are overwritten (the old device may differ),
      // rules are adopted and removed again on restore.
      VT_WARN("auto_route: %s already existed; taking it over", s.describe().c_str());
      err = s.kind == Step::Kind::kEntry && s.entry.kind == RouteEntry::Kind::kRoute
                ? replaceRoute(nl.value(), s.entry)
                : 0;
    }
    if (st.ok() && err != 0) {
      st = sysError(std::string(stepOpName(s, true)) + " " + s.describe(), err);
    }
    if (!st.ok()) {
      Status undo = restore();
      if (!undo.ok()) VT_ERROR("auto_route: rollback: %s", undo.error().toString().c_str());
      return st;
    }
    if (s.kind != Step::Kind::kEntry) ++gatewaySteps;
  }
  VT_INFO("auto_route: %zu rules and routes installed (state %s)", entries_.size(),
          stateFile_.c_str());
  if (!options_.gatewayInterfaces.empty()) {
    std::string lans;
    for (const std::string& l : options_.gatewayInterfaces) lans += (lans.empty() ? "" : ",") + l;
    VT_INFO("gateway: traffic from %s goes into the TUN; forwarding on (IPv4%s); %zu gateway "
            "rules and sysctls",
            lans.c_str(), options_.gatewayIpv6 ? ", IPv6" : "", gatewaySteps);
  }
  return Status::okStatus();
}

Result<size_t> RouteManager::refresh() {
  if (!applied()) return size_t{0};
  Result<std::vector<Step>> wanted = plan();
  if (!wanted.ok()) return wanted.error();
  auto lineOf = [](const Step& s) { return s.toStateLine(); };
  std::vector<std::string> have, want;
  for (const Step& s : steps_) {
    if (s.kind == Step::Kind::kEntry) have.push_back(lineOf(s));
  }
  for (const Step& s : wanted.value()) {
    if (s.kind == Step::Kind::kEntry) want.push_back(lineOf(s));
  }
  auto contains = [](const std::vector<std::string>& v, const std::string& x) {
    return std::find(v.begin(), v.end(), x) != v.end();
  };
  Result<NetlinkSocket> nl = NetlinkSocket::open();
  if (!nl.ok()) return nl.error();
  size_t changed = 0;
  // Added first (before the gateway steps and sysctls, as apply() orders
  // them), so there is no moment without either rule.
  for (const Step& s : wanted.value()) {
    if (s.kind != Step::Kind::kEntry || contains(have, lineOf(s))) continue;
    auto at = std::find_if(steps_.begin(), steps_.end(),
                           [](const Step& x) { return x.kind != Step::Kind::kEntry; });
    steps_.insert(at, s);
    syncEntries();
    if (Status st = saveState(); !st.ok()) return st.error();
    int err = addStep(nl.value(), s);
    if (err != 0 && err != EEXIST) {
      steps_.erase(std::find_if(steps_.begin(), steps_.end(),
                                [&](const Step& x) { return lineOf(x) == lineOf(s); }));
      syncEntries();
      (void)saveState();
      return sysError(std::string(stepOpName(s, true)) + " " + s.describe(), err);
    }
    VT_INFO("auto_route: network changed: added %s", s.describe().c_str());
    ++changed;
  }
  for (size_t i = steps_.size(); i-- > 0;) {
    const Step s = steps_[i];
    if (s.kind != Step::Kind::kEntry || contains(want, lineOf(s))) continue;
    int err = removeStep(nl.value(), s);
    if (err != 0 && !alreadyGone(err)) {
      VT_WARN("auto_route: network changed: %s %s: %s", stepOpName(s, false), s.describe().c_str(),
              std::strerror(err));
      continue;
    }
    steps_.erase(steps_.begin() + static_cast<std::ptrdiff_t>(i));
    syncEntries();
    if (Status st = saveState(); !st.ok()) return st.error();
    VT_INFO("auto_route: network changed: removed %s", s.describe().c_str());
    ++changed;
  }
  return changed;
}

Status RouteManager::restore() {
  if (steps_.empty()) return Status::okStatus();
  Result<NetlinkSocket> nl = NetlinkSocket::open();
  if (!nl.ok()) return nl.error();
  Status first;
  steps_ = removeAll(nl.value(), steps_, first);
  syncEntries();
  if (steps_.empty()) {
    if (unlink(stateFile_.c_str()) != 0 && errno != ENOENT) {
      return sysError("auto_route: unlink " + stateFile_, errno);
    }
    return Status::okStatus();
  }
  // Keep only what is still installed, for a later restore() or recover().
  if (Status st = saveState(); !st.ok()) VT_ERROR("%s", st.error().toString().c_str());
  return first;
}

Status RouteManager::recover(const std::string& stateFile) {
  int fd = ::open(stateFile.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::okStatus();
    return sysError("auto_route: open " + stateFile, errno);
  }
  std::string text;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || text.size() + static_cast<size_t>(n) > kMaxStateFile) {
      const int err = n < 0 ? errno : 0;
      if (n != 0) {
        ::close(fd);
        return err ? sysError("auto_route: read " + stateFile, err)
                   : Error(Errc::kLimit, "auto_route: " + stateFile + " is too large");
      }
      break;
    }
    text.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);

  std::vector<Step> entries;
  size_t lineNo = 0;
  for (size_t pos = 0; pos < text.size();) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + pos, end - pos);
    pos = end + 1;
    ++lineNo;
    if (line.empty() || line[0] == '#') continue;
    Result<Step> e = Step::parseStateLine(line);
    if (!e.ok()) {
      return Error(Errc::kMalformed,
                   stateFile + ":" + std::to_string(lineNo) + ": " + e.error().message);
    }
    entries.push_back(e.value());
  }
  Result<NetlinkSocket> nl = NetlinkSocket::open();
  if (!nl.ok()) return nl.error();
  Status first;
  std::vector<Step> left = removeAll(nl.value(), entries, first);
  if (!left.empty()) return first;  // the file stays for another attempt
  if (!entries.empty()) {
    VT_WARN("auto_route: removed %zu leftover rules and routes listed in %s", entries.size(),
            stateFile.c_str());
  }
  if (unlink(stateFile.c_str()) != 0 && errno != ENOENT) {
    return sysError("auto_route: unlink " + stateFile, errno);
  }
  return Status::okStatus();
}

bool setSocketMark(int fd, uint32_t mark, Error* err) {
  if (setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof mark) == 0) return true;
  if (err) *err = sysError("setsockopt(SO_MARK)", errno);
  return false;
}

}  // namespace vt::platform
