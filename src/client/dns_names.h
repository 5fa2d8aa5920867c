// DnsNames: which name an address came from, learnt from the answers of
// the hijacked resolver, so that routing rules by domain can judge a flow
// to a bare IP (the app resolved the name through us, then connected to
// the address).
//
// Each A / AAAA address in a NOERROR response with one question maps to
// that QUESTION's name (lowercase, dotted, no trailing dot): the name the
// app asked for, even when the answer reached the address through a CNAME
// chain, since rules are written for what the app asked for. A newer
// answer for the same address replaces the older mapping (shared CDN
// addresses: the latest name is the likeliest meant).
// Bounded by `capacity` entries (LRU). Thread-safe: the workers of one
// engine share one map, as they share the DnsCache.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace vt::client {

struct DnsNamesStats {
  uint64_t learned = 0;  // address -> name mappings stored (new or refreshed)
  uint64_t hits = 0;
  uint64_t misses = 0;   // unknown or expired addresses
  uint64_t evicted = 0;  // dropped for room (LRU)
  uint64_t expired = 0;  // dropped by nameOf past their lifetime
};

class DnsNames {
 public:
  // How long a mapping lives: the smallest answer TTL, raised to
  // kMinLifetimeSec and capped at kMaxLifetimeSec. Raised, because apps
  // and OS resolvers keep using an address well past its TTL (browsers'
  // own caches, long-lived pools, happy-eyeballs retries, TTLs of 0-30 s
  // from CDNs), and a flow that arrives after the TTL must still be routed
  // by its name; capped, because an address's owner does change, and an
  // old name should not steer a flow to a reused address for days.
  static constexpr uint32_t kMinLifetimeSec = 60;
  static constexpr uint32_t kMaxLifetimeSec = 3600;

  // Memory: per entry roughly one list node (two pointers plus the 17-byte
  // key, a 32-byte std::string and the 8-byte expiry: ~88 bytes), one hash
  // node (next pointer, key, iterator, cached hash: ~48 bytes) plus its
  // bucket pointer, and the name's heap buffer when longer than 15
  // characters (typical names: 16-40 bytes): about 200 bytes, at most
  // ~450 for a 253-character name. 4096 entries ~ 1 MB.
  explicit DnsNames(size_t capacity) : capacity_(capacity) {}

  // Offers a resolver response. Ignored unless it parses, is a response
  // with opcode QUERY, RCODE NOERROR, exactly one question whose name is
  // plain (letters, digits, '-', '_'), and A / AAAA answers.
  void learn(const uint8_t* response, size_t n, uint64_t nowMs);
  // The one question's name of a DNS message ("www.example.test"), as
  // learn() would key it; "" when it does not parse, has not exactly one
  // question, or the name is not plain. For routing a query by its name.
  static std::string questionName(const uint8_t* msg, size_t n);
  // The name `addr` (4 bytes, or 16 when v6) was last learnt for, made
  // most recently used; nullopt when unknown or expired (then forgotten).
  std::optional<std::string> nameOf(bool v6, const uint8_t* addr, uint64_t nowMs);

  size_t size() const {
    std::lock_guard<std::mutex> lk(mu_);
    return entries_.size();
  }
  // Forgets every mapping (the network changed).
  void clear() {
    std::lock_guard<std::mutex> lk(mu_);
    entries_.clear();
    lru_.clear();
  }
  DnsNamesStats stats() const {
    std::lock_guard<std::mutex> lk(mu_);
    return stats_;
  }

 private:
  // [0] = 4 or 16 (the family), then the address, zero padded: one key
  // type for both families, no allocation.
  using Key = std::array<uint8_t, 17>;
  struct KeyHash {
    size_t operator()(const Key& k) const noexcept;
  };
  struct Entry {
    Key key;
    std::string name;
    uint64_t expiresMs = 0;
  };
  static Key keyOf(size_t len, const uint8_t* addr);
  void put(const Key& key, const std::string& name, uint64_t expiresMs);  // mu_ held

  size_t capacity_;
  mutable std::mutex mu_;
  std::list<Entry> lru_;  // front: most recently used
  std::unordered_map<Key, std::list<Entry>::iterator, KeyHash> entries_;
  DnsNamesStats stats_;
};

}  // namespace vt::client
