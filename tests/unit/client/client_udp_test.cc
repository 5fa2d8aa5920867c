// Client UDP sessions and DNS hijack on a real loop: a real NetStack fed
// by the packet builder (the app behind the TUN), a real vless-server
// (plain TCP, same loop) relaying to UDP reflectors on 127.0.0.1:
//
//   test (app) --UDP/IP--> Client/NetStack --VLESS UDP--> Server --UDP--> reflectors
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "client/client.h"
#include "client/udp_session.h"
#include "codec/length_frame.h"
#include "codec/udp_packet.h"
#include "codec/vless.h"
#include "config/client_config.h"
#include "core/log.h"
#include "event/loop.h"
#include "server/server.h"
#include "stream/tcp_stream.h"
#include "unit/codec/dns_builder.h"
#include "unit/netstack/packet_builder.h"
#include "unit/server/udp_peers.h"

namespace vt::client {
namespace {

using server::testing::UdpProbe;
using server::testing::UdpReflector;

constexpr const char* kAppIp = "198.18.2.1";
const config::UuidBytes kUuid = {0xa6, 0x84, 0x45, 0x5c, 0xb1, 0x4f, 0x11, 0xea,
                                 0xbf, 0x0d, 0x42, 0x01, 0x0a, 0xaa, 0x00, 0x03};

struct Datagram {
  std::string src;
  uint16_t srcPort = 0;
  uint16_t dstPort = 0;
  std::string payload;
};

struct Recorder final : PacketSink {
  std::vector<Datagram> udp;
  std::vector<test::ParsedPacket> tcp;
  void writePacket(const netstack::PacketView& p) override {
    std::vector<uint8_t> bytes;
    for (int i = 0; i < p.iovCount; ++i) {
      const auto* b = static_cast<const uint8_t*>(p.iov[i].iov_base);
      bytes.insert(bytes.end(), b, b + p.iov[i].iov_len);
    }
    test::ParsedPacket pp;
    if (!test::parsePacket(bytes, pp)) return;
    if (pp.protocol == 6) tcp.push_back(pp);
    if (pp.protocol != 17) return;
    udp.push_back(Datagram{pp.src, pp.srcPort, pp.dstPort,
                           std::string(pp.payload.begin(), pp.payload.end())});
  }
};

// A DNS responder on 127.0.0.1 (thread): answers every A query with
// 198.18.1.7, TTL 60, and counts the queries it saw.
class FakeDns {
 public:
  FakeDns() {
    fd_ = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { run(); });
  }
  ~FakeDns() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  uint16_t port() const { return port_; }
  size_t queries() const { return queries_; }
  // With each answer, also an answer nobody asked for ("other.test", id
  // 0x7777): what an off-path spoofer would send.
  std::atomic<bool> spoof{false};

 private:
  static std::vector<uint8_t> answer(std::vector<uint8_t> r) {
    r[2] = 0x81;
    r[3] = 0x80;
    r[7] = 1;
    for (uint16_t x : {0xC00C, 1, 1}) test::dnsPut16(r, x);
    test::dnsPut32(r, 60);
    test::dnsPut16(r, 4);
    r.insert(r.end(), {198, 18, 1, 7});
    return r;
  }
  void run() {
    std::vector<uint8_t> buf(4096);
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      sockaddr_storage from{};
      socklen_t len = sizeof from;
      ssize_t n = ::recvfrom(fd_, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&from),
                             &len);
      if (n < 0) continue;
      ++queries_;
      if (n < 12) continue;
      // Copy header + question, turn it into an answer with one A record.
      std::vector<uint8_t> r(buf.begin(), buf.begin() + n);
      r[2] = 0x81;
      r[3] = 0x80;
      r[7] = 1;
      for (uint16_t x : {0xC00C, 1, 1}) test::dnsPut16(r, x);
      test::dnsPut32(r, 60);
      test::dnsPut16(r, 4);
      r.insert(r.end(), {198, 18, 1, 7});
      ::sendto(fd_, r.data(), r.size(), 0, reinterpret_cast<sockaddr*>(&from), len);
      if (spoof) {
        std::vector<uint8_t> f = answer(test::dnsQuery(0x7777, "other.test"));
        ::sendto(fd_, f.data(), f.size(), 0, reinterpret_cast<sockaddr*>(&from), len);
      }
    }
  }
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<size_t> queries_{0};
  std::thread thread_;
};

