#include "server/server.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cinttypes>
#include <cstdlib>
#include <cstring>

#include "core/log.h"
#include "server/ip_exit.h"
#include "server/server_session.h"
#include "stream/mux_session.h"
#include "stream/tcp_stream.h"
#include "stream/tls_stream.h"
#include "stream/ws_stream.h"
#include "tls/tls_engine.h"

namespace vt::server {

Result<std::shared_ptr<tls::TlsContext>> Server::buildTls(const config::ServerConfig& cfg) {
  if (!cfg.tls) return std::shared_ptr<tls::TlsContext>();
  tls::TlsOptions opts;
  opts.role = tls::Role::kServer;
  opts.cert_file = cfg.tls->cert_file;
  opts.key_file = cfg.tls->key_file;
  opts.alpn = cfg.tls->alpn;
  opts.session_tickets = cfg.tls->session_tickets;
  opts.ticket_lifetime_s = static_cast<uint32_t>(cfg.tls->ticket_lifetime_ms / 1000);
  return tls::TlsContext::create(opts);
}

Result<std::unique_ptr<Server>> Server::create(event::Loop& loop, const config::ServerConfig& cfg) {
  auto ctx = buildTls(cfg);
  if (!ctx.ok()) return ctx.error();
  return std::make_unique<Server>(loop, cfg, std::move(ctx).value());
}

Status Server::reloadTls(const config::ServerConfig& fresh) {
  if ((tls_ != nullptr) != fresh.tls.has_value()) {
    return Error(Errc::kConfig, "tls: turning TLS on or off needs a restart");
  }
  if (tls_ == nullptr) return Status::okStatus();
  auto ctx = buildTls(fresh);
  if (!ctx.ok()) return ctx.error();
  tls_handshakes_before_ += tls_->stats().handshakes;
  tls_tickets_before_ += tls_->stats().ticketsAccepted;
  tls_ = std::move(ctx).value();  // live TlsStreams hold the old one
  return Status::okStatus();
}

uint64_t Server::tlsHandshakes() const {
  return tls_handshakes_before_ + (tls_ != nullptr ? tls_->stats().handshakes : 0);
}

uint64_t Server::tlsTicketsAccepted() const {
  return tls_tickets_before_ + (tls_ != nullptr ? tls_->stats().ticketsAccepted : 0);
}

Server::Server(event::Loop& loop, const config::ServerConfig& cfg,
               std::shared_ptr<tls::TlsContext> tls)
    : loop_(loop),
      cfg_(cfg),
      auth_(cfg.users),
      egress_(cfg.egress),
      own_addr_timer_(loop),
      tls_(std::move(tls)),
      budget_(cfg.buffer_budget_bytes),
      resolvers_(loop,
                 event::ResolverPool::Options{
                     threadPoolSize(),
                     std::min<size_t>(cfg.max_lookups_per_user,
                                      std::max<size_t>(1, threadPoolSize() - 1)),
                     256}),
      udp_nat_(loop, cfg.udp),
      started_ms_(loop.now()),
      refused_log_(loop, 10'000, [this] { writeRefusedSummary(); }) {
  for (const config::ServerUser& u : cfg_.users) userKey(u.name);  // their counters, listed at 0
}

namespace {
// Interfaces change rarely; an address added since the last look is
// reachable as a target for at most this long.
constexpr uint64_t kOwnAddressRefreshMs = 30'000;
}  // namespace

size_t Server::threadPoolSize() {
  // libuv reads the variable when its pool starts; vless-server sets it
  // before anything runs (16 unless the operator set it).
  const char* v = std::getenv("UV_THREADPOOL_SIZE");
  long n = v == nullptr ? 4 : std::strtol(v, nullptr, 10);
  return static_cast<size_t>(std::clamp<long>(n <= 0 ? 4 : n, 1, 1024));
}

void Server::refreshOwnAddresses() {
  std::vector<event::SocketAddress> own = event::interfaceAddresses();
  for (const auto& l : listeners_) own.push_back(l->localAddress());
  egress_.setOwnAddresses(own);
}

Server::~Server() {
  stop();
  // Sessions still waiting for a stream's onClose are dropped here; see the
  // lifetime note in the header.
  sessions_.clear();
}

Status Server::start() {
  if (cfg_.ip.enabled) {
    // First: a server that cannot carry IP sessions does not start at all.
    ip_exit_ = std::make_unique<IpExit>(loop_, cfg_.ip);
    if (Status st = ip_exit_->start(); !st.ok()) {
      ip_exit_.reset();
      return st;
    }
  }
  for (const auto& hp : cfg_.listen) {
    auto addr = event::SocketAddress::parseIp(hp.host, hp.port);
    if (!addr) return Error(Errc::kInvalidArgument, "bad listen address " + hp.toString());
    auto l = stream::TcpListener::listen(
        loop_, *addr, [this](std::unique_ptr<stream::TcpStream> s) { onAccept(std::move(s)); });
    if (!l.ok()) {
      return Error(l.error().code, "listen " + hp.toString() + ": " + l.error().message);
    }
    std::unique_ptr<stream::TcpListener> listener = std::move(l).value();
    VT_INFO("listening on %s%s", listener->localAddress().toString().c_str(), tls_ ? " (tls)" : "");
    if (!tls_ && !addr->isLoopback()) {
      VT_WARN("listening on %s WITHOUT TLS: user UUIDs and all traffic cross the network in "
              "clear; add a [tls] table unless TLS is terminated in front of this server",
              listener->localAddress().toString().c_str());
    }
    listeners_.push_back(std::move(listener));
  }
  refreshOwnAddresses();
  std::string allow, deny;
  for (const auto& p : cfg_.egress.allow) allow += (allow.empty() ? "" : " ") + p.toString();
  for (const auto& p : cfg_.egress.deny) deny += (deny.empty() ? "" : " ") + p.toString();
  VT_INFO("egress: loopback, private, link-local, multicast, reserved and this host's addresses "
          "refused; allow [%s]; deny [%s]",
          allow.c_str(), deny.c_str());
  own_addr_timer_.start(
      kOwnAddressRefreshMs, [this] { refreshOwnAddresses(); }, kOwnAddressRefreshMs);
  return Status::okStatus();
}

void Server::stop() {
  if (stopped_) return;
  stopped_ = true;
  own_addr_timer_.stop();
  refused_log_.flush();
  listeners_.clear();
  std::vector<ServerSession*> live;
  live.reserve(sessions_.size());
  for (auto& [p, s] : sessions_) live.push_back(p);
  for (ServerSession* s : live) {
    if (sessions_.count(s) != 0) s->close(stream::CloseReason::kLocalClose, "server stopping");
  }
  udp_nat_.clear();  // after the sessions: their channels have left it
  // After the sessions too (their IP sessions shut down synchronously); the
  // object stays for the stop line's figures.
  if (ip_exit_) ip_exit_->stop();
}

std::vector<event::SocketAddress> Server::localAddresses() const {
  std::vector<event::SocketAddress> out;
  for (const auto& l : listeners_) out.push_back(l->localAddress());
  return out;
}

std::string Server::sourceKey(const event::SocketAddress& a) {
  if (a.family() == AF_INET6) {
    const auto* s6 = reinterpret_cast<const sockaddr_in6*>(a.sa());
    const uint8_t* b = s6->sin6_addr.s6_addr;
    static const uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(b, kMapped, 12) != 0) {
      // One host usually has a whole /64.
      uint8_t net[16] = {};
      std::memcpy(net, b, 8);
      char text[INET6_ADDRSTRLEN];
      inet_ntop(AF_INET6, net, text, sizeof text);
      return std::string(text) + "/64";
    }
    char text[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, b + 12, text, sizeof text);
    return text;
  }
  return a.ipString();
}

