#include "client/client.h"

#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <chrono>
#include <cstring>

#include "client/dialled_ips.h"
#include "client/dns_cache.h"
#include "client/dns_names.h"
#include "client/tcp_session.h"
#include "client/tls_options.h"
#include "client/udp_channel.h"
#include "client/udp_session.h"
#include "codec/address.h"
#include "codec/icmp_error.h"
#include "codec/ip_nat.h"
#include "codec/simple_socks.h"
#include "codec/vless.h"
#include "core/log.h"
#include "event/udp_socket.h"
#include "netstack/tcp_flow.h"
#include "stream/tcp_stream.h"
#include "stream/tls_stream.h"
#include "stream/ws_stream.h"
#include "stream/vless_client_stream.h"
#include "tls/tls_engine.h"

namespace vt::client {

size_t FlowKeyHash::operator()(const netstack::FlowKey& k) const noexcept {
  // FNV-1a over the fields that identify the flow.
  uint64_t h = 1469598103934665603ULL;
  auto mix = [&h](const uint8_t* p, size_t n) {
    for (size_t i = 0; i < n; ++i) {
      h ^= p[i];
      h *= 1099511628211ULL;
    }
  };
  mix(k.src.bytes.data(), k.src.size());
  mix(k.dst.bytes.data(), k.dst.size());
  uint8_t ports[5] = {static_cast<uint8_t>(k.srcPort >> 8), static_cast<uint8_t>(k.srcPort),
                      static_cast<uint8_t>(k.dstPort >> 8), static_cast<uint8_t>(k.dstPort),
                      k.src.family};
  mix(ports, sizeof(ports));
  return static_cast<size_t>(h);
}

Client::Client(event::Loop& loop, const config::ClientConfig& cfg, ClientHooks hooks)
    : loop_(loop),
      cfg_(cfg),
      hooks_(std::move(hooks)),
      budget_(cfg.limits.buffer_budget_bytes),
      stackTimer_(loop),
      resolver_(loop),
      udpEvictionLog_(loop, kUdpEvictionLogMs, [this] { writeUdpEvictions(); }) {}

Result<std::unique_ptr<Client>> Client::create(event::Loop& loop,
                                               const config::ClientConfig& cfg,
                                               ClientHooks hooks) {
  std::unique_ptr<Client> c(new Client(loop, cfg, std::move(hooks)));
  if ((cfg.server.fwmark != 0 || c->hooks_.protect || !c->hooks_.nameservers.empty()) &&
      !cfg.server.address.is_ip) {
    // Reads /etc/hosts and /etc/resolv.conf now, at start-up.
    c->markedResolver_ = std::make_unique<ServerNameResolver>(loop, cfg.server.fwmark);
    if (!c->hooks_.nameservers.empty()) c->markedResolver_->setNameservers(c->hooks_.nameservers);
    if (c->hooks_.protect) c->markedResolver_->setSocketHook(c->hooks_.protect);
  }
  if (cfg.server.tls) {
    auto ctx = tls::TlsContext::create(clientTlsOptions(cfg.server));
    if (!ctx.ok()) return Error(ctx.error().code, "tls: " + ctx.error().message);
    c->tls_ = std::move(ctx).value();
  }
  c->rules_ = cfg.route.rules.set;
  c->geoip_ = cfg.route.rules.geoip;
  if (c->rules_ != nullptr && c->geoip_ != nullptr && cfg.route.rules.dial_by_name &&
      cfg.server.version == 1) {
    c->dialledIps_ = c->hooks_.dialledIps ? c->hooks_.dialledIps
                                          : std::make_shared<DialledIps>(
                                                kDnsNamesCapacity, cfg.route.rules.want_ip_ttl_ms);
  }
  if (cfg.server.version == 1 && cfg.mux.enabled) c->mux_ = std::make_unique<MuxPool>(*c, cfg.mux);
  if (cfg.server.version == 1 && cfg.pool.reuse) {
    c->pool_ = std::make_unique<ConnectionPool>(loop, cfg.pool.idle_timeout_ms, cfg.pool.max_idle);
  }
  if (cfg.server.address.is_ip) {
    auto a = event::SocketAddress::parseIp(cfg.server.address.host, cfg.server.address.port);
    if (!a) return Error(Errc::kConfig, "server address " + cfg.server.address.toString());
    c->serverAddrs_.push_back(*a);
  }
  netstack::NetStackOptions opt;
  opt.mtu = static_cast<uint16_t>(cfg.tun.mtu);
  if (cfg.tun.ipv4) {
    netstack::IpAddress ip;
    if (netstack::IpAddress::parse(cfg.tun.ipv4->address, ip)) {
      opt.ipv4 = ip;
      opt.ipv4Prefix = cfg.tun.ipv4->prefix;
    }
  }
  if (cfg.tun.ipv6) {
    netstack::IpAddress ip;
    if (netstack::IpAddress::parse(cfg.tun.ipv6->address, ip)) opt.ipv6 = ip;
  }
  // Sessions evict at max_flows; the netstack's own cap is only a backstop
  // for flows whose session is already closing.
  opt.maxFlows = cfg.limits.max_flows + cfg.limits.max_flows / 8 + 16;
  opt.maxPendingSyns = std::max<size_t>(256, cfg.limits.max_flows / 4);
  // A held SYN must outlive the connect timeout, or wait mode could never
  // answer a slow dial.
  opt.pendingSynTimeoutMs = static_cast<uint32_t>(
      std::min<uint64_t>(std::max<uint64_t>(30'000, cfg.limits.connect_timeout_ms + 2'000),
                         UINT32_MAX));
  if (cfg.dns.hijack && cfg.dns.resolver) {
    netstack::UdpEndpoint r;
    if (!netstack::IpAddress::parse(cfg.dns.resolver->host, r.addr)) {
      return Error(Errc::kConfig, "dns.resolver " + cfg.dns.resolver->toString());
    }
    r.addr = netstack::unmapV4(r.addr);
    r.port = cfg.dns.resolver->port;
    c->resolverEp_ = r;
    if (cfg.dns.direct_resolver && cfg.route.rules.set != nullptr) {
      netstack::UdpEndpoint d;
      if (!netstack::IpAddress::parse(cfg.dns.direct_resolver->host, d.addr)) {
        return Error(Errc::kConfig, "dns.direct_resolver " + cfg.dns.direct_resolver->toString());
      }
      d.addr = netstack::unmapV4(d.addr);
      d.port = cfg.dns.direct_resolver->port;
      c->directResolverEp_ = d;
    }
    if (cfg.dns.cache_size > 0) {
      c->dnsCache_ = c->hooks_.dnsCache ? c->hooks_.dnsCache
                                        : std::make_shared<DnsCache>(cfg.dns.cache_size);
    }
    if (c->rules_ != nullptr && (c->rules_->usesDomains() || cfg.route.rules.dial_by_name)) {
      c->dnsNames_ = c->hooks_.dnsNames ? c->hooks_.dnsNames
                                        : std::make_shared<DnsNames>(kDnsNamesCapacity);
    }
  }
  // udp_session ids: unpredictable per run, distinct per app endpoint.
  if (getrandom(&c->udpIdKey_, sizeof c->udpIdKey_, GRND_NONBLOCK) !=
      static_cast<ssize_t>(sizeof c->udpIdKey_)) {
    c->udpIdKey_ = static_cast<uint64_t>(
                       std::chrono::steady_clock::now().time_since_epoch().count()) ^
                   (reinterpret_cast<uintptr_t>(c.get()) << 16);
  }
  if (cfg.server.version == 1 && cfg.ip.enabled) {
    IpTunnelOptions io;
    io.queuePackets = cfg.ip.queue_packets;
    io.queueBytes = cfg.ip.queue_bytes;
    io.connectTimeoutMs = cfg.limits.connect_timeout_ms;
    IpTunnelHost& host = *c;
    c->ipTunnel_ = std::make_unique<IpTunnel>(loop, host, io);
    for (const config::Cidr& cidr : cfg.ip.passthrough) {
      auto pfx = IpPrefix::parse(cidr.toString());
      if (!pfx) return Error(Errc::kConfig, "ip.passthrough " + cidr.toString());
      opt.passthrough.push_back(*pfx);
    }
  }
  auto stack = netstack::NetStack::create(opt, *c);
  if (!stack.ok()) return Error(stack.error().code, "netstack: " + stack.error().message);
  c->stack_ = std::move(stack).value();
  return c;
}

Client::~Client() {
  stop();
  stackTimer_.stop();
  resolver_.cancel();
  if (markedResolver_) markedResolver_->cancel();
}

void Client::start() {
  if (serverAddrs_.empty() && !resolvePending_) resolve();
  if (mux_ != nullptr && !stopped_) mux_->refill();  // the warm connection
}

void Client::stop() {
  stopped_ = true;
  std::vector<TcpSession*> all(lru_.begin(), lru_.end());
  for (TcpSession* s : all) s->close("shutdown", true);
  if (pool_ != nullptr) pool_->clear();
  for (UdpSession* s : udpLru_.all()) s->close("shutdown");
  if (mux_ != nullptr) mux_->clear();
  if (ipTunnel_ != nullptr) ipTunnel_->stop();
  udpEvictionLog_.flush();
}

std::optional<std::string> Client::preferredSourceFor(const event::SocketAddress& peer) {
  // A UDP socket marked and protected like a server connection, connected
  // (no packet is sent): the kernel picks the source it would use now.
  int fd = ::socket(peer.family(), SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::nullopt;
  std::optional<std::string> out;
#ifdef SO_MARK
  if (cfg_.server.fwmark != 0) {
    uint32_t mark = cfg_.server.fwmark;
    (void)setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof mark);
  }
#endif
  if ((!hooks_.protect || hooks_.protect(fd)) && ::connect(fd, peer.sa(), peer.len()) == 0) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
      out = event::SocketAddress::fromSockaddr(reinterpret_cast<sockaddr*>(&ss)).ipString();
    }
  }
  ::close(fd);
  return out;  // nullopt: no route now (then nothing is closed for it)
}

