#include "server/egress_policy.h"

#include <cstring>

namespace vt::server {
namespace {

struct Range {
  IpPrefix net;
  const char* why;
};

// Checked in order; the first match names the reason.
const std::vector<Range>& defaultDenied() {
  static const std::vector<Range> ranges = {
      {IpPrefix::v4Net(0, 0, 0, 0, 8), "unspecified"},
      {IpPrefix::v4Net(127, 0, 0, 0, 8), "loopback"},
      {IpPrefix::v4Net(10, 0, 0, 0, 8), "private"},
      {IpPrefix::v4Net(172, 16, 0, 0, 12), "private"},
      {IpPrefix::v4Net(192, 168, 0, 0, 16), "private"},
      {IpPrefix::v4Net(100, 64, 0, 0, 10), "private (shared address space)"},
      {IpPrefix::v4Net(169, 254, 0, 0, 16), "link-local"},
      {IpPrefix::v4Net(224, 0, 0, 0, 4), "multicast"},
      {IpPrefix::v4Net(240, 0, 0, 0, 4), "reserved"},
      {IpPrefix::v6Net({}, 128), "unspecified"},
      {IpPrefix::v6Net({0, 0, 0, 0, 0, 0, 0, 1}, 128), "loopback"},
      {IpPrefix::v6Net({}, 96), "IPv4-compatible (deprecated)"},
      {IpPrefix::v6Net({0xfe80}, 10), "link-local"},
      {IpPrefix::v6Net({0xfec0}, 10), "private (site-local)"},
      {IpPrefix::v6Net({0xfc00}, 7), "private (unique-local)"},
      {IpPrefix::v6Net({0xff00}, 8), "multicast"},
  };
  return ranges;
}

bool listed(const std::vector<IpPrefix>& list, bool v6, const uint8_t* b) {
  for (const IpPrefix& p : list) {
    if (p.contains(v6, b)) return true;
  }
  return false;
}

}  // namespace

bool EgressPolicy::Ip::operator==(const Ip& o) const {
  return v6 == o.v6 && std::memcmp(b, o.b, v6 ? 16 : 4) == 0;
}

EgressPolicy::EgressPolicy(const config::ServerEgressConfig& cfg)
    : allow_(cfg.allow), deny_(cfg.deny) {}

EgressPolicy::Ip EgressPolicy::effective(const event::SocketAddress& a) {
  Ip ip;
  if (a.family() == AF_INET) {
    const auto* s4 = reinterpret_cast<const sockaddr_in*>(a.sa());
    std::memcpy(ip.b, &s4->sin_addr, 4);
    return ip;
  }
  const auto* s6 = reinterpret_cast<const sockaddr_in6*>(a.sa());
  const uint8_t* b = s6->sin6_addr.s6_addr;
  static const uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  static const uint8_t kNat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
  if (std::memcmp(b, kMapped, 12) == 0 || std::memcmp(b, kNat64, 12) == 0) {
    std::memcpy(ip.b, b + 12, 4);
    return ip;
  }
  ip.v6 = true;
  std::memcpy(ip.b, b, 16);
  return ip;
}

const char* EgressPolicy::check(const event::SocketAddress& a) const {
  if (a.family() != AF_INET && a.family() != AF_INET6) return "not an IP address";
  const Ip ip = effective(a);
  if (listed(deny_, ip.v6, ip.b)) return "deny list";
  if (listed(allow_, ip.v6, ip.b)) return nullptr;
  for (const Range& r : defaultDenied()) {
    if (r.net.contains(ip.v6, ip.b)) return r.why;
  }
  for (const Ip& o : own_) {
    if (o == ip) return "the server's own address";
  }
  return nullptr;
}

void EgressPolicy::setOwnAddresses(const std::vector<event::SocketAddress>& own) {
  own_.clear();
  for (const auto& a : own) {
    if (a.family() != AF_INET && a.family() != AF_INET6) continue;
    Ip ip = effective(a);
    bool seen = false;
    for (const Ip& o : own_) seen = seen || o == ip;
    if (!seen) own_.push_back(ip);
  }
}

std::string EgressPolicy::describe(const event::SocketAddress& a, const char* why) {
  return "egress denied: " + a.toString() + " (" + why + ")";
}

}  // namespace vt::server