void Server::noteRefused(uint64_t& counter, const event::SocketAddress& peer, const char* why) {
  ++counter;
  last_refused_ = peer.toString() + " (" + why + ")";
  refused_log_.note();
}

void Server::writeRefusedSummary() {
  AdmissionStats d;
  d.max_connections = refused_.max_connections - refused_logged_.max_connections;
  d.source_connections = refused_.source_connections - refused_logged_.source_connections;
  d.source_handshakes = refused_.source_handshakes - refused_logged_.source_handshakes;
  d.user_connections = refused_.user_connections - refused_logged_.user_connections;
  refused_logged_ = refused_;
  VT_WARN("refused connections: %" PRIu64 " at max_connections, %" PRIu64
          " at max_connections_per_source, %" PRIu64 " at max_handshakes_per_source, %" PRIu64
          " at max_connections_per_user (at most one such line per 10 s); last: %s",
          d.max_connections, d.source_connections, d.source_handshakes, d.user_connections,
          last_refused_.c_str());
}

void Server::onAccept(std::unique_ptr<stream::TcpStream> tcp) {
  if (stopped_) {
    tcp->close(stream::CloseReason::kLocalClose);
    loop_.deferredDelete(std::move(tcp));
    return;
  }
  // Admission first: a refused connection costs no TLS state, no session.
  const event::SocketAddress peer = tcp->peerAddress();
  std::string source = sourceKey(peer);
  auto it = sources_.find(source);
  const SourceCount have = it == sources_.end() ? SourceCount{} : it->second;
  uint64_t* counter = nullptr;
  std::string why;
  if (active_ >= cfg_.max_connections) {
    counter = &refused_.max_connections;
    why = "max_connections " + std::to_string(cfg_.max_connections);
  } else if (have.connections >= cfg_.max_connections_per_source) {
    counter = &refused_.source_connections;
    why = "max_connections_per_source " + std::to_string(cfg_.max_connections_per_source);
  } else if (have.handshakes >= cfg_.max_handshakes_per_source) {
    counter = &refused_.source_handshakes;
    why = "max_handshakes_per_source " + std::to_string(cfg_.max_handshakes_per_source);
  }
  if (counter != nullptr) {
    noteRefused(*counter, peer, why.c_str());
    tcp->close(stream::CloseReason::kEvicted);
    loop_.deferredDelete(std::move(tcp));
    return;
  }
  SourceCount& sc = sources_[source];
  ++sc.connections;
  ++sc.handshakes;
  ++totals_.accepted;

  tcp->setNoDelay(true);
  tcp->setBufferBudget(&budget_);
  uint64_t id = next_id_++;
  // docs/protocol.md 7 "Ending": v2ray's and Xray's clients drop what
  // they hold on a close; ours waits this long after the last data.
  constexpr uint64_t kWsCloseDelayMs = 500;
  std::unique_ptr<ServerSession> session;
  stream::TlsStream* tls_raw = nullptr;
  stream::WsStream* ws_raw = nullptr;
  stream::TcpStream* socket = tcp.get();
  // TCP, then TLS, then WebSocket (each optional); the session reads the
  // top one.
  stream::StreamPtr top = std::move(tcp);
  if (tls_) {
    auto tls = stream::TlsStream::create(std::move(top), tls_);
    tls_raw = tls.get();
    top = std::move(tls);
  }
  if (cfg_.ws) {
    stream::WsServerOptions wo;
    wo.path = cfg_.ws->path;
    wo.host = cfg_.ws->host;
    wo.loop = &loop_;
    wo.close_delay_ms = kWsCloseDelayMs;
    auto ws = stream::WsStream::createServer(std::move(top), std::move(wo));
    ws_raw = ws.get();
    top = std::move(ws);
  }
  stream::Stream* in = top.get();
  auto* owner = dynamic_cast<event::DeferredDeletable*>(top.get());
  (void)top.release();
  session = std::make_unique<ServerSession>(*this, in, std::unique_ptr<event::DeferredDeletable>(owner), id);
  ServerSession* p = session.get();
  sessions_.emplace(p, std::move(session));
  ++active_;
  p->setSource(std::move(source), socket);
  p->start(tls_raw != nullptr || ws_raw != nullptr);
  // After the session has set its callbacks: the handshake may report.
  if (tls_raw != nullptr) tls_raw->startServer();
  if (ws_raw != nullptr) ws_raw->startServer();
}