size_t Client::networkChanged(const std::vector<std::string>* localAddresses) {
  if (stopped_) return 0;
  size_t closed = 0, closedGone = 0;
  std::unordered_map<std::string, std::optional<std::string>> preferred;  // per server address
  if (localAddresses != nullptr) {
    for (stream::TcpStream* s : outbound_->streams()) {
      if (!outbound_->contains(s)) continue;  // closed by an earlier one's fallout
      event::SocketAddress local = s->localAddress();
      if (local.family() == 0) continue;  // not connected yet: its dial fails or succeeds anew
      std::string ip = local.ipString();
      if (std::find(localAddresses->begin(), localAddresses->end(), ip) == localAddresses->end()) {
        ++closed;
        ++closedGone;
        s->close(stream::CloseReason::kReset, "network changed: local address " + ip + " gone");
        continue;
      }
      // The address is still here, but the route to the server may now
      // leave from another one (the default route moved to the other
      // uplink): packets would go out there with this old source and be
      // dropped on the way (carriers filter foreign sources), so the
      // connection would stall until its timeouts. Closed too.
      event::SocketAddress peer = s->peerAddress();
      std::string key = peer.toString();
      auto it = preferred.find(key);
      if (it == preferred.end()) it = preferred.emplace(key, preferredSourceFor(peer)).first;
      if (it->second && *it->second != ip) {
        ++closed;
        s->close(stream::CloseReason::kReset,
                 "network changed: the server is now reached from " + *it->second + ", not " + ip);
      }
    }
  }
  ++stats_.networkChanges;
  stats_.networkClosed += closed;
  VT_INFO("network changed: %zu server connections closed (%zu on gone addresses, %zu on an old "
          "path); dropping idle ones%s",
          closed, closedGone, closed - closedGone,
          cfg_.server.address.is_ip ? "" : ", looking the server's name up again");
  if (pool_ != nullptr) pool_->clear();
  if (dnsCache_ != nullptr) dnsCache_->clear();
  if (mux_ != nullptr) mux_->dropIdle();
  lastFailed_.reset();
  if (!cfg_.server.address.is_ip && !resolvePending_) resolve();
  return closed;
}

