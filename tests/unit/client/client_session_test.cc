// Client + TcpSession on a real loop, with a real NetStack driven by the
// packet builder (playing the app behind the TUN) and a real vless-server
// (plain TCP) dialling an echo target, all on 127.0.0.1 and one loop:
//
//   test (app) --IP packets--> Client/NetStack --VLESS--> Server --TCP--> Echo
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "client/client.h"
#include "client/tcp_session.h"
#include "client/tun_pump.h"
#include "config/client_config.h"
#include "core/log.h"
#include "event/loop.h"
#include "server/server.h"
#include "stream/tcp_stream.h"
#include "unit/netstack/packet_builder.h"

namespace vt::client {
namespace {

using test::kAck;
using test::kFin;
using test::kPsh;
using test::kRst;
using test::kSyn;

constexpr const char* kAppIp = "198.18.2.1";  // the kernel's side of the TUN
const config::UuidBytes kUuid = {0xa6, 0x84, 0x45, 0x5c, 0xb1, 0x4f, 0x11, 0xea,
                                 0xbf, 0x0d, 0x42, 0x01, 0x0a, 0xaa, 0x00, 0x03};

struct Recorder final : PacketSink {
  std::vector<test::ParsedPacket> packets;
  void writePacket(const netstack::PacketView& p) override {
    std::vector<uint8_t> bytes;
    for (int i = 0; i < p.iovCount; ++i) {
      const auto* b = static_cast<const uint8_t*>(p.iov[i].iov_base);
      bytes.insert(bytes.end(), b, b + p.iov[i].iov_len);
    }
    test::ParsedPacket pp;
    if (test::parsePacket(bytes, pp)) packets.push_back(std::move(pp));
  }
};

// Echo target: returns every byte and half-closes back on EOF.
struct EchoConn final : stream::StreamCallbacks {
  std::unique_ptr<stream::TcpStream> s;
  std::string got;
  void onData(BufferChain& data, bool end_stream) override {
    got += data.toString();
    s->write(data, end_stream);
  }
  void onClose(stream::CloseReason, const std::string&) override {}
};

// The app end of one TCP connection, sequence numbers tracked.
struct App {
  test::TcpSegment base;
  uint32_t seq = 1000;
  uint32_t ack = 0;
  std::string received;
  bool gotFin = false;
  bool gotRst = false;
  bool acking = true;  // false: a stalled app (no ACKs, window stays)
  size_t seen = 0;     // recorder packets already looked at
};

class ClientTest : public ::testing::Test {
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
    serverPort_ = server_->localAddresses().at(0).port();
    auto l = stream::TcpListener::listen(
        loop_, *event::SocketAddress::parseIp("127.0.0.1", 0),
        [this](std::unique_ptr<stream::TcpStream> s) {
          auto c = std::make_unique<EchoConn>();
          c->s = std::move(s);
          c->s->setCallbacks(*c);
          echo_.push_back(std::move(c));
        });
    ASSERT_TRUE(l.ok());
    echoListener_ = std::move(l).value();
    echoPort_ = echoListener_->localAddress().port();
    cfg_.server.address = config::HostPort{"127.0.0.1", serverPort_, true};
    cfg_.server.uuid = kUuid;
    cfg_.server.tls = false;
    cfg_.tun.ipv4 = config::parseCidr("198.18.2.1/30");
  }

