#include "event/socket_address.h"

#include <gtest/gtest.h>

namespace vt::event {
namespace {

TEST(SocketAddress, ParsesIpv4) {
  auto a = SocketAddress::parse("1.2.3.4:80");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->family(), AF_INET);
  EXPECT_EQ(a->port(), 80);
  EXPECT_EQ(a->toString(), "1.2.3.4:80");
  EXPECT_EQ(a->ipString(), "1.2.3.4");
  EXPECT_EQ(a->len(), sizeof(sockaddr_in));
  EXPECT_EQ(*a, SocketAddress::ipv4(0x01020304, 80));
}

TEST(SocketAddress, ParsesIpv6) {
  auto a = SocketAddress::parse("[::1]:65535");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->family(), AF_INET6);
  EXPECT_EQ(a->port(), 65535);
  EXPECT_EQ(a->toString(), "[::1]:65535");
  EXPECT_EQ(a->ipString(), "::1");
  uint8_t one[16] = {};
  one[15] = 1;
  EXPECT_EQ(*a, SocketAddress::ipv6(one, 65535));
  auto b = SocketAddress::parse("[2001:db8::a:b]:0");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->toString(), "[2001:db8::a:b]:0");
}

TEST(SocketAddress, RejectsInvalid) {
  for (const char* bad : {"",
                          ":",
                          "1.2.3.4",
                          "1.2.3.4:",
                          "1.2.3.4:65536",
                          "1.2.3.4:-1",
                          "1.2.3.4:8a",
                          "1.2.3:80",
                          "256.1.1.1:80",
                          "::1:80",
                          "[::1]80",
                          "[::1]",
                          "[::1]:",
                          "[1.2.3.4]:80",
                          "[]:80",
                          "example.com:80",
                          "1.2.3.4 :80",
                          "1.2.3.4:123456",
                          "[::1:80",
                          "[::1]:80x",
                          "[zz::1]:80"}) {
    EXPECT_FALSE(SocketAddress::parse(bad)) << bad;
  }
}

TEST(SocketAddress, ParseIpAndSockaddrRoundTrip) {
  auto a = SocketAddress::parseIp("[fe80::1]", 443);
  ASSERT_TRUE(a);
  SocketAddress b = SocketAddress::fromSockaddr(a->sa());
  EXPECT_EQ(*a, b);
  EXPECT_EQ(b.port(), 443);
  EXPECT_FALSE(SocketAddress::parseIp("localhost", 1));
  SocketAddress none;
  EXPECT_EQ(none.toString(), "unspecified");
  EXPECT_EQ(none.port(), 0);
}

}  // namespace
}  // namespace vt::event

namespace vt::event {
namespace {

TEST(SocketAddress, Loopback) {
  for (const char* ip : {"127.0.0.1", "127.255.0.9", "::1", "::ffff:127.0.0.1"}) {
    EXPECT_TRUE(SocketAddress::parseIp(ip, 1)->isLoopback()) << ip;
  }
  for (const char* ip : {"198.18.0.2", "128.0.0.1", "::", "::2", "2001:db8::1", "::ffff:198.18.0.1",
                         "0.0.0.0"}) {
    EXPECT_FALSE(SocketAddress::parseIp(ip, 1)->isLoopback()) << ip;
  }
}

}  // namespace
}  // namespace vt::event
