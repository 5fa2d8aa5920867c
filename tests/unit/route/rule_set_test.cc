#include "route/rule_set.h"

#include <gtest/gtest.h>

#include <cctype>
#include <random>
#include <regex>

namespace vt::route {
namespace {

RuleSet build(RuleSetSpec spec) {
  auto r = RuleSet::build(spec);
  EXPECT_TRUE(r) << (r ? "" : r.error().message);
  return std::move(r).value();
}

std::string buildError(RuleSetSpec spec) {
  auto r = RuleSet::build(spec);
  EXPECT_FALSE(r);
  return r ? "" : r.error().message;
}

Query q(const char* ip, const char* domain = "", uint16_t port = 443, Network net = Network::kTcp) {
  Query query;
  if (ip[0] != '\0') {
    query.ip = IpAddress::parse(ip);
    EXPECT_TRUE(query.ip) << ip;
  }
  query.domain = domain;
  query.port = port;
  query.network = net;
  return query;
}

RuleSpec rule(std::string action) {
  RuleSpec r;
  r.action = std::move(action);
  return r;
}

TEST(RuleSet, FirstMatchWinsAcrossKinds) {
  RuleSetSpec spec;
  spec.default_action = "direct";
  RuleSpec r0 = rule("block");
  r0.domain_keyword = {"tracker"};
  RuleSpec r1 = rule("proxy");
  r1.ip_cidr = {"10.0.0.0/8"};
  RuleSpec r2 = rule("direct");
  r2.domain_suffix = {"example.com"};
  RuleSpec r3 = rule("block");
  r3.ip_cidr = {"0.0.0.0/0"};
  spec.rules = {r0, r1, r2, r3};
  RuleSet set = build(spec);

  // Both r1 (address) and r2 (name) match: r1 is first.
  Decision d = set.match(q("10.1.1.1", "www.example.com"));
  EXPECT_EQ(d.rule, 1u);
  EXPECT_EQ(d.action, Action::kProxy);
  // r0's keyword beats r1's CIDR.
  EXPECT_EQ(set.match(q("10.1.1.1", "tracker.example.com")).rule, 0u);
  // r2's suffix beats r3's /0.
  EXPECT_EQ(set.match(q("8.8.8.8", "example.com")).rule, 2u);
  EXPECT_EQ(set.match(q("8.8.8.8")).rule, 3u);
  // No address, unknown name: the default.
  d = set.match(q("", "unknown.org"));
  EXPECT_FALSE(d.matchedRule());
  EXPECT_EQ(d.action, Action::kDirect);
  // IPv6 is not covered by 0.0.0.0/0.
  EXPECT_FALSE(set.match(q("2001:db8::1")).matchedRule());
}

TEST(RuleSet, Ipv4MappedIpv6IsIpv4) {
  RuleSetSpec spec;
  RuleSpec r0 = rule("direct");
  r0.ip_cidr = {"192.168.0.0/16"};
  RuleSpec r1 = rule("block");
  r1.ip_cidr = {"::ffff:10.0.0.0/104"};  // written mapped: stored as 10.0.0.0/8
  RuleSpec r2 = rule("proxy");
  r2.ip_cidr = {"::/0"};
  spec.rules = {r0, r1, r2};
  RuleSet set = build(spec);
  EXPECT_EQ(set.match(q("::ffff:192.168.3.4")).rule, 0u);
  EXPECT_EQ(set.match(q("::ffff:10.2.3.4")).rule, 1u);
  EXPECT_EQ(set.match(q("10.2.3.4")).rule, 1u);
  EXPECT_EQ(set.match(q("::ffff:8.8.8.8")).rule,
            Decision::kDefaultRule);  // IPv4 now, not under ::/0
  EXPECT_EQ(set.match(q("2001:db8::1")).rule, 2u);
}

TEST(RuleSet, OverlappingPrefixesFollowRuleOrder) {
  RuleSpec wide = rule("proxy");
  wide.ip_cidr = {"10.0.0.0/8", "2001:db8::/32"};
  RuleSpec narrow = rule("direct");
  narrow.ip_cidr = {"10.1.0.0/16", "2001:db8:1::/48"};

  RuleSetSpec wide_first;
  wide_first.rules = {wide, narrow};
  RuleSet a = build(wide_first);
  EXPECT_EQ(a.match(q("10.1.2.3")).action, Action::kProxy);
  EXPECT_EQ(a.match(q("2001:db8:1::5")).action, Action::kProxy);

  RuleSetSpec narrow_first;
  narrow_first.rules = {narrow, wide};
  RuleSet b = build(narrow_first);
  EXPECT_EQ(b.match(q("10.1.2.3")).action, Action::kDirect);
  EXPECT_EQ(b.match(q("10.2.2.3")).action, Action::kProxy);
  EXPECT_EQ(b.match(q("2001:db8:1::5")).action, Action::kDirect);
  EXPECT_EQ(b.match(q("2001:db8:2::5")).action, Action::kProxy);
}

TEST(RuleSet, ZeroPrefixes) {
  RuleSetSpec spec;
  spec.default_action = "block";
  RuleSpec r0 = rule("direct");
  r0.ip_cidr = {"0.0.0.0/0", "::/0"};
  spec.rules = {r0};
  RuleSet set = build(spec);
  EXPECT_EQ(set.match(q("1.1.1.1")).rule, 0u);
  EXPECT_EQ(set.match(q("ff02::1")).rule, 0u);
  EXPECT_EQ(set.match(q("", "example.com")).action, Action::kBlock);  // no address known
}

TEST(RuleSet, PortRangesAndNetwork) {
  RuleSetSpec spec;
  RuleSpec r0 = rule("block");
  r0.port = {"53", "5000-5010", "6000:6001"};
  r0.network = {"udp"};
  RuleSpec r1 = rule("direct");
  r1.port = {":1023"};  // sing-box's open range
  r1.network = {"tcp", "udp"};
  RuleSpec r2 = rule("proxy");
  r2.network = {"tcp"};
  spec.default_action = "direct";
  spec.rules = {r0, r1, r2};
  RuleSet set = build(spec);
  EXPECT_EQ(set.match(q("1.1.1.1", "", 53, Network::kUdp)).rule, 0u);
  EXPECT_EQ(set.match(q("1.1.1.1", "", 5005, Network::kUdp)).rule, 0u);
  EXPECT_EQ(set.match(q("1.1.1.1", "", 6001, Network::kUdp)).rule, 0u);
  EXPECT_EQ(set.match(q("1.1.1.1", "", 53, Network::kTcp)).rule, 1u);
  EXPECT_EQ(set.match(q("", "", 5011, Network::kUdp)).rule, Decision::kDefaultRule);
  EXPECT_EQ(set.match(q("", "", 5011, Network::kTcp)).rule, 2u);
  EXPECT_EQ(set.match(q("", "", 0, Network::kTcp)).rule, 1u);
}

TEST(RuleSet, KindsAreAndedAddressKindsOred) {
  RuleSetSpec spec;
  RuleSpec r0 = rule("block");
  r0.ip_cidr = {"10.0.0.0/8"};
  r0.port = {"443"};
  r0.network = {"udp"};  // QUIC to 10/8 only
  RuleSpec r1 = rule("direct");
  r1.domain_suffix = {"lan"};
  r1.ip_cidr = {"192.168.0.0/16"};  // ORed with the suffix: name or address
  r1.port = {"80", "443"};
  RuleSpec r2 = rule("proxy");
  r2.ip_cidr = {"10.0.0.0/8"};
  spec.default_action = "direct";
  spec.rules = {r0, r1, r2};
  RuleSet set = build(spec);
  EXPECT_EQ(set.match(q("10.0.0.1", "", 443, Network::kUdp)).rule, 0u);
  EXPECT_EQ(set.match(q("10.0.0.1", "", 443, Network::kTcp)).rule, 2u);         // network fails r0
  EXPECT_EQ(set.match(q("10.0.0.1", "", 444, Network::kUdp)).rule, 2u);         // port fails r0
  EXPECT_EQ(set.match(q("10.0.0.1", "nas.lan", 80)).rule, 1u);                  // by name
  EXPECT_EQ(set.match(q("192.168.1.1", "", 80)).rule, 1u);                      // by address
  EXPECT_EQ(set.match(q("192.168.1.1", "", 22)).rule, Decision::kDefaultRule);  // port fails r1
  EXPECT_EQ(set.match(q("", "nas.lan", 22)).rule, Decision::kDefaultRule);
}

TEST(RuleSet, ManyCandidatesOnOnePrefix) {
  // Many rules share one prefix and differ by port: the first rule whose
  // port matches wins, whatever the order of the lists walked.
  RuleSetSpec spec;
  for (int i = 0; i < 50; ++i) {
    RuleSpec r = rule(i % 2 ? "direct" : "block");
    r.ip_cidr = {i % 3 ? "10.0.0.0/8" : "10.0.0.0/24"};
    r.domain_suffix = {"example.com"};
    r.port = {std::to_string(1000 + i)};
    spec.rules.push_back(r);
  }
  RuleSet set = build(spec);
  for (int i = 0; i < 50; ++i) {
    uint16_t port = static_cast<uint16_t>(1000 + i);
    EXPECT_EQ(set.match(q("10.0.0.1", "", port)).rule, static_cast<uint32_t>(i));
    EXPECT_EQ(set.match(q("", "a.example.com", port)).rule, static_cast<uint32_t>(i));
  }
  EXPECT_FALSE(set.match(q("10.0.0.1", "a.example.com", 999)).matchedRule());
}

TEST(RuleSet, BlockStyles) {
  RuleSetSpec spec;
  spec.default_action = "block";
  spec.default_block_style = "drop";
  RuleSpec r0 = rule("block");
  r0.domain = {"a.com"};
  RuleSpec r1 = rule("block");
  r1.domain = {"b.com"};
  r1.block_style = "drop";
  spec.rules = {r0, r1};
  RuleSet set = build(spec);
  EXPECT_EQ(set.match(q("", "a.com")).block_style, BlockStyle::kReset);
  EXPECT_EQ(set.match(q("", "b.com")).block_style, BlockStyle::kDrop);
  Decision d = set.match(q("", "c.com"));
  EXPECT_EQ(d.action, Action::kBlock);
  EXPECT_EQ(d.block_style, BlockStyle::kDrop);
}

TEST(RuleSet, ErrorsNameRuleAndEntry) {
  auto with = [](RuleSpec bad) {
    RuleSetSpec spec;
    RuleSpec ok = rule("direct");
    ok.domain = {"ok.com"};
    spec.rules = {ok, ok, bad};
    return spec;
  };
  RuleSpec r = rule("proxy");
  r.ip_cidr = {"10.0.0.0/8", "10.0.0.1/8"};
  std::string e = buildError(with(r));
  EXPECT_NE(e.find("rule 2"), std::string::npos) << e;
  EXPECT_NE(e.find("ip_cidr"), std::string::npos) << e;
  EXPECT_NE(e.find("10.0.0.1/8"), std::string::npos) << e;

  r = rule("proxy");
  r.port = {"80", "90-80"};
  e = buildError(with(r));
  EXPECT_NE(e.find("rule 2: port entry \"90-80\""), std::string::npos) << e;
  r.port = {"70000"};
  EXPECT_NE(buildError(with(r)).find("\"70000\""), std::string::npos);
  r.port = {"-"};
  EXPECT_NE(buildError(with(r)).find("\"-\""), std::string::npos);

  r = rule("proxy");
  e = buildError(with(r));
  EXPECT_NE(e.find("rule 2: no match conditions"), std::string::npos) << e;

  r = rule("proxy");
  r.domain_regex = {"^ok$", "a[b"};
  e = buildError(with(r));
  EXPECT_NE(e.find("rule 2: domain_regex entry \"a[b\": invalid regex"), std::string::npos) << e;

  r = rule("proxy");
  r.network = {"icmp"};
  EXPECT_NE(buildError(with(r)).find("rule 2: network entry \"icmp\""), std::string::npos);

  r = rule("reject");
  r.network = {"tcp"};
  EXPECT_NE(buildError(with(r)).find("rule 2: action \"reject\""), std::string::npos);

  r = rule("block");
  r.network = {"tcp"};
  r.block_style = "silently";
  EXPECT_NE(buildError(with(r)).find("rule 2: block_style"), std::string::npos);

  r = rule("proxy");
  r.domain_suffix = {"bad domain"};
  EXPECT_NE(buildError(with(r)).find("rule 2: domain_suffix entry \"bad domain\""),
            std::string::npos);

  RuleSetSpec spec;
  spec.default_action = "allow";
  EXPECT_NE(buildError(spec).find("default_action"), std::string::npos);
}

TEST(RuleSet, EmptySetGivesDefault) {
  RuleSet set = build(RuleSetSpec{});
  Decision d = set.match(q("1.2.3.4", "x.com"));
  EXPECT_FALSE(d.matchedRule());
  EXPECT_EQ(d.action, Action::kProxy);
}

TEST(RuleSet, IpAddressParseAndUnmap) {
  EXPECT_FALSE(IpAddress::parse("10.0.0.0/8"));
  EXPECT_FALSE(IpAddress::parse("nope"));
  auto a = IpAddress::parse("::ffff:1.2.3.4");
  ASSERT_TRUE(a);
  EXPECT_TRUE(a->v6);
  IpAddress u = a->unmapped();
  EXPECT_FALSE(u.v6);
  EXPECT_EQ(u.bytes[0], 1);
  EXPECT_EQ(u.bytes[3], 4);
  auto b = IpAddress::parse("::1");
  EXPECT_TRUE(b->unmapped().v6);
}

}  // namespace
}  // namespace vt::route