  void TearDown() override {
    client_.reset();
    runFor(30);
    server_->stop();
    runUntil([this] { return server_->sessionCount() == 0; });
    if (oldServer_ != nullptr) runUntil([this] { return oldServer_->sessionCount() == 0; });
    oldServer_.reset();
    echo_.clear();
    echoListener_.reset();
    held_.clear();
    targets_.clear();
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

  bool runUntil(const std::function<bool()>& pred, int timeout_ms = 3000) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    // pred() is evaluated once per check: it may consume input.
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

  // Stops the server (its sockets close at once, without running the loop)
  // and starts a new one with `scfg_` on the same port.
  void restartServer() {
    server_->stop();
    oldServer_ = std::move(server_);  // freed once its sessions are gone
    config::ServerConfig cfg = scfg_;
    cfg.listen = {config::HostPort{"127.0.0.1", serverPort_, true}};
    server_ = std::make_unique<server::Server>(loop_, cfg, nullptr);
    Status st = server_->start();
    ASSERT_TRUE(st.ok()) << st.error().message;
  }

  // One whole flow to the echo: handshake, `msg` up and back, FIN both
  // ways, the session gone.
  void echoFlow(App& a, const std::string& msg) {
    ASSERT_TRUE(handshake(a));
    send(a, kAck | kPsh, msg);
    ASSERT_TRUE(runUntil([&] {
      absorb(a);
      return a.received == msg;
    }));
    send(a, kAck | kFin);
    ASSERT_TRUE(runUntil([&] {
      absorb(a);
      return a.gotFin && client_->sessionCount() == 0;
    }));
    EXPECT_FALSE(a.gotRst);
  }

  // A port that was just free: connecting to it is refused.
  uint16_t closedPort() {
    uint16_t port = 0;
    {
      auto l = stream::TcpListener::listen(loop_, *event::SocketAddress::parseIp("127.0.0.1", 0),
                                           [](std::unique_ptr<stream::TcpStream>) {});
      EXPECT_TRUE(l.ok());
      if (l.ok()) port = l.value()->localAddress().port();
    }
    runFor(10);
    return port;
  }

  App app(uint16_t sport, uint16_t dport) {
    App a;
    a.base.src = kAppIp;
    a.base.dst = "127.0.0.1";
    a.base.srcPort = sport;
    a.base.dstPort = dport;
    a.seen = rec_.packets.size();
    return a;
  }
  void send(App& a, uint8_t flags, const std::string& payload = "") {
    test::TcpSegment s = a.base;
    s.seq = a.seq;
    s.ack = (flags & kAck) != 0 ? a.ack : 0;
    s.flags = flags;
    if ((flags & kSyn) != 0) s.mss = 1400;
    s.payload.assign(payload.begin(), payload.end());
    auto pkt = test::buildTcp(s);
    client_->stack().input(pkt.data(), pkt.size());
    a.seq += static_cast<uint32_t>(payload.size()) + ((flags & (kSyn | kFin)) != 0 ? 1 : 0);
  }
  // Reads the packets for `a` seen since last time; ACKs data and FIN.
  void absorb(App& a) {
    while (a.acking && a.seen < rec_.packets.size()) {
      test::ParsedPacket p = rec_.packets[a.seen++];
      if (p.dstPort != a.base.srcPort || p.srcPort != a.base.dstPort) continue;
      if ((p.flags & kRst) != 0) {
        a.gotRst = true;
        continue;
      }
      if ((p.flags & kSyn) != 0) {
        a.ack = p.seq + 1;
        continue;
      }
      uint32_t len = static_cast<uint32_t>(p.payload.size()) + ((p.flags & kFin) != 0 ? 1 : 0);
      if (len == 0 || p.seq != a.ack) continue;
      a.received.append(p.payload.begin(), p.payload.end());
      a.ack += len;
      if ((p.flags & kFin) != 0) a.gotFin = true;
      send(a, kAck);
    }
  }
  bool sawSynAck(const App& a) const {
    for (size_t i = a.seen; i < rec_.packets.size(); ++i) {
      const auto& p = rec_.packets[i];
      if (p.dstPort == a.base.srcPort && p.flags == (kSyn | kAck)) return true;
    }
    return false;
  }
  // SYN, wait for SYN-ACK (or RST), ACK.
  bool handshake(App& a) {
    send(a, kSyn);
    bool ok = runUntil([&] {
      absorb(a);
      return a.ack != 0 || a.gotRst;
    });
    if (!ok || a.gotRst) return false;
    send(a, kAck);
    return true;
  }

  // A target on the test loop that runs `onAccept` for each connection.
  uint16_t target(std::function<void(stream::TcpStream&)> onAccept) {
    auto l = stream::TcpListener::listen(
        loop_, *event::SocketAddress::parseIp("127.0.0.1", 0),
        [this, onAccept](std::unique_ptr<stream::TcpStream> s) {
          auto c = std::make_unique<Held>();
          c->s = std::move(s);
          c->s->setCallbacks(*c);
          onAccept(*c->s);
          held_.push_back(std::move(c));
        });
    EXPECT_TRUE(l.ok());
    if (!l.ok()) return 0;
    uint16_t port = l.value()->localAddress().port();
    targets_.push_back(std::move(l).value());
    return port;
  }
  struct Held final : stream::StreamCallbacks {
    std::unique_ptr<stream::TcpStream> s;
    std::string got;
    bool eof = false;
    void onData(BufferChain& data, bool end_stream) override {
      got += data.toString();
      data.clear();
      eof = eof || end_stream;
    }
    void onClose(stream::CloseReason, const std::string&) override {}
  };

  event::Loop loop_;
  std::vector<std::unique_ptr<stream::TcpListener>> targets_;
  std::vector<std::unique_ptr<Held>> held_;
  config::ServerConfig scfg_;
  std::unique_ptr<server::Server> server_;
  std::unique_ptr<server::Server> oldServer_;  // restartServer(): still closing
  std::unique_ptr<stream::TcpListener> echoListener_;
  std::vector<std::unique_ptr<EchoConn>> echo_;
  uint16_t serverPort_ = 0;
  uint16_t echoPort_ = 0;
  config::ClientConfig cfg_;
  Recorder rec_;
  std::unique_ptr<Client> client_;
};

TEST_F(ClientTest, WaitModeHoldsSynUntilServerConnectedThenRelaysBothWaysAndFins) {
  startClient();
  App a = app(40000, echoPort_);
  send(a, kSyn);
  EXPECT_FALSE(sawSynAck(a)) << "SYN-ACK before the server connected";
  EXPECT_EQ(client_->sessionCount(), 1u);
  ASSERT_TRUE(runUntil([&] { return sawSynAck(a); }));
  // The server had dialled the echo target before the SYN-ACK.
  EXPECT_GE(server_->sessionCount(), 1u);
  absorb(a);
  send(a, kAck);
  send(a, kAck | kPsh, "hello");
  ASSERT_TRUE(runUntil([&] {
    absorb(a);
    return a.received == "hello";
  }));
  send(a, kAck | kPsh, " world");
  ASSERT_TRUE(runUntil([&] {
    absorb(a);
    return a.received == "hello world";
  }));
  // App FIN -> server -> echo; the echo's FIN comes back to the app.
  send(a, kAck | kFin);
  ASSERT_TRUE(runUntil([&] {
    absorb(a);
    return a.gotFin;
  }));
  EXPECT_FALSE(a.gotRst);
  ASSERT_TRUE(runUntil([&] { return client_->sessionCount() == 0; }));
  EXPECT_EQ(client_->stats().bytesUp, 11u);
  EXPECT_EQ(client_->stats().bytesDown, 11u);
  ASSERT_EQ(echo_.size(), 1u);
  EXPECT_EQ(echo_[0]->got, "hello world");
}

TEST_F(ClientTest, ServerNameIsResolvedWithoutBlocking) {
  cfg_.server.address = config::HostPort{"localhost", serverPort_, false};
  startClient();
  App a = app(40005, echoPort_);
  send(a, kSyn);  // waits for the lookup, then the dial, then want_ip
  ASSERT_TRUE(runUntil([&] { return sawSynAck(a); }));
  absorb(a);
  send(a, kAck);
  send(a, kAck | kPsh, "named");
  ASSERT_TRUE(runUntil([&] {
    absorb(a);
    return a.received == "named";
  }));
}

TEST_F(ClientTest, WaitModeDialToClosedPortResetsApp) {
  uint16_t closed = closedPort();  // the server's dial is refused
  startClient();
  App a = app(40001, closed);
  send(a, kSyn);
  ASSERT_TRUE(runUntil([&] {
    absorb(a);
    return a.gotRst;
  }));
  EXPECT_EQ(a.ack, 0u) << "the app saw a SYN-ACK for a dead destination";
  EXPECT_EQ(client_->sessionCount(), 0u);
  EXPECT_EQ(client_->stats().connectFailed, 1u);
}

TEST_F(ClientTest, ImmediateModeV0AnswersAtOnceAndRelays) {
  cfg_.server.version = 0;
  cfg_.server.connect_mode = config::ConnectMode::kImmediate;
  startClient();
  App a = app(40002, echoPort_);
  send(a, kSyn);
  EXPECT_TRUE(sawSynAck(a)) << "immediate mode answers the SYN at once";
  absorb(a);
  send(a, kAck);
  send(a, kAck | kPsh, "ping");
  ASSERT_TRUE(runUntil([&] {
    absorb(a);
    return a.received == "ping";
  }));
  send(a, kAck | kFin);
  ASSERT_TRUE(runUntil([&] {
    absorb(a);
    return a.gotFin && client_->sessionCount() == 0;
  }));
}

TEST_F(ClientTest, ImmediateModeDeadServerResetsApp) {
  cfg_.server.version = 0;
  cfg_.server.connect_mode = config::ConnectMode::kImmediate;
  cfg_.server.address.port = closedPort();  // no server at all
  startClient();
  App a = app(40003, echoPort_);
  ASSERT_TRUE(handshake(a));  // answered before the dial
  send(a, kAck | kPsh, "x");
  ASSERT_TRUE(runUntil([&] {
    absorb(a);
    return a.gotRst;
  }));
  EXPECT_EQ(client_->sessionCount(), 0u);
  EXPECT_EQ(client_->stats().connectFailed, 1u);
}

TEST_F(ClientTest, ImmediateModeV0DeadDestinationResetsApp) {
  cfg_.server.version = 0;
  cfg_.server.connect_mode = config::ConnectMode::kImmediate;
  startClient();
  App a = app(40006, closedPort());
  ASSERT_TRUE(handshake(a));
  send(a, kAck | kPsh, "GET /");
  ASSERT_TRUE(runUntil([&] {
    absorb(a);
    return a.gotRst;
  }));
  EXPECT_EQ(client_->sessionCount(), 0u);
}

struct Silent final : stream::StreamCallbacks {
  void onData(BufferChain& data, bool) override { data.clear(); }
  void onClose(stream::CloseReason, const std::string&) override {}
};

TEST_F(ClientTest, WaitModeSilentServerHitsConnectTimeout) {
  // Accepts TCP and never answers: want_ip never comes.
  Silent silent;
  std::vector<std::unique_ptr<stream::TcpStream>> held;
  auto l = stream::TcpListener::listen(loop_, *event::SocketAddress::parseIp("127.0.0.1", 0),
                                       [&](std::unique_ptr<stream::TcpStream> s) {
                                         s->setCallbacks(silent);
                                         held.push_back(std::move(s));
                                       });
  ASSERT_TRUE(l.ok());
  cfg_.server.address.port = l.value()->localAddress().port();
  cfg_.limits.connect_timeout_ms = 200;
  startClient();
  App a = app(40004, echoPort_);
  send(a, kSyn);
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(runUntil([&] {
    absorb(a);
    return a.gotRst;
  }));
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                   t0)
                .count();
  EXPECT_GE(ms, 150);
  EXPECT_EQ(a.ack, 0u);
  EXPECT_EQ(client_->sessionCount(), 0u);
  client_.reset();
  held.clear();
}

TEST_F(ClientTest, EvictsLeastRecentlyActiveAtMaxFlows) {
  cfg_.limits.max_flows = 2;
  startClient();
  App a = app(40010, echoPort_), b = app(40011, echoPort_), c = app(40012, echoPort_);
  ASSERT_TRUE(handshake(a));
  ASSERT_TRUE(handshake(b));
  // Activity on a makes b the least recently active.
  send(a, kAck | kPsh, "a");
  ASSERT_TRUE(runUntil([&] {
    absorb(a);
    return a.received == "a";
  }));
  c.seen = rec_.packets.size();
  b.seen = rec_.packets.size();
  ASSERT_TRUE(handshake(c));
  ASSERT_TRUE(runUntil([&] {
    absorb(b);
    return b.gotRst;
  }));
  EXPECT_EQ(client_->stats().evicted, 1u);
  EXPECT_EQ(client_->sessionCount(), 2u);
  absorb(a);
  EXPECT_FALSE(a.gotRst);
  send(c, kAck | kPsh, "c");
  ASSERT_TRUE(runUntil([&] {
    absorb(c);
    return c.received == "c";
  }));
}

TEST_F(ClientTest, IdleTimeoutResetsApp) {
  cfg_.limits.idle_timeout_ms = 200;
  startClient();
  App a = app(40020, echoPort_);
  ASSERT_TRUE(handshake(a));
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(runUntil([&] {
    absorb(a);
    return a.gotRst;
  }));
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                   t0)
                .count();
  EXPECT_GE(ms, 150);
  EXPECT_EQ(client_->sessionCount(), 0u);
}

