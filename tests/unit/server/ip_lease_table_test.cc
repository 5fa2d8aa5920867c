// IpLeaseTable: per-family leases, the grace time, the caps.
#include "server/ip_lease_table.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace vt::server {
namespace {

IpLeaseTable::Options opts(const char* pool4, const char* pool6 = nullptr) {
  IpLeaseTable::Options o;
  o.pool4 = *IpPrefix::parse(pool4);
  if (pool6 != nullptr) o.pool6 = *IpPrefix::parse(pool6);
  o.max_sessions = 100;
  o.max_sessions_per_user = 100;
  o.grace_ms = 1000;
  return o;
}

std::string text(bool v6, const std::optional<codec::IpAddressBytes>& a) {
  return a ? IpLeaseTable::text(v6, *a) : "none";
}

TEST(IpLeaseTable, GatewayAndFirstLeasesPerFamily) {
  IpLeaseTable t(opts("198.18.240.0/24", "2001:db8:f0::/64"));
  EXPECT_EQ(IpLeaseTable::text(false, t.gateway(false)), "198.18.240.1");
  EXPECT_EQ(IpLeaseTable::text(true, t.gateway(true)), "2001:db8:f0::1");
  uint64_t a = t.open("alice").value();
  uint64_t b = t.open("bob").value();
  EXPECT_EQ(text(false, t.lease(a, false, 0)), "198.18.240.2");
  EXPECT_EQ(text(false, t.lease(a, false, 0)), "198.18.240.2");  // stable
  EXPECT_EQ(t.held(true), 0u);  // IPv6 only on first use
  EXPECT_EQ(text(true, t.lease(b, true, 0)), "2001:db8:f0::2");
  EXPECT_EQ(text(false, t.lease(b, false, 0)), "198.18.240.3");
  EXPECT_EQ(text(true, t.lease(a, true, 0)), "2001:db8:f0::3");
  EXPECT_EQ(t.owner(false, *t.lease(b, false, 0)), b);
  EXPECT_EQ(t.owner(true, *t.lease(a, true, 0)), a);
  EXPECT_EQ(t.owner(false, t.gateway(false)), 0u);
  EXPECT_EQ(t.stats().leases, 4u);
}

TEST(IpLeaseTable, NoPool6) {
  IpLeaseTable t(opts("198.18.240.0/24"));
  uint64_t a = t.open("u").value();
  EXPECT_FALSE(t.hasPool(true));
  EXPECT_FALSE(t.lease(a, true, 0).has_value());
  EXPECT_TRUE(t.lease(a, false, 0).has_value());
}

TEST(IpLeaseTable, InPool) {
  IpLeaseTable t(opts("198.18.240.0/24", "2001:db8:f0::/120"));
  const uint8_t in4[4] = {198, 18, 240, 77}, out4[4] = {198, 18, 241, 1};
  EXPECT_TRUE(t.inPool(false, in4));
  EXPECT_FALSE(t.inPool(false, out4));
}

TEST(IpLeaseTable, GraceKeepsAnAddressFromTheNextSession) {
  // /30: .0 network, .1 gateway, .2 the only leasable, .3 broadcast.
  IpLeaseTable t(opts("198.18.240.0/30"));
  uint64_t a = t.open("u").value();
  auto la = t.lease(a, false, 0);
  ASSERT_TRUE(la);
  EXPECT_EQ(text(false, la), "198.18.240.2");
  t.close(a, 100);
  EXPECT_EQ(t.owner(false, *la), 0u);  // no longer delivered to anyone
  uint64_t b = t.open("u").value();
  EXPECT_FALSE(t.lease(b, false, 500).has_value());  // resting until 1100
  EXPECT_FALSE(t.lease(b, false, 1099).has_value());
  EXPECT_EQ(t.stats().exhausted, 2u);
  EXPECT_EQ(text(false, t.lease(b, false, 1100)), "198.18.240.2");
  EXPECT_EQ(t.owner(false, *la), b);
}

TEST(IpLeaseTable, FreedAddressIsTheLastReused) {
  IpLeaseTable t(opts("198.18.240.0/29"));  // .2 .. .6 leasable
  std::set<std::string> seen;
  uint64_t first = t.open("u").value();
  seen.insert(text(false, t.lease(first, false, 0)));
  t.close(first, 0);
  // Even with the grace over, the walk goes on forward first.
  for (int i = 0; i < 4; ++i) {
    uint64_t s = t.open("u").value();
    std::string a = text(false, t.lease(s, false, 5000));
    EXPECT_TRUE(seen.insert(a).second) << a;
  }
  EXPECT_EQ(seen.size(), 5u);
  uint64_t s = t.open("u").value();
  EXPECT_EQ(text(false, t.lease(s, false, 5000)), "198.18.240.2");  // wrapped around
  uint64_t full = t.open("u").value();
  EXPECT_FALSE(t.lease(full, false, 5000).has_value());
}

TEST(IpLeaseTable, Ipv6LargePoolPurgesRestingEntries) {
  IpLeaseTable t(opts("198.18.240.0/24", "2001:db8:f0::/64"));
  for (int i = 0; i < 1000; ++i) {
    uint64_t s = t.open("u").value();
    ASSERT_TRUE(t.lease(s, true, static_cast<uint64_t>(i) * 10).has_value());
    t.close(s, static_cast<uint64_t>(i) * 10);
  }
  // Grace 1000 ms, one session every 10 ms: about 100 rest at a time.
  EXPECT_LE(t.held(true), 102u);
}

TEST(IpLeaseTable, Caps) {
  IpLeaseTable::Options o = opts("198.18.240.0/24");
  o.max_sessions = 3;
  o.max_sessions_per_user = 2;
  IpLeaseTable t(o);
  uint64_t a1 = t.open("alice").value();
  ASSERT_TRUE(t.open("alice").ok());
  auto refused = t.open("alice");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, Errc::kLimit);
  EXPECT_NE(refused.error().message.find("ip.max_sessions_per_user (2)"), std::string::npos);
  ASSERT_TRUE(t.open("bob").ok());
  auto total = t.open("carol");
  ASSERT_FALSE(total.ok());
  EXPECT_NE(total.error().message.find("ip.max_sessions (3)"), std::string::npos);
  EXPECT_EQ(t.stats().refused_per_user, 1u);
  EXPECT_EQ(t.stats().refused_total, 1u);
  t.close(a1, 0);
  EXPECT_EQ(t.userSessions("alice"), 1u);
  EXPECT_TRUE(t.open("carol").ok());
  EXPECT_EQ(t.sessions(), 3u);
}

}  // namespace
}  // namespace vt::server
