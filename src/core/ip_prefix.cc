#include "core/ip_prefix.h"

#include <arpa/inet.h>

#include <cstring>

namespace vt {

std::optional<IpPrefix> IpPrefix::parse(std::string_view text) {
  std::string_view host = text;
  std::optional<unsigned> bits;
  if (size_t slash = text.find('/'); slash != std::string_view::npos) {
    host = text.substr(0, slash);
    std::string_view n = text.substr(slash + 1);
    if (n.empty() || n.size() > 3) return std::nullopt;
    unsigned v = 0;
    for (char c : n) {
      if (c < '0' || c > '9') return std::nullopt;
      v = v * 10 + static_cast<unsigned>(c - '0');
    }
    bits = v;
  }
  if (host.empty() || host.size() > 45) return std::nullopt;
  char buf[46];
  std::memcpy(buf, host.data(), host.size());
  buf[host.size()] = '\0';
  IpPrefix p;
  if (inet_pton(AF_INET, buf, p.addr.data()) == 1) {
    p.v6 = false;
  } else if (inet_pton(AF_INET6, buf, p.addr.data()) == 1) {
    p.v6 = true;
  } else {
    return std::nullopt;
  }
  unsigned max = p.v6 ? 128 : 32;
  unsigned n = bits.value_or(max);
  if (n > max) return std::nullopt;
  p.bits = static_cast<uint8_t>(n);
  // Host bits must be zero.
  for (unsigned i = 0; i < max / 8; ++i) {
    unsigned lo = i * 8;
    uint8_t mask = lo >= n ? 0 : (lo + 8 <= n ? 0xff : static_cast<uint8_t>(0xff << (8 - (n - lo))));
    if ((p.addr[i] & static_cast<uint8_t>(~mask)) != 0) return std::nullopt;
  }
  return p;
}

IpPrefix IpPrefix::v4Net(uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint8_t bits) {
  IpPrefix p;
  p.addr[0] = a;
  p.addr[1] = b;
  p.addr[2] = c;
  p.addr[3] = d;
  p.bits = bits;
  return p;
}

IpPrefix IpPrefix::v6Net(std::initializer_list<uint16_t> groups, uint8_t bits) {
  IpPrefix p;
  p.v6 = true;
  size_t i = 0;
  for (uint16_t g : groups) {
    if (i >= 8) break;
    p.addr[2 * i] = static_cast<uint8_t>(g >> 8);
    p.addr[2 * i + 1] = static_cast<uint8_t>(g);
    ++i;
  }
  p.bits = bits;
  return p;
}

bool IpPrefix::contains(bool is_v6, const uint8_t* ip) const {
  if (is_v6 != v6) return false;
  unsigned full = bits / 8;
  if (std::memcmp(addr.data(), ip, full) != 0) return false;
  unsigned rest = bits % 8;
  if (rest == 0) return true;
  uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (addr[full] & mask) == (ip[full] & mask);
}

std::string IpPrefix::toString() const {
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(v6 ? AF_INET6 : AF_INET, addr.data(), buf, sizeof buf);
  return std::string(buf) + "/" + std::to_string(bits);
}

}  // namespace vt