// A hostile VLESS "server" for the separated mode: echoes datagrams with
// FLAG 0, except on channels to port kHostile where it answers garbage.
constexpr uint16_t kHostile = 1111;
constexpr uint16_t kStall = 3333;  // never read after the header
struct FakeConn final : stream::StreamCallbacks {
  std::unique_ptr<stream::TcpStream> s;
  BufferChain rx;
  bool header = false;
  uint16_t port = 0;
  void onData(BufferChain& data, bool) override {
    rx.moveFrom(data);
    if (!header) {
      codec::Request req;
      auto r = codec::decodeRequest(rx, req);
      if (r.status != codec::DecodeStatus::kDone) return;
      rx.drain(r.consumed);
      header = true;
      port = req.target ? req.target->port : 0;
      if (port == kStall) {
        s->readDisable(true);
        rx.clear();
        return;
      }
    }
    BufferChain out;
    for (;;) {
      auto r = codec::decodeLengthPacket(rx);
      if (r.status != codec::DecodeStatus::kDone) break;
      BufferChain payload;
      codec::takePacket(rx, r, payload);
      if (port == kHostile) {
        out.append(std::string_view("\x07\x00\x01x", 4));  // FLAG 7
      } else {
        codec::encodeMultiUdpDown(std::nullopt, payload, out);
      }
    }
    if (!out.empty()) s->write(out, false);
  }
  void onClose(stream::CloseReason, const std::string&) override {}
};

// TCP echo, the "resolver" of the TCP DNS hijack test.
struct EchoConn final : stream::StreamCallbacks {
  std::unique_ptr<stream::TcpStream> s;
  void onData(BufferChain& data, bool end_stream) override { s->write(data, end_stream); }
  void onClose(stream::CloseReason, const std::string&) override {}
};

class ClientUdpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::signal(SIGPIPE, SIG_IGN);
    setLogLevel(LogLevel::kInfo);
    scfg_.log_level = LogLevel::kInfo;
    scfg_.listen = {config::HostPort{"127.0.0.1", 0, true}};
    scfg_.users = {config::ServerUser{"alice", kUuid}};
    // The targets are on loopback, which the server refuses by default.
    scfg_.egress.allow = {*IpPrefix::parse("127.0.0.0/8"), *IpPrefix::parse("::1")};
    server_ = std::make_unique<server::Server>(loop_, scfg_, nullptr);
    ASSERT_TRUE(server_->start().ok());
    cfg_.server.address = config::HostPort{"127.0.0.1", server_->localAddresses().at(0).port(), true};
    cfg_.server.uuid = kUuid;
    cfg_.server.tls = false;
    cfg_.tun.ipv4 = config::parseCidr("198.18.2.1/30");
    // The per-connection modes; the Mux* tests turn the mux on.
    cfg_.mux.enabled = false;
    cfg_.udp.mode = config::UdpMode::kSeparated;
  }
  void useMux() {
    cfg_.mux.enabled = true;
    cfg_.udp.mode = config::UdpMode::kMux;
  }
  // A new server with scfg_ (before startClient).
  void restartServer() {
    server_->stop();
    runUntil([this] { return server_->sessionCount() == 0; });
    server_.reset();
    server_ = std::make_unique<server::Server>(loop_, scfg_, nullptr);
    ASSERT_TRUE(server_->start().ok());
    cfg_.server.address.port = server_->localAddresses().at(0).port();
  }
  void TearDown() override {
    client_.reset();
    runFor(30);
    server_->stop();
    runUntil([this] { return server_->sessionCount() == 0; });
    fake_.clear();
    fakeListener_.reset();
    echo_.clear();
    echoListener_.reset();
    server_.reset();
    runFor(20);
  }
  void startClient() {
    auto c = Client::create(loop_, cfg_);
    ASSERT_TRUE(c.ok()) << c.error().message;
    client_ = std::move(c).value();
    client_->setPacketSink(&rec_);
    client_->start();
  }
  void useFakeServer() {
    auto l = stream::TcpListener::listen(
        loop_, *event::SocketAddress::parseIp("127.0.0.1", 0),
        [this](std::unique_ptr<stream::TcpStream> s) {
          auto c = std::make_unique<FakeConn>();
          c->s = std::move(s);
          c->s->setCallbacks(*c);
          fake_.push_back(std::move(c));
        });
    ASSERT_TRUE(l.ok());
    fakeListener_ = std::move(l).value();
    cfg_.server.address.port = fakeListener_->localAddress().port();
  }
  bool runUntil(const std::function<bool()>& pred, int timeout_ms = 3000) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
      if (pred()) return true;
      if (std::chrono::steady_clock::now() > deadline) return false;
      loop_.runOnce(false);
      if (pred()) return true;
      usleep(500);
    }
  }
  void runFor(int ms) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (std::chrono::steady_clock::now() < deadline) {
      loop_.runOnce(false);
      usleep(500);
    }
  }
  void send(uint16_t sport, const std::string& dst, uint16_t dport, const std::string& payload) {
    auto pkt = test::buildUdp(kAppIp, dst, sport, dport,
                              std::vector<uint8_t>(payload.begin(), payload.end()));
    client_->stack().input(pkt.data(), pkt.size());
  }
  void send6(uint16_t sport, const std::string& dst, uint16_t dport, const std::string& payload) {
    auto pkt = test::buildUdp("2001:db8:2::1", dst, sport, dport,
                              std::vector<uint8_t>(payload.begin(), payload.end()));
    client_->stack().input(pkt.data(), pkt.size());
  }
  void sendBytes(uint16_t sport, const std::string& dst, uint16_t dport,
                 const std::vector<uint8_t>& payload) {
    auto pkt = test::buildUdp(kAppIp, dst, sport, dport, payload);
    client_->stack().input(pkt.data(), pkt.size());
  }
  // Waits for `n` datagrams to app port `port` in total; returns them.
  std::vector<Datagram> waitFor(uint16_t port, size_t n, int timeout_ms = 3000) {
    std::vector<Datagram> got;
    runUntil(
        [&] {
          got.clear();
          for (const auto& d : rec_.udp) {
            if (d.dstPort == port) got.push_back(d);
          }
          return got.size() >= n;
        },
        timeout_ms);
    return got;
  }
  UdpSession* session(uint16_t port) {
    netstack::UdpEndpoint e;
    netstack::IpAddress::parse(kAppIp, e.addr);
    e.port = port;
    return client_->findUdpSession(e);
  }

  event::Loop loop_;
  config::ServerConfig scfg_;
  std::unique_ptr<server::Server> server_;
  std::unique_ptr<stream::TcpListener> fakeListener_;
  std::vector<std::unique_ptr<FakeConn>> fake_;
  std::unique_ptr<stream::TcpListener> echoListener_;
  std::vector<std::unique_ptr<EchoConn>> echo_;
  config::ClientConfig cfg_;
  std::unique_ptr<Client> client_;
  Recorder rec_;
};

std::string ep(const Datagram& d) { return d.src + ":" + std::to_string(d.srcPort); }

TEST_F(ClientUdpTest, SeparatedFullCone) {
  UdpReflector a("A:"), b("B:");
  startClient();
  send(5000, "127.0.0.1", a.port(), "one");
  send(5000, "127.0.0.1", b.port(), "two");
  auto got = waitFor(5000, 2);
  ASSERT_EQ(got.size(), 2u);
  std::set<std::string> seen;
  for (const auto& d : got) seen.insert(ep(d) + " " + d.payload);
  EXPECT_EQ(seen, (std::set<std::string>{"127.0.0.1:" + std::to_string(a.port()) + " A:one",
                                         "127.0.0.1:" + std::to_string(b.port()) + " B:two"}));
  // Both remotes saw the same server port (one NAT session).
  ASSERT_EQ(a.sourcePorts().size(), 1u);
  ASSERT_EQ(b.sourcePorts().size(), 1u);
  uint16_t mapped = a.sourcePorts()[0];
  EXPECT_EQ(mapped, b.sourcePorts()[0]);
  ASSERT_NE(session(5000), nullptr);
  EXPECT_EQ(session(5000)->channelCount(), 2u);

  // A stranger C reaches the app through the mapped port (FLAG 1)...
  UdpProbe c;
  ASSERT_TRUE(c.sendTo(mapped, "from C"));
  got = waitFor(5000, 3);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(ep(got[2]), "127.0.0.1:" + std::to_string(c.port()));
  EXPECT_EQ(got[2].payload, "from C");
  // ...and the app's answer opens a channel to C, from the same port.
  send(5000, "127.0.0.1", c.port(), "hi C");
  std::optional<std::string> back;
  ASSERT_TRUE(runUntil([&] {
    back = c.recv(0);
    return back.has_value();
  }));
  EXPECT_EQ(*back, "hi C");
  EXPECT_EQ(session(5000)->channelCount(), 3u);
  EXPECT_EQ(client_->stats().udpSessionsOpened, 1u);
}

