// MuxSession: xtaci/smux (VER 1 or 2) over one inner Stream, the body of a
// VLESS v1 Mux (CMD 3) connection; MuxStream: one smux stream, a Stream of
// its own (docs/protocol.md 3.6).
//
//   user --write--> MuxStream.pending --(window, fair turn)--> frames --> inner
//   user <-onData-- MuxStream.held <-- frames <-- inner
//
// Both roles: the client opens streams (odd ids from 3), the server accepts
// them (a SYN past max_streams is answered with a FIN and counted).
// Sending is round robin over the streams with bytes to send, one frame
// (at most 32 KiB) per turn, and stops while the inner stream is above its
// high watermark: one busy stream cannot starve the others.
//
// Receiving, VER 2: every stream has a window; a stream whose user stops
// reading (readDisable) holds what arrived and sends no UPD, so the peer
// stops after the window, and only that stream waits. A peer that sends
// past the window is hostile: the connection closes. Windows alone would
// let a peer make us hold max_streams windows (1024 x 256 KiB) for streams
// whose targets do not read, so the whole session is bounded as well
// (v2_receive_buffer, 16 MiB): above it the session stops reading the inner
// stream until half of it was taken (every stream of that connection waits;
// a safety valve, not the normal path). VER 1 has no windows: the same
// session bound (v1_receive_buffer, 4 MiB) is its only flow control (every
// stream waits, as xtaci/smux does).
//
// Window growth (VER 2): a fixed window caps one stream at window / RTT,
// and the RTT here is the path's plus a loop pass of each end and the
// socket buffers between them (256 KiB: 4 Gbit/s at 0.5 ms, 40 Mbit/s at
// 50 ms). So a stream's window starts at stream_window and doubles, up to
// max_stream_window, each time its user took a whole window within
// 100 ms and holds nothing back. A stream held back by its window takes
// one per RTT, so on any path under 100 ms it grows to the cap; any other
// ends between what 50 and 100 ms carry at its rate (HTTP/2- and
// QUIC-style auto-tuning, with a fixed time for the RTT smux does not
// measure). A stream slower than
// window / 100 ms, or whose user stops reading, does not grow, and what
// all streams can make us hold stays under the session's bound
// (v2_receive_buffer).
//
// Keepalive: a NOP when nothing was sent for keepalive_ms; a session that
// received nothing for dead_ms (still nothing after one more read pass of
// the loop) is dead. A dead or failed session resets
// every stream (onClose kReset) and reports once to its owner; no stream of
// another session is touched.
//
// Open answer (wait mode, docs/protocol.md 3.6): a client stream opened
// with wait_answer reports onConnected on the peer's first PSH (vless-server
// sends a PSH of LEN 0 once the target connected); a FIN before it is
// kConnectFailed. Without wait_answer onConnected comes on connect().
// An empty write() on a stream sends a PSH of LEN 0 (the server's answer).
//
// Lifetimes: streams belong to their users; a stream destroyed or closed
// leaves the session (a FIN is sent if ours was not). The session belongs
// to its owner, which also owns the inner stream; the session installs
// itself as the inner stream's callbacks and reports onMuxClosed once the
// inner stream is closed. Callbacks may close or release anything; objects
// are destroyed only through the loop's deferred delete.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <unordered_map>

#include "buffer/buffer_chain.h"
#include "event/loop.h"
#include "event/timer.h"
#include "stream/stream.h"

namespace vt::stream {

class MuxStream;

struct MuxOptions {
  uint8_t version = 2;                   // client: what we send; server: the first frame's
  uint32_t stream_window = 256 * 1024;   // VER 2: receive window per stream (UPD WINDOW)
  // VER 2: a stream's window doubles, up to this, each time the peer ran
  // into it while our user had taken everything (see "Window growth"
  // above). Equal to stream_window (or below): fixed windows.
  uint32_t max_stream_window = 1 << 20;
  size_t v1_receive_buffer = 4 << 20;    // VER 1: held bytes before the inner stream pauses
  size_t v2_receive_buffer = 16 << 20;   // VER 2: the same bound over all windows
  uint64_t keepalive_ms = 10'000;
  uint64_t dead_ms = 30'000;
  size_t max_streams = 0;                // server: live streams per session (0: no cap)
  Watermarks stream_wm{256 * 1024, 64 * 1024};
};

struct MuxStats {
  uint64_t streamsOpened = 0;    // client: opened; server: accepted
  uint64_t streamsRefused = 0;   // server: SYN past max_streams, answered with FIN
  uint64_t unknownFrames = 0;    // PSH/FIN/UPD for a stream we do not have (ignored)
  uint64_t framesIn = 0;
  uint64_t framesOut = 0;
  uint64_t bytesIn = 0;          // PSH payload
  uint64_t bytesOut = 0;
  uint64_t innerWrites = 0;      // writes handed to the inner stream (batched per loop pass)
  uint64_t v1Pauses = 0;         // inner stream paused on held bytes (VER 1, or VER 2 past v2_receive_buffer)
  uint64_t windowGrowths = 0;    // VER 2: a stream's receive window doubled
  // A PSH for a stream we abandoned (closed before the peer ended its
  // direction) answered with a second FIN: "this stream is gone".
  uint64_t abandonedFins = 0;
  uint64_t peerAbandoned = 0;    // streams the peer ended so (a second FIN)
};

class MuxSession : public event::DeferredDeletable, private StreamCallbacks {
 public:
  enum class Role { kClient, kServer };