TEST_F(ClientTest, FlowToTheServerItselfIsRefused) {
  startClient();
  App a = app(40030, serverPort_);
  send(a, kSyn);
  absorb(a);
  EXPECT_TRUE(a.gotRst);
  EXPECT_EQ(client_->stats().loopsRefused, 1u);
  EXPECT_EQ(client_->sessionCount(), 0u);
}

TEST_F(ClientTest, LargeTransferBothWaysWithBackpressure) {
  startClient();
  App a = app(40040, echoPort_);
  ASSERT_TRUE(handshake(a));
  // 200 KiB up in MSS-sized segments, echoed down; the app acks as it goes
  // and never sends past lwIP's advertised window.
  std::string sent;
  const size_t total = 200 * 1024;
  uint32_t wnd_right = 0;  // seq limit from the last window we saw
  size_t idx = 0;
  ASSERT_TRUE(runUntil(
      [&] {
        // Window from the latest packet for us.
        for (size_t i = idx; i < rec_.packets.size(); ++i) {
          const auto& p = rec_.packets[i];
          if (p.dstPort == a.base.srcPort && (p.flags & kAck) != 0) {
            wnd_right = p.ack + p.window;
          }
        }
        idx = rec_.packets.size();
        absorb(a);
        while (sent.size() < total && static_cast<int32_t>(wnd_right - (a.seq + 1400)) >= 0) {
          std::string chunk(1400, static_cast<char>('a' + (sent.size() / 1400) % 26));
          send(a, kAck | kPsh, chunk);
          sent += chunk;
        }
        return a.received.size() >= total;
      },
      10000));
  EXPECT_EQ(a.received, sent);
}

