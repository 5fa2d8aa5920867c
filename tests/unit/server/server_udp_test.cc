// vless-server UDP over a real loop on 127.0.0.1: v0, v1 classic and the
// separated channel with its full-cone NAT (EIM, EIF, FLAG 0/1 routing,
// expiry, caps), edge sizes and hostile framing.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <set>
#include <thread>

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
            int* fd_out) {
  int fd = openChannel(server_port, udpRequest(1, user, loop4(r.port()), true, sid),
                       lengthPacket("cap"));
  *fd_out = fd;
  PacketReader in(fd, Framing::kMultiDown);
  auto d = in.next(2000);
  return d && d->payload == "cap";
}

TEST(ServerUdp, SessionCaps) {
  UdpReflector r;
  {
    config::ServerConfig cfg = baseConfig();
    cfg.udp.max_sessions_per_user = 1;
    Harness h(cfg);
    int f1, f2, f3, f4;
    EXPECT_TRUE(served(h.port(), kAlice, 1, r, &f1));
    EXPECT_TRUE(served(h.port(), kAlice, 1, r, &f2));   // same session: no new one
    EXPECT_FALSE(served(h.port(), kAlice, 2, r, &f3));  // per user
    EXPECT_TRUE(served(h.port(), kBob, 2, r, &f4));
    for (int fd : {f1, f2, f3, f4}) ::close(fd);
  }
  {
    config::ServerConfig cfg = baseConfig();
    cfg.udp.max_sessions = 2;
    Harness h(cfg);
    int f1, f2, f3, f4;
    EXPECT_TRUE(served(h.port(), kAlice, 1, r, &f1));
    EXPECT_TRUE(served(h.port(), kAlice, 2, r, &f2));
    EXPECT_FALSE(served(h.port(), kBob, 3, r, &f3));  // in total
    // Channels without a session id are not NAT sessions.
    int fd = openChannel(h.port(), udpRequest(1, kBob, loop4(r.port()), true), lengthPacket("cap"));
    PacketReader in(fd, Framing::kMultiDown);
    auto d = in.next();
    EXPECT_TRUE(d && d->payload == "cap");
    for (int x : {f1, f2, f3, fd}) ::close(x);
    (void)f4;
  }
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

}  // namespace
}  // namespace vt::server
