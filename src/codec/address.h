// Addresses on the wire, in the two orders the contract uses.
//
// VLESS ("port first", header, per-packet UDP addresses, FLAG 1 sources):
//   +---------+------+------------------------------------------+
//   | PORT(2) | ATYP | ADDR                                     |
//   |   BE    |  1   | 1: IPv4 (4)  2: LEN(1)+domain  3: IPv6 (16) |
//   +---------+------+------------------------------------------+
// SOCKS5 style ("port last", SimpleSocks, Trojan-style UDP inside mux):
//   +------+------------------------------------------+---------+
//   | ATYP | ADDR                                     | PORT(2) |
//   |  1   | 1: IPv4 (4)  3: LEN(1)+domain  4: IPv6 (16) |   BE    |
//   +------+------------------------------------------+---------+
// IPv4-mapped IPv6 addresses are always encoded as IPv4. Domain LEN >= 1.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "buffer/buffer_chain.h"
#include "buffer/cursor.h"

namespace vt::codec {

enum class DecodeStatus { kNeedMore, kDone, kInvalid };

struct Address {
  enum class Type : uint8_t { kIpv4, kDomain, kIpv6 };

  Type type = Type::kIpv4;
  std::array<uint8_t, 16> ip{};  // first 4 bytes for IPv4
  std::string domain;            // for kDomain, 1..255 bytes
  uint16_t port = 0;

  static Address ipv4(uint32_t host_order_ip, uint16_t port);
  static Address ipv4(const uint8_t ip4[4], uint16_t port);
  // Turns an IPv4-mapped address into IPv4.
  static Address ipv6(const uint8_t ip6[16], uint16_t port);
  static Address fromDomain(std::string_view name, uint16_t port);
  // Parses "1.2.3.4", "::1", "[::1]" or a domain name; no port.
  static Address parseHost(std::string_view host, uint16_t port);

  bool isIp() const noexcept { return type != Type::kDomain; }
  // False for a domain of length 0 or over 255: such an address cannot be
  // encoded (the encoders cut a long name to 255 bytes).
  bool isValid() const noexcept;
  // "1.2.3.4:80", "[::1]:80", "example.com:443"
  std::string toString() const;
  // Just the host part, without brackets.
  std::string hostString() const;

  friend bool operator==(const Address&, const Address&) = default;
};

// Encoded length of the address in VLESS order (port first).
size_t vlessAddressSize(const Address& a) noexcept;
void encodeVlessAddress(const Address& a, BufferChain& out);
// Reads from the cursor; on kDone the cursor sits after the address, else
// it has not moved. On kInvalid, `why` says what was wrong. Decoders accept
// any port (port 0 is the caller's call) and any domain bytes of length
// 1..255; an IPv4-mapped IPv6 address decodes as IPv4.
DecodeStatus decodeVlessAddress(Cursor& in, Address& out, std::string& why);

size_t socksAddressSize(const Address& a) noexcept;
void encodeSocksAddress(const Address& a, BufferChain& out);
DecodeStatus decodeSocksAddress(Cursor& in, Address& out, std::string& why);

}  // namespace vt::codec