// The default (v1 with the mux): one SimpleSocks UDP stream per app
// endpoint, one server socket for it; full cone without a connection per
// remote.
TEST_F(ClientUdpTest, MuxFullCone) {
  useMux();
  UdpReflector a("A:"), b("B:");
  startClient();
  send(5000, "127.0.0.1", a.port(), "one");
  send(5000, "127.0.0.1", b.port(), "two");
  auto got = waitFor(5000, 2);
  ASSERT_EQ(got.size(), 2u);
  std::set<std::string> seen;
  for (const auto& d : got) seen.insert(ep(d) + " " + d.payload);
  EXPECT_EQ(seen, (std::set<std::string>{"127.0.0.1:" + std::to_string(a.port()) + " A:one",
                                         "127.0.0.1:" + std::to_string(b.port()) + " B:two"}));
  // EIM: both remotes saw one server port.
  ASSERT_EQ(a.sourcePorts().size(), 1u);
  ASSERT_EQ(b.sourcePorts().size(), 1u);
  uint16_t mapped = a.sourcePorts()[0];
  EXPECT_EQ(mapped, b.sourcePorts()[0]);
  ASSERT_NE(session(5000), nullptr);
  EXPECT_EQ(session(5000)->channelCount(), 1u);
  ASSERT_NE(client_->mux(), nullptr);
  EXPECT_EQ(client_->mux()->connections(), 1u);
  // EIF: a stranger C reaches the app through the mapped port, from C...
  UdpProbe c;
  ASSERT_TRUE(c.sendTo(mapped, "from C"));
  got = waitFor(5000, 3);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(ep(got[2]), "127.0.0.1:" + std::to_string(c.port()));
  EXPECT_EQ(got[2].payload, "from C");
  // ...and the app's answer goes to C from the same port, on the same stream.
  send(5000, "127.0.0.1", c.port(), "hi C");
  std::optional<std::string> back;
  ASSERT_TRUE(runUntil([&] {
    back = c.recv(0);
    return back.has_value();
  }));
  EXPECT_EQ(*back, "hi C");
  EXPECT_EQ(session(5000)->channelCount(), 1u);
  // A second app endpoint is a second stream on the same connection.
  send(5001, "127.0.0.1", a.port(), "three");
  got = waitFor(5001, 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].payload, "A:three");
  EXPECT_EQ(client_->mux()->connections(), 1u);
  EXPECT_EQ(client_->mux()->streams(), 2u);
}

// One app socket, many remotes: every one answers, over one stream.
TEST_F(ClientUdpTest, MuxManyRemotesOneStream) {
  useMux();
  std::vector<std::unique_ptr<UdpReflector>> peers;
  for (int i = 0; i < 200; ++i) peers.push_back(std::make_unique<UdpReflector>("R:"));
  startClient();
  for (auto& p : peers) send(5000, "127.0.0.1", p->port(), "x");
  auto got = waitFor(5000, peers.size(), 10000);
  std::set<uint16_t> from;
  for (const auto& d : got) from.insert(d.srcPort);
  EXPECT_EQ(from.size(), peers.size());
  EXPECT_EQ(client_->mux()->connections(), 1u);
  EXPECT_EQ(client_->mux()->stats().streamsOpened, 1u);
  EXPECT_EQ(session(5000)->channelCount(), 1u);
}

