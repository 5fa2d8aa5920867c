// vless-server UDP over a real loop on 127.0.0.1: v0, v1 classic and the
// separated channel with its full-cone NAT (EIM, EIF, FLAG 0/1 routing,
// two-tier expiry, LRU eviction at the caps), edge sizes and hostile
// framing.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "server/server_stats.h"
#include "unit/server/server_harness.h"
#include "unit/server/udp_peers.h"

namespace vt::server {
namespace {

using namespace testing;  // NOLINT(google-build-using-namespace): test helpers
using test::sendAll;
using test::waitEof;

codec::Address loop4(uint16_t port) { return codec::Address::ipv4(0x7f000001, port); }

void sleepMs(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

TEST(ServerUdp, V0EchoOnlyFromTarget) {
  UdpReflector r;
  Harness h(baseConfig());
  int fd = openChannel(h.port(), udpRequest(0, kAlice, loop4(r.port())), lengthPacket("hello"));
  ASSERT_GE(fd, 0);
  PacketReader in(fd, Framing::kLength);
  EXPECT_EQ(in.raw(2), v0Response());
  auto d = in.next();
  ASSERT_TRUE(d);
  EXPECT_EQ(d->payload, "hello");
  // An empty datagram is a datagram.
  ASSERT_TRUE(sendAll(fd, lengthPacket("")));
  d = in.next();
  ASSERT_TRUE(d);
  EXPECT_EQ(d->payload, "");
  // v0 talks to its target only: a stranger's datagram is dropped.
  ASSERT_TRUE(r.waitReceived(2, 2000));
  UdpProbe stranger;
  ASSERT_TRUE(stranger.sendTo(r.sourcePorts().at(0), "intruder"));
  sleepMs(50);
  ASSERT_TRUE(sendAll(fd, lengthPacket("again")));
  d = in.next();
  ASSERT_TRUE(d);
  EXPECT_EQ(d->payload, "again");
  ::close(fd);
}

TEST(ServerUdp, ClassicTwoDestinationsWithRealSources) {
  UdpReflector r1("one:");
  UdpReflector r2("two:", true);
  Harness h(baseConfig());
  int fd = openChannel(h.port(), udpRequest(1, kAlice, loop4(r1.port())),
                       classicPacket(loop4(r1.port()), "a") + classicPacket(loop4(r2.port()), "b"));
  ASSERT_GE(fd, 0);
  PacketReader in(fd, Framing::kClassic);
  std::set<std::string> got;
  for (int i = 0; i < 2; ++i) {
    auto d = in.next();
    ASSERT_TRUE(d);
    ASSERT_TRUE(d->address);
    got.insert(d->address->toString() + " " + d->payload);
  }
  EXPECT_EQ(got, (std::set<std::string>{loop4(r1.port()).toString() + " one:a",
                                        loop4(r2.port()).toString() + " two:b"}));
  // A domain destination is resolved off the loop; r2 listens on both
  // loopback addresses, so whichever "localhost" gives first works.
  // Datagrams that wait for the lookup keep their order.
  codec::Address name = codec::Address::fromDomain("localhost", r2.port());
  ASSERT_TRUE(sendAll(fd, classicPacket(name, "c1") + classicPacket(name, "c2") +
                              classicPacket(name, "c3")));
  std::optional<Datagram> d;
  for (const char* want : {"two:c1", "two:c2", "two:c3"}) {
    d = in.next();
    ASSERT_TRUE(d);
    EXPECT_EQ(d->payload, want);
    ASSERT_TRUE(d->address);
    EXPECT_TRUE(d->address->isIp());
    EXPECT_EQ(d->address->port, r2.port());
  }
  // Now cached: no second lookup, same answer.
  ASSERT_TRUE(sendAll(fd, classicPacket(name, "c4")));
  d = in.next();
  ASSERT_TRUE(d);
  EXPECT_EQ(d->payload, "two:c4");
  // One socket per connection: both remotes saw the same source port.
  ASSERT_TRUE(r1.waitReceived(1, 1000));
  EXPECT_EQ(r1.sourcePorts().at(0), r2.sourcePorts().at(0));
  ::close(fd);
}

TEST(ServerUdp, SeparatedChannelFullCone) {
  UdpReflector r1("one:");
  UdpReflector r2("two:");
  Harness h(baseConfig());
  const uint64_t sid = 0x0102030405060708;
  int a = openChannel(h.port(), udpRequest(1, kAlice, loop4(r1.port()), true, sid),
                      lengthPacket("a"));
  ASSERT_GE(a, 0);
  PacketReader ain(a, Framing::kMultiDown);
  auto d = ain.next();
  ASSERT_TRUE(d);
  EXPECT_FALSE(d->address);  // FLAG 0: from the channel's own target
  EXPECT_EQ(d->payload, "one:a");
  int b = openChannel(h.port(), udpRequest(1, kAlice, loop4(r2.port()), true, sid),
                      lengthPacket("b"));
  ASSERT_GE(b, 0);
  PacketReader bin(b, Framing::kMultiDown);
  d = bin.next();
  ASSERT_TRUE(d);
  EXPECT_FALSE(d->address);
  EXPECT_EQ(d->payload, "two:b");
  // Endpoint-independent mapping: one server port for both remotes.
  uint16_t mapped = r1.sourcePorts().at(0);
  EXPECT_EQ(r2.sourcePorts().at(0), mapped);

  // Endpoint-independent filtering: a never-contacted remote reaches the
  // mapping and arrives on the most recently active channel (b) as FLAG 1.
  UdpProbe third;
  ASSERT_TRUE(third.sendTo(mapped, "knock"));
  d = bin.next();
  ASSERT_TRUE(d);
  ASSERT_TRUE(d->address);
  EXPECT_EQ(d->address->toString(), loop4(third.port()).toString());
  EXPECT_EQ(d->payload, "knock");

  // The client answers by opening the third remote's own channel.
  int c = openChannel(h.port(), udpRequest(1, kAlice, loop4(third.port()), true, sid),
                      lengthPacket("hi third"));
  ASSERT_GE(c, 0);
  auto at_third = third.recv(3000);
  ASSERT_TRUE(at_third);
  EXPECT_EQ(*at_third, "hi third");
  ASSERT_TRUE(third.sendTo(mapped, "own channel"));
  PacketReader cin(c, Framing::kMultiDown);
  d = cin.next();
  ASSERT_TRUE(d);
  EXPECT_FALSE(d->address);  // FLAG 0 now
  EXPECT_EQ(d->payload, "own channel");

  // A channel without udp_session gets a port of its own.
  int p = openChannel(h.port(), udpRequest(1, kAlice, loop4(r1.port()), true), lengthPacket("p"));
  ASSERT_GE(p, 0);
  PacketReader pin(p, Framing::kMultiDown);
  d = pin.next();
  ASSERT_TRUE(d);
  EXPECT_EQ(d->payload, "one:p");
  EXPECT_NE(r1.sourcePorts().back(), mapped);
  // Another user with the same session id is another session.
  int q = openChannel(h.port(), udpRequest(1, kBob, loop4(r1.port()), true, sid), lengthPacket("q"));
  ASSERT_GE(q, 0);
  PacketReader qin(q, Framing::kMultiDown);
  ASSERT_TRUE(qin.next());
  EXPECT_NE(r1.sourcePorts().back(), mapped);
  for (int fd : {a, b, c, p, q}) ::close(fd);
}

TEST(ServerUdp, Ipv6RemotesAndDomainTargets) {
  UdpReflector r("six:", true);
  Harness h(baseConfig());
  const uint8_t kV6Loopback[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  codec::Address v6 = codec::Address::ipv6(kV6Loopback, r.port());
  // Classic: the source comes back as ATYP 3.
  int fd = openChannel(h.port(), udpRequest(1, kAlice, v6), classicPacket(v6, "c"));
  ASSERT_GE(fd, 0);
  PacketReader cin(fd, Framing::kClassic);
  auto d = cin.next();
  ASSERT_TRUE(d || r.received() != 0) << "no IPv6 loopback: the IPv6 remote path is untested";
  ASSERT_TRUE(d);
  EXPECT_EQ(d->payload, "six:c");
  ASSERT_TRUE(d->address);
  EXPECT_EQ(d->address->toString(), v6.toString());
  ::close(fd);
  // Separated channel to an IPv6 target: its replies are FLAG 0.
  fd = openChannel(h.port(), udpRequest(1, kAlice, v6, true, 5), lengthPacket("m"));
  PacketReader min(fd, Framing::kMultiDown);
  d = min.next();
  ASSERT_TRUE(d);
  EXPECT_FALSE(d->address);
  EXPECT_EQ(d->payload, "six:m");
  ::close(fd);
  // Domain targets (v0 and separated): resolved once, replies match.
  codec::Address name = codec::Address::fromDomain("localhost", r.port());
  fd = openChannel(h.port(), udpRequest(0, kAlice, name), lengthPacket("v0"));
  PacketReader vin(fd, Framing::kLength);
  EXPECT_EQ(vin.raw(2), v0Response());
  d = vin.next();
  ASSERT_TRUE(d);
  EXPECT_EQ(d->payload, "six:v0");
  ::close(fd);
  fd = openChannel(h.port(), udpRequest(1, kAlice, name, true, 6), lengthPacket("dn"));
  PacketReader din(fd, Framing::kMultiDown);
  d = din.next();
  ASSERT_TRUE(d);
  EXPECT_FALSE(d->address);
  EXPECT_EQ(d->payload, "six:dn");
  ::close(fd);
}

TEST(ServerUdp, SessionOutlivesChannelsThenExpires) {
  UdpReflector r;
  config::ServerConfig cfg = baseConfig();
  cfg.udp.session_timeout_ms = 300;
  Harness h(cfg);
  const uint64_t sid = 42;
  auto roundTrip = [&](const std::string& msg) {
    int fd = openChannel(h.port(), udpRequest(1, kAlice, loop4(r.port()), true, sid),
                         lengthPacket(msg));
    EXPECT_GE(fd, 0);
    PacketReader in(fd, Framing::kMultiDown);
    auto d = in.next();
    EXPECT_TRUE(d);
    if (d) {
      EXPECT_EQ(d->payload, msg);
    }
    ::close(fd);
    return r.sourcePorts().back();
  };
  uint16_t first = roundTrip("one");
  sleepMs(30);
  EXPECT_EQ(roundTrip("two"), first);  // reconnected in time: same mapping
  sleepMs(900);
  EXPECT_NE(roundTrip("three"), first);  // expired: a new socket
}

TEST(ServerUdp, ChannelIdleTimeout) {
  UdpReflector r;
  config::ServerConfig cfg = baseConfig();
  cfg.udp.channel_idle_timeout_ms = 200;
  Harness h(cfg);
  int fd = openChannel(h.port(), udpRequest(1, kAlice, loop4(r.port()), true, 7), lengthPacket("x"));
  ASSERT_GE(fd, 0);
  PacketReader in(fd, Framing::kMultiDown);
  ASSERT_TRUE(in.next());
  std::string rest;
  EXPECT_TRUE(waitEof(fd, 3000, &rest));
  ::close(fd);
}

bool served(uint16_t server_port, const codec::Uuid& user, uint64_t sid, UdpReflector& r,
            int* fd_out, const std::string& msg = "cap") {
  int fd =
      openChannel(server_port, udpRequest(1, user, loop4(r.port()), true, sid), lengthPacket(msg));
  *fd_out = fd;
  PacketReader in(fd, Framing::kMultiDown);
  auto d = in.next(2000);
  return d && d->payload == msg;
}

// One more datagram on an open separated channel, and its echo.
bool echoes(int fd, const std::string& msg) {
  if (!sendAll(fd, lengthPacket(msg))) return false;
  PacketReader in(fd, Framing::kMultiDown);
  auto d = in.next(2000);
  return d && d->payload == msg;
}

// The server finished the connection (recv() == 0 after FIN), as opposed
// to resetting it or leaving it open.
bool cleanEof(int fd, int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  char buf[4096];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n == 0) return true;
    if (n < 0) return false;
  }
}

int64_t msSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                               t0)
      .count();
}

