// ServerSession: one accepted connection, from the first byte to the one
// log line at close.
//
//   kHandshake --header ok--> kDialling --connected--> kRelay --both done--> kDraining
//       ^                                                                      |
//       +------ reuse (TLV 0x07): the flow is logged, the target closed -------+
//       |  bad input / timeout            (v0: response header; v1 want_ip: prefix)
//       +--fallback set--> kDialling(fallback) --connected--> kRelay (all bytes replayed)
//       +--no fallback---> closed without writing a byte
//
// Reading the inbound stops while a dial is in progress, so the bytes held
// are at most the header limit plus one read. After the dial the two
// streams relay with backpressure: when one side's write queue is above its
// high watermark, the other side stops reading until the low watermark.
//
// Reuse (docs/protocol.md 3.8): both directions are LEN(2) chunks and a
// LEN 0 chunk ends one; once both ended and the bytes are flushed, the flow
// gets its log line, the target is closed and the connection waits (at
// most reuse_idle_timeout) for the client's next request. A request on a
// reused connection that does not parse closes it (no fallback: the
// connection already proved its user).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "buffer/buffer_chain.h"
#include "codec/vless.h"
#include "event/loop.h"
#include "event/resolver_pool.h"
#include "event/socket_address.h"
#include "event/timer.h"
#include "stream/mux_session.h"
#include "stream/stream.h"

namespace vt::stream {
class TcpStream;
}

namespace vt::server {

class Server;
class UdpChannel;
class IpSession;
struct TrafficCounters;

class ServerSession : public event::DeferredDeletable, private stream::MuxSession::Owner {
 public:
  // Longest request header we wait for: the codec's bound (a v1 header
  // with the largest TLV list and a 255-byte domain); more is a probe.
  static constexpr size_t kMaxHandshakeBytes = codec::kMaxRequestHeader;

  // `inbound` is already accepted (TLS handshake may still be running).
  // `inbound_owner` is the same object, for deferred deletion.
  ServerSession(Server& server, stream::Stream* inbound,
                std::unique_ptr<event::DeferredDeletable> inbound_owner, uint64_t id);
  ~ServerSession() override;
  ServerSession(const ServerSession&) = delete;
  ServerSession& operator=(const ServerSession&) = delete;

  // `tls`: the inbound is a TlsStream whose handshake is still to run.
  void start(bool tls);
  // A stream of a mux connection (the inbound is a MuxStream) of `user`
  // (a name from the config, which outlives us).
  // `parent`: the mux connection's id, for the log line; `mux`: the inbound
  // again, as a MuxStream (a UDP stream widens its receive window).
  void startStream(const char* user, uint64_t parent, stream::MuxStream& mux);
  // The source this connection counts against (Server::sourceKey): the
  // session reports its handshake's end and its close to the Server.
  // `socket`: the connection's TCP socket (under TLS, if any), where a
  // user's rate limit is applied once the user is known.
  void setSource(std::string source, stream::TcpStream* socket) {
    source_ = std::move(source);
    socket_ = socket;
  }
  // Idempotent; logs once; the Server deletes us after both streams closed.
  void close(stream::CloseReason reason, const std::string& detail);
  bool closing() const { return state_ == State::kClosed; }
  // The user's name (Server::userKey), "-" before the request is read.
  const char* user() const { return user_; }
  // The id of the log lines ("conn #ID").
  uint64_t id() const { return id_; }

