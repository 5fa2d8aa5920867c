// RouteEntry text forms: the state file must round-trip and reject garbage.
#include "route_entry.h"

#include <gtest/gtest.h>
#include <sys/socket.h>

namespace vt::platform {
namespace {

TEST(RouteEntryTest, CidrParsing) {
  auto c = parseCidr("10.0.0.0/8");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c.value().family, AF_INET);
  EXPECT_EQ(c.value().prefix, 8);
  EXPECT_EQ(c.value().toString(), "10.0.0.0/8");
  EXPECT_EQ(parseCidr("fe80::/10").value().toString(), "fe80::/10");
  EXPECT_EQ(parseCidr("2001:db8::1").value().prefix, 128);
  for (const char* bad : {"", "/", "10.0.0.0/", "10.0.0.0/33", "10.0.0.1/8", "::/129", "x/1",
                          "10.0.0.0/-1", "10.0.0.0/8x", "1.2.3.4.5/32"}) {
    EXPECT_FALSE(parseCidr(bad).ok()) << bad;
  }
  EXPECT_TRUE(parseCidr("10.0.0.1/8", true).ok());
}

TEST(RouteEntryTest, StateLinesRoundTrip) {
  for (const char* line : {
           "rule 4 pref 9000 lookup 254 suppress_prefixlength 0",
           "rule 6 pref 9001 to fc00::/7 lookup 254",
           "rule 4 pref 9001 from 198.18.1.1/32 lookup 254",
           "rule 6 pref 9002 not fwmark 0x1f0 lookup 2022",
           "route 4 0.0.0.0/0 dev 7 src 198.18.0.1 table 2022",
           "route 6 ::/0 unreachable table 2022",
       }) {
    auto e = RouteEntry::parseStateLine(line);
    ASSERT_TRUE(e.ok()) << line << ": " << e.error().message;
    EXPECT_EQ(e.value().toStateLine(), line);
  }
  auto e = RouteEntry::parseStateLine("rule 6 pref 9002 not fwmark 0x1f0 lookup 2022");
  EXPECT_EQ(e.value().describe(), "rule pref 9002 not fwmark 0x1f0 lookup 2022 (IPv6)");
}

TEST(RouteEntryTest, HostileLinesRejected) {
  for (const char* bad : {
           "",
           "rule",
           "rule 5 pref 1 lookup 2",
           "rule 4 lookup 2",
           "rule 4 pref 1",
           "rule 4 pref 1 lookup 0",
           "rule 4 pref 99999999999 lookup 2",
           "rule 4 pref 1 from ::/0 lookup 2",
           "rule 4 pref 1 fwmark 1f0 lookup 2",
           "rule 4 pref 1 lookup 2 suppress_prefixlength 200",
           "rule 4 pref 1 lookup 2 dev 3",
           "route 4 0.0.0.0/0 table 2",
           "route 4 0.0.0.0/0 dev 0 table 2",
           "route 4 0.0.0.0/0 dev 3 unreachable table 2",
           "route 6 ::/0 dev 3 src ::1/64 table 2",
           "route 4 10.0.0.1/8 dev 3 table 2",
           "route 4 0.0.0.0/0 dev 3 table",
           "bogus 4 x",
       }) {
    EXPECT_FALSE(RouteEntry::parseStateLine(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace vt::platform
