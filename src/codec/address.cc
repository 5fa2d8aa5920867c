#include "codec/address.h"

#include <arpa/inet.h>

#include <cstring>

#include "core/bytes.h"

namespace vt::codec {
namespace {

constexpr uint8_t kIpv4Mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

// ATYP values of the two orders, indexed by Address::Type.
constexpr uint8_t kVlessAtyp[3] = {1, 2, 3};
constexpr uint8_t kSocksAtyp[3] = {1, 3, 4};

size_t hostSize(const Address& a) noexcept {
  switch (a.type) {
    case Address::Type::kIpv4:
      return 4;
    case Address::Type::kIpv6:
      return 16;
    case Address::Type::kDomain:
      return 1 + std::min<size_t>(a.domain.size(), 255);
  }
  return 0;
}

// Writes ATYP and ADDR. Mapped IPv6 goes out as IPv4; a domain longer than
// 255 bytes is cut so that the framing stays consistent (callers validate
// names before they get here).
void encodeHost(const Address& a, const uint8_t atyp[3], uint8_t* p) noexcept {
  switch (a.type) {
    case Address::Type::kIpv4:
      p[0] = atyp[0];
      std::memcpy(p + 1, a.ip.data(), 4);
      return;
    case Address::Type::kIpv6:
      p[0] = atyp[2];
      std::memcpy(p + 1, a.ip.data(), 16);
      return;
    case Address::Type::kDomain: {
      size_t n = std::min<size_t>(a.domain.size(), 255);
      p[0] = atyp[1];
      p[1] = static_cast<uint8_t>(n);
      std::memcpy(p + 2, a.domain.data(), n);
      return;
    }
  }
}

// The encoded form of `a` with mapped IPv6 turned into IPv4 first.
Address normalized(const Address& a) {
  if (a.type == Address::Type::kIpv6 && std::memcmp(a.ip.data(), kIpv4Mapped, 12) == 0) {
    return Address::ipv4(a.ip.data() + 12, a.port);
  }
  return a;
}

// Reads ATYP ADDR given the ATYP numbering (port left 0).
DecodeStatus decodeHost(Cursor& in, const uint8_t atyp[3], Address& out, std::string& why) {
  uint8_t t;
  if (!in.readU8(t)) return DecodeStatus::kNeedMore;
  if (t == atyp[0]) {
    uint8_t b[4];
    if (!in.readBytes(b, 4)) return DecodeStatus::kNeedMore;
    out = Address::ipv4(b, 0);
    return DecodeStatus::kDone;
  }
  if (t == atyp[2]) {
    uint8_t b[16];
    if (!in.readBytes(b, 16)) return DecodeStatus::kNeedMore;
    out = Address::ipv6(b, 0);
    return DecodeStatus::kDone;
  }
  if (t == atyp[1]) {
    uint8_t n;
    if (!in.readU8(n)) return DecodeStatus::kNeedMore;
    if (n == 0) {
      why = "zero-length domain";
      return DecodeStatus::kInvalid;
    }
    std::string name(n, '\0');
    if (!in.readBytes(name.data(), n)) return DecodeStatus::kNeedMore;
    out = Address{};
    out.type = Address::Type::kDomain;
    out.domain = std::move(name);
    return DecodeStatus::kDone;
  }
  why = "bad address type " + std::to_string(t);
  return DecodeStatus::kInvalid;
}

}  // namespace

Address Address::ipv4(uint32_t host_order_ip, uint16_t port) {
  uint8_t b[4];
  storeBe32(b, host_order_ip);
  return ipv4(b, port);
}

Address Address::ipv4(const uint8_t ip4[4], uint16_t port) {
  Address a;
  a.type = Type::kIpv4;
  std::memcpy(a.ip.data(), ip4, 4);
  a.port = port;
  return a;
}

Address Address::ipv6(const uint8_t ip6[16], uint16_t port) {
  if (std::memcmp(ip6, kIpv4Mapped, 12) == 0) return ipv4(ip6 + 12, port);
  Address a;
  a.type = Type::kIpv6;
  std::memcpy(a.ip.data(), ip6, 16);
  a.port = port;
  return a;
}

Address Address::fromDomain(std::string_view name, uint16_t port) {
  Address a;
  a.type = Type::kDomain;
  a.domain = std::string(name);
  a.port = port;
  return a;
}

Address Address::parseHost(std::string_view host, uint16_t port) {
  std::string_view inner = host;
  if (inner.size() >= 2 && inner.front() == '[' && inner.back() == ']') {
    inner = inner.substr(1, inner.size() - 2);
  }
  if (inner.size() < INET6_ADDRSTRLEN) {
    char text[INET6_ADDRSTRLEN];
    std::memcpy(text, inner.data(), inner.size());
    text[inner.size()] = '\0';
    uint8_t b[16];
    if (inet_pton(AF_INET, text, b) == 1) return ipv4(b, port);
    if (inet_pton(AF_INET6, text, b) == 1) return ipv6(b, port);
  }
  return fromDomain(host, port);
}

bool Address::isValid() const noexcept {
  return type != Type::kDomain || (!domain.empty() && domain.size() <= 255);
}

std::string Address::hostString() const {
  char text[INET6_ADDRSTRLEN] = {};
  switch (type) {
    case Type::kIpv4:
      inet_ntop(AF_INET, ip.data(), text, sizeof text);
      return text;
    case Type::kIpv6:
      inet_ntop(AF_INET6, ip.data(), text, sizeof text);
      return text;
    case Type::kDomain:
      return domain;
  }
  return {};
}

std::string Address::toString() const {
  std::string host = hostString();
  if (type == Type::kIpv6) host = "[" + host + "]";
  return host + ":" + std::to_string(port);
}

size_t vlessAddressSize(const Address& a) noexcept { return 3 + hostSize(normalized(a)); }

size_t socksAddressSize(const Address& a) noexcept { return 3 + hostSize(normalized(a)); }

void encodeVlessAddress(const Address& a, BufferChain& out) {
  Address n = normalized(a);
  uint8_t buf[3 + 256];
  storeBe16(buf, n.port);
  encodeHost(n, kVlessAtyp, buf + 2);
  out.append(buf, 3 + hostSize(n));
}

DecodeStatus decodeVlessAddress(Cursor& in, Address& out, std::string& why) {
  Cursor c = in;
  uint16_t port;
  if (!c.readBe16(port)) return DecodeStatus::kNeedMore;
  DecodeStatus s = decodeHost(c, kVlessAtyp, out, why);
  if (s != DecodeStatus::kDone) return s;
  out.port = port;
  in.skip(c.position() - in.position());
  return DecodeStatus::kDone;
}

void encodeSocksAddress(const Address& a, BufferChain& out) {
  Address n = normalized(a);
  uint8_t buf[3 + 256];
  size_t host = hostSize(n);
  encodeHost(n, kSocksAtyp, buf);
  storeBe16(buf + 1 + host, n.port);
  out.append(buf, host + 3);
}

DecodeStatus decodeSocksAddress(Cursor& in, Address& out, std::string& why) {
  Cursor c = in;
  DecodeStatus s = decodeHost(c, kSocksAtyp, out, why);
  if (s != DecodeStatus::kDone) return s;
  uint16_t port;
  if (!c.readBe16(port)) return DecodeStatus::kNeedMore;
  out.port = port;
  in.skip(c.position() - in.position());
  return DecodeStatus::kDone;
}

}  // namespace vt::codec