// A write the "TUN" refuses with EAGAIN is not lost: it waits in the
// backlog with everything after it and goes out in order once writable.
TEST_F(ClientTest, TunPumpBacklogsWritesOnEagainInOrder) {
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0, fds), 0);
  startClient();
  TunPump pump(loop_, fds[0], client_->stack(), 1500);
  ASSERT_TRUE(pump.start().ok());
  const uint8_t filler[64] = {};
  size_t fill = 0;
  while (::send(fds[0], filler, sizeof filler, 0) > 0) ++fill;
  ASSERT_TRUE(errno == EAGAIN || errno == EWOULDBLOCK);
  for (char c : std::string("ABC")) {
    uint8_t byte = static_cast<uint8_t>(c);
    iovec iov{&byte, 1};
    pump.writePacket(netstack::PacketView{&iov, 1, 1});
  }
  EXPECT_EQ(pump.stats().writeQueued, 3u);
  EXPECT_EQ(pump.stats().writeDropped, 0u);
  std::string got;
  ASSERT_TRUE(runUntil([&] {
    uint8_t buf[128];
    ssize_t n;
    while ((n = ::recv(fds[1], buf, sizeof buf, 0)) > 0) {
      if (n == 1) got.push_back(static_cast<char>(buf[0]));
    }
    return got.size() == 3;
  }));
  EXPECT_EQ(got, "ABC");
  EXPECT_EQ(pump.stats().packetsOut, 3u);
  pump.stop();
  ::close(fds[0]);
  ::close(fds[1]);
}

