#include "server/server_session.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cinttypes>
#include <cstdint>

#include "codec/length_frame.h"
#include "codec/simple_socks.h"
#include "core/log.h"
#include "server/server.h"
#include "server/ip_exit.h"
#include "server/ip_session.h"
#include "server/udp_channel.h"
#include "stream/tcp_stream.h"

namespace vt::server {
namespace {

// While a dial runs the inbound is read-disabled; bytes that still arrive
// (a read already in flight) are kept up to this bound.
constexpr size_t kMaxHeldWhileDialling = 256 * 1024;
// Once both directions have ended, the queues are looked at this often
// (doubling while nothing moves, back to the first step on progress).
constexpr uint64_t kDrainPollMs = 10;
constexpr uint64_t kDrainPollMaxMs = 250;

}  // namespace

ServerSession::ServerSession(Server& server, stream::Stream* inbound,
                             std::unique_ptr<event::DeferredDeletable> inbound_owner, uint64_t id)
    : server_(server),
      loop_(server.loop()),
      id_(id),
      in_(inbound),
      in_owner_(std::move(inbound_owner)),
      timer_(loop_),
      drain_timer_(loop_),
      started_ms_(loop_.now()) {
  in_->setCallbacks(in_cb_);
  peer_name_ = in_->peerName();
}

// The streams die with us: this runs from the loop's deferred delete (or
// ~Server), never inside a stream callback, and a stream destroyed without
// close() closes silently.
ServerSession::~ServerSession() = default;

void ServerSession::start(bool tls) {
  in_ready_ = !tls;
  // Covers the TLS handshake and the VLESS header together.
  timer_.start(server_.config().handshake_timeout_ms, [this] { onTimer(); });
}

void ServerSession::startStream(const char* user, uint64_t parent, stream::MuxStream& mux) {
  mux_stream_ = true;
  mux_in_ = &mux;
  // "198.18.0.1:5000#3": the address stays the peer, the stream id goes to
  // the tag.
  std::string::size_type hash = peer_name_.rfind('#');
  mux_parent_ = parent;
  mux_stream_id_ = hash == std::string::npos ? "?" : peer_name_.substr(hash + 1);
  mux_tag_ = " mux=" + std::to_string(parent) + "/" + mux_stream_id_;
  if (hash != std::string::npos) peer_name_.resize(hash);
  user_stream_counted_ = true;
  user_ = user;
  in_ready_ = true;
  timer_.start(server_.config().handshake_timeout_ms, [this] { onTimer(); });
}

void ServerSession::leaveHandshake() {
  if (handshake_left_) return;
  handshake_left_ = true;
  if (!source_.empty()) server_.onHandshakeDone(source_);
}

void ServerSession::onTimer() {
  switch (state_) {
    case State::kHandshake:
      if (flows_ > 0 && held_.empty()) {
        close(stream::CloseReason::kTimeout, "reuse idle timeout");
      } else if (!in_ready_) {
        // TLS never finished: there is no plaintext to hand to a fallback.
        close(stream::CloseReason::kTimeout, "tls handshake timeout");
      } else {
        rejectInput("handshake timeout with " + std::to_string(held_.size()) + " bytes received");
      }
      break;
    case State::kDialling: onDialFailed("dial timeout"); break;
    case State::kUdp:
    case State::kIp: break;  // the channel / IP session keeps its own idle timer
    case State::kMux: {
      // The session keeps itself alive (keepalive, dead peers); a
      // connection without streams is closed like an idle reused one.
      uint64_t idle = server_.config().reuse_idle_timeout_ms;
      uint64_t since = mux_->idleSinceMs();
      uint64_t quiet = since == 0 ? 0 : loop_.now() - since;
      if (since != 0 && quiet >= idle) {
        close(stream::CloseReason::kTimeout, "mux idle timeout");
      } else {
        timer_.start(since == 0 ? idle : idle - quiet, [this] { onTimer(); });
      }
      break;
    }
    case State::kRelay:
    case State::kDraining: {
      uint64_t idle = server_.config().idle_timeout_ms;
      uint64_t quiet = loop_.now() - last_active_ms_;
      if (quiet >= idle) {
        close(stream::CloseReason::kTimeout, "idle timeout");
      } else {
        timer_.start(idle - quiet, [this] { onTimer(); });
      }
      break;
    }
    case State::kClosed: break;
  }
}

void ServerSession::onConnected(Side side) {
  if (side == Side::kOut && state_ == State::kDialling) onDialled();
  // Inbound: the TLS handshake is done; the header timer keeps running.
  if (side == Side::kIn) in_ready_ = true;
}

void ServerSession::onData(Side side, BufferChain& data, bool end_stream) {
  if (side == Side::kIn) {
    switch (state_) {
      case State::kHandshake: onHandshakeBytes(data, end_stream); return;
      case State::kDialling:
        held_.moveFrom(data);
        in_eof_ = in_eof_ || end_stream;
        client_closed_ = client_closed_ || end_stream;
        if (held_.size() > kMaxHeldWhileDialling) {
          close(stream::CloseReason::kProtocolError, "too many bytes before the dial finished");
        }
        return;
      case State::kRelay:
      case State::kDraining:
        if (reuse_) {
          onReuseUp(data, end_stream);
          return;
        }
        if (in_eof_) {  // nothing may follow end_stream
          data.clear();
          return;
        }
        up_ += data.size();
        last_active_ms_ = loop_.now();
        in_eof_ = end_stream;
        out_->write(data, end_stream);
        if (end_stream) maybeFinished();
        return;
      case State::kUdp:
        if (udp_ending_) {
          data.clear();
          if (end_stream) close(stream::CloseReason::kLocalClose, "done");
          return;
        }
        udp_->onData(data, end_stream);
        return;
      case State::kIp: ip_->onData(data, end_stream); return;
      case State::kMux:  // the MuxSession reads the inbound
      case State::kClosed: data.clear(); return;
    }
  }
  if ((state_ != State::kRelay && state_ != State::kDraining) || out_eof_) {
    data.clear();
    return;
  }
  down_ += data.size();
  last_active_ms_ = loop_.now();
  out_eof_ = end_stream;
  if (reuse_) {
    writeDown(data, end_stream);
  } else {
    in_->write(data, end_stream);
  }
  if (end_stream) maybeFinished();
}

void ServerSession::writeDown(BufferChain& data, bool end_stream) {
  BufferChain framed;
  codec::encodeReuseChunks(data, framed);
  if (end_stream) codec::encodeReuseEnd(framed);
  if (!framed.empty()) in_->write(framed, false);  // the connection stays open
}

void ServerSession::onReuseUp(BufferChain& data, bool end_stream) {
  client_closed_ = client_closed_ || end_stream;
  if (in_eof_) {
    // The flow's up direction ended: what follows is the next request,
    // sent before this flow finished (bounded like a header).
    next_.moveFrom(data);
    if (next_.size() > kMaxHandshakeBytes + kMaxHeldWhileDialling) {
      close(stream::CloseReason::kProtocolError, "too many bytes after the end chunk");
    }
    return;
  }
  chunk_in_.moveFrom(data);
  while (state_ == State::kRelay || state_ == State::kDraining) {
    codec::ReuseChunkResult r = codec::decodeReuseChunk(chunk_in_);
    if (r.status == codec::DecodeStatus::kNeedMore) break;
    if (r.status == codec::DecodeStatus::kInvalid) {
      close(stream::CloseReason::kProtocolError, "reuse chunk: " + r.error);
      return;
    }
    if (r.end) {
      chunk_in_.drain(r.consumed);
      next_.moveFrom(chunk_in_);
      in_eof_ = true;
      BufferChain none;
      out_->write(none, true);  // the target sees the client's FIN
      maybeFinished();
      return;
    }
    BufferChain payload;
    codec::takePacket(chunk_in_, r, payload);
    up_ += payload.size();
    last_active_ms_ = loop_.now();
    out_->write(payload, false);
  }
  if (end_stream && (state_ == State::kRelay || state_ == State::kDraining)) {
    // The client ended its TLS direction without the end chunk (or in the
    // middle of one): the flow's up direction is over, the connection too.
    in_eof_ = true;
    BufferChain none;
    out_->write(none, true);
    maybeFinished();
  }
}

void ServerSession::nextRequest() {
  logClose(stream::CloseReason::kLocalClose, "done");
  ++flows_;
  if (out_ != nullptr) {
    dropping_out_ = true;
    if (!out_closed_) out_->close(stream::CloseReason::kLocalClose);
    dropping_out_ = false;
    out_ = nullptr;
    loop_.deferredDelete(std::move(out_owner_));
  }
  out_closed_ = true;
  state_ = State::kHandshake;
  request_ = codec::Request{};
  reuse_ = false;
  in_eof_ = false;
  out_eof_ = false;
  out_bp_paused_ = false;
  if (in_bp_paused_) {
    in_bp_paused_ = false;
    in_->readDisable(false);
  }
  dial_addrs_.clear();
  dial_next_ = 0;
  last_dial_error_ = "no address";
  egress_denied_.clear();
  dial_tried_ = false;
  target_ = "-";
  server_.onTrafficDone(user_, false, traffic());  // the flow's; the next starts at 0
  up_ = 0;
  down_ = 0;
  started_ms_ = loop_.now();
  chunk_in_.clear();
  held_.clear();
  timer_.start(server_.config().reuse_idle_timeout_ms, [this] { onTimer(); });
  if (!next_.empty()) {
    BufferChain next;
    next.moveFrom(next_);
    onHandshakeBytes(next, false);
  }
}

void ServerSession::onWatermark(Side side, bool above) {
  if (state_ == State::kClosed) return;
  if (state_ == State::kIp) {
    if (side == Side::kIn) ip_->onWatermark(above);  // packets to the client are dropped
    return;
  }
  if (side == Side::kOut) {
    // The target is slow: stop reading the client.
    if (in_closed_ || in_bp_paused_ == above) return;
    in_bp_paused_ = above;
    in_->readDisable(above);
  } else {
    if (out_ == nullptr || out_closed_ || out_bp_paused_ == above) return;
    out_bp_paused_ = above;
    out_->readDisable(above);
  }
}

void ServerSession::onStreamClose(Side side, stream::CloseReason reason,
                                  const std::string& detail) {
  (side == Side::kIn ? in_closed_ : out_closed_) = true;
  if (side == Side::kOut && dropping_out_) return;  // nextRequest() closed it
  if (state_ == State::kClosed) {
    maybeRelease();
    return;
  }
  if (side == Side::kOut && state_ == State::kDialling) {
    // This address failed; the next one may work.
    last_dial_error_ =
        std::string(stream::closeReasonName(reason)) + (detail.empty() ? "" : ": " + detail);
    out_ = nullptr;
    loop_.deferredDelete(std::move(out_owner_));
    dialNext();
    return;
  }
  if (state_ == State::kDraining &&
      (reason == stream::CloseReason::kRemoteClose || reason == stream::CloseReason::kLocalClose)) {
    maybeDrained();  // the other side may still be flushing
    return;
  }
  std::string why = std::string(side == Side::kIn ? "client " : "target ") +
                    stream::closeReasonName(reason) + (detail.empty() ? "" : " (" + detail + ")");
  close(reason, why);
}

void ServerSession::onHandshakeBytes(BufferChain& data, bool end_stream) {
  held_.moveFrom(data);
  in_eof_ = in_eof_ || end_stream;
  if (mux_stream_) {
    onSimpleSocksBytes();
    return;
  }
  codec::RequestDecodeResult r = codec::decodeRequest(held_, request_);
  switch (r.status) {
    case codec::DecodeStatus::kNeedMore:
      if (held_.size() >= kMaxHandshakeBytes) {
        rejectInput("header longer than " + std::to_string(kMaxHandshakeBytes) + " bytes");
      } else if (in_eof_ && held_.empty()) {
        // Connected and left without a byte: nothing to hand anyone.
        close(stream::CloseReason::kRemoteClose, "client closed before a request");
      } else if (in_eof_) {
        rejectInput("client closed mid-header after " + std::to_string(held_.size()) + " bytes");
      }
      return;
    case codec::DecodeStatus::kInvalid:
      rejectInput(r.error.empty() ? "malformed header" : r.error);
      return;
    case codec::DecodeStatus::kDone: onRequest(r.consumed); return;
  }
}

void ServerSession::onSimpleSocksBytes() {
  codec::SimpleSocksHeader h;
  codec::SimpleSocksDecodeResult r = codec::decodeSimpleSocks(held_, h);
  switch (r.status) {
    case codec::DecodeStatus::kNeedMore:
      if (in_eof_) close(stream::CloseReason::kProtocolError, "stream ended inside its header");
      return;
    case codec::DecodeStatus::kInvalid:
      close(stream::CloseReason::kProtocolError, "simplesocks: " + r.error);
      return;
    case codec::DecodeStatus::kDone: break;
  }
  request_ = codec::Request{};
  request_.version = 1;
  request_.target = h.target;
  if (h.command == codec::SimpleSocksCommand::kUdp) {
    request_.command = codec::Command::kUdp;
    // Datagrams never wait here for a reader: a wider window keeps the
    // client from dropping at a full stream (MuxStream::setReceiveWindow).
    mux_in_->setReceiveWindow(server_.config().mux.datagram_window);
    // The stream's NAT session may be keyed by udp_session (its header
    // names one): by this user's UUID, as a separated channel's is.
    for (const config::ServerUser& u : server_.config().users) {
      if (u.name == user_) request_.uuid = u.uuid;
    }
    startUdp(r.consumed);
    return;
  }
  request_.command = codec::Command::kTcp;
  startTcp(r.consumed);
}

void ServerSession::onRequest(size_t header_len) {
  const config::ServerConfig& cfg = server_.config();
  // The user lookup runs before any other check so that timing does not
  // depend on which check failed.
  const config::ServerUser* user = server_.auth().find(request_.uuid);
  bool version_ok = request_.version == 0 ? cfg.accept_v0 : cfg.accept_v1;
  if (!version_ok) {
    rejectInput("version " + std::to_string(request_.version) + " not accepted");
    return;
  }
  if (user == nullptr) {
    rejectInput("unknown user");
    return;
  }
  user_ = server_.userKey(user->name);  // stable across reloads
  if (!mux_stream_ && counted_user_ == nullptr) {
    std::string why;
    if (!server_.admitUser(user_, &why)) {
      close(stream::CloseReason::kEvicted, why);
      return;
    }
    counted_user_ = user_;  // a reused connection stays counted under its first user
    if (socket_ != nullptr) {
      if (auto rl = server_.rateLimit(user)) socket_->setRateLimit(std::move(rl));
    }
  }
  leaveHandshake();
  if (request_.command == codec::Command::kUdp && request_.target) {
    startUdp(header_len);
    return;
  }
  if (request_.command == codec::Command::kMux && request_.version == 1 && flows_ == 0) {
    startMux(header_len);
    return;
  }
  if (request_.command == codec::Command::kIp && request_.version == 1 && flows_ == 0 &&
      !mux_stream_ && server_.ipExit() != nullptr) {
    startIp(header_len);
    return;
  }
  if (request_.command != codec::Command::kTcp || !request_.target) {
    rejectInput("command " + std::to_string(static_cast<int>(request_.command)) +
                " not supported yet");
    return;
  }
  startTcp(header_len);
}

void ServerSession::startTcp(size_t header_len) {
  const config::ServerConfig& cfg = server_.config();
  target_ = request_.target->toString();
  held_.drain(header_len);  // the payload stays for the target
  reuse_ = request_.reuse && request_.version == 1;
  if (flows_ > 0) started_ms_ = loop_.now();  // a flow's time, not the connection's
  state_ = State::kDialling;
  setDialPause(true);
  timer_.start(cfg.handshake_timeout_ms, [this] { onTimer(); });
  const codec::Address& t = *request_.target;
  dialTarget(t.hostString(), t.isIp(), t.port);
}

void ServerSession::startUdp(size_t header_len) {
  target_ = request_.target->toString();
  held_.drain(header_len);
  state_ = State::kUdp;
  timer_.stop();
  udp_ = std::make_unique<UdpChannel>(
      server_, *in_, request_, user_, peer_name_, id_,
      [this](stream::CloseReason r, const std::string& why, bool graceful) {
        if (graceful) {
          endUdp(r, why);
        } else {
          close(r, why);
        }
      },
      mux_stream_);
  udp_->start(held_, in_eof_);
}

void ServerSession::startMux(size_t header_len) {
  const config::ServerConfig& cfg = server_.config();
  target_ = "mux";
  held_.drain(header_len);
  state_ = State::kMux;
  stream::MuxOptions o;
  o.stream_window = cfg.mux.stream_window;
  o.max_stream_window = cfg.mux.max_stream_window;
  o.keepalive_ms = cfg.mux.keepalive_ms;
  o.dead_ms = cfg.mux.dead_ms;
  o.max_streams = cfg.mux.max_streams;
  stream::MuxSession::Owner& owner = *this;
  mux_ = std::make_unique<stream::MuxSession>(loop_, *in_, stream::MuxSession::Role::kServer, o,
                                              owner);
  timer_.start(cfg.reuse_idle_timeout_ms, [this] { onTimer(); });
  BufferChain initial;
  initial.moveFrom(held_);
  mux_->start(&initial);
}

void ServerSession::startIp(size_t header_len) {
  target_ = "ip";
  held_.drain(header_len);
  state_ = State::kIp;
  timer_.stop();
  ip_ = std::make_unique<IpSession>(
      server_, *server_.ipExit(), *in_, user_, peer_name_, id_,
      [this](stream::CloseReason r, const std::string& why) { close(r, why); });
  BufferChain initial;
  initial.moveFrom(held_);
  ip_->start(initial, in_eof_);
}

void ServerSession::onMuxStream(std::unique_ptr<stream::MuxStream> s) {
  if (state_ != State::kMux) return;  // destroying it sends the FIN
  ++mux_streams_;
  std::string why;
  if (!server_.startMuxStream(std::move(s), user_, id_, &why)) {
    if (mux_refused_++ == 0) {
      VT_WARN("conn #%" PRIu64 " peer=%s user=%s: mux stream refused: %s (counted in the close "
              "line from now on)",
              id_, peer_name_.c_str(), user_, why.c_str());
    }
  }
}

void ServerSession::onMuxClosed(stream::CloseReason reason, const std::string& detail) {
  in_closed_ = true;
  if (state_ == State::kClosed) {
    maybeRelease();
    return;
  }
  close(reason, "mux " + std::string(stream::closeReasonName(reason)) +
                    (detail.empty() ? "" : ": " + detail));
}

void ServerSession::endUdp(stream::CloseReason reason, const std::string& why) {
  if (state_ != State::kUdp || udp_ending_) return;
  udp_ending_ = true;
  udp_->shutdown(reason, why);  // logs the connection's line, leaves the NAT session
  // Our direction ends after what is queued (TLS close_notify, FIN); the
  // client closes its side when it reads that, and then so do we. Its
  // datagrams meanwhile are read and dropped.
  BufferChain none;
  in_->write(none, true);
  if (state_ != State::kUdp) return;  // the write failed and closed us
  drain_timer_.start(server_.config().drain_timeout_ms,
                     [this] { close(stream::CloseReason::kTimeout, "client did not close"); });
}

void ServerSession::rejectInput(const std::string& why) {
  const config::ServerConfig& cfg = server_.config();
  leaveHandshake();
  if (mux_stream_) {  // the connection proved its user; only this stream ends
    close(stream::CloseReason::kProtocolError, "rejected: " + why);
    return;
  }
  if (flows_ > 0) {  // a reused connection already proved its user
    close(stream::CloseReason::kProtocolError, "rejected on a reused connection: " + why);
    return;
  }
  rejected_ = why;
  if (!cfg.fallback) {
    close(stream::CloseReason::kProtocolError, "rejected: " + why);
    return;
  }
  // Everything received so far, header included, goes to the fallback so
  // that it answers as if it had been contacted directly.
  VT_DEBUG("conn #%" PRIu64 " %s: %s; to fallback", id_, peer_name_.c_str(), why.c_str());
  fallback_ = true;
  server_.onFallback();
  target_ = "fallback " + cfg.fallback->toString();
  state_ = State::kDialling;
  setDialPause(true);
  timer_.start(cfg.handshake_timeout_ms, [this] { onTimer(); });
  dialTarget(cfg.fallback->host, cfg.fallback->is_ip, cfg.fallback->port);
}

void ServerSession::dialTarget(const std::string& host, bool is_ip, uint16_t port) {
  if (is_ip) {
    auto addr = event::SocketAddress::parseIp(host, port);
    if (!addr) {
      onDialFailed("unusable address " + host);
      return;
    }
    dial_addrs_.assign(1, *addr);
    dialNext();
    return;
  }
  if (!resolver_) resolver_ = std::make_unique<event::PooledLookup>(server_.resolvers());
  // The fallback's lookups are the operator's, not a user's.
  const std::string key = fallback_ ? std::string("(fallback)") : std::string(user_);
  resolver_->resolve(key, host, port, server_.config().resolve_timeout_ms,
                     [this](Result<std::vector<event::SocketAddress>> r) {
    onResolved(std::move(r));
  });
}

void ServerSession::onResolved(Result<std::vector<event::SocketAddress>> r) {
  if (state_ != State::kDialling) return;
  if (!r.ok()) {
    onDialFailed("resolve: " + r.error().message);
    return;
  }
  dial_addrs_ = std::move(r).value();
  if (dial_addrs_.empty()) {
    onDialFailed("resolve: no addresses");
    return;
  }
  dialNext();
}

void ServerSession::dialNext() {
  // The egress policy judges each address a name resolved to; the
  // operator's fallback is exempt.
  while (!fallback_ && dial_next_ < dial_addrs_.size()) {
    const event::SocketAddress& a = dial_addrs_[dial_next_];
    const char* why = server_.checkEgress(a);
    if (why == nullptr) break;
    if (egress_denied_.empty()) egress_denied_ = server::EgressPolicy::describe(a, why);
    ++dial_next_;
  }
  if (dial_next_ >= dial_addrs_.size()) {
    if (!egress_denied_.empty() && !dial_tried_) {
      onDialFailed(egress_denied_);
    } else {
      onDialFailed("connect: " + last_dial_error_ +
                   (egress_denied_.empty() ? "" : "; " + egress_denied_));
    }
    return;
  }
  dial_tried_ = true;
  dialled_ = dial_addrs_[dial_next_++];
  auto tcp = stream::TcpStream::create(loop_, dialled_);
  tcp->setNoDelay(true);
  tcp->setBufferBudget(&server_.bufferBudget());
  out_ = tcp.get();
  out_owner_ = std::move(tcp);
  out_closed_ = false;
  out_->setCallbacks(out_cb_);
  out_->connect();
}

void ServerSession::onDialFailed(const std::string& why) {
  // v1: EOF before the first byte is how the client learns the dial
  // failed; v0 has no way to say it either. So: close, write nothing.
  close(stream::CloseReason::kConnectFailed, (fallback_ ? "fallback " : "") + why);
}

void ServerSession::onDialled() {
  state_ = State::kRelay;
  last_active_ms_ = loop_.now();
  timer_.start(server_.config().idle_timeout_ms, [this] { onTimer(); });
  if (!fallback_) {
    BufferChain head;
    if (request_.version == 0) {
      // Sent at once rather than with the first response byte: the client
      // then knows the dial worked even if the target speaks second.
      codec::encodeV0Response(head);
    } else if (request_.want_ip) {
      std::optional<codec::Address> ip;
      const sockaddr* sa = dialled_.sa();
      if (sa->sa_family == AF_INET) {
        const auto* s4 = reinterpret_cast<const sockaddr_in*>(sa);
        ip = codec::Address::ipv4(ntohl(s4->sin_addr.s_addr), 0);
      } else if (sa->sa_family == AF_INET6) {
        const auto* s6 = reinterpret_cast<const sockaddr_in6*>(sa);
        ip = codec::Address::ipv6(s6->sin6_addr.s6_addr, 0);
      }
      codec::encodeWantIpPrefix(ip, head);
    }
    if (mux_stream_) {
      // A PSH of LEN 0: the target is connected (docs/protocol.md 3.6).
      BufferChain none;
      in_->write(none, false);
    } else if (!head.empty()) {
      in_->write(head, false);
    }
  }
  if (state_ != State::kRelay) return;  // the write may have failed and closed us
  if (reuse_) {
    BufferChain early;
    early.moveFrom(held_);
    const bool eof = in_eof_;
    in_eof_ = false;
    onReuseUp(early, eof);
  } else if (!held_.empty() || in_eof_) {
    up_ += held_.size();
    out_->write(held_, in_eof_);
  }
  if (state_ != State::kRelay) return;
  setDialPause(false);
  maybeFinished();
}

void ServerSession::setDialPause(bool pause) {
  if (in_closed_ || in_dial_paused_ == pause) return;
  in_dial_paused_ = pause;
  in_->readDisable(pause);
}

void ServerSession::maybeFinished() {
  if (state_ != State::kRelay || !in_eof_ || !out_eof_) return;
  state_ = State::kDraining;
  drain_queued_ = SIZE_MAX;
  drain_poll_ms_ = kDrainPollMs;
  maybeDrained();
}

void ServerSession::maybeDrained() {
  if (state_ != State::kDraining) return;
  const size_t in_queued = in_closed_ ? 0 : in_->bufferedBytes();
  const size_t out_queued = out_closed_ || out_ == nullptr ? 0 : out_->bufferedBytes();
  const size_t queued = in_queued + out_queued;
  if (queued < drain_queued_) {
    // Progress (or the first look): the slowest reader gets drain_timeout
    // from here, however long the whole flush takes.
    drain_queued_ = queued;
    drain_deadline_ms_ = loop_.now() + server_.config().drain_timeout_ms;
    drain_poll_ms_ = kDrainPollMs;
    last_active_ms_ = loop_.now();  // bytes moving are not idle
  } else {
    drain_poll_ms_ = std::min(drain_poll_ms_ * 2, kDrainPollMaxMs);
  }
  if (queued == 0) {
    if (reuse_ && !client_closed_ && !in_closed_) {
      nextRequest();
    } else {
      close(stream::CloseReason::kLocalClose, "done");
    }
  } else if (loop_.now() >= drain_deadline_ms_) {
    close(stream::CloseReason::kTimeout, "flush stalled: " + std::to_string(queued) +
                                             " bytes queued, none sent for drain_timeout");
  } else {
    drain_timer_.start(drain_poll_ms_, [this] { maybeDrained(); });
  }
}

void ServerSession::close(stream::CloseReason reason, const std::string& detail) {
  if (state_ == State::kClosed) return;
  const State prev = state_;
  state_ = State::kClosed;
  server_.onSessionClosing();
  timer_.stop();
  drain_timer_.stop();
  if (resolver_) resolver_->cancel();
  if (user_stream_counted_) {
    user_stream_counted_ = false;
    server_.onMuxStreamDone(user_);
  }
  leaveHandshake();
  if (counted_user_ != nullptr) {
    server_.onUserConnectionDone(counted_user_);
    counted_user_ = nullptr;
  }
  if (!source_.empty()) {
    server_.onSourceClosed(source_);
    source_.clear();
  }
  if (mux_) {
    up_ = mux_->stats().bytesIn;
    down_ = mux_->stats().bytesOut;
  }
  server_.onTrafficDone(user_, mux_ != nullptr, traffic());
  if (ip_ && prev == State::kIp && ip_->started()) {
    ip_->shutdown(reason, detail);  // logs the connection's one line
  } else if (udp_) {
    udp_->shutdown(reason, detail);  // logs the connection's one line
  } else if (flows_ > 0 && prev == State::kHandshake && held_.empty()) {
    // A reused connection that ends between requests: its flows have their
    // lines already.
    VT_DEBUG("conn #%" PRIu64 " %s: reused connection ended after %u flows: %s", id_,
             peer_name_.c_str(), flows_, detail.c_str());
  } else {
    logClose(reason, detail);
  }
  if (!in_closed_) {
    if (mux_) {
      mux_->close(reason, detail);  // resets its streams; reports through onMuxClosed
    } else {
      in_->close(reason);
    }
  }
  if (out_ != nullptr && !out_closed_) out_->close(reason);
  maybeRelease();
}

void ServerSession::maybeRelease() {
  if (state_ != State::kClosed || released_ || !in_closed_ || !out_closed_) return;
  released_ = true;
  server_.onSessionDone(this);  // deferred delete; `this` stays valid for now
}

void ServerSession::logClose(stream::CloseReason reason, const std::string& detail) {
  uint64_t ms = loop_.now() - started_ms_;
  LogLevel level = LogLevel::kInfo;
  if (reason == stream::CloseReason::kProtocolError || reason == stream::CloseReason::kEvicted ||
      fallback_) {
    level = LogLevel::kWarn;  // probes and refusals stand out from normal traffic
  }
  std::string why = detail.empty() ? stream::closeReasonName(reason) : detail;
  if (fallback_) why = "fallback after: " + rejected_ + "; then " + why;
  std::string extra;
  if (reuse_ || flows_ > 0) extra = " flow=" + std::to_string(flows_ + 1);
  extra += mux_tag_;
  if (mux_) {
    const stream::MuxStats& st = mux_->stats();
    extra += " streams=" + std::to_string(mux_streams_) + " refused=" +
             std::to_string(mux_refused_ + st.streamsRefused) + " smux=v" +
             std::to_string(mux_->version());
    if (st.unknownFrames != 0) extra += " unknown_frames=" + std::to_string(st.unknownFrames);
    if (st.windowGrowths != 0) extra += " windows_grown=" + std::to_string(st.windowGrowths);
  }
  VT_FLOW_LOG(level,
         "conn #%" PRIu64 " peer=%s user=%s target=%s up=%" PRIu64 " down=%" PRIu64 " ms=%" PRIu64
         " close=%s%s",
         id_, peer_name_.c_str(), user_, target_.c_str(), up_, down_, ms, why.c_str(),
         extra.c_str());
}

}  // namespace vt::server
