#include "event/resolver.h"

#include <gtest/gtest.h>

#include "event/timer.h"

namespace vt::event {
namespace {

TEST(Resolver, ResolvesLocalhost) {
  Loop loop;
  Resolver r(loop);
  bool done = false;
  r.resolve("localhost", 8080, [&](Result<std::vector<SocketAddress>> res) {
    done = true;
    ASSERT_TRUE(res.ok()) << res.error().toString();
    ASSERT_FALSE(res.value().empty());
    for (const auto& a : res.value()) {
      EXPECT_EQ(a.port(), 8080);
      EXPECT_TRUE(a.ipString() == "127.0.0.1" || a.ipString() == "::1") << a.toString();
    }
  });
  EXPECT_TRUE(r.pending());
  loop.run();
  EXPECT_TRUE(done);
  EXPECT_FALSE(r.pending());
}

TEST(Resolver, ResolvesNumericHosts) {
  Loop loop;
  Resolver r4(loop), r6(loop);
  std::vector<SocketAddress> got4, got6;
  r4.resolve("127.0.0.1", 53, [&](auto res) {
    ASSERT_TRUE(res.ok());
    got4 = res.value();
  });
  r6.resolve("::1", 54, [&](auto res) {
    ASSERT_TRUE(res.ok());
    got6 = res.value();
  });
  loop.run();
  ASSERT_EQ(got4.size(), 1u);
  EXPECT_EQ(got4[0].toString(), "127.0.0.1:53");
  ASSERT_EQ(got6.size(), 1u);
  EXPECT_EQ(got6[0].toString(), "[::1]:54");
}

TEST(Resolver, FailureIsAnError) {
  Loop loop;
  Resolver r(loop);
  bool done = false;
  // .invalid never resolves (RFC 6761); no network needed to learn that
  // when the resolver has no upstream, and a fast NXDOMAIN otherwise.
  r.resolve("name.invalid", 1, [&](auto res) {
    done = true;
    EXPECT_FALSE(res.ok());
    if (!res.ok()) {
      EXPECT_EQ(res.error().code, Errc::kResolve);
    }
  });
  loop.run();
  EXPECT_TRUE(done);
}

TEST(Resolver, CancelSuppressesCallback) {
  Loop loop;
  Resolver r(loop);
  bool called = false;
  r.resolve("localhost", 1, [&](auto) { called = true; });
  r.cancel();
  EXPECT_FALSE(r.pending());
  loop.run();
  EXPECT_FALSE(called);
}

TEST(Resolver, DestroySuppressesCallback) {
  Loop loop;
  bool called = false;
  {
    Resolver r(loop);
    r.resolve("127.0.0.1", 1, [&](auto) { called = true; });
  }
  loop.run();
  EXPECT_FALSE(called);
}

TEST(Resolver, NewResolveReplacesOld) {
  Loop loop;
  Resolver r(loop);
  int first = 0, second = 0;
  r.resolve("127.0.0.1", 1, [&](auto) { ++first; });
  r.resolve("::1", 2, [&](auto res) {
    ++second;
    ASSERT_TRUE(res.ok());
    EXPECT_EQ(res.value()[0].toString(), "[::1]:2");
  });
  loop.run();
  EXPECT_EQ(first, 0);
  EXPECT_EQ(second, 1);
}

}  // namespace
}  // namespace vt::event
