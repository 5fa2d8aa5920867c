#include "route_entry.h"

#include <arpa/inet.h>
#include <linux/fib_rules.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <charconv>
#include <cstring>
#include <vector>

#include "netlink.h"

namespace vt::platform {
namespace {

size_t addrLen(int family) {
  return family == AF_INET ? 4 : 16;
}
uint8_t maxPrefix(int family) {
  return family == AF_INET ? 32 : 128;
}
const char* familyTag(int family) {
  return family == AF_INET ? "IPv4" : "IPv6";
}

std::string addrToString(int family, const uint8_t* addr) {
  char text[INET6_ADDRSTRLEN] = {};
  inet_ntop(family, addr, text, sizeof text);
  return text;
}

bool parseUint(std::string_view text, uint32_t& out, int base = 10) {
  if (base == 16) {
    if (text.size() < 3 || text[0] != '0' || (text[1] != 'x' && text[1] != 'X')) return false;
    text.remove_prefix(2);
  }
  if (text.empty()) return false;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out, base);
  return ec == std::errc() && ptr == text.data() + text.size();
}

std::vector<std::string_view> splitWords(std::string_view line) {
  std::vector<std::string_view> words;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
    if (i > start) words.push_back(line.substr(start, i - start));
  }
  return words;
}

std::string hex(uint32_t v) {
  char buf[16];
  auto [ptr, ec] = std::to_chars(buf, buf + sizeof buf, v, 16);
  (void)ec;
  return "0x" + std::string(buf, ptr);
}

// Rules and routes in tables above 255 need the table in an attribute; the
// header field then says RT_TABLE_UNSPEC.
uint8_t headerTable(uint32_t table) {
  return table < 256 ? static_cast<uint8_t>(table) : static_cast<uint8_t>(RT_TABLE_UNSPEC);
}

NetlinkRequest ruleRequest(const RouteEntry& e, uint16_t type, uint16_t flags) {
  fib_rule_hdr frh{};
  frh.family = static_cast<uint8_t>(e.family);
  frh.table = headerTable(e.table);
  frh.action = FR_ACT_TO_TBL;
  if (e.invert) frh.flags |= FIB_RULE_INVERT;
  if (e.hasFrom) frh.src_len = e.from.prefix;
  if (e.hasTo) frh.dst_len = e.to.prefix;
  NetlinkRequest req(type, flags, &frh, sizeof frh);
  req.addU32(FRA_PRIORITY, e.priority);
  req.addU32(FRA_TABLE, e.table);
  if (e.hasFrom) req.addAttr(FRA_SRC, e.from.addr, addrLen(e.family));
  if (e.hasTo) req.addAttr(FRA_DST, e.to.addr, addrLen(e.family));
  if (e.hasFwmark) {
    req.addU32(FRA_FWMARK, e.fwmark);
    req.addU32(FRA_FWMASK, 0xffffffffu);
  }
  if (e.suppressPrefixlen >= 0) {
    req.addU32(FRA_SUPPRESS_PREFIXLEN, static_cast<uint32_t>(e.suppressPrefixlen));
  }
  return req;
}

NetlinkRequest routeRequest(const RouteEntry& e, uint16_t type, uint16_t flags, bool withDev) {
  rtmsg rtm{};
  rtm.rtm_family = static_cast<uint8_t>(e.family);
  rtm.rtm_dst_len = e.dst.prefix;
  rtm.rtm_table = headerTable(e.table);
  rtm.rtm_protocol = RTPROT_STATIC;
  rtm.rtm_type = static_cast<uint8_t>(e.unreachable ? RTN_UNREACHABLE : RTN_UNICAST);
  // A device route without a gateway is on-link, like `ip route add ... dev`.
  rtm.rtm_scope = static_cast<uint8_t>((e.unreachable || e.family == AF_INET6) ? RT_SCOPE_UNIVERSE
                                                                               : RT_SCOPE_LINK);
  if (type == RTM_DELROUTE) rtm.rtm_scope = RT_SCOPE_NOWHERE;  // "any scope"
  NetlinkRequest req(type, flags, &rtm, sizeof rtm);
  req.addU32(RTA_TABLE, e.table);
  if (e.dst.prefix > 0) req.addAttr(RTA_DST, e.dst.addr, addrLen(e.family));
  if (withDev && !e.unreachable) {
    req.addU32(RTA_OIF, static_cast<uint32_t>(e.oif));
    if (e.hasSrc) req.addAttr(RTA_PREFSRC, e.src.addr, addrLen(e.family));
  }
  return req;
}

}  // namespace

