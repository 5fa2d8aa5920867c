// VlessClientStream: the client side of VLESS (v0 or v1) over any inner
// Stream (usually TLS over TCP).
//
// The request header travels in the same inner write as the first payload
// (written before or during connect, or from onConnected). If nothing has
// been written once the inner stream is up, the header goes alone, right
// after onConnected returns (or at once with want_ip), since the server
// dials only after the header.
//
// Replies: v0 starts with a response header (validated and stripped). v1
// has none, except with want_ip: the server prefixes the IP it dialled,
// exposed by dialledIp(); onConnected is reported only when it arrived (the
// "server connected" signal), and a close before it means the dial failed
// (CloseReason::kConnectFailed).
//
// Reuse (request.reuse, TLV 0x07, docs/protocol.md 3.8): both directions
// are LEN(2) chunks; end_stream becomes the LEN 0 chunk (the inner stream
// is never half-closed) and the server's LEN 0 chunk is our end_stream.
// Once both ended, close(kLocalClose) hands the inner stream to `release`
// (the connection pool) instead of closing it. Any other close, or a flow
// that did not end cleanly both ways, closes the inner stream.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "codec/vless.h"
#include "event/loop.h"
#include "stream/stream.h"

namespace vt::stream {

class VlessClientStream : public Stream, public event::DeferredDeletable, private StreamCallbacks {
 public:
  using ReleaseFn = std::function<void(StreamPtr)>;
  static std::unique_ptr<VlessClientStream> create(StreamPtr inner, codec::Request request);
  // Reuse: over an idle pooled connection (already connected; connect()
  // sends the header at once), and where a reusable inner stream goes.
  static std::unique_ptr<VlessClientStream> createPooled(StreamPtr connected,
                                                         codec::Request request);
  void setRelease(ReleaseFn release) { release_ = std::move(release); }
  bool pooled() const { return pooled_; }
  ~VlessClientStream() override;
  VlessClientStream(const VlessClientStream&) = delete;
  VlessClientStream& operator=(const VlessClientStream&) = delete;

  void setCallbacks(StreamCallbacks& cb) override { callbacks_ = &cb; }
  void connect() override;
  void write(BufferChain& data, bool end_stream) override;
  void readDisable(bool disable) override;
  void close(CloseReason reason) override { close(reason, ""); }
  size_t bufferedBytes() const override { return inner_ ? inner_->bufferedBytes() : 0; }
  std::string peerName() const override { return inner_ ? inner_->peerName() : "-"; }

  void close(CloseReason reason, const std::string& detail);
  // want_ip: the address the server dialled (port 0), once known; nullopt
  // before that or when the server sent FLAG 0.
  std::optional<codec::Address> dialledIp() const { return dialled_; }
  const codec::Request& request() const { return request_; }
  Stream& inner() { return *inner_; }

 private:
  VlessClientStream(StreamPtr inner, codec::Request request);

  void onConnected() override;
  void onData(BufferChain& data, bool end_stream) override;
  void onAboveHighWatermark() override;
  void onBelowLowWatermark() override;
  void onClose(CloseReason reason, const std::string& detail) override;

  void sendHeader(BufferChain& payload, bool end_stream);
  bool waitsForPrefix() const { return request_.version == 1 && request_.want_ip; }
  void deliver(BufferChain& data, bool end_stream);
  // Reuse: decodes chunks, delivers their payload (and the end) at once.
  void deliverChunks(BufferChain& data, bool end_stream);
  bool reusable() const;

  StreamPtr inner_;
  codec::Request request_;
  StreamCallbacks* callbacks_ = nullptr;
  BufferChain rx_;  // reply bytes until the response header/prefix is parsed
  std::optional<codec::Address> dialled_;
  bool header_sent_ = false;
  bool response_done_ = false;
  bool inner_connected_ = false;
  bool write_end_ = false;
  bool closed_ = false;
  // Reuse.
  bool pooled_ = false;     // made over an idle pooled connection
  bool down_end_ = false;   // the server's end chunk arrived
  bool inner_eof_ = false;  // the inner stream ended: not reusable
  BufferChain chunk_rx_;    // server bytes not yet decoded into chunks
  int read_disabled_ = 0;   // our readDisable count on the inner stream
  ReleaseFn release_;
};

}  // namespace vt::stream
