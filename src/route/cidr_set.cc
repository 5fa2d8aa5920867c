#include "route/cidr_set.h"

#include <cassert>

namespace vt::route {

CidrSet::CidrSet() : nodes_(2) {}

void CidrSet::insert(const IpPrefix& prefix, uint32_t rule) {
  uint32_t n = prefix.v6 ? 1 : 0;
  for (unsigned depth = 0; depth < prefix.bits; ++depth) {
    unsigned bit = (prefix.addr[depth / 8] >> (7 - depth % 8)) & 1u;
    if (nodes_[n].child[bit] == 0) {
      // push_back may reallocate: take the new index first, then link it.
      uint32_t next = static_cast<uint32_t>(nodes_.size());
      nodes_.emplace_back();
      nodes_[n].child[bit] = next;
    }
    n = nodes_[n].child[bit];
  }
  Node& node = nodes_[n];
  if (node.list == kNoRule) {
    node.list = static_cast<uint32_t>(lists_.size());
    lists_.emplace_back();
  }
  std::vector<uint32_t>& list = lists_[node.list];
  assert(list.empty() || list.back() <= rule);  // lookups stop at the first index too high
  // The same prefix twice in one rule adds nothing.
  if (!list.empty() && list.back() == rule) return;
  list.push_back(rule);
  ++prefixes_;
}

uint32_t CidrSet::lowest(bool v6, const uint8_t* ip) const {
  uint32_t best = kNoRule;
  forEachContaining(v6, ip, [&](std::span<const uint32_t> rules) {
    if (rules.front() < best) best = rules.front();
    return true;
  });
  return best;
}

size_t CidrSet::memoryBytes() const {
  size_t bytes = nodes_.capacity() * sizeof(Node) + lists_.capacity() * sizeof(lists_[0]);
  for (const auto& l : lists_) bytes += l.capacity() * sizeof(uint32_t);
  return bytes;
}

}  // namespace vt::route
