// Admission before cost (docs/server.md "Admission"): per-source caps on
// connections and on handshakes in progress, checked before any TLS state
// exists, and the per-user cap on authenticated connections. Sources are
// told apart by binding clients to 127.0.0.1 and 127.0.0.2.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "unit/server/server_harness.h"

namespace vt::server {
namespace {

using namespace testing;  // NOLINT(google-build-using-namespace): test helpers
using test::EchoPeer;
using test::readSome;
using test::sendAll;
using test::waitEof;

int connectFrom(const char* src, uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  inet_pton(AF_INET, src, &a.sin_addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  a.sin_port = htons(port);
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// A request from `src` that must be served: "x" comes back.
void expectServed(const char* src, uint16_t port, uint16_t echo, const codec::Uuid& who,
                  std::vector<int>* keep = nullptr) {
  int fd = connectFrom(src, port);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(sendAll(fd, request(1, who, echoAt(echo)) + "x"));
  EXPECT_EQ(readSome(fd, 1, 3000), "x") << src;
  if (keep != nullptr) {
    keep->push_back(fd);
  } else {
    ::close(fd);
  }
}

// Closed by the server without a byte, at once.
void expectRefused(int fd, const std::string& send = "") {
  ASSERT_GE(fd, 0);
  if (!send.empty()) sendAll(fd, send);
  std::string got;
  EXPECT_TRUE(waitEof(fd, 3000, &got));
  EXPECT_EQ(got, "");
  ::close(fd);
}

void settle() { std::this_thread::sleep_for(std::chrono::milliseconds(50)); }

// After a close the server frees the place once the session has ended
// (both directions, asynchronously): retried for up to 3 s.
bool servedSoon(const char* src, uint16_t port, uint16_t echo, const codec::Uuid& who,
                std::vector<int>& keep) {
  for (int i = 0; i < 60; ++i) {
    int fd = connectFrom(src, port);
    if (fd >= 0 && sendAll(fd, request(1, who, echoAt(echo)) + "x") &&
        readSome(fd, 1, 1000) == "x") {
      keep.push_back(fd);
      return true;
    }
    if (fd >= 0) ::close(fd);
    settle();
  }
  return false;
}

TEST(ServerAdmission, HandshakesPerSource) {
  EchoPeer echo;
  config::ServerConfig cfg = baseConfig();
  cfg.handshake_timeout_ms = 10'000;
  cfg.max_handshakes_per_source = 3;
  Harness h(cfg);
  // Three silent connections hold 127.0.0.1's handshake slots...
  std::vector<int> idle;
  for (int i = 0; i < 3; ++i) idle.push_back(connectFrom("127.0.0.1", h.port()));
  settle();
  // ...so a fourth is closed at once, however it would have gone on.
  expectRefused(connectFrom("127.0.0.1", h.port()), request(1, kAlice, echoAt(echo.port())));
  // Another source is not affected.
  expectServed("127.0.0.2", h.port(), echo.port(), kAlice);
  // One silent connection authenticates: its slot is free again.
  ASSERT_TRUE(sendAll(idle[0], request(1, kAlice, echoAt(echo.port())) + "y"));
  EXPECT_EQ(readSome(idle[0], 1, 3000), "y");
  expectServed("127.0.0.1", h.port(), echo.port(), kBob);
  for (int fd : idle) ::close(fd);
}

TEST(ServerAdmission, ConnectionsPerSource) {
  EchoPeer echo;
  config::ServerConfig cfg = baseConfig();
  cfg.max_connections_per_source = 2;
  Harness h(cfg);
  std::vector<int> live;
  expectServed("127.0.0.1", h.port(), echo.port(), kAlice, &live);
  expectServed("127.0.0.1", h.port(), echo.port(), kBob, &live);
  expectRefused(connectFrom("127.0.0.1", h.port()), request(1, kAlice, echoAt(echo.port())));
  expectServed("127.0.0.2", h.port(), echo.port(), kAlice);
  // Closing one frees its place.
  ::close(live[0]);
  live.erase(live.begin());
  EXPECT_TRUE(servedSoon("127.0.0.1", h.port(), echo.port(), kAlice, live));
  for (int fd : live) ::close(fd);
}

TEST(ServerAdmission, ConnectionsPerUser) {
  EchoPeer echo;
  config::ServerConfig cfg = baseConfig();
  cfg.max_connections_per_user = 1;
  Harness h(cfg);
  std::vector<int> live;
  expectServed("127.0.0.1", h.port(), echo.port(), kAlice, &live);
  // Alice's second connection is closed after her request; Bob is served.
  expectRefused(connectFrom("127.0.0.2", h.port()), request(1, kAlice, echoAt(echo.port())));
  expectServed("127.0.0.2", h.port(), echo.port(), kBob, &live);
  ::close(live[0]);
  live.erase(live.begin());
  EXPECT_TRUE(servedSoon("127.0.0.1", h.port(), echo.port(), kAlice, live));
  for (int fd : live) ::close(fd);
}

TEST(ServerAdmission, SourceKeys) {
  auto key = [](const char* ip) { return Server::sourceKey(*event::SocketAddress::parseIp(ip, 1)); };
  EXPECT_EQ(key("198.18.0.1"), "198.18.0.1");
  EXPECT_EQ(key("::ffff:198.18.0.1"), "198.18.0.1");
  EXPECT_EQ(key("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64");
  EXPECT_EQ(key("2001:db8:1:2::9"), "2001:db8:1:2::/64");
}

}  // namespace
}  // namespace vt::server
