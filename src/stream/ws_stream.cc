#include "stream/ws_stream.h"

#include <sys/random.h>
#include <sys/types.h>

#include <algorithm>
#include <random>

#include "core/log.h"

namespace vt::stream {

namespace {

// Bytes from the OS; std::random_device if getrandom() cannot serve them
// (no entropy yet at early boot on a router, or a seccomp filter).
void osRandom(void* p, size_t n) {
  auto* b = static_cast<uint8_t*>(p);
  size_t got = 0;
  while (got < n) {
    ssize_t r = getrandom(b + got, n - got, GRND_NONBLOCK);
    if (r <= 0) break;
    got += static_cast<size_t>(r);
  }
  if (got < n) {
    std::random_device rd;
    for (; got < n; ++got) b[got] = static_cast<uint8_t>(rd());
  }
}

char lowerAscii(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool equalsNoCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (lowerAscii(a[i]) != lowerAscii(b[i])) return false;
  }
  return true;
}

// "example.com:8443" -> "example.com"; "[::1]:443" -> "[::1]".
std::string_view withoutPort(std::string_view host) {
  size_t colon = host.rfind(':');
  if (colon == std::string_view::npos) return host;
  if (host.front() == '[' && host.find(']') > colon) return host;   // inside [v6]
  if (host.front() != '[' && host.find(':') != colon) return host;  // bare v6
  return host.substr(0, colon);
}

bool hostMatches(std::string_view expected, std::string_view got) {
  if (expected.empty()) return true;
  if (equalsNoCase(expected, got)) return true;
  // An expected host without a port accepts the request's host:port.
  return withoutPort(expected) == expected && equalsNoCase(expected, withoutPort(got));
}

}  // namespace

std::unique_ptr<WsStream> WsStream::createClient(StreamPtr inner, WsClientOptions o,
                                                 Watermarks wm) {
  size_t max_message = o.max_message;
  auto s = std::unique_ptr<WsStream>(new WsStream(std::move(inner), false, wm, max_message));
  s->path_ = o.path;
  s->host_ = o.host;
  s->client_ = std::move(o);
  return s;
}

std::unique_ptr<WsStream> WsStream::createServer(StreamPtr accepted, WsServerOptions o,
                                                 Watermarks wm) {
  size_t max_message = o.max_message;
  auto s = std::unique_ptr<WsStream>(new WsStream(std::move(accepted), true, wm, max_message));
  s->server_ = std::move(o);
  return s;
}

WsStream::WsStream(StreamPtr inner, bool is_server, Watermarks wm, size_t max_message)
    : inner_(std::move(inner)),
      wm_(wm),
      is_server_(is_server),
      decoder_(codec::WsDecoderOptions{is_server ? codec::WsRole::kServer : codec::WsRole::kClient,
                                       max_message, false}) {
  if (!is_server_) osRandom(&rng_, sizeof rng_);
  inner_->setCallbacks(*this);
}

WsStream::~WsStream() {
  callbacks_ = nullptr;
  closed_ = true;
  close_timer_.reset();
}

void WsStream::connect() {
  if (closed_ || is_server_ || state_ != State::kIdle) return;
  state_ = State::kConnecting;
  inner_->connect();
}

void WsStream::startServer() {
  if (closed_ || !is_server_ || state_ != State::kIdle) return;
  state_ = State::kHandshake;
  process();  // the request may be here already
}

void WsStream::onConnected() {
  // Server: the inner stream's own handshake (TLS) is of no interest.
  if (closed_ || is_server_ || state_ != State::kConnecting) return;
  sendRequest();
  if (closed_) return;
  process();
}

void WsStream::sendRequest() {
  codec::WsClientRequest req;
  req.path = client_.path;
  req.host = client_.host;
  req.extra_headers = client_.extra_headers;
  osRandom(req.key.data(), req.key.size());
  key_ = codec::base64Encode(req.key.data(), req.key.size());
  // What the user wrote so far (a VLESS header, usually) rides along.
  size_t n = std::min({client_.early_data, codec::kWsMaxEarlyData, pending_.size()});
  if (n > 0) {
    req.early_data.resize(n);
    pending_.copyOut(0, req.early_data.data(), n);
    protocol_ = codec::base64Encode(req.early_data.data(), n, codec::Base64Alphabet::kUrl);
  }
  BufferChain out;
  Status st = codec::encodeWsRequest(req, out);
  if (!st.ok()) {
    close(CloseReason::kProtocolError,
          "websocket: cannot build the request: " + st.error().message);
    return;
  }
  // Kept until the 101 says whether the server took them.
  early_sent_.moveFrom(pending_, n);
  state_ = State::kHandshake;
  inner_->write(out, false);
  if (closed_) return;
  updateWatermarks();  // the early data left the queue
}