TEST(ServerUdp, UnassuredSessionLivesNewSessionTimeout) {
  UdpReflector r;
  config::ServerConfig cfg = baseConfig();
  cfg.udp.session_timeout_ms = 5000;
  cfg.udp.new_session_timeout_ms = 200;
  Harness h(cfg);
  const uint64_t sid = 51;
  int fd = -1;
  ASSERT_TRUE(served(h.port(), kAlice, sid, r, &fd, "one"));
  auto t0 = std::chrono::steady_clock::now();
  uint16_t first = r.sourcePorts().back();
  // One exchange only (a DNS lookup, say): the session goes
  // new_session_timeout after it although its channel is still attached,
  // and the channel is ended cleanly so that the client sees it end.
  EXPECT_TRUE(cleanEof(fd, 3000));
  EXPECT_LT(msSince(t0), 2000);  // far from session_timeout and channel_idle_timeout
  EXPECT_TRUE(h.waitUdpStats([](const UdpNatStats& s) { return s.expired_new == 1; }));
  EXPECT_EQ(h.udpStats().expired, 1u);
  ::close(fd);
  // The client's next datagram opens a new channel: a new session and port.
  ASSERT_TRUE(served(h.port(), kAlice, sid, r, &fd, "two"));
  EXPECT_NE(r.sourcePorts().back(), first);
  ::close(fd);
}

