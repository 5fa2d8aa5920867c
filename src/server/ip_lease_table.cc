#include "server/ip_lease_table.h"

#include <arpa/inet.h>

#include <algorithm>

namespace vt::server {

IpLeaseTable::IpLeaseTable(Options o) : opt_(std::move(o)) {
  const int host4 = 32 - opt_.pool4.bits;
  last4_ = (uint64_t{1} << host4) - 2;  // the broadcast address is not leased
  gw4_ = address(false, 1);
  if (opt_.pool6) {
    const int host6 = 128 - opt_.pool6->bits;
    last6_ = host6 >= 64 ? UINT64_MAX : (uint64_t{1} << host6) - 1;
    gw6_ = address(true, 1);
  }
}

codec::IpAddressBytes IpLeaseTable::address(bool v6, uint64_t offset) const {
  codec::IpAddressBytes a = v6 ? opt_.pool6->addr : opt_.pool4.addr;
  if (!v6) {
    uint32_t n = (uint32_t{a[0]} << 24) | (uint32_t{a[1]} << 16) | (uint32_t{a[2]} << 8) | a[3];
    n += static_cast<uint32_t>(offset);
    for (int i = 0; i < 4; ++i) a[i] = static_cast<uint8_t>(n >> (24 - 8 * i));
    std::fill(a.begin() + 4, a.end(), 0);
    return a;
  }
  uint64_t n = 0;
  for (int i = 8; i < 16; ++i) n = (n << 8) | a[i];
  n += offset;  // the prefix's host bits are zero: no carry into the network
  for (int i = 15; i >= 8; --i) {
    a[i] = static_cast<uint8_t>(n);
    n >>= 8;
  }
  return a;
}

bool IpLeaseTable::inPool(bool v6, const uint8_t* a) const {
  if (v6) return opt_.pool6 && opt_.pool6->contains(true, a);
  return opt_.pool4.contains(false, a);
}

Result<uint64_t> IpLeaseTable::open(const std::string& user) {
  if (sessions_.size() >= opt_.max_sessions) {
    ++stats_.refused_total;
    return Error(Errc::kLimit,
                 "ip.max_sessions (" + std::to_string(opt_.max_sessions) + ") reached");
  }
  size_t& n = per_user_[user];
  if (n >= opt_.max_sessions_per_user) {
    if (n == 0) per_user_.erase(user);
    ++stats_.refused_per_user;
    return Error(Errc::kLimit, "ip.max_sessions_per_user (" +
                                   std::to_string(opt_.max_sessions_per_user) + ") reached");
  }
  ++n;
  uint64_t id = next_id_++;
  sessions_[id].user = user;
  ++stats_.sessions;
  return id;
}

void IpLeaseTable::purge(bool v6, uint64_t now_ms) {
  auto& resting = v6 ? resting6_ : resting4_;
  auto& held = v6 ? held6_ : held4_;
  while (!resting.empty() && resting.front().first <= now_ms) {
    auto it = held.find(resting.front().second);
    // Only if still resting since then (not leased again and resting anew).
    if (it != held.end() && it->second.session == 0 && it->second.free_at <= now_ms) held.erase(it);
    resting.pop_front();
  }
}

std::optional<codec::IpAddressBytes> IpLeaseTable::lease(uint64_t id, bool v6, uint64_t now_ms) {
  auto s = sessions_.find(id);
  if (s == sessions_.end() || !hasPool(v6)) return std::nullopt;
  std::optional<codec::IpAddressBytes>& mine = v6 ? s->second.a6 : s->second.a4;
  if (mine) return mine;
  purge(v6, now_ms);
  auto& held = v6 ? held6_ : held4_;
  uint64_t& next = v6 ? next6_ : next4_;
  const uint64_t last = v6 ? last6_ : last4_;
  if (last < first_) {
    ++stats_.exhausted;
    return std::nullopt;
  }
  // Every address we skip is held, so held.size() + 1 candidates in a row
  // hold a free one unless the pool is full.
  const uint64_t span = last - first_ == UINT64_MAX ? UINT64_MAX : last - first_ + 1;
  const uint64_t tries = std::min<uint64_t>(span, held.size() + 1);
  for (uint64_t i = 0; i < tries; ++i) {
    const uint64_t off = next;
    next = next == last ? first_ : next + 1;
    codec::IpAddressBytes a = address(v6, off);
    auto it = held.find(a);
    if (it != held.end() && (it->second.session != 0 || it->second.free_at > now_ms)) continue;
    held[a] = Held{id, 0};
    mine = a;
    ++stats_.leases;
    return a;
  }
  ++stats_.exhausted;
  return std::nullopt;
}

void IpLeaseTable::close(uint64_t id, uint64_t now_ms) {
  auto s = sessions_.find(id);
  if (s == sessions_.end()) return;
  for (bool v6 : {false, true}) {
    const std::optional<codec::IpAddressBytes>& a = v6 ? s->second.a6 : s->second.a4;
    if (!a) continue;
    auto& held = v6 ? held6_ : held4_;
    held[*a] = Held{0, now_ms + opt_.grace_ms};
    (v6 ? resting6_ : resting4_).emplace_back(now_ms + opt_.grace_ms, *a);
  }
  auto u = per_user_.find(s->second.user);
  if (u != per_user_.end() && --u->second == 0) per_user_.erase(u);
  sessions_.erase(s);
}

uint64_t IpLeaseTable::owner(bool v6, const codec::IpAddressBytes& a) const {
  const auto& held = v6 ? held6_ : held4_;
  codec::IpAddressBytes key = a;
  if (!v6) std::fill(key.begin() + 4, key.end(), 0);
  auto it = held.find(key);
  return it == held.end() ? 0 : it->second.session;
}

size_t IpLeaseTable::userSessions(const std::string& user) const {
  auto it = per_user_.find(user);
  return it == per_user_.end() ? 0 : it->second;
}

std::string IpLeaseTable::text(bool v6, const codec::IpAddressBytes& a) {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(v6 ? AF_INET6 : AF_INET, a.data(), buf, sizeof buf);
  return buf;
}

}  // namespace vt::server
