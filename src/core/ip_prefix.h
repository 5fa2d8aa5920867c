// IpPrefix: an IPv4 or IPv6 network in CIDR form ("10.0.0.0/8",
// "2001:db8::/32", a bare address = a host). Addresses are raw network-order
// bytes, so the type needs no sockets; event::SocketAddress converts.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace vt {

struct IpPrefix {
  bool v6 = false;
  std::array<uint8_t, 16> addr{};  // v4: the first 4 bytes; bits past `bits` are zero
  uint8_t bits = 0;                // 0..32 or 0..128

  // "a.b.c.d[/n]" or "v6[/n]"; nullopt when malformed, when n is out of
  // range, or when host bits are set ("10.0.0.1/8": almost always a typo,
  // so it is refused rather than silently widened).
  static std::optional<IpPrefix> parse(std::string_view text);
  static IpPrefix v4Net(uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint8_t bits);
  static IpPrefix v6Net(std::initializer_list<uint16_t> groups, uint8_t bits);

  // `ip` is 4 bytes when !is_v6, 16 otherwise. Families never match each
  // other: callers unwrap IPv4-mapped IPv6 addresses first.
  bool contains(bool is_v6, const uint8_t* ip) const;
  std::string toString() const;
};

}  // namespace vt
