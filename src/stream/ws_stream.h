// WsStream: WebSocket (RFC 6455) over any inner Stream (TCP or TLS),
// carrying the byte stream of the layer above in binary frames. The wire
// work (frames, the upgrade request and its 101) is codec/websocket.h; this
// layer drives it.
//
//   user --write--> [pending, before the upgrade] --binary frames--> inner
//   user <-onData-- payloads <--[WsFrameDecoder]-- inner
//
// Client: connect() connects the inner stream, then sends the upgrade
// request; onConnected after the server's 101. Writes before then are
// queued (bounded by `wm`: above wm.high onAboveHighWatermark). With
// early_data > 0 the first min(early_data, queued) bytes ride in the
// request's Sec-WebSocket-Protocol (base64url, v2ray/Xray style) and are
// not sent again as frames, unless the 101 does not echo that header (the
// server ignored it): then they go first, as a frame. An answer other than a valid 101 closes with
// kProtocolError ("websocket: server answered 404").
//
// Server: create over an accepted stream that is already started (for TLS,
// TlsStream::startServer() called), then startServer(). A valid upgrade for
// the expected path/host is answered with 101 (echoing an early-data
// protocol), onConnected follows, then the early data (if any) arrives as
// the first onData. Early data is always taken when the header holds one
// strict base64url value: the client does not resend it, so refusing it
// would lose bytes; there is no option to turn it off.
// Passthrough (fallback web server): a request that is not a WebSocket
// upgrade, is not HTTP at all, or asks for another path/host does not
// close the stream: onConnected, then every byte read so far, unmodified,
// as onData, and from then on the stream is transparent both ways.
//
// Half-close (WebSocket has none; this is our convention):
//   - write(..., end_stream=true) sends the data, then a close frame (a
//     client without close_on_end sends the close only once the server's
//     close or EOF came), and nothing after it (later writes are dropped).
//   - A received close frame, or an inner EOF between frames, is
//     onData(..., true). An EOF inside a frame is a truncation: kReset.
//   - A received close is answered when our own direction ends (the user's
//     end_stream), not at once: until then our data keeps flowing, as
//     RFC 6455 5.5.1 allows for a message being sent, stretched to the
//     rest of our direction. The close we send then echoes the peer's code.
//   - Once close frames went both ways (or our close and an inner EOF) and
//     the user has had its end_stream, the inner stream is half-closed; the
//     inner stream's own close (both directions finished) is our onClose.
//   A strict RFC peer (gorilla, as in v2ray/Xray) answers our close at once
//   and sends nothing more: against such a peer, ending our direction ends
//   both. Two vless-tun ends get a real half-close.
// Outgoing frames: one binary frame per write, split at kMaxFramePayload;
// client frames masked in place with a fresh key per frame, server
// payloads move uncopied. Pings get a pong with the same payload (none
// while the inner stream is above wm.high: a ping flood that does not read
// cannot grow our queue); pongs are ignored. Text frames are refused
// (close 1003). A decoder error sends the decoder's close code (best
// effort: it is written, then the inner stream is closed abortively) and
// closes with kProtocolError.
// close() is abortive (no close frame), idempotent; after it only the one
// onClose. readDisable(false) delivers frames that arrived meanwhile at
// once, from inside that call.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>

#include "codec/websocket.h"
#include "event/loop.h"
#include "event/timer.h"
#include "stream/stream.h"

namespace vt::stream {

struct WsClientOptions {
  std::string path = "/";
  std::string host;  // the Host header
  codec::WsHeaders extra_headers;
  // Most bytes of the stream to carry in the upgrade request (0: off);
  // capped at codec::kWsMaxEarlyData.
  size_t early_data = 0;
  size_t max_message = codec::kWsDefaultMaxMessage;  // for the decoder
  // What write(..., end_stream) sends while the server has not closed:
  // false (the default, as v2ray's and Xray's clients): nothing; our close
  // goes once the server's close (or EOF) arrives. A close from us would
  // end both directions at a v2ray/Xray server, which answers a close at
  // once and sends no more. true: a close frame at once, which vless-server
  // takes as the end of the upload only (a real half-close; the target
  // gets its FIN).
  bool close_on_end = false;
};

struct WsServerOptions {
  // The path the upgrade must ask for, compared exactly with the request
  // target before any '?'; empty accepts any.
  std::string path;
  // The Host the upgrade must name (ASCII case-insensitive; without a port
  // here, the request's ":port" is ignored); empty accepts any.
  std::string host;
  size_t max_message = codec::kWsDefaultMaxMessage;  // for the decoder
  // With a loop: when our direction ends first, the close frame waits this
  // long (the peer's own close, or its EOF, sends it at once). v2ray's and
  // Xray's clients take any close or EOF as an error and drop what they
  // still hold for their app, so a close right behind the last data can
  // cut a download's tail there; the delay lets them hand it on first.
  event::Loop* loop = nullptr;
  uint64_t close_delay_ms = 0;
};

class WsStream : public Stream, public event::DeferredDeletable, private StreamCallbacks {
 public:
  // The largest payload we put in one frame; longer writes are split.
  static constexpr size_t kMaxFramePayload = 64 * 1024;

