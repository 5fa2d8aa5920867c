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

void UdpNatSession::onSent(UdpChannel* c, const event::SocketAddress& to, size_t bytes) {
  noteRemote(to);
  recent_ = c;
  last_active_ms_ = loop_.now();
  ++pkts_out_;
  bytes_out_ += bytes;
}

void UdpNatSession::onReceive(const uint8_t* data, size_t n, const event::SocketAddress& from) {
  last_active_ms_ = loop_.now();
  noteRemote(from);
  ++pkts_in_;
  bytes_in_ += n;
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
                "/%" PRIu64 "B drops_no_channel=%" PRIu64 " send_drops=%" PRIu64
                " recv_drops=%" PRIu64 " ms=%" PRIu64,
                static_cast<unsigned>(socket_->port()), channels_seen_, remotes_.size(), pkts_in_, bytes_in_,
                pkts_out_, bytes_out_, drops_no_channel_, socket_->sendDrops(),
                socket_->recvDrops(), loop_.now() - created_ms_);
  return buf;
}

UdpNatTable::UdpNatTable(event::Loop& loop, const config::ServerUdpConfig& cfg)
    : loop_(loop), cfg_(cfg), sweep_timer_(loop) {}

UdpNatTable::~UdpNatTable() = default;

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
  if (sessions_.size() >= cfg_.max_sessions) {
    return Error(Errc::kLimit,
                 "udp max_sessions (" + std::to_string(cfg_.max_sessions) + ") reached");
  }
  size_t& mine = per_user_[user];
  if (mine >= cfg_.max_sessions_per_user) {
    if (mine == 0) per_user_.erase(user);
    return Error(Errc::kLimit, "udp max_sessions_per_user (" +
                                   std::to_string(cfg_.max_sessions_per_user) + ") reached");
  }
  char id[32];
  std::snprintf(id, sizeof id, "%016" PRIx64, session_id);
  auto s = openPrivate(user_name + "/" + id);
  if (!s.ok()) {
    if (mine == 0) per_user_.erase(user);
    return s.error();
  }
  ++mine;
  UdpNatSession* p = s.value().get();
  sessions_.emplace(key, std::move(s).value());
  VT_DEBUG("udp nat %s: new session on port %u", p->name().c_str(),
           static_cast<unsigned>(p->socket().port()));
  armSweep();
  return p;
}

size_t UdpNatTable::sessionsOf(const codec::Uuid& user) const {
  auto it = per_user_.find(user);
  return it == per_user_.end() ? 0 : it->second;
}

void UdpNatTable::armSweep() {
  if (sweep_timer_.active() || sessions_.empty()) return;
  // Expiry is checked a few times per timeout: a session lives between
  // timeout and timeout + period after its last packet.
  uint64_t period = std::clamp<uint64_t>(cfg_.session_timeout_ms / 4, 10, 5000);
  sweep_timer_.start(period, [this] { sweep(); });
}

void UdpNatTable::sweep() {
  uint64_t now = loop_.now();
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    UdpNatSession& s = *it->second;
    if (s.channelCount() == 0 && now - s.lastActiveMs() >= cfg_.session_timeout_ms) {
      VT_INFO("udp nat %s expired: %s", s.name().c_str(), s.stats().c_str());
      auto pu = per_user_.find(it->first.first);
      if (pu != per_user_.end() && --pu->second == 0) per_user_.erase(pu);
      // Deferred like every other owner of a uv handle that dies in a
      // callback; the socket stops receiving when it is destroyed.
      loop_.deferredDelete(std::move(it->second));
      it = sessions_.erase(it);
    } else {
      ++it;
    }
  }
  armSweep();
}

void UdpNatTable::clear() {
  sweep_timer_.stop();
  for (auto& [k, s] : sessions_) loop_.deferredDelete(std::move(s));
  sessions_.clear();
  per_user_.clear();
}

}  // namespace vt::server
