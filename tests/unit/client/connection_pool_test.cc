// ConnectionPool over real loopback TCP connections: the pool does not look
// inside its streams, so plain connected TcpStreams stand for idle VLESS
// connections, and the accepted ends play the server.
#include "client/connection_pool.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <memory>
#include <vector>

#include "event/loop.h"
#include "stream/tcp_stream.h"

namespace vt::client {
namespace {

class PoolTest : public ::testing::Test {
 protected:
  // The accepted end of one connection.
  struct ServerEnd final : stream::StreamCallbacks {
    std::unique_ptr<stream::TcpStream> s;
    bool ended = false;  // the client closed (FIN or reset)
    void onData(BufferChain& data, bool end_stream) override {
      data.clear();
      ended = ended || end_stream;
    }
    void onClose(stream::CloseReason, const std::string&) override { ended = true; }
  };
  // The client ends' callbacks outside the pool.
  struct Owner final : stream::StreamCallbacks {
    int connected = 0;
    void onConnected() override { ++connected; }
    void onData(BufferChain& data, bool) override { data.clear(); }
    void onClose(stream::CloseReason, const std::string&) override {}
  };

  void SetUp() override {
    auto l = stream::TcpListener::listen(
        loop_, *event::SocketAddress::parseIp("127.0.0.1", 0),
        [this](std::unique_ptr<stream::TcpStream> s) {
          auto e = std::make_unique<ServerEnd>();
          e->s = std::move(s);
          e->s->setCallbacks(*e);
          ends_.push_back(std::move(e));
        });
    ASSERT_TRUE(l.ok());
    listener_ = std::move(l).value();
  }
  void TearDown() override {
    ends_.clear();
    runFor(10);  // the loop frees closed handles
  }

  // A connected client stream; its server end is ends_[index].
  stream::StreamPtr connectOne() {
    size_t before = ends_.size();
    int connected = owner_.connected;
    auto s = stream::TcpStream::create(loop_, listener_->localAddress());
    s->setCallbacks(owner_);
    s->connect();
    EXPECT_TRUE(runUntil([&] { return owner_.connected > connected && ends_.size() > before; }));
    return s;
  }
  // Takes from the pool and gives the stream its owner's callbacks at
  // once, as the pool's users must.
  stream::StreamPtr take(ConnectionPool& pool) {
    stream::StreamPtr s = pool.take();
    if (s != nullptr) s->setCallbacks(owner_);
    return s;
  }

  bool runUntil(const std::function<bool()>& pred, int timeout_ms = 2000) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (!pred()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      loop_.runOnce(false);
      usleep(200);
    }
    return true;
  }
  void runFor(int ms) {
    runUntil([] { return false; }, ms);
  }

