// UdpChannel: the UDP relay of one VLESS connection with CMD 2, in one of
// three framings (docs/protocol.md 3.4, 3.5; wire-format contract):
//
//   mode     client -> server              server -> client
//   v0       LEN payload (to the target)   LEN payload (from the target only)
//   classic  PORT ATYP ADDR LEN payload    PORT ATYP ADDR LEN payload (source)
//   multi    LEN payload (to the target)   FLAG [PORT ATYP ADDR] LEN payload
//   mux      ATYP ADDR PORT LEN CRLF payload (Trojan style, both ways; a
//            SimpleSocks UDP stream of a Mux connection)
//
// v0, classic and mux own a socket each (full cone per stream); multi uses
// the NAT session of (user, udp_session) when the request names one, else
// a socket of its own (udp_nat.h).
//
// Bounded everywhere:
//   - downstream: when the client's TCP write queue is above
//     kMaxDownQueuedBytes, datagrams for it are dropped and counted;
//   - upstream: when the UDP socket's send queue is full, datagrams are
//     dropped and counted (UdpSocket); we do not stop reading the client,
//     because one slow remote must not stall a channel's other remotes;
//   - datagrams waiting for a name resolution: at most kMaxPending packets
//     / kMaxPendingBytes, more are dropped and counted;
//   - the classic-mode name cache holds at most kMaxCachedNames entries.
// Hostile framing closes this channel only.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "buffer/buffer_chain.h"
#include "codec/vless.h"
#include "event/loop.h"
#include "event/resolver_pool.h"
#include "event/socket_address.h"
#include "event/timer.h"
#include "stream/stream.h"

namespace vt::server {

class Server;
class UdpNatSession;

class UdpChannel {
 public:
  enum class Mode { kV0, kClassic, kMulti, kMux };
  // `graceful`: end the connection cleanly (our direction finished, then
  // closed once the client has closed too) rather than at once.
  using CloseFn = std::function<void(stream::CloseReason, const std::string&, bool graceful)>;

  static constexpr size_t kMaxDownQueuedBytes = 512 * 1024;
  static constexpr size_t kMaxPending = 64;
  static constexpr size_t kMaxPendingBytes = 256 * 1024;
  static constexpr size_t kMaxCachedNames = 64;
  static constexpr uint64_t kNameCacheMs = 60'000;
  static constexpr uint64_t kNegativeCacheMs = 5'000;

  // `in` is the client stream, owned by the caller and alive until
  // shutdown(). `close` asks the owner to close the connection (it then
  // calls shutdown()); it is never called from inside shutdown().
  UdpChannel(Server& server, stream::Stream& in, const codec::Request& req, std::string user,
             std::string peer, uint64_t conn_id, CloseFn close, bool mux = false);
  ~UdpChannel();
  UdpChannel(const UdpChannel&) = delete;
  UdpChannel& operator=(const UdpChannel&) = delete;

  // `payload`: the bytes that followed the request header.
  void start(BufferChain& payload, bool end_stream);
  void onData(BufferChain& data, bool end_stream);
  // Detaches from the NAT session, stops timers, logs the one close line.
  // Idempotent; after it no callback reaches the owner.
  void shutdown(stream::CloseReason reason, const std::string& detail);
  // Asks the owner to end the connection cleanly (NAT session expired or
  // evicted, channel idle): the client reads the end of the stream and
  // opens a new channel for its next datagram.
  void end(stream::CloseReason reason, const std::string& why);

  Mode mode() const { return mode_; }
  // Classic and mux: every datagram carries its address.
  bool addressed() const { return mode_ == Mode::kClassic || mode_ == Mode::kMux; }
  // The resolved target (v0, multi); unset while resolving and in classic.
  const std::optional<event::SocketAddress>& orig() const { return orig_; }
  // A datagram from `from` for this channel; `own`: from orig().
  void deliver(const uint8_t* data, size_t n, const event::SocketAddress& from, bool own);
  // Datagrams and payload bytes relayed so far (stats).
  uint64_t packetsUp() const { return pkts_up_; }
  uint64_t bytesUp() const { return bytes_up_; }
  uint64_t packetsDown() const { return pkts_down_; }
  uint64_t bytesDown() const { return bytes_down_; }
  uint64_t lastActiveMs() const { return last_active_ms_; }

 private:
  struct Pending {
    std::string host;  // empty: waiting for the channel's target
    uint16_t port = 0;
    BufferChain payload;
  };
  struct CacheEntry {
    std::optional<event::SocketAddress> addr;  // unset: the lookup failed
    uint64_t expires_ms = 0;
  };

  bool attachSession();
  void parseUp();
  void sendUp(const event::SocketAddress& to, BufferChain& payload);
  void queuePending(std::string host, uint16_t port, BufferChain& payload);
  void resolveNext();
  void onResolved(const std::string& host, Result<std::vector<event::SocketAddress>> r);
  // The first address we can send to that the egress policy allows; else
  // nullopt and `why`.
  std::optional<event::SocketAddress> pickAddress(const std::vector<event::SocketAddress>& all,
                                                  std::string& why);
  void onIdleTimer();
  void fail(stream::CloseReason reason, const std::string& why);

  Server& server_;
  event::Loop& loop_;
  stream::Stream& in_;
  Mode mode_;
  codec::Address target_;
  std::optional<uint64_t> session_id_;
  codec::Uuid uuid_;
  std::string user_;
  std::string peer_;
  uint64_t conn_id_;
  CloseFn close_;
  bool done_ = false;

  UdpNatSession* nat_ = nullptr;              // table session or private_
  std::unique_ptr<UdpNatSession> private_;    // when not in the table
  std::optional<event::SocketAddress> orig_;  // resolved target
  BufferChain up_buf_;                        // partial client packets

  event::PooledLookup resolver_;
  std::string resolving_;  // host being resolved ("" = none)
  std::deque<Pending> pending_;
  size_t pending_bytes_ = 0;
  std::map<std::string, CacheEntry> names_;
  event::Timer idle_timer_;

  uint64_t started_ms_;
  uint64_t last_active_ms_;
  uint64_t pkts_up_ = 0, bytes_up_ = 0, pkts_down_ = 0, bytes_down_ = 0;
  uint64_t drops_up_ = 0;    // send queue full, unreachable, port 0, resolve
  uint64_t drops_down_ = 0;  // client too slow, filtered (v0)
  bool warned_pending_ = false;
  uint64_t denied_ = 0;  // datagrams to addresses the egress policy refuses
  bool warned_denied_ = false;
};

}  // namespace vt::server
