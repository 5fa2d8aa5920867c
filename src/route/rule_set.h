// RuleSet: ordered routing rules, first match wins, as in sing-box's route
// rules. A rule's conditions combine like sing-box's:
//
//   (ip_cidr || geoip || domain || domain_suffix || domain_keyword
//     || domain_regex) && (port) && (network)
//
// Within one kind the entries are ORed ("any of these ports"); the kinds
// are ANDed, except that the destination-address kinds (CIDRs, countries
// and the four domain kinds) form one ORed group: a rule listing both the
// domains and the addresses of a service matches a flow known by either. A
// kind a rule does not list does not constrain it; a rule must list at
// least one kind.
//
// geoip compares country codes, not addresses: the caller looks the
// destination up (route::GeoIp, the one part of route/ that reads a file)
// and passes the code in Query::country, and only when usesGeoip() says a
// rule needs it.
//
// A lookup never walks the rule list: the address group is answered by a
// CidrSet, a country index and a DomainMatcher (each gives candidates in
// rule order), and ports and network are checked only on those candidates.
// Rules that have no address condition (only port and/or network) are the
// one list scanned, and only while they could beat the best rule found.
//
// Pure and I/O-free: the client decides what a Query holds (the sniffed or
// fake-DNS name, the destination) and what to do with the Decision.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/error.h"
#include "route/cidr_set.h"
#include "route/domain_matcher.h"

namespace vt::route {

enum class Action : uint8_t { kProxy, kDirect, kBlock };
// How a blocked flow ends: kReset answers (TCP RST, ICMP port unreachable
// for UDP) so the app fails fast; kDrop says nothing (the app times out).
enum class BlockStyle : uint8_t { kReset, kDrop };
enum class Network : uint8_t { kTcp, kUdp };

const char* actionName(Action a) noexcept;

// The plain description a config loader fills: strings as the user wrote
// them; RuleSet::build validates and reports the rule and entry at fault.
struct RuleSpec {
  std::vector<std::string> ip_cidr;  // "10.0.0.0/8", "2001:db8::/32", "1.2.3.4"
  std::vector<std::string> geoip;    // ISO 3166 country codes, any case: "CN", "de"
  std::vector<std::string> domain;   // full names
  std::vector<std::string> domain_suffix;
  std::vector<std::string> domain_keyword;
  std::vector<std::string> domain_regex;
  std::vector<std::string> port;     // "443", "1000-2000" or "1000:2000"
  std::vector<std::string> network;  // "tcp", "udp"
  std::string action = "proxy";      // "proxy", "direct", "block"
  std::string block_style;           // "" / "reset" (default), "drop"
};

struct RuleSetSpec {
  std::vector<RuleSpec> rules;
  std::string default_action = "proxy";  // when no rule matches
  std::string default_block_style;
};

struct IpAddress {
  bool v6 = false;
  std::array<uint8_t, 16> bytes{};  // network order; v4 in the first 4

  static IpAddress v4(const uint8_t b[4]);
  static IpAddress v6Bytes(const uint8_t b[16]);
  static std::optional<IpAddress> parse(std::string_view text);
  // ::ffff:a.b.c.d as a.b.c.d; anything else unchanged.
  IpAddress unmapped() const;
};

struct Query {
  std::optional<IpAddress> ip;  // the destination, when known
  std::string_view domain;      // empty when unknown; not owned
  uint16_t port = 0;
  Network network = Network::kTcp;
  // The destination's country code (GeoIp::country), any case; empty when
  // unknown; not owned. Last, so positional initialisers stay valid.
  std::string_view country = {};
};

struct Decision {
  static constexpr uint32_t kDefaultRule = kNoRule;
  Action action = Action::kProxy;
  BlockStyle block_style = BlockStyle::kReset;
  uint32_t rule = kDefaultRule;  // index of the matching rule, or kDefaultRule

  bool matchedRule() const { return rule != kDefaultRule; }
};

class RuleSet {
 public:
  // Errors (Errc::kConfig) read "rule 3: ip_cidr entry \"10.0.0.1/8\": ...";
  // the default action's errors name "default_action". When a rule is at
  // fault and `failed_rule` is given, it receives that rule's index (a
  // config reader points at the rule's place in the file); SIZE_MAX
  // otherwise.
  static Result<RuleSet> build(const RuleSetSpec& spec, size_t* failed_rule = nullptr);

  Decision match(const Query& q) const;
  // For DNS: the first rule whose domain conditions match `name`, its port
  // and network conditions not considered (a query has neither yet); the
  // default decision (rule kDefaultRule) when no rule names it.
  Decision matchName(std::string_view name) const;

  size_t ruleCount() const { return rules_.size(); }
  // Whether any rule has a geoip condition: only then is Query::country
  // worth a database lookup.
  bool usesGeoip() const { return !geo_keys_.empty(); }
  // Whether any rule names domains, and the first that does (kNoRule when
  // none): a decision made without a name by rule r is final unless
  // firstDomainRule() < r (only then may learning the flow's name change
  // it: worth sniffing its first bytes).
  bool usesDomains() const { return first_domain_rule_ != kNoRule; }
  uint32_t firstDomainRule() const { return first_domain_rule_; }
  size_t memoryBytes() const;  // an estimate of the index structures

 private:
  struct Rule {
    std::vector<std::pair<uint16_t, uint16_t>> ports;  // empty: any port
    uint8_t networks = 0;                              // bit per Network; 0: any
    Action action = Action::kProxy;
    BlockStyle block_style = BlockStyle::kReset;
  };

  bool restOk(uint32_t rule, const Query& q) const;

  std::vector<Rule> rules_;
  CidrSet cidrs_;
  DomainMatcher domains_;
  // The country index: geo_keys_ ascending (the two letters, upper-case, as
  // one uint16_t); the rules listing geo_keys_[k] are geo_rules_[
  // geo_starts_[k] .. geo_starts_[k + 1]), ascending. Flat arrays: a lookup
  // is a binary search over a few hundred keys at most, and allocates
  // nothing.
  std::vector<uint16_t> geo_keys_;
  std::vector<uint32_t> geo_starts_;
  std::vector<uint32_t> geo_rules_;
  std::vector<uint32_t> no_address_;  // rules without an address condition, ascending
  uint32_t first_domain_rule_ = kNoRule;
  Action default_action_ = Action::kProxy;
  BlockStyle default_block_style_ = BlockStyle::kReset;
};

}  // namespace vt::route