  // What the session is doing, for the stats (server_stats.h). Kinds:
  // handshake (TLS or the request header not done yet), tcp (a TCP relay,
  // or a reused connection between requests), udp, mux (the connection
  // carrying Mux streams; each stream is a session of its own, tcp or udp),
  // ip (CMD 5), fallback (bad input relayed to the fallback).
  enum class Kind { kHandshake, kTcp, kUdp, kMux, kIp, kFallback };
  static const char* kindName(Kind k);
  struct Info {
    uint64_t id = 0;
    const char* user = "-";  // Server::userKey, or "-"
    std::string peer;        // the client's address
    std::string target;      // "example.test:443", "mux", "ip", "fallback 127.0.0.1:80", "-"
    Kind kind = Kind::kHandshake;
    // handshake, dialling, relay, draining, reuse_idle, udp, ending, mux, ip, closed
    const char* state = "";
    uint64_t up = 0;         // bytes client -> target (a Mux connection: its streams' payload in)
    uint64_t down = 0;       // bytes target -> client
    uint64_t udp_datagrams_up = 0;
    uint64_t udp_datagrams_down = 0;
    uint64_t age_ms = 0;   // since accepted (a reused connection: since its flow began)
    uint64_t idle_ms = 0;  // since the last byte either way (as far as known)
    uint64_t mux_parent = 0;  // a Mux stream: its connection's id; else 0
    std::string mux_stream;   // ... and its stream id; else empty
  };
  // A read-only snapshot; `now_ms` is the loop's now().
  Info info(uint64_t now_ms) const;
  // The traffic so far of the current session (or reused flow).
  TrafficCounters traffic() const;
  // A Mux connection: its bytes are its streams' (counted by them).
  bool muxCarrier() const { return mux_ != nullptr; }
  // "connection 12 alice 198.18.0.1:40000 -> example.test:443"
  std::string describe(uint64_t now_ms) const;

 private:
  // kUdp: CMD 2; the UdpChannel owns the rest of the connection.
  // kMux: CMD 3; the MuxSession owns the rest of the connection.
  // kIp: CMD 5; the IpSession owns the rest of the connection.
  enum class State { kHandshake, kDialling, kRelay, kDraining, kUdp, kMux, kIp, kClosed };
  enum class Side { kIn, kOut };

  // One callback object per stream; both forward to the session.
  class SideCallbacks : public stream::StreamCallbacks {
   public:
    SideCallbacks(ServerSession& s, Side side) : s_(s), side_(side) {}
    void onConnected() override { s_.onConnected(side_); }
    void onData(BufferChain& data, bool end_stream) override { s_.onData(side_, data, end_stream); }
    void onAboveHighWatermark() override { s_.onWatermark(side_, true); }
    void onBelowLowWatermark() override { s_.onWatermark(side_, false); }
    void onClose(stream::CloseReason r, const std::string& d) override {
      s_.onStreamClose(side_, r, d);
    }

   private:
    ServerSession& s_;
    Side side_;
  };

  void onConnected(Side side);
  void onData(Side side, BufferChain& data, bool end_stream);
  void onWatermark(Side side, bool above);
  void onStreamClose(Side side, stream::CloseReason reason, const std::string& detail);

  void onHandshakeBytes(BufferChain& data, bool end_stream);
  // Reuse: client chunks -> target; target bytes -> chunks to the client.
  void onReuseUp(BufferChain& data, bool end_stream);
  void writeDown(BufferChain& data, bool end_stream);
  // A reused flow is finished: log it, drop the target, wait for the next.
  void nextRequest();
  void onRequest(size_t header_len);
  void onSimpleSocksBytes();
  void startTcp(size_t header_len);
  void startUdp(size_t header_len);
  void startMux(size_t header_len);
  void startIp(size_t header_len);
  // MuxSession::Owner
  void onMuxStream(std::unique_ptr<stream::MuxStream> s) override;
  void onMuxClosed(stream::CloseReason reason, const std::string& detail) override;
  // The UdpChannel's clean end: finish our direction, close once the client
  // closed (or after drain_timeout).
  void endUdp(stream::CloseReason reason, const std::string& why);
  void rejectInput(const std::string& why);
  // The handshake phase is over (user known, fallback chosen, or closed):
  // the source's handshake slot is free. Idempotent.
  void leaveHandshake();
  void dialTarget(const std::string& host, bool is_ip, uint16_t port);
  void onResolved(Result<std::vector<event::SocketAddress>> r);
  void dialNext();
  void onDialled();
  void onDialFailed(const std::string& why);
  void onTimer();
  void setDialPause(bool pause);
  void maybeDrained();
  void maybeFinished();
  void maybeRelease();
  void logClose(stream::CloseReason reason, const std::string& detail);

