#include "client/udp_session.h"

#include <algorithm>
#include <cinttypes>
#include <string>
#include <vector>

#include "client/client.h"
#include "client/dns_cache.h"
#include "client/dns_names.h"
#include "client/udp_channel.h"
#include "core/log.h"
#include "event/udp_socket.h"
#include "netstack/net_stack.h"

namespace vt::client {
namespace {

// Outstanding hijacked DNS ids remembered per session.
constexpr size_t kMaxDnsOrigins = 256;

uint16_t dnsId(const BufferChain& payload) {
  if (payload.size() < 2) return 0;
  return static_cast<uint16_t>((payload.byteAt(0) << 8) | payload.byteAt(1));
}

// ::ffff:a.b.c.d for an IPv6 app talking to an IPv4 remote.
netstack::IpAddress mapV6(const netstack::IpAddress& v4) {
  uint8_t b[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, v4.bytes[0], v4.bytes[1],
                   v4.bytes[2], v4.bytes[3]};
  return netstack::IpAddress::v6(b);
}

}  // namespace

UdpSession::UdpSession(Client& client, const netstack::UdpEndpoint& app, uint64_t sessionId)
    : client_(client),
      loop_(client.loop()),
      app_(app),
      id_(client.nextUdpId()),
      sessionId_(sessionId),
      startMs_(loop_.now()),
      lastActivityMs_(startMs_),
      timer_(loop_) {}

UdpSession::~UdpSession() = default;

void UdpSession::countUp(size_t bytes) {
  if (replied_ && !assured_) {
    assured_ = true;
    client_.onUdpAssured(*this);
  }
  touch();
  ++upPackets_;
  upBytes_ += bytes;
  client_.countUdp(1, bytes, 0, 0);
}

void UdpSession::send(const netstack::UdpEndpoint& remote, const netstack::UdpEndpoint& shown,
                      BufferChain&& payload) {
  if (closed_) return;
  countUp(payload.size());
  const auto& resolver = client_.dnsResolver();
  if (resolver && remote == *resolver) rememberDnsOrigin(payload, shown);

  const config::ClientUdpConfig& ucfg = client_.config().udp;
  // Classic and mux: one channel for every remote.
  const bool one = ucfg.mode == config::UdpMode::kClassic || ucfg.mode == config::UdpMode::kMux;
  netstack::UdpEndpoint key = one ? netstack::UdpEndpoint{} : remote;
  auto it = channels_.find(key);
  if (it == channels_.end()) {
    if (dialBackoffMs_ != 0 && client_.serverReachedMs() > failedAtMs_) {
      dialBackoffMs_ = 0;  // another flow reached the server since
    }
    if (dialBackoffMs_ != 0 && loop_.now() < noDialUntilMs_) {
      ++drops_;  // the server failed us just now: no dial per datagram
      client_.countUdpBackoffDrop();
      return;
    }
    if (!client_.serverAddressKnown()) {
      ++drops_;
      client_.start();  // looks the server up, if not already under way
      return;
    }
    if (channels_.size() >= ucfg.max_channels && !channels_.empty()) {
      auto oldest = std::min_element(channels_.begin(), channels_.end(), [](auto& a, auto& b) {
        return a.second->lastActivityMs() < b.second->lastActivityMs();
      });
      client_.countUdpChannelEvicted();
      oldest->second->close("evicted");  // removes it from channels_
    }
    std::optional<uint64_t> sid;
    if (ucfg.mode == config::UdpMode::kSeparated || ucfg.mode == config::UdpMode::kMux) {
      sid = sessionId_;
    }
    stream::StreamPtr out = client_.makeUdpOutbound(remote, sid);
    if (out == nullptr) {
      ++drops_;
      return;
    }
    auto ch = std::make_unique<UdpChannel>(*this, remote, nextChannelId());
    UdpChannel* raw = ch.get();
    it = channels_.emplace(key, std::move(ch)).first;
    ++channelsOpened_;
    raw->start(std::move(out));
    armTimer();  // the channel's connect deadline
  }
  if (!it->second->send(remote, payload)) ++drops_;
}

bool UdpSession::onChannelFailed() {
  const bool first = dialBackoffMs_ == 0;
  dialBackoffMs_ = first ? kFirstBackoffMs : std::min(dialBackoffMs_ * 2, kMaxBackoffMs);
  noDialUntilMs_ = loop_.now() + dialBackoffMs_;
  failedAtMs_ = loop_.now();
  return first;
}

void UdpSession::onChannelDatagram(UdpChannel&, const netstack::UdpEndpoint& from,
                                   BufferChain& payload) {
  if (closed_) return;
  dialBackoffMs_ = 0;  // the server answers again
  replied_ = true;
  touch();
  ++downPackets_;
  downBytes_ += payload.size();
  client_.countUdp(0, 0, 1, payload.size());
  netstack::UdpEndpoint src = from;
  const auto& resolver = client_.dnsResolver();
  if (resolver && from == *resolver) src = onDnsAnswer(payload);
  deliver(src, payload);
}

netstack::UdpEndpoint UdpSession::onDnsAnswer(const BufferChain& payload) {
  // A hijacked query's answer: from the address the app asked.
  netstack::UdpEndpoint src = dnsOrigin(payload);
  DnsCache* cache = client_.dnsCache();
  DnsNames* names = client_.dnsNames();
  if (cache != nullptr || names != nullptr) {
    // Only the answer to a query we sent (same id and question) is
    // cached or taught to the routing names (a spoofed answer must not
    // steer flows); the app still gets whatever came, and judges it.
    auto it = payload.size() >= 2 ? dnsOrigins_.find(dnsId(payload)) : dnsOrigins_.end();
    std::vector<uint8_t> bytes = payload.toVector();
    if (it != dnsOrigins_.end() && !it->second.question.empty() &&
        DnsCache::questionKey(bytes.data(), bytes.size()) == it->second.question) {
      if (cache != nullptr) cache->store(bytes.data(), bytes.size(), loop_.now());
      if (names != nullptr) names->learn(bytes.data(), bytes.size(), loop_.now());
    } else {
      client_.countDnsUnmatched();
    }
  }
  return src;
}

void UdpSession::deliver(netstack::UdpEndpoint src, BufferChain& payload) {
  src.addr = netstack::unmapV4(src.addr);
  if (app_.addr.isV6() && src.addr.isV4()) src.addr = mapV6(src.addr);
  if (src.addr.family != app_.addr.family || !client_.stack().sendUdp(src, app_, payload)) {
    ++drops_;
  }
}

void UdpSession::sendDirect(const netstack::UdpEndpoint& remote,
                            const netstack::UdpEndpoint& shown, BufferChain&& payload) {
  if (closed_) return;
  countUp(payload.size());
  const auto& directDns = client_.directResolver();
  if (directDns && remote == *directDns) rememberDnsOrigin(payload, shown);
  if (direct_ == nullptr) {
    direct_ = client_.makeDirectUdp();
    if (direct_ == nullptr) {
      ++drops_;
      return;
    }
    direct_->onReceive([this](const uint8_t* data, size_t n, const event::SocketAddress& from) {
      if (closed_) return;
      netstack::UdpEndpoint src;
      const sockaddr* sa = from.sa();
      if (sa->sa_family == AF_INET) {
        const auto* in = reinterpret_cast<const sockaddr_in*>(sa);
        src.addr = netstack::IpAddress::v4(reinterpret_cast<const uint8_t*>(&in->sin_addr));
      } else if (sa->sa_family == AF_INET6) {
        const auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
        src.addr = netstack::IpAddress::v6(in6->sin6_addr.s6_addr);
      } else {
        return;
      }
      src.port = from.port();
      replied_ = true;
      touch();
      ++downPackets_;
      ++directDown_;
      downBytes_ += n;
      client_.countUdp(0, 0, 1, n);
      BufferChain payload;
      payload.append(data, n);
      const auto& directDns = client_.directResolver();
      if (directDns && src == *directDns) src = onDnsAnswer(payload);
      deliver(src, payload);
    });
  }
  ++directUp_;
  const netstack::IpAddress ip = netstack::unmapV4(remote.addr);
  const auto to = event::SocketAddress::fromIpBytes(ip.bytes.data(), ip.size(), remote.port);
  if (!direct_->sendTo(to, payload)) ++drops_;
}

void UdpSession::onChannelClosed(UdpChannel& ch) {
  if (closed_) return;  // close() owns the channels now
  for (auto it = channels_.begin(); it != channels_.end(); ++it) {
    if (it->second.get() != &ch) continue;
    std::unique_ptr<UdpChannel> owned = std::move(it->second);
    channels_.erase(it);
    loop_.deferredDelete(std::move(owned));
    return;
  }
}

void UdpSession::rememberDnsOrigin(const BufferChain& payload, const netstack::UdpEndpoint& shown) {
  lastDnsShown_ = shown;
  if (payload.size() < 2) return;
  uint16_t id = dnsId(payload);
  if (dnsOrigins_.count(id) == 0) {
    if (dnsOrder_.size() >= kMaxDnsOrigins) {
      dnsOrigins_.erase(dnsOrder_.front());
      dnsOrder_.pop_front();
    }
    dnsOrder_.push_back(id);
  }
  std::string question;  // only the cache and the routing names need it
  if (client_.dnsCache() != nullptr || client_.dnsNames() != nullptr) {
    std::vector<uint8_t> bytes = payload.toVector();
    question = DnsCache::questionKey(bytes.data(), bytes.size());
  }
  dnsOrigins_[id] = DnsQuery{shown, std::move(question)};
}

netstack::UdpEndpoint UdpSession::dnsOrigin(const BufferChain& payload) const {
  if (payload.size() >= 2) {
    auto it = dnsOrigins_.find(dnsId(payload));
    if (it != dnsOrigins_.end()) return it->second.shown;
  }
  if (lastDnsShown_.port != 0) return lastDnsShown_;
  return *client_.dnsResolver();
}

void UdpSession::touch() {
  lastActivityMs_ = loop_.now();
  client_.touchUdp(*this);
}

uint64_t UdpSession::idleTimeoutMs() const {
  const config::ClientUdpConfig& u = client_.config().udp;
  return assured_ ? u.idle_timeout_ms : std::min(u.new_session_timeout_ms, u.idle_timeout_ms);
}

void UdpSession::armTimer() {
  if (closed_) return;
  const config::ClientConfig& cfg = client_.config();
  uint64_t deadline = lastActivityMs_ + idleTimeoutMs();
  for (const auto& [k, ch] : channels_) {
    if (!ch->connected()) {
      deadline = std::min(deadline, ch->startMs() + cfg.limits.connect_timeout_ms);
    }
  }
  uint64_t now = loop_.now();
  timer_.start(deadline > now ? deadline - now : 0, [this] { onTimer(); });
}

void UdpSession::onTimer() {
  if (closed_) return;
  const config::ClientConfig& cfg = client_.config();
  uint64_t now = loop_.now();
  if (now >= lastActivityMs_ + idleTimeoutMs()) {
    close("idle_timeout");
    return;
  }
  std::vector<UdpChannel*> late;
  for (const auto& [k, ch] : channels_) {
    if (!ch->connected() && now >= ch->startMs() + cfg.limits.connect_timeout_ms) {
      late.push_back(ch.get());
    }
  }
  for (UdpChannel* ch : late) {
    VT_WARN("udp #%" PRIu64 "/%" PRIu64 " to %s: server connection not made within %" PRIu64
            " ms",
            id_, ch->id(), ch->remote().toString().c_str(), cfg.limits.connect_timeout_ms);
    client_.onDialFailed();
    ch->close("connect_timeout");
  }
  armTimer();
}

void UdpSession::close(const char* reason) {
  if (closed_) return;
  closed_ = true;
  timer_.stop();
  auto channels = std::move(channels_);
  channels_.clear();
  for (auto& [k, ch] : channels) {
    ch->close("session_closed");
    loop_.deferredDelete(std::move(ch));
  }
  client_.countUdpDrops(drops_);
  // The direct socket stays (its callback may be running): closed_ mutes
  // it, and it goes with the session's deferred delete.
  std::string direct;
  if (direct_ != nullptr || directUp_ != 0) {
    direct = " direct=" + std::to_string(directUp_) + "/" + std::to_string(directDown_);
  }
  VT_FLOW_INFO("udp #%" PRIu64 " app=%s mode=%s channels=%" PRIu64 " up=%" PRIu64 "/%" PRIu64
          " down=%" PRIu64 "/%" PRIu64 " drops=%" PRIu64 "%s assured=%s ms=%" PRIu64 " reason=%s",
          id_, app_.toString().c_str(), config::udpModeName(client_.config().udp.mode),
          channelsOpened_, upPackets_, upBytes_, downPackets_, downBytes_, drops_, direct.c_str(),
          assured_ ? "yes" : "no", loop_.now() - startMs_, reason);
  client_.onUdpSessionClosed(*this);  // deferred delete: `this` stays valid for now
}

}  // namespace vt::client