  // `wm` bounds what is queued before the upgrade ends; afterwards the
  // inner stream's watermarks are passed up.
  static std::unique_ptr<WsStream> createClient(StreamPtr inner, WsClientOptions o,
                                                Watermarks wm = {});
  static std::unique_ptr<WsStream> createServer(StreamPtr accepted, WsServerOptions o,
                                                Watermarks wm = {});
  ~WsStream() override;
  WsStream(const WsStream&) = delete;
  WsStream& operator=(const WsStream&) = delete;

  void setCallbacks(StreamCallbacks& cb) override { callbacks_ = &cb; }
  void connect() override;
  void write(BufferChain& data, bool end_stream) override;
  void readDisable(bool disable) override;
  void close(CloseReason reason) override { close(reason, ""); }
  size_t bufferedBytes() const override;
  std::string peerName() const override { return inner_->peerName(); }

  void close(CloseReason reason, const std::string& detail);
  // Server: starts reading the upgrade request (bytes that arrived before
  // are kept).
  void startServer();
  // Server: the request was not ours and the stream is transparent.
  bool passthrough() const { return state_ == State::kPassthrough; }
  std::string passthroughReason() const { return passthrough_reason_; }
  // Server: the accepted request's target and Host, for logs. Client: what
  // was asked for.
  std::string path() const { return path_; }
  std::string host() const { return host_; }
  // The upgrade is done (or, server, passthrough began).
  bool open() const { return state_ == State::kOpen || state_ == State::kPassthrough; }
  Stream& inner() { return *inner_; }

 private:
  enum class State {
    kIdle,         // client: before connect(); server: before startServer()
    kConnecting,   // client: inner connecting
    kHandshake,    // client: request sent, waiting for the 101; server: reading the request
    kOpen,         // frames both ways
    kPassthrough,  // server: raw bytes both ways
  };

  WsStream(StreamPtr inner, bool is_server, Watermarks wm, size_t max_message);

  // Inner stream events.
  void onConnected() override;
  void onData(BufferChain& data, bool end_stream) override;
  void onAboveHighWatermark() override;
  void onBelowLowWatermark() override;
  void onClose(CloseReason reason, const std::string& detail) override;

  void sendRequest();
  void process();  // runs the handshake / decoder on in_, delivers to the user
  bool readResponse();
  bool readRequest();
  void startPassthrough(std::string why);
  bool readFrames();
  bool deliver(BufferChain& data, bool end);
  void flushPending();
  void sendFrames(BufferChain& data);
  void sendClose();
  void maybeEndInner();
  void fail(uint16_t ws_code, const std::string& detail);
  const std::array<uint8_t, 4>* nextMask();
  void updateWatermarks();

  StreamPtr inner_;
  Watermarks wm_;
  bool is_server_;
  // write(..., true) sends our close now (see WsClientOptions::close_on_end).
  bool closeOnEnd() const;
  // Our direction ended: our close now, later (close_delay_ms), or on the
  // peer's close.
  void endOurs();
  // The upgrade is through (either role): queued writes go out, then
  // onConnected. False if the stream closed meanwhile.
  bool announceOpen();
  WsClientOptions client_;
  WsServerOptions server_;
  codec::WsFrameDecoder decoder_;
  StreamCallbacks* callbacks_ = nullptr;
  State state_ = State::kIdle;
  std::string key_;       // client: the Sec-WebSocket-Key sent (base64)
  std::string protocol_;  // client: the early data sent, as in the header
  std::string path_;
  std::string host_;
  std::string passthrough_reason_;
  uint64_t rng_ = 0;  // mask keys (splitmix64, seeded from the OS)
  std::unique_ptr<event::Timer> close_timer_;  // server: close_delay_ms
  BufferChain early_sent_;  // client: early data, until the 101 (resent if not echoed)
  std::array<uint8_t, 4> mask_{};
  BufferChain pending_;  // written by the user before the upgrade ended
  BufferChain in_;       // from the inner stream, not yet decoded/delivered
  BufferChain early_;    // server: early data to deliver first
  uint16_t peer_close_code_ = 0;
  int read_disable_count_ = 0;
  bool closed_ = false;
  bool write_end_ = false;       // the user asked for end_stream
  bool close_sent_ = false;      // our close frame (or passthrough end) went out
  bool close_received_ = false;  // the peer's close frame arrived
  bool inner_eof_ = false;
  bool inner_ended_ = false;  // inner half-closed by us
  bool peer_eof_ = false;     // end_stream delivered to the user
  bool processing_ = false;   // process() is running (re-entrancy guard)
  bool redrive_ = false;
  bool inner_above_ = false;
  WatermarkEdges edges_;
};

}  // namespace vt::stream