void WsStream::process() {
  // One loop at a time: user callbacks made from here (onConnected, onData,
  // watermarks) may call readDisable/write/close, which end up here again;
  // the running loop picks their effect up.
  if (processing_) {
    redrive_ = true;
    return;
  }
  processing_ = true;
  for (;;) {
    redrive_ = false;
    if (closed_) break;
    bool progress = false;
    switch (state_) {
      case State::kIdle:
      case State::kConnecting: break;
      case State::kHandshake: progress = is_server_ ? readRequest() : readResponse(); break;
      case State::kOpen: progress = readFrames(); break;
      case State::kPassthrough: {
        if (read_disable_count_ > 0 || peer_eof_ || (in_.empty() && !inner_eof_)) break;
        progress = deliver(in_, inner_eof_);
        break;
      }
    }
    if (!progress && !redrive_) break;
  }
  processing_ = false;
}

bool WsStream::readResponse() {
  codec::WsResponseParseResult r = codec::parseWsResponse(in_, key_, protocol_);
  if (r.status == codec::DecodeStatus::kNeedMore) {
    if (inner_eof_) {
      close(CloseReason::kProtocolError, "websocket: connection closed before the server's answer");
    }
    return false;
  }
  if (r.status == codec::DecodeStatus::kInvalid) {
    std::string detail = r.status_code != 0 && r.status_code != 101
                             ? "websocket: server answered " + std::to_string(r.status_code)
                             : r.error;
    close(CloseReason::kProtocolError, detail);
    return false;
  }
  in_.drain(r.consumed);  // what follows the head is frames
  if (!early_sent_.empty() && !r.protocol_echoed) {
    // A server that takes early data echoes its header; this one did not
    // (v2ray 4 without early data configured): the bytes go again, first.
    VT_DEBUG("ws %s: early data not echoed; %zu bytes resent as a frame", peerName().c_str(),
             early_sent_.size());
    early_sent_.moveFrom(pending_);
    pending_.moveFrom(early_sent_);
  }
  early_sent_.clear();
  state_ = State::kOpen;
  VT_DEBUG("ws %s: upgraded %s%s", peerName().c_str(), path_.c_str(),
           protocol_.empty() ? "" : " (early data)");
  return announceOpen();
}

bool WsStream::readRequest() {
  codec::WsRequestParseResult r = codec::parseWsRequest(in_);
  switch (r.status) {
    case codec::WsRequestStatus::kNeedMore:
      if (!inner_eof_) return false;
      startPassthrough("connection ended inside the request head");
      return true;
    case codec::WsRequestStatus::kNotWebSocket:
    case codec::WsRequestStatus::kInvalid: startPassthrough(r.error); return true;
    case codec::WsRequestStatus::kDone: break;
  }
  codec::WsRequest& q = r.request;
  std::string_view target = q.path;
  target = target.substr(0, target.find('?'));
  if (!server_.path.empty() && target != server_.path) {
    startPassthrough("websocket upgrade for another path: " + q.path);
    return true;
  }
  if (!hostMatches(server_.host, q.host)) {
    startPassthrough("websocket upgrade for another host: " + q.host);
    return true;
  }
  path_ = q.path;
  host_ = q.host;
  in_.drain(r.consumed);  // a pipelined first frame stays
  std::string_view protocol;
  if (q.early_data) {
    early_.append(*q.early_data);
    protocol = q.protocol;
  }
  BufferChain out;
  codec::encodeWsResponse(q.key, protocol, out);
  inner_->write(out, false);
  if (closed_) return false;
  state_ = State::kOpen;
  VT_DEBUG("ws %s: accepted %s host %s, %zu bytes early data", peerName().c_str(), path_.c_str(),
           host_.c_str(), early_.size());
  return announceOpen();
}

bool WsStream::announceOpen() {
  flushPending();  // before anything written from onConnected
  if (closed_) return false;
  if (callbacks_ != nullptr) callbacks_->onConnected();
  if (closed_) return false;
  updateWatermarks();
  return true;
}

void WsStream::startPassthrough(std::string why) {
  state_ = State::kPassthrough;
  passthrough_reason_ = std::move(why);
  VT_DEBUG("ws %s: passthrough: %s", peerName().c_str(), passthrough_reason_.c_str());
  if (!pending_.empty() || write_end_) {
    inner_->write(pending_, write_end_);
    if (closed_) return;
    close_sent_ = write_end_;
    inner_ended_ = write_end_;
  }
  if (callbacks_ != nullptr) callbacks_->onConnected();
  if (closed_) return;
  updateWatermarks();
}

