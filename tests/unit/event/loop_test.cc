#include "event/loop.h"

#include <gtest/gtest.h>

#include <csignal>
#include <memory>
#include <vector>

#include "event/signal_watcher.h"
#include "event/timer.h"

namespace vt::event {
namespace {

TEST(Timer, OneShotFiresOnce) {
  Loop loop;
  Timer t(loop);
  int fired = 0;
  t.start(5, [&] { ++fired; });
  EXPECT_TRUE(t.active());
  loop.run();
  EXPECT_EQ(fired, 1);
  EXPECT_FALSE(t.active());
}

TEST(Timer, RepeatUntilStopped) {
  Loop loop;
  Timer t(loop);
  int fired = 0;
  t.start(
      1,
      [&] {
        if (++fired == 3) t.stop();
      },
      1);
  loop.run();
  EXPECT_EQ(fired, 3);
  EXPECT_FALSE(t.active());
}

TEST(Timer, StopBeforeFire) {
  Loop loop;
  Timer t(loop);
  bool fired = false;
  t.start(1, [&] { fired = true; });
  t.stop();
  loop.run();
  EXPECT_FALSE(fired);
}

TEST(Timer, DestroyWhileActive) {
  Loop loop;
  bool fired = false;
  {
    auto t = std::make_unique<Timer>(loop);
    t->start(1, [&] { fired = true; });
  }
  loop.run();
  EXPECT_FALSE(fired);
}

TEST(Timer, DestroyFromOwnCallback) {
  Loop loop;
  auto t = std::make_unique<Timer>(loop);
  int fired = 0;
  t->start(
      1,
      [&] {
        ++fired;
        t.reset();
      },
      1);
  loop.run();
  EXPECT_EQ(fired, 1);
}

TEST(Timer, RestartFromCallback) {
  Loop loop;
  Timer t(loop);
  int first = 0, second = 0;
  t.start(1, [&] {
    ++first;
    t.start(1, [&] { ++second; });
  });
  loop.run();
  EXPECT_EQ(first, 1);
  EXPECT_EQ(second, 1);
}

TEST(Loop, PostRunsLaterInOrder) {
  Loop loop;
  std::vector<int> order;
  loop.post([&] {
    order.push_back(1);
    loop.post([&] { order.push_back(3); });  // next iteration, after 2
  });
  loop.post([&] { order.push_back(2); });
  EXPECT_TRUE(order.empty());
  loop.run();
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
}

struct Tracked : DeferredDeletable {
  explicit Tracked(int& c) : count(c) {}
  ~Tracked() override { ++count; }
  int& count;
};

TEST(Loop, DeferredDeleteIsNotImmediate) {
  Loop loop;
  int deleted = 0;
  loop.deferredDelete(std::make_unique<Tracked>(deleted));
  EXPECT_EQ(deleted, 0);
  loop.run();
  EXPECT_EQ(deleted, 1);
}

TEST(Loop, DeferredDeleteFromCallbackAndAtLoopDestruction) {
  int deleted = 0;
  {
    Loop loop;
    loop.post([&] {
      loop.deferredDelete(std::make_unique<Tracked>(deleted));
      EXPECT_EQ(deleted, 0);
    });
    loop.run();
    EXPECT_EQ(deleted, 1);
    loop.deferredDelete(std::make_unique<Tracked>(deleted));  // never run
  }
  EXPECT_EQ(deleted, 2);
}

TEST(Loop, NowAdvances) {
  Loop loop;
  uint64_t start = loop.now();
  Timer t(loop);
  t.start(20, [] {});
  loop.run();
  EXPECT_GE(loop.now() - start, 19u);
}

TEST(SignalWatcher, Delivers) {
  Loop loop;
  int got = 0;
  std::unique_ptr<SignalWatcher> w;
  w = std::make_unique<SignalWatcher>(loop, SIGUSR1, [&] {
    ++got;
    w.reset();  // stops the loop's only handle
  });
  loop.post([] { raise(SIGUSR1); });
  loop.run();
  EXPECT_EQ(got, 1);
}

}  // namespace
}  // namespace vt::event