TEST(ServerUdp, AssuredSessionKeepsSessionTimeout) {
  UdpReflector r;
  config::ServerConfig cfg = baseConfig();
  cfg.udp.session_timeout_ms = 2000;
  cfg.udp.new_session_timeout_ms = 200;
  Harness h(cfg);
  const uint64_t sid = 52;
  int fd = -1;
  ASSERT_TRUE(served(h.port(), kAlice, sid, r, &fd, "a"));
  uint16_t mapped = r.sourcePorts().back();
  // A reply came and the client sent again: assured.
  ASSERT_TRUE(echoes(fd, "b"));
  // Quiet for longer than new_session_timeout with its channel attached:
  // it stays.
  std::string none;
  EXPECT_FALSE(waitEof(fd, 600, &none));
  ::close(fd);
  sleepMs(400);  // no channel, quiet for less than session_timeout
  ASSERT_TRUE(served(h.port(), kAlice, sid, r, &fd, "c"));
  EXPECT_EQ(r.sourcePorts().back(), mapped);
  ::close(fd);
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(h.udpStats().expired, 0u);
  ASSERT_TRUE(h.waitUdpStats([](const UdpNatStats& s) { return s.expired == 1; }, 5000));
  EXPECT_GE(msSince(t0), 1500);  // session_timeout (2 s) after "c", not 200 ms
  EXPECT_EQ(h.udpStats().expired_new, 0u);
  EXPECT_EQ(h.udpSessions(), 0u);
}