  Server& server_;
  event::Loop& loop_;
  uint64_t id_;
  State state_ = State::kHandshake;

  stream::Stream* in_;
  std::unique_ptr<event::DeferredDeletable> in_owner_;
  bool in_closed_ = false;
  SideCallbacks in_cb_{*this, Side::kIn};

  stream::Stream* out_ = nullptr;
  std::unique_ptr<event::DeferredDeletable> out_owner_;
  bool out_closed_ = true;  // no outbound yet
  SideCallbacks out_cb_{*this, Side::kOut};

  std::string peer_name_;
  BufferChain held_;  // handshake bytes, then the payload waiting for the dial
  codec::Request request_;
  const char* user_ = "-";
  std::string target_ = "-";
  bool fallback_ = false;
  bool in_ready_ = false;        // inbound usable (TLS handshake done)
  bool in_eof_ = false;          // inbound finished its direction
  bool out_eof_ = false;         // outbound finished its direction
  bool in_dial_paused_ = false;  // our own pause while dialling
  bool in_bp_paused_ = false;    // paused because the outbound is full
  bool out_bp_paused_ = false;   // outbound paused because the inbound is full

  std::unique_ptr<event::PooledLookup> resolver_;
  std::vector<event::SocketAddress> dial_addrs_;
  size_t dial_next_ = 0;
  event::SocketAddress dialled_{};
  std::string last_dial_error_ = "no address";
  std::string egress_denied_;  // the first address the egress policy refused
  bool dial_tried_ = false;    // some address passed the policy
  std::string rejected_;  // why the input went to the fallback

  event::Timer timer_;  // handshake / dial deadline, then idle
  event::Timer drain_timer_;
  uint64_t drain_deadline_ms_ = 0;  // no progress by then: closed
  size_t drain_queued_ = 0;          // least queued seen while draining
  uint64_t drain_poll_ms_ = 0;
  uint64_t started_ms_;
  uint64_t last_active_ms_ = 0;
  uint64_t up_ = 0;    // client -> target bytes
  uint64_t down_ = 0;  // target -> client bytes
  bool released_ = false;
  // Reuse (TLV 0x07).
  bool reuse_ = false;          // this flow is chunked
  bool client_closed_ = false;  // the client ended its TLS direction: no next request
  bool dropping_out_ = false;   // nextRequest() is closing the finished target
  uint32_t flows_ = 0;          // flows finished on this connection so far
  BufferChain chunk_in_;        // client bytes not yet decoded into chunks
  BufferChain next_;            // bytes after the client's end chunk: the next request
  std::unique_ptr<UdpChannel> udp_;
  bool udp_ending_ = false;
  std::unique_ptr<IpSession> ip_;  // endUdp() ran: waiting for the client to close
  // Mux: on the connection, the session; on a stream, its flags.
  std::unique_ptr<stream::MuxSession> mux_;  // after in_owner_: it holds *in_
  bool mux_stream_ = false;       // we are one stream of a mux connection
  stream::MuxStream* mux_in_ = nullptr;  // that stream (in_), for its receive window
  std::string mux_tag_;           // " mux=<connection id>/<stream id>" in our log line
  uint64_t mux_parent_ = 0;       // that connection id (stats)
  std::string mux_stream_id_;     // that stream id (stats)
  bool user_stream_counted_ = false;
  std::string source_;               // admission: the Server's per-source count
  stream::TcpStream* socket_ = nullptr;  // the client's socket (owned through in_owner_)
  bool handshake_left_ = false;      // leaveHandshake() ran
  const char* counted_user_ = nullptr;  // counted in the Server's per-user connections
  uint64_t mux_streams_ = 0;      // streams accepted on this connection
  uint64_t mux_refused_ = 0;      // ... and refused at a cap
};

}  // namespace vt::server
