// Shared pieces of the server tests: a Server on its own loop thread, the
// test users, request builders and a round-trip check.
//
//   client --(v0/v1 request + payload)--> Server --TCP--> EchoPeer (target)
//                                            \--bad input--> EchoPeer "FB\n" (fallback)
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "codec/vless.h"
#include "config/server_config.h"
#include "event/loop.h"
#include "event/timer.h"
#include "server/server.h"
#include "tls/tls_engine.h"
#include "unit/server/test_peers.h"

namespace vt::server::testing {

extern const codec::Uuid kAlice;
extern const codec::Uuid kBob;
extern const codec::Uuid kStranger;
extern const std::string kBanner;  // what the fallback peer says first

// Plain TCP on 127.0.0.1:0, users alice and bob, 200 ms handshake timeout.
config::ServerConfig baseConfig();
config::HostPort loopbackPort(uint16_t port);

// One Server on its own loop thread; the destructor stops it cleanly.
class Harness {
 public:
  explicit Harness(const config::ServerConfig& cfg, std::shared_ptr<tls::TlsContext> tls = nullptr);
  ~Harness();
  uint16_t port() const { return port_; }
  size_t sessions() const { return sessions_; }
  // The UDP NAT table's size and counters, copied on the loop thread every
  // few milliseconds.
  size_t udpSessions() const { return udp_sessions_; }
  uint64_t egressDenied() const { return egress_denied_; }
  UdpNatStats udpStats() const;
  // Polls until `pred(udpStats())` holds or `timeout_ms` passed.
  bool waitUdpStats(const std::function<bool(const UdpNatStats&)>& pred,
                    int timeout_ms = 3000) const;
  // Runs `fn` on the loop thread (within a few milliseconds) and waits for
  // it: the way a test reads or drives the Server itself.
  void call(const std::function<void(Server&)>& fn);

 private:
  std::unique_ptr<event::Loop> loop_;
  std::unique_ptr<Server> server_;
  std::unique_ptr<event::Timer> poll_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<size_t> sessions_{0};
  std::atomic<size_t> udp_sessions_{0};
  std::atomic<uint64_t> egress_denied_{0};
  std::mutex calls_mu_;
  std::vector<std::function<void()>> calls_;
  mutable std::mutex udp_mu_;
  UdpNatStats udp_stats_;
  uint16_t port_ = 0;
};

// The request header's bytes.
std::string encoded(const codec::Request& r);
std::string request(uint8_t version, const codec::Uuid& uuid, const codec::Address& target,
                    bool want_ip = false);
codec::Address echoAt(uint16_t port);
std::string v0Response();
// Sends `req` + "hello", expects `prefix` + "hello" back, then one more
// round trip on the same connection. `trickle`: one byte per write.
void roundTrip(uint16_t server_port, const std::string& req, const std::string& prefix,
               bool trickle);

}  // namespace vt::server::testing
