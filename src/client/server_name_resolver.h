// ServerNameResolver: looks the server's name up without the tunnel.
//
// With auto_route every socket that is not marked is routed into the TUN,
// getaddrinfo's DNS sockets included: the lookup would go through the very
// tunnel that needs the answer (and a later re-resolution, after a failed
// dial, always would). So when the client marks its sockets (server.fwmark,
// set by auto_route), the name is resolved here instead:
//   1. /etc/hosts (read once, at construction);
//   2. our own A and AAAA queries (RD set) from one UDP socket carrying the
//      mark, to the nameservers of /etc/resolv.conf (read once, at
//      construction), in order, 2 s per try, two rounds; an answer counts
//      only from the nameserver asked, with our id and our question.
// Answers: IPv4 addresses first, then IPv6, duplicates removed, the port set.
// The callback always runs on a later loop iteration; never after cancel()
// or destruction.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "event/loop.h"
#include "event/socket_address.h"
#include "event/timer.h"
#include "event/udp_socket.h"

namespace vt::client {

class ServerNameResolver {
 public:
  using Callback = std::function<void(Result<std::vector<event::SocketAddress>>)>;
  static constexpr uint64_t kTryMs = 2000;
  static constexpr int kRounds = 2;

  ServerNameResolver(event::Loop& loop, uint32_t fwmark, const std::string& hosts_path = "/etc/hosts",
                     const std::string& resolv_path = "/etc/resolv.conf");
  ~ServerNameResolver();
  ServerNameResolver(const ServerNameResolver&) = delete;
  ServerNameResolver& operator=(const ServerNameResolver&) = delete;

  // Called with the query socket before it sends (an embedder's protect());
  // false fails the lookup.
  void setSocketHook(std::function<bool(int fd)> hook) { hook_ = std::move(hook); }
  // Replaces the nameservers of resolv.conf (Android has none).
  void setNameservers(std::vector<event::SocketAddress> servers) { servers_ = std::move(servers); }

  void resolve(const std::string& host, uint16_t port, Callback cb);
  void cancel();
  const std::vector<event::SocketAddress>& nameservers() const { return servers_; }

  // Exposed for tests and the fuzz target: the query for (name, type) with
  // `id`, and the A/AAAA addresses of an answer to it (false: not an answer
  // to that query, or malformed).
  static std::vector<uint8_t> encodeQuery(const std::string& name, uint16_t type, uint16_t id);
  static bool parseAnswer(const uint8_t* p, size_t n, const std::string& name, uint16_t type,
                          uint16_t id, std::vector<event::SocketAddress>& out);

 private:
  void sendTry();
  void onDatagram(const uint8_t* p, size_t n, const event::SocketAddress& from);
  void finish(Result<std::vector<event::SocketAddress>> r);
  // IPv4 answers first, then IPv6, duplicates removed, the port set.
  std::vector<event::SocketAddress> merged() const;

  event::Loop& loop_;
  uint32_t fwmark_;
  std::function<bool(int fd)> hook_;
  std::vector<std::pair<std::string, event::SocketAddress>> hosts_;  // lowered name, address
  std::vector<event::SocketAddress> servers_;
  std::unique_ptr<event::UdpSocket> socket_;
  event::Timer timer_;
  Callback cb_;
  std::string host_;
  uint16_t port_ = 0;
  size_t try_ = 0;  // index over rounds x servers
  uint16_t idA_ = 0, idAaaa_ = 0;
  bool gotA_ = false, gotAaaa_ = false;
  std::vector<event::SocketAddress> v4_, v6_;
  std::string lastError_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace vt::client
