// ServerNameResolver: its query bytes, which answers it accepts, and
// /etc/hosts-style lookups (a temporary file; no packet is sent). The DNS
// path over a marked socket runs in tests/integration/tun_autoroute_test.sh.
#include "client/server_name_resolver.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

namespace vt::client {
namespace {

// An answer to `q` (its header and question) with one record of `type`
// and `rdata`, the name as a pointer to the question's.
std::vector<uint8_t> answer(const std::vector<uint8_t>& q, uint16_t type,
                            const std::vector<uint8_t>& rdata, uint8_t rcode = 0) {
  std::vector<uint8_t> a = q;
  a[2] = 0x81;  // QR, RD
  a[3] = static_cast<uint8_t>(0x80 | rcode);
  a[7] = rdata.empty() ? 0 : 1;  // ANCOUNT
  if (!rdata.empty()) {
    for (uint8_t b : {uint8_t{0xc0}, uint8_t{12}, static_cast<uint8_t>(type >> 8),
                      static_cast<uint8_t>(type), uint8_t{0}, uint8_t{1}, uint8_t{0}, uint8_t{0},
                      uint8_t{1}, uint8_t{44}, uint8_t{0}, static_cast<uint8_t>(rdata.size())}) {
      a.push_back(b);
    }
    a.insert(a.end(), rdata.begin(), rdata.end());
  }
  return a;
}

TEST(ServerNameResolver, QueryBytes) {
  std::vector<uint8_t> q = ServerNameResolver::encodeQuery("VPN.Example.", 28, 0x1234);
  const std::vector<uint8_t> want = {0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0,
                                     3,    'v',  'p',  'n',  7, 'e', 'x', 'a', 'm', 'p', 'l', 'e',
                                     0,    0,    28,   0,    1};
  EXPECT_EQ(q, want);
}

TEST(ServerNameResolver, AcceptsOnlyTheAnswerToItsQuery) {
  const std::vector<uint8_t> q = ServerNameResolver::encodeQuery("vpn.example", 1, 7);
  std::vector<event::SocketAddress> out;
  auto a = answer(q, 1, {198, 18, 0, 2});
  ASSERT_TRUE(ServerNameResolver::parseAnswer(a.data(), a.size(), "vpn.example", 1, 7, out));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].ipString(), "198.18.0.2");
  EXPECT_FALSE(ServerNameResolver::parseAnswer(a.data(), a.size(), "vpn.example", 1, 8, out));
  EXPECT_FALSE(ServerNameResolver::parseAnswer(a.data(), a.size(), "other.example", 1, 7, out));
  EXPECT_FALSE(ServerNameResolver::parseAnswer(a.data(), a.size(), "vpn.example", 28, 7, out));
  EXPECT_FALSE(ServerNameResolver::parseAnswer(q.data(), q.size(), "vpn.example", 1, 7, out));
  auto servfail = answer(q, 1, {}, 2);
  EXPECT_FALSE(
      ServerNameResolver::parseAnswer(servfail.data(), servfail.size(), "vpn.example", 1, 7, out));
  auto nx = answer(q, 1, {}, 3);
  ASSERT_TRUE(ServerNameResolver::parseAnswer(nx.data(), nx.size(), "vpn.example", 1, 7, out));
  EXPECT_TRUE(out.empty());
  // An AAAA answer; a record of the wrong size is skipped.
  const std::vector<uint8_t> q6 = ServerNameResolver::encodeQuery("vpn.example", 28, 9);
  std::vector<uint8_t> ip6(16, 0);
  ip6[0] = 0x20;
  ip6[1] = 0x01;
  ip6[2] = 0x0d;
  ip6[3] = 0xb8;
  ip6[15] = 2;
  auto a6 = answer(q6, 28, ip6);
  ASSERT_TRUE(ServerNameResolver::parseAnswer(a6.data(), a6.size(), "vpn.example", 28, 9, out));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].ipString(), "2001:db8::2");
  auto bad = answer(q6, 28, {1, 2, 3});
  ASSERT_TRUE(ServerNameResolver::parseAnswer(bad.data(), bad.size(), "vpn.example", 28, 9, out));
  EXPECT_TRUE(out.empty());
  // Truncated anywhere: never accepted with garbage.
  for (size_t n = 0; n < a.size(); ++n) {
    std::vector<event::SocketAddress> o;
    if (ServerNameResolver::parseAnswer(a.data(), n, "vpn.example", 1, 7, o)) {
      EXPECT_TRUE(o.empty()) << n;
    }
  }
}

TEST(ServerNameResolver, HostsFileFirst) {
  char hosts[] = "/tmp/vt-hosts-XXXXXX";
  int fd = mkstemp(hosts);
  ASSERT_GE(fd, 0);
  ::close(fd);
  std::ofstream(hosts) << "# comment\n198.18.7.7 vpn.test alias.test # trailing\n"
                          "2001:db8::7 vpn.test\nnot-an-ip bogus.test\n";
  event::Loop loop;
  ServerNameResolver r(loop, 0, hosts, "/nonexistent/resolv.conf");
  EXPECT_TRUE(r.nameservers().empty());
  std::vector<std::string> got;
  std::string error;
  r.resolve("VPN.test", 443, [&](Result<std::vector<event::SocketAddress>> res) {
    ASSERT_TRUE(res.ok()) << res.error().message;
    for (const auto& a : res.value()) got.push_back(a.toString());
  });
  EXPECT_TRUE(got.empty());  // never synchronously
  loop.run();
  EXPECT_EQ(got, (std::vector<std::string>{"198.18.7.7:443", "[2001:db8::7]:443"}));
  // Not in the file and no nameserver: a clear error, no packet.
  r.resolve("bogus.test", 443, [&](Result<std::vector<event::SocketAddress>> res) {
    ASSERT_FALSE(res.ok());
    error = res.error().message;
  });
  loop.run();
  EXPECT_EQ(error, "resolve bogus.test: not in /etc/hosts and no nameserver (none in /etc/resolv.conf or given)");
  // Cancelled: no callback.
  bool called = false;
  r.resolve("alias.test", 1, [&](auto) { called = true; });
  r.cancel();
  loop.run();
  EXPECT_FALSE(called);
  std::remove(hosts);
}

}  // namespace
}  // namespace vt::client
