// IpTunnel (CmdIP on the client) against an in-process fake CmdIP server on
// a real loop: a plain TCP listener that parses the v1 request, checks CMD 5
// and echoes every framed packet back with source and destination swapped
// (checksums stay right: every sum that covers the addresses is
// commutative).
//
//   test --packets--> IpTunnel --VLESS v1 CMD 5 (TCP)--> FakeIpServer
//   test <--packets-- IpTunnel <--LEN(2) packet-------- FakeIpServer
//
// Then the whole client: NetStack -> Client::onOtherPacket -> IpTunnel ->
// fake server -> the client's packet sink (the TUN writer).
#include "client/ip_tunnel.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "client/client.h"
#include "codec/length_frame.h"
#include "codec/vless.h"
#include "config/client_config.h"
#include "event/loop.h"
#include "stream/tcp_stream.h"
#include "unit/netstack/packet_builder.h"

namespace vt::client {
namespace {

const codec::Uuid kUuid = {0xa6, 0x84, 0x45, 0x5c, 0xb1, 0x4f, 0x11, 0xea,
                           0xbf, 0x0d, 0x42, 0x01, 0x0a, 0xaa, 0x00, 0x03};
constexpr const char* kApp4 = "198.18.0.2";
constexpr const char* kTun4 = "198.18.0.1";

void swapAddresses(std::vector<uint8_t>& p) {
  const bool v6 = (p[0] >> 4) == 6;
  const size_t off = v6 ? 8 : 12, n = v6 ? 16 : 4;
  for (size_t i = 0; i < n; ++i) std::swap(p[off + i], p[off + n + i]);
}

// One accepted connection of the fake server.
struct FakeConn final : stream::StreamCallbacks {
  struct Server* server = nullptr;
  std::unique_ptr<stream::TcpStream> s;
  BufferChain rx;
  bool headerDone = false;
  bool closed = false;
  size_t units = 0;
  void onData(BufferChain& data, bool end_stream) override;
  void onClose(stream::CloseReason, const std::string&) override { closed = true; }
  void close() {
    if (closed) return;
    closed = true;
    s->close(stream::CloseReason::kLocalClose);
  }
};

struct Server {
  enum class Mode { kEcho, kCloseAtOnce, kCloseAfterOne, kSilent };
  Mode mode = Mode::kEcho;
  std::vector<std::unique_ptr<FakeConn>> conns;
  std::vector<codec::Request> requests;
  std::vector<std::vector<uint8_t>> received;  // packets, in order
  std::string badRequest;
  std::unique_ptr<stream::TcpListener> listener;
  // Bytes to send before the echo of the next unit (hostile tests).
  std::vector<uint8_t> inject;

  uint16_t start(event::Loop& loop) {
    auto l = stream::TcpListener::listen(
        loop, *event::SocketAddress::parseIp("127.0.0.1", 0),
        [this](std::unique_ptr<stream::TcpStream> s) {
          auto c = std::make_unique<FakeConn>();
          c->server = this;
          c->s = std::move(s);
          c->s->setCallbacks(*c);
          FakeConn* raw = c.get();
          conns.push_back(std::move(c));
          if (mode == Mode::kCloseAtOnce) raw->close();
        });
    EXPECT_TRUE(l.ok());
    listener = std::move(l).value();
    return listener->localAddress().port();
  }
  size_t open() const {
    size_t n = 0;
    for (const auto& c : conns) n += c->closed ? 0 : 1;
    return n;
  }
};

void FakeConn::onData(BufferChain& data, bool end_stream) {
  rx.moveFrom(data);
  if (!headerDone) {
    codec::Request req;
    auto r = codec::decodeRequest(rx, req);
    if (r.status == codec::DecodeStatus::kNeedMore) return;
    if (r.status != codec::DecodeStatus::kDone || req.version != 1 ||
        req.command != codec::Command::kIp || req.target.has_value()) {
      server->badRequest = "not a v1 CMD 5 request without address";
      close();
      return;
    }
    server->requests.push_back(req);
    rx.drain(r.consumed);
    headerDone = true;
  }
  while (!closed) {
    auto r = codec::decodeIpPacket(rx);
    if (r.status != codec::DecodeStatus::kDone) break;
    std::vector<uint8_t> p(r.payload_size);
    rx.copyOut(r.payload_offset, p.data(), p.size());
    rx.drain(r.consumed);
    server->received.push_back(p);
    ++units;
    if (server->mode == Server::Mode::kSilent) continue;
    BufferChain out;
    if (!server->inject.empty()) {
      out.append(server->inject);
      server->inject.clear();
    }
    swapAddresses(p);
    codec::encodeLengthPacket(p.data(), p.size(), out);
    s->write(out, false);
    if (server->mode == Server::Mode::kCloseAfterOne) close();
  }
  if (end_stream) close();
}

class Fixture : public ::testing::Test {
 protected:
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
  event::Loop loop_;
  Server server_;
};

// The tunnel alone, with a host that dials the fake server over plain TCP.
class IpTunnelTest : public Fixture, public IpTunnelHost {
 protected:
  void TearDown() override {
    tunnel_.reset();
    server_.conns.clear();
    server_.listener.reset();
    runFor(10);
  }
  void make(IpTunnelOptions opt = {}) {
    port_ = server_.start(loop_);
    tunnel_ = std::make_unique<IpTunnel>(loop_, *this, opt);
  }
  std::unique_ptr<stream::VlessClientStream> openIpStream() override {
    ++opened_;
    if (noAddress_) return nullptr;
    codec::Request req;
    req.version = 1;
    req.uuid = kUuid;
    req.command = codec::Command::kIp;
    return stream::VlessClientStream::create(
        stream::TcpStream::create(loop_, *event::SocketAddress::parseIp("127.0.0.1", port_)),
        std::move(req));
  }
  void deliverIpPacket(const uint8_t* p, size_t n) override { delivered_.emplace_back(p, p + n); }
  void onIpDialFailed() override { ++dialFailed_; }

