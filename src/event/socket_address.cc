#include "event/socket_address.h"

#include <arpa/inet.h>
#include <uv.h>

#include <cstring>

namespace vt::event {

namespace {

bool parsePort(std::string_view s, uint16_t& out) {
  if (s.empty() || s.size() > 5) return false;
  uint32_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint32_t>(c - '0');
  }
  if (v > 65535) return false;
  out = static_cast<uint16_t>(v);
  return true;
}

}  // namespace

std::optional<SocketAddress> SocketAddress::parseIp(std::string_view host, uint16_t port) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  // inet_pton wants a NUL-terminated string; longest IPv6 text is 45 chars.
  char buf[INET6_ADDRSTRLEN + 1];
  if (host.empty() || host.size() >= sizeof buf) return std::nullopt;
  std::memcpy(buf, host.data(), host.size());
  buf[host.size()] = '\0';
  SocketAddress a;
  if (host.find(':') != std::string_view::npos) {
    auto* s6 = reinterpret_cast<sockaddr_in6*>(&a.storage);
    if (inet_pton(AF_INET6, buf, &s6->sin6_addr) != 1) return std::nullopt;
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(port);
  } else {
    auto* s4 = reinterpret_cast<sockaddr_in*>(&a.storage);
    if (inet_pton(AF_INET, buf, &s4->sin_addr) != 1) return std::nullopt;
    s4->sin_family = AF_INET;
    s4->sin_port = htons(port);
  }
  return a;
}

std::optional<SocketAddress> SocketAddress::parse(std::string_view text) {
  std::string_view host;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return std::nullopt;
    }
    host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
    if (host.find(':') == std::string_view::npos) return std::nullopt;  // "[1.2.3.4]:80"
  } else {
    size_t colon = text.find(':');
    // Exactly one colon: an unbracketed IPv6 literal is ambiguous.
    if (colon == std::string_view::npos || text.find(':', colon + 1) != std::string_view::npos) {
      return std::nullopt;
    }
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
  }
  uint16_t port = 0;
  if (!parsePort(port_text, port)) return std::nullopt;
  return parseIp(host, port);
}

SocketAddress SocketAddress::fromSockaddr(const sockaddr* sa) {
  SocketAddress a;
  if (sa == nullptr) return a;
  if (sa->sa_family == AF_INET) {
    std::memcpy(&a.storage, sa, sizeof(sockaddr_in));
  } else if (sa->sa_family == AF_INET6) {
    std::memcpy(&a.storage, sa, sizeof(sockaddr_in6));
  }
  return a;
}

SocketAddress SocketAddress::ipv4(uint32_t host_order, uint16_t port) {
  SocketAddress a;
  auto* s4 = reinterpret_cast<sockaddr_in*>(&a.storage);
  s4->sin_family = AF_INET;
  s4->sin_addr.s_addr = htonl(host_order);
  s4->sin_port = htons(port);
  return a;
}

SocketAddress SocketAddress::fromIpBytes(const uint8_t* ip, size_t len, uint16_t port) {
  if (len == 16) return ipv6(ip, port);
  return ipv4(static_cast<uint32_t>(ip[0]) << 24 | static_cast<uint32_t>(ip[1]) << 16 |
                  static_cast<uint32_t>(ip[2]) << 8 | ip[3],
              port);
}

SocketAddress SocketAddress::ipv6(const uint8_t ip[16], uint16_t port) {
  SocketAddress a;
  auto* s6 = reinterpret_cast<sockaddr_in6*>(&a.storage);
  s6->sin6_family = AF_INET6;
  std::memcpy(&s6->sin6_addr, ip, 16);
  s6->sin6_port = htons(port);
  return a;
}

bool SocketAddress::isLoopback() const {
  if (family() == AF_INET) {
    const auto* s4 = reinterpret_cast<const sockaddr_in*>(&storage);
    return (ntohl(s4->sin_addr.s_addr) >> 24) == 127;
  }
  if (family() == AF_INET6) {
    const auto* s6 = reinterpret_cast<const sockaddr_in6*>(&storage);
    const uint8_t* b = s6->sin6_addr.s6_addr;
    static const uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(b, kMapped, 12) == 0) return b[12] == 127;
    static const uint8_t kOne[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    return std::memcmp(b, kOne, 16) == 0;
  }
  return false;
}

uint16_t SocketAddress::port() const {
  if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage)->sin_port);
  if (family() == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_port);
  }
  return 0;
}

void SocketAddress::setPort(uint16_t port) {
  if (family() == AF_INET) reinterpret_cast<sockaddr_in*>(&storage)->sin_port = htons(port);
  if (family() == AF_INET6) reinterpret_cast<sockaddr_in6*>(&storage)->sin6_port = htons(port);
}

std::string SocketAddress::ipString() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (family() == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage)->sin_addr, buf, sizeof buf);
  } else if (family() == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_addr, buf,
              sizeof buf);
  } else {
    return "unspecified";
  }
  return buf;
}

std::string SocketAddress::toString() const {
  // Built by appending: GCC 12 at -O3 warns falsely (-Wrestrict) on
  // "[" + std::string temporaries.
  if (family() != AF_INET && family() != AF_INET6) return "unspecified";
  std::string out;
  out.reserve(INET6_ADDRSTRLEN + 8);
  if (family() == AF_INET6) out.push_back('[');
  out.append(ipString());
  if (family() == AF_INET6) out.push_back(']');
  out.push_back(':');
  out.append(std::to_string(port()));
  return out;
}

socklen_t SocketAddress::len() const {
  if (family() == AF_INET) return sizeof(sockaddr_in);
  if (family() == AF_INET6) return sizeof(sockaddr_in6);
  return 0;
}

bool operator==(const SocketAddress& a, const SocketAddress& b) {
  if (a.family() != b.family()) return false;
  if (a.family() == AF_INET) {
    const auto* x = reinterpret_cast<const sockaddr_in*>(&a.storage);
    const auto* y = reinterpret_cast<const sockaddr_in*>(&b.storage);
    return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  if (a.family() == AF_INET6) {
    const auto* x = reinterpret_cast<const sockaddr_in6*>(&a.storage);
    const auto* y = reinterpret_cast<const sockaddr_in6*>(&b.storage);
    return x->sin6_port == y->sin6_port &&
           std::memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
  }
  return true;
}

std::vector<SocketAddress> interfaceAddresses() {
  std::vector<SocketAddress> out;
  uv_interface_address_t* list = nullptr;
  int n = 0;
  if (uv_interface_addresses(&list, &n) != 0) return out;
  for (int i = 0; i < n; ++i) {
    const sockaddr* sa = reinterpret_cast<const sockaddr*>(&list[i].address);
    if (sa->sa_family == AF_INET || sa->sa_family == AF_INET6) {
      SocketAddress a = SocketAddress::fromSockaddr(sa);
      a.setPort(0);
      out.push_back(a);
    }
  }
  uv_free_interface_addresses(list, n);
  return out;
}

}  // namespace vt::event