TEST(ServerUdp, EvictsLeastRecentlyActiveAtPerUserCap) {
  UdpReflector r;
  config::ServerConfig cfg = baseConfig();
  cfg.udp.max_sessions_per_user = 2;
  Harness h(cfg);
  int a = -1, b = -1, c = -1, d = -1, q = -1, b2 = -1;
  ASSERT_TRUE(served(h.port(), kAlice, 1, r, &a, "a"));
  uint16_t mapped_a = r.sourcePorts().back();
  ASSERT_TRUE(served(h.port(), kAlice, 2, r, &b, "b"));
  // A remote knocks at A's port: A is now more recently active than B, and
  // still unassured (the client has not sent since its reply).
  UdpProbe knock;
  ASSERT_TRUE(knock.sendTo(mapped_a, "knock"));
  PacketReader ain(a, Framing::kMultiDown);
  auto got = ain.next();
  ASSERT_TRUE(got);
  EXPECT_EQ(got->payload, "knock");
  // A third session for alice evicts the least recently active, B, whose
  // channel ends cleanly.
  ASSERT_TRUE(served(h.port(), kAlice, 3, r, &c, "c"));
  uint16_t mapped_c = r.sourcePorts().back();
  EXPECT_TRUE(cleanEof(b, 3000));
  EXPECT_TRUE(
      h.waitUdpStats([](const UdpNatStats& s) { return s.evicted_max_sessions_per_user == 1; }));
  EXPECT_EQ(h.udpSessions(), 2u);
  // A keeps its mapping and works; sending after the reply assures it.
  ASSERT_TRUE(echoes(a, "a2"));
  EXPECT_EQ(r.sourcePorts().back(), mapped_a);
  // Another user is not touched by alice's cap.
  ASSERT_TRUE(served(h.port(), kBob, 1, r, &q, "q"));
  // Unassured sessions go first: C is more recently active than the
  // assured A, yet a fourth session evicts C.
  ASSERT_TRUE(knock.sendTo(mapped_c, "knock c"));
  PacketReader cin(c, Framing::kMultiDown);
  got = cin.next();
  ASSERT_TRUE(got);
  ASSERT_TRUE(served(h.port(), kAlice, 4, r, &d, "d"));
  EXPECT_TRUE(cleanEof(c, 3000));
  EXPECT_TRUE(
      h.waitUdpStats([](const UdpNatStats& s) { return s.evicted_max_sessions_per_user == 2; }));
  ASSERT_TRUE(echoes(a, "a3"));
  EXPECT_EQ(r.sourcePorts().back(), mapped_a);
  // B's client comes back with a new channel: a new session (evicting D,
  // unassured), served at once.
  ASSERT_TRUE(served(h.port(), kAlice, 2, r, &b2, "b2"));
  EXPECT_TRUE(cleanEof(d, 3000));
  EXPECT_TRUE(
      h.waitUdpStats([](const UdpNatStats& s) { return s.evicted_max_sessions_per_user == 3; }));
  EXPECT_EQ(h.udpStats().evicted_max_sessions, 0u);
  for (int fd : {a, b, c, d, q, b2}) ::close(fd);
}