namespace {

// Where the server could not route a packet to anyway, or where it would
// leak the client's own link: never sent through CmdIP.
bool routableDestination(bool v6, const uint8_t* a) {
  if (codec::ipIsUnspecified(v6, a) || codec::ipIsLoopback(v6, a) || codec::ipIsMulticast(v6, a) ||
      codec::ipIsBroadcast(v6, a)) {
    return false;
  }
  if (v6) return !(a[0] == 0xfe && (a[1] & 0xc0) == 0x80);  // fe80::/10
  return !(a[0] == 169 && a[1] == 254);                       // 169.254.0.0/16
}

}  // namespace

bool Client::onOtherPacket(const uint8_t* packet, size_t len) {
  if (hooks_.otherPacketElsewhere && ipTunnel_ != nullptr && !stopped_ &&
      hooks_.otherPacketElsewhere(packet, len)) {
    return true;
  }
  return handleOtherPacket(packet, len);
}

bool Client::handleOtherPacket(const uint8_t* packet, size_t len) {
  // Without CmdIP (v0, ip.enabled = false) or once stopping: NetStack
  // drops the packet and counts it (otherDropped), as before CmdIP.
  if (ipTunnel_ == nullptr || stopped_) return false;
  // NetStack parsed the header: the version is 4 or 6 and it is whole.
  const bool v6 = (packet[0] >> 4) == 6;
  if (v6 && !cfg_.route.carry_ipv6) {
    ++stats_.ipRefusedV6;
    return true;
  }
  if (!routableDestination(v6, packet + (v6 ? 24 : 16))) {
    ++stats_.ipNotRoutable;
    return true;
  }
  ipTunnel_->send(packet, len);  // drops are counted there
  return true;
}

