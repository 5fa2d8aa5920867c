// The egress policy: the default-denied ranges, the allow and deny lists,
// the server's own addresses, and the server refusing TCP dials and UDP
// datagrams to loopback (by literal and by a name) unless allowed. Nothing
// here sends a packet beyond loopback: refused addresses are never dialled.
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include "server/egress_policy.h"
#include "unit/server/server_harness.h"
#include "unit/server/test_peers.h"
#include "unit/server/udp_peers.h"

namespace vt::server {
namespace {

using namespace testing;  // NOLINT(google-build-using-namespace): test helpers
using test::sendAll;
using test::EchoPeer;
using test::waitEof;

event::SocketAddress at(const char* ip) { return *event::SocketAddress::parseIp(ip, 80); }

std::string verdict(const EgressPolicy& p, const char* ip) {
  const char* why = p.check(at(ip));
  return why == nullptr ? "allowed" : why;
}

TEST(IpPrefix, ParsesAndRefusesHostBits) {
  auto p = IpPrefix::parse("10.0.0.0/8");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->toString(), "10.0.0.0/8");
  EXPECT_EQ(IpPrefix::parse("192.0.2.7")->toString(), "192.0.2.7/32");
  EXPECT_EQ(IpPrefix::parse("2001:db8::/32")->toString(), "2001:db8::/32");
  EXPECT_EQ(IpPrefix::parse("::1")->toString(), "::1/128");
  EXPECT_EQ(IpPrefix::parse("0.0.0.0/0")->toString(), "0.0.0.0/0");
  EXPECT_EQ(IpPrefix::parse("172.16.0.0/12")->bits, 12);
  for (const char* bad : {"10.0.0.1/8", "10.0.0.0/33", "::/129", "10.0.0.0/", "/8", "",
                          "10.0.0.0/8/8", "example.com", "10.0.0.0/-1", "1.2.3.4/0x8",
                          "10.0.0.0/ 8", "fe80::1%eth0"}) {
    EXPECT_FALSE(IpPrefix::parse(bad)) << bad;
  }
}

TEST(IpPrefix, Contains) {
  auto p = *IpPrefix::parse("172.16.0.0/12");
  uint8_t in[4] = {172, 31, 255, 255}, out[4] = {172, 32, 0, 0};
  EXPECT_TRUE(p.contains(false, in));
  EXPECT_FALSE(p.contains(false, out));
  EXPECT_FALSE(p.contains(true, in));  // families never match
  auto all = *IpPrefix::parse("::/0");
  uint8_t v6[16] = {0x20, 0x01};
  EXPECT_TRUE(all.contains(true, v6));
}

TEST(EgressPolicy, DefaultsRefuseWhatIsNotTheInternet) {
  EgressPolicy p{config::ServerEgressConfig{}};
  const std::pair<const char*, const char*> cases[] = {
      {"127.0.0.1", "loopback"},
      {"127.255.0.9", "loopback"},
      {"0.0.0.0", "unspecified"},
      {"10.1.2.3", "private"},
      {"172.16.0.1", "private"},
      {"172.31.255.254", "private"},
      {"192.168.1.1", "private"},
      {"100.64.0.1", "private (shared address space)"},
      {"169.254.169.254", "link-local"},
      {"224.0.0.251", "multicast"},
      {"239.255.255.250", "multicast"},
      {"255.255.255.255", "reserved"},
      {"::", "unspecified"},
      {"::1", "loopback"},
      {"::7f00:1", "IPv4-compatible (deprecated)"},
      {"fe80::1", "link-local"},
      {"fec0::1", "private (site-local)"},
      {"fd00::1", "private (unique-local)"},
      {"fc00::1", "private (unique-local)"},
      {"ff02::1", "multicast"},
      // Mapped and NAT64 addresses lead to the IPv4 address they carry.
      {"::ffff:127.0.0.1", "loopback"},
      {"::ffff:10.0.0.1", "private"},
      {"64:ff9b::a9fe:a9fe", "link-local"},
      // The Internet (here: documentation and benchmarking ranges).
      {"192.0.2.1", "allowed"},
      {"198.18.1.2", "allowed"},
      {"172.32.0.1", "allowed"},
      {"100.128.0.1", "allowed"},
      {"2001:db8::1", "allowed"},
      {"::ffff:192.0.2.1", "allowed"},
  };
  for (const auto& [ip, want] : cases) EXPECT_EQ(verdict(p, ip), want) << ip;
}

TEST(EgressPolicy, AllowOverridesDefaultsDenyWinsOverAllow) {
  config::ServerEgressConfig cfg;
  cfg.allow = {*IpPrefix::parse("10.0.0.0/8"), *IpPrefix::parse("::1"),
               *IpPrefix::parse("198.18.0.2")};
  cfg.deny = {*IpPrefix::parse("10.9.0.0/16"), *IpPrefix::parse("2001:db8:bad::/48")};
  EgressPolicy p{cfg};
  p.setOwnAddresses({at("198.18.0.2"), at("198.18.1.1"), at("2001:db8::2")});
  EXPECT_EQ(verdict(p, "10.1.2.3"), "allowed");
  EXPECT_EQ(verdict(p, "::ffff:10.1.2.3"), "allowed");
  EXPECT_EQ(verdict(p, "10.9.1.1"), "deny list");
  EXPECT_EQ(verdict(p, "::1"), "allowed");
  EXPECT_EQ(verdict(p, "127.0.0.1"), "loopback");
  EXPECT_EQ(verdict(p, "2001:db8:bad::1"), "deny list");
  EXPECT_EQ(verdict(p, "2001:db8:bae::1"), "allowed");
  // Own addresses: refused unless allowed.
  EXPECT_EQ(verdict(p, "198.18.1.1"), "the server's own address");
  EXPECT_EQ(verdict(p, "::ffff:198.18.1.1"), "the server's own address");
  EXPECT_EQ(verdict(p, "2001:db8::2"), "the server's own address");
  EXPECT_EQ(verdict(p, "198.18.0.2"), "allowed");
  EXPECT_EQ(verdict(p, "198.18.1.2"), "allowed");
  // Allowing everything turns the defaults off.
  config::ServerEgressConfig open;
  open.allow = {*IpPrefix::parse("0.0.0.0/0"), *IpPrefix::parse("::/0")};
  EgressPolicy o{open};
  EXPECT_EQ(verdict(o, "127.0.0.1"), "allowed");
  EXPECT_EQ(verdict(o, "fe80::1"), "allowed");
  EXPECT_EQ(EgressPolicy::describe(at("127.0.0.1"), "loopback"),
            "egress denied: 127.0.0.1:80 (loopback)");
}

TEST(EgressPolicy, InterfaceAddressesIncludeLoopback) {
  bool lo = false;
  for (const auto& a : event::interfaceAddresses()) lo = lo || a.isLoopback();
  EXPECT_TRUE(lo);
}

config::ServerConfig defaultEgress() {
  config::ServerConfig cfg = baseConfig();
  cfg.egress = {};
  return cfg;
}

// A refused TCP dial is answered like a failed one: closed, no byte.
void expectRefused(uint16_t server_port, const std::string& req) {
  int fd = test::connectLoopback(server_port);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(sendAll(fd, req + "hello"));
  std::string got;
  EXPECT_TRUE(waitEof(fd, 3000, &got));
  EXPECT_EQ(got, "");
  ::close(fd);
}

TEST(ServerEgress, TcpToLoopbackRefusedByDefault) {
  EchoPeer echo;
  Harness h(defaultEgress());
  expectRefused(h.port(), request(1, kAlice, echoAt(echo.port())));
  expectRefused(h.port(), request(0, kAlice, echoAt(echo.port())));
  // A name that resolves to loopback is refused like the literal.
  expectRefused(h.port(),
                request(1, kAlice, codec::Address::fromDomain("localhost", echo.port())));
  // The listener itself (a loop) and the IPv4-mapped spelling.
  expectRefused(h.port(), request(1, kAlice, echoAt(h.port())));
  uint8_t mapped[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1};
  expectRefused(h.port(), request(1, kAlice, codec::Address::ipv6(mapped, echo.port())));
  EXPECT_EQ(echo.connections(), 0u);
  for (int i = 0; i < 300 && h.egressDenied() < 5; ++i) usleep(10'000);
  EXPECT_GE(h.egressDenied(), 5u);
}

TEST(ServerEgress, FallbackIsNotSubjectToThePolicy) {
  EchoPeer fallback(kBanner);
  config::ServerConfig cfg = defaultEgress();
  cfg.fallback = loopbackPort(fallback.port());
  Harness h(cfg);
  const std::string probe = "GET / HTTP/1.1\r\nHost: example\r\n\r\n";
  int fd = test::connectLoopback(h.port());
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(sendAll(fd, probe));
  EXPECT_EQ(test::readSome(fd, kBanner.size() + probe.size(), 3000), kBanner + probe);
  ::close(fd);
}

TEST(ServerEgress, UdpToLoopbackRefusedByDefault) {
  UdpReflector r("", true);
  Harness h(defaultEgress());
  // v0 and the separated channel name one target: the channel is refused.
  for (bool multi : {false, true}) {
    for (const codec::Address& to :
         {codec::Address::ipv4(0x7f000001, r.port()),
          codec::Address::fromDomain("localhost", r.port())}) {
      int fd = test::connectLoopback(h.port());
      ASSERT_GE(fd, 0);
      uint8_t ver = multi ? 1 : 0;
      ASSERT_TRUE(sendAll(fd, encoded(udpRequest(ver, kAlice, to, multi)) + lengthPacket("x")));
      std::string got;
      EXPECT_TRUE(waitEof(fd, 3000, &got)) << to.toString();
      ::close(fd);
    }
  }
  // Classic: every datagram names its address; refused ones are dropped
  // and counted, the channel lives on.
  int fd = test::connectLoopback(h.port());
  ASSERT_GE(fd, 0);
  codec::Address lo = codec::Address::ipv4(0x7f000001, r.port());
  ASSERT_TRUE(sendAll(fd, encoded(udpRequest(1, kAlice, lo)) + classicPacket(lo, "one") +
                              classicPacket(codec::Address::fromDomain("localhost", r.port()),
                                            "two")));
  const uint64_t before = h.egressDenied();
  for (int i = 0; i < 300 && h.egressDenied() < before + 2; ++i) usleep(10'000);
  EXPECT_GE(h.egressDenied(), before + 2);
  EXPECT_EQ(r.received(), 0u);
  ::close(fd);
}

}  // namespace
}  // namespace vt::server