TEST(ServerUdp, EvictsLeastRecentlyActiveAtTotalCap) {
  UdpReflector r;
  config::ServerConfig cfg = baseConfig();
  cfg.udp.max_sessions = 2;
  Harness h(cfg);
  int f1 = -1, f2 = -1, f3 = -1;
  ASSERT_TRUE(served(h.port(), kAlice, 1, r, &f1));
  ASSERT_TRUE(served(h.port(), kBob, 2, r, &f2));
  // In total: the table's least recently active session goes, whoever's.
  ASSERT_TRUE(served(h.port(), kAlice, 3, r, &f3));
  EXPECT_TRUE(cleanEof(f1, 3000));
  EXPECT_TRUE(h.waitUdpStats([](const UdpNatStats& s) { return s.evicted_max_sessions == 1; }));
  EXPECT_EQ(h.udpStats().evicted_max_sessions_per_user, 0u);
  EXPECT_TRUE(echoes(f2, "bob still here"));
  // Channels without a session id are not NAT sessions.
  int fd = openChannel(h.port(), udpRequest(1, kBob, loop4(r.port()), true), lengthPacket("cap"));
  PacketReader in(fd, Framing::kMultiDown);
  auto d = in.next();
  EXPECT_TRUE(d && d->payload == "cap");
  EXPECT_EQ(h.udpSessions(), 2u);
  EXPECT_EQ(h.udpStats().evicted_max_sessions, 1u);
  for (int x : {f1, f2, f3, fd}) ::close(x);
}

