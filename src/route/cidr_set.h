// CidrSet: IPv4 and IPv6 prefixes, each tagged with the index of the rule
// that listed it, answering "which rules contain this address" in address
// order (at most 33 or 129 trie nodes visited), never by scanning rules.
//
// It is a plain binary trie per family. A node keeps the rule indices whose
// prefix ends there, ascending (rules are inserted in rule order), so the
// caller can stop at the first index that cannot beat what it already has.
// A path-compressed trie would use less memory for sparse IPv6 sets; the
// plain one is kept until the figures in docs/performance.md ("Rule
// lookups") say it matters.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/ip_prefix.h"

namespace vt::route {

inline constexpr uint32_t kNoRule = UINT32_MAX;

class CidrSet {
 public:
  CidrSet();

  // Rules must be inserted in non-decreasing rule order (a RuleSet builds
  // them that way); the per-node lists then stay sorted without a sort.
  void insert(const IpPrefix& prefix, uint32_t rule);

  // Calls visit(span of ascending rule indices) for every prefix on the
  // path of `ip` (4 bytes when !v6, 16 otherwise), shortest prefix first.
  // visit returns false to stop the walk early.
  template <class Visit>
  void forEachContaining(bool v6, const uint8_t* ip, Visit&& visit) const;

  // The lowest rule index among all prefixes that contain `ip`, or kNoRule.
  uint32_t lowest(bool v6, const uint8_t* ip) const;

  size_t prefixCount() const { return prefixes_; }
  size_t nodeCount() const { return nodes_.size(); }
  size_t memoryBytes() const;

 private:
  struct Node {
    uint32_t child[2] = {0, 0};  // 0 = none (node 0 is a root, never a child)
    uint32_t list = kNoRule;     // index into lists_, or kNoRule
  };

  std::vector<Node> nodes_;  // [0] the IPv4 root, [1] the IPv6 root
  std::vector<std::vector<uint32_t>> lists_;
  size_t prefixes_ = 0;
};

template <class Visit>
void CidrSet::forEachContaining(bool v6, const uint8_t* ip, Visit&& visit) const {
  const unsigned max_bits = v6 ? 128 : 32;
  uint32_t n = v6 ? 1 : 0;
  for (unsigned depth = 0;; ++depth) {
    const Node& node = nodes_[n];
    if (node.list != kNoRule && !visit(std::span<const uint32_t>(lists_[node.list]))) return;
    if (depth == max_bits) return;
    unsigned bit = (ip[depth / 8] >> (7 - depth % 8)) & 1u;
    n = node.child[bit];
    if (n == 0) return;
  }
}

}  // namespace vt::route
