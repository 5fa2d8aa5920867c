#include "server/udp_nat.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>

#include "core/log.h"
#include "server/udp_channel.h"

namespace vt::server {

UdpNatSession::UdpNatSession(event::Loop& loop, std::unique_ptr<event::UdpSocket> socket,
                             std::string name)
    : loop_(loop),
      socket_(std::move(socket)),
      name_(std::move(name)),
      created_ms_(loop.now()),
      last_active_ms_(loop.now()) {
  socket_->onReceive([this](const uint8_t* data, size_t n, const event::SocketAddress& from) {
    onReceive(data, n, from);
  });
}

UdpNatSession::~UdpNatSession() = default;

void UdpNatSession::attach(UdpChannel* c) {
  channels_.push_back(c);
  recent_ = c;
  ++channels_seen_;
  // A client opening a channel is active, even before its first datagram.
  last_active_ms_ = loop_.now();
  if (table_ != nullptr) table_->onActivity(*this, false);
}

void UdpNatSession::detach(UdpChannel* c) {
  channels_.erase(std::remove(channels_.begin(), channels_.end(), c), channels_.end());
  if (recent_ == c) recent_ = channels_.empty() ? nullptr : channels_.back();
}

void UdpNatSession::noteRemote(const event::SocketAddress& a) {
  if (remotes_.size() >= kMaxKnownRemotes) return;
  // FNV-1a over the address bytes and port: a count, not a filter.
  uint64_t h = 1469598103934665603ull;
  const auto* p = reinterpret_cast<const uint8_t*>(a.sa());
  for (socklen_t i = 0; i < a.len(); ++i) h = (h ^ p[i]) * 1099511628211ull;
  remotes_.insert(h);
}

void UdpNatSession::endChannels(stream::CloseReason reason, const std::string& why) {
  // A copy: every channel detaches itself while it ends.
  std::vector<UdpChannel*> all = channels_;
  for (UdpChannel* c : all) c->end(reason, why);
}

void UdpNatSession::onSent(UdpChannel* c, const event::SocketAddress& to, size_t bytes) {
  noteRemote(to);
  recent_ = c;
  last_active_ms_ = loop_.now();
  ++pkts_out_;
  bytes_out_ += bytes;
  bool became_assured = replied_ && !assured_;
  if (became_assured) assured_ = true;
  if (table_ != nullptr) table_->onActivity(*this, became_assured);
}

void UdpNatSession::onReceive(const uint8_t* data, size_t n, const event::SocketAddress& from) {
  last_active_ms_ = loop_.now();
  noteRemote(from);
  ++pkts_in_;
  bytes_in_ += n;
  replied_ = true;
  if (table_ != nullptr) table_->onActivity(*this, false);
  // The remote's own channel first; a handful of channels per session, so
  // a scan is cheaper than keeping an index in step. When the client has
  // two channels to one remote (a reconnect racing the old one), the most
  // recently active wins, else the newest.
  UdpChannel* own = nullptr;
  for (UdpChannel* c : channels_) {
    if (c->orig() && *c->orig() == from) own = c;
  }
  if (recent_ != nullptr && recent_->orig() && *recent_->orig() == from) own = recent_;
  if (own != nullptr) {
    own->deliver(data, n, from, true);
    return;  // `own` may have closed; we touch nothing after it
  }
  if (recent_ == nullptr) {
    ++drops_no_channel_;
    return;
  }
  recent_->deliver(data, n, from, false);
}

std::string UdpNatSession::stats() const {
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "port=%u channels=%" PRIu64 " remotes=%zu in=%" PRIu64 "/%" PRIu64 "B out=%" PRIu64
                "/%" PRIu64 "B drops_no_channel=%" PRIu64 " sent=%" PRIu64 "/%" PRIu64
                "calls send_drops=%" PRIu64 " recv_drops=%" PRIu64 " assured=%s ms=%" PRIu64,
                static_cast<unsigned>(socket_->port()), channels_seen_, remotes_.size(), pkts_in_,
                bytes_in_, pkts_out_, bytes_out_, drops_no_channel_, socket_->datagramsSent(),
                socket_->sendCalls(), socket_->sendDrops(),
                socket_->recvDrops(), assured_ ? "yes" : "no", loop_.now() - created_ms_);
  return buf;
}

