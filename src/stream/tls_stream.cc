#include "stream/tls_stream.h"

#include "core/log.h"

namespace vt::stream {

std::unique_ptr<TlsStream> TlsStream::create(StreamPtr inner, std::shared_ptr<tls::TlsContext> ctx,
                                             Watermarks wm) {
  return std::unique_ptr<TlsStream>(new TlsStream(std::move(inner), std::move(ctx), wm));
}

TlsStream::TlsStream(StreamPtr inner, std::shared_ptr<tls::TlsContext> ctx, Watermarks wm)
    : inner_(std::move(inner)), ctx_(std::move(ctx)), wm_(wm) {
  if (ctx_) {
    is_server_ = ctx_->options().role == tls::Role::kServer;
    engine_ = tls::TlsEngine::create(ctx_);
  }
  inner_->setCallbacks(*this);
}

TlsStream::~TlsStream() {
  callbacks_ = nullptr;
  closed_ = true;  // the inner stream's destructor reports nothing, but be sure
}

void TlsStream::connect() {
  if (closed_ || started_) return;
  // Without an engine the inner connect still runs; the failure is
  // reported from onConnected, i.e. asynchronously.
  inner_->connect();
}

void TlsStream::startServer() {
  if (closed_ || started_) return;
  started_ = true;
  drive();  // a ClientHello may already be queued
}

void TlsStream::onConnected() {
  if (closed_ || started_) return;
  started_ = true;
  drive();
}

void TlsStream::drive() {
  if (closed_ || !started_) return;
  if (engine_ == nullptr) {
    close(CloseReason::kTlsError, "TLS engine could not be created");
    return;
  }
  if (delivering_) {
    redrive_ = true;  // finish the current onData first
    return;
  }
  if (!handshake_done_) {
    tls::TlsEngine::Status st = engine_->handshake();
    if (engine_->hasCiphertext()) {
      BufferChain out;
      engine_->takeCiphertext(out);
      inner_->write(out, false);
      if (closed_) return;
    }
    if (st == tls::TlsEngine::Status::kFailed) {
      close(CloseReason::kTlsError, engine_->failureReason());
      return;
    }
    if (st != tls::TlsEngine::Status::kOk) {
      if (inner_eof_) close(CloseReason::kTlsError, "TLS handshake: connection closed by peer");
      return;
    }
    handshake_done_ = true;
    VT_DEBUG("tls %s: %s alpn '%s'", peerName().c_str(), engine_->negotiatedVersion().c_str(),
             engine_->negotiatedAlpn().c_str());
    flushPlain();
    if (closed_) return;
    if (callbacks_ != nullptr) callbacks_->onConnected();
    if (closed_) return;
    updateWatermarks();  // plaintext queued before the handshake has moved on
    if (closed_) return;
  }
  readPlain();
}

void TlsStream::readPlain() {
  if (delivering_) {
    redrive_ = true;  // the running loop below picks it up
    return;
  }
  do {
    redrive_ = false;
    if (closed_ || peer_eof_ || read_disable_count_ > 0 || !handshake_done_) return;
    tls::TlsEngine::Status st = engine_->readPlain(plain_in_);
    if (st == tls::TlsEngine::Status::kFailed) {
      close(CloseReason::kTlsError, engine_->failureReason());
      return;
    }
    // An inner EOF without close_notify is a truncation, not an end: a
    // peer that was killed (or an attacker cutting the TCP connection) must
    // not look like a completed transfer. What arrived is delivered, then
    // the stream resets. A clean end always comes with close_notify.
    bool truncated = inner_eof_ && st == tls::TlsEngine::Status::kWantMore;
    bool end = st == tls::TlsEngine::Status::kClosed;
    if (truncated && plain_in_.empty()) {
      close(CloseReason::kReset, "connection closed without TLS close_notify (truncated)");
      return;
    }
    if (plain_in_.empty() && !end) return;
    if (end) peer_eof_ = true;
    // Handshake ciphertext (TLS 1.3 tickets, key updates) may be pending.
    if (engine_->hasCiphertext() && !shutdown_sent_) {
      BufferChain out;
      engine_->takeCiphertext(out);
      inner_->write(out, false);
      if (closed_) return;
    }
    if (callbacks_ == nullptr) return;
    delivering_ = true;
    callbacks_->onData(plain_in_, end);
    delivering_ = false;
    if (truncated && !closed_) {
      close(CloseReason::kReset, "connection closed without TLS close_notify (truncated)");
      return;
    }
  } while (redrive_);
}

void TlsStream::write(BufferChain& data, bool end_stream) {
  if (closed_ || write_end_) {
    data.clear();
    return;
  }
  plain_out_.moveFrom(data);
  write_end_ = end_stream;
  if (handshake_done_) flushPlain();
  if (closed_) return;
  updateWatermarks();
}

void TlsStream::flushPlain() {
  if (closed_ || !handshake_done_ || shutdown_sent_) return;
  BufferChain out;
  while (!plain_out_.empty()) {
    size_t before = plain_out_.size();
    tls::TlsEngine::Status st = engine_->writePlain(plain_out_);
    if (st == tls::TlsEngine::Status::kFailed || st == tls::TlsEngine::Status::kClosed) {
      close(CloseReason::kTlsError, engine_->failureReason());
      return;
    }
    bool progress = engine_->hasCiphertext() || plain_out_.size() < before;
    engine_->takeCiphertext(out);
    if (!progress) break;
  }
  bool end = write_end_ && plain_out_.empty();
  if (end) {
    engine_->shutdown();
    engine_->takeCiphertext(out);
    shutdown_sent_ = true;
  }
  if (!out.empty() || end) inner_->write(out, end);
}

void TlsStream::readDisable(bool disable) {
  if (closed_) return;
  if (disable) {
    ++read_disable_count_;
  } else {
    if (read_disable_count_ == 0) return;
    --read_disable_count_;
  }
  inner_->readDisable(disable);
  // Records that arrived while disabled are waiting in the engine.
  if (!disable && read_disable_count_ == 0 && !closed_) readPlain();
}

size_t TlsStream::bufferedBytes() const {
  return plain_out_.size() + inner_->bufferedBytes();
}

void TlsStream::onData(BufferChain& data, bool end_stream) {
  if (closed_ || peer_eof_) {
    data.clear();
    return;
  }
  if (engine_ != nullptr) engine_->pushCiphertext(data);
  data.clear();
  if (end_stream) inner_eof_ = true;
  if (!started_) return;  // server: held until startServer()
  drive();
}

void TlsStream::onAboveHighWatermark() {
  inner_above_ = true;
  updateWatermarks();
}

void TlsStream::onBelowLowWatermark() {
  inner_above_ = false;
  flushPlain();
  if (closed_) return;
  updateWatermarks();
}

void TlsStream::updateWatermarks() {
  if (closed_) return;
  edges_.update(plain_out_.size(), inner_above_, wm_, callbacks_);
}

void TlsStream::onClose(CloseReason reason, const std::string& detail) {
  if (closed_) return;
  // The inner stream is closed already; report its reason as ours, except
  // that a handshake cut short is a TLS failure for the layer above.
  if (!handshake_done_ && started_ &&
      (reason == CloseReason::kRemoteClose || reason == CloseReason::kLocalClose)) {
    reason = CloseReason::kTlsError;
  }
  close(reason, detail.empty() ? "inner stream closed" : detail);
}

void TlsStream::close(CloseReason reason, const std::string& detail) {
  if (closed_) return;
  closed_ = true;
  inner_->close(reason);  // its onClose comes back to us and is ignored
  plain_out_.clear();
  StreamCallbacks* cb = std::exchange(callbacks_, nullptr);
  if (cb != nullptr) cb->onClose(reason, detail);
}

std::string TlsStream::sni() const {
  if (is_server_) return engine_ ? engine_->receivedServerName() : "";
  return ctx_ ? ctx_->options().server_name : "";
}

std::string TlsStream::alpn() const {
  return engine_ ? engine_->negotiatedAlpn() : "";
}

std::string TlsStream::version() const {
  return engine_ ? engine_->negotiatedVersion() : "";
}

}  // namespace vt::stream