TEST(ServerUdp, EvictionsAreLoggedSummedUp) {
  UdpReflector r;
  ::testing::internal::CaptureStderr();
  {
    config::ServerConfig cfg = baseConfig();
    cfg.udp.max_sessions_per_user = 1;
    Harness h(cfg);
    std::vector<int> fds;
    for (uint64_t sid = 1; sid <= 5; ++sid) {
      int fd = -1;
      EXPECT_TRUE(served(h.port(), kAlice, sid, r, &fd));
      fds.push_back(fd);
    }
    EXPECT_TRUE(
        h.waitUdpStats([](const UdpNatStats& s) { return s.evicted_max_sessions_per_user == 4; }));
    for (int fd : fds) ::close(fd);
  }  // the stop logs what the interval held back
  std::string err = ::testing::internal::GetCapturedStderr();
  std::vector<std::string> lines;
  for (size_t at = err.find("udp nat: evicted"); at != std::string::npos;
       at = err.find("udp nat: evicted", at + 1)) {
    lines.push_back(err.substr(at, err.find('\n', at) - at));
  }
  ASSERT_EQ(lines.size(), 2u) << err;
  EXPECT_EQ(lines[0], "udp nat: evicted 1 session at max_sessions_per_user=1 (user alice)");
  EXPECT_EQ(lines[1], "udp nat: evicted 3 sessions at max_sessions_per_user=1 (user alice)");
}

TEST(ServerUdp, LargestDatagramBothWays) {
  UdpReflector r;
  Harness h(baseConfig());
  // 65535 - 20 (IPv4) - 8 (UDP): the largest IPv4 datagram.
  std::string big(65507, 'x');
  big.front() = '<';
  big.back() = '>';
  int fd = openChannel(h.port(), udpRequest(1, kAlice, loop4(r.port()), true, 9), lengthPacket(big));
  ASSERT_GE(fd, 0);
  PacketReader in(fd, Framing::kMultiDown);
  auto d = in.next(5000);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->payload, big);
  // One byte more cannot leave as IPv4: dropped (counted), channel alive.
  ASSERT_TRUE(sendAll(fd, lengthPacket(big + "!") + lengthPacket("small")));
  d = in.next();
  ASSERT_TRUE(d);
  EXPECT_EQ(d->payload, "small");
  ::close(fd);
}

TEST(ServerUdp, SlowClientDropsDatagramsNotTheChannel) {
  UdpReflector r;
  Harness h(baseConfig());
  int fd = openChannel(h.port(), udpRequest(1, kAlice, loop4(r.port()), true, 12),
                       lengthPacket("open"));
  ASSERT_GE(fd, 0);
  PacketReader in(fd, Framing::kMultiDown);
  ASSERT_TRUE(in.next());
  uint16_t mapped = r.sourcePorts().at(0);
  // The client reads nothing while 6 MB arrive for it: the server keeps at
  // most its bound queued and drops the rest.
  UdpProbe flood;
  std::string chunk(1200, 'f');
  for (int i = 0; i < 5000; ++i) {
    flood.sendTo(mapped, chunk);
    if (i % 50 == 0) sleepMs(1);
  }
  size_t got = 0;
  std::optional<Datagram> d;
  while ((d = in.next(500)) && d->payload == chunk) ++got;
  EXPECT_GT(got, 0u);
  EXPECT_LT(got, 5000u);
  ASSERT_TRUE(sendAll(fd, lengthPacket("still here")));
  while ((d = in.next(2000)) && d->payload == chunk) {
  }
  ASSERT_TRUE(d);
  EXPECT_EQ(d->payload, "still here");
  ::close(fd);
}

