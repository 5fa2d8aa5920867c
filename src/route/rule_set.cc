#include "route/rule_set.h"

#include <algorithm>
#include <cstring>

#include "core/ip_prefix.h"

namespace vt::route {

namespace {

constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

std::optional<unsigned> parsePortNumber(std::string_view s) {
  if (s.empty() || s.size() > 5) return std::nullopt;
  unsigned v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  if (v > 65535) return std::nullopt;
  return v;
}

// "443", "1000-2000", "1000:2000", and sing-box's open ends ":1024", "1024:".
std::optional<std::pair<uint16_t, uint16_t>> parsePortRange(std::string_view s) {
  size_t sep = s.find_first_of("-:");
  if (sep == std::string_view::npos) {
    auto p = parsePortNumber(s);
    if (!p) return std::nullopt;
    return std::pair<uint16_t, uint16_t>(static_cast<uint16_t>(*p), static_cast<uint16_t>(*p));
  }
  std::string_view lo_s = s.substr(0, sep), hi_s = s.substr(sep + 1);
  if (lo_s.empty() && hi_s.empty()) return std::nullopt;
  auto lo = lo_s.empty() ? std::optional<unsigned>(0) : parsePortNumber(lo_s);
  auto hi = hi_s.empty() ? std::optional<unsigned>(65535) : parsePortNumber(hi_s);
  if (!lo || !hi || *lo > *hi) return std::nullopt;
  return std::pair<uint16_t, uint16_t>(static_cast<uint16_t>(*lo), static_cast<uint16_t>(*hi));
}

std::optional<Action> parseAction(std::string_view s) {
  if (s == "proxy") return Action::kProxy;
  if (s == "direct") return Action::kDirect;
  if (s == "block") return Action::kBlock;
  return std::nullopt;
}

std::optional<BlockStyle> parseBlockStyle(std::string_view s) {
  if (s.empty() || s == "reset") return BlockStyle::kReset;
  if (s == "drop") return BlockStyle::kDrop;
  return std::nullopt;
}

// ::ffff:a.b.c.d/n with n >= 96 is the IPv4 prefix a.b.c.d/(n-96): lookups
// unwrap mapped addresses, so the rule must be stored as IPv4 to be seen.
IpPrefix unmappedPrefix(const IpPrefix& p) {
  if (!p.v6 || p.bits < 96 || std::memcmp(p.addr.data(), kMapped, 12) != 0) return p;
  IpPrefix v4;
  std::memcpy(v4.addr.data(), p.addr.data() + 12, 4);
  v4.bits = static_cast<uint8_t>(p.bits - 96);
  return v4;
}

// "CN", "de": two ASCII letters, as one upper-case key ('C' << 8 | 'N').
// Anything else (ISO 3166 has no other form) is nullopt.
std::optional<uint16_t> countryKey(std::string_view s) {
  if (s.size() != 2) return std::nullopt;
  uint16_t key = 0;
  for (char c : s) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    if (c < 'A' || c > 'Z') return std::nullopt;
    key = static_cast<uint16_t>((key << 8) | static_cast<uint8_t>(c));
  }
  return key;
}

Error ruleError(size_t index, const std::string& what) {
  return Error(Errc::kConfig, "rule " + std::to_string(index) + ": " + what);
}

Error entryError(size_t index, const char* key, const std::string& entry, const char* why) {
  return ruleError(index, std::string(key) + " entry \"" + entry + "\": " + why);
}

}  // namespace

const char* actionName(Action a) noexcept {
  switch (a) {
    case Action::kProxy: return "proxy";
    case Action::kDirect: return "direct";
    case Action::kBlock: return "block";
  }
  return "?";
}

IpAddress IpAddress::v4(const uint8_t b[4]) {
  IpAddress a;
  std::memcpy(a.bytes.data(), b, 4);
  return a;
}