bool Cidr::operator==(const Cidr& o) const {
  return family == o.family && prefix == o.prefix && std::memcmp(addr, o.addr, 16) == 0;
}

std::string Cidr::toString() const {
  return addrToString(family, addr) + "/" + std::to_string(prefix);
}

Result<Cidr> parseCidr(std::string_view text, bool allowHostBits) {
  auto bad = [&](const char* why) {
    return Error(Errc::kInvalidArgument, "bad CIDR \"" + std::string(text) + "\": " + why);
  };
  Cidr c;
  std::string_view addrPart = text;
  std::string_view prefixPart;
  if (size_t slash = text.find('/'); slash != std::string_view::npos) {
    addrPart = text.substr(0, slash);
    prefixPart = text.substr(slash + 1);
    if (prefixPart.empty()) return bad("empty prefix length");
  }
  if (addrPart.size() >= INET6_ADDRSTRLEN) return bad("address too long");
  std::string addr(addrPart);
  if (inet_pton(AF_INET, addr.c_str(), c.addr) == 1) {
    c.family = AF_INET;
  } else if (inet_pton(AF_INET6, addr.c_str(), c.addr) == 1) {
    c.family = AF_INET6;
  } else {
    return bad("not an IPv4 or IPv6 address");
  }
  c.prefix = maxPrefix(c.family);
  if (!prefixPart.empty()) {
    uint32_t p;
    if (!parseUint(prefixPart, p) || p > maxPrefix(c.family))
      return bad("prefix length out of range");
    c.prefix = static_cast<uint8_t>(p);
  }
  if (!allowHostBits) {
    for (unsigned bit = c.prefix; bit < maxPrefix(c.family); ++bit) {
      if (c.addr[bit / 8] & (0x80u >> (bit % 8))) return bad("host bits set");
    }
  }
  return c;
}

bool RouteEntry::operator==(const RouteEntry& o) const {
  return toStateLine() == o.toStateLine();
}

std::string RouteEntry::describe() const {
  std::string s;
  if (kind == Kind::kRule) {
    s = "rule pref " + std::to_string(priority);
    if (invert) s += " not";
    if (hasFrom) s += " from " + from.toString();
    if (hasTo) s += " to " + to.toString();
    if (!hasFrom && !hasTo && !hasFwmark) s += " from all";
    if (hasFwmark) s += " fwmark " + hex(fwmark);
    s += " lookup " + (table == RT_TABLE_MAIN ? std::string("main") : std::to_string(table));
    if (suppressPrefixlen >= 0) s += " suppress_prefixlength " + std::to_string(suppressPrefixlen);
  } else {
    s = "route " + std::string(unreachable ? "unreachable " : "") + dst.toString();
    if (!unreachable) s += " dev #" + std::to_string(oif);
    s += " table " + std::to_string(table);
  }
  return s + " (" + familyTag(family) + ")";
}

std::string RouteEntry::toStateLine() const {
  std::string s = kind == Kind::kRule ? "rule " : "route ";
  s += family == AF_INET ? "4" : "6";
  if (kind == Kind::kRule) {
    s += " pref " + std::to_string(priority);
    if (invert) s += " not";
    if (hasFrom) s += " from " + from.toString();
    if (hasTo) s += " to " + to.toString();
    if (hasFwmark) s += " fwmark " + hex(fwmark);
    s += " lookup " + std::to_string(table);
    if (suppressPrefixlen >= 0) s += " suppress_prefixlength " + std::to_string(suppressPrefixlen);
  } else {
    s += " " + dst.toString();
    if (unreachable) {
      s += " unreachable";
    } else {
      s += " dev " + std::to_string(oif);
      if (hasSrc) s += " src " + addrToString(family, src.addr);
    }
    s += " table " + std::to_string(table);
  }
  return s;
}

