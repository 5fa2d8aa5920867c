#include "stream/tcp_stream.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <vector>

#include "stream_test_util.h"

namespace vt::stream {
namespace {

using testing::Endpoint;
using testing::pattern;
using testing::runUntil;

event::SocketAddress loopback(uint16_t port = 0) {
  return event::SocketAddress::ipv4(0x7f000001, port);
}

// A listener that keeps every accepted stream with an Endpoint of its own.
struct Server {
  explicit Server(event::Loop& loop, std::function<void(Endpoint&, TcpStream&)> setup = {})
      : setup_(std::move(setup)) {
    auto l = TcpListener::listen(loop, loopback(), [this](std::unique_ptr<TcpStream> s) {
      auto ep = std::make_unique<Endpoint>();
      if (setup_) setup_(*ep, *s);
      ep->attach(*s);
      ep->pump();
      streams.push_back(std::move(s));
      endpoints.push_back(std::move(ep));
    });
    EXPECT_TRUE(l.ok());
    listener = std::move(l.value());
  }
  uint16_t port() const { return listener->localAddress().port(); }

  std::function<void(Endpoint&, TcpStream&)> setup_;
  std::unique_ptr<TcpListener> listener;
  std::vector<std::unique_ptr<TcpStream>> streams;
  std::vector<std::unique_ptr<Endpoint>> endpoints;
};

TEST(TcpStream, Echo) {
  event::Loop loop;
  Server server(loop, [](Endpoint& ep, TcpStream&) {
    ep.on_data = [&ep](BufferChain& data, bool end) { ep.stream->write(data, end); };
  });
  EXPECT_EQ(server.listener->localAddress().ipString(), "127.0.0.1");
  ASSERT_NE(server.port(), 0);

  auto client = TcpStream::create(loop, loopback(server.port()));
  Endpoint c;
  c.attach(*client);
  c.payload = "hello";
  c.end = false;
  (void)client->setMark(0);  // needs CAP_NET_ADMIN; must not break the dial either way
  client->connect();
  c.pump();  // before the connection is up: queued
  EXPECT_FALSE(c.connected);
  ASSERT_TRUE(runUntil(loop, [&] { return c.received == "hello"; }));
  EXPECT_TRUE(c.connected);
  EXPECT_EQ(client->peerName(), "127.0.0.1:" + std::to_string(server.port()));
  EXPECT_EQ(client->localAddress().ipString(), "127.0.0.1");
  ASSERT_EQ(server.streams.size(), 1u);
  EXPECT_EQ(server.streams[0]->peerAddress(), client->localAddress());
  client->setNoDelay(true);
  client->setKeepAlive(true, 30);

  // Half-close: the echo server mirrors our end_stream, then both finish.
  BufferChain bye;
  bye.append("bye");
  client->write(bye, true);
  ASSERT_TRUE(runUntil(loop, [&] { return c.closes == 1; }));
  EXPECT_EQ(c.received, "hellobye");
  EXPECT_TRUE(c.eof);
  EXPECT_EQ(client->bytesSent(), 8u);
  EXPECT_EQ(client->bytesReceived(), 8u);
  ASSERT_TRUE(runUntil(loop, [&] { return server.endpoints[0]->closes == 1; }));
}

TEST(TcpStream, EightMegabytesEachWay) {
  event::Loop loop;
  const std::string up = pattern(8 << 20, 1);
  const std::string down = pattern(8 << 20, 2);
  Server server(loop, [&](Endpoint& ep, TcpStream&) { ep.payload = down; });
  auto client = TcpStream::create(loop, loopback(server.port()));
  Endpoint c;
  c.attach(*client);
  c.payload = up;
  client->connect();
  c.pump();
  ASSERT_TRUE(runUntil(
      loop,
      [&] {
        return c.closes == 1 && !server.endpoints.empty() && server.endpoints[0]->closes == 1;
      },
      30000));
  Endpoint& s = *server.endpoints[0];
  EXPECT_TRUE(c.eof);
  EXPECT_TRUE(s.eof);
  EXPECT_TRUE(c.received == down) << c.received.size();
  EXPECT_TRUE(s.received == up) << s.received.size();
  EXPECT_TRUE(c.reason == CloseReason::kLocalClose || c.reason == CloseReason::kRemoteClose);
  EXPECT_EQ(c.after_close_events, 0);
}

TEST(TcpStream, HalfCloseBothDirections) {
  event::Loop loop;
  // The server answers only after our direction has ended.
  Server server(loop, [](Endpoint& ep, TcpStream&) {
    ep.on_data = [&ep](BufferChain& data, bool end) {
      ep.received += data.toString();
      data.drain(data.size());
      if (end) {
        BufferChain reply;
        reply.append("got " + ep.received);
        ep.stream->write(reply, true);
      }
    };
  });
  auto client = TcpStream::create(loop, loopback(server.port()));
  Endpoint c;
  c.attach(*client);
  c.payload = "ping";
  client->connect();
  c.pump();
  ASSERT_TRUE(runUntil(loop, [&] { return c.closes == 1; }));
  EXPECT_EQ(c.received, "got ping");
  EXPECT_TRUE(c.eof);
  // The peer finished last: its EOF completed the pair.
  EXPECT_EQ(c.reason, CloseReason::kRemoteClose);
  ASSERT_TRUE(runUntil(loop, [&] { return server.endpoints[0]->closes == 1; }));
  EXPECT_EQ(server.endpoints[0]->reason, CloseReason::kLocalClose);
}

TEST(TcpStream, ConnectRefusedIsAsync) {
  event::Loop loop;
  uint16_t port;
  {
    Server gone(loop);
    port = gone.port();
  }
  auto client = TcpStream::create(loop, loopback(port));
  Endpoint c;
  c.attach(*client);
  client->connect();
  EXPECT_EQ(c.closes, 0);
  ASSERT_TRUE(runUntil(loop, [&] { return c.closes == 1; }));
  EXPECT_EQ(c.reason, CloseReason::kConnectFailed);
  EXPECT_NE(c.detail.find("refused"), std::string::npos) << c.detail;
  EXPECT_FALSE(c.connected);
}

// Small pieces in big buffers (a relay of 50-byte reads) toward a peer
// that does not read: the watermarks bound the memory the queue holds, not
// its bytes, and what waits is packed, not 16 KiB a piece.
TEST(TcpStream, WatermarksBoundMemoryOfSmallPieces) {
  event::Loop loop;
  Server server(loop, [](Endpoint&, TcpStream& s) { s.readDisable(true); });
  Watermarks wm{256 * 1024, 64 * 1024};
  auto client = TcpStream::create(loop, loopback(server.port()), wm);
  Endpoint c;
  c.attach(*client);
  c.end = false;
  client->connect();
  ASSERT_TRUE(runUntil(loop, [&] { return c.connected && !server.endpoints.empty(); }));
  size_t written = 0;
  for (int i = 0; i < 400000 && c.above == 0; ++i) {
    Slice piece = Slice::allocate(BufferChain::kDefaultSliceSize);
    std::memset(piece.append(50), 'p', 50);
    BufferChain chain;
    chain.append(std::move(piece));
    client->write(chain, false);
    written += 50;
    if (i % 256 == 0) loop.runOnce();  // let the kernel take what it takes
  }
  ASSERT_EQ(c.above, 1) << "never above the high mark after " << written << " bytes";
  // Memory, not bytes, crossed the mark: one write's worth past it at most.
  EXPECT_GT(client->bufferedMemory(), wm.high);
  EXPECT_LT(client->bufferedMemory(), wm.high + 1024);
  EXPECT_LT(client->bufferedBytes(), wm.high);
  // Packed: in 16 KiB buffers a piece, 256 KiB would hold 16 pieces (800
  // bytes); packed, each waits in a request of a few hundred bytes.
  EXPECT_GT(client->bufferedBytes(), wm.high / 16);
}

TEST(TcpStream, ReadDisableAndWatermarks) {
  event::Loop loop;
  Server server(loop, [](Endpoint&, TcpStream& s) {
    // Counted: two disables need two enables.
    s.readDisable(true);
    s.readDisable(true);
  });
  Watermarks wm{256 * 1024, 64 * 1024};
  auto client = TcpStream::create(loop, loopback(server.port()), wm);
  Endpoint c;
  c.attach(*client);
  c.payload = pattern(64 << 20, 3);  // more than the kernel buffers hold
  c.end = false;
  client->connect();
  ASSERT_TRUE(runUntil(loop, [&] { return c.connected && !server.endpoints.empty(); }));
  c.pump();
  ASSERT_TRUE(runUntil(loop, [&] { return c.above == 1; }));
  EXPECT_GT(client->bufferedMemory(), wm.high);
  EXPECT_FALSE(c.sentAll());
  Endpoint& s = *server.endpoints[0];
  // Nothing is delivered while reading is disabled.
  event::Timer wait(loop);
  bool waited = false;
  wait.start(50, [&] { waited = true; });
  ASSERT_TRUE(runUntil(loop, [&] { return waited; }));
  EXPECT_TRUE(s.received.empty());
  EXPECT_EQ(c.below, 0);

  server.streams[0]->readDisable(false);
  waited = false;
  wait.start(50, [&] { waited = true; });
  ASSERT_TRUE(runUntil(loop, [&] { return waited; }));
  EXPECT_TRUE(s.received.empty());  // still one disable outstanding

  server.streams[0]->readDisable(false);
  ASSERT_TRUE(runUntil(loop, [&] { return c.below >= 1; }));
  EXPECT_LE(c.buffered_at_below, wm.low);
  ASSERT_TRUE(runUntil(
      loop, [&] { return s.received.size() == c.payload.size(); }, 30000));
  EXPECT_TRUE(s.received == c.payload);
  EXPECT_GE(c.above, 1);
  EXPECT_EQ(c.above, c.below);
}

TEST(TcpStream, CloseIsIdempotentAndSilent) {
  event::Loop loop;
  Server server(loop, [](Endpoint& ep, TcpStream&) { ep.payload = "welcome"; });
  auto client = TcpStream::create(loop, loopback(server.port()));
  Endpoint c;
  c.attach(*client);
  client->connect();
  ASSERT_TRUE(runUntil(loop, [&] { return c.connected; }));
  client->close(CloseReason::kLocalClose);
  EXPECT_EQ(c.closes, 1);  // delivered from close() itself
  client->close(CloseReason::kReset);
  EXPECT_EQ(c.closes, 1);
  EXPECT_EQ(c.reason, CloseReason::kLocalClose);
  BufferChain late;
  late.append("late");
  client->write(late, true);
  EXPECT_TRUE(late.empty());
  client->readDisable(true);
  // The server sees our close as EOF (or a reset) and closes too.
  ASSERT_TRUE(runUntil(
      loop, [&] { return !server.endpoints.empty() && server.endpoints[0]->closes == 1; }));
  EXPECT_EQ(c.after_close_events, 0);
  loop.deferredDelete(std::move(client));
  loop.runOnce();
}

TEST(TcpStream, DestroyWithoutCloseAndBeforeConnect) {
  event::Loop loop;
  Server server(loop);
  {
    auto client = TcpStream::create(loop, loopback(server.port()));
    Endpoint c;
    c.attach(*client);
    client->connect();
    BufferChain data;
    data.append("x");
    client->write(data, false);
  }  // destroyed mid-connect: no callbacks, no leak (ASan checks)
  auto never = TcpStream::create(loop, loopback(server.port()));
  never.reset();
  loop.runOnce();
}

TEST(TcpListener, BindConflictIsAnError) {
  event::Loop loop;
  Server server(loop);
  auto again = TcpListener::listen(loop, loopback(server.port()), [](auto) {});
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, Errc::kIo);
  EXPECT_NE(again.error().message.find("127.0.0.1"), std::string::npos);
}

TEST(TcpListener, Ipv6Loopback) {
  event::Loop loop;
  auto any6 = event::SocketAddress::parse("[::1]:0");
  std::unique_ptr<TcpStream> accepted;
  auto l = TcpListener::listen(loop, *any6,
                               [&](std::unique_ptr<TcpStream> s) { accepted = std::move(s); });
  ASSERT_TRUE(l.ok()) << "no IPv6 loopback: " << l.error().toString();
  auto client = TcpStream::create(
      loop, event::SocketAddress::parse("[::1]:" + std::to_string(l.value()->localAddress().port()))
                .value());
  Endpoint c;
  c.attach(*client);
  client->connect();
  ASSERT_TRUE(runUntil(loop, [&] { return c.connected && accepted != nullptr; }));
  EXPECT_EQ(accepted->peerAddress().ipString(), "::1");
}

}  // namespace
}  // namespace vt::stream