bool WsStream::readFrames() {
  if (peer_eof_ || read_disable_count_ > 0) return false;
  if (!early_.empty()) return deliver(early_, false);
  Result<std::optional<codec::WsFrame>> r = decoder_.decode(in_);
  if (!r.ok()) {
    fail(decoder_.closeCode(), "websocket: " + r.error().message);
    return false;
  }
  if (!r.value()) {
    if (!inner_eof_) return false;
    if (!in_.empty()) {
      close(CloseReason::kReset, "websocket: connection closed inside a frame");
      return false;
    }
    BufferChain none;
    return deliver(none, true);  // a plain EOF (v2ray often just closes)
  }
  codec::WsFrame& f = *r.value();
  switch (f.opcode) {
    case codec::WsOpcode::kPing: {
      // A peer that pings without reading our pongs must not grow our
      // queue without bound: while the inner stream is above its high
      // watermark pings go unanswered (RFC 6455 5.5.3 lets a pong answer
      // only the latest ping).
      if (close_sent_ || inner_above_ || inner_->bufferedBytes() > wm_.high) return true;
      BufferChain out;
      codec::encodeWsFrame(codec::WsOpcode::kPong, true, f.payload, nextMask(), out);
      inner_->write(out, false);
      return true;
    }
    case codec::WsOpcode::kPong: return true;  // unsolicited or not: nothing to do
    case codec::WsOpcode::kClose: {
      close_received_ = true;
      peer_close_code_ = f.close_code;
      if (f.close_code != 0 && f.close_code != codec::kWsCloseNormal) {
        VT_DEBUG("ws %s: peer closed with %u %s", peerName().c_str(), f.close_code,
                 f.close_reason.c_str());
      }
      in_.clear();  // nothing may follow a close
      BufferChain none;
      return deliver(none, true);
    }
    default: break;
  }
  if (f.message_opcode == codec::WsOpcode::kText) {
    fail(1003, "websocket: text frame (unsupported data)");
    return false;
  }
  if (f.payload.empty()) return true;
  return deliver(f.payload, false);
}

bool WsStream::deliver(BufferChain& data, bool end) {
  if (end) peer_eof_ = true;
  if (callbacks_ != nullptr) callbacks_->onData(data, end);
  data.clear();  // what the user did not take
  if (closed_ || !end) return true;
  // A client that ended quietly (close_on_end off) answers now.
  if (state_ == State::kOpen && write_end_ && !close_sent_ && pending_.empty()) {
    sendClose();
  } else {
    maybeEndInner();
  }
  return true;
}

void WsStream::write(BufferChain& data, bool end_stream) {
  if (closed_ || write_end_) {
    data.clear();
    return;
  }
  write_end_ = end_stream;
  switch (state_) {
    case State::kOpen:
      sendFrames(data);
      if (end_stream && !closed_) endOurs();
      break;
    case State::kPassthrough:
      inner_->write(data, end_stream);
      if (closed_) return;
      close_sent_ = end_stream;
      inner_ended_ = end_stream;
      break;
    default: pending_.moveFrom(data); break;
  }
  if (closed_) return;
  updateWatermarks();
}

void WsStream::flushPending() {
  if (!pending_.empty()) sendFrames(pending_);
  if (closed_) return;
  if (write_end_ && !close_sent_) endOurs();
}

void WsStream::endOurs() {
  if (!closeOnEnd()) return;  // the peer's close or EOF sends ours (deliver())
  if (is_server_ && server_.loop != nullptr && server_.close_delay_ms > 0 && !peer_eof_) {
    if (close_timer_ == nullptr) {
      close_timer_ = std::make_unique<event::Timer>(*server_.loop);
      close_timer_->start(server_.close_delay_ms, [this] {
        if (!closed_ && !close_sent_ && state_ == State::kOpen) sendClose();
      });
    }
    return;
  }
  sendClose();
}

bool WsStream::closeOnEnd() const {
  return is_server_ || client_.close_on_end || peer_eof_;
}

void WsStream::sendFrames(BufferChain& data) {
  if (data.empty()) return;
  BufferChain out;
  while (!data.empty()) {
    BufferChain part;
    if (data.size() <= kMaxFramePayload) {
      part.moveFrom(data);
    } else {
      part.moveFrom(data, kMaxFramePayload);
    }
    codec::encodeWsFrame(codec::WsOpcode::kBinary, true, part, nextMask(), out);
  }
  inner_->write(out, false);
}