// TunPump + FdWatcher over a datagram socketpair standing in for the TUN
// fd (one read = one packet, like IFF_TUN | IFF_NO_PI).
TEST_F(ClientTest, TunPumpCarriesPacketsBothWays) {
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0, fds), 0);
  startClient();
  TunPump pump(loop_, fds[0], client_->stack(), 1500);
  client_->setPacketSink(&pump);
  ASSERT_TRUE(pump.start().ok());
  // The "kernel" side: our packets in, lwIP's out.
  auto kernelSend = [&](const App& a, uint8_t flags, uint32_t seq, uint32_t ack,
                        const std::string& payload) {
    test::TcpSegment sg = a.base;
    sg.seq = seq;
    sg.ack = ack;
    sg.flags = flags;
    sg.payload.assign(payload.begin(), payload.end());
    auto pkt = test::buildTcp(sg);
    ASSERT_EQ(::send(fds[1], pkt.data(), pkt.size(), 0), static_cast<ssize_t>(pkt.size()));
  };
  auto kernelRecv = [&](test::ParsedPacket& out) {
    uint8_t buf[2048];
    return runUntil([&] {
      ssize_t n = ::recv(fds[1], buf, sizeof(buf), 0);
      return n > 0 && test::parsePacket(buf, static_cast<size_t>(n), out);
    });
  };
  App a = app(40080, echoPort_);
  kernelSend(a, kSyn, 1000, 0, "");
  test::ParsedPacket p;
  ASSERT_TRUE(kernelRecv(p)) << pump.stats().packetsIn << " in, " << pump.stats().packetsOut
                              << " out, " << pump.stats().writeDropped << " dropped, "
                              << client_->stack().stats().synHeld << " held";
  ASSERT_EQ(p.flags, kSyn | kAck);
  uint32_t ack = p.seq + 1;
  kernelSend(a, kAck, 1001, ack, "");
  kernelSend(a, kAck | kPsh, 1001, ack, "through the pump");
  std::string got;
  while (got.size() < 16) {
    ASSERT_TRUE(kernelRecv(p));
    if (p.seq == ack && !p.payload.empty()) {
      got.append(p.payload.begin(), p.payload.end());
      ack += static_cast<uint32_t>(p.payload.size());
      kernelSend(a, kAck, 1017, ack, "");
    }
  }
  EXPECT_EQ(got, "through the pump");
  EXPECT_GE(pump.stats().packetsIn, 3u);  // SYN, ACK, data (the last ACK may still wait)
  EXPECT_GE(pump.stats().packetsOut, 2u);
  client_->setPacketSink(nullptr);
  pump.stop();
  client_.reset();
  ::close(fds[0]);
  ::close(fds[1]);
}

