#include "client/tcp_session.h"

#include <algorithm>
#include <cinttypes>

#include "client/client.h"
#include "client/dns_tcp_tap.h"
#include "codec/sniff.h"
#include "route/rule_set.h"
#include "stream/vless_client_stream.h"
#include "core/log.h"
#include "netstack/net_stack.h"

namespace vt::client {
namespace {

// While both FINs were passed on, how often to look whether the outbound
// has flushed its last bytes (the relay then closes).
constexpr uint64_t kFlushPollMs = 20;

std::string endpoint(const netstack::IpAddress& ip, uint16_t port) {
  std::string host = ip.toString();
  if (ip.isV6()) host = "[" + host + "]";
  return host + ":" + std::to_string(port);
}

const char* outFailure(stream::CloseReason reason, bool connected) {
  switch (reason) {
    case stream::CloseReason::kConnectFailed: return "connect_failed";
    case stream::CloseReason::kTimeout: return connected ? "server_timeout" : "connect_timeout";
    case stream::CloseReason::kReset: return connected ? "server_reset" : "connect_failed";
    case stream::CloseReason::kProtocolError: return "protocol_error";
    case stream::CloseReason::kTlsError: return "tls_error";
    case stream::CloseReason::kResolveError: return "resolve_failed";
    case stream::CloseReason::kEvicted: return "server_evicted";
    default: return connected ? "server_closed" : "connect_failed";
  }
}

}  // namespace

TcpSession::TcpSession(Client& client, const netstack::FlowKey& key, Route route,
                       std::string name)
    : client_(client),
      loop_(client.loop()),
      key_(key),
      id_(client.nextFlowId()),
      startMs_(loop_.now()),
      lastActivityMs_(startMs_),
      timer_(loop_),
      direct_(route == Route::kDirect),
      sniffing_(route == Route::kSniff),
      name_(std::move(name)),
      nameFromDns_(!name_.empty()),
      waitMode_(direct_ || client.config().server.connect_mode == config::ConnectMode::kWait) {
  if (DnsCache* cache = client.dnsCache(); cache != nullptr && client.hijacksDns(key)) {
    dnsTap_ = std::make_unique<DnsTcpTap>(*cache);
    dnsTap_->setNames(client.dnsNames());
  }
}

TcpSession::~TcpSession() = default;

void TcpSession::start() {
  if (sniffing_) {
    // The app must speak before we know where it goes: its handshake
    // completes now, and nothing is dialled until the name is known.
    accepted_ = true;
    client_.stack().acceptPending(key_);
    armTimer();
    return;
  }
  if (!waitMode_) {
    // Immediate mode: the app's handshake completes now; its bytes wait in
    // the lwIP window (not consumed) until the outbound takes them.
    accepted_ = true;
    client_.stack().acceptPending(key_);
  }
  armTimer();
  if (direct_ || client_.serverAddressKnown()) {
    dial();
  } else {
    client_.waitForServerAddress(key_);
  }
}

void TcpSession::dialReady() {
  if (!closed_ && out_ == nullptr) dial();
}

void TcpSession::dialImpossible(const std::string& why) {
  if (closed_) return;
  VT_WARN("flow #%" PRIu64 ": cannot resolve the server: %s", id_, why.c_str());
  close("resolve_failed", true);
}

void TcpSession::dial() {
  // Wait mode is v1 only (the config enforces it): the server's want_ip
  // prefix is the "connected" signal the SYN-ACK waits for.
  if (direct_) {
    out_ = client_.makeDirect(key_);
  } else {
    // By name only when the name came from our DNS answers: a sniffed one
    // is the app's claim (domain fronting puts another name there), and
    // the address the app chose must stay the one reached.
    out_ = client_.makeOutbound(key_, waitMode_, !poolRetried_, &pooled_,
                                nameFromDns_ ? std::string_view(name_) : std::string_view(),
                                &named_);
  }
  if (out_ == nullptr) {
    client_.waitForServerAddress(key_);
    return;
  }
  out_->setCallbacks(outCb_);
  out_->connect();  // failures arrive through onClose, later
  flushUp();        // immediate mode: the header rides with the first bytes
}

void TcpSession::attach(std::unique_ptr<netstack::TcpFlow> flow) {
  flow_ = std::move(flow);
  touch();
  // May deliver held data, FIN or even onClosed synchronously.
  flow_->setCallbacks(this);
  if (closed_) return;
  pumpDown();
}

// --- app side ------------------------------------------------------------

void TcpSession::onData(BufferChain& data, bool endStream) {
  if (closed_) return;
  if (!data.empty()) {
    touch();
    size_t n = data.size();
    up_bytes_ += n;
    client_.countBytes(n, 0);
    unconsumed_ += n;
    if (dnsTap_ != nullptr) tapDns(data, false);
    up_.moveFrom(data);
  }
  if (endStream && !appFin_) {
    appFin_ = true;
    if (finishStartMs_ == 0) {
      finishStartMs_ = loop_.now();
      if (!sniffing_) armTimer();
    }
  }
  if (sniffing_) {
    trySniff();
    return;
  }
  flushUp();
}

void TcpSession::trySniff() {
  const size_t n = std::min(up_.size(), codec::kMaxSniffBytes);
  codec::SniffResult r;
  if (n > 0) {
    std::vector<uint8_t> head(n);
    up_.copyOut(0, head.data(), n);
    r = codec::sniffHost(head.data(), n);
  } else {
    r.status = codec::SniffStatus::kNeedMore;
  }
  const bool found = r.status == codec::SniffStatus::kFound;
  if (r.status == codec::SniffStatus::kNeedMore && !appFin_ && n < codec::kMaxSniffBytes &&
      loop_.now() < startMs_ + kSniffMs) {
    return;  // wait for more (onData) or the deadline (onTimer)
  }
  endSniff(found ? r.host : std::string(), found ? r.protocol : nullptr);
}

void TcpSession::endSniff(const std::string& name, const char* protocol) {
  sniffing_ = false;
  client_.countSniffed(!name.empty());
  const route::Decision d =
      client_.routeFor(key_.dst, key_.dstPort, route::Network::kTcp, name);
  if (!name.empty()) name_ = name;
  VT_DEBUG("flow #%" PRIu64 ": sniffed %s%s%s -> %s (rule %s)", id_,
           protocol != nullptr ? protocol : "nothing", name.empty() ? "" : " ", name.c_str(),
           route::actionName(d.action),
           d.matchedRule() ? std::to_string(d.rule + 1).c_str() : "default");
  client_.countRouted(d.action, true);
  if (d.action == route::Action::kBlock) {
    close("blocked", true);
    return;
  }
  direct_ = d.action == route::Action::kDirect;
  armTimer();  // sniff deadline -> connect deadline
  dial();
}

void TcpSession::onWritable() { pumpDown(); }

void TcpSession::onClosed(netstack::TcpFlow::CloseReason reason) {
  if (closed_) return;
  switch (reason) {
    case netstack::TcpFlow::CloseReason::kReset: close("app_reset", true); break;
    case netstack::TcpFlow::CloseReason::kAborted: close("app_aborted", true); break;
    case netstack::TcpFlow::CloseReason::kClosed:
      close(appFin_ && serverFin_ ? "done" : "app_closed", !(appFin_ && serverFin_));
      break;
  }
}

void TcpSession::flushUp() {
  if (closed_ || out_ == nullptr) return;
  bool fin = appFin_ && !upFinSent_;
  if (!up_.empty() || fin) {
    if (fin) upFinSent_ = true;
    out_->write(up_, fin);  // may report the high watermark synchronously
    if (closed_) return;
  }
  // Reopen the app's window only for bytes the outbound can hold.
  if (!outAbove_ && unconsumed_ > 0 && flow_ != nullptr) {
    size_t n = unconsumed_;
    unconsumed_ = 0;
    flow_->consumed(n);
  }
  checkFinished();
}

// --- server side ---------------------------------------------------------

void TcpSession::onOutConnected() {
  if (closed_) return;
  outConnected_ = true;
  if (!direct_) client_.noteServerReached();
  if (named_ != nullptr) {
    if (auto ip = named_->dialledIp()) client_.noteDialled(name_, *ip);
  }
  touch();
  if (waitMode_ && !accepted_) {
    accepted_ = true;
    if (!client_.stack().acceptPending(key_)) {
      // The app gave up (RST) or the held SYN expired meanwhile.
      close("app_gone", true);
      return;
    }
  }
  armTimer();  // connect deadline -> idle deadline
}

void TcpSession::onOutAbove() { outAbove_ = true; }

void TcpSession::onOutBelow() {
  outAbove_ = false;
  flushUp();
}

void TcpSession::onServerData(BufferChain& data, bool end_stream) {
  if (closed_) return;
  if (!data.empty()) {
    touch();
    size_t n = data.size();
    down_bytes_ += n;
    client_.countBytes(0, n);
    if (dnsTap_ != nullptr) tapDns(data, true);
    down_.moveFrom(data);
  }
  if (end_stream && !serverFin_) {
    serverFin_ = true;
    if (finishStartMs_ == 0) {
      finishStartMs_ = loop_.now();
      armTimer();
    }
  }
  pumpDown();
}

void TcpSession::pumpDown() {
  if (closed_) return;
  if (flow_ != nullptr && !down_.empty()) {
    const size_t before = down_.size();
    flow_->write(down_);
    // Bytes taken by lwIP toward a slow app are progress: drain_timeout
    // counts silence, and a download that moves is not silent.
    if (down_.size() < before) touch();
  }
  if (!down_.empty()) {
    // The app is slow (or not there yet): stop reading the server.
    setOutReadDisabled(true);
    return;
  }
  setOutReadDisabled(false);  // may deliver more at once (TLS), re-entering
  if (closed_ || !down_.empty()) return;
  if (serverFin_ && !downFinSent_ && flow_ != nullptr) {
    downFinSent_ = true;
    flow_->shutdownWrite();
  }
  checkFinished();
}

void TcpSession::tapDns(const BufferChain& data, bool answers) {
  if (answers) {
    client_.countDnsUnmatched(dnsTap_->onAnswerBytes(data, loop_.now()));
  } else {
    dnsTap_->onQueryBytes(data);
  }
  if (!dnsTap_->tapping()) {
    // A length below a DNS header: not DNS framing. The bytes still flow;
    // only the cache stops listening.
    VT_DEBUG("flow #%" PRIu64 ": %s are not length-framed DNS; not cached from here on", id_,
             answers ? "answers" : "queries");
    dnsTap_.reset();
  }
}

void TcpSession::setOutReadDisabled(bool disable) {
  if (out_ == nullptr || outClosed_ || outReadDisabled_ == disable) return;
  outReadDisabled_ = disable;
  out_->readDisable(disable);
}

void TcpSession::onOutClose(stream::CloseReason reason, const std::string& detail) {
  outClosed_ = true;
  if (closed_) return;
  // Over the mux, kConnectFailed is the server's answer (the target
  // refused): no second try.
  const bool answered = client_.mux() != nullptr && reason == stream::CloseReason::kConnectFailed;
  if (pooled_ && !outConnected_ && up_bytes_ == 0 && !upFinSent_ && !answered) {
    // A pooled connection failed before the server answered: it may have
    // been closed by the server just as we took it, or the dial failed
    // (the server ends the connection then, pooled or not). Once more on
    // a fresh connection tells the two apart; nothing of the app's was
    // sent yet.
    VT_DEBUG("flow #%" PRIu64 ": pooled connection failed (%s %s); again on a new one", id_,
             stream::closeReasonName(reason), detail.c_str());
    pooled_ = false;
    poolRetried_ = true;
    retired_ = std::move(out_);  // we are inside its callback: freed with us
    outClosed_ = false;
    dial();
    return;
  }
  bool clean =
      reason == stream::CloseReason::kLocalClose || reason == stream::CloseReason::kRemoteClose;
  // v0 has no connected signal: a server that hangs up before its response
  // header (or any byte) while the app still talks could not reach the
  // destination.
  bool v0_dial_failed = !direct_ && client_.config().server.version == 0 && down_bytes_ == 0 &&
                        !appFin_ &&
                        (clean || reason == stream::CloseReason::kProtocolError ||
                         reason == stream::CloseReason::kReset);
  if (clean && outConnected_ && !v0_dial_failed) {
    // Both directions finished on the server side; pass on what is left.
    if (!serverFin_) {
      serverFin_ = true;
      if (finishStartMs_ == 0) finishStartMs_ = loop_.now();
    }
    if (!appFin_) {
      close("server_closed", true);  // cannot carry the app's bytes any more
      return;
    }
    pumpDown();
    if (!closed_) armTimer();
    return;
  }
  const char* why = outFailure(reason, outConnected_);
  if (!outConnected_ && !direct_) client_.onDialFailed();
  if (v0_dial_failed) why = "connect_failed";
  VT_WARN("flow #%" PRIu64 " dst=%s: %s connection %s: %s%s%s", id_,
          endpoint(key_.dst, key_.dstPort).c_str(), direct_ ? "direct" : "server",
          outConnected_ && !v0_dial_failed ? "lost" : "failed",
          stream::closeReasonName(reason), detail.empty() ? "" : ": ", detail.c_str());
  close(why, true);
}

// --- end of the relay ----------------------------------------------------

void TcpSession::checkFinished() {
  if (closed_ || !upFinSent_ || !downFinSent_) return;
  // Both FINs passed on; close once the outbound flushed its last bytes
  // (its close() would discard them).
  if (outClosed_ || out_ == nullptr || out_->bufferedBytes() == 0) {
    close("done", false);
  } else {
    armTimer();
  }
}

void TcpSession::armTimer() {
  if (closed_) return;
  const config::ClientLimits& lim = client_.config().limits;
  uint64_t now = loop_.now();
  uint64_t deadline;
  if (sniffing_) {
    deadline = startMs_ + kSniffMs;
  } else if (!outConnected_) {
    deadline = startMs_ + lim.connect_timeout_ms;
  } else {
    deadline = lastActivityMs_ + lim.idle_timeout_ms;
    if (finishStartMs_ != 0) deadline = std::min(deadline, drainDeadline());
    if (upFinSent_ && downFinSent_) deadline = std::min(deadline, now + kFlushPollMs);
  }
  timer_.start(deadline > now ? deadline - now : 0, [this] { onTimer(); });
}

void TcpSession::onTimer() {
  if (closed_) return;
  if (sniffing_) {
    trySniff();  // past the deadline: decides with whatever came
    return;
  }
  const config::ClientLimits& lim = client_.config().limits;
  uint64_t now = loop_.now();
  if (!outConnected_) {
    if (now >= startMs_ + lim.connect_timeout_ms) {
      VT_WARN("flow #%" PRIu64 " dst=%s: %s connection not made within %" PRIu64 " ms", id_,
              endpoint(key_.dst, key_.dstPort).c_str(), direct_ ? "direct" : "server",
              lim.connect_timeout_ms);
      if (!direct_) client_.onDialFailed();
      close("connect_timeout", true);
      return;
    }
  } else {
    checkFinished();
    if (closed_) return;
    if (finishStartMs_ != 0 && now >= drainDeadline()) {
      close("drain_timeout", true);
      return;
    }
    if (now >= lastActivityMs_ + lim.idle_timeout_ms) {
      close("idle_timeout", true);
      return;
    }
  }
  armTimer();
}

uint64_t TcpSession::drainDeadline() const {
  // Once one direction has finished, the other may stay silent for at most
  // drain_timeout; a transfer that keeps moving is never cut off (a fixed
  // deadline from the half-close cut long downloads short).
  return std::max(finishStartMs_, lastActivityMs_) + client_.config().limits.drain_timeout_ms;
}

void TcpSession::touch() {
  lastActivityMs_ = loop_.now();
  client_.touch(*this);
}

void TcpSession::close(const char* reason, bool reset) {
  if (closed_) return;
  closed_ = true;
  timer_.stop();
  if (flow_ != nullptr) {
    // abort(): the app sees a reset, not a hang; close(): a FIN.
    if (reset) {
      flow_->abort();
    } else {
      flow_->close();
    }
  } else if (!accepted_) {
    client_.stack().rejectPending(key_);  // the app's SYN gets a RST
  }
  // An accepted handshake that completes later finds no session and is reset.
  if (out_ != nullptr && !outClosed_) {
    out_->close(reset ? stream::CloseReason::kReset : stream::CloseReason::kLocalClose);
  }
  up_.clear();
  down_.clear();
  VT_FLOW_INFO("flow #%" PRIu64 " app=%s dst=%s%s%s%s reason=%s up=%" PRIu64 " down=%" PRIu64
          " ms=%" PRIu64,
          id_, endpoint(key_.src, key_.srcPort).c_str(), endpoint(key_.dst, key_.dstPort).c_str(),
          name_.empty() ? "" : " name=", name_.c_str(), direct_ ? " route=direct" : "", reason,
          up_bytes_, down_bytes_, loop_.now() - startMs_);
  client_.onSessionClosed(*this);  // deferred delete: `this` stays valid for now
}

}  // namespace vt::client
