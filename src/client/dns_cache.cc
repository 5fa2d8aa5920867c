#include "client/dns_cache.h"

#include <algorithm>
#include <cstring>

#include "codec/dns.h"

namespace vt::client {

std::string DnsCache::keyOf(const std::string& wireName, uint16_t type, uint16_t klass) {
  std::string k = wireName;
  k.push_back(static_cast<char>(type >> 8));
  k.push_back(static_cast<char>(type));
  k.push_back(static_cast<char>(klass >> 8));
  k.push_back(static_cast<char>(klass));
  return k;
}

std::string DnsCache::questionKey(const uint8_t* msg, size_t n) {
  codec::DnsMessage m;
  std::string error;
  if (!codec::parseDnsMessage(msg, n, m, error) || m.questions.size() != 1) return "";
  const codec::DnsQuestion& q = m.questions.front();
  return keyOf(q.wireName, q.type, q.klass);
}

std::optional<std::vector<uint8_t>> DnsCache::lookup(const uint8_t* query, size_t n,
                                                     uint64_t nowMs) {
  if (capacity_ == 0) return std::nullopt;
  std::lock_guard<std::mutex> lk(mu_);
  codec::DnsMessage q;
  std::string error;
  if (!codec::parseDnsMessage(query, n, q, error)) {
    ++stats_.malformed;
    return std::nullopt;
  }
  if (q.isResponse() || q.opcode() != 0 || q.questions.size() != 1) return std::nullopt;
  const codec::DnsQuestion& qq = q.questions.front();
  auto it = entries_.find(keyOf(qq.wireName, qq.type, qq.klass));
  if (it == entries_.end()) {
    ++stats_.misses;
    return std::nullopt;
  }
  Entry& e = *it->second;
  if (nowMs >= e.expiresMs) {
    lru_.erase(it->second);
    entries_.erase(it);
    ++stats_.misses;
    return std::nullopt;
  }
  lru_.splice(lru_.begin(), lru_, it->second);
  std::vector<uint8_t> out = e.bytes;
  codec::dnsSetId(out.data(), q.id);
  auto aged = static_cast<uint32_t>((nowMs - e.storedMs) / 1000);
  for (size_t off : e.ttlOffsets) {
    uint32_t ttl = codec::dnsReadU32(out.data() + off);
    codec::dnsWriteU32(out.data() + off, ttl > aged ? ttl - aged : 0);
  }
  // The app may check the question's letter case (0x20 randomization):
  // give it back its own bytes when the layouts agree.
  if (q.questionsEnd == e.questionsEnd && q.questionsEnd <= n) {
    std::memcpy(out.data() + codec::kDnsHeaderSize, query + codec::kDnsHeaderSize,
                q.questionsEnd - codec::kDnsHeaderSize);
  }
  ++stats_.hits;
  return out;
}

bool DnsCache::store(const uint8_t* response, size_t n, uint64_t nowMs) {
  if (capacity_ == 0) return false;
  std::lock_guard<std::mutex> lk(mu_);
  codec::DnsMessage r;
  std::string error;
  if (!codec::parseDnsMessage(response, n, r, error)) {
    ++stats_.malformed;
    return false;
  }
  uint32_t ttl = 0;
  if (!r.isResponse() || r.opcode() != 0 || r.truncated() || r.questions.size() != 1 ||
      n > kMaxEntryBytes) {
    ttl = 0;
  } else if (r.rcode() == codec::kDnsRcodeNoError && r.ancount > 0) {
    ttl = std::min(r.minAnswerTtl, kMaxTtlSec);
  } else if ((r.rcode() == codec::kDnsRcodeNxDomain ||
              (r.rcode() == codec::kDnsRcodeNoError && r.ancount == 0)) &&
             r.hasSoa) {
    ttl = std::min(r.soaNegativeTtl, kMaxNegativeTtlSec);
  }
  if (ttl == 0) {
    ++stats_.uncacheable;
    return false;
  }
  const codec::DnsQuestion& qq = r.questions.front();
  std::string key = keyOf(qq.wireName, qq.type, qq.klass);
  auto it = entries_.find(key);
  if (it != entries_.end()) {
    lru_.erase(it->second);
    entries_.erase(it);
  }
  while (entries_.size() >= capacity_ && !lru_.empty()) {
    entries_.erase(lru_.back().key);
    lru_.pop_back();
  }
  Entry e;
  e.key = key;
  e.bytes.assign(response, response + n);
  e.ttlOffsets = std::move(r.ttlOffsets);
  e.questionsEnd = r.questionsEnd;
  e.storedMs = nowMs;
  e.expiresMs = nowMs + uint64_t{ttl} * 1000;
  lru_.push_front(std::move(e));
  entries_.emplace(std::move(key), lru_.begin());
  ++stats_.stored;
  return true;
}

}  // namespace vt::client