namespace vt::stream {
namespace {

TEST(TokenBucket, RefillsUpToOneTenthOfASecond) {
  TokenBucket b(1'000'000);  // 1 MB/s: holds 100 kB
  EXPECT_EQ(b.balance(0), 100'000);
  b.take(0, 150'000);  // a read may overdraw
  EXPECT_EQ(b.balance(0), -50'000);
  EXPECT_EQ(b.msUntil(0, 0), 51u);
  EXPECT_EQ(b.balance(50), 0);
  EXPECT_EQ(b.balance(10'000), 100'000);  // capped
  EXPECT_EQ(b.msUntil(10'000, 16'384), 1u);
  EXPECT_EQ(b.taken(), 150'000u);
  TokenBucket small(20'000);  // the bucket holds at least 16 KiB
  EXPECT_EQ(small.balance(0), 16'384);
}

// 1 MB each way through a stream limited to 2 MB/s: every byte arrives in
// order, the half-close after them, and no sooner than the limit allows.
TEST(TcpStream, RateLimitBothWays) {
  event::Loop loop;
  const std::string up = pattern(1'000'000, 3);
  const std::string down = pattern(1'000'000, 4);
  auto limit = std::make_shared<RateLimit>(2'000'000);
  Server server(loop, [&](Endpoint& ep, TcpStream& s) {
    s.setRateLimit(limit);
    ep.payload = down;
  });
  auto client = TcpStream::create(loop, loopback(server.port()));
  Endpoint c;
  c.attach(*client);
  c.payload = up;
  const auto t0 = std::chrono::steady_clock::now();
  client->connect();
  c.pump();
  ASSERT_TRUE(runUntil(
      loop,
      [&] {
        return c.closes == 1 && !server.endpoints.empty() && server.endpoints[0]->closes == 1;
      },
      30000));
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - t0)
                        .count();
  Endpoint& s = *server.endpoints[0];
  EXPECT_TRUE(c.received == down) << c.received.size();
  EXPECT_TRUE(s.received == up) << s.received.size();
  EXPECT_TRUE(c.eof);
  EXPECT_TRUE(s.eof);
  // (1 MB - the 200 kB burst) / 2 MB/s = 400 ms at least, each way at once.
  EXPECT_GE(took, 380);
  EXPECT_EQ(limit->in.taken(), up.size());
  EXPECT_EQ(limit->out.taken(), down.size());
  EXPECT_GT(limit->write_waits, 0u);
  EXPECT_GT(limit->read_pauses, 0u);
}

}  // namespace
}  // namespace vt::stream

namespace vt::stream {
namespace {

// Bytes written before the connection is up wait in the stream's queue and
// count toward the budget; past the budget every attached stream's
// watermarks shrink (both report above-high), and once the queues drain
// below 3/4 of it the normal marks are back (both report below-low).
TEST(BufferBudget, PressureShrinksEveryStreamsWatermarks) {
  event::Loop loop;
  Server server(loop);
  BufferBudget budget(150 * 1024);
  auto c1 = TcpStream::create(loop, loopback(server.port()));
  auto c2 = TcpStream::create(loop, loopback(server.port()));
  c1->setBufferBudget(&budget);
  c2->setBufferBudget(&budget);
  Endpoint e1, e2;
  e1.attach(*c1);
  e2.attach(*c2);
  e1.end = e2.end = false;
  auto write = [](TcpStream& s, size_t n) {
    BufferChain b;
    b.append(std::string(n, 'x'));
    s.write(b, false);
  };
  write(*c1, 100 * 1024);
  write(*c2, 40 * 1024);
  // The budget counts memory: the bytes plus the chains' slice overhead.
  auto near = [](uint64_t used, uint64_t bytes) { return used >= bytes && used <= bytes + 1024; };
  EXPECT_PRED2(near, budget.used(), 140u * 1024);
  EXPECT_FALSE(budget.pressure());
  EXPECT_EQ(e1.above + e2.above, 0);  // both far below their own 512 KiB
  write(*c1, 20 * 1024);
  EXPECT_TRUE(budget.pressure());
  EXPECT_EQ(e1.above, 1);
  EXPECT_EQ(e2.above, 1);  // 40 KiB is above the pressure mark (32 KiB)
  EXPECT_EQ(budget.pressureEpisodes(), 1u);
  c1->connect();
  c2->connect();
  ASSERT_TRUE(runUntil(loop, [&] { return e1.below == 1 && e2.below == 1; }));
  EXPECT_FALSE(budget.pressure());
  EXPECT_PRED2(near, budget.peak(), 160u * 1024);
  ASSERT_TRUE(runUntil(loop, [&] {
    return server.endpoints.size() == 2 &&
           server.endpoints[0]->received.size() + server.endpoints[1]->received.size() ==
               160u * 1024;
  }));
  EXPECT_EQ(budget.used(), 0u);
  c1->close(CloseReason::kLocalClose);
  c2.reset();  // the destructor detaches too
  EXPECT_EQ(budget.used(), 0u);
}

// A close that itself ends the pressure (its queued bytes were what kept
// the total over 3/4 of the budget) takes those bytes off once: the
// pressure notification that follows must not make the closing stream
// re-sync and subtract them again (the total wrapped below zero, and
// pressure never ended again).
TEST(BufferBudget, CloseThatEndsPressureCountsItsBytesOnce) {
  event::Loop loop;
  Server server(loop);
  BufferBudget budget(100 * 1024);
  auto c1 = TcpStream::create(loop, loopback(server.port()));
  auto c2 = TcpStream::create(loop, loopback(server.port()));
  auto c3 = TcpStream::create(loop, loopback(server.port()));
  for (auto* c : {c1.get(), c2.get(), c3.get()}) c->setBufferBudget(&budget);
  Endpoint e1, e2, e3;
  e1.attach(*c1);
  e2.attach(*c2);
  e3.attach(*c3);
  auto write = [](TcpStream& s, size_t n) {
    BufferChain b;
    b.append(std::string(n, 'x'));
    s.write(b, false);
  };
  write(*c1, 90 * 1024);
  write(*c2, 20 * 1024);
  write(*c3, 10 * 1024);
  ASSERT_TRUE(budget.pressure());
  // The budget counts memory: the bytes plus the chains' slice overhead.
  auto near = [](uint64_t used, uint64_t bytes) { return used >= bytes && used <= bytes + 1024; };
  EXPECT_PRED2(near, budget.used(), 120u * 1024);
  c1->close(CloseReason::kReset);  // 120 -> 30 KiB: pressure ends inside
  EXPECT_FALSE(budget.pressure());
  EXPECT_PRED2(near, budget.used(), 30u * 1024);
  c2.reset();  // the destructor path, no pressure involved
  EXPECT_PRED2(near, budget.used(), 10u * 1024);
  // And a re-attach (setBufferBudget) during pressure moves the charge.
  write(*c3, 100 * 1024);
  ASSERT_TRUE(budget.pressure());
  BufferBudget other(1 << 20);
  c3->setBufferBudget(&other);
  EXPECT_EQ(budget.used(), 0u);
  EXPECT_FALSE(budget.pressure());
  EXPECT_PRED2(near, other.used(), 110u * 1024);
  c3->close(CloseReason::kReset);
  EXPECT_EQ(other.used(), 0u);
  EXPECT_LT(budget.peak(), 1u << 30);
}

}  // namespace
}  // namespace vt::stream