// With TUN offload (IFF_VNET_HDR) every read and write carries a 10-byte
// virtio_net_hdr: a TSO segment of several MSS with a partial checksum goes
// into lwIP whole, a GSO type never offered is dropped and counted, and
// lwIP's answer goes out in GSO segments of several MSS whose checksum the
// kernel completes, its handshake behind zeroed headers.
TEST_F(ClientTest, TunPumpVnetHeaderTakesTsoSegments) {
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0, fds), 0);
  startClient();
  TunPump pump(loop_, fds[0], client_->stack(), 1500, /*vnetHeader=*/true);
  client_->stack().setGsoOutput(true);
  client_->setPacketSink(&pump);
  ASSERT_TRUE(pump.start().ok());
  // flags, gso_type, hdr_len, gso_size, csum_start, csum_offset (host order)
  auto header = [](uint8_t flags, uint8_t gso, uint16_t gsoSize, uint16_t csumStart,
                   uint16_t csumOffset) {
    std::vector<uint8_t> h(TunPump::kVnetHeaderBytes, 0);
    h[0] = flags;
    h[1] = gso;
    std::memcpy(&h[4], &gsoSize, 2);
    std::memcpy(&h[6], &csumStart, 2);
    std::memcpy(&h[8], &csumOffset, 2);
    return h;
  };
  auto kernelSend = [&](const App& a, uint8_t flags, uint32_t seq, uint32_t ack,
                        const std::string& payload, std::vector<uint8_t> hdr) {
    test::TcpSegment sg = a.base;
    sg.seq = seq;
    sg.ack = ack;
    sg.flags = flags;
    sg.payload.assign(payload.begin(), payload.end());
    auto pkt = test::buildTcp(sg);
    if (hdr[0] & 1) {  // NEEDS_CSUM: the kernel leaves a partial sum; make it wrong
      pkt[20 + 16] ^= 0x5a;
    }
    hdr.insert(hdr.end(), pkt.begin(), pkt.end());
    ASSERT_EQ(::send(fds[1], hdr.data(), hdr.size(), 0), static_cast<ssize_t>(hdr.size()));
  };
  // What the kernel does with our writes: a zero header is a plain packet;
  // a GSO one (TCPV4, NEEDS_CSUM at the TCP checksum) gets its checksum
  // completed from the pseudo-header sum we left, which parsePacket then
  // verifies over the whole segment.
  size_t gsoSeen = 0;
  std::string headerErrors;
  auto kernelRecv = [&](test::ParsedPacket& out) {
    std::vector<uint8_t> buf(70000);
    return runUntil([&] {
      ssize_t n = ::recv(fds[1], buf.data(), buf.size(), 0);
      const size_t hb = TunPump::kVnetHeaderBytes;
      if (n <= static_cast<ssize_t>(hb)) return false;
      uint8_t* pkt = buf.data() + hb;
      const size_t len = static_cast<size_t>(n) - hb;
      uint16_t f[4];
      std::memcpy(f, buf.data() + 2, sizeof f);  // hdr_len, gso_size, csum_start, csum_offset
      if (buf[0] == 0 && buf[1] == 0 && f[0] == 0 && f[1] == 0 && f[2] == 0 && f[3] == 0) {
        return test::parsePacket(pkt, len, out);
      }
      if (buf[0] != 1 || buf[1] != 1 || f[0] != 40 || f[1] != 536 || f[2] != 20 || f[3] != 16 ||
          len <= 40 + 536) {
        headerErrors += "bad vnet header; ";
        return false;
      }
      ++gsoSeen;
      return TunPump::completeChecksum(pkt, len, f[2], f[3]) && test::parsePacket(pkt, len, out);
    });
  };
  const auto plain = header(0, 0, 0, 0, 0);
  App a = app(40090, echoPort_);
  kernelSend(a, kSyn, 1000, 0, "", plain);
  test::ParsedPacket p;
  ASSERT_TRUE(kernelRecv(p)) << pump.stats().packetsIn << " in, " << pump.stats().offloadDropped
                              << " refused";
  ASSERT_EQ(p.flags, kSyn | kAck);
  uint32_t ack = p.seq + 1;
  kernelSend(a, kAck, 1001, ack, "", plain);
  // A UDP GSO header (type 3) was never offered: dropped, counted.
  kernelSend(a, kAck | kPsh, 1001, ack, "never", header(0, 3, 1400, 0, 0));
  // One 12 KiB TSO segment (gso TCPV4, MSS 536) with a partial checksum.
  std::string big(12 * 1024, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + i % 26);
  kernelSend(a, kAck | kPsh, 1001, ack, big, header(1, 1, 536, 20, 16));
  std::string got;
  while (got.size() < big.size()) {
    ASSERT_TRUE(kernelRecv(p)) << got.size() << " of " << big.size() << " echoed; " << gsoSeen
                               << " GSO segments seen; " << headerErrors;
    if (p.seq == ack && !p.payload.empty()) {
      got.append(p.payload.begin(), p.payload.end());
      ack += static_cast<uint32_t>(p.payload.size());
      kernelSend(a, kAck, 1001 + static_cast<uint32_t>(big.size()), ack, "", plain);
    }
  }
  EXPECT_EQ(got, big);
  EXPECT_EQ(pump.stats().gsoIn, 1u);
  EXPECT_EQ(pump.stats().offloadDropped, 1u);
  // The echo went back in segments of several of the app's MSS (536: its
  // SYN had no MSS option), each marked for GSO.
  EXPECT_EQ(headerErrors, "");
  EXPECT_GE(gsoSeen, 1u);
  EXPECT_EQ(pump.stats().gsoOut, gsoSeen);
  client_->setPacketSink(nullptr);
  pump.stop();
  client_.reset();
  ::close(fds[0]);
  ::close(fds[1]);
}