UdpNatTable::UdpNatTable(event::Loop& loop, const config::ServerUdpConfig& cfg)
    : loop_(loop),
      cfg_(cfg),
      sweep_timer_(loop),
      eviction_log_(loop, kEvictionLogMs, [this] { writeEvictions(); }) {}

UdpNatTable::~UdpNatTable() {
  for (auto& [k, s] : sessions_) s->table_ = nullptr;
}

uint64_t UdpNatTable::newTimeoutMs() const {
  return std::min(cfg_.new_session_timeout_ms, cfg_.session_timeout_ms);
}

Result<std::unique_ptr<UdpNatSession>> UdpNatTable::openPrivate(const std::string& name) {
  auto sock = event::UdpSocket::open(loop_);
  if (!sock.ok()) return sock.error();
  return std::make_unique<UdpNatSession>(loop_, std::move(sock).value(), name);
}

Result<UdpNatSession*> UdpNatTable::acquire(const codec::Uuid& user, const std::string& user_name,
                                            uint64_t session_id) {
  Key key{user, session_id};
  auto it = sessions_.find(key);
  if (it != sessions_.end()) return it->second.get();
  char id[32];
  std::snprintf(id, sizeof id, "%016" PRIx64, session_id);
  // The socket first: a failure must not cost another session its place.
  auto made = openPrivate(user_name + "/" + id);
  if (!made.ok()) return made.error();
  // Room at the caps: the user's own least recently active session first
  // (unassured before assured), then the table's.
  for (auto u = users_.find(user);
       u != users_.end() && u->second.count >= cfg_.max_sessions_per_user; u = users_.find(user)) {
    UdpNatSession* v = u->second.lru.victim();
    if (v == nullptr) break;
    evict(*v, Cap::kPerUser);
  }
  while (sessions_.size() >= cfg_.max_sessions) {
    UdpNatSession* v = all_.victim();
    if (v == nullptr) break;
    evict(*v, Cap::kTotal);
  }
  if (sessions_.size() >= cfg_.max_sessions || sessionsOf(user) >= cfg_.max_sessions_per_user) {
    // Only with a cap of 0, which the config does not allow.
    return Error(Errc::kLimit, "udp session caps reached");
  }
  std::unique_ptr<UdpNatSession> s = std::move(made).value();
  UdpNatSession* p = s.get();
  UdpNatUser& u = users_[user];
  ++u.count;
  p->table_ = this;
  p->key_ = key;
  p->user_name_ = user_name;
  p->user_ = &u;
  p->all_it_ = all_.insert(p);
  p->user_it_ = u.lru.insert(p);
  sessions_.emplace(key, std::move(s));
  ++stats_.created;
  VT_DEBUG("udp nat %s: new session on port %u", p->name().c_str(),
           static_cast<unsigned>(p->socket().port()));
  armSweep();
  return p;
}

void UdpNatTable::onActivity(UdpNatSession& s, bool became_assured) {
  UdpNatUser& u = *s.user_;
  if (became_assured) {
    all_.promote(s.all_it_);
    u.lru.promote(s.user_it_);
    return;
  }
  all_.touch(s.all_it_, s.assured_);
  u.lru.touch(s.user_it_, s.assured_);
}

size_t UdpNatTable::sessionsOf(const codec::Uuid& user) const {
  auto it = users_.find(user);
  return it == users_.end() ? 0 : it->second.count;
}

void UdpNatTable::evict(UdpNatSession& victim, Cap cap) {
  std::string why;
  if (cap == Cap::kPerUser) {
    ++stats_.evicted_max_sessions_per_user;
    why = "udp session evicted at max_sessions_per_user=" +
          std::to_string(cfg_.max_sessions_per_user);
  } else {
    ++stats_.evicted_max_sessions;
    why = "udp session evicted at max_sessions=" + std::to_string(cfg_.max_sessions);
  }
  // Per session at debug only: a churning client evicts many a second; the
  // summary below is the line to look for.
  VT_DEBUG("udp nat %s evicted (%s): %s", victim.name().c_str(),
           cap == Cap::kPerUser ? "max_sessions_per_user" : "max_sessions", victim.stats().c_str());
  noteEviction(cap, victim.user_name_);
  remove(victim, stream::CloseReason::kEvicted, why);
}