  class Owner {
   public:
    // Server role: a peer opened a stream. Keep it (set callbacks) or let
    // it go (destroying it sends a FIN).
    virtual void onMuxStream(std::unique_ptr<MuxStream> /*s*/) {}
    // Client role: the inner stream is connected.
    virtual void onMuxConnected() {}
    // Once, after every stream got its onClose and the inner stream is
    // closed. The owner may destroy the session (deferred) from here on.
    virtual void onMuxClosed(CloseReason reason, const std::string& detail) = 0;

   protected:
    ~Owner() = default;
  };

  MuxSession(event::Loop& loop, Stream& inner, Role role, MuxOptions opt, Owner& owner);
  ~MuxSession() override;
  MuxSession(const MuxSession&) = delete;
  MuxSession& operator=(const MuxSession&) = delete;

  // Client: connects the inner stream. Server: the inner stream is up;
  // `initial` (may be null) holds bytes that followed the VLESS header.
  void start(BufferChain* initial);
  // Client role. Null once closed. The stream sends its SYN on connect().
  std::unique_ptr<MuxStream> openStream(bool wait_answer);
  // Idempotent: resets every stream and closes the inner stream.
  void close(CloseReason reason, const std::string& detail);

  bool closed() const { return closed_; }
  bool connected() const { return connected_; }
  bool dying() const { return closed_ || goaway_; }
  // No new streams on this session (it stays up for the ones it has).
  void goAway() { goaway_ = true; }
  uint8_t version() const { return version_; }
  size_t streamCount() const { return streams_.size(); }
  // Last time the session had no stream (ms); 0 while it has any.
  uint64_t idleSinceMs() const { return streams_.empty() ? idle_since_ms_ : 0; }
  uint64_t lastReceiveMs() const { return last_rx_ms_; }
  const MuxStats& stats() const { return stats_; }
  size_t heldBytes() const { return held_total_; }
  std::string peerName() const { return inner_.peerName(); }

 private:
  friend class MuxStream;

  // StreamCallbacks (inner)
  void onConnected() override;
  void onData(BufferChain& data, bool end_stream) override;
  void onAboveHighWatermark() override;
  void onBelowLowWatermark() override;
  void onClose(CloseReason reason, const std::string& detail) override;

  void processInput();
  bool handleFrame(uint8_t ver, uint8_t cmd, uint32_t sid, BufferChain& payload,
                   uint32_t consumed, uint32_t window);
  void acceptStream(uint32_t sid);
  // Queues a control frame and flushes.
  void sendControl(uint8_t cmd, uint32_t sid);
  void sendUpd(uint32_t sid, uint32_t consumed, uint32_t window);
  void markReady(MuxStream& s);
  void pump();
  void flushOut();
  // Stream data goes to the inner stream once per loop iteration (or at
  // kFlushBytes): what many streams (or one stream's many datagrams)
  // produce in one pass becomes one write, so one TLS record and one
  // syscall carry it instead of one per frame.
  void flushSoon();
  void forget(MuxStream& s);
  void onTick();
  void failAll(CloseReason reason, const std::string& detail);
  size_t heldLimit() const;
  void addHeld(size_t n);
  void subHeld(size_t n);