void Server::onHandshakeDone(const std::string& source) {
  auto it = sources_.find(source);
  if (it != sources_.end() && it->second.handshakes > 0) --it->second.handshakes;
}

void Server::onSourceClosed(const std::string& source) {
  auto it = sources_.find(source);
  if (it == sources_.end()) return;
  if (it->second.connections > 0) --it->second.connections;
  if (it->second.connections == 0) sources_.erase(it);
}

bool Server::admitUser(const char* user, std::string* why) {
  size_t& n = user_conns_[user];
  if (n >= cfg_.max_connections_per_user) {
    if (n == 0) user_conns_.erase(user);
    *why = "max_connections_per_user (" + std::to_string(cfg_.max_connections_per_user) +
           ") reached";
    ++refused_.user_connections;
    last_refused_ = std::string("user ") + user + " (max_connections_per_user)";
    refused_log_.note();
    return false;
  }
  ++n;
  ++user_stats_[user].connections;
  ++totals_.connections;
  return true;
}

std::shared_ptr<stream::RateLimit> Server::rateLimit(const config::ServerUser* user) {
  if (user == nullptr || user->rate_limit_bytes_per_s == 0) return nullptr;
  std::shared_ptr<stream::RateLimit>& rl = rate_limits_[userKey(user->name)];
  if (!rl) rl = std::make_shared<stream::RateLimit>(user->rate_limit_bytes_per_s);
  return rl;
}