void WsStream::sendClose() {
  // Our direction is done. If the peer closed first, this is the answer to
  // its close and echoes its code.
  uint16_t code = close_received_ ? peer_close_code_ : codec::kWsCloseNormal;
  BufferChain out;
  if (!codec::encodeWsClose(code, "", nextMask(), out)) {
    codec::encodeWsClose(codec::kWsCloseNormal, "", nextMask(), out);
  }
  close_sent_ = true;
  inner_->write(out, false);
  if (closed_) return;
  maybeEndInner();
}

void WsStream::maybeEndInner() {
  // Both directions are over once our close went out and the user had the
  // peer's end: then the inner stream ends ours, and its close (both ways
  // finished) becomes our onClose. Not earlier: frames held while reading
  // is disabled must not be lost to an inner stream that finished.
  if (inner_ended_ || closed_ || state_ != State::kOpen || !close_sent_ || !peer_eof_) return;
  inner_ended_ = true;
  BufferChain none;
  inner_->write(none, true);
}

void WsStream::fail(uint16_t ws_code, const std::string& detail) {
  if (closed_) return;
  if (state_ == State::kOpen && !close_sent_) {
    // Best effort: the inner write usually reaches the socket at once, but
    // the abortive close below may cut it.
    BufferChain out;
    if (codec::encodeWsClose(ws_code, "", nextMask(), out)) {
      close_sent_ = true;
      inner_->write(out, false);
    }
  }
  close(CloseReason::kProtocolError, detail);
}

const std::array<uint8_t, 4>* WsStream::nextMask() {
  if (is_server_) return nullptr;
  // splitmix64: unpredictable enough for masking (which only keeps a
  // proxy in the path from seeing attacker-chosen bytes), seeded from the
  // OS per stream, and 8 bytes of state instead of a 5 KiB mt19937.
  rng_ += 0x9e3779b97f4a7c15ull;
  uint64_t z = rng_;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  for (size_t i = 0; i < 4; ++i) mask_[i] = static_cast<uint8_t>(z >> (8 * i));
  return &mask_;
}

void WsStream::readDisable(bool disable) {
  if (closed_) return;
  if (disable) {
    ++read_disable_count_;
  } else {
    if (read_disable_count_ == 0) return;
    --read_disable_count_;
  }
  inner_->readDisable(disable);
  // Frames that arrived while disabled are waiting in in_.
  if (!disable && read_disable_count_ == 0 && !closed_) process();
}

size_t WsStream::bufferedBytes() const {
  return pending_.size() + inner_->bufferedBytes();
}

void WsStream::onData(BufferChain& data, bool end_stream) {
  if (closed_) {
    data.clear();
    return;
  }
  if (end_stream) inner_eof_ = true;
  if (close_received_ || peer_eof_) {
    data.clear();  // after the peer's close (or its EOF) nothing counts
  } else {
    in_.moveFrom(data);
  }
  if (state_ == State::kIdle || state_ == State::kConnecting) return;  // held until started
  process();
}

void WsStream::onAboveHighWatermark() {
  inner_above_ = true;
  updateWatermarks();
}

void WsStream::onBelowLowWatermark() {
  inner_above_ = false;
  updateWatermarks();
}

void WsStream::updateWatermarks() {
  if (closed_) return;
  edges_.update(pending_.size(), inner_above_, wm_, callbacks_);
}

void WsStream::onClose(CloseReason reason, const std::string& detail) {
  if (closed_) return;
  // The inner stream is closed already. A client whose connection ended
  // cleanly before the 101 met no WebSocket server.
  if (!is_server_ && state_ == State::kHandshake &&
      (reason == CloseReason::kRemoteClose || reason == CloseReason::kLocalClose)) {
    close(CloseReason::kProtocolError, "websocket: connection closed before the server's answer");
    return;
  }
  close(reason, detail.empty() ? "inner stream closed" : detail);
}

void WsStream::close(CloseReason reason, const std::string& detail) {
  if (closed_) return;
  closed_ = true;
  if (close_timer_) close_timer_->stop();
  inner_->close(reason);  // its onClose comes back to us and is ignored
  pending_.clear();
  in_.clear();
  early_.clear();
  StreamCallbacks* cb = std::exchange(callbacks_, nullptr);
  if (cb != nullptr) cb->onClose(reason, detail);
}

}  // namespace vt::stream
