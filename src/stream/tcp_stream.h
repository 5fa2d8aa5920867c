// TcpStream: a Stream over a libuv TCP socket; TcpListener accepts them.
//
// Lifetimes: the uv_tcp_t lives in a heap block that is freed only in its
// close callback, so the TcpStream may be destroyed at any time (after
// close(), or directly: the destructor closes without callbacks). Write
// buffers are owned by their write request until its callback.
//
// Half-close: write(..., end_stream=true) shuts our direction down after
// the queued bytes; a peer EOF arrives as onData(..., true). Once both
// directions have finished the stream closes itself (kRemoteClose when the
// peer finished last, kLocalClose when we did).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "core/error.h"
#include "event/loop.h"
#include "event/socket_address.h"
#include "event/timer.h"
#include "stream/buffer_budget.h"
#include "stream/rate_limit.h"
#include "stream/stream.h"

struct uv_tcp_s;
struct uv_stream_s;

namespace vt::stream {

class TcpStream;

// The open outbound streams of one owner (the client's server
// connections), so that a network change can close those whose local
// address is gone. Shared by the owner and its streams: a stream deleted
// after its owner still unlinks safely.
class TcpStreamSet {
 public:
  std::vector<TcpStream*> streams() const { return {set_.begin(), set_.end()}; }
  bool contains(TcpStream* s) const { return set_.count(s) != 0; }
  size_t size() const { return set_.size(); }

 private:
  friend class TcpStream;
  std::unordered_set<TcpStream*> set_;
};

class TcpStream : public Stream, public event::DeferredDeletable {
 public:
  // Outbound: connect() dials `peer`.
  static std::unique_ptr<TcpStream> create(event::Loop& loop, const event::SocketAddress& peer,
                                           Watermarks wm = {});
  ~TcpStream() override;
  TcpStream(const TcpStream&) = delete;
  TcpStream& operator=(const TcpStream&) = delete;

  void setCallbacks(StreamCallbacks& cb) override;
  void connect() override;
  void write(BufferChain& data, bool end_stream) override;
  void readDisable(bool disable) override;
  void close(CloseReason reason) override;
  size_t bufferedBytes() const override;
  // Memory held by what is queued for the peer (bufferedBytes() counts
  // bytes): buffers' whole capacity and the requests, never less than the
  // bytes. What the watermarks and the budget bound.
  size_t bufferedMemory() const;
  std::string peerName() const override;

  void close(CloseReason reason, const std::string& detail);
  void setWatermarks(Watermarks wm) { wm_ = wm; }
  void setNoDelay(bool enable);
  void setKeepAlive(bool enable, unsigned delay_s);
  // SO_MARK (Linux, needs CAP_NET_ADMIN); call before connect(). Returns
  // false (and logs) when the kernel refuses.
  bool setMark(uint32_t fwmark);
  // The socket before connect() (-1 if it could not be created): for an
  // embedder's protect() hook.
  int fd() const;
  // Makes connect() fail (later, as any failed dial) with `why`: a socket
  // the embedder's protect() refused.
  void refuse(std::string why);
  // Joins `set` until closed or destroyed.
  void joinSet(std::shared_ptr<TcpStreamSet> set);
  event::SocketAddress localAddress() const;
  event::SocketAddress peerAddress() const { return peer_; }
  uint64_t bytesSent() const { return bytes_sent_; }
  uint64_t bytesReceived() const { return bytes_received_; }
  bool connected() const { return connected_; }
  // Bytes read from and written to the peer pass `limit` from now on
  // (stream/rate_limit.h); null removes it.
  void setRateLimit(std::shared_ptr<RateLimit> limit);
  // What this stream queues counts toward `budget` (stream/buffer_budget.h)
  // until it closes; under pressure its watermarks shrink.
  void setBufferBudget(BufferBudget* budget);
  // For BufferBudget: pressure began or ended; re-checks the watermarks.
  void onBudgetPressure();

 private:
  friend class TcpListener;
  struct Handle;
  struct WriteReq;

  TcpStream(event::Loop& loop, Watermarks wm);
  // Accepts one pending connection from `server`; null on failure.
  static std::unique_ptr<TcpStream> accept(event::Loop& loop, uv_stream_s* server);

  friend struct TcpCallbacks;  // the libuv trampolines, in tcp_stream.cc

  void failLater(CloseReason reason, std::string detail);
  void flush(BufferChain& data);
  // flush() without the rate limit.
  void flushNow(BufferChain& data);
  // Rate limit: what the bucket can pay of throttled_out_ goes out now,
  // the rest waits for a timer.
  void releaseThrottled();
  void onReadLimit(size_t n);
  void maybeShutdown();
  void maybeStartReading();
  void stopReading();
  // Charges the budget with the change in bufferedMemory().
  void syncBudget();
  size_t highMark() const;
  size_t lowMark() const;
  void checkHighWatermark();
  void checkLowWatermark();
  void maybeFinish(CloseReason reason);

  event::Loop& loop_;
  Watermarks wm_;
  Handle* h_ = nullptr;  // null once closed (the close callback frees it)
  StreamCallbacks* callbacks_ = nullptr;
  event::SocketAddress peer_;
  std::string init_error_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);

  BufferChain pending_;  // written before the connection was up
  BufferChain read_buf_;
  Slice read_slab_;            // the buffer libuv reads into (onAlloc)
  size_t inflight_ = 0;        // bytes held by uv_write requests
  size_t inflight_memory_ = 0; // memory held by them (WriteReq::memory)
  uint64_t bytes_sent_ = 0;
  uint64_t bytes_received_ = 0;
  int read_disable_count_ = 0;
  bool connecting_ = false;
  bool refused_ = false;
  std::shared_ptr<TcpStreamSet> set_;
  bool connected_ = false;
  bool closed_ = false;
  bool reading_ = false;
  bool read_eof_ = false;
  bool write_end_ = false;      // end_stream was requested
  bool shutdown_sent_ = false;  // uv_shutdown queued
  bool shutdown_done_ = false;
  bool above_high_ = false;
  // Rate limit (null: none).
  std::shared_ptr<RateLimit> limit_;
  std::unique_ptr<event::Timer> read_limit_timer_;
  std::unique_ptr<event::Timer> write_limit_timer_;
  BufferChain throttled_out_;   // written, waiting for tokens
  bool read_throttled_ = false;  // reading paused to pay a debt
  BufferBudget* budget_ = nullptr;
  size_t charged_ = 0;  // bytes counted in budget_
};

class TcpListener {
 public:
  using AcceptCallback = std::function<void(std::unique_ptr<TcpStream>)>;

  static Result<std::unique_ptr<TcpListener>> listen(event::Loop& loop,
                                                     const event::SocketAddress& addr,
                                                     AcceptCallback on_accept, int backlog = 511);
  ~TcpListener();
  TcpListener(const TcpListener&) = delete;
  TcpListener& operator=(const TcpListener&) = delete;

  // The bound address (tests bind port 0 and read the port here).
  event::SocketAddress localAddress() const;

 private:
  TcpListener(event::Loop& loop, AcceptCallback cb) : loop_(loop), on_accept_(std::move(cb)) {}
  static void onConnection(uv_stream_s* server, int status);

  event::Loop& loop_;
  AcceptCallback on_accept_;
  uv_tcp_s* handle_ = nullptr;  // heap; freed in its close callback
};

}  // namespace vt::stream