const char* Server::userKey(const std::string& name) {
  auto it = user_keys_.find(name);
  if (it != user_keys_.end()) return it->second;
  user_names_.push_back(name);
  const char* key = user_names_.back().c_str();
  user_keys_.emplace(name, key);
  user_stats_.emplace(key, UserCounters{});
  return key;
}

std::string Server::reload(const config::ServerConfig& fresh) {
  // Users: who is new, gone, or has a new UUID (the old one must stop
  // working now, so its connections end like a removed user's).
  std::unordered_map<std::string, const config::ServerUser*> now;
  for (const config::ServerUser& u : fresh.users) now.emplace(u.name, &u);
  std::unordered_map<const char*, const char*> cut;  // key -> why
  size_t added = 0, removed = 0, rekeyed = 0, rerated = 0;
  for (const config::ServerUser& u : cfg_.users) {
    auto it = now.find(u.name);
    if (it == now.end()) {
      ++removed;
      cut.emplace(userKey(u.name), "user removed by reload");
    } else if (it->second->uuid != u.uuid) {
      ++rekeyed;
      cut.emplace(userKey(u.name), "user's uuid changed by reload");
    }
  }
  for (const config::ServerUser& u : fresh.users) {
    bool known = false;
    for (const config::ServerUser& o : cfg_.users) known = known || o.name == u.name;
    if (!known) ++added;
    // Rate limits: live connections hold the shared limiter; it takes the
    // new rate at once. No limit any more: the limiter lets everything by
    // and new connections get none.
    auto rl = rate_limits_.find(userKey(u.name));
    if (rl == rate_limits_.end()) continue;
    if (u.rate_limit_bytes_per_s == 0) {
      rl->second->setRate(uint64_t{1} << 50);
      rate_limits_.erase(rl);
      ++rerated;
    } else if (rl->second->in.rate() != u.rate_limit_bytes_per_s) {
      rl->second->setRate(u.rate_limit_bytes_per_s);
      ++rerated;
    }
  }
  for (auto it = rate_limits_.begin(); it != rate_limits_.end();) {
    it = now.count(it->first) == 0 ? rate_limits_.erase(it) : std::next(it);
  }
  // Now the new users and limits.
  cfg_.users = fresh.users;
  for (const config::ServerUser& u : cfg_.users) userKey(u.name);
  auth_ = Authenticator(cfg_.users);
  cfg_.max_connections = fresh.max_connections;
  cfg_.max_connections_per_source = fresh.max_connections_per_source;
  cfg_.max_handshakes_per_source = fresh.max_handshakes_per_source;
  cfg_.max_connections_per_user = fresh.max_connections_per_user;
  cfg_.idle_timeout_ms = fresh.idle_timeout_ms;
  size_t closed = 0;
  if (!cut.empty()) {
    std::vector<ServerSession*> victims;
    for (const auto& [raw, owned] : sessions_) {
      if (!raw->closing() && cut.count(raw->user()) != 0) victims.push_back(raw);
    }
    for (ServerSession* s : victims) {
      if (sessions_.count(s) == 0 || s->closing()) continue;  // closed by another's close
      s->close(stream::CloseReason::kEvicted, cut[s->user()]);
      ++closed;
    }
  }
  return std::to_string(cfg_.users.size()) + " users (" + std::to_string(added) + " added, " +
         std::to_string(removed) + " removed, " + std::to_string(rekeyed) + " with a new uuid, " +
         std::to_string(rerated) + " rate limits changed), " + std::to_string(closed) +
         " connections closed";
}