IpAddress IpAddress::v6Bytes(const uint8_t b[16]) {
  IpAddress a;
  a.v6 = true;
  std::memcpy(a.bytes.data(), b, 16);
  return a;
}

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
  if (text.find('/') != std::string_view::npos) return std::nullopt;
  auto p = IpPrefix::parse(text);
  if (!p) return std::nullopt;
  IpAddress a;
  a.v6 = p->v6;
  a.bytes = p->addr;
  return a;
}

IpAddress IpAddress::unmapped() const {
  if (!v6 || std::memcmp(bytes.data(), kMapped, 12) != 0) return *this;
  return v4(bytes.data() + 12);
}

Result<RuleSet> RuleSet::build(const RuleSetSpec& spec, size_t* failed_rule) {
  RuleSet set;
  if (failed_rule != nullptr) *failed_rule = SIZE_MAX;
  auto def = parseAction(spec.default_action);
  if (!def) {
    return Error(Errc::kConfig,
                 "default_action \"" + spec.default_action + "\": expected proxy, direct or block");
  }
  auto def_style = parseBlockStyle(spec.default_block_style);
  if (!def_style) {
    return Error(Errc::kConfig, "default_block_style \"" + spec.default_block_style +
                                    "\": expected reset or drop");
  }
  set.default_action_ = *def;
  set.default_block_style_ = *def_style;
  if (spec.rules.size() >= kNoRule) return Error(Errc::kLimit, "too many rules");

  set.rules_.reserve(spec.rules.size());
  std::vector<std::pair<uint16_t, uint32_t>> geo;  // (country, rule), indexed after the loop
  for (size_t i = 0; i < spec.rules.size(); ++i) {
    const RuleSpec& rs = spec.rules[i];
    const uint32_t index = static_cast<uint32_t>(i);
    if (failed_rule != nullptr) *failed_rule = i;  // what an error return below leaves
    Rule rule;
    auto action = parseAction(rs.action);
    if (!action)
      return ruleError(i, "action \"" + rs.action + "\": expected proxy, direct or block");
    auto style = parseBlockStyle(rs.block_style);
    if (!style)
      return ruleError(i, "block_style \"" + rs.block_style + "\": expected reset or drop");
    rule.action = *action;
    rule.block_style = *style;

    for (const std::string& p : rs.port) {
      auto range = parsePortRange(p);
      if (!range)
        return entryError(i, "port", p, "expected a port or a range lo-hi within 0-65535");
      rule.ports.push_back(*range);
    }
    for (const std::string& n : rs.network) {
      if (n == "tcp") {
        rule.networks |= 1u << static_cast<unsigned>(Network::kTcp);
      } else if (n == "udp") {
        rule.networks |= 1u << static_cast<unsigned>(Network::kUdp);
      } else {
        return entryError(i, "network", n, "expected tcp or udp");
      }
    }

    const bool has_address = !rs.ip_cidr.empty() || !rs.geoip.empty() || !rs.domain.empty() ||
                             !rs.domain_suffix.empty() || !rs.domain_keyword.empty() ||
                             !rs.domain_regex.empty();
    if (!has_address && rs.port.empty() && rs.network.empty()) {
      return ruleError(i, "no match conditions (ip_cidr, geoip, domain*, port or network)");
    }
    for (const std::string& c : rs.ip_cidr) {
      auto prefix = IpPrefix::parse(c);
      if (!prefix) return entryError(i, "ip_cidr", c, "not a CIDR (host bits must be zero)");
      set.cidrs_.insert(unmappedPrefix(*prefix), index);
    }
    for (const std::string& c : rs.geoip) {
      auto key = countryKey(c);
      if (!key) return entryError(i, "geoip", c, "expected a two-letter country code");
      geo.emplace_back(*key, index);
    }
    const std::pair<const std::vector<std::string>*, DomainKind> kinds[] = {
        {&rs.domain, DomainKind::kFull},
        {&rs.domain_suffix, DomainKind::kSuffix},
        {&rs.domain_keyword, DomainKind::kKeyword},
        {&rs.domain_regex, DomainKind::kRegex},
    };
    for (const auto& [list, kind] : kinds) {
      for (const std::string& d : *list) {
        if (set.first_domain_rule_ == kNoRule) set.first_domain_rule_ = index;
        Status st = set.domains_.add(kind, d, index);
        if (!st) return ruleError(i, st.error().message);
      }
    }
    if (!has_address) set.no_address_.push_back(index);
    set.rules_.push_back(std::move(rule));
  }
  if (failed_rule != nullptr) *failed_rule = SIZE_MAX;

  // Sorted by country, then rule; a code a rule lists twice counts once.
  std::sort(geo.begin(), geo.end());
  geo.erase(std::unique(geo.begin(), geo.end()), geo.end());
  for (const auto& [key, rule] : geo) {
    if (set.geo_keys_.empty() || set.geo_keys_.back() != key) {
      set.geo_keys_.push_back(key);
      set.geo_starts_.push_back(static_cast<uint32_t>(set.geo_rules_.size()));
    }
    set.geo_rules_.push_back(rule);
  }
  set.geo_starts_.push_back(static_cast<uint32_t>(set.geo_rules_.size()));
  return set;
}