  event::Loop& loop_;
  Stream& inner_;
  Role role_;
  MuxOptions opt_;
  Owner& owner_;
  uint8_t version_;
  bool version_known_;
  std::unordered_map<uint32_t, MuxStream*> streams_;
  std::deque<uint32_t> ready_;  // streams with something to send, in turn
  uint32_t next_id_ = 1;        // client: += 2 before use (first id 3)
  uint32_t max_accepted_ = 0;   // server: the highest stream id accepted
  uint32_t last_abandoned_fin_ = 0;  // the last id answered with a second FIN
  BufferChain rx_;
  BufferChain out_;
  event::Timer tick_;
  uint64_t last_rx_ms_ = 0;
  uint64_t last_tx_ms_ = 0;
  uint64_t idle_since_ms_ = 0;
  size_t held_total_ = 0;
  MuxStats stats_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  bool started_ = false;
  bool connected_ = false;
  bool inner_above_ = false;
  bool paused_ = false;  // inner stream read-disabled on held bytes (heldLimit())
  bool pumping_ = false;
  bool flush_posted_ = false;
  bool closed_ = false;
  bool goaway_ = false;
  bool dead_suspect_ = false;  // dead_ms passed once; confirmed after a read pass
  bool inner_closed_ = false;
  bool inner_eof_ = false;
  bool processing_ = false;
  bool reported_ = false;
  CloseReason close_reason_ = CloseReason::kLocalClose;
  std::string close_detail_;
};

class MuxStream final : public Stream, public event::DeferredDeletable {
 public:
  ~MuxStream() override;
  MuxStream(const MuxStream&) = delete;
  MuxStream& operator=(const MuxStream&) = delete;

  void setCallbacks(StreamCallbacks& cb) override { callbacks_ = &cb; }
  // Client streams: sends the SYN and what was written before. Accepted
  // streams are connected already (no-op).
  void connect() override;
  // Drains `data`. Empty data without end_stream sends a PSH of LEN 0.
  void write(BufferChain& data, bool end_stream) override;
  void readDisable(bool disable) override;
  void close(CloseReason reason) override { close(reason, ""); }
  void close(CloseReason reason, const std::string& detail);
  size_t bufferedBytes() const override { return pending_.size(); }
  std::string peerName() const override;

  uint32_t id() const { return id_; }
  // Raises this stream's receive window (VER 2) above the session's
  // stream_window; never lowers it. For a datagram stream, whose bytes go
  // on at once (or are dropped) and never wait for a reader: at 500 Mbit/s
  // a 256 KiB window is 4 ms in flight, less than one loop pass of a busy
  // peer, and the sender drops what does not fit. The peer learns the
  // window from an UPD, sent at once (after the SYN for a stream not yet
  // connected). The session's bound over all windows (v2_receive_buffer)
  // still holds.
  void setReceiveWindow(uint32_t window);
  uint32_t receiveWindow() const { return window_; }
  // Bytes received and not yet taken by the user.
  size_t heldBytes() const { return held_.size(); }
  bool answered() const { return answered_; }

 private:
  friend class MuxSession;
  MuxStream(MuxSession& session, uint32_t id, bool outbound, bool wait_answer);

  // From the session.
  void onPsh(BufferChain& payload);
  void onFin();
  void onUpd(uint32_t consumed, uint32_t window);
  void onSessionGone(CloseReason reason, const std::string& detail);
  // Bytes that may go now (window and pending), VER 2; pending for VER 1.
  size_t sendable() const;
  // One frame into the session's output; true if more is sendable.
  bool sendOne(BufferChain& out);
  void deliver();
  // An UPD with consumed_ and window_ now.
  void sendWindow();
  void maybeFinish();
  void checkBelow();
  void leaveSession();

  MuxSession* session_;
  uint32_t id_;
  StreamCallbacks* callbacks_ = nullptr;
  BufferChain pending_;  // written, not yet framed
  BufferChain held_;     // received, not yet taken by the user
  // VER 2 windows (wrapping counters, as smux).
  uint32_t written_ = 0;           // data bytes we sent
  uint32_t peer_consumed_ = 0;
  uint32_t peer_window_ = 262144;  // smux's initial guess until the first UPD
  uint32_t consumed_ = 0;          // data bytes our user took
  uint32_t window_;                // our receive window (stream_window, or raised)
  uint32_t consumed_unreported_ = 0;
  // Window growth: when the current measure began, and consumed_ then.
  uint64_t epoch_ms_;
  uint32_t epoch_consumed_ = 0;
  int read_disabled_ = 0;
  bool outbound_;
  bool wait_answer_;
  bool syn_sent_;
  bool answered_;
  bool empty_psh_ = false;  // an empty write asked for a PSH of LEN 0
  bool fin_wanted_ = false;  // user's end_stream: FIN after pending
  bool fin_sent_ = false;
  bool fin_received_ = false;
  bool eof_delivered_ = false;
  bool above_ = false;
  bool ready_ = false;  // in the session's ready_ queue
  bool delivering_ = false;
  bool closed_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace vt::stream
