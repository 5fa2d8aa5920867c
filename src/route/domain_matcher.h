// DomainMatcher: domain names against rule entries of four kinds, answering
// "the lowest rule index whose entry matches" without scanning the rules.
//
//   full     "example.com"   the name itself (case-insensitive, one trailing
//                            dot ignored on both sides)
//   suffix   "example.com"   the name and its subdomains, on a label
//                            boundary: "a.example.com" yes, "badexample.com" no
//   keyword  "ample"         a substring of the (lowercased) name
//   regex    "^ads?\\."      std::regex ECMAScript, icase, searched in the name
//
// Full and suffix entries live in one trie over reversed labels (com ->
// example -> a), so a lookup visits at most one node per label of the name.
// Keywords are indexed by their first three characters (one hash probe per
// position of the name, whatever the number of keywords). Regexes cannot be
// indexed; they are kept in rule order and tried only while their rule could
// still beat the best index found so far, so a name already matched by an
// early suffix rule never runs the regexes of later rules.
//
// Building may allocate and compile regexes (config time); lookups do not
// allocate, except inside std::regex. The pattern length bound does not
// bound the matching time: libstdc++ backtracks, so a pattern such as
// "(a+)+b" is exponential in the name's length. Names are at most 253
// characters and patterns come from the user's own config, not the network;
// a real cap would need another regex engine (RE2-like) and is left open.

#pragma once

#include <cstdint>
#include <regex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/error.h"
#include "route/cidr_set.h"  // kNoRule

namespace vt::route {

enum class DomainKind { kFull, kSuffix, kKeyword, kRegex };

const char* domainKindName(DomainKind kind) noexcept;

class DomainMatcher {
 public:
  // Longest regex pattern accepted: std::regex compiles to a backtracking
  // matcher whose cost grows with the pattern; domain rules never need more.
  static constexpr size_t kMaxRegexLength = 512;
  static constexpr size_t kMaxNameLength = 253;  // RFC 1035, without the root dot

  DomainMatcher();

  // Entries must be added in non-decreasing rule order. The error message
  // names the entry and why it was refused; the caller adds the rule.
  Status add(DomainKind kind, std::string_view entry, uint32_t rule);

  // The lowest rule index r < below whose entry matches `name` and for which
  // accept(r) is true, or kNoRule. accept lets a RuleSet check the rest of a
  // rule (ports, network) on candidates only.
  template <class Accept>
  uint32_t lowest(std::string_view name, uint32_t below, Accept&& accept) const;
  uint32_t lowest(std::string_view name) const {
    return lowest(name, kNoRule, [](uint32_t) { return true; });
  }

  bool empty() const { return entries_ == 0; }
  size_t memoryBytes() const;  // an estimate: containers, not regex internals

 private:
  struct Node {
    uint32_t full = kNoRule;    // index into lists_
    uint32_t suffix = kNoRule;  // index into lists_
  };
  struct Keyword {
    uint32_t rule;
    std::string text;
  };
  struct Regex {
    uint32_t rule;
    std::regex re;
  };
  // Children are found by (parent node, label) in one hash map rather than a
  // map per node: far less memory for 100,000 mostly single-child nodes.
  struct KeyHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };

  // Lowercases `in` into `out` (kMaxNameLength + 1 bytes) without the
  // trailing dot; returns the length, or 0 when the name is unusable.
  static size_t normalize(std::string_view in, char* out);
  static uint32_t trigram(const char* p) {
    return static_cast<uint32_t>(static_cast<uint8_t>(p[0])) << 16 |
           static_cast<uint32_t>(static_cast<uint8_t>(p[1])) << 8 | static_cast<uint8_t>(p[2]);
  }
  uint32_t child(uint32_t parent, std::string_view label) const;
  uint32_t addPath(std::string_view name);
  void addToList(uint32_t& list, uint32_t rule);

  // Scans an ascending list for the first rule below `best` that accept()s.
  template <class Accept>
  void scan(uint32_t list, uint32_t& best, Accept& accept) const;
  template <class Accept>
  uint32_t lowestNormalized(std::string_view name, uint32_t below, Accept& accept) const;

  std::vector<Node> nodes_;  // [0] the root (the empty name)
  std::unordered_map<std::string, uint32_t, KeyHash, std::equal_to<>> children_;
  std::vector<std::vector<uint32_t>> lists_;
  std::vector<Keyword> keywords_;  // rule order
  // Keywords of 3+ characters by their first three (indices into keywords_,
  // ascending); shorter ones are few and tried one by one.
  std::unordered_map<uint32_t, std::vector<uint32_t>> keyword_grams_;
  std::vector<uint32_t> short_keywords_;
  std::vector<Regex> regexes_;  // rule order
  size_t entries_ = 0;
};

template <class Accept>
void DomainMatcher::scan(uint32_t list, uint32_t& best, Accept& accept) const {
  if (list == kNoRule) return;
  for (uint32_t r : lists_[list]) {
    if (r >= best) return;
    if (accept(r)) {
      best = r;
      return;
    }
  }
}

template <class Accept>
uint32_t DomainMatcher::lowest(std::string_view name, uint32_t below, Accept&& accept) const {
  char buf[kMaxNameLength + 1];
  size_t n = normalize(name, buf);
  if (n == 0) return kNoRule;
  return lowestNormalized(std::string_view(buf, n), below, accept);
}

template <class Accept>
uint32_t DomainMatcher::lowestNormalized(std::string_view name, uint32_t below,
                                         Accept& accept) const {
  uint32_t best = below;
  // Walk the labels right to left; every node passed is a suffix of the name.
  uint32_t node = 0;
  size_t end = name.size();
  while (true) {
    size_t dot = name.rfind('.', end - 1);
    size_t begin = dot == std::string_view::npos ? 0 : dot + 1;
    node = child(node, name.substr(begin, end - begin));
    if (node == kNoRule) break;
    scan(nodes_[node].suffix, best, accept);
    if (begin == 0) {
      scan(nodes_[node].full, best, accept);
      break;
    }
    end = dot;
    if (end == 0) break;  // a leading dot: no label left
  }
  if (!keywords_.empty() && keywords_.front().rule < best) {
    for (uint32_t i : short_keywords_) {
      const Keyword& k = keywords_[i];
      if (k.rule >= best) break;
      if (name.find(k.text) != std::string_view::npos && accept(k.rule)) {
        best = k.rule;
        break;
      }
    }
    // Every keyword of 3+ characters starts with the trigram at some
    // position of the name: one hash probe per position finds them all.
    for (size_t pos = 0; pos + 3 <= name.size(); ++pos) {
      auto it = keyword_grams_.find(trigram(name.data() + pos));
      if (it == keyword_grams_.end()) continue;
      for (uint32_t i : it->second) {
        const Keyword& k = keywords_[i];
        if (k.rule >= best) break;
        if (name.substr(pos).starts_with(k.text) && accept(k.rule)) {
          best = k.rule;
          break;
        }
      }
    }
  }
  for (const Regex& r : regexes_) {
    if (r.rule >= best) break;
    bool hit = false;
    try {
      hit = std::regex_search(name.begin(), name.end(), r.re);
    } catch (const std::regex_error&) {
      // libstdc++ throws on runaway backtracking: a non-match, not a crash.
      hit = false;
    }
    if (hit && accept(r.rule)) {
      best = r.rule;
      break;
    }
  }
  return best < below ? best : kNoRule;
}

}  // namespace vt::route
