// DialledIps: for names the client sent to the server (route.dial_by_name),
// the address the server answered it dialled (VLESS v1 want_ip, wire
// format "want_ip reply prefix"). Routing judges the next flows to such a
// name by that address: a geoip rule sees the country the server actually
// reached (a CDN's domestic edge, say), not the one our own DNS answer
// pointed at. The answer came over our authenticated TLS connection, so
// nothing on the path could have forged it.
//
// Bounded LRU (`capacity` names, ~150 bytes each), entries live
// `lifetimeMs` (route.want_ip_ttl). Thread-safe: the workers share one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "route/rule_set.h"

namespace vt::client {

struct DialledIpsStats {
  uint64_t noted = 0;
  uint64_t hits = 0;
  uint64_t evicted = 0;
};

class DialledIps {
 public:
  DialledIps(size_t capacity, uint64_t lifetimeMs) : capacity_(capacity), lifetimeMs_(lifetimeMs) {}

  // `name` lowercase, as the rules see it.
  void note(std::string_view name, const route::IpAddress& ip, uint64_t nowMs);
  // The fresh address for `name`, made most recently used; nullopt when
  // unknown or expired (then forgotten).
  std::optional<route::IpAddress> lookup(std::string_view name, uint64_t nowMs);

  size_t size() const {
    std::lock_guard<std::mutex> lk(mu_);
    return map_.size();
  }
  DialledIpsStats stats() const {
    std::lock_guard<std::mutex> lk(mu_);
    return stats_;
  }

 private:
  struct Entry {
    std::string name;
    route::IpAddress ip;
    uint64_t expiresMs = 0;
  };
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };

  const size_t capacity_;
  const uint64_t lifetimeMs_;
  mutable std::mutex mu_;
  std::list<Entry> lru_;  // front: most recently used
  std::unordered_map<std::string, std::list<Entry>::iterator, Hash, std::equal_to<>> map_;
  DialledIpsStats stats_;
};

}  // namespace vt::client
