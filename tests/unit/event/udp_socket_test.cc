// UdpSocket on loopback: both families through one dual-stack socket,
// source normalisation, empty and the largest datagrams, counted drops.
#include "event/udp_socket.h"

#include <gtest/gtest.h>
#include <sys/socket.h>

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

// What one pass sends leaves in one sendmmsg, runs to one destination as
// GSO messages; the receiver sees every datagram, whole and in order.
std::string numbered(int i, size_t n) {
  std::string d(n, static_cast<char>('a' + i % 26));
  std::string tag = std::to_string(i) + ":";
  d.replace(0, std::min(tag.size(), n), tag.substr(0, n));
  return d;
}

struct Sink {
  std::unique_ptr<UdpSocket> sock;
  std::vector<std::string> got;
};

void listen(Sink& s) {
  s.sock->onReceive([&s](const uint8_t* p, size_t n, const SocketAddress&) {
    s.got.emplace_back(reinterpret_cast<const char*>(p), n);
  });
}

TEST(UdpSocket, OnePassIsOneSendmmsgWithGsoRuns) {
  Loop loop;
  auto a = openOrDie(loop);
  Sink b{openOrDie(loop), {}};
  Sink c{openOrDie(loop), {}};
  ASSERT_TRUE(a && b.sock && c.sock);
  listen(b);
  listen(c);
  auto to_b = *SocketAddress::parseIp("127.0.0.1", b.sock->port());
  auto to_c = *SocketAddress::parseIp("::1", c.sock->port());
  std::vector<std::string> want_b;
  std::vector<std::string> want_c;
  // A run of equal sizes with a shorter last one, another destination in
  // between, sizes that grow (a new run each), an empty datagram.
  for (int i = 0; i < 20; ++i) want_b.push_back(numbered(i, 1200));
  want_b.push_back(numbered(20, 300));
  for (int i = 0; i < 5; ++i) want_c.push_back(numbered(100 + i, 700));
  for (int i = 0; i < 10; ++i) want_b.push_back(numbered(200 + i, 100 + 50 * i));
  want_b.push_back("");
  for (size_t i = 0; i < 21; ++i) {
    ASSERT_TRUE(a->sendTo(to_b, reinterpret_cast<const uint8_t*>(want_b[i].data()), want_b[i].size()));
  }
  for (auto& d : want_c) {
    ASSERT_TRUE(a->sendTo(to_c, reinterpret_cast<const uint8_t*>(d.data()), d.size()));
  }
  for (size_t i = 21; i < want_b.size(); ++i) {
    ASSERT_TRUE(a->sendTo(to_b, reinterpret_cast<const uint8_t*>(want_b[i].data()), want_b[i].size()));
  }
  EXPECT_EQ(a->sendCalls(), 0u);  // nothing leaves before the end of the pass
  runUntil(loop, [&] { return b.got.size() == want_b.size() && c.got.size() == want_c.size(); });
  EXPECT_EQ(b.got, want_b);
  EXPECT_EQ(c.got, want_c);
  EXPECT_EQ(a->datagramsSent(), want_b.size() + want_c.size());
  EXPECT_EQ(a->sendCalls(), 1u);
  EXPECT_EQ(a->sendDrops(), 0u);
  EXPECT_EQ(a->queuedBytes(), 0u);
}

TEST(UdpSocket, FullBatchLeavesAtOnce) {
  Loop loop;
  auto a = openOrDie(loop);
  Sink b{openOrDie(loop), {}};
  ASSERT_TRUE(a && b.sock);
  listen(b);
  auto to_b = *SocketAddress::parseIp("127.0.0.1", b.sock->port());
  std::vector<std::string> want;
  for (size_t i = 0; i < UdpSocket::kMaxBatchDatagrams + 1; ++i) {
    want.push_back(numbered(static_cast<int>(i), 64));
    ASSERT_TRUE(a->sendTo(to_b, reinterpret_cast<const uint8_t*>(want.back().data()), 64));
  }
  EXPECT_EQ(a->sendCalls(), 1u);  // the 65th found the batch full
  EXPECT_EQ(a->datagramsSent(), UdpSocket::kMaxBatchDatagrams);
  runUntil(loop, [&] { return b.got.size() == want.size(); });
  EXPECT_EQ(b.got, want);
}

// SO_NO_CHECK makes the kernel refuse GSO (EINVAL) as it does for a
// segment over the route's MTU: the run goes datagram by datagram, and
// later runs no longer try GSO.
TEST(UdpSocket, RefusedGsoRunIsSentOneByOne) {
  Loop loop;
  auto a = openOrDie(loop, false);
  Sink b{openOrDie(loop, false), {}};
  ASSERT_TRUE(a && b.sock);
  listen(b);
  int one = 1;
  ASSERT_EQ(setsockopt(a->fd(), SOL_SOCKET, SO_NO_CHECK, &one, sizeof one), 0);
  auto to_b = *SocketAddress::parseIp("127.0.0.1", b.sock->port());
  std::vector<std::string> want;
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < 8; ++i) {
      want.push_back(numbered(round * 8 + i, 1000));
      ASSERT_TRUE(a->sendTo(to_b, reinterpret_cast<const uint8_t*>(want.back().data()), 1000));
    }
    loop.runOnce(false);
  }
  runUntil(loop, [&] { return b.got.size() == want.size(); });
  EXPECT_EQ(b.got, want);
  EXPECT_EQ(a->sendDrops(), 0u);
  EXPECT_EQ(a->datagramsSent(), want.size());
  // Round 1: the refused sendmmsg and 8 sends; round 2: one sendmmsg of 8.
  EXPECT_EQ(a->sendCalls(), 1u + 8u + 1u);
}

TEST(UdpSocket, DestroyedWithABatchStillSendsIt) {
  Loop loop;
  auto a = openOrDie(loop);
  Sink b{openOrDie(loop), {}};
  ASSERT_TRUE(a && b.sock);
  listen(b);
  auto to_b = *SocketAddress::parseIp("127.0.0.1", b.sock->port());
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(a->sendTo(to_b, reinterpret_cast<const uint8_t*>("last"), 4));
  }
  a.reset();
  runUntil(loop, [&] { return b.got.size() == 3; });
  EXPECT_EQ(b.got, std::vector<std::string>(3, "last"));
}

}  // namespace
}  // namespace vt::event
