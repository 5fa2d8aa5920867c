// Stream: a byte stream with half-close, backpressure and one close
// notification. Layers (TLS, WebSocket, VLESS) own the layer below them and
// implement StreamCallbacks for it; the top-most user (a server session or
// a client TcpFlow session) implements StreamCallbacks for the top layer.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "buffer/buffer_chain.h"

namespace vt::stream {

enum class CloseReason {
  kLocalClose,     // we closed it after a clean finish
  kRemoteClose,    // peer finished both directions cleanly
  kReset,          // peer reset / connection error
  kConnectFailed,  // dial failed (refused, unreachable, ...)
  kTimeout,
  kProtocolError,  // malformed bytes from the peer
  kTlsError,
  kResolveError,
  kEvicted,        // dropped to make room (caps)
};
const char* closeReasonName(CloseReason r) noexcept;

class StreamCallbacks {
 public:
  // Outbound streams: the connection (and every layer's handshake that
  // must finish before data) is up.
  virtual void onConnected() {}
  // `data` belongs to the stream; take (move/drain) what you keep.
  // end_stream: the peer has finished its direction (half-close); no more
  // data follows.
  virtual void onData(BufferChain& data, bool end_stream) = 0;
  // Backpressure from below: stop producing when above the high
  // watermark, resume on the low watermark.
  virtual void onAboveHighWatermark() {}
  virtual void onBelowLowWatermark() {}
  // Called exactly once; the stream may be destroyed from here on (by
  // deferred delete, never inside this call).
  virtual void onClose(CloseReason reason, const std::string& detail) = 0;

 protected:
  ~StreamCallbacks() = default;
};

class Stream {
 public:
  virtual ~Stream() = default;
  virtual void setCallbacks(StreamCallbacks& cb) = 0;
  // Starts an outbound stream; errors arrive via onClose, never
  // synchronously. Accepted streams are already connected.
  virtual void connect() = 0;
  // Drains `data`; end_stream half-closes our direction after it.
  virtual void write(BufferChain& data, bool end_stream) = 0;
  // Counted: every disable needs one enable. Stops onData while disabled.
  virtual void readDisable(bool disable) = 0;
  // Idempotent. No callbacks except onClose (once) after this.
  virtual void close(CloseReason reason) = 0;
  // Bytes queued for the wire (for watermarks).
  virtual size_t bufferedBytes() const = 0;
  // "198.18.0.1:443" of the peer, for logs.
  virtual std::string peerName() const = 0;
};

using StreamPtr = std::unique_ptr<Stream>;

// Per-stream buffering limits: onAboveHighWatermark when what is queued
// goes above `high`, onBelowLowWatermark once it is back at or below `low`.
// TcpStream measures its memory (bufferedMemory(): buffers whole), the
// layers above it their bytes.
struct Watermarks {
  size_t high = 512 * 1024;
  size_t low = 128 * 1024;
};

// The edges a layer reports to its user: above once its own queue passed
// wm.high or the inner stream said above; below once both are over (its
// queue back at wm.low or under). TlsStream and WsStream share it.
class WatermarkEdges {
 public:
  // Tells `cb` (if any) of a new edge.
  void update(size_t queued, bool inner_above, const Watermarks& wm, StreamCallbacks* cb) {
    if (!queue_above_ && queued > wm.high) queue_above_ = true;
    if (queue_above_ && queued <= wm.low) queue_above_ = false;
    bool above = inner_above || queue_above_;
    if (above == reported_above_) return;
    reported_above_ = above;
    if (cb == nullptr) return;
    if (above) {
      cb->onAboveHighWatermark();
    } else {
      cb->onBelowLowWatermark();
    }
  }

 private:
  bool queue_above_ = false;
  bool reported_above_ = false;
};

}  // namespace vt::stream