// A partial checksum of a protocol that may leave raw (CmdIP) is completed:
// an ICMP echo whose checksum field held 0 (ICMP has no pseudo-header)
// comes out with the checksum a full computation gives.
TEST(TunPumpChecksum, CompletesPartialChecksum) {
  auto pkt = test::buildEcho("198.18.0.1", "198.18.1.1", 7, 9);
  ASSERT_GE(pkt.size(), 28u);
  const uint8_t want0 = pkt[22], want1 = pkt[23];
  pkt[22] = pkt[23] = 0;
  EXPECT_TRUE(TunPump::completeChecksum(pkt.data(), pkt.size(), 20, 2));
  EXPECT_EQ(pkt[22], want0);
  EXPECT_EQ(pkt[23], want1);
  // The field past the end, or the start beyond the packet: refused.
  EXPECT_FALSE(TunPump::completeChecksum(pkt.data(), pkt.size(), 20, pkt.size() - 21));
  EXPECT_FALSE(TunPump::completeChecksum(pkt.data(), pkt.size(), pkt.size(), 0));
}

TEST_F(ClientTest, TargetClosesFirstThenAppFinishes) {
  uint16_t port = target([](stream::TcpStream& s) {
    BufferChain bye;
    bye.append(std::string("bye"));
    s.write(bye, true);
  });
  startClient();
  App a = app(40050, port);
  ASSERT_TRUE(handshake(a));
  ASSERT_TRUE(runUntil([&] {
    absorb(a);
    return a.gotFin;
  }));
  EXPECT_EQ(a.received, "bye");
  EXPECT_EQ(client_->sessionCount(), 1u);  // the app may still send
  send(a, kAck | kPsh, "late");
  send(a, kAck | kFin);
  ASSERT_TRUE(runUntil([&] { return client_->sessionCount() == 0; }));
  ASSERT_TRUE(runUntil([&] { return !held_.empty() && held_[0]->eof; }));
  EXPECT_EQ(held_[0]->got, "late");
  absorb(a);
  EXPECT_FALSE(a.gotRst);
}

TEST_F(ClientTest, DrainTimeoutWhenTheOtherSideNeverFinishes) {
  uint16_t port = target([](stream::TcpStream&) {});  // reads, never answers or closes
  cfg_.limits.drain_timeout_ms = 200;
  startClient();
  App a = app(40060, port);
  ASSERT_TRUE(handshake(a));
  send(a, kAck | kFin);
  ASSERT_TRUE(runUntil([&] {
    absorb(a);
    return a.gotRst;
  }));
  EXPECT_EQ(client_->sessionCount(), 0u);
}

TEST_F(ClientTest, StalledAppStopsReadingTheServer) {
  constexpr size_t kTotal = 4 * 1024 * 1024;
  uint16_t port = target([](stream::TcpStream& s) {
    BufferChain big;
    big.append(std::string(kTotal, 'z'));
    s.write(big, true);
  });
  startClient();
  App a = app(40070, port);
  ASSERT_TRUE(handshake(a));
  a.acking = false;
  runFor(300);
  // lwIP's send buffer (64 KiB) plus one held read, not the 4 MiB sent.
  uint64_t taken = client_->stats().bytesDown;
  EXPECT_LT(taken, 1024u * 1024u) << "the relay absorbed the server's data";
  EXPECT_GT(taken, 0u);
  a.acking = true;
  a.seen = 0;
  ASSERT_TRUE(runUntil(
      [&] {
        absorb(a);
        return a.gotFin;
      },
      20000));
  EXPECT_EQ(a.received.size(), kTotal);
}

// ---- mux (on by default for a v1 server) ----------------------------------

// A warm Mux connection is up before the first flow, every flow is a stream
// on it, and a connection the server drops is replaced in the background.
TEST_F(ClientTest, MuxKeepsAWarmConnection) {
  startClient();
  ASSERT_NE(client_->mux(), nullptr);
  ASSERT_TRUE(runUntil([&] { return server_->sessionCount() == 1; }));  // dialled ahead
  EXPECT_EQ(client_->mux()->stats().warmDials, 1u);
  App a = app(40080, echoPort_);
  ASSERT_NO_FATAL_FAILURE(echoFlow(a, "first"));
  App b = app(40081, echoPort_);
  ASSERT_NO_FATAL_FAILURE(echoFlow(b, "second"));
  EXPECT_EQ(client_->mux()->stats().connectionsOpened, 1u);
  EXPECT_EQ(client_->mux()->stats().streamsOpened, 2u);
  // The server restarts: the connection is lost, a new warm one follows.
  restartServer();
  ASSERT_TRUE(runUntil([&] { return client_->mux()->stats().connectionsLost == 1; }));
  ASSERT_TRUE(runUntil([&] { return server_->sessionCount() == 1; }));
  EXPECT_EQ(client_->mux()->stats().warmDials, 2u);
  App c = app(40082, echoPort_);
  ASSERT_NO_FATAL_FAILURE(echoFlow(c, "third"));
}