TEST_F(ClientUdpTest, Ipv6AndIpv4MappedDestinations) {
  cfg_.tun.ipv6 = config::parseCidr("2001:db8:2::1/64");
  UdpReflector a("A:", true);
  startClient();
  send6(5010, "::1", a.port(), "six");
  auto got = waitFor(5010, 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].src, "::1");
  EXPECT_EQ(got[0].srcPort, a.port());
  EXPECT_EQ(got[0].payload, "A:six");
  // An IPv4-mapped destination travels as IPv4; the reply comes back from
  // the same mapped address.
  send6(5010, "::ffff:127.0.0.1", a.port(), "mapped");
  got = waitFor(5010, 2);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1].src, "::ffff:127.0.0.1");
  EXPECT_EQ(got[1].payload, "A:mapped");
  EXPECT_EQ(a.sources().back(), "127.0.0.1:" + std::to_string(a.sourcePorts().back()));
}

TEST_F(ClientUdpTest, ClassicEchoFromTwoDestinations) {
  cfg_.udp.mode = config::UdpMode::kClassic;
  UdpReflector a("A:"), b("B:");
  startClient();
  send(5001, "127.0.0.1", a.port(), "x");
  send(5001, "127.0.0.1", b.port(), "y");
  auto got = waitFor(5001, 2);
  ASSERT_EQ(got.size(), 2u);
  std::set<std::string> seen;
  for (const auto& d : got) seen.insert(ep(d) + " " + d.payload);
  EXPECT_EQ(seen, (std::set<std::string>{"127.0.0.1:" + std::to_string(a.port()) + " A:x",
                                         "127.0.0.1:" + std::to_string(b.port()) + " B:y"}));
  ASSERT_NE(session(5001), nullptr);
  EXPECT_EQ(session(5001)->channelCount(), 1u);
  EXPECT_EQ(a.sourcePorts().at(0), b.sourcePorts().at(0));
}

TEST_F(ClientUdpTest, V0Echo) {
  cfg_.server.version = 0;
  cfg_.server.connect_mode = config::ConnectMode::kImmediate;
  cfg_.udp.mode = config::UdpMode::kV0;
  UdpReflector a("A:");
  startClient();
  send(5002, "127.0.0.1", a.port(), "v0-1");
  send(5002, "127.0.0.1", a.port(), "");
  auto got = waitFor(5002, 2);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(ep(got[0]), "127.0.0.1:" + std::to_string(a.port()));
  EXPECT_EQ(got[0].payload, "A:v0-1");
  EXPECT_EQ(got[1].payload, "A:");
  send(5002, "127.0.0.1", a.port(), "v0-2");
  got = waitFor(5002, 3);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[2].payload, "A:v0-2");
}

TEST_F(ClientUdpTest, QueueOverflowWhileConnectingIsCounted) {
  cfg_.udp.queue_datagrams = 4;
  UdpReflector a;
  startClient();
  for (int i = 0; i < 10; ++i) send(5003, "127.0.0.1", a.port(), "d" + std::to_string(i));
  EXPECT_EQ(client_->stats().udpQueueOverflow, 6u);
  auto got = waitFor(5003, 4);
  EXPECT_EQ(got.size(), 4u);
  runFor(100);
  EXPECT_EQ(a.received(), 4u);
  EXPECT_EQ(waitFor(5003, 4, 0).size(), 4u);
  client_->stop();
  EXPECT_EQ(client_->stats().udpDrops, 6u);
}

TEST_F(ClientUdpTest, EvictionAndIdleTimeout) {
  cfg_.udp.max_sessions = 2;
  cfg_.udp.idle_timeout_ms = 300;
  UdpReflector a;
  startClient();
  send(6001, "127.0.0.1", a.port(), "1");
  send(6002, "127.0.0.1", a.port(), "2");
  ASSERT_EQ(waitFor(6002, 1).size(), 1u);
  send(6001, "127.0.0.1", a.port(), "1b");  // 6002 is now the least recent
  send(6003, "127.0.0.1", a.port(), "3");
  EXPECT_EQ(client_->udpSessionCount(), 2u);
  EXPECT_EQ(client_->stats().udpEvicted, 1u);
  EXPECT_EQ(session(6002), nullptr);
  EXPECT_NE(session(6001), nullptr);
  ASSERT_EQ(waitFor(6003, 1).size(), 1u);
  ASSERT_TRUE(runUntil([&] { return client_->udpSessionCount() == 0; }, 2000));
  EXPECT_EQ(client_->stats().udpSessionsClosed, 3u);
}

