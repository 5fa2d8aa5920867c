// TcpSession: one app TCP connection relayed to the server over VLESS.
//
//   app <-> TcpFlow (lwIP) <-> TcpSession <-> VlessClientStream[Tls[Tcp]] <-> server
//
// Backpressure both ways, nothing absorbed:
//   up   (app -> server): bytes go to the outbound at once; the flow is told
//        consumed() only while the outbound is below its high watermark, so
//        lwIP's window closes when the server side is slow.
//   down (server -> app): at most writeSpace() goes to the flow; the rest
//        (one read) is held and the outbound read-disabled until onWritable.
// A port-53 flow hijacked to dns.resolver (with the cache on) is also shown,
// both ways, to a DnsTcpTap, which stores matching answers in the cache; it
// reads the bytes in place as they pass and never holds the relay back.
// A flow a routing rule sends `direct` runs the same relay over a plain
// socket to the destination itself (Client::makeDirect: marked and
// protected so that it leaves by the real interface); its SYN is answered
// only once that socket connected, so a refusal reaches the app as one.
// When a rule naming domains could still decide and the address has no
// name from DNS, the session sniffs: it accepts the flow at once, holds
// the app's first bytes (within lwIP's window: the app is not told they
// were consumed) until they show a TLS SNI or HTTP Host, prove to be
// neither, or kSniffMs pass (protocols where the server speaks first),
// then routes by the name and dials; the held bytes go first.
// Lifetime: created on the app's SYN (before the flow exists), closed once
// (one log line), deleted by the Client through the loop's deferred delete
// once the outbound reported its onClose.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <string>

#include "buffer/buffer_chain.h"
#include "event/loop.h"
#include "event/timer.h"
#include "netstack/flow_key.h"
#include "netstack/tcp_flow.h"
#include "stream/stream.h"

namespace vt::stream {
class VlessClientStream;
}

namespace vt::client {

class Client;
class DnsTcpTap;

class TcpSession final : public event::DeferredDeletable, private netstack::TcpFlow::Callbacks {
 public:
  enum class Route : uint8_t { kProxy, kDirect, kSniff };
  // How long a sniffing flow waits for a name in its first bytes.
  static constexpr uint64_t kSniffMs = 300;

  // `name`: the destination's name when known from DNS (logs, dial_by_name).
  TcpSession(Client& client, const netstack::FlowKey& key, Route route = Route::kProxy,
             std::string name = {});
  ~TcpSession() override;
  TcpSession(const TcpSession&) = delete;
  TcpSession& operator=(const TcpSession&) = delete;

  // Called once after insertion in the table: answers the SYN (immediate
  // mode) and dials (or waits for the server address).
  void start();
  // The server address became known (or could not be resolved).
  void dialReady();
  void dialImpossible(const std::string& why);
  // The app completed the handshake.
  void attach(std::unique_ptr<netstack::TcpFlow> flow);
  // Idempotent. `reset`: RST to the app (failure), else a FIN.
  void close(const char* reason, bool reset);

  const netstack::FlowKey& key() const { return key_; }
  uint64_t id() const { return id_; }
  bool closed() const { return closed_; }
  uint64_t startMs() const { return startMs_; }
  uint64_t lastActivityMs() const { return lastActivityMs_; }
  bool direct() const { return direct_; }
  uint64_t upBytes() const { return up_bytes_; }
  uint64_t downBytes() const { return down_bytes_; }
  // The destination's name, from DNS or sniffed; empty when none.
  const std::string& name() const { return name_; }

 private:
  friend class Client;

  // TcpFlow::Callbacks (app side)
  void onData(BufferChain& data, bool endStream) override;
  void onWritable() override;
  void onClosed(netstack::TcpFlow::CloseReason reason) override;
  // Server side. StreamCallbacks::onData has the same signature as the
  // flow's, so the stream talks to this adapter instead.
  struct OutCallbacks final : stream::StreamCallbacks {
    explicit OutCallbacks(TcpSession& s) : session(s) {}
    void onConnected() override { session.onOutConnected(); }
    void onData(BufferChain& data, bool end_stream) override {
      session.onServerData(data, end_stream);
    }
    void onAboveHighWatermark() override { session.onOutAbove(); }
    void onBelowLowWatermark() override { session.onOutBelow(); }
    void onClose(stream::CloseReason reason, const std::string& detail) override {
      session.onOutClose(reason, detail);
    }
    TcpSession& session;
  };
  void onOutConnected();
  void onOutAbove();
  void onOutBelow();
  void onOutClose(stream::CloseReason reason, const std::string& detail);

  void dial();
  void onServerData(BufferChain& data, bool end_stream);
  void flushUp();
  void pumpDown();
  void setOutReadDisabled(bool disable);
  void checkFinished();
  void armTimer();
  void onTimer();
  void touch();
  // Shows the tap app bytes (queries) or server bytes (answers).
  void tapDns(const BufferChain& data, bool answers);

  Client& client_;
  event::Loop& loop_;
  netstack::FlowKey key_;
  uint64_t id_;
  uint64_t startMs_;
  uint64_t lastActivityMs_;
  uint64_t finishStartMs_ = 0;  // one direction finished: drain clock runs
  uint64_t drainDeadline() const;
  std::list<TcpSession*>::iterator lru_;
  event::Timer timer_;
  OutCallbacks outCb_{*this};

  std::unique_ptr<netstack::TcpFlow> flow_;
  stream::StreamPtr out_;
  stream::StreamPtr retired_;  // a failed pooled outbound, replaced by a fresh one
  bool pooled_ = false;        // out_ runs over a pooled connection
  bool poolRetried_ = false;   // ... and that failed once: no pool any more
  BufferChain up_;    // app bytes not yet given to the outbound (no address yet)
  BufferChain down_;  // server bytes the flow had no room for (one read at most)
  size_t unconsumed_ = 0;  // given to the outbound, not yet consumed() on the flow
  // Hijacked DNS with the cache on; null otherwise, and once it stopped.
  std::unique_ptr<DnsTcpTap> dnsTap_;

  // Sniffing: reads the held bytes for a name; routes and dials once
  // decided (or the deadline, or the app's FIN, came).
  void trySniff();
  void endSniff(const std::string& name, const char* protocol);

  bool direct_;
  bool sniffing_;
  std::string name_;  // from DNS or sniffed (logs, dial_by_name)
  bool nameFromDns_;
  // The outbound when it asked the server for name_ with want_ip (owned by
  // out_): its answer teaches the Client the address the server dialled.
  stream::VlessClientStream* named_ = nullptr;
  bool waitMode_;
  bool accepted_ = false;  // acceptPending was called
  bool outConnected_ = false;
  bool outAbove_ = false;
  bool outReadDisabled_ = false;
  bool outClosed_ = false;  // onClose came from the outbound
  bool appFin_ = false;     // the app sent FIN
  bool upFinSent_ = false;  // ...and it was passed to the outbound
  bool serverFin_ = false;  // the outbound delivered end_stream
  bool downFinSent_ = false;  // shutdownWrite() on the flow
  bool closed_ = false;
  uint64_t up_bytes_ = 0;
  uint64_t down_bytes_ = 0;
};

}  // namespace vt::client
