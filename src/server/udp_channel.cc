#include "server/udp_channel.h"

#include <deque>
#include <arpa/inet.h>

#include <cinttypes>
#include <cstring>

#include "codec/length_frame.h"
#include "codec/simple_socks.h"
#include "codec/trojan_udp.h"
#include "codec/udp_packet.h"
#include "core/log.h"
#include "event/udp_socket.h"
#include "server/server.h"
#include "server/udp_nat.h"

namespace vt::server {
namespace {

std::optional<event::SocketAddress> toSocketAddress(const codec::Address& a) {
  if (a.type == codec::Address::Type::kIpv4) {
    uint32_t v4 = 0;
    std::memcpy(&v4, a.ip.data(), 4);
    return event::SocketAddress::ipv4(ntohl(v4), a.port);
  }
  if (a.type == codec::Address::Type::kIpv6) return event::SocketAddress::ipv6(a.ip.data(), a.port);
  return std::nullopt;
}

codec::Address toAddress(const event::SocketAddress& s) {
  if (s.family() == AF_INET6) {
    const auto* s6 = reinterpret_cast<const sockaddr_in6*>(s.sa());
    return codec::Address::ipv6(s6->sin6_addr.s6_addr, s.port());  // maps back to IPv4
  }
  const auto* s4 = reinterpret_cast<const sockaddr_in*>(s.sa());
  return codec::Address::ipv4(ntohl(s4->sin_addr.s_addr), s.port());
}

const char* modeName(UdpChannel::Mode m) {
  switch (m) {
    case UdpChannel::Mode::kV0: return "v0";
    case UdpChannel::Mode::kClassic: return "classic";
    case UdpChannel::Mode::kMulti: return "multi";
    case UdpChannel::Mode::kMux: return "mux";
  }
  return "?";
}

}  // namespace

UdpChannel::UdpChannel(Server& server, stream::Stream& in, const codec::Request& req,
                       std::string user, std::string peer, uint64_t conn_id, CloseFn close,
                       bool mux)
    : server_(server),
      loop_(server.loop()),
      in_(in),
      mode_(mux ? Mode::kMux
                : (req.version == 0 ? Mode::kV0
                                    : (req.udp_multi ? Mode::kMulti : Mode::kClassic))),
      target_(req.target ? *req.target : codec::Address{}),
      uuid_(req.uuid),
      user_(std::move(user)),
      peer_(std::move(peer)),
      conn_id_(conn_id),
      close_(std::move(close)),
      resolver_(server.resolvers()),
      idle_timer_(loop_),
      started_ms_(loop_.now()),
      last_active_ms_(loop_.now()) {
  if (mode_ == Mode::kMulti) session_id_ = req.udp_session;
  if (mode_ == Mode::kMux && req.target && !req.target->isIp()) {
    session_id_ = codec::parseUdpSessionDomain(req.target->domain);
  }
}

// Always shut down by the owner's close() first; this only covers an owner
// destroyed without closing (then the NAT session is still ours to leave).
UdpChannel::~UdpChannel() {
  if (!done_) shutdown(stream::CloseReason::kLocalClose, "destroyed");
}

void UdpChannel::start(BufferChain& payload, bool end_stream) {
  idle_timer_.start(server_.config().udp.channel_idle_timeout_ms, [this] { onIdleTimer(); });
  if (!attachSession()) return;
  if (!addressed()) {
    // v0 and the separated channel send to one address: resolve it once.
    // A target with port 0 is accepted (docs/protocol.md); its datagrams
    // are dropped and counted like any other datagram to port 0.
    if (target_.isIp()) {
      orig_ = toSocketAddress(target_);
      if (orig_) {
        if (const char* why = server_.checkEgress(*orig_)) {
          fail(stream::CloseReason::kConnectFailed, EgressPolicy::describe(*orig_, why));
          return;
        }
      }
    } else {
      resolving_ = target_.domain;
      resolver_.resolve(user_, target_.domain, target_.port, server_.config().resolve_timeout_ms,
                        [this, host = target_.domain](Result<std::vector<event::SocketAddress>> r) {
                          onResolved(host, std::move(r));
                        });
    }
  }
  if (mode_ == Mode::kV0) {
    // At once, as the TCP path does after its dial: there is no dial here.
    BufferChain head;
    codec::encodeV0Response(head);
    in_.write(head, false);
    if (done_) return;
  }
  onData(payload, end_stream);
}

bool UdpChannel::attachSession() {
  if (session_id_) {
    auto s = server_.udpNat().acquire(uuid_, user_, *session_id_);
    if (!s.ok()) {
      fail(s.error().code == Errc::kLimit ? stream::CloseReason::kEvicted
                                          : stream::CloseReason::kConnectFailed,
           s.error().message);
      return false;
    }
    nat_ = s.value();
  } else {
    auto s = server_.udpNat().openPrivate(user_ + "/private");
    if (!s.ok()) {
      fail(stream::CloseReason::kConnectFailed, s.error().message);
      return false;
    }
    private_ = std::move(s).value();
    nat_ = private_.get();
  }
  nat_->attach(this);
  return true;
}

void UdpChannel::onData(BufferChain& data, bool end_stream) {
  if (done_) {
    data.clear();
    return;
  }
  up_buf_.moveFrom(data);
  parseUp();
  if (!done_ && end_stream) {
    // A channel ends with the TCP connection; there is no half-open UDP.
    fail(stream::CloseReason::kRemoteClose, "client closed");
  }
}

void UdpChannel::parseUp() {
  while (!done_) {
    codec::PacketDecodeResult r = mode_ == Mode::kClassic ? codec::decodeClassicUdpPacket(up_buf_)
                                  : mode_ == Mode::kMux   ? codec::decodeTrojanUdpPacket(up_buf_)
                                                          : codec::decodeLengthPacket(up_buf_);
    if (r.status == codec::DecodeStatus::kNeedMore) return;
    if (r.status == codec::DecodeStatus::kInvalid) {
      fail(stream::CloseReason::kProtocolError, "bad udp packet: " + r.error);
      return;
    }
    BufferChain payload;
    codec::takePacket(up_buf_, r, payload);
    ++pkts_up_;
    bytes_up_ += payload.size();
    last_active_ms_ = loop_.now();
    if (!addressed()) {
      if (orig_) {
        sendUp(*orig_, payload);
      } else {
        queuePending("", 0, payload);
      }
      continue;
    }
    const codec::Address& a = *r.address;
    if (a.port == 0) {
      ++drops_up_;  // nothing listens on port 0
      continue;
    }
    if (a.isIp()) {
      sendUp(*toSocketAddress(a), payload);
      continue;
    }
    auto it = names_.find(a.domain);
    if (it != names_.end() && it->second.expires_ms <= loop_.now()) {
      names_.erase(it);
      it = names_.end();
    }
    if (it == names_.end()) {
      queuePending(a.domain, a.port, payload);
      resolveNext();
    } else if (it->second.addr) {
      event::SocketAddress to = *it->second.addr;
      to.setPort(a.port);
      sendUp(to, payload);
    } else {
      ++drops_up_;  // failed lately; not asked again until the entry expires
    }
  }
}

void UdpChannel::sendUp(const event::SocketAddress& to, BufferChain& payload) {
  size_t n = payload.size();
  if (addressed()) {  // the others checked their one target before
    if (const char* why = server_.checkEgress(to)) {
      ++denied_;
      if (!warned_denied_) {
        warned_denied_ = true;
        VT_WARN("udp conn #%" PRIu64 " user=%s: %s; its datagrams are dropped (counted as "
                "denied=)",
                conn_id_, user_.c_str(), EgressPolicy::describe(to, why).c_str());
      }
      payload.clear();
      return;
    }
  }
  if (!nat_->socket().sendTo(to, payload)) ++drops_up_;
  nat_->onSent(this, to, n);
}

void UdpChannel::queuePending(std::string host, uint16_t port, BufferChain& payload) {
  if (pending_.size() >= kMaxPending || pending_bytes_ + payload.size() > kMaxPendingBytes) {
    ++drops_up_;
    if (!warned_pending_) {
      warned_pending_ = true;
      VT_WARN("udp conn #%" PRIu64 " peer=%s: datagrams waiting for a name lookup over %zu; "
              "dropping",
              conn_id_, peer_.c_str(), kMaxPending);
    }
    payload.clear();
    return;
  }
  pending_bytes_ += payload.size();
  pending_.push_back(Pending{std::move(host), port, std::move(payload)});
}

void UdpChannel::resolveNext() {
  if (!resolving_.empty() || pending_.empty() || !addressed()) return;
  resolving_ = pending_.front().host;
  resolver_.resolve(user_, resolving_, 0, server_.config().resolve_timeout_ms,
                    [this, host = resolving_](
                                       Result<std::vector<event::SocketAddress>> r) {
    onResolved(host, std::move(r));
  });
}

std::optional<event::SocketAddress> UdpChannel::pickAddress(
    const std::vector<event::SocketAddress>& all, std::string& why) {
  why = "no usable address";
  for (const auto& a : all) {
    if (nat_ == nullptr || !nat_->socket().canSendTo(a)) continue;
    if (const char* no = server_.checkEgress(a)) {
      why = EgressPolicy::describe(a, no);
      continue;
    }
    return a;
  }
  return std::nullopt;
}

void UdpChannel::onResolved(const std::string& host, Result<std::vector<event::SocketAddress>> r) {
  if (done_) return;
  resolving_.clear();
  std::optional<event::SocketAddress> addr;
  std::string why;
  if (r.ok()) {
    addr = pickAddress(r.value(), why);
  } else {
    why = r.error().message;
  }
  if (!addressed()) {
    if (!addr) {
      fail(stream::CloseReason::kResolveError, "resolve " + host + ": " + why);
      return;
    }
    orig_ = addr;
    while (!pending_.empty() && !done_) {
      Pending p = std::move(pending_.front());
      pending_.pop_front();
      pending_bytes_ -= p.payload.size();
      sendUp(*orig_, p.payload);
    }
    return;
  }
  if (!addr) VT_DEBUG("udp conn #%" PRIu64 ": resolve %s: %s", conn_id_, host.c_str(), why.c_str());
  if (names_.size() >= kMaxCachedNames) {
    uint64_t now = loop_.now();
    for (auto it = names_.begin(); it != names_.end();) {
      it = it->second.expires_ms <= now ? names_.erase(it) : std::next(it);
    }
    if (names_.size() >= kMaxCachedNames) names_.erase(names_.begin());
  }
  names_[host] = CacheEntry{addr, loop_.now() + (addr ? kNameCacheMs : kNegativeCacheMs)};
  // Flush this name's datagrams in their order; the others keep theirs.
  std::deque<Pending> rest;
  for (Pending& p : pending_) {
    if (p.host != host) {
      rest.push_back(std::move(p));
      continue;
    }
    pending_bytes_ -= p.payload.size();
    if (!addr) {
      ++drops_up_;
      continue;
    }
    event::SocketAddress to = *addr;
    to.setPort(p.port);
    sendUp(to, p.payload);
  }
  pending_ = std::move(rest);
  resolveNext();
}

void UdpChannel::deliver(const uint8_t* data, size_t n, const event::SocketAddress& from,
                         bool own) {
  if (done_) return;
  if (mode_ == Mode::kV0 && !own) {
    ++drops_down_;  // v0 talks to its one target only
    return;
  }
  if (in_.bufferedBytes() > kMaxDownQueuedBytes) {
    ++drops_down_;  // the client reads slower than its remotes send
    return;
  }
  BufferChain payload;
  if (n != 0) payload.append(data, n);
  BufferChain out;
  bool ok = false;
  switch (mode_) {
    case Mode::kV0: ok = codec::encodeLengthPacket(payload, out); break;
    case Mode::kClassic: ok = codec::encodeClassicUdpPacket(toAddress(from), payload, out); break;
    case Mode::kMux: ok = codec::encodeTrojanUdpPacket(toAddress(from), payload, out); break;
    case Mode::kMulti:
      ok = codec::encodeMultiUdpDown(own ? std::nullopt : std::optional(toAddress(from)), payload,
                                     out);
      break;
  }
  if (!ok) {
    ++drops_down_;
    return;
  }
  ++pkts_down_;
  bytes_down_ += n;
  last_active_ms_ = loop_.now();
  in_.write(out, false);  // may close us
}

void UdpChannel::onIdleTimer() {
  if (done_) return;
  uint64_t idle = server_.config().udp.channel_idle_timeout_ms;
  uint64_t quiet = loop_.now() - last_active_ms_;
  if (quiet >= idle) {
    end(stream::CloseReason::kTimeout, "udp channel idle");
  } else {
    idle_timer_.start(idle - quiet, [this] { onIdleTimer(); });
  }
}

void UdpChannel::fail(stream::CloseReason reason, const std::string& why) {
  if (done_) return;
  close_(reason, why, false);  // the owner calls shutdown()
}

void UdpChannel::end(stream::CloseReason reason, const std::string& why) {
  if (done_) return;
  close_(reason, why, true);  // the owner calls shutdown()
}

void UdpChannel::shutdown(stream::CloseReason reason, const std::string& detail) {
  if (done_) return;
  done_ = true;
  idle_timer_.stop();
  resolver_.cancel();
  std::string nat_name = "-";
  if (nat_ != nullptr) {
    nat_name = nat_->name() + ":" + std::to_string(nat_->socket().port());
    nat_->detach(this);
    nat_ = nullptr;
  }
  // Deferred: we may be inside this very session's receive callback.
  if (private_) loop_.deferredDelete(std::move(private_));
  drops_up_ += pending_.size();
  pending_.clear();
  pending_bytes_ = 0;

  // Evictions are routine under churn; the NAT table logs them summed up.
  LogLevel level =
      reason == stream::CloseReason::kProtocolError ? LogLevel::kWarn : LogLevel::kInfo;
  std::string why = detail.empty() ? stream::closeReasonName(reason) : detail;
  VT_FLOW_LOG(level,
         "udp conn #%" PRIu64 " peer=%s user=%s mode=%s target=%s nat=%s up=%" PRIu64 "/%" PRIu64
         "B down=%" PRIu64 "/%" PRIu64 "B drops_up=%" PRIu64 " drops_down=%" PRIu64
         " denied=%" PRIu64 " ms=%" PRIu64 " close=%s",
         conn_id_, peer_.c_str(), user_.c_str(), modeName(mode_), target_.toString().c_str(),
         nat_name.c_str(), pkts_up_, bytes_up_, pkts_down_, bytes_down_, drops_up_, drops_down_,
         denied_, loop_.now() - started_ms_, why.c_str());
}

}  // namespace vt::server
