// EgressPolicy: which addresses vless-server dials (TCP) and sends to (UDP)
// for its users (docs/server.md "Egress"). Checked on the address actually
// used, after name resolution, so a name that resolves to 127.0.0.1 is
// refused like the literal. The operator's fallback is not subject to it.
//
// Order of the checks:
//   1. `deny` list            -> refused ("deny list")
//   2. `allow` list           -> allowed (overrides 3 and 4)
//   3. the default-denied ranges: unspecified, loopback, private (RFC 1918,
//      shared 100.64/10, site-local, unique-local), link-local, multicast,
//      reserved (240/4, broadcast), IPv4-compatible (::/96) -> refused
//   4. the server's own addresses (interfaces and listeners) -> refused
//   5. everything else        -> allowed
// IPv4-mapped (::ffff:a.b.c.d) and NAT64 (64:ff9b::a.b.c.d) addresses are
// judged as the IPv4 address they carry, since that is where they lead.
#pragma once

#include <cstdint>
#include <vector>

#include "config/server_config.h"
#include "event/socket_address.h"

namespace vt::server {

class EgressPolicy {
 public:
  explicit EgressPolicy(const config::ServerEgressConfig& cfg);

  // nullptr when `a` may be dialled; else why not ("loopback", "private",
  // "deny list", "the server's own address", ...). Ports are ignored.
  const char* check(const event::SocketAddress& a) const;

  // The addresses of this host; replaced whole (interfaces come and go).
  void setOwnAddresses(const std::vector<event::SocketAddress>& own);

  // "egress denied: 127.0.0.1:22 (loopback)"
  static std::string describe(const event::SocketAddress& a, const char* why);

 private:
  struct Ip {
    bool v6 = false;
    uint8_t b[16] = {};
    bool operator==(const Ip& o) const;
  };
  static Ip effective(const event::SocketAddress& a);

  std::vector<IpPrefix> allow_;
  std::vector<IpPrefix> deny_;
  std::vector<Ip> own_;
};

}  // namespace vt::server