namespace vt::route {
namespace {

// The obvious reading of the rules, one rule at a time, to check the
// indexed lookup against on random rule sets.
struct Reference {
  RuleSetSpec spec;

  static bool domainHit(const RuleSpec& r, std::string name) {
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (!name.empty() && name.back() == '.') name.pop_back();
    if (name.empty()) return false;
    for (const auto& d : r.domain) {
      if (name == d) return true;
    }
    for (const auto& s : r.domain_suffix) {
      if (name == s || name.ends_with("." + s)) return true;
    }
    for (const auto& k : r.domain_keyword) {
      if (name.find(k) != std::string::npos) return true;
    }
    for (const auto& re : r.domain_regex) {
      if (std::regex_search(name, std::regex(re))) return true;
    }
    return false;
  }

  uint32_t match(const Query& q) const {
    for (uint32_t i = 0; i < spec.rules.size(); ++i) {
      const RuleSpec& r = spec.rules[i];
      bool has_address = !r.ip_cidr.empty() || !r.domain.empty() || !r.domain_suffix.empty() ||
                         !r.domain_keyword.empty() || !r.domain_regex.empty();
      bool address = !has_address;
      if (q.ip) {
        IpAddress ip = q.ip->unmapped();
        for (const auto& c : r.ip_cidr)
          address = address || IpPrefix::parse(c)->contains(ip.v6, ip.bytes.data());
      }
      if (!q.domain.empty()) address = address || domainHit(r, std::string(q.domain));
      if (!address) continue;
      bool port = r.port.empty();
      for (const auto& p : r.port) port = port || std::to_string(q.port) == p;
      if (!port) continue;
      bool net = r.network.empty();
      for (const auto& n : r.network)
        net = net || n == (q.network == Network::kTcp ? "tcp" : "udp");
      if (net) return i;
    }
    return Decision::kDefaultRule;
  }
};

TEST(RuleSet, AgreesWithRuleByRuleReading) {
  std::mt19937 rng(12);
  const char* labels[] = {"a", "b", "ex", "com", "net", "cdn", "ads"};
  const char* cidrs[] = {"10.0.0.0/8",    "10.1.0.0/16",     "10.1.2.0/24",
                         "0.0.0.0/0",     "192.168.0.0/16",  "::/0",
                         "2001:db8::/32", "2001:db8:1::/48", "10.1.2.3/32"};
  const char* addrs[] = {"10.1.2.3",      "10.1.9.9",      "10.9.9.9", "192.168.1.1",    "8.8.8.8",
                         "2001:db8:1::1", "2001:db8:2::1", "fe80::1",  "::ffff:10.1.2.3"};
  auto name = [&](int max_labels) {
    std::string s;
    int n = 1 + static_cast<int>(rng() % max_labels);
    for (int i = 0; i < n; ++i) s += (i ? "." : "") + std::string(labels[rng() % 7]);
    return s;
  };
  for (int round = 0; round < 30; ++round) {
    Reference ref;
    int n_rules = 1 + static_cast<int>(rng() % 40);
    for (int i = 0; i < n_rules; ++i) {
      RuleSpec r;
      do {
        if (rng() % 3 == 0) r.ip_cidr.push_back(cidrs[rng() % 9]);
        if (rng() % 4 == 0) r.domain.push_back(name(3));
        if (rng() % 3 == 0) r.domain_suffix.push_back(name(2));
        if (rng() % 8 == 0) r.domain_keyword.push_back(labels[rng() % 7]);
        if (rng() % 12 == 0) r.domain_regex.push_back("^" + std::string(labels[rng() % 7]) + "\\.");
        if (rng() % 4 == 0) r.port.push_back(std::to_string(80 + rng() % 3));
        if (rng() % 4 == 0) r.network.push_back(rng() % 2 ? "tcp" : "udp");
      } while (r.ip_cidr.empty() && r.domain.empty() && r.domain_suffix.empty() &&
               r.domain_keyword.empty() && r.domain_regex.empty() && r.port.empty() &&
               r.network.empty());
      ref.spec.rules.push_back(r);
    }
    RuleSet set = build(ref.spec);
    for (int k = 0; k < 300; ++k) {
      std::string domain = rng() % 4 ? name(4) : "";
      if (rng() % 5 == 0) domain += ".";
      if (rng() % 5 == 0)
        domain[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(domain[0])));
      Query query = q(rng() % 4 ? addrs[rng() % 9] : "", "", static_cast<uint16_t>(80 + rng() % 3),
                      rng() % 2 ? Network::kTcp : Network::kUdp);
      query.domain = domain;
      ASSERT_EQ(set.match(query).rule, ref.match(query))
          << "round " << round << " query " << k << " " << domain;
    }
  }
}

Query qc(const char* ip, const char* country, uint16_t port = 443, Network net = Network::kTcp) {
  Query query = q(ip, "", port, net);
  query.country = country;
  return query;
}

TEST(RuleSet, GeoipMatchesByCountry) {
  RuleSetSpec spec;
  spec.default_action = "proxy";
  RuleSpec r0 = rule("direct");
  r0.geoip = {"cn", "De"};  // any case in the config
  spec.rules = {r0};
  RuleSet set = build(spec);
  EXPECT_TRUE(set.usesGeoip());

  EXPECT_EQ(set.match(qc("1.2.3.4", "CN")).rule, 0u);
  EXPECT_EQ(set.match(qc("2001:db8::1", "DE")).rule, 0u);
  EXPECT_EQ(set.match(qc("", "de")).rule, 0u);  // a query's case does not matter either
  EXPECT_EQ(set.match(qc("1.2.3.4", "DE")).action, Action::kDirect);
  // Other, unknown and malformed countries: the default.
  EXPECT_FALSE(set.match(qc("1.2.3.4", "US")).matchedRule());
  EXPECT_FALSE(set.match(qc("1.2.3.4", "")).matchedRule());
  EXPECT_FALSE(set.match(qc("1.2.3.4", "C")).matchedRule());
  EXPECT_FALSE(set.match(qc("1.2.3.4", "CNN")).matchedRule());
  EXPECT_EQ(set.match(qc("1.2.3.4", "US")).action, Action::kProxy);

  // Without a geoip rule the caller need not look anything up.
  RuleSetSpec plain;
  RuleSpec p0 = rule("direct");
  p0.ip_cidr = {"10.0.0.0/8"};
  plain.rules = {p0};
  RuleSet plain_set = build(plain);
  EXPECT_FALSE(plain_set.usesGeoip());
  EXPECT_FALSE(plain_set.match(qc("1.2.3.4", "CN")).matchedRule());
}

TEST(RuleSet, GeoipOredWithCidrAndAndedWithPort) {
  RuleSetSpec spec;
  RuleSpec r0 = rule("direct");
  r0.geoip = {"CN"};
  r0.ip_cidr = {"10.0.0.0/8"};
  r0.domain_suffix = {"example.cn"};
  r0.port = {"443"};
  spec.rules = {r0};
  RuleSet set = build(spec);

  EXPECT_EQ(set.match(qc("1.2.3.4", "CN")).rule, 0u);   // by country
  EXPECT_EQ(set.match(qc("10.9.9.9", "US")).rule, 0u);  // by address
  EXPECT_EQ(set.match(qc("10.9.9.9", "")).rule, 0u);
  Query by_name = qc("1.2.3.4", "US");
  by_name.domain = "www.example.cn";
  EXPECT_EQ(by_name.domain, "www.example.cn");
  EXPECT_EQ(set.match(by_name).rule, 0u);  // by name
  EXPECT_FALSE(set.match(qc("1.2.3.4", "US")).matchedRule());
  // Port is ANDed with the whole address group.
  EXPECT_FALSE(set.match(qc("1.2.3.4", "CN", 80)).matchedRule());
  EXPECT_FALSE(set.match(qc("10.9.9.9", "US", 80)).matchedRule());
}

TEST(RuleSet, GeoipFollowsRuleOrder) {
  RuleSetSpec spec;
  spec.default_action = "direct";
  RuleSpec r0 = rule("block");
  r0.ip_cidr = {"198.18.0.0/24"};
  RuleSpec r1 = rule("proxy");
  r1.geoip = {"US"};
  r1.network = {"udp"};
  RuleSpec r2 = rule("direct");
  r2.geoip = {"US", "CA", "us"};  // a repeated code counts once
  RuleSpec r3 = rule("block");
  r3.domain_keyword = {"ads"};
  RuleSpec r4 = rule("proxy");
  r4.geoip = {"CA"};
  RuleSpec r5 = rule("block");
  r5.port = {"25"};
  spec.rules = {r0, r1, r2, r3, r4, r5};
  RuleSet set = build(spec);

  // r0's CIDR is before any country rule.
  EXPECT_EQ(set.match(qc("198.18.0.1", "US")).rule, 0u);
  // r1 needs udp: a TCP flow falls through to r2.
  EXPECT_EQ(set.match(qc("1.2.3.4", "US", 443, Network::kUdp)).rule, 1u);
  EXPECT_EQ(set.match(qc("1.2.3.4", "US", 443, Network::kTcp)).rule, 2u);
  // r2 lists CA before r4 does.
  EXPECT_EQ(set.match(qc("1.2.3.4", "CA")).rule, 2u);
  // A keyword in r3 loses to the country in r2 and beats r4's.
  Query ads = qc("1.2.3.4", "CA");
  ads.domain = "ads.example.com";
  EXPECT_EQ(set.match(ads).rule, 2u);
  ads.country = "FR";
  EXPECT_EQ(set.match(ads).rule, 3u);
  // The port-only rule after all of them, and before none of them.
  EXPECT_EQ(set.match(qc("1.2.3.4", "FR", 25)).rule, 5u);
  EXPECT_EQ(set.match(qc("1.2.3.4", "CA", 25)).rule, 2u);
  EXPECT_FALSE(set.match(qc("1.2.3.4", "FR")).matchedRule());
}

TEST(RuleSet, GeoipErrors) {
  auto with = [](std::vector<std::string> codes) {
    RuleSetSpec spec;
    RuleSpec ok = rule("direct");
    ok.geoip = {"cn"};
    RuleSpec bad = rule("proxy");
    bad.geoip = std::move(codes);
    spec.rules = {ok, ok, bad};
    return spec;
  };
  EXPECT_EQ(buildError(with({"DE", "xyz"})),
            "rule 2: geoip entry \"xyz\": expected a two-letter country code");
  // "\xc3\xa9" is é: two bytes, one letter, not ASCII.
  for (const char* bad : {"", "c", "C1", "c n", "\xc3\xa9", "geoip:cn"}) {
    std::string e = buildError(with({bad}));
    EXPECT_NE(e.find("rule 2: geoip entry \""), std::string::npos) << bad << ": " << e;
  }
  size_t failed = 0;
  auto r = RuleSet::build(with({"1"}), &failed);
  EXPECT_FALSE(r);
  EXPECT_EQ(failed, 2u);
}

TEST(RuleSet, NamesForDnsAndTheFirstDomainRule) {
  RuleSetSpec spec;
  RuleSpec cidr = rule("proxy");
  cidr.ip_cidr = {"198.18.0.0/15"};
  RuleSpec direct = rule("direct");
  direct.domain_suffix = {"direct.test"};
  direct.port = {"443"};  // not considered for a name alone
  RuleSpec block = rule("block");
  block.domain_keyword = {"ads"};
  spec.rules = {cidr, direct, block};
  spec.default_action = "proxy";
  RuleSet set = build(spec);
  EXPECT_TRUE(set.usesDomains());
  EXPECT_EQ(set.firstDomainRule(), 1u);
  Decision d = set.matchName("www.direct.test");
  EXPECT_EQ(d.action, Action::kDirect);
  EXPECT_EQ(d.rule, 1u);
  EXPECT_EQ(set.matchName("ads.example").action, Action::kBlock);
  d = set.matchName("other.example");
  EXPECT_FALSE(d.matchedRule());
  EXPECT_EQ(d.action, Action::kProxy);
  EXPECT_FALSE(set.matchName("").matchedRule());

  RuleSetSpec plain;
  plain.rules = {cidr};
  RuleSet none = build(plain);
  EXPECT_FALSE(none.usesDomains());
  EXPECT_EQ(none.firstDomainRule(), kNoRule);
}

}  // namespace
}  // namespace vt::route
