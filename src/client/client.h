// Client: the core of vless-tun. Owns the NetStack (lwIP behind the TUN),
// its timer, the table of TcpSessions and the outbound factory (TLS context
// built once, server address resolved without blocking and cached).
//
//   TUN -> TunPump -> NetStack --onTcpSyn--> Client --> TcpSession
//                                                        |-> TcpFlow (app side)
//                                                        '-> Vless[Tls[Tcp]] -> server
//
// The table is keyed by FlowKey and kept in LRU order of I/O activity; at
// max_flows the least recently active session is evicted.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "client/packet_sink.h"
#include "config/client_config.h"
#include "core/error.h"
#include "event/loop.h"
#include "event/resolver.h"
#include "event/socket_address.h"
#include "event/timer.h"
#include "netstack/net_stack.h"
#include "stream/stream.h"

namespace vt::tls {
class TlsContext;
}

namespace vt::client {

class TcpSession;

struct ClientStats {
  uint64_t flowsOpened = 0;  // sessions created (SYNs taken)
  uint64_t flowsClosed = 0;
  uint64_t evicted = 0;
  uint64_t ipv6Refused = 0;   // IPv6 SYNs refused: route.carry_ipv6 = false
  uint64_t loopsRefused = 0;  // SYNs to the server itself through the TUN
  uint64_t connectFailed = 0;
  uint64_t bytesUp = 0;  // app -> server, payload
  uint64_t bytesDown = 0;
};

struct FlowKeyHash {
  size_t operator()(const netstack::FlowKey& k) const noexcept;
};

class Client final : private netstack::NetStack::Callbacks {
 public:
  // Builds the NetStack (one per process) and, when cfg.server.tls, the
  // TLS context (loads the CA file). Packets for the TUN go to the sink
  // given to setPacketSink (dropped while there is none).
  static Result<std::unique_ptr<Client>> create(event::Loop& loop, const config::ClientConfig& cfg);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  void setPacketSink(PacketSink* sink) { sink_ = sink; }
  netstack::NetStack& stack() { return *stack_; }
  // Starts resolving the server name (no-op for an IP literal).
  void start();
  // Resets every session (reason=shutdown) and refuses new SYNs.
  void stop();

  size_t sessionCount() const { return sessions_.size(); }
  const ClientStats& stats() const { return stats_; }
  const config::ClientConfig& config() const { return cfg_; }
  event::Loop& loop() { return loop_; }

  // For TcpSession.
  uint64_t nextFlowId() { return nextId_++; }
  void touch(TcpSession& s);
  // Builds the outbound stack for `target`; null while the server address
  // is unknown (the session is then told later through dialReady).
  stream::StreamPtr makeOutbound(const netstack::FlowKey& key, bool want_ip);
  bool serverAddressKnown() const { return !serverAddrs_.empty(); }
  void waitForServerAddress(const netstack::FlowKey& key);
  void onDialFailed();
  void onSessionClosed(TcpSession& s);  // removes it and defers its delete
  void countBytes(uint64_t up, uint64_t down) {
    stats_.bytesUp += up;
    stats_.bytesDown += down;
  }

 private:
  Client(event::Loop& loop, const config::ClientConfig& cfg);

  // NetStack::Callbacks
  void onOutput(const netstack::PacketView& packet) override;
  void onTcpSyn(const netstack::FlowKey& key) override;
  void onTcpAccepted(std::unique_ptr<netstack::TcpFlow> flow) override;
  void onTimerNeeded(bool needed) override;

  bool isServerItself(const netstack::FlowKey& key) const;
  void resolve();
  void onResolved(Result<std::vector<event::SocketAddress>> r);
  void evictOne();

  event::Loop& loop_;
  config::ClientConfig cfg_;
  std::unique_ptr<netstack::NetStack> stack_;
  event::Timer stackTimer_;
  std::shared_ptr<tls::TlsContext> tls_;
  event::Resolver resolver_;
  std::vector<event::SocketAddress> serverAddrs_;  // resolved, first one dialled
  std::optional<event::SocketAddress> lastFailed_;
  std::vector<netstack::FlowKey> waiting_;         // sessions waiting for the address
  PacketSink* sink_ = nullptr;
  std::unordered_map<netstack::FlowKey, std::unique_ptr<TcpSession>, FlowKeyHash> sessions_;
  std::list<TcpSession*> lru_;  // front: most recently active
  ClientStats stats_;
  uint64_t nextId_ = 1;
  bool stopped_ = false;
  bool resolvePending_ = false;

  friend class TcpSession;
};

}  // namespace vt::client