TEST_F(ClientUdpTest, UnassuredAndAssuredLifetimes) {
  cfg_.udp.idle_timeout_ms = 1000;
  cfg_.udp.new_session_timeout_ms = 200;
  UdpReflector a;
  startClient();
  // One exchange (a DNS lookup, an NTP query): new_session_timeout.
  send(7001, "127.0.0.1", a.port(), "once");
  ASSERT_EQ(waitFor(7001, 1).size(), 1u);
  // Several: the app sent again after the reply, so idle_timeout.
  send(7002, "127.0.0.1", a.port(), "q1");
  ASSERT_EQ(waitFor(7002, 1).size(), 1u);
  send(7002, "127.0.0.1", a.port(), "q2");
  ASSERT_EQ(waitFor(7002, 2).size(), 2u);
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_NE(session(7001), nullptr);
  EXPECT_FALSE(session(7001)->assured());
  ASSERT_NE(session(7002), nullptr);
  EXPECT_TRUE(session(7002)->assured());
  ASSERT_TRUE(runUntil([&] { return session(7001) == nullptr; }, 3000));
  auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  EXPECT_LT(ms, 800);  // not idle_timeout
  EXPECT_NE(session(7002), nullptr);
  runFor(300);  // both quiet for over new_session_timeout now
  EXPECT_NE(session(7002), nullptr);
  ASSERT_TRUE(runUntil([&] { return session(7002) == nullptr; }, 3000));
  ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
           .count();
  EXPECT_GE(ms, 900);
  EXPECT_EQ(client_->stats().udpSessionsClosed, 2u);
  EXPECT_EQ(client_->stats().udpEvicted, 0u);
}

TEST_F(ClientUdpTest, EvictionSparesAssuredSessions) {
  cfg_.udp.max_sessions = 2;
  UdpReflector a;
  startClient();
  send(6101, "127.0.0.1", a.port(), "1");
  ASSERT_EQ(waitFor(6101, 1).size(), 1u);
  send(6101, "127.0.0.1", a.port(), "1b");  // assured
  ASSERT_EQ(waitFor(6101, 2).size(), 2u);
  send(6102, "127.0.0.1", a.port(), "2");  // one exchange, more recent
  ASSERT_EQ(waitFor(6102, 1).size(), 1u);
  send(6103, "127.0.0.1", a.port(), "3");
  EXPECT_EQ(client_->stats().udpEvicted, 1u);
  EXPECT_EQ(session(6102), nullptr);  // the unassured one, though more recent
  EXPECT_NE(session(6101), nullptr);
  ASSERT_EQ(waitFor(6103, 1).size(), 1u);
  // With only assured sessions left, the least recently active one goes.
  send(6103, "127.0.0.1", a.port(), "3b");
  ASSERT_EQ(waitFor(6103, 2).size(), 2u);
  ASSERT_TRUE(session(6103) && session(6103)->assured());
  send(6104, "127.0.0.1", a.port(), "4");
  EXPECT_EQ(client_->stats().udpEvicted, 2u);
  EXPECT_EQ(session(6101), nullptr);
  EXPECT_NE(session(6103), nullptr);
  ASSERT_EQ(waitFor(6104, 1).size(), 1u);
}

TEST_F(ClientUdpTest, ChannelCapClosesLeastRecentChannel) {
  cfg_.udp.max_channels = 1;
  UdpReflector a("A:"), b("B:");
  startClient();
  send(6301, "127.0.0.1", a.port(), "x");
  ASSERT_EQ(waitFor(6301, 1).size(), 1u);
  send(6301, "127.0.0.1", b.port(), "y");  // closes A's channel
  ASSERT_EQ(waitFor(6301, 2).size(), 2u);
  EXPECT_EQ(client_->stats().udpChannelsEvicted, 1u);
  send(6301, "127.0.0.1", a.port(), "z");  // reopened, closing B's
  auto got = waitFor(6301, 3);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[2].payload, "A:z");
  EXPECT_EQ(client_->stats().udpChannelsEvicted, 2u);
  ASSERT_NE(session(6301), nullptr);
  EXPECT_EQ(session(6301)->channelCount(), 1u);
}

