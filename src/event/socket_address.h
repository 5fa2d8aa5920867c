// SocketAddress: an IPv4 or IPv6 address with a port, stored as the
// sockaddr the kernel wants.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vt::event {

struct SocketAddress {
  sockaddr_storage storage{};

  // "1.2.3.4:80", "[::1]:80". No names, no missing port.
  static std::optional<SocketAddress> parse(std::string_view text);
  // A bare IP literal ("1.2.3.4", "::1", "[::1]") with a separate port.
  static std::optional<SocketAddress> parseIp(std::string_view host, uint16_t port);
  static SocketAddress fromSockaddr(const sockaddr* sa);
  static SocketAddress ipv4(uint32_t host_order, uint16_t port);
  static SocketAddress ipv6(const uint8_t ip[16], uint16_t port);
  // An address in network byte order, 4 (IPv4) or 16 (IPv6) bytes.
  static SocketAddress fromIpBytes(const uint8_t* ip, size_t len, uint16_t port);

  int family() const { return storage.ss_family; }
  uint16_t port() const;
  void setPort(uint16_t port);
  std::string toString() const;  // "1.2.3.4:80", "[::1]:80"
  std::string ipString() const;  // "1.2.3.4", "::1"
  // 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104.
  bool isLoopback() const;
  const sockaddr* sa() const { return reinterpret_cast<const sockaddr*>(&storage); }
  socklen_t len() const;

  friend bool operator==(const SocketAddress& a, const SocketAddress& b);
};

// Every IPv4/IPv6 address on this host's interfaces (uv_interface_addresses;
// empty when the kernel will not say). Port 0.
std::vector<SocketAddress> interfaceAddresses();

}  // namespace vt::event