bool RuleSet::restOk(uint32_t index, const Query& q) const {
  const Rule& r = rules_[index];
  if (r.networks != 0 && (r.networks & (1u << static_cast<unsigned>(q.network))) == 0) return false;
  if (r.ports.empty()) return true;
  for (const auto& [lo, hi] : r.ports) {
    if (q.port >= lo && q.port <= hi) return true;
  }
  return false;
}

Decision RuleSet::match(const Query& q) const {
  uint32_t best = kNoRule;
  auto accept = [&](uint32_t r) { return restOk(r, q); };
  if (q.ip) {
    const IpAddress ip = q.ip->unmapped();
    cidrs_.forEachContaining(ip.v6, ip.bytes.data(), [&](std::span<const uint32_t> rules) {
      for (uint32_t r : rules) {
        if (r >= best) break;
        if (accept(r)) {
          best = r;
          break;
        }
      }
      return true;
    });
  }
  if (!q.country.empty() && !geo_keys_.empty()) {
    auto key = countryKey(q.country);
    auto it = key ? std::lower_bound(geo_keys_.begin(), geo_keys_.end(), *key) : geo_keys_.end();
    if (it != geo_keys_.end() && *it == *key) {
      const size_t k = static_cast<size_t>(it - geo_keys_.begin());
      for (uint32_t j = geo_starts_[k]; j < geo_starts_[k + 1]; ++j) {
        const uint32_t r = geo_rules_[j];
        if (r >= best) break;
        if (accept(r)) {
          best = r;
          break;
        }
      }
    }
  }
  if (!q.domain.empty() && !domains_.empty()) {
    uint32_t r = domains_.lowest(q.domain, best, accept);
    if (r != kNoRule) best = r;
  }
  for (uint32_t r : no_address_) {
    if (r >= best) break;
    if (accept(r)) {
      best = r;
      break;
    }
  }
  Decision d;
  if (best == kNoRule) {
    d.action = default_action_;
    d.block_style = default_block_style_;
    return d;
  }
  d.rule = best;
  d.action = rules_[best].action;
  d.block_style = rules_[best].block_style;
  return d;
}

Decision RuleSet::matchName(std::string_view name) const {
  Decision d;
  d.action = default_action_;
  d.block_style = default_block_style_;
  if (name.empty() || domains_.empty()) return d;
  const uint32_t r = domains_.lowest(name);
  if (r == kNoRule) return d;
  d.rule = r;
  d.action = rules_[r].action;
  d.block_style = rules_[r].block_style;
  return d;
}

size_t RuleSet::memoryBytes() const {
  size_t bytes = rules_.capacity() * sizeof(Rule) + no_address_.capacity() * sizeof(uint32_t);
  for (const Rule& r : rules_) bytes += r.ports.capacity() * sizeof(r.ports[0]);
  bytes += geo_keys_.capacity() * sizeof(uint16_t) +
           (geo_starts_.capacity() + geo_rules_.capacity()) * sizeof(uint32_t);
  return bytes + cidrs_.memoryBytes() + domains_.memoryBytes();
}

}  // namespace vt::route
