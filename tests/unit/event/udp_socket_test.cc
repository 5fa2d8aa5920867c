// UdpSocket on loopback: both families through one dual-stack socket,
// source normalisation, empty and the largest datagrams, counted drops.
#include "event/udp_socket.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "event/timer.h"

namespace vt::event {
namespace {

struct Got {
  std::string data;
  SocketAddress from;
};

// Runs the loop until `done` or 2 s.
template <typename F>
void runUntil(Loop& loop, F done) {
  Timer deadline(loop);
  bool expired = false;
  deadline.start(2000, [&] { expired = true; });
  while (!done() && !expired) loop.runOnce(true);
}

std::unique_ptr<UdpSocket> openOrDie(Loop& loop, bool v6 = true) {
  auto r = UdpSocket::open(loop, v6);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? std::move(r).value() : nullptr;
}

TEST(UdpSocket, LoopbackV4RoundTripWithNormalisedSource) {
  Loop loop;
  auto a = openOrDie(loop);
  auto b = openOrDie(loop);
  ASSERT_TRUE(a && b);
  EXPECT_NE(a->port(), 0);
  std::vector<Got> at_b;
  b->onReceive([&](const uint8_t* p, size_t n, const SocketAddress& from) {
    at_b.push_back({std::string(reinterpret_cast<const char*>(p), n), from});
  });
  ASSERT_TRUE(a->sendTo(*SocketAddress::parseIp("127.0.0.1", b->port()),
                        reinterpret_cast<const uint8_t*>("ping"), 4));
  runUntil(loop, [&] { return !at_b.empty(); });
  ASSERT_EQ(at_b.size(), 1u);
  EXPECT_EQ(at_b[0].data, "ping");
  // Even through a dual-stack socket the source reads as plain IPv4.
  EXPECT_EQ(at_b[0].from.toString(), "127.0.0.1:" + std::to_string(a->port()));
}

TEST(UdpSocket, DualStackReachesIpv6AndEmptyDatagrams) {
  Loop loop;
  auto a = openOrDie(loop);
  auto b = openOrDie(loop);
  ASSERT_TRUE(a && b);
  // The machines this runs on have IPv6 loopback; without it the test
  // must fail, not hide the dual-stack path.
  ASSERT_TRUE(a->dualStack()) << "no IPv6 on this host: the dual-stack path is untested";
  std::vector<Got> at_b;
  b->onReceive([&](const uint8_t* p, size_t n, const SocketAddress& from) {
    at_b.push_back({std::string(reinterpret_cast<const char*>(p), n), from});
  });
  BufferChain empty;
  ASSERT_TRUE(a->sendTo(*SocketAddress::parseIp("::1", b->port()), empty));
  runUntil(loop, [&] { return !at_b.empty(); });
  ASSERT_EQ(at_b.size(), 1u);
  EXPECT_EQ(at_b[0].data, "");
  EXPECT_EQ(at_b[0].from.toString(), "[::1]:" + std::to_string(a->port()));
}

TEST(UdpSocket, LargestIpv4Datagram) {
  Loop loop;
  auto a = openOrDie(loop);
  auto b = openOrDie(loop);
  ASSERT_TRUE(a && b);
  std::string big(65507, 'x');  // 65535 - IPv4 header - UDP header
  big[0] = 'a';
  big.back() = 'z';
  std::string got;
  b->onReceive([&](const uint8_t* p, size_t n, const SocketAddress&) {
    got.assign(reinterpret_cast<const char*>(p), n);
  });
  BufferChain payload;
  payload.append(big);
  ASSERT_TRUE(a->sendTo(*SocketAddress::parseIp("127.0.0.1", b->port()), payload));
  EXPECT_TRUE(payload.empty());
  runUntil(loop, [&] { return !got.empty(); });
  EXPECT_EQ(got, big);
  // One byte more cannot be an IPv4 datagram: dropped and counted.
  std::string too_big(65508, 'y');
  EXPECT_FALSE(a->sendTo(*SocketAddress::parseIp("127.0.0.1", b->port()),
                         reinterpret_cast<const uint8_t*>(too_big.data()), too_big.size()));
  EXPECT_EQ(a->sendDrops(), 1u);
}

TEST(UdpSocket, Ipv4OnlySocketCountsIpv6Drops) {
  Loop loop;
  auto a = openOrDie(loop, false);
  ASSERT_TRUE(a);
  EXPECT_FALSE(a->dualStack());
  EXPECT_EQ(a->localAddress().family(), AF_INET);
  EXPECT_FALSE(a->sendTo(*SocketAddress::parseIp("::1", 9), reinterpret_cast<const uint8_t*>("x"), 1));
  EXPECT_FALSE(a->sendTo(*SocketAddress::parseIp("127.0.0.1", 0),
                         reinterpret_cast<const uint8_t*>("x"), 1));  // port 0
  EXPECT_EQ(a->sendDrops(), 2u);
}

TEST(UdpSocket, DestroyedWithSendsInFlightAndFromCallback) {
  Loop loop;
  auto a = openOrDie(loop);
  auto b = openOrDie(loop);
  ASSERT_TRUE(a && b);
  auto dst = *SocketAddress::parseIp("127.0.0.1", b->port());
  std::string chunk(60000, 'q');
  for (int i = 0; i < 200; ++i) {
    a->sendTo(dst, reinterpret_cast<const uint8_t*>(chunk.data()), chunk.size());
  }
  EXPECT_LE(a->queuedBytes(), UdpSocket::kDefaultMaxQueuedBytes);
  a.reset();  // queued sends finish (or fail) without their owner
  int seen = 0;
  b->onReceive([&](const uint8_t*, size_t, const SocketAddress&) { ++seen; });
  runUntil(loop, [&] { return seen > 0; });
  EXPECT_GT(seen, 0);
  b.reset();
  for (int i = 0; i < 5; ++i) loop.runOnce(false);
}

}  // namespace
}  // namespace vt::event
