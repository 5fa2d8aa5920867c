// DialledIps: the server's want_ip answers per name, bounded and aging.
#include <gtest/gtest.h>

#include "client/dialled_ips.h"

namespace vt::client {
namespace {

route::IpAddress ip(const char* text) { return *route::IpAddress::parse(text); }

TEST(DialledIps, RemembersUntilTheLifetimeEnds) {
  DialledIps d(8, 1000);
  EXPECT_FALSE(d.lookup("geo.test", 0));
  d.note("geo.test", ip("198.18.5.2"), 100);
  auto got = d.lookup("geo.test", 1099);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->bytes, ip("198.18.5.2").bytes);
  EXPECT_FALSE(d.lookup("geo.test", 1100));  // expired, and forgotten
  EXPECT_EQ(d.size(), 0u);
}

TEST(DialledIps, ANewAnswerReplacesAndRenews) {
  DialledIps d(8, 1000);
  d.note("geo.test", ip("198.18.5.2"), 0);
  d.note("geo.test", ip("2001:db8:1::2"), 900);
  auto got = d.lookup("geo.test", 1500);
  ASSERT_TRUE(got);
  EXPECT_TRUE(got->v6);
  EXPECT_EQ(d.size(), 1u);
  EXPECT_EQ(d.stats().noted, 2u);
}

TEST(DialledIps, BoundedLeastRecentlyUsedFirst) {
  DialledIps d(2, 10'000);
  d.note("a.test", ip("198.18.5.1"), 0);
  d.note("b.test", ip("198.18.5.2"), 0);
  ASSERT_TRUE(d.lookup("a.test", 1));  // a is now the most recent
  d.note("c.test", ip("198.18.5.3"), 2);
  EXPECT_EQ(d.size(), 2u);
  EXPECT_TRUE(d.lookup("a.test", 3));
  EXPECT_FALSE(d.lookup("b.test", 3));
  EXPECT_TRUE(d.lookup("c.test", 3));
  EXPECT_EQ(d.stats().evicted, 1u);
  d.note("", ip("198.18.5.4"), 4);  // no name, nothing to remember
  EXPECT_EQ(d.size(), 2u);
}

}  // namespace
}  // namespace vt::client
