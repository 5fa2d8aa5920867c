// vless-server over a real loop on 127.0.0.1: relay, fallback, timeouts,
// caps. Topology in server_harness.h.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <random>
#include <set>
#include <thread>

#include "unit/server/server_harness.h"

namespace vt::server {
namespace {

using namespace testing;  // NOLINT(google-build-using-namespace): test helpers
using test::connectLoopback;
using test::connectLoopback6;
using test::EchoPeer;
using test::readSome;
using test::sendAll;
using test::waitEof;

TEST(Server, V0AndV1RoundTrip) {
  EchoPeer echo;
  Harness h(baseConfig());
  roundTrip(h.port(), request(0, kAlice, echoAt(echo.port())), v0Response(), false);
  roundTrip(h.port(), request(1, kBob, echoAt(echo.port())), "", false);
}

TEST(Server, HeaderTrickledOneBytePerWrite) {
  EchoPeer echo;
  config::ServerConfig cfg = baseConfig();
  cfg.handshake_timeout_ms = 5000;
  Harness h(cfg);
  roundTrip(h.port(), request(0, kAlice, echoAt(echo.port())), v0Response(), true);
  roundTrip(h.port(), request(1, kAlice, echoAt(echo.port())), "", true);
}

TEST(Server, WantIpPrefix) {
  EchoPeer echo;
  Harness h(baseConfig());
  std::string prefix("\x01\x01\x7f\x00\x00\x01", 6);
  roundTrip(h.port(), request(1, kAlice, echoAt(echo.port()), true), prefix, false);
  // The codec's own decoder agrees.
  BufferChain b;
  b.append(prefix);
  auto r = codec::decodeWantIpPrefix(b);
  ASSERT_EQ(r.status, codec::DecodeStatus::kDone);
  EXPECT_EQ(r.ip->hostString(), "127.0.0.1");
}

TEST(Server, DomainTargetTriesEachAddress) {
  // "localhost" may resolve to ::1 first, where nothing listens.
  EchoPeer echo;
  Harness h(baseConfig());
  roundTrip(h.port(),
            request(1, kAlice, codec::Address::fromDomain("localhost", echo.port()), true),
            std::string("\x01\x01\x7f\x00\x00\x01", 6), false);
}

TEST(Server, WrongUuidGoesToFallbackVerbatim) {
  EchoPeer fallback(kBanner);
  EchoPeer echo;
  config::ServerConfig cfg = baseConfig();
  cfg.fallback = loopbackPort(fallback.port());
  Harness h(cfg);
  for (const std::string& bytes : {request(1, kStranger, echoAt(echo.port())) + "payload",
                                   std::string("GET / HTTP/1.1\r\nHost: example\r\n\r\n")}) {
    int fd = connectLoopback(h.port());
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(sendAll(fd, bytes));
    EXPECT_GE(fallback.waitForReceived(0, bytes, 3000), 0);
    EXPECT_EQ(readSome(fd, kBanner.size() + bytes.size(), 3000), kBanner + bytes);
    ::close(fd);
  }
  EXPECT_EQ(echo.connections(), 0u);
}

TEST(Server, WrongUuidWithoutFallbackClosesSilently) {
  EchoPeer echo;
  config::ServerConfig cfg = baseConfig();
  cfg.accept_v0 = false;
  Harness h(cfg);
  for (const std::string& bytes : {request(1, kStranger, echoAt(echo.port())) + "payload",
                                   request(0, kAlice, echoAt(echo.port())) + "v0 not accepted"}) {
    int fd = connectLoopback(h.port());
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(sendAll(fd, bytes));
    std::string got;
    EXPECT_TRUE(waitEof(fd, 3000, &got));
    EXPECT_EQ(got, "");
    ::close(fd);
  }
  EXPECT_EQ(echo.connections(), 0u);
}

TEST(Server, DialFailureClosesWithoutAByte) {
  uint16_t dead_port;
  {
    EchoPeer gone;
    dead_port = gone.port();
  }
  Harness h(baseConfig());
  for (uint8_t version : {0, 1}) {
    int fd = connectLoopback(h.port());
    ASSERT_TRUE(sendAll(fd, request(version, kAlice, echoAt(dead_port), true) + "x"));
    std::string got;
    EXPECT_TRUE(waitEof(fd, 3000, &got));
    EXPECT_EQ(got, "") << int(version);
    ::close(fd);
  }
}

TEST(Server, HalfClosePropagatesBothWays) {
  EchoPeer echo;
  Harness h(baseConfig());
  int fd = connectLoopback(h.port());
  ASSERT_TRUE(sendAll(fd, request(1, kAlice, echoAt(echo.port())) + "abc"));
  ASSERT_EQ(::shutdown(fd, SHUT_WR), 0);
  // The echo sees our EOF only if the server passed it on; it then
  // half-closes back, which we see as EOF after the echoed bytes.
  std::string got;
  EXPECT_TRUE(waitEof(fd, 3000, &got));
  EXPECT_EQ(got, "abc");
  EXPECT_EQ(echo.received(0), "abc");
  ::close(fd);
}

TEST(Server, IdleTimeoutCloses) {
  EchoPeer echo;
  config::ServerConfig cfg = baseConfig();
  cfg.idle_timeout_ms = 300;
  Harness h(cfg);
  int fd = connectLoopback(h.port());
  ASSERT_TRUE(sendAll(fd, request(1, kAlice, echoAt(echo.port())) + "ping"));
  EXPECT_EQ(readSome(fd, 4, 3000), "ping");
  auto t0 = std::chrono::steady_clock::now();
  std::string got;
  EXPECT_TRUE(waitEof(fd, 5000, &got));
  auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  EXPECT_GE(ms, 200);
  EXPECT_EQ(got, "");
  ::close(fd);
}

TEST(Server, MaxConnectionsRefusesTheRest) {
  EchoPeer echo;
  config::ServerConfig cfg = baseConfig();
  cfg.max_connections = 1;
  cfg.handshake_timeout_ms = 5000;
  Harness h(cfg);
  int first = connectLoopback(h.port());
  ASSERT_TRUE(sendAll(first, request(1, kAlice, echoAt(echo.port())) + "1"));
  EXPECT_EQ(readSome(first, 1, 3000), "1");
  int second = connectLoopback(h.port());
  std::string got;
  EXPECT_TRUE(waitEof(second, 3000, &got));
  EXPECT_EQ(got, "");
  ::close(second);
  ::close(first);
}

TEST(Server, LargeTransferWithBackpressure) {
  EchoPeer echo;
  Harness h(baseConfig());
  int fd = connectLoopback(h.port());
  ASSERT_TRUE(sendAll(fd, request(1, kAlice, echoAt(echo.port()))));
  std::string data(8 * 1024 * 1024, '\0');
  std::mt19937 rng(7);
  for (auto& c : data) c = static_cast<char>(rng());
  std::thread writer([&] {
    sendAll(fd, data);
    ::shutdown(fd, SHUT_WR);
  });
  std::string got;
  EXPECT_TRUE(waitEof(fd, 30000, &got));
  writer.join();
  EXPECT_EQ(got.size(), data.size());
  EXPECT_TRUE(got == data);
  ::close(fd);
}

TEST(Authenticator, FindsEveryUserAndNoStranger) {
  std::vector<config::ServerUser> users;
  for (uint8_t i = 0; i < 5; ++i) {
    config::ServerUser u;
    u.name = "u" + std::to_string(i);
    u.uuid = kAlice;
    u.uuid[15] = i;
    users.push_back(u);
  }
  Authenticator auth(users);
  for (uint8_t i = 0; i < 5; ++i) {
    codec::Uuid id = kAlice;
    id[15] = i;
    const config::ServerUser* u = auth.find(id);
    ASSERT_NE(u, nullptr);
    EXPECT_EQ(u->name, "u" + std::to_string(i));
  }
  codec::Uuid stranger = kAlice;
  stranger[15] = 9;
  EXPECT_EQ(auth.find(stranger), nullptr);
  stranger = kAlice;
  stranger[0] ^= 1;
  stranger[15] = 0;
  EXPECT_EQ(auth.find(stranger), nullptr);
}

TEST(Server, ClientClosingMidHeaderGoesToFallback) {
  EchoPeer fallback(kBanner);
  config::ServerConfig cfg = baseConfig();
  cfg.fallback = loopbackPort(fallback.port());
  cfg.handshake_timeout_ms = 5000;
  Harness h(cfg);
  int fd = connectLoopback(h.port());
  std::string part =
      request(1, kAlice, codec::Address::fromDomain("example.com", 443)).substr(0, 21);
  ASSERT_TRUE(sendAll(fd, part));
  ::shutdown(fd, SHUT_WR);
  std::string got;
  EXPECT_TRUE(waitEof(fd, 3000, &got));  // the fallback echoes and half-closes
  EXPECT_EQ(got, kBanner + part);
  EXPECT_GE(fallback.waitForReceived(0, part, 1000), 0);
  ::close(fd);
}

TEST(Server, ListensOnIpv6Loopback) {
  EchoPeer echo;
  config::ServerConfig cfg = baseConfig();
  cfg.listen = {config::HostPort{"::1", 0, true}};
  Harness h6(cfg);
  int fd = connectLoopback6(h6.port());
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(sendAll(fd, request(1, kAlice, echoAt(echo.port())) + "six"));
  EXPECT_EQ(readSome(fd, 3, 3000), "six");
  ::close(fd);
}

TEST(Server, StopClosesLiveSessions) {
  EchoPeer echo;
  int fd;
  {
    Harness h(baseConfig());
    fd = connectLoopback(h.port());
    ASSERT_TRUE(sendAll(fd, request(1, kAlice, echoAt(echo.port())) + "x"));
    EXPECT_EQ(readSome(fd, 1, 3000), "x");
  }  // the harness stops the server and waits for its sessions
  std::string got;
  EXPECT_TRUE(waitEof(fd, 1000, &got));
  EXPECT_EQ(got, "");
  ::close(fd);
}

}  // namespace
}  // namespace vt::server
