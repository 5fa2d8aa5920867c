#include "core/bytes.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "core/log.h"

namespace vt {
namespace {

TEST(Bytes, EndianRoundTrips) {
  uint8_t b[4];
  storeBe16(b, 0x1234);
  EXPECT_EQ(b[0], 0x12);
  EXPECT_EQ(loadBe16(b), 0x1234);
  storeLe16(b, 0x1234);
  EXPECT_EQ(b[0], 0x34);
  EXPECT_EQ(loadLe16(b), 0x1234);
  storeBe32(b, 0xa1b2c3d4);
  EXPECT_EQ(loadBe32(b), 0xa1b2c3d4u);
  storeLe32(b, 0xa1b2c3d4);
  EXPECT_EQ(b[0], 0xd4);
  EXPECT_EQ(loadLe32(b), 0xa1b2c3d4u);
}

TEST(Bytes, HexBothWays) {
  std::vector<uint8_t> v;
  ASSERT_TRUE(fromHex("00 a6 | 84\n45", v));
  EXPECT_EQ(toHex(v), "00a68445");
  std::vector<uint8_t> bad;
  EXPECT_FALSE(fromHex("abc", bad));
  EXPECT_FALSE(fromHex("zz", bad));
}

TEST(Bytes, ConstantTimeEqual) {
  uint8_t a[3] = {1, 2, 3}, b[3] = {1, 2, 4};
  EXPECT_TRUE(constantTimeEqual(a, a, 3));
  EXPECT_FALSE(constantTimeEqual(a, b, 3));
}

TEST(Error, ResultCarriesValueOrError) {
  Result<int> ok(5);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok.value(), 5);
  Result<int> bad(Error(Errc::kConfig, "x.toml: key 'a': expected a string"));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().toString(), "config: x.toml: key 'a': expected a string");
}

TEST(Log, ParsesLevels) {
  LogLevel l{};
  EXPECT_TRUE(parseLogLevel("debug", l));
  EXPECT_EQ(l, LogLevel::kDebug);
  EXPECT_FALSE(parseLogLevel("loud", l));
}

}  // namespace
}  // namespace vt