std::unique_ptr<stream::VlessClientStream> Client::openIpStream() {
  codec::Request req;
  req.command = codec::Command::kIp;  // v1, no address (docs/protocol.md 3.7)
  return makeStream(std::move(req));
}

void Client::deliverIpPacket(const uint8_t* packet, size_t len) {
  // The same writer as the netstack's output: its backlog is bounded and
  // counts its drops.
  if (sink_ == nullptr) return;
  iovec iov{const_cast<uint8_t*>(packet), len};
  sink_->writePacket(netstack::PacketView{&iov, 1, len});
}

void Client::touch(TcpSession& s) {
  if (s.closed_) return;
  lru_.splice(lru_.begin(), lru_, s.lru_);
}

void Client::onOutput(const netstack::PacketView& packet) {
  if (sink_ != nullptr) sink_->writePacket(packet);
}

bool Client::isServerItself(const netstack::FlowKey& key) const {
  std::string dst = key.dst.toString();
  for (const auto& a : serverAddrs_) {
    if (a.port() == key.dstPort && a.ipString() == dst) return true;
  }
  return false;
}

void Client::onTcpSyn(const netstack::FlowKey& key) {
  if (stopped_) {
    stack_->rejectPending(key);
    return;
  }
  if (key.dst.isV6() && !cfg_.route.carry_ipv6) {
    // Black-holed inside the TUN (route.carry_ipv6 = false): a RST at once,
    // so Happy Eyeballs falls back to IPv4 without waiting.
    ++stats_.ipv6Refused;
    stack_->rejectPending(key);
    return;
  }
  if (isServerItself(key)) {
    // Our own tunnel traffic came back through the TUN: the routes (or a
    // missing fwmark rule) send the server's address into the tunnel.
    ++stats_.loopsRefused;
    VT_WARN("refused %s: it is the server's own address (a routing loop through the TUN)",
            key.toString().c_str());
    stack_->rejectPending(key);
    return;
  }
  TcpSession::Route how = TcpSession::Route::kProxy;
  std::string knownName;  // from the DNS answers
  if (rules_ != nullptr && !hijacksDns(key)) {
    std::string& name = knownName;
    const route::Decision d = routeFor(key.dst, key.dstPort, route::Network::kTcp, {}, &name);
    if (name.empty() && nameCouldMatter(d)) {
      // A domain rule may still decide: the session accepts the flow and
      // reads its first bytes (TLS SNI, HTTP Host) before it dials.
      how = TcpSession::Route::kSniff;
    } else if (d.action == route::Action::kBlock) {
      ++stats_.flowsBlocked;
      VT_DEBUG("blocked %s%s%s (rule %s, %s)", key.toString().c_str(), name.empty() ? "" : " name=",
               name.c_str(), d.matchedRule() ? std::to_string(d.rule + 1).c_str() : "default",
               d.block_style == route::BlockStyle::kDrop ? "dropped" : "reset");
      if (d.block_style == route::BlockStyle::kDrop) {
        stack_->dropPending(key);
      } else {
        stack_->rejectPending(key);
      }
      return;
    } else if (d.action == route::Action::kDirect) {
      how = TcpSession::Route::kDirect;
    }
  }
  auto it = sessions_.find(key);
  if (it != sessions_.end()) {
    // A stale session for this 4-tuple; the SYN now pending is the new
    // one's, so the old session must not reject it on its way out.
    it->second->accepted_ = true;
    it->second->close("replaced", true);
  }
  while (!lru_.empty() && sessions_.size() >= cfg_.limits.max_flows) evictOne();

  auto s = std::make_unique<TcpSession>(*this, key, how, std::move(knownName));
  TcpSession* raw = s.get();
  lru_.push_front(raw);
  raw->lru_ = lru_.begin();
  sessions_.emplace(key, std::move(s));
  ++stats_.flowsOpened;
  if (how == TcpSession::Route::kDirect) ++stats_.flowsDirect;
  raw->start();
}

