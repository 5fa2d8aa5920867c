// DnsCache: answers of the hijacked resolver, keyed by the question
// (name, type, class), replayed to later identical queries with the
// query's id and TTLs aged by the time spent in the cache.
//
// What is cached (a response with exactly one question, opcode QUERY):
//   NOERROR with answers   -> min answer TTL, capped at kMaxTtlSec
//   NXDOMAIN / NODATA      -> min(SOA TTL, SOA MINIMUM), capped at
//                             kMaxNegativeTtlSec; not cached without an SOA
//   truncated (TC), other errors, TTL 0, unparseable -> never
// Bounded by `capacity` entries (LRU) and kMaxEntryBytes per answer.
// Thread-safe: the workers of one engine (tun.workers) share one cache, so
// an answer learnt on one worker's flow serves the app on any worker.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace vt::client {

struct DnsCacheStats {
  uint64_t hits = 0;
  uint64_t misses = 0;  // parseable queries not answered from the cache
  uint64_t stored = 0;
  uint64_t uncacheable = 0;  // responses refused by the rules above
  uint64_t malformed = 0;    // queries or responses that did not parse
};

class DnsCache {
 public:
  static constexpr uint32_t kMaxTtlSec = 300;
  static constexpr uint32_t kMaxNegativeTtlSec = 60;
  static constexpr size_t kMaxEntryBytes = 4096;

  explicit DnsCache(size_t capacity) : capacity_(capacity) {}

  // A cached answer for this query, ready to send: the query's id, TTLs
  // aged, the question bytes as the query wrote them. nullopt on a miss or
  // for anything but a plain one-question query.
  std::optional<std::vector<uint8_t>> lookup(const uint8_t* query, size_t n, uint64_t nowMs);
  // Offers a resolver response; true if it was stored.
  bool store(const uint8_t* response, size_t n, uint64_t nowMs);
  // The cache key of a message's one question (name lowered, type,
  // class), or "" when it does not parse or has not exactly one question:
  // what UdpSession and DnsTcpTap match answers to queries with.
  static std::string questionKey(const uint8_t* msg, size_t n);

  size_t size() const {
    std::lock_guard<std::mutex> lk(mu_);
    return entries_.size();
  }
  // Forgets every answer (the network changed: they may be another
  // network's).
  void clear() {
    std::lock_guard<std::mutex> lk(mu_);
    entries_.clear();
    lru_.clear();
  }
  DnsCacheStats stats() const {
    std::lock_guard<std::mutex> lk(mu_);
    return stats_;
  }

 private:
  struct Entry {
    std::string key;
    std::vector<uint8_t> bytes;
    std::vector<size_t> ttlOffsets;
    size_t questionsEnd = 0;
    uint64_t storedMs = 0;
    uint64_t expiresMs = 0;
  };
  static std::string keyOf(const std::string& wireName, uint16_t type, uint16_t klass);

  size_t capacity_;
  mutable std::mutex mu_;
  std::list<Entry> lru_;  // front: most recently used
  std::unordered_map<std::string, std::list<Entry>::iterator> entries_;
  DnsCacheStats stats_;
};

}  // namespace vt::client
