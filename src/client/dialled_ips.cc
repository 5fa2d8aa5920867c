#include "client/dialled_ips.h"

namespace vt::client {

void DialledIps::note(std::string_view name, const route::IpAddress& ip, uint64_t nowMs) {
  if (name.empty() || capacity_ == 0) return;
  std::lock_guard<std::mutex> lk(mu_);
  ++stats_.noted;
  auto it = map_.find(name);
  if (it != map_.end()) {
    it->second->ip = ip;
    it->second->expiresMs = nowMs + lifetimeMs_;
    lru_.splice(lru_.begin(), lru_, it->second);
    return;
  }
  while (map_.size() >= capacity_ && !lru_.empty()) {
    map_.erase(lru_.back().name);
    lru_.pop_back();
    ++stats_.evicted;
  }
  lru_.push_front(Entry{std::string(name), ip, nowMs + lifetimeMs_});
  map_.emplace(lru_.front().name, lru_.begin());
}

std::optional<route::IpAddress> DialledIps::lookup(std::string_view name, uint64_t nowMs) {
  std::lock_guard<std::mutex> lk(mu_);
  auto it = map_.find(name);
  if (it == map_.end()) return std::nullopt;
  if (nowMs >= it->second->expiresMs) {
    lru_.erase(it->second);
    map_.erase(it);
    return std::nullopt;
  }
  lru_.splice(lru_.begin(), lru_, it->second);
  ++stats_.hits;
  return it->second->ip;
}

}  // namespace vt::client