Result<RouteEntry> RouteEntry::parseStateLine(std::string_view line) {
  auto bad = [&](const std::string& why) {
    return Error(Errc::kMalformed, "state line \"" + std::string(line) + "\": " + why);
  };
  std::vector<std::string_view> w = splitWords(line);
  if (w.size() < 2) return bad("too short");
  RouteEntry e;
  if (w[0] == "rule") {
    e.kind = Kind::kRule;
  } else if (w[0] == "route") {
    e.kind = Kind::kRoute;
  } else {
    return bad("expected rule or route");
  }
  if (w[1] == "4") {
    e.family = AF_INET;
  } else if (w[1] == "6") {
    e.family = AF_INET6;
  } else {
    return bad("expected family 4 or 6");
  }
  bool haveTable = false;
  bool havePref = false;
  auto cidrArg = [&](size_t i, Cidr& out, bool hostBits) -> bool {
    if (i >= w.size()) return false;
    Result<Cidr> c = parseCidr(w[i], hostBits);
    if (!c.ok() || c.value().family != e.family) return false;
    out = c.value();
    return true;
  };
  size_t i = 2;
  if (e.kind == Kind::kRoute) {
    if (!cidrArg(i++, e.dst, false)) return bad("bad destination");
  }
  while (i < w.size()) {
    std::string_view key = w[i++];
    bool hasArg = i < w.size();
    uint32_t num = 0;
    if (e.kind == Kind::kRule && key == "not") {
      e.invert = true;
    } else if (e.kind == Kind::kRule && key == "pref" && hasArg && parseUint(w[i++], num)) {
      e.priority = num;
      havePref = true;
    } else if (e.kind == Kind::kRule && key == "from" && cidrArg(i++, e.from, true)) {
      e.hasFrom = true;
    } else if (e.kind == Kind::kRule && key == "to" && cidrArg(i++, e.to, false)) {
      e.hasTo = true;
    } else if (e.kind == Kind::kRule && key == "fwmark" && hasArg && parseUint(w[i++], num, 16)) {
      e.hasFwmark = true;
      e.fwmark = num;
    } else if (e.kind == Kind::kRule && key == "lookup" && hasArg && parseUint(w[i++], num)) {
      e.table = num;
      haveTable = true;
    } else if (e.kind == Kind::kRule && key == "suppress_prefixlength" && hasArg &&
               parseUint(w[i++], num) && num <= 128) {
      e.suppressPrefixlen = static_cast<int>(num);
    } else if (e.kind == Kind::kRoute && key == "unreachable") {
      e.unreachable = true;
    } else if (e.kind == Kind::kRoute && key == "dev" && hasArg && parseUint(w[i++], num) &&
               num > 0 && num <= 0x7fffffff) {
      e.oif = static_cast<int>(num);
    } else if (e.kind == Kind::kRoute && key == "src" && cidrArg(i++, e.src, true)) {
      e.hasSrc = true;
      if (e.src.prefix != maxPrefix(e.family)) return bad("src must be an address");
    } else if (e.kind == Kind::kRoute && key == "table" && hasArg && parseUint(w[i++], num)) {
      e.table = num;
      haveTable = true;
    } else {
      return bad("unexpected or malformed \"" + std::string(key) + "\"");
    }
  }
  if (!haveTable || e.table == 0) return bad("missing table");
  if (e.kind == Kind::kRule && !havePref) return bad("missing pref");
  if (e.kind == Kind::kRoute && e.unreachable == (e.oif != 0))
    return bad("need dev or unreachable");
  return e;
}

int addEntry(NetlinkSocket& nl, const RouteEntry& e) {
  const uint16_t flags = NLM_F_CREATE | NLM_F_EXCL;
  NetlinkRequest req = e.kind == RouteEntry::Kind::kRule
                           ? ruleRequest(e, RTM_NEWRULE, flags)
                           : routeRequest(e, RTM_NEWROUTE, flags, true);
  return nl.transact(req);
}

int replaceRoute(NetlinkSocket& nl, const RouteEntry& e) {
  NetlinkRequest req = routeRequest(e, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, true);
  return nl.transact(req);
}

int deleteEntry(NetlinkSocket& nl, const RouteEntry& e) {
  // Routes are deleted by key (table, destination, type) and not by device:
  // after a crash the TUN is gone or has a new ifindex, and the table is ours.
  NetlinkRequest req = e.kind == RouteEntry::Kind::kRule ? ruleRequest(e, RTM_DELRULE, 0)
                                                         : routeRequest(e, RTM_DELROUTE, 0, false);
  return nl.transact(req);
}

}  // namespace vt::platform
