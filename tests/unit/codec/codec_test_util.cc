#include "codec_test_util.h"

#include <gtest/gtest.h>

#include "core/bytes.h"

namespace vt::codec::test {

std::vector<uint8_t> hex(std::string_view text) {
  std::vector<uint8_t> out;
  EXPECT_TRUE(fromHex(text, out)) << "bad hex vector: " << text;
  return out;
}

std::vector<uint8_t> concat(std::initializer_list<std::vector<uint8_t>> parts) {
  std::vector<uint8_t> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

void appendSlice(BufferChain& c, const std::vector<uint8_t>& b, size_t begin, size_t end) {
  if (end > begin) c.append(Slice::copyOf(b.data() + begin, end - begin));
}

BufferChain chainOf(const std::vector<uint8_t>& b) {
  BufferChain c;
  appendSlice(c, b, 0, b.size());
  return c;
}

const char* statusName(DecodeStatus s) {
  switch (s) {
    case DecodeStatus::kNeedMore:
      return "need";
    case DecodeStatus::kDone:
      return "done";
    case DecodeStatus::kInvalid:
      return "invalid";
  }
  return "?";
}

namespace {

// Prefix [0, k) split at i and j (0 <= i <= j <= k), three slices.
std::string decodeSplit(const std::vector<uint8_t>& b, size_t k, size_t i, size_t j,
                        const Decode& decode) {
  BufferChain c;
  appendSlice(c, b, 0, i);
  appendSlice(c, b, i, j);
  appendSlice(c, b, j, k);
  std::string before = c.toString();
  std::string s = decode(c);
  EXPECT_EQ(c.toString(), before) << "decoder changed its input";
  return s;
}

}  // namespace

std::string checkDoneEverySplit(const std::vector<uint8_t>& bytes, size_t unit,
                                const Decode& decode) {
  const size_t n = bytes.size();
  std::string whole = decodeSplit(bytes, n, n, n, decode);
  EXPECT_EQ(whole.rfind("done ", 0), 0u) << whole;
  EXPECT_NE(whole.find("done " + std::to_string(unit) + " "), std::string::npos)
      << "consumed differs from " << unit << ": " << whole;
  for (size_t k = 0; k <= n; ++k) {
    std::string want = k < unit ? "need" : whole;
    EXPECT_EQ(decodeSplit(bytes, k, k, k, decode), want) << "prefix " << k;
  }
  const bool three = n <= 80;  // O(n^2) three-way splits for short vectors
  for (size_t i = 0; i <= n; ++i) {
    EXPECT_EQ(decodeSplit(bytes, n, i, i, decode), whole) << "split at " << i;
    if (!three) continue;
    for (size_t j = i; j <= n; ++j) {
      EXPECT_EQ(decodeSplit(bytes, n, i, j, decode), whole) << "split at " << i << "," << j;
    }
  }
  BufferChain c;
  for (size_t k = 0; k < n; ++k) {
    appendSlice(c, bytes, k, k + 1);
    std::string want = k + 1 < unit ? "need" : whole;
    EXPECT_EQ(decode(c), want) << "one byte at a time, " << k + 1 << " bytes";
  }
  return whole;
}

void checkInvalidAt(const std::vector<uint8_t>& bytes, size_t invalid_at, const Decode& decode) {
  const size_t n = bytes.size();
  ASSERT_LE(invalid_at, n);
  std::string whole = decodeSplit(bytes, n, n, n, decode);
  EXPECT_EQ(whole.rfind("invalid: ", 0), 0u) << whole;
  EXPECT_GT(whole.size(), std::string("invalid: ").size()) << "no message";
  for (size_t k = 0; k <= n; ++k) {
    std::string got = decodeSplit(bytes, k, k / 2, k / 2, decode);
    if (k < invalid_at) {
      EXPECT_EQ(got, "need") << "prefix " << k;
    } else {
      EXPECT_EQ(got.rfind("invalid: ", 0), 0u) << "prefix " << k << ": " << got;
    }
  }
  for (size_t i = 0; i <= n; ++i) {
    EXPECT_EQ(decodeSplit(bytes, n, i, i, decode), whole) << "split at " << i;
  }
  BufferChain c;
  for (size_t k = 0; k < n; ++k) appendSlice(c, bytes, k, k + 1);
  EXPECT_EQ(decode(c), whole) << "one byte per slice";
}

void checkNeedMore(const std::vector<uint8_t>& bytes, const Decode& decode) {
  for (size_t k = 0; k <= bytes.size(); ++k) {
    EXPECT_EQ(decodeSplit(bytes, k, k / 2, k / 2, decode), "need") << "prefix " << k;
  }
}

}  // namespace vt::codec::test
