#include "client/dns_names.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "codec/dns.h"

namespace vt::client {
namespace {

constexpr uint16_t kTypeA = 1;
constexpr uint16_t kTypeAaaa = 28;

// Uncompressed, lowered wire form -> "www.example.test"; "" for the root or
// for a label with bytes a domain rule could not name (a dot inside a
// label, spaces, controls, non-ASCII): such a name would only ever match
// by accident.
std::string dottedName(const std::string& wire) {
  std::string out;
  size_t i = 0;
  while (i < wire.size()) {
    const size_t len = static_cast<uint8_t>(wire[i++]);
    if (len == 0) break;
    if (len > wire.size() - i) return "";
    if (!out.empty()) out.push_back('.');
    for (size_t k = 0; k < len; ++k) {
      const char c = wire[i + k];
      const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
      if (!ok) return "";
      out.push_back(c);
    }
    i += len;
  }
  return out;
}

}  // namespace

std::string DnsNames::questionName(const uint8_t* msg, size_t n) {
  codec::DnsMessage m;
  std::string error;
  if (!codec::parseDnsMessage(msg, n, m, error) || m.questions.size() != 1) return "";
  return dottedName(m.questions.front().wireName);
}

size_t DnsNames::KeyHash::operator()(const Key& k) const noexcept {
  // FNV-1a: the key is 17 bytes, no need for more.
  uint64_t h = 14695981039346656037ull;
  for (uint8_t b : k) h = (h ^ b) * 1099511628211ull;
  return static_cast<size_t>(h);
}

DnsNames::Key DnsNames::keyOf(size_t len, const uint8_t* addr) {
  Key k{};
  k[0] = static_cast<uint8_t>(len);
  std::memcpy(k.data() + 1, addr, len);
  return k;
}

void DnsNames::learn(const uint8_t* response, size_t n, uint64_t nowMs) {
  if (capacity_ == 0) return;
  // Parse outside the lock: the map is shared by every worker.
  codec::DnsMessage m;
  std::string error;
  if (!codec::parseDnsMessage(response, n, m, error)) return;
  if (!m.isResponse() || m.opcode() != 0 || m.rcode() != codec::kDnsRcodeNoError ||
      m.questions.size() != 1 || m.ancount == 0) {
    return;
  }
  const std::string name = dottedName(m.questions.front().wireName);
  if (name.empty()) return;
  auto v4 = codec::dnsAnswerAddresses(response, n, m, kTypeA);
  auto v6 = codec::dnsAnswerAddresses(response, n, m, kTypeAaaa);
  if (v4.empty() && v6.empty()) return;
  // minAnswerTtl covers every answer, the CNAMEs of the chain included:
  // the mapping is no better than its weakest link.
  const uint32_t lifetime = std::clamp(m.minAnswerTtl, kMinLifetimeSec, kMaxLifetimeSec);
  const uint64_t expiresMs = nowMs + uint64_t{lifetime} * 1000;
  std::lock_guard<std::mutex> lk(mu_);
  for (const auto* list : {&v4, &v6}) {
    for (const std::vector<uint8_t>& a : *list) put(keyOf(a.size(), a.data()), name, expiresMs);
  }
}

void DnsNames::put(const Key& key, const std::string& name, uint64_t expiresMs) {
  auto it = entries_.find(key);
  if (it != entries_.end()) {
    // A newer answer wins, whatever name the address had.
    it->second->name = name;
    it->second->expiresMs = expiresMs;
    lru_.splice(lru_.begin(), lru_, it->second);
    ++stats_.learned;
    return;
  }
  while (entries_.size() >= capacity_ && !lru_.empty()) {
    entries_.erase(lru_.back().key);
    lru_.pop_back();
    ++stats_.evicted;
  }
  lru_.push_front(Entry{key, name, expiresMs});
  entries_.emplace(key, lru_.begin());
  ++stats_.learned;
}

std::optional<std::string> DnsNames::nameOf(bool v6, const uint8_t* addr, uint64_t nowMs) {
  const Key key = keyOf(v6 ? 16 : 4, addr);
  std::lock_guard<std::mutex> lk(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end()) {
    ++stats_.misses;
    return std::nullopt;
  }
  if (nowMs >= it->second->expiresMs) {
    lru_.erase(it->second);
    entries_.erase(it);
    ++stats_.expired;
    ++stats_.misses;
    return std::nullopt;
  }
  lru_.splice(lru_.begin(), lru_, it->second);
  ++stats_.hits;
  return it->second->name;
}

}  // namespace vt::client