// mux.max_streams per connection: past it the next flow goes on another
// connection, dialled ahead once the busiest one passed 3/4 of the cap.
TEST_F(ClientTest, MuxStreamCapOpensAnotherConnection) {
  cfg_.mux.max_streams = 2;
  startClient();
  ASSERT_TRUE(runUntil([&] { return server_->sessionCount() == 1; }));  // the warm one
  std::vector<App> apps;
  for (uint16_t i = 0; i < 3; ++i) apps.push_back(app(40070 + i, echoPort_));
  for (auto& a : apps) {
    ASSERT_TRUE(handshake(a));
    send(a, kAck | kPsh, "hi");
  }
  ASSERT_TRUE(runUntil([&] { return client_->mux()->streams() == 3; }));
  EXPECT_EQ(client_->mux()->connections(), 2u);
  EXPECT_EQ(client_->mux()->stats().connectionsOpened, 2u);
  EXPECT_EQ(client_->mux()->stats().maxStreams, 3u);
}

// ---- connection reuse (TLV 0x07; on by default for a v1 server) ----------

TEST_F(ClientTest, SequentialFlowsShareOneServerConnection) {
  cfg_.mux.enabled = false;  // reuse is for flows outside the mux
  startClient();
  ASSERT_NE(client_->pool(), nullptr);
  App a = app(40090, echoPort_);
  ASSERT_NO_FATAL_FAILURE(echoFlow(a, "first"));
  ASSERT_TRUE(runUntil([&] { return client_->pool()->idle() == 1; }));
  App b = app(40091, echoPort_);
  ASSERT_NO_FATAL_FAILURE(echoFlow(b, "second"));
  ASSERT_TRUE(runUntil([&] { return client_->pool()->idle() == 1; }));
  EXPECT_EQ(client_->pool()->stats().released, 2u);
  EXPECT_EQ(client_->pool()->stats().reused, 1u);
  EXPECT_EQ(server_->sessionCount(), 1u);  // one connection carried both flows
  ASSERT_EQ(echo_.size(), 2u);
  EXPECT_EQ(echo_[1]->got, "second");
}

TEST_F(ClientTest, PooledConnectionFoundDeadIsRetriedOnAFreshOne) {
  cfg_.mux.enabled = false;  // reuse is for flows outside the mux
  startClient();
  App a = app(40092, echoPort_);
  ASSERT_NO_FATAL_FAILURE(echoFlow(a, "first"));
  ASSERT_TRUE(runUntil([&] { return client_->pool()->idle() == 1; }));
  // The server goes away and comes back; nothing runs the loop in between,
  // so the pool has not seen the close when the next flow takes the
  // connection (the race of a server closing an idle connection just as
  // the client reuses it).
  ASSERT_NO_FATAL_FAILURE(restartServer());
  App b = app(40093, echoPort_);
  send(b, kSyn);
  EXPECT_EQ(client_->pool()->stats().reused, 1u);  // the dead one was taken
  ASSERT_TRUE(runUntil([&] {
    absorb(b);
    return b.ack != 0 || b.gotRst;
  }));
  ASSERT_FALSE(b.gotRst);
  send(b, kAck);
  send(b, kAck | kPsh, "still works");
  ASSERT_TRUE(runUntil([&] {
    absorb(b);
    return b.received == "still works";
  }));
  EXPECT_FALSE(b.gotRst);
  EXPECT_EQ(client_->stats().connectFailed, 0u);
}

TEST_F(ClientTest, PooledConnectionTheServerTimesOutIsDropped) {
  cfg_.mux.enabled = false;  // reuse is for flows outside the mux
  scfg_.reuse_idle_timeout_ms = 100;
  ASSERT_NO_FATAL_FAILURE(restartServer());
  startClient();
  App a = app(40094, echoPort_);
  ASSERT_NO_FATAL_FAILURE(echoFlow(a, "first"));
  // The server closes the idle connection; the pool sees it and drops it.
  ASSERT_TRUE(runUntil([&] { return client_->pool()->stats().serverClosed == 1; }));
  EXPECT_EQ(client_->pool()->idle(), 0u);
  App b = app(40095, echoPort_);
  ASSERT_NO_FATAL_FAILURE(echoFlow(b, "fresh"));
  EXPECT_EQ(client_->pool()->stats().reused, 0u);
}

TEST_F(ClientTest, DialFailureOnAPooledConnectionResetsTheAppOnce) {
  cfg_.mux.enabled = false;  // reuse is for flows outside the mux
  uint16_t closed = closedPort();
  startClient();
  App a = app(40096, echoPort_);
  ASSERT_NO_FATAL_FAILURE(echoFlow(a, "first"));
  ASSERT_TRUE(runUntil([&] { return client_->pool()->idle() == 1; }));
  // The pooled connection ends (the dial failed), so does the fresh retry.
  App b = app(40097, closed);
  send(b, kSyn);
  ASSERT_TRUE(runUntil([&] {
    absorb(b);
    return b.gotRst;
  }));
  EXPECT_EQ(b.ack, 0u);
  EXPECT_EQ(client_->pool()->stats().reused, 1u);
  EXPECT_EQ(client_->stats().connectFailed, 1u);
  EXPECT_EQ(client_->sessionCount(), 0u);
}

}  // namespace
}  // namespace vt::client