  event::Loop loop_;
  std::unique_ptr<stream::TcpListener> listener_;
  std::vector<std::unique_ptr<ServerEnd>> ends_;
  Owner owner_;
};

TEST_F(PoolTest, TakesTheMostRecentlyReleasedFirst) {
  ConnectionPool pool(loop_, 10'000, 8);
  EXPECT_EQ(pool.take(), nullptr);
  std::vector<stream::StreamPtr> conns;
  std::vector<stream::Stream*> raw;
  for (int i = 0; i < 3; ++i) {
    conns.push_back(connectOne());
    raw.push_back(conns.back().get());
  }
  for (auto& c : conns) pool.put(std::move(c));
  EXPECT_EQ(pool.idle(), 3u);
  runFor(20);  // idle and untouched: nothing happens to them
  EXPECT_EQ(pool.idle(), 3u);
  std::vector<stream::StreamPtr> taken;
  for (int i = 2; i >= 0; --i) {
    taken.push_back(take(pool));
    EXPECT_EQ(taken.back().get(), raw[static_cast<size_t>(i)]);
  }
  EXPECT_EQ(take(pool), nullptr);
  EXPECT_EQ(pool.stats().released, 3u);
  EXPECT_EQ(pool.stats().reused, 3u);
  runFor(20);  // the pool's bookkeeping is freed; the taken streams live on
  for (const auto& e : ends_) EXPECT_FALSE(e->ended);
}

TEST_F(PoolTest, OverflowClosesTheOldest) {
  ConnectionPool pool(loop_, 10'000, 2);
  std::vector<stream::Stream*> raw;
  for (int i = 0; i < 3; ++i) {
    stream::StreamPtr c = connectOne();
    raw.push_back(c.get());
    pool.put(std::move(c));
  }
  EXPECT_EQ(pool.idle(), 2u);
  EXPECT_EQ(pool.stats().overflow, 1u);
  EXPECT_TRUE(runUntil([&] { return ends_[0]->ended; }));
  EXPECT_FALSE(ends_[1]->ended);
  EXPECT_FALSE(ends_[2]->ended);
  stream::StreamPtr a = take(pool);
  stream::StreamPtr b = take(pool);
  EXPECT_EQ(a.get(), raw[2]);
  EXPECT_EQ(b.get(), raw[1]);
  EXPECT_EQ(take(pool), nullptr);
}

TEST_F(PoolTest, MaxIdleZeroKeepsNothing) {
  ConnectionPool pool(loop_, 10'000, 0);
  pool.put(connectOne());
  EXPECT_EQ(pool.idle(), 0u);
  EXPECT_EQ(take(pool), nullptr);
  EXPECT_TRUE(runUntil([&] { return ends_[0]->ended; }));
}

TEST_F(PoolTest, IdleConnectionsExpireOldestFirst) {
  ConnectionPool pool(loop_, 150, 8);
  pool.put(connectOne());
  // The pool stamps an entry with the loop's clock (cached per pass), so
  // its deadline is measured on that clock too: a wall clock read here
  // would start late by however stale the loop's time was (CI under ASan
  // saw 121 ms of wall time for a 150 ms expiry).
  const uint64_t t0 = loop_.now();
  runFor(60);
  pool.put(connectOne());
  ASSERT_TRUE(runUntil([&] { return pool.stats().expired >= 1; }));
  EXPECT_GE(loop_.now() - t0, 150u);
  EXPECT_TRUE(runUntil([&] { return ends_[0]->ended; }));
  // Oldest first; a loop pass delayed past the second deadline (a loaded
  // machine) expires both at once, which proves nothing about the order.
  if (pool.stats().expired == 1) {
    EXPECT_EQ(pool.idle(), 1u);
    EXPECT_FALSE(ends_[1]->ended);
  }
  ASSERT_TRUE(runUntil([&] { return pool.stats().expired == 2; }));
  EXPECT_EQ(pool.idle(), 0u);
  EXPECT_TRUE(runUntil([&] { return ends_[1]->ended; }));
  EXPECT_EQ(take(pool), nullptr);
  EXPECT_EQ(pool.stats().reused, 0u);
}

TEST_F(PoolTest, ConnectionTheServerClosesOrWritesToIsDropped) {
  ConnectionPool pool(loop_, 10'000, 8);
  // Closed by the server (an abortive close, as at its reuse idle timeout).
  pool.put(connectOne());
  ends_[0]->s->close(stream::CloseReason::kLocalClose);
  ASSERT_TRUE(runUntil([&] { return pool.stats().serverClosed == 1; }));
  EXPECT_EQ(pool.idle(), 0u);
  EXPECT_EQ(take(pool), nullptr);
  // A FIN alone.
  pool.put(connectOne());
  BufferChain none;
  ends_[1]->s->write(none, true);
  ASSERT_TRUE(runUntil([&] { return pool.stats().serverClosed == 2; }));
  EXPECT_EQ(take(pool), nullptr);
  EXPECT_TRUE(runUntil([&] { return ends_[1]->ended; }));  // the pool closed its end
  // Bytes between two flows: nothing is owed then, so the connection is
  // out of step and goes.
  pool.put(connectOne());
  stream::StreamPtr keep = connectOne();
  pool.put(std::move(keep));  // the most recent, left alone
  BufferChain junk;
  junk.append(std::string("x"));
  ends_[2]->s->write(junk, false);
  ASSERT_TRUE(runUntil([&] { return pool.stats().serverClosed == 3; }));
  EXPECT_TRUE(runUntil([&] { return ends_[2]->ended; }));
  EXPECT_EQ(pool.idle(), 1u);
  stream::StreamPtr left = take(pool);
  EXPECT_NE(left, nullptr);
  EXPECT_EQ(take(pool), nullptr);
  EXPECT_FALSE(ends_[3]->ended);
}

TEST_F(PoolTest, ClearAndDestructionCloseEveryIdleConnection) {
  {
    ConnectionPool pool(loop_, 10'000, 8);
    pool.put(connectOne());
    pool.put(connectOne());
    pool.clear();
    EXPECT_EQ(pool.idle(), 0u);
    pool.put(connectOne());
  }  // destroyed with one idle connection
  EXPECT_TRUE(runUntil([&] { return ends_[0]->ended && ends_[1]->ended && ends_[2]->ended; }));
}

}  // namespace
}  // namespace vt::client
