// Server: the listeners of vless-server and the table of live sessions.
// No globals: a test can run two servers on one loop.
//
// Lifetime: stop() closes the listeners and every session; sessions finish
// asynchronously (each waits for its streams' onClose). Destroy the Server
// only after activeSessions() + closingSessions() reached 0, or after the
// loop has stopped for good.
#pragma once

#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "config/server_config.h"
#include "core/error.h"
#include "event/loop.h"
#include "event/socket_address.h"
#include "server/authenticator.h"
#include "server/egress_policy.h"
#include "event/timer.h"
#include "server/udp_nat.h"

namespace vt::tls {
class TlsContext;
}
namespace vt::stream {
class MuxStream;
class TcpListener;
class TcpStream;
}  // namespace vt::stream

namespace vt::server {

class ServerSession;

class Server {
 public:
  // Builds the TLS context (when cfg.tls is set) from the cert/key files.
  static Result<std::unique_ptr<Server>> create(event::Loop& loop, const config::ServerConfig& cfg);
  Server(event::Loop& loop, const config::ServerConfig& cfg, std::shared_ptr<tls::TlsContext> tls);
  // The listeners' TLS context (null for plain listeners).
  const tls::TlsContext* tlsContext() const { return tls_.get(); }
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds every `listen` address; fails if any cannot be bound.
  Status start();
  // Closes the listeners and all sessions. Idempotent.
  void stop();

  // Bound addresses (port 0 in the config becomes the real port).
  std::vector<event::SocketAddress> localAddresses() const;
  size_t activeSessions() const { return active_; }
  size_t sessionCount() const { return sessions_.size(); }

  // For sessions.
  event::Loop& loop() { return loop_; }
  const config::ServerConfig& config() const { return cfg_; }
  const Authenticator& auth() const { return auth_; }
  UdpNatTable& udpNat() { return udp_nat_; }
  // nullptr when a user may reach `a`; else why not. Counted when refused.
  const char* checkEgress(const event::SocketAddress& a) {
    const char* why = egress_.check(a);
    if (why != nullptr) ++egress_denied_;
    return why;
  }
  uint64_t egressDenied() const { return egress_denied_; }
  void onSessionClosing() { --active_; }
  void onSessionDone(ServerSession* s);
  // Mux: a stream the client opened on connection `parent`, run as a
  // session of its own; false (the stream is closed) at a cap, which
  // `why` names. `user` is the connection's user (config name).
  bool startMuxStream(std::unique_ptr<stream::MuxStream> s, const char* user, uint64_t parent,
                      std::string* why);
  void onMuxStreamDone(const char* user);
  size_t userStreams(const char* user) const {
    auto it = user_streams_.find(user);
    return it == user_streams_.end() ? 0 : it->second;
  }

 private:
  void onAccept(std::unique_ptr<stream::TcpStream> tcp);
  void refreshOwnAddresses();

  event::Loop& loop_;
  config::ServerConfig cfg_;
  Authenticator auth_;
  EgressPolicy egress_;
  uint64_t egress_denied_ = 0;
  event::Timer own_addr_timer_;  // re-reads the interfaces' addresses
  std::shared_ptr<tls::TlsContext> tls_;
  std::vector<std::unique_ptr<stream::TcpListener>> listeners_;
  UdpNatTable udp_nat_;  // before sessions_: their channels point into it
  std::unordered_map<ServerSession*, std::unique_ptr<ServerSession>> sessions_;
  std::unordered_map<const char*, size_t> user_streams_;  // live mux streams per user
  size_t active_ = 0;  // sessions not yet closing; checked against max_connections
  uint64_t next_id_ = 1;
  bool stopped_ = false;
};

}  // namespace vt::server