TEST(ServerUdp, HostileFramingClosesThatChannelOnly) {
  UdpReflector r;
  Harness h(baseConfig());
  const uint64_t sid = 77;
  int good = openChannel(h.port(), udpRequest(1, kAlice, loop4(r.port()), true, sid),
                         lengthPacket("1"));
  ASSERT_GE(good, 0);
  PacketReader gin(good, Framing::kMultiDown);
  ASSERT_TRUE(gin.next());
  uint16_t mapped = r.sourcePorts().at(0);

  std::string port_ip = std::string("\x00\x35", 2);
  std::vector<std::string> hostile = {
      port_ip + std::string("\x04", 1) + "abcd" + std::string("\x00\x01", 2) + "z",  // ATYP 4
      port_ip + std::string("\x02\x00", 2) + std::string("\x00\x01", 2) + "z",       // domain len 0
      port_ip + std::string("\x00", 1),                                              // ATYP 0
  };
  for (const std::string& bad : hostile) {
    int fd = openChannel(h.port(), udpRequest(1, kAlice, loop4(r.port())), bad);
    ASSERT_GE(fd, 0);
    std::string got;
    EXPECT_TRUE(waitEof(fd, 3000, &got));
    EXPECT_EQ(got, "");
    ::close(fd);
  }
  // Port 0 is no framing error: such datagrams are dropped, the channel stays.
  int z = openChannel(h.port(), udpRequest(1, kAlice, loop4(0), true), lengthPacket("nowhere"));
  ASSERT_GE(z, 0);
  std::string none;
  EXPECT_FALSE(waitEof(z, 200, &none));
  ::close(z);
  int c0 = openChannel(h.port(), udpRequest(1, kAlice, loop4(0)),
                       classicPacket(loop4(0), "x") + classicPacket(loop4(r.port()), "y"));
  ASSERT_GE(c0, 0);
  PacketReader c0in(c0, Framing::kClassic);
  auto y = c0in.next();
  ASSERT_TRUE(y);
  EXPECT_EQ(y->payload, "y");
  ::close(c0);
  // A channel of the same session that stops mid-packet and leaves.
  int cut = openChannel(h.port(), udpRequest(1, kAlice, loop4(r.port()), true, sid),
                        std::string("\x00\x10", 2) + "short");
  ASSERT_GE(cut, 0);
  ::shutdown(cut, SHUT_WR);
  std::string got;
  EXPECT_TRUE(waitEof(cut, 3000, &got));
  ::close(cut);
  // The session's other channel keeps its mapping and keeps working.
  ASSERT_TRUE(sendAll(good, lengthPacket("2")));
  auto d = gin.next();
  ASSERT_TRUE(d);
  EXPECT_EQ(d->payload, "2");
  EXPECT_EQ(r.sourcePorts().back(), mapped);
  ::close(good);
}

// Stats: a UDP channel's datagrams and payload bytes, live and after close.
TEST(ServerUdp, StatsCountDatagrams) {
  UdpReflector r;
  Harness h(baseConfig());
  int fd = openChannel(h.port(), udpRequest(0, kAlice, loop4(r.port())), lengthPacket("hello"));
  ASSERT_GE(fd, 0);
  PacketReader in(fd, Framing::kLength);
  EXPECT_EQ(in.raw(2), v0Response());
  auto d = in.next();
  ASSERT_TRUE(d);
  std::string prom;
  auto has = [&](const std::string& line) {
    return prom.find("\n" + line + "\n") != std::string::npos;
  };
  h.call([&](Server& s) { prom = serverPrometheus(s); });
  EXPECT_TRUE(has("vless_server_sessions_live{kind=\"udp\"} 1")) << prom;
  EXPECT_TRUE(has("vless_server_user_udp_datagrams_total{user=\"alice\",direction=\"up\"} 1"));
  EXPECT_TRUE(has("vless_server_user_udp_datagrams_total{user=\"alice\",direction=\"down\"} 1"));
  EXPECT_TRUE(has("vless_server_user_bytes_total{user=\"alice\",direction=\"up\"} 5"));
  EXPECT_TRUE(has("vless_server_udp_datagrams_total{direction=\"down\"} 1"));
  ::close(fd);
  for (int i = 0; i < 1500 && h.sessions() != 0; ++i) sleepMs(2);
  ASSERT_EQ(h.sessions(), 0u);
  h.call([&](Server& s) { prom = serverPrometheus(s); });
  EXPECT_TRUE(has("vless_server_user_udp_datagrams_total{user=\"alice\",direction=\"up\"} 1"))
      << prom;
  EXPECT_TRUE(has("vless_server_user_bytes_total{user=\"alice\",direction=\"down\"} 5"));
  EXPECT_TRUE(has("vless_server_sessions_live{kind=\"udp\"} 0"));
}

}  // namespace
}  // namespace vt::server