void Client::evictOne() {
  TcpSession* victim = lru_.back();
  ++stats_.evicted;
  victim->close("evicted", true);
}

void Client::onTcpAccepted(std::unique_ptr<netstack::TcpFlow> flow) {
  auto it = sessions_.find(flow->key());
  if (it == sessions_.end() || it->second->closed()) {
    // The session ended while the handshake completed: dropping the flow
    // here resets the app.
    return;
  }
  it->second->attach(std::move(flow));
}

void Client::onTimerInterval(uint32_t intervalMs) {
  if (intervalMs == 0) {
    stackTimer_.stop();
  } else {
    stackTimer_.start(intervalMs, [this] { stack_->onTimer(); }, intervalMs);
  }
}

std::unique_ptr<stream::VlessClientStream> Client::makeStream(codec::Request req) {
  if (serverAddrs_.empty()) return nullptr;
  auto tcp = stream::TcpStream::create(loop_, serverAddrs_.front());
  tcp->joinSet(outbound_);
  if (cfg_.server.fwmark != 0) tcp->setMark(cfg_.server.fwmark);
  if (hooks_.protect) {
    int fd = tcp->fd();
    if (fd >= 0 && !hooks_.protect(fd)) tcp->refuse("protect() refused the socket");
  }
  tcp->setNoDelay(true);
  tcp->setBufferBudget(&budget_);
  stream::StreamPtr s = std::move(tcp);
  if (tls_) s = stream::TlsStream::create(std::move(s), tls_);
  if (const auto& ws = cfg_.server.ws) {
    stream::WsClientOptions o;
    o.path = ws->path;
    o.host = !ws->host.empty()          ? ws->host
             : !cfg_.server.sni.empty() ? cfg_.server.sni
                                        : cfg_.server.address.host;
    o.extra_headers = ws->headers;
    o.early_data = ws->early_data;
    o.close_on_end = ws->half_close;
    s = stream::WsStream::createClient(std::move(s), std::move(o));
  }
  req.version = cfg_.server.version;
  req.uuid = cfg_.server.uuid;
  return stream::VlessClientStream::create(std::move(s), std::move(req));
}

