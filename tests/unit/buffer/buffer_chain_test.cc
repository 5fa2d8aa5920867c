#include "buffer/buffer_chain.h"

#include <gtest/gtest.h>

#include "buffer/cursor.h"

namespace vt {
namespace {

TEST(Slice, HeadroomAndTailroom) {
  Slice s = Slice::allocate(16, 4);
  EXPECT_EQ(s.headroom(), 4u);
  EXPECT_EQ(s.tailroom(), 12u);
  s.append(3)[0] = 'a';
  s.prepend(2);
  EXPECT_EQ(s.size(), 5u);
  s.trimFront(1);
  EXPECT_EQ(s.size(), 4u);
}

int g_released = 0;
void countRelease(void* ctx, uint8_t*) noexcept { g_released += *static_cast<int*>(ctx); }

TEST(Slice, AdoptedMemoryIsReleasedOnce) {
  static uint8_t mem[8];
  int weight = 1;
  g_released = 0;
  {
    Slice a = Slice::adopt(mem, sizeof mem, countRelease, &weight);
    Slice b = std::move(a);
    BufferChain c;
    c.append(std::move(b));
    EXPECT_EQ(c.size(), 8u);
  }
  EXPECT_EQ(g_released, 1);
}

// The ring under BufferChain: order kept across wrap-around, growth and
// push_front; every slice released exactly once (adopted memory counts).
TEST(SliceRing, FifoAcrossWrapGrowthAndPushFront) {
  int released = 0;
  auto release = [](void* ctx, uint8_t*) noexcept { ++*static_cast<int*>(ctx); };
  static uint8_t bytes[64];
  auto tagged = [&](uint8_t tag) {
    bytes[tag] = tag;
    return Slice::adopt(&bytes[tag], 1, release, &released);
  };
  {
    SliceRing r;
    EXPECT_TRUE(r.empty());
    uint8_t next = 0, expect = 0;
    // Wrap the first block (4) several times, then grow it while wrapped.
    for (int round = 0; round < 5; ++round) {
      r.push_back(tagged(next++));
      r.push_back(tagged(next++));
      r.push_back(tagged(next++));
      ASSERT_EQ(r.front().data()[0], expect);
      r.pop_front();
      ++expect;
      r.pop_front();
      ++expect;
    }
    for (int i = 0; i < 9; ++i) r.push_back(tagged(next++));
    r.push_front(tagged(60));
    ASSERT_EQ(r.size(), 15u);
    EXPECT_EQ(r.front().data()[0], 60);
    r.pop_front();
    size_t i = 0;
    for (const Slice& sl : r) {
      EXPECT_EQ(sl.data()[0], expect + i) << i;
      ++i;
    }
    EXPECT_EQ(i, r.size());
    SliceRing moved(std::move(r));
    EXPECT_TRUE(r.empty());
    EXPECT_EQ(moved.size(), 14u);
    EXPECT_EQ(moved[13].data()[0], next - 1);
    r = std::move(moved);  // a moved-from ring takes a new one
    EXPECT_EQ(r.size(), 14u);
    r.clear();  // releases every slice (the 16-slot block itself is kept)
    EXPECT_TRUE(r.empty());
    r.push_back(tagged(61));
  }
  EXPECT_EQ(released, 5 * 3 + 9 + 1 + 1);
}

TEST(BufferChain, AppendDrainCopyOut) {
  BufferChain c;
  c.append("hello ");
  c.append(Slice::copyOf("world", 5));
  EXPECT_EQ(c.size(), 11u);
  EXPECT_EQ(c.toString(), "hello world");
  c.drain(3);
  EXPECT_EQ(c.toString(), "lo world");
  char out[4];
  EXPECT_EQ(c.copyOut(4, out, 4), 4u);
  EXPECT_EQ(std::string(out, 4), "orld");
  EXPECT_EQ(c.byteAt(3), 'w');
  c.drain(c.size());
  EXPECT_TRUE(c.empty());
  EXPECT_EQ(c.sliceCount(), 0u);
}

TEST(BufferChain, MoveFromSplitsOneSlice) {
  BufferChain a, b;
  a.append(Slice::copyOf("abc", 3));
  a.append(Slice::copyOf("defg", 4));
  b.moveFrom(a, 5);
  EXPECT_EQ(b.toString(), "abcde");
  EXPECT_EQ(a.toString(), "fg");
  b.moveFrom(a);
  EXPECT_EQ(b.toString(), "abcdefg");
  EXPECT_TRUE(a.empty());
}

TEST(BufferChain, LinearizeAndReserve) {
  BufferChain c;
  c.append(Slice::copyOf("ab", 2));
  c.append(Slice::copyOf("cd", 2));
  uint8_t* p = c.linearize(3);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(p), 3), "abc");
  EXPECT_EQ(c.toString(), "abcd");
  size_t avail = 0;
  uint8_t* w = c.reserve(10, &avail);
  ASSERT_GE(avail, 10u);
  w[0] = 'e';
  c.commit(1);
  EXPECT_EQ(c.toString(), "abcde");
}

TEST(Cursor, ReadsAcrossSlicesAndStopsAtEnd) {
  BufferChain c;
  c.append(Slice::copyOf("\x01", 1));
  c.append(Slice::copyOf("\x02\x03\x04\x05", 4));
  Cursor cur(c);
  uint16_t v16 = 0;
  ASSERT_TRUE(cur.readBe16(v16));
  EXPECT_EQ(v16, 0x0102);
  uint32_t v32 = 0;
  EXPECT_FALSE(cur.readLe32(v32));
  EXPECT_EQ(cur.position(), 2u);
  uint16_t le = 0;
  ASSERT_TRUE(cur.readLe16(le));
  EXPECT_EQ(le, 0x0403);
  EXPECT_EQ(cur.remaining(), 1u);
  EXPECT_FALSE(cur.skip(2));
}

}  // namespace
}  // namespace vt
