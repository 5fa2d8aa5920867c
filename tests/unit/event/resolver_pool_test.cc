// ResolverPool: per-key slots, round-robin queues, the busy bound, cancel
// and deadlines. Names come from /etc/hosts ("localhost") and IP literals,
// so nothing leaves the machine; the fairness under really slow names is
// tests/integration/resolver_test.sh (a namespace with its own DNS server).
#include "event/resolver_pool.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace vt::event {
namespace {

TEST(ResolverPool, ResolvesAndCountsWaits) {
  Loop loop;
  ResolverPool pool(loop, {2, 1, 8});
  std::vector<std::unique_ptr<PooledLookup>> lookups;
  std::vector<std::string> order;
  int done = 0;
  // Key a: three lookups (one runs, two wait); key b: one (runs at once).
  for (const char* key : {"a", "a", "a", "b"}) {
    lookups.push_back(std::make_unique<PooledLookup>(pool));
    lookups.back()->resolve(key, "localhost", 80, 5000, [&, key](auto r) {
      ++done;
      order.push_back(key);
      ASSERT_TRUE(r.ok()) << r.error().message;
      EXPECT_EQ(r.value().front().port(), 80);
    });
  }
  EXPECT_EQ(pool.inFlight(), 2u);
  EXPECT_EQ(pool.inFlight("a"), 1u);
  EXPECT_EQ(pool.inFlight("b"), 1u);
  loop.run();
  EXPECT_EQ(done, 4);
  EXPECT_EQ(pool.stats().lookups, 4u);
  EXPECT_EQ(pool.stats().queued, 2u);
  EXPECT_EQ(pool.inFlight(), 0u);
}

TEST(ResolverPool, BusyBeyondTheKeysQueue) {
  Loop loop;
  ResolverPool pool(loop, {1, 1, 1});
  PooledLookup one(pool), two(pool), three(pool);
  std::vector<std::string> errors;
  auto cb = [&](Result<std::vector<SocketAddress>> r) {
    errors.push_back(r.ok() ? "ok" : r.error().message);
  };
  one.resolve("a", "localhost", 1, 5000, cb);    // runs
  two.resolve("a", "localhost", 2, 5000, cb);    // waits
  three.resolve("a", "localhost", 3, 5000, cb);  // refused
  EXPECT_TRUE(errors.empty());  // even a refusal comes on a later iteration
  loop.run();
  ASSERT_EQ(errors.size(), 3u);
  EXPECT_EQ(errors[0], "resolve localhost: resolver busy (1 lookups of this key waiting)");
  EXPECT_EQ(errors[1], "ok");
  EXPECT_EQ(errors[2], "ok");
  EXPECT_EQ(pool.stats().busy, 1u);
}

TEST(ResolverPool, CancelledAndDestroyedLookupsNeverCallBack) {
  Loop loop;
  ResolverPool pool(loop, {1, 1, 8});
  int calls = 0;
  PooledLookup running(pool), waiting(pool), kept(pool);
  auto lost = std::make_unique<PooledLookup>(pool);
  running.resolve("a", "localhost", 1, 5000, [&](auto) { ++calls; });
  waiting.resolve("a", "localhost", 2, 5000, [&](auto) { ++calls; });
  lost->resolve("b", "localhost", 3, 5000, [&](auto) { ++calls; });
  kept.resolve("b", "127.0.0.1", 4, 5000, [&](auto r) {
    ++calls;
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r.value().front().toString(), "127.0.0.1:4");
  });
  running.cancel();  // its thread finishes; the slot is then free
  waiting.cancel();
  lost.reset();
  EXPECT_FALSE(running.pending());
  loop.run();
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(pool.stats().late, 1u);
  EXPECT_EQ(pool.inFlight(), 0u);
}

TEST(ResolverPool, DeadlineWhileWaiting) {
  Loop loop;
  ResolverPool pool(loop, {1, 1, 8});
  PooledLookup first(pool), second(pool);
  std::string got;
  first.resolve("a", "localhost", 1, 5000, [](auto) {});
  // A deadline of 0 ms: the caller hears "timed out" whatever happens to the
  // lookup, which is dropped from the queue.
  second.resolve("a", "localhost", 2, 0, [&](auto r) { got = r.ok() ? "ok" : r.error().message; });
  loop.run();
  EXPECT_EQ(got, "resolve localhost: timed out after 0 ms");
  EXPECT_EQ(pool.stats().timeouts, 1u);
}

}  // namespace
}  // namespace vt::event
