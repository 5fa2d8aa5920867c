#include "route_manager.h"

#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

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

// Deletes entries last to first; returns the ones that could not be removed
// and the first error.
std::vector<RouteEntry> removeAll(NetlinkSocket& nl, const std::vector<RouteEntry>& entries,
                                  Status& firstError) {
  std::vector<RouteEntry> left;
  for (size_t i = entries.size(); i-- > 0;) {
    const RouteEntry& e = entries[i];
    int err = deleteEntry(nl, e);
    if (err == 0 || alreadyGone(err)) continue;
    if (firstError.ok()) {
      firstError = sysError(std::string(opName(e, false)) + " " + e.describe(), err);
    }
    left.insert(left.begin(), e);
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

Result<std::vector<RouteEntry>> RouteManager::plan() const {
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
  // captured while the LAN, bypass and inbound exceptions are missing.
  std::vector<RouteEntry> all = std::move(routes);
  for (auto* part : {&lanRules, &bypassRules, &captureRules}) {
    all.insert(all.end(), part->begin(), part->end());
  }
  return all;
}

Status RouteManager::saveState() const {
  std::string text = "# vless-tun auto_route state: entries to remove on recovery\n";
  for (const RouteEntry& e : entries_) text += e.toStateLine() + "\n";
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
  Result<std::vector<RouteEntry>> wanted = plan();
  if (!wanted.ok()) return wanted.error();
  if (Status st = recover(stateFile_); !st.ok()) {
    return Error(st.error().code, "auto_route: leftovers of an earlier run could not be removed: " +
                                      st.error().message);
  }
  if (Status st = makeParentDirs(stateFile_); !st.ok()) return st;
  Result<NetlinkSocket> nl = NetlinkSocket::open();
  if (!nl.ok()) return nl.error();

  for (const RouteEntry& e : wanted.value()) {
    entries_.push_back(e);
    Status st = saveState();
    int err = st.ok() ? addEntry(nl.value(), e) : 0;
    if (err == EEXIST) {
      // recover() found no state file naming it, so it is a leftover whose
      // state was lost, or someone's identical copy: our priority and table
      // make it ours. Routes are overwritten (the old device may differ),
      // rules are adopted and removed again on restore.
      VT_WARN("auto_route: %s already existed; taking it over", e.describe().c_str());
      err = e.kind == RouteEntry::Kind::kRoute ? replaceRoute(nl.value(), e) : 0;
    }
    if (st.ok() && err != 0) {
      st = sysError(std::string(opName(e, true)) + " " + e.describe(), err);
    }
    if (!st.ok()) {
      Status undo = restore();
      if (!undo.ok()) VT_ERROR("auto_route: rollback: %s", undo.error().toString().c_str());
      return st;
    }
  }
  VT_INFO("auto_route: %zu rules and routes installed (state %s)", entries_.size(),
          stateFile_.c_str());
  return Status::okStatus();
}

Status RouteManager::restore() {
  if (entries_.empty()) return Status::okStatus();
  Result<NetlinkSocket> nl = NetlinkSocket::open();
  if (!nl.ok()) return nl.error();
  Status first;
  entries_ = removeAll(nl.value(), entries_, first);
  if (entries_.empty()) {
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

  std::vector<RouteEntry> entries;
  size_t lineNo = 0;
  for (size_t pos = 0; pos < text.size();) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + pos, end - pos);
    pos = end + 1;
    ++lineNo;
    if (line.empty() || line[0] == '#') continue;
    Result<RouteEntry> e = RouteEntry::parseStateLine(line);
    if (!e.ok()) {
      return Error(Errc::kMalformed,
                   stateFile + ":" + std::to_string(lineNo) + ": " + e.error().message);
    }
    entries.push_back(e.value());
  }
  Result<NetlinkSocket> nl = NetlinkSocket::open();
  if (!nl.ok()) return nl.error();
  Status first;
  std::vector<RouteEntry> left = removeAll(nl.value(), entries, first);
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