void UdpNatTable::remove(UdpNatSession& s, stream::CloseReason reason, const std::string& why) {
  s.endChannels(reason, why);
  s.table_ = nullptr;  // packets until the deferred delete touch no list
  UdpNatUser& u = *s.user_;
  all_.erase(s.all_it_, s.assured_);
  u.lru.erase(s.user_it_, s.assured_);
  s.user_ = nullptr;
  if (--u.count == 0) users_.erase(s.key_.first);
  auto it = sessions_.find(s.key_);
  if (it == sessions_.end()) return;
  // Deferred like every other owner of a uv handle that dies in a
  // callback; the socket stops receiving when it is destroyed.
  loop_.deferredDelete(std::move(it->second));
  sessions_.erase(it);
}

void UdpNatTable::noteEviction(Cap cap, const std::string& user_name) {
  if (cap == Cap::kPerUser) {
    if (unlogged_user_cap_ == 0) {
      unlogged_user_ = user_name;
      unlogged_other_users_ = false;
    } else if (user_name != unlogged_user_) {
      unlogged_other_users_ = true;
    }
    ++unlogged_user_cap_;
  } else {
    ++unlogged_total_cap_;
  }
  eviction_log_.note();
}

void UdpNatTable::writeEvictions() {
  if (unlogged_user_cap_ != 0) {
    VT_WARN("udp nat: evicted %" PRIu64 " session%s at max_sessions_per_user=%u (user %s%s)",
            unlogged_user_cap_, unlogged_user_cap_ == 1 ? "" : "s", cfg_.max_sessions_per_user,
            unlogged_user_.c_str(), unlogged_other_users_ ? " and others" : "");
  }
  if (unlogged_total_cap_ != 0) {
    VT_WARN("udp nat: evicted %" PRIu64 " session%s at max_sessions=%u", unlogged_total_cap_,
            unlogged_total_cap_ == 1 ? "" : "s", cfg_.max_sessions);
  }
  unlogged_user_cap_ = unlogged_total_cap_ = 0;
  unlogged_user_.clear();
  unlogged_other_users_ = false;
}

void UdpNatTable::armSweep() {
  if (sweep_timer_.active() || sessions_.empty()) return;
  // Expiry is checked a few times per timeout: a session lives between
  // timeout and timeout + period after its last packet.
  uint64_t period = std::clamp<uint64_t>(newTimeoutMs() / 4, 10, 5000);
  sweep_timer_.start(period, [this] { sweep(); });
}

void UdpNatTable::sweep() {
  uint64_t now = loop_.now();
  uint64_t new_timeout = newTimeoutMs();
  std::vector<UdpNatSession*> expired;
  for (auto& [k, sp] : sessions_) {
    UdpNatSession& s = *sp;
    uint64_t quiet = now - s.lastActiveMs();
    bool gone = s.assured() ? s.channelCount() == 0 && quiet >= cfg_.session_timeout_ms
                            : quiet >= new_timeout;
    if (gone) expired.push_back(&s);
  }
  for (UdpNatSession* s : expired) {
    ++stats_.expired;
    if (!s->assured()) ++stats_.expired_new;
    VT_INFO("udp nat %s expired: %s", s->name().c_str(), s->stats().c_str());
    remove(*s, stream::CloseReason::kTimeout,
           s->assured() ? "udp session expired"
                        : "udp session expired (unassured, new_session_timeout)");
  }
  armSweep();
}

void UdpNatTable::clear() {
  sweep_timer_.stop();
  eviction_log_.flush();
  for (auto& [k, s] : sessions_) {
    s->table_ = nullptr;
    s->user_ = nullptr;
    loop_.deferredDelete(std::move(s));
  }
  sessions_.clear();
  users_.clear();
  all_.clear();
}

}  // namespace vt::server