TEST_F(ClientUdpTest, SessionEvictedByTheServerRecovers) {
  scfg_.udp.max_sessions_per_user = 1;
  restartServer();
  UdpReflector a("A:");
  startClient();
  send(6201, "127.0.0.1", a.port(), "first");
  ASSERT_EQ(waitFor(6201, 1).size(), 1u);
  // Another app socket: the server evicts 6201's NAT session and ends its
  // channel; the client sees the end and drops the channel.
  send(6202, "127.0.0.1", a.port(), "second");
  ASSERT_EQ(waitFor(6202, 1).size(), 1u);
  EXPECT_EQ(server_->udpNat().stats().evicted_max_sessions_per_user, 1u);
  ASSERT_TRUE(runUntil([&] { return session(6201) && session(6201)->channelCount() == 0; }));
  // 6201's next datagram opens a fresh channel (and server session) and is
  // answered, not black-holed.
  send(6201, "127.0.0.1", a.port(), "again");
  auto got = waitFor(6201, 2);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1].payload, "A:again");
  EXPECT_EQ(server_->udpNat().stats().evicted_max_sessions_per_user, 2u);
  EXPECT_EQ(client_->stats().connectFailed, 0u);
  EXPECT_EQ(client_->stats().udpEvicted, 0u);
  EXPECT_EQ(client_->udpSessionCount(), 2u);
}

TEST_F(ClientUdpTest, HostileFramingClosesOneChannelOnly) {
  useFakeServer();
  startClient();
  send(5004, "127.0.0.1", 2222, "good");
  send(5004, "127.0.0.1", kHostile, "bad");
  auto got = waitFor(5004, 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(ep(got[0]), "127.0.0.1:2222");
  EXPECT_EQ(got[0].payload, "good");
  ASSERT_TRUE(runUntil([&] { return session(5004) && session(5004)->channelCount() == 1; }));
  send(5004, "127.0.0.1", 2222, "again");
  got = waitFor(5004, 2);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1].payload, "again");
  EXPECT_EQ(client_->udpSessionCount(), 1u);
}

TEST_F(ClientUdpTest, SlowServerSideDropsInsteadOfQueueing) {
  useFakeServer();
  startClient();
  send(5005, "127.0.0.1", kStall, "first");
  ASSERT_TRUE(runUntil([&] { return !fake_.empty(); }));
  runFor(20);
  // Far more than the socket buffers and the high watermark can hold.
  const std::string big(1400, 'x');
  for (int round = 0; round < 40 && client_->stats().udpDatagramsUp < 20000; ++round) {
    for (int i = 0; i < 500; ++i) send(5005, "127.0.0.1", kStall, big);
    runFor(5);
  }
  client_->stop();
  EXPECT_GT(client_->stats().udpDrops, 0u);
  EXPECT_EQ(client_->stats().udpQueueOverflow, 0u);  // all after the connect
}