stream::StreamPtr Client::makeOutbound(const netstack::FlowKey& key, bool want_ip, bool allowPool,
                                       bool* pooled, std::string_view name,
                                       stream::VlessClientStream** named) {
  if (pooled != nullptr) *pooled = false;
  if (named != nullptr) *named = nullptr;
  codec::Request req;
  req.command = codec::Command::kTcp;
  netstack::UdpEndpoint dst{key.dst, key.dstPort};
  // DNS hijack: TCP queries go to the resolver whatever the app dialled
  // (lwIP still answers as the address the app chose).
  if (hijacksDns(key)) {
    dst = *resolverEp_;
    ++stats_.dnsTcpHijacked;
  }
  req.target = udpAddress(dst);
  req.want_ip = want_ip && cfg_.server.version == 1;
  const bool byName = cfg_.route.rules.dial_by_name && !name.empty() && !hijacksDns(key);
  bool learn = false;  // the server's address for the name is still to learn
  if (byName) {
    req.target = codec::Address::fromDomain(name, key.dstPort);
    learn = req.want_ip && dialledIps_ != nullptr && !dialledIps_->lookup(name, loop_.now());
  }
  if (mux_ != nullptr && !learn) {
    // Wait mode: the stream reports connected on the server's answer. A
    // stream rides a shared connection, which may die under it before the
    // answer: the first try counts as pooled (TcpSession tries once more).
    if (pooled != nullptr) *pooled = allowPool;
    return mux_->open({codec::SimpleSocksCommand::kTcp, *req.target}, req.want_ip);
  }
  // Reuse only in wait mode (v1's default): there the app has sent nothing
  // before the server's answer, so a pooled connection that turns out dead
  // is retried on a fresh one unseen. In immediate mode the app's first
  // bytes would already be on the dead connection.
  if (pool_ == nullptr || !req.want_ip) {
    auto s = makeStream(std::move(req));
    if (named != nullptr && learn) *named = s.get();
    return s;
  }
  req.reuse = true;
  std::unique_ptr<stream::VlessClientStream> s;
  if (stream::StreamPtr idle = allowPool ? pool_->take() : nullptr; idle != nullptr) {
    req.version = cfg_.server.version;
    req.uuid = cfg_.server.uuid;
    s = stream::VlessClientStream::createPooled(std::move(idle), std::move(req));
    if (pooled != nullptr) *pooled = true;
  } else {
    s = makeStream(std::move(req));
    if (s == nullptr) return nullptr;
  }
  ConnectionPool* pool = pool_.get();
  s->setRelease([pool](stream::StreamPtr inner) { pool->put(std::move(inner)); });
  if (named != nullptr && learn) *named = s.get();
  return s;
}

stream::StreamPtr Client::makeUdpOutbound(const netstack::UdpEndpoint& target,
                                          std::optional<uint64_t> udpSession) {
  if (cfg_.udp.mode == config::UdpMode::kMux && mux_ != nullptr) {
    // One stream per app endpoint; every datagram names its peer. To our
    // server (smux VER 2) the header names the udp_session instead of the
    // first peer, so the NAT socket outlives the stream (network changes).
    codec::Address head = udpAddress(target);
    if (udpSession && cfg_.mux.version == 2) {
      head = codec::Address::fromDomain(codec::udpSessionDomain(*udpSession), 0);
    }
    return mux_->open({codec::SimpleSocksCommand::kUdp, head}, false);
  }
  codec::Request req;
  req.command = codec::Command::kUdp;
  req.target = udpAddress(target);
  if (udpSession && cfg_.udp.mode == config::UdpMode::kSeparated) {
    req.udp_multi = true;
    req.udp_session = udpSession;
  }
  return makeStream(std::move(req));
}