  bool send(const std::vector<uint8_t>& p) { return tunnel_->send(p.data(), p.size()); }
  static std::vector<uint8_t> echo(uint16_t seq, const char* dst = "198.19.9.9") {
    return test::buildEcho(kApp4, dst, 42, seq);
  }

  std::unique_ptr<IpTunnel> tunnel_;
  uint16_t port_ = 0;
  int opened_ = 0;
  int dialFailed_ = 0;
  bool noAddress_ = false;
  std::vector<std::vector<uint8_t>> delivered_;
};

TEST_F(IpTunnelTest, OpensOnFirstPacketQueuesWhileConnectingAndEchoes) {
  make();
  EXPECT_EQ(opened_, 0) << "nothing dialled before the first packet";
  for (uint16_t i = 1; i <= 3; ++i) EXPECT_TRUE(send(echo(i)));
  EXPECT_TRUE(tunnel_->connecting());
  EXPECT_EQ(tunnel_->queuedPackets(), 3u);
  EXPECT_EQ(opened_, 1);
  ASSERT_TRUE(runUntil([&] { return delivered_.size() == 3; }));
  ASSERT_EQ(server_.requests.size(), 1u) << server_.badRequest;
  EXPECT_EQ(server_.received.size(), 3u);
  EXPECT_EQ(server_.received[0], echo(1)) << "the packet, unchanged";
  test::ParsedPacket p;
  ASSERT_TRUE(test::parsePacket(delivered_[2], p));
  EXPECT_EQ(p.src, "198.19.9.9");
  EXPECT_EQ(p.dst, kApp4);
  EXPECT_TRUE(tunnel_->connected());
  EXPECT_EQ(tunnel_->queuedPackets(), 0u);
  // Connected: straight through, same connection.
  EXPECT_TRUE(send(echo(4)));
  EXPECT_TRUE(send(test::buildEcho("2001:db8::2", "2001:db8:9::9", 42, 5)));
  ASSERT_TRUE(runUntil([&] { return delivered_.size() == 5; }));
  ASSERT_TRUE(test::parsePacket(delivered_[4], p));
  EXPECT_EQ(p.dst, "2001:db8::2");
  const IpTunnelStats& st = tunnel_->stats();
  EXPECT_EQ(st.dials, 1u);
  EXPECT_EQ(st.reconnects, 0u);
  EXPECT_EQ(st.packetsUp, 5u);
  EXPECT_EQ(st.packetsDown, 5u);
  EXPECT_EQ(st.bytesUp, st.bytesDown);
  EXPECT_EQ(st.bytesUp, 3 * echo(1).size() + echo(4).size() +
                            test::buildEcho("2001:db8::2", "2001:db8:9::9", 42, 5).size());
  EXPECT_EQ(st.drops(), 0u);
  EXPECT_EQ(server_.conns.size(), 1u);
}

TEST_F(IpTunnelTest, QueueCapsDropAndCount) {
  IpTunnelOptions opt;
  opt.queuePackets = 4;
  make(opt);
  for (uint16_t i = 1; i <= 10; ++i) send(echo(i));
  EXPECT_EQ(tunnel_->queuedPackets(), 4u);
  EXPECT_EQ(tunnel_->stats().dropQueueFull, 6u);
  ASSERT_TRUE(runUntil([&] { return delivered_.size() == 4; }));
  runFor(20);
  EXPECT_EQ(delivered_.size(), 4u);
  EXPECT_EQ(server_.received.size(), 4u);
  tunnel_.reset();

  // The byte bound: two framed packets fit, the third does not.
  const size_t framed = echo(1).size() + 2;
  opt.queuePackets = 100;
  opt.queueBytes = 2 * framed + framed / 2;
  tunnel_ = std::make_unique<IpTunnel>(loop_, *this, opt);
  EXPECT_TRUE(send(echo(1)));
  EXPECT_TRUE(send(echo(2)));
  EXPECT_FALSE(send(echo(3)));
  EXPECT_EQ(tunnel_->queuedBytes(), 2 * framed);
  EXPECT_EQ(tunnel_->stats().dropQueueFull, 1u);
  // An unframeable packet is refused whatever the state.
  std::vector<uint8_t> huge(70000, 0x45);
  EXPECT_FALSE(send(huge));
  EXPECT_EQ(tunnel_->stats().dropTooBig, 1u);
  // stop() counts what was queued.
  tunnel_->stop();
  EXPECT_EQ(tunnel_->stats().dropStopped, 2u);
  EXPECT_FALSE(send(echo(4)));
  EXPECT_EQ(tunnel_->stats().dropStopped, 3u);
}

TEST_F(IpTunnelTest, ReopensAfterTheServerClosesWithoutBackoff) {
  make();
  server_.mode = Server::Mode::kCloseAfterOne;
  send(echo(1));
  ASSERT_TRUE(runUntil([&] { return delivered_.size() == 1; }));
  ASSERT_TRUE(runUntil([&] { return !tunnel_->connected(); }));
  EXPECT_EQ(tunnel_->stats().lost, 1u);
  EXPECT_EQ(tunnel_->backoffMs(), 0u) << "the server was reached: no wait";
  server_.mode = Server::Mode::kEcho;
  send(echo(2));
  EXPECT_EQ(opened_, 2) << "re-opened at once on the next packet";
  ASSERT_TRUE(runUntil([&] { return delivered_.size() == 2; }));
  EXPECT_EQ(tunnel_->stats().dials, 2u);
  EXPECT_EQ(tunnel_->stats().reconnects, 1u);
  EXPECT_EQ(server_.requests.size(), 2u);
  EXPECT_EQ(server_.conns.size(), 2u);
}

TEST_F(IpTunnelTest, FailuresBackOffAndTheQueueWaits) {
  make();
  server_.mode = Server::Mode::kCloseAtOnce;  // accepts, then closes: CmdIP refused
  send(echo(1));  // written on the connection, lost with it
  ASSERT_TRUE(runUntil([&] { return tunnel_->backoffMs() == IpTunnel::kFirstBackoffMs; }));
  EXPECT_EQ(opened_, 1);
  send(echo(2));
  EXPECT_EQ(tunnel_->queuedPackets(), 1u) << "the packet waits for the next dial";
  EXPECT_FALSE(tunnel_->connecting());
  EXPECT_EQ(opened_, 1) << "no dial during the wait";
  ASSERT_TRUE(runUntil([&] { return tunnel_->backoffMs() == 2 * IpTunnel::kFirstBackoffMs; }));
  EXPECT_EQ(opened_, 2) << "the second dial came after the wait";
  // The server comes back: the next dial, after 400 ms, delivers the
  // queued packet and the wait resets.
  server_.mode = Server::Mode::kEcho;
  const auto t0 = std::chrono::steady_clock::now();
  send(echo(3));
  EXPECT_EQ(tunnel_->queuedPackets(), 1u);
  ASSERT_TRUE(runUntil([&] { return delivered_.size() == 1; }, 3000));
  const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::steady_clock::now() - t0)
                          .count();
  EXPECT_GE(waited, 300) << "the third dial waited 400 ms";
  EXPECT_EQ(tunnel_->backoffMs(), 0u);
  EXPECT_EQ(tunnel_->stats().dials, 3u);
  EXPECT_EQ(tunnel_->stats().lost, 2u);
  EXPECT_EQ(server_.received.size(), 1u);
}

TEST_F(IpTunnelTest, DialFailuresAndNoAddressBackOff) {
  make();
  noAddress_ = true;
  send(echo(1));
  EXPECT_EQ(tunnel_->stats().connectFailed, 1u);
  EXPECT_EQ(tunnel_->backoffMs(), IpTunnel::kFirstBackoffMs);
  noAddress_ = false;
  server_.listener.reset();  // nobody listens: connection refused
  ASSERT_TRUE(runUntil([&] { return tunnel_->stats().connectFailed == 2; }));
  EXPECT_EQ(dialFailed_, 1);
  EXPECT_EQ(tunnel_->backoffMs(), 2 * IpTunnel::kFirstBackoffMs);
  // The cap on the wait.
  ASSERT_TRUE(runUntil([&] { return tunnel_->backoffMs() == IpTunnel::kMaxBackoffMs; }, 5000));
  EXPECT_EQ(tunnel_->queuedPackets(), 1u);
}

TEST_F(IpTunnelTest, BadPacketsAndBadUnitsFromTheServerAreDropped) {
  make();
  // A well-framed unit that is not a valid packet (IPv4 header checksum
  // wrong): dropped, counted, the connection stays.
  std::vector<uint8_t> bad = echo(9);
  bad[10] ^= 0xff;
  BufferChain framed;
  codec::encodeLengthPacket(bad.data(), bad.size(), framed);
  server_.inject = framed.toVector();
  send(echo(1));
  ASSERT_TRUE(runUntil([&] { return delivered_.size() == 1; }));
  EXPECT_EQ(tunnel_->stats().dropInvalidDown, 1u);
  EXPECT_TRUE(tunnel_->connected());
  // LEN 0, then a unit that is no IP packet (version 7), then one cut
  // short of an IPv4 header: each unit the codec calls Invalid still says
  // by its LEN where the next begins, so each is dropped and counted and
  // the connection stays (the reply behind them arrives).
  server_.inject = {0x00, 0x00, 0x00, 0x03, 0x70, 0x00, 0x00, 0x00, 0x04, 0x45, 0x00, 0x00, 0x04};
  send(echo(2));
  ASSERT_TRUE(runUntil([&] { return delivered_.size() == 2; }));
  EXPECT_EQ(tunnel_->stats().dropInvalidDown, 4u);
  EXPECT_EQ(tunnel_->stats().protocolErrors, 0u);
  EXPECT_TRUE(tunnel_->connected());
  EXPECT_EQ(tunnel_->stats().dials, 1u);
}

TEST_F(IpTunnelTest, CongestedConnectionDropsInsteadOfQueueing) {
  make();
  server_.mode = Server::Mode::kSilent;
  send(echo(1));
  ASSERT_TRUE(runUntil([&] { return tunnel_->connected(); }));
  // Big packets until the socket is above its high watermark: the fake
  // server reads, so the kernel buffers absorb some first.
  std::vector<uint8_t> big = test::buildEcho(kApp4, "198.19.9.9", 1, 1);
  big.resize(60000);
  big[2] = static_cast<uint8_t>(big.size() >> 8);
  big[3] = static_cast<uint8_t>(big.size());
  size_t sent = 0;
  for (int i = 0; i < 20000 && tunnel_->stats().dropCongested == 0; ++i) {
    if (send(big)) ++sent;
  }
  EXPECT_GT(tunnel_->stats().dropCongested, 0u);
  EXPECT_GT(sent, 0u);
}

// The whole client: ICMP from the app through NetStack, the tunnel and the
// fake server, back to the packet sink.
struct Recorder final : PacketSink {
  std::vector<std::vector<uint8_t>> packets;
  void writePacket(const netstack::PacketView& p) override {
    std::vector<uint8_t> bytes;
    for (int i = 0; i < p.iovCount; ++i) {
      const auto* b = static_cast<const uint8_t*>(p.iov[i].iov_base);
      bytes.insert(bytes.end(), b, b + p.iov[i].iov_len);
    }
    packets.push_back(std::move(bytes));
  }
};

class ClientIpTest : public Fixture {
 protected:
  void TearDown() override {
    client_.reset();
    server_.conns.clear();
    server_.listener.reset();
    runFor(10);
  }
  void startClient(const std::string& extra, int version = 1) {
    const uint16_t port = server_.start(loop_);
    std::string text = "[tun]\nipv4 = \"198.18.0.1/24\"\nipv6 = \"2001:db8::1/64\"\n"
                       "[server]\naddress = \"127.0.0.1:" + std::to_string(port) +
                       "\"\nuuid = \"a684455c-b14f-11ea-bf0d-42010aaa0003\"\ntls = false\n"
                       "version = " + std::to_string(version) + "\n" + extra;
    if (version == 1) text += "[mux]\nenabled = false\n";
    auto cfg = config::parseClientConfig(text, "t.toml", "");
    ASSERT_TRUE(cfg.ok()) << cfg.error().message;
    auto c = Client::create(loop_, cfg.value());
    ASSERT_TRUE(c.ok()) << c.error().message;
    client_ = std::move(c).value();
    client_->setPacketSink(&rec_);
    client_->start();
  }
  void input(const std::vector<uint8_t>& p) { client_->stack().input(p.data(), p.size()); }

