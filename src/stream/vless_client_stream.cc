#include "stream/vless_client_stream.h"

#include <algorithm>

#include "codec/length_frame.h"

namespace vt::stream {

namespace {
// Below the TLS 1.3 record payload limit (16383 bytes).
constexpr size_t kFirstRecordBytes = 16000;
}  // namespace

std::unique_ptr<VlessClientStream> VlessClientStream::create(StreamPtr inner,
                                                             codec::Request request) {
  return std::unique_ptr<VlessClientStream>(
      new VlessClientStream(std::move(inner), std::move(request)));
}

std::unique_ptr<VlessClientStream> VlessClientStream::createPooled(StreamPtr connected,
                                                                   codec::Request request) {
  auto s = create(std::move(connected), std::move(request));
  s->pooled_ = true;
  return s;
}

VlessClientStream::VlessClientStream(StreamPtr inner, codec::Request request)
    : inner_(std::move(inner)), request_(std::move(request)) {
  // v1 without want_ip: the reply is payload from its first byte.
  response_done_ = request_.version == 1 && !request_.want_ip;
  inner_->setCallbacks(*this);
}

VlessClientStream::~VlessClientStream() {
  callbacks_ = nullptr;
  closed_ = true;
}

void VlessClientStream::connect() {
  if (closed_) return;
  if (pooled_) {
    onConnected();  // the connection is up: the header goes now
    return;
  }
  inner_->connect();
}

void VlessClientStream::sendHeader(BufferChain& payload, bool end_stream) {
  header_sent_ = true;
  BufferChain out;
  codec::encodeRequest(request_, out);
  // Copy the start of the payload behind the header, into the same slice:
  // a TLS layer below then seals both in one record (it would send a small
  // front slice as a record of its own), so the server's first read holds
  // the header and the first payload bytes. Bounded to one record's worth.
  size_t room = out.size() < kFirstRecordBytes ? kFirstRecordBytes - out.size() : 0;
  size_t copied = 0;
  for (size_t i = 0; i < payload.sliceCount() && copied < room; ++i) {
    const Slice& sl = payload.slice(i);
    size_t take = std::min(sl.size(), room - copied);
    out.append(sl.data(), take);
    copied += take;
  }
  payload.drain(copied);
  out.moveFrom(payload);
  // One inner write: the header and the first payload leave together.
  inner_->write(out, end_stream);
}

void VlessClientStream::write(BufferChain& data, bool end_stream) {
  if (closed_ || write_end_) {
    data.clear();
    return;
  }
  write_end_ = end_stream;
  if (request_.reuse) {
    BufferChain framed;
    codec::encodeReuseChunks(data, framed);
    if (end_stream) codec::encodeReuseEnd(framed);
    if (!header_sent_) {
      sendHeader(framed, false);
    } else if (!framed.empty()) {
      inner_->write(framed, false);  // the connection outlives the flow
    }
    return;
  }
  if (!header_sent_) {
    sendHeader(data, end_stream);
    return;
  }
  inner_->write(data, end_stream);
}

void VlessClientStream::readDisable(bool disable) {
  if (closed_ || inner_ == nullptr) return;
  read_disabled_ += disable ? 1 : -1;
  inner_->readDisable(disable);
}

void VlessClientStream::onConnected() {
  if (closed_) return;
  inner_connected_ = true;
  if (waitsForPrefix()) {
    // The server dials only once it has the header; our "connected" is
    // its prefix.
    if (!header_sent_) {
      BufferChain none;
      sendHeader(none, false);
    }
    return;
  }
  if (callbacks_ != nullptr) callbacks_->onConnected();  // may write: merged
  if (closed_ || header_sent_) return;
  BufferChain none;
  sendHeader(none, false);
}

void VlessClientStream::onData(BufferChain& data, bool end_stream) {
  if (closed_) {
    data.clear();
    return;
  }
  if (response_done_) {
    if (request_.reuse) {
      deliverChunks(data, end_stream);
    } else {
      deliver(data, end_stream);
    }
    return;
  }
  rx_.moveFrom(data);
  if (request_.version == 0) {
    codec::ResponseDecodeResult r = codec::decodeV0Response(rx_);
    if (r.status == codec::DecodeStatus::kInvalid) {
      close(CloseReason::kProtocolError, "VLESS response: " + r.error);
      return;
    }
    if (r.status == codec::DecodeStatus::kNeedMore) {
      if (end_stream) {
        close(CloseReason::kProtocolError, "server closed before the VLESS response header");
      }
      return;
    }
    rx_.drain(r.consumed);
    response_done_ = true;
  } else {
    codec::WantIpDecodeResult r = codec::decodeWantIpPrefix(rx_);
    if (r.status == codec::DecodeStatus::kInvalid) {
      close(CloseReason::kProtocolError, "VLESS want_ip prefix: " + r.error);
      return;
    }
    if (r.status == codec::DecodeStatus::kNeedMore) {
      if (end_stream)
        close(CloseReason::kConnectFailed, "server closed before want_ip: dial failed");
      return;
    }
    rx_.drain(r.consumed);
    dialled_ = r.ip;
    response_done_ = true;
    if (callbacks_ != nullptr) callbacks_->onConnected();
    if (closed_) return;
  }
  if (request_.reuse) {
    BufferChain rest;
    rest.moveFrom(rx_);
    deliverChunks(rest, end_stream);
    return;
  }
  if (!rx_.empty() || end_stream) deliver(rx_, end_stream);
}

void VlessClientStream::deliverChunks(BufferChain& data, bool end_stream) {
  inner_eof_ = inner_eof_ || end_stream;
  chunk_rx_.moveFrom(data);
  BufferChain plain;
  bool end = false;
  while (!down_end_) {
    codec::ReuseChunkResult r = codec::decodeReuseChunk(chunk_rx_);
    if (r.status == codec::DecodeStatus::kNeedMore) break;
    if (r.status == codec::DecodeStatus::kInvalid) {
      close(CloseReason::kProtocolError, "reuse chunk: " + r.error);
      return;
    }
    if (r.end) {
      chunk_rx_.drain(r.consumed);
      down_end_ = true;
      end = true;
      break;
    }
    codec::takePacket(chunk_rx_, r, plain);
  }
  if (down_end_ && !chunk_rx_.empty()) {
    close(CloseReason::kProtocolError, "server sent bytes after its end chunk");
    return;
  }
  // The server ended the connection in the middle of the flow: that ends
  // the flow's down direction too (and the connection is not reusable).
  if (inner_eof_ && !down_end_) end = true;
  if (!plain.empty() || end) deliver(plain, end);
}

bool VlessClientStream::reusable() const {
  return request_.reuse && header_sent_ && write_end_ && down_end_ && !inner_eof_ &&
         chunk_rx_.empty() && inner_ != nullptr && release_ != nullptr;
}

void VlessClientStream::deliver(BufferChain& data, bool end_stream) {
  if (callbacks_ == nullptr) {
    data.clear();
    return;
  }
  if (!rx_.empty() && &data != &rx_) {
    // Bytes the user left in rx_ last time stay in front.
    rx_.moveFrom(data);
    callbacks_->onData(rx_, end_stream);
    return;
  }
  callbacks_->onData(data, end_stream);
}

void VlessClientStream::onAboveHighWatermark() {
  if (!closed_ && callbacks_ != nullptr) callbacks_->onAboveHighWatermark();
}

void VlessClientStream::onBelowLowWatermark() {
  if (!closed_ && callbacks_ != nullptr) callbacks_->onBelowLowWatermark();
}

void VlessClientStream::onClose(CloseReason reason, const std::string& detail) {
  if (closed_) return;
  if (waitsForPrefix() && !response_done_ &&
      (reason == CloseReason::kRemoteClose || reason == CloseReason::kLocalClose ||
       reason == CloseReason::kReset)) {
    close(CloseReason::kConnectFailed,
          "server closed before want_ip: dial failed (" + detail + ")");
    return;
  }
  close(reason, detail);
}

void VlessClientStream::close(CloseReason reason, const std::string& detail) {
  if (closed_) return;
  closed_ = true;
  if (reason == CloseReason::kLocalClose && reusable()) {
    // Both directions ended with their chunks: the connection is idle and
    // goes back to the pool, with the callbacks the pool gives it.
    // The pool must see what the server sends (or its close) while idle.
    for (; read_disabled_ > 0; --read_disabled_) inner_->readDisable(false);
    release_(std::move(inner_));
    rx_.clear();
    StreamCallbacks* cb = std::exchange(callbacks_, nullptr);
    if (cb != nullptr) cb->onClose(reason, detail);
    return;
  }
  inner_->close(reason);
  rx_.clear();
  StreamCallbacks* cb = std::exchange(callbacks_, nullptr);
  if (cb != nullptr) cb->onClose(reason, detail);
}

}  // namespace vt::stream