uint64_t Client::newUdpSessionId() {
  // splitmix64 of a random key plus a counter: distinct per app endpoint,
  // unpredictable across runs.
  uint64_t z = udpIdKey_ + (++udpIdSeq_) * 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

bool Client::answerFromCache(const netstack::UdpEndpoint& app, const netstack::UdpEndpoint& dst,
                             const BufferChain& payload) {
  if (!dnsCache_) return false;
  std::vector<uint8_t> q = payload.toVector();
  auto answer = dnsCache_->lookup(q.data(), q.size(), loop_.now());
  if (!answer) return false;
  // The names may have forgotten what the cache still answers (their LRU
  // is their own): taught again from the answer the app now gets.
  if (dnsNames_ != nullptr) dnsNames_->learn(answer->data(), answer->size(), loop_.now());
  BufferChain reply;
  reply.append(*answer);
  if (!stack_->sendUdp(dst, app, reply)) return false;
  ++stats_.dnsCacheHits;
  return true;
}

bool Client::onUdp(const netstack::UdpEndpoint& app, const netstack::UdpEndpoint& dst,
                   BufferChain&& payload) {
  if (stopped_ || (dst.addr.isV6() && !cfg_.route.carry_ipv6)) {
    ++stats_.udpRefused;
    return false;
  }
  return handleUdp(app, dst, std::move(payload));
}

bool Client::handleUdp(const netstack::UdpEndpoint& app, const netstack::UdpEndpoint& dst,
                       BufferChain&& payload) {
  if (stopped_ || (dst.addr.isV6() && !cfg_.route.carry_ipv6)) {
    ++stats_.udpRefused;
    return false;
  }
  netstack::UdpEndpoint remote = dst;
  remote.addr = netstack::unmapV4(remote.addr);
  const bool dns = resolverEp_ && dst.port == 53;
  // Any worker answers from the (shared) cache; counted where handled.
  if (dns && answerFromCache(app, dst, payload)) {
    ++stats_.dnsHijacked;
    return true;
  }
  bool direct = false;
  if (rules_ != nullptr && !dns) {
    const route::Decision d = routeFor(remote.addr, remote.port, route::Network::kUdp);
    if (d.action == route::Action::kBlock) {
      countRouted(d.action, false);
      if (d.block_style == route::BlockStyle::kReset && app.addr.family == dst.addr.family) {
        // As a host with nothing on that port answers: the app's
        // connected socket fails now (ECONNREFUSED). "drop": silence.
        uint8_t head[1232];
        const size_t n = payload.copyOut(0, head, sizeof head);
        std::vector<uint8_t> icmp =
            codec::icmpPortUnreachable(app.addr.isV6(), app.addr.bytes.data(), app.port,
                                       dst.addr.bytes.data(), dst.port, head, n);
        deliverIpPacket(icmp.data(), icmp.size());
      }
      return true;
    }
    direct = d.action == route::Action::kDirect;
  }
  auto it = udpSessions_.find(app);
  if (it == udpSessions_.end()) {
    // Workers: the endpoint's session may live elsewhere (then the datagram
    // goes there), or this client claims it now and opens it below.
    if (hooks_.udpElsewhere && hooks_.udpElsewhere(app, dst, payload)) return true;
    while (udpSessions_.size() >= cfg_.udp.max_sessions) {
      UdpSession* victim = udpLru_.victim();
      if (victim == nullptr) break;
      ++stats_.udpEvicted;
      ++udpEvictedUnlogged_;
      victim->close("evicted");
      udpEvictionLog_.note();
    }
    auto s = std::make_unique<UdpSession>(*this, app, newUdpSessionId());
    UdpSession* raw = s.get();
    raw->lru_ = udpLru_.insert(raw);
    it = udpSessions_.emplace(app, std::move(s)).first;
    ++stats_.udpSessionsOpened;
    raw->armTimer();
  }
  if (dns) {
    ++stats_.dnsHijacked;
    remote = *resolverEp_;
    if (directResolverEp_) {
      // DNS follows the rules: a name a direct rule matches is asked
      // outside the tunnel; every other name only through it.
      std::vector<uint8_t> q = payload.toVector();
      const std::string name = DnsNames::questionName(q.data(), q.size());
      if (!name.empty() && rules_->matchName(name).action == route::Action::kDirect) {
        ++stats_.dnsDirect;
        VT_DEBUG("dns: query for %s from %s -> %s (direct)", name.c_str(),
                 app.toString().c_str(), directResolverEp_->toString().c_str());
        it->second->sendDirect(*directResolverEp_, dst, std::move(payload));
        return true;
      }
    }
    VT_DEBUG("dns: query from %s to %s (%zu bytes) -> %s", app.toString().c_str(),
             dst.toString().c_str(), payload.size(), resolverEp_->toString().c_str());
  }
  if (direct) {
    countRouted(route::Action::kDirect, false);
    it->second->sendDirect(remote, dst, std::move(payload));
    return true;
  }
  it->second->send(remote, dst, std::move(payload));
  return true;
}

void Client::touchUdp(UdpSession& s) {
  if (s.closed_) return;
  udpLru_.touch(s.lru_, s.assured_);
}

void Client::onUdpAssured(UdpSession& s) {
  if (s.closed_) return;
  udpLru_.promote(s.lru_);
}

void Client::countUdpChannelEvicted() {
  ++stats_.udpChannelsEvicted;
  ++udpChannelsEvictedUnlogged_;
  udpEvictionLog_.note();
}

void Client::writeUdpEvictions() {
  if (udpEvictedUnlogged_ != 0) {
    VT_WARN("udp: evicted %" PRIu64 " session%s at udp.max_sessions=%u", udpEvictedUnlogged_,
            udpEvictedUnlogged_ == 1 ? "" : "s", cfg_.udp.max_sessions);
  }
  if (udpChannelsEvictedUnlogged_ != 0) {
    VT_WARN("udp: closed %" PRIu64 " channel%s at udp.max_channels=%u", udpChannelsEvictedUnlogged_,
            udpChannelsEvictedUnlogged_ == 1 ? "" : "s", cfg_.udp.max_channels);
  }
  udpEvictedUnlogged_ = udpChannelsEvictedUnlogged_ = 0;
}

void Client::onUdpSessionClosed(UdpSession& s) {
  ++stats_.udpSessionsClosed;
  udpLru_.erase(s.lru_, s.assured_);
  auto it = udpSessions_.find(s.app());
  if (it == udpSessions_.end() || it->second.get() != &s) return;
  std::unique_ptr<UdpSession> owned = std::move(it->second);
  udpSessions_.erase(it);
  if (hooks_.udpSessionClosed) hooks_.udpSessionClosed(owned->app());
  loop_.deferredDelete(std::move(owned));
}

void Client::waitForServerAddress(const netstack::FlowKey& key) {
  // Bounded: one entry per live session at most (max_flows), duplicates
  // only when a session retries.
  if (waiting_.size() < cfg_.limits.max_flows * 2u) waiting_.push_back(key);
  if (!resolvePending_) resolve();
}

void Client::onDialFailed() {
  ++stats_.connectFailed;
  // The next session tries the next address (a name may have IPv6 and
  // IPv4 answers of which only one works).
  if (serverAddrs_.size() > 1) {
    lastFailed_ = serverAddrs_.front();
    std::rotate(serverAddrs_.begin(), serverAddrs_.begin() + 1, serverAddrs_.end());
  }
  // A name may have moved: look it up again, keeping the old answer for
  // the sessions that start meanwhile.
  if (!cfg_.server.address.is_ip && !resolvePending_) resolve();
}

void Client::resolve() {
  resolvePending_ = true;
  auto done = [this](Result<std::vector<event::SocketAddress>> r) { onResolved(std::move(r)); };
  if (markedResolver_ != nullptr) {
    // getaddrinfo's DNS sockets carry no mark and cannot be protected: with
    // auto_route (or an embedder's VPN) they would be routed into our own
    // tunnel.
    markedResolver_->resolve(cfg_.server.address.host, cfg_.server.address.port, std::move(done));
    return;
  }
  resolver_.resolve(cfg_.server.address.host, cfg_.server.address.port, std::move(done));
}

void Client::onResolved(Result<std::vector<event::SocketAddress>> r) {
  resolvePending_ = false;
  std::vector<netstack::FlowKey> waiting;
  waiting.swap(waiting_);
  if (r.ok() && !r.value().empty()) {
    serverAddrs_ = std::move(r).value();
    if (serverAddrs_.size() > 1 && lastFailed_ && serverAddrs_.front() == *lastFailed_) {
      std::rotate(serverAddrs_.begin(), serverAddrs_.begin() + 1, serverAddrs_.end());
    }
    VT_INFO("server %s resolved to %s", cfg_.server.address.toString().c_str(),
            serverAddrs_.front().toString().c_str());
    if (mux_ != nullptr) mux_->refill();  // the warm connection
    for (const auto& k : waiting) {
      auto it = sessions_.find(k);
      if (it != sessions_.end()) it->second->dialReady();
    }
    return;
  }
  std::string why = r.ok() ? "no addresses" : r.error().message;
  VT_WARN("cannot resolve the server %s: %s", cfg_.server.address.toString().c_str(), why.c_str());
  for (const auto& k : waiting) {
    auto it = sessions_.find(k);
    if (it == sessions_.end()) continue;
    if (!serverAddrs_.empty()) {
      it->second->dialReady();  // keep using the previous answer
    } else {
      it->second->dialImpossible(why);
    }
  }
}

void Client::onSessionClosed(TcpSession& s) {
  ++stats_.flowsClosed;
  lru_.erase(s.lru_);
  auto it = sessions_.find(s.key());
  if (it == sessions_.end() || it->second.get() != &s) return;
  std::unique_ptr<TcpSession> owned = std::move(it->second);
  sessions_.erase(it);
  loop_.deferredDelete(std::move(owned));
}

}  // namespace vt::client
