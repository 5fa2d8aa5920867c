#include "route/cidr_set.h"

#include <gtest/gtest.h>

#include <random>

namespace vt::route {
namespace {

IpPrefix P(const char* s) {
  auto p = IpPrefix::parse(s);
  EXPECT_TRUE(p) << s;
  return *p;
}

uint32_t lookup(const CidrSet& set, const char* addr) {
  IpPrefix a = P(addr);
  return set.lowest(a.v6, a.addr.data());
}

TEST(CidrSet, EmptyFindsNothing) {
  CidrSet set;
  EXPECT_EQ(lookup(set, "10.0.0.1"), kNoRule);
  EXPECT_EQ(lookup(set, "2001:db8::1"), kNoRule);
}

TEST(CidrSet, LowestRuleWinsNotLongestPrefix) {
  CidrSet set;
  set.insert(P("10.0.0.0/8"), 0);
  set.insert(P("10.1.0.0/16"), 1);
  set.insert(P("192.168.1.0/24"), 2);
  set.insert(P("192.168.0.0/16"), 3);
  EXPECT_EQ(lookup(set, "10.1.2.3"), 0u);  // the /16 is more specific, but later
  EXPECT_EQ(lookup(set, "10.2.0.1"), 0u);
  EXPECT_EQ(lookup(set, "192.168.1.9"), 2u);  // the /24 comes first here
  EXPECT_EQ(lookup(set, "192.168.2.9"), 3u);
  EXPECT_EQ(lookup(set, "11.0.0.1"), kNoRule);
}

TEST(CidrSet, ZeroPrefixesPerFamily) {
  CidrSet set;
  set.insert(P("10.0.0.0/8"), 0);
  set.insert(P("0.0.0.0/0"), 1);
  set.insert(P("::/0"), 2);
  EXPECT_EQ(lookup(set, "10.9.9.9"), 0u);
  EXPECT_EQ(lookup(set, "8.8.8.8"), 1u);
  EXPECT_EQ(lookup(set, "2001:db8::1"), 2u);  // IPv4 /0 does not cover IPv6
}

TEST(CidrSet, HostRoutesAndFamiliesApart) {
  CidrSet set;
  set.insert(P("1.2.3.4"), 0);
  set.insert(P("2001:db8::/32"), 1);
  set.insert(P("2001:db8::1/128"), 2);
  set.insert(P("255.255.255.255/32"), 3);
  EXPECT_EQ(lookup(set, "1.2.3.4"), 0u);
  EXPECT_EQ(lookup(set, "1.2.3.5"), kNoRule);
  EXPECT_EQ(lookup(set, "2001:db8::1"), 1u);
  EXPECT_EQ(lookup(set, "2001:db9::1"), kNoRule);
  EXPECT_EQ(lookup(set, "255.255.255.255"), 3u);
  // 0102:0304:: has the same first bytes as 1.2.3.4 but another family.
  EXPECT_EQ(lookup(set, "102:304::"), kNoRule);
}

TEST(CidrSet, VisitsEveryRuleOnThePathInOrder) {
  CidrSet set;
  set.insert(P("10.0.0.0/8"), 1);
  set.insert(P("10.0.0.0/8"), 4);
  set.insert(P("10.0.0.0/8"), 4);  // twice in one rule: counted once
  set.insert(P("10.0.0.0/24"), 2);
  set.insert(P("10.0.0.0/24"), 3);
  set.insert(P("0.0.0.0/0"), 5);
  EXPECT_EQ(set.prefixCount(), 5u);
  std::vector<uint32_t> seen;
  IpPrefix a = P("10.0.0.7");
  set.forEachContaining(false, a.addr.data(), [&](std::span<const uint32_t> rules) {
    seen.insert(seen.end(), rules.begin(), rules.end());
    return true;
  });
  EXPECT_EQ(seen, (std::vector<uint32_t>{5, 1, 4, 2, 3}));  // shortest prefix first
}

// Against the obvious linear scan, on random overlapping prefixes.
TEST(CidrSet, AgreesWithLinearScan) {
  std::mt19937 rng(7);
  std::vector<IpPrefix> prefixes;
  CidrSet set;
  for (uint32_t i = 0; i < 2000; ++i) {
    bool v6 = rng() % 2;
    IpPrefix p;
    p.v6 = v6;
    // Short prefixes over a narrow space, so that many overlap.
    p.bits = static_cast<uint8_t>(rng() % (v6 ? 40 : 20));
    for (unsigned b = 0; b < p.bits; ++b) {
      if (b >= 4 && rng() % 2) p.addr[b / 8] |= static_cast<uint8_t>(0x80 >> (b % 8));
    }
    prefixes.push_back(p);
    set.insert(p, i);
  }
  for (int k = 0; k < 5000; ++k) {
    bool v6 = rng() % 2;
    std::array<uint8_t, 16> ip{};
    for (auto& b : ip) b = static_cast<uint8_t>(rng());
    ip[0] &= 0x0f;
    uint32_t want = kNoRule;
    for (uint32_t i = 0; i < prefixes.size() && want == kNoRule; ++i) {
      if (prefixes[i].contains(v6, ip.data())) want = i;
    }
    ASSERT_EQ(set.lowest(v6, ip.data()), want);
  }
}

}  // namespace
}  // namespace vt::route