std::vector<std::string> Server::rateLimitSummary() const {
  std::vector<std::string> out;
  for (const auto& [user, rl] : rate_limits_) {
    out.push_back(std::string(user) + " " + std::to_string(rl->in.rate()) + " B/s: in " +
                  std::to_string(rl->in.taken()) + " B (" + std::to_string(rl->read_pauses) +
                  " read pauses), out " + std::to_string(rl->out.taken()) + " B (" +
                  std::to_string(rl->write_waits) + " waits for tokens)");
  }
  return out;
}

void Server::onUserConnectionDone(const char* user) {
  auto it = user_conns_.find(user);
  if (it == user_conns_.end()) return;
  if (--it->second == 0) user_conns_.erase(it);
}

bool Server::startMuxStream(std::unique_ptr<stream::MuxStream> s, const char* user,
                            uint64_t parent, std::string* why) {
  if (stopped_) {
    *why = "server stopping";
  } else if (active_ >= cfg_.max_connections) {
    *why = "max_connections (" + std::to_string(cfg_.max_connections) + ") reached";
  } else if (userStreams(user) >= cfg_.mux.max_streams_per_user) {
    *why = "mux.max_streams_per_user (" + std::to_string(cfg_.mux.max_streams_per_user) +
           ") reached";
  }
  if (!why->empty()) {
    s->close(stream::CloseReason::kEvicted);
    loop_.deferredDelete(std::move(s));
    return false;
  }
  uint64_t id = next_id_++;
  stream::MuxStream* raw = s.get();
  auto session = std::make_unique<ServerSession>(*this, raw, std::move(s), id);
  ServerSession* p = session.get();
  sessions_.emplace(p, std::move(session));
  ++active_;
  ++user_streams_[user];
  ++user_stats_[user].mux_streams;
  ++totals_.mux_streams;
  p->startStream(user, parent, *raw);
  return true;
}

void Server::onMuxStreamDone(const char* user) {
  auto it = user_streams_.find(user);
  if (it == user_streams_.end()) return;
  if (--it->second == 0) user_streams_.erase(it);
}

void Server::onTrafficDone(const char* user, bool carrier, const TrafficCounters& t) {
  if (carrier) return;  // its streams counted their payload
  totals_.closed.add(t);
  auto it = user_stats_.find(user);  // "-" (no user yet) is not a key
  if (it != user_stats_.end()) it->second.closed.add(t);
}

void Server::forEachSession(const std::function<void(const ServerSession&)>& fn) const {
  for (const auto& [raw, owned] : sessions_) {
    if (!raw->closing()) fn(*raw);
  }
}

bool Server::closeConnection(uint64_t id, std::string* what) {
  ServerSession* found = nullptr;
  for (const auto& [raw, owned] : sessions_) {
    if (raw->id() == id && !raw->closing()) found = raw;
  }
  if (found == nullptr) return false;
  if (what != nullptr) *what = found->describe(loop_.now());
  found->close(stream::CloseReason::kLocalClose, "closed by the operator");
  return true;
}

void Server::onSessionDone(ServerSession* s) {
  auto it = sessions_.find(s);
  if (it == sessions_.end()) return;
  loop_.deferredDelete(std::move(it->second));
  sessions_.erase(it);
}

}  // namespace vt::server