  Recorder rec_;
  std::unique_ptr<Client> client_;
};

TEST_F(ClientIpTest, IcmpGoesThroughCmdIpAndComesBackToTheTun) {
  startClient("");
  ASSERT_NE(client_->ipTunnel(), nullptr);
  input(test::buildEcho(kApp4, "198.19.9.9", 7, 1));
  input(test::buildEcho("2001:db8::2", "2001:db8:9::9", 7, 2));
  ASSERT_TRUE(runUntil([&] { return rec_.packets.size() == 2; }));
  test::ParsedPacket p;
  ASSERT_TRUE(test::parsePacket(rec_.packets[0], p));
  EXPECT_EQ(p.src, "198.19.9.9");
  EXPECT_EQ(p.dst, kApp4);
  EXPECT_TRUE(p.checksumsOk);
  // Echo to the TUN's own address: lwIP answers, the tunnel never sees it.
  input(test::buildEcho(kApp4, kTun4, 7, 3));
  EXPECT_EQ(rec_.packets.size(), 3u);
  // Multicast and link-local never go out.
  input(test::buildEcho("fe80::2", "ff02::2", 7, 4));
  input(test::buildEcho(kApp4, "169.254.1.1", 7, 5));
  EXPECT_EQ(client_->stats().ipNotRoutable, 2u);
  runFor(20);
  EXPECT_EQ(server_.received.size(), 2u);
  EXPECT_EQ(client_->ipTunnel()->stats().packetsUp, 2u);
  EXPECT_EQ(client_->ipTunnel()->stats().packetsDown, 2u);
  // TCP outside the passthrough set stays with lwIP.
  EXPECT_EQ(server_.requests.size(), 1u);
  client_->stop();
  input(test::buildEcho(kApp4, "198.19.9.9", 7, 6));
  EXPECT_GE(client_->stack().stats().otherDropped, 1u) << "stopped: dropped as before CmdIP";
}

TEST_F(ClientIpTest, PassthroughCarriesUdpAndTcpThroughCmdIp) {
  startClient("[ip]\npassthrough = [\"198.19.5.0/24\"]\n");
  input(test::buildUdp(kApp4, "198.19.5.5", 33434, 33435, {1, 2, 3}));
  input(test::buildTcp(test::TcpSegment{kApp4, "198.19.5.5", 40000, 80, 1, 0, test::kSyn,
                                        65535, 0, {}}));
  ASSERT_TRUE(runUntil([&] { return rec_.packets.size() == 2; }));
  EXPECT_EQ(client_->sessionCount(), 0u) << "no TCP session: lwIP never saw the SYN";
  EXPECT_EQ(client_->udpSessionCount(), 0u);
  EXPECT_EQ(client_->stack().stats().passthrough, 2u);
  test::ParsedPacket p;
  ASSERT_TRUE(test::parsePacket(rec_.packets[0], p));
  EXPECT_EQ(p.protocol, 17);
  EXPECT_EQ(p.src, "198.19.5.5");
}

TEST_F(ClientIpTest, DisabledOrV0DropsAsBefore) {
  startClient("[ip]\nenabled = false\n");
  EXPECT_EQ(client_->ipTunnel(), nullptr);
  input(test::buildEcho(kApp4, "198.19.9.9", 7, 1));
  runFor(20);
  EXPECT_TRUE(rec_.packets.empty());
  EXPECT_EQ(client_->stack().stats().otherDropped, 1u);
  EXPECT_TRUE(server_.conns.empty());
  client_.reset();
  server_.listener.reset();
  startClient("", 0);
  EXPECT_EQ(client_->ipTunnel(), nullptr);
  input(test::buildEcho(kApp4, "198.19.9.9", 7, 1));
  runFor(20);
  EXPECT_TRUE(rec_.packets.empty());
  EXPECT_EQ(client_->stack().stats().otherDropped, 1u);
}

}  // namespace
}  // namespace vt::client
