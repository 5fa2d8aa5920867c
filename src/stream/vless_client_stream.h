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
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "codec/vless.h"
#include "event/loop.h"
#include "stream/stream.h"

namespace vt::stream {

class VlessClientStream : public Stream, public event::DeferredDeletable, private StreamCallbacks {
 public:
  static std::unique_ptr<VlessClientStream> create(StreamPtr inner, codec::Request request);
  ~VlessClientStream() override;
  VlessClientStream(const VlessClientStream&) = delete;
  VlessClientStream& operator=(const VlessClientStream&) = delete;

  void setCallbacks(StreamCallbacks& cb) override { callbacks_ = &cb; }
  void connect() override;
  void write(BufferChain& data, bool end_stream) override;
  void readDisable(bool disable) override;
  void close(CloseReason reason) override { close(reason, ""); }
  size_t bufferedBytes() const override { return inner_->bufferedBytes(); }
  std::string peerName() const override { return inner_->peerName(); }

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
};

}  // namespace vt::stream