TEST_F(ClientUdpTest, DnsHijackAndCache) {
  FakeDns dns;
  cfg_.dns.hijack = true;
  cfg_.dns.resolver = config::HostPort{"127.0.0.1", dns.port(), true};
  cfg_.dns.cache_size = 16;
  startClient();
  sendBytes(5353, "198.18.9.9", 53, test::dnsQuery(0x1111, "example.test"));
  auto got = waitFor(5353, 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(ep(got[0]), "198.18.9.9:53");  // from where the app asked
  ASSERT_GE(got[0].payload.size(), 12u);
  EXPECT_EQ(static_cast<uint8_t>(got[0].payload[0]), 0x11);
  EXPECT_EQ(static_cast<uint8_t>(got[0].payload[7]), 1);  // one answer
  EXPECT_EQ(dns.queries(), 1u);
  // Again, with another id and another resolver address: from the cache.
  sendBytes(5354, "198.18.9.10", 53, test::dnsQuery(0x2222, "example.test"));
  got = waitFor(5354, 1, 0);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(ep(got[0]), "198.18.9.10:53");
  EXPECT_EQ(static_cast<uint8_t>(got[0].payload[0]), 0x22);
  EXPECT_EQ(static_cast<uint8_t>(got[0].payload[1]), 0x22);
  EXPECT_EQ(client_->stats().dnsCacheHits, 1u);
  runFor(50);
  EXPECT_EQ(dns.queries(), 1u);
  // A malformed query is forwarded all the same (not cached).
  sendBytes(5353, "198.18.9.9", 53, {0x33, 0x33, 1, 0, 0, 1});
  ASSERT_TRUE(runUntil([&] { return dns.queries() == 2; }));
}

// Only answers to queries that were sent (same id and question) enter the
// cache: an unsolicited answer from the resolver's address poisons nothing.
TEST_F(ClientUdpTest, DnsCacheTakesOnlyAnswersToOurQueries) {
  FakeDns dns;
  dns.spoof = true;
  cfg_.dns.hijack = true;
  cfg_.dns.resolver = config::HostPort{"127.0.0.1", dns.port(), true};
  cfg_.dns.cache_size = 16;
  startClient();
  sendBytes(5353, "198.18.9.9", 53, test::dnsQuery(0x1111, "example.test"));
  auto got = waitFor(5353, 2);  // the answer and the spoofed one (the app judges)
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(client_->stats().dnsUnmatched, 1u);
  dns.spoof = false;
  // other.test was never asked: not in the cache, so it goes to the resolver.
  sendBytes(5354, "198.18.9.9", 53, test::dnsQuery(0x2222, "other.test"));
  ASSERT_TRUE(runUntil([&] { return dns.queries() == 2; }));
  EXPECT_EQ(client_->stats().dnsCacheHits, 0u);
  // example.test was asked and answered: cached.
  sendBytes(5355, "198.18.9.9", 53, test::dnsQuery(0x3333, "example.test"));
  got = waitFor(5355, 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(client_->stats().dnsCacheHits, 1u);
  EXPECT_EQ(dns.queries(), 2u);
}

TEST_F(ClientUdpTest, DnsHijackCarriesTcpPort53ToTheResolver) {
  auto l = stream::TcpListener::listen(loop_, *event::SocketAddress::parseIp("127.0.0.1", 0),
                                       [this](std::unique_ptr<stream::TcpStream> s) {
                                         auto c = std::make_unique<EchoConn>();
                                         c->s = std::move(s);
                                         c->s->setCallbacks(*c);
                                         echo_.push_back(std::move(c));
                                       });
  ASSERT_TRUE(l.ok());
  echoListener_ = std::move(l).value();
  cfg_.dns.hijack = true;
  cfg_.dns.resolver = config::HostPort{"127.0.0.1", echoListener_->localAddress().port(), true};
  startClient();
  test::TcpSegment seg;
  seg.src = kAppIp;
  seg.dst = "198.18.9.9";
  seg.srcPort = 40053;
  seg.dstPort = 53;
  seg.seq = 1000;
  seg.flags = test::kSyn;
  seg.mss = 1400;
  auto pkt = test::buildTcp(seg);
  client_->stack().input(pkt.data(), pkt.size());
  // Wait mode: the SYN-ACK comes only once the server reached the resolver.
  const test::ParsedPacket* synAck = nullptr;
  ASSERT_TRUE(runUntil([&] {
    for (const auto& p : rec_.tcp) {
      if ((p.flags & test::kSyn) != 0 && p.src == "198.18.9.9") synAck = &p;
    }
    return synAck != nullptr;
  }));
  uint32_t ack = synAck->seq + 1;
  seg.seq = 1001;
  seg.ack = ack;
  seg.flags = test::kAck;
  seg.mss = 0;
  pkt = test::buildTcp(seg);
  client_->stack().input(pkt.data(), pkt.size());
  seg.flags = test::kAck | test::kPsh;
  seg.payload = {0, 3, 'a', 'b', 'c'};
  pkt = test::buildTcp(seg);
  client_->stack().input(pkt.data(), pkt.size());
  ASSERT_TRUE(runUntil([&] {
    for (const auto& p : rec_.tcp) {
      if (p.payload.size() == 5 && p.payload[2] == 'a') return true;
    }
    return false;
  }));
  EXPECT_EQ(client_->stats().dnsTcpHijacked, 1u);
}

}  // namespace
}  // namespace vt::client
