// TlsStream: TLS over any inner Stream, driving a sans-I/O tls::TlsEngine.
//
//   user --write--> [plaintext queue] --engine--> ciphertext --> inner
//   user <-onData-- [engine] <--ciphertext-- inner
//
// Client: connect() connects the inner stream, then handshakes; onConnected
// after the handshake. Server: create over an accepted inner stream and call
// startServer(); onConnected after the handshake.
// Half-close: write(..., true) sends close_notify and then half-closes the
// inner stream; the peer's close_notify, or a plain inner EOF, arrives as
// onData(..., true). close() is abortive (no close_notify).
// readDisable(false) delivers records that arrived meanwhile at once, from
// inside that call.
#pragma once

#include <memory>
#include <string>

#include "event/loop.h"
#include "stream/stream.h"
#include "tls/tls_engine.h"

namespace vt::stream {

class TlsStream : public Stream, public event::DeferredDeletable, private StreamCallbacks {
 public:
  // `wm` bounds plaintext queued before the handshake ends; afterwards the
  // inner stream's watermarks are passed up.
  static std::unique_ptr<TlsStream> create(StreamPtr inner, std::shared_ptr<tls::TlsContext> ctx,
                                           Watermarks wm = {});
  ~TlsStream() override;
  TlsStream(const TlsStream&) = delete;
  TlsStream& operator=(const TlsStream&) = delete;

  void setCallbacks(StreamCallbacks& cb) override { callbacks_ = &cb; }
  void connect() override;
  void write(BufferChain& data, bool end_stream) override;
  void readDisable(bool disable) override;
  void close(CloseReason reason) override { close(reason, ""); }
  size_t bufferedBytes() const override;
  std::string peerName() const override { return inner_->peerName(); }

  void close(CloseReason reason, const std::string& detail);
  void startServer();
  // Client: the configured server name. Server: the SNI the client sent.
  std::string sni() const;
  std::string alpn() const;
  std::string version() const;
  bool handshakeDone() const { return handshake_done_; }
  Stream& inner() { return *inner_; }

 private:
  TlsStream(StreamPtr inner, std::shared_ptr<tls::TlsContext> ctx, Watermarks wm);

  // Inner stream events.
  void onConnected() override;
  void onData(BufferChain& data, bool end_stream) override;
  void onAboveHighWatermark() override;
  void onBelowLowWatermark() override;
  void onClose(CloseReason reason, const std::string& detail) override;

  void drive();
  void readPlain();
  void flushPlain();
  void updateWatermarks();

  StreamPtr inner_;
  std::shared_ptr<tls::TlsContext> ctx_;
  std::unique_ptr<tls::TlsEngine> engine_;
  Watermarks wm_;
  StreamCallbacks* callbacks_ = nullptr;
  bool is_server_ = false;
  BufferChain plain_out_;  // written by the user, not yet encrypted
  BufferChain plain_in_;   // decrypted, handed to onData
  int read_disable_count_ = 0;
  bool started_ = false;  // handshake may run
  bool handshake_done_ = false;
  bool closed_ = false;
  bool write_end_ = false;      // user asked for end_stream
  bool shutdown_sent_ = false;  // close_notify + inner half-close sent
  bool inner_eof_ = false;
  bool peer_eof_ = false;    // end_stream delivered to the user
  bool delivering_ = false;  // inside our own onData (re-entrancy guard)
  bool redrive_ = false;
  bool inner_above_ = false;
  WatermarkEdges edges_;
};

}  // namespace vt::stream
