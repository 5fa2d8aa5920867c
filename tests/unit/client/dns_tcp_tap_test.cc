// DnsTcpTap: length-framed queries and answers of a hijacked DNS-over-TCP
// flow, pipelined or split anyhow; only an answer with an outstanding
// query's id and question reaches the cache; memory stays bounded whatever
// the peers send.
#include "client/dns_tcp_tap.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "unit/codec/dns_builder.h"

namespace vt::client {
namespace {

using test::dnsAnswerA;
using test::dnsQuery;

using Bytes = std::vector<uint8_t>;

// LEN(2) message. (Sized first: GCC 12 -O3 sees a bogus overflow in
// inserting onto a 2-byte vector.)
Bytes framed(const Bytes& m) {
  Bytes v(2 + m.size());
  v[0] = static_cast<uint8_t>(m.size() >> 8);
  v[1] = static_cast<uint8_t>(m.size());
  std::copy(m.begin(), m.end(), v.begin() + 2);
  return v;
}

Bytes cat(std::initializer_list<Bytes> parts) {
  size_t n = 0;
  for (const Bytes& p : parts) n += p.size();
  Bytes v(n);
  auto out = v.begin();
  for (const Bytes& p : parts) out = std::copy(p.begin(), p.end(), out);
  return v;
}

bool cached(DnsCache& c, const std::string& name, uint16_t type = 1) {
  auto q = dnsQuery(0x4242, name, type);
  return c.lookup(q.data(), q.size(), 0).has_value();
}

// Feeds `bytes` in pieces of `step` bytes (as segments might cut them).
void queries(DnsTcpTap& t, const Bytes& bytes, size_t step = SIZE_MAX) {
  for (size_t i = 0; i < bytes.size(); i += step) {
    t.onQueryBytes(bytes.data() + i, std::min(step, bytes.size() - i));
  }
}
uint64_t answers(DnsTcpTap& t, const Bytes& bytes, size_t step = SIZE_MAX) {
  uint64_t unmatched = 0;
  for (size_t i = 0; i < bytes.size(); i += step) {
    unmatched += t.onAnswerBytes(bytes.data() + i, std::min(step, bytes.size() - i), 0);
  }
  return unmatched;
}

TEST(DnsTcpTap, OneQueryOneAnswer) {
  DnsCache c(16);
  DnsTcpTap t(c);
  queries(t, framed(dnsQuery(7, "one.test")));
  EXPECT_EQ(t.outstanding(), 1u);
  EXPECT_EQ(answers(t, framed(dnsAnswerA(7, "one.test", {60}))), 0u);
  EXPECT_TRUE(cached(c, "one.test"));
  EXPECT_EQ(t.outstanding(), 0u);
  EXPECT_EQ(t.stats().matched, 1u);
  EXPECT_EQ(t.stats().stored, 1u);
  EXPECT_EQ(t.bufferedBytes(), 0u);
}

TEST(DnsTcpTap, PipelinedInOneSegmentAnsweredOutOfOrder) {
  DnsCache c(16);
  DnsTcpTap t(c);
  queries(t, cat({framed(dnsQuery(1, "a.test")), framed(dnsQuery(2, "b.test")),
                  framed(dnsQuery(3, "c.test"))}));
  EXPECT_EQ(t.outstanding(), 3u);
  // RFC 7766 lets the resolver answer in any order, several per segment.
  EXPECT_EQ(
      answers(t, cat({framed(dnsAnswerA(3, "c.test", {60})), framed(dnsAnswerA(1, "a.test", {60})),
                      framed(dnsAnswerA(2, "b.test", {60}))})),
      0u);
  EXPECT_TRUE(cached(c, "a.test"));
  EXPECT_TRUE(cached(c, "b.test"));
  EXPECT_TRUE(cached(c, "c.test"));
  EXPECT_EQ(t.stats().queries, 3u);
  EXPECT_EQ(t.stats().stored, 3u);
  EXPECT_EQ(t.outstanding(), 0u);
}

TEST(DnsTcpTap, FramesSplitAnywhere) {
  const Bytes up = cat({framed(dnsQuery(10, "split.test")), framed(dnsQuery(11, "other.test"))});
  const Bytes down =
      cat({framed(dnsAnswerA(11, "other.test", {60})), framed(dnsAnswerA(10, "split.test", {60}))});
  // Byte by byte, and cuts through the length prefix and the header.
  for (size_t step : {size_t{1}, size_t{2}, size_t{3}, size_t{7}, size_t{13}, size_t{29}}) {
    DnsCache c(16);
    DnsTcpTap t(c);
    queries(t, up, step);
    EXPECT_EQ(answers(t, down, step), 0u) << "step " << step;
    EXPECT_TRUE(cached(c, "split.test")) << "step " << step;
    EXPECT_TRUE(cached(c, "other.test")) << "step " << step;
    EXPECT_EQ(t.bufferedBytes(), 0u);
  }
}

TEST(DnsTcpTap, BufferChainsSliceBySlice) {
  DnsCache c(16);
  DnsTcpTap t(c);
  const Bytes q = framed(dnsQuery(5, "chain.test"));
  BufferChain up;
  up.append(Slice::copyOf(q.data(), 1));
  up.append(Slice::copyOf(q.data() + 1, 9));
  up.append(Slice::copyOf(q.data() + 10, q.size() - 10));
  t.onQueryBytes(up);
  EXPECT_EQ(up.size(), q.size());  // read, not drained
  const Bytes a = framed(dnsAnswerA(5, "chain.test", {60}));
  BufferChain down;
  down.append(Slice::copyOf(a.data(), 5));
  down.append(Slice::copyOf(a.data() + 5, a.size() - 5));
  EXPECT_EQ(t.onAnswerBytes(down, 0), 0u);
  EXPECT_EQ(down.size(), a.size());
  EXPECT_TRUE(cached(c, "chain.test"));
}

TEST(DnsTcpTap, MismatchedIdIsNotStored) {
  DnsCache c(16);
  DnsTcpTap t(c);
  queries(t, framed(dnsQuery(100, "id.test")));
  EXPECT_EQ(answers(t, framed(dnsAnswerA(101, "id.test", {60}))), 1u);
  EXPECT_FALSE(cached(c, "id.test"));
  EXPECT_EQ(t.stats().unmatched, 1u);
  EXPECT_EQ(t.outstanding(), 1u);  // still waiting for its own answer
  EXPECT_EQ(answers(t, framed(dnsAnswerA(100, "id.test", {60}))), 0u);
  EXPECT_TRUE(cached(c, "id.test"));
}

TEST(DnsTcpTap, MismatchedQuestionIsNotStored) {
  DnsCache c(16);
  DnsTcpTap t(c);
  queries(t, framed(dnsQuery(200, "asked.test")));
  // Right id, another name; then right name, another type.
  EXPECT_EQ(answers(t, framed(dnsAnswerA(200, "poison.test", {60}))), 1u);
  Bytes otherType = dnsAnswerA(200, "asked.test", {60});
  otherType[12 + 12 + 1] = 28;  // QTYPE after 5asked4test0: AAAA
  EXPECT_EQ(answers(t, framed(otherType)), 1u);
  EXPECT_FALSE(cached(c, "poison.test"));
  EXPECT_FALSE(cached(c, "asked.test", 28));
  EXPECT_FALSE(cached(c, "asked.test"));
  EXPECT_EQ(c.size(), 0u);
  // The name compares without case, as the cache's key does.
  EXPECT_EQ(answers(t, framed(dnsAnswerA(200, "ASKED.test", {60}))), 0u);
  EXPECT_TRUE(cached(c, "asked.test"));
}

TEST(DnsTcpTap, SecondAnswerToOneQueryIsUnmatched) {
  DnsCache c(16);
  DnsTcpTap t(c);
  queries(t, framed(dnsQuery(300, "once.test")));
  EXPECT_EQ(answers(t, framed(dnsAnswerA(300, "once.test", {60}))), 0u);
  EXPECT_EQ(answers(t, framed(dnsAnswerA(300, "once.test", {30}))), 1u);
  EXPECT_EQ(t.stats().stored, 1u);
}

TEST(DnsTcpTap, AnswerBeforeQueryIsUnmatched) {
  DnsCache c(16);
  DnsTcpTap t(c);
  EXPECT_EQ(answers(t, framed(dnsAnswerA(400, "early.test", {60}))), 1u);
  EXPECT_FALSE(cached(c, "early.test"));
  // The query that comes after does not make the earlier answer count.
  queries(t, framed(dnsQuery(400, "early.test")));
  EXPECT_FALSE(cached(c, "early.test"));
  EXPECT_EQ(t.outstanding(), 1u);
  EXPECT_TRUE(t.tapping());
}

TEST(DnsTcpTap, OversizedAnswerSkippedUnbufferedRetiresItsQuery) {
  DnsCache c(16);
  DnsTcpTap t(c);
  queries(t, cat({framed(dnsQuery(500, "big.test")), framed(dnsQuery(501, "small.test"))}));
  // An answer padded past kMaxFrameBytes (trailing bytes are allowed).
  Bytes big = dnsAnswerA(500, "big.test", {60});
  big.resize(DnsTcpTap::kMaxFrameBytes + 1000, 0);
  const Bytes down = cat({framed(big), framed(dnsAnswerA(501, "small.test", {60}))});
  size_t maxBuffered = 0;
  uint64_t unmatched = 0;
  for (size_t i = 0; i < down.size(); i += 100) {
    unmatched += t.onAnswerBytes(down.data() + i, std::min<size_t>(100, down.size() - i), 0);
    maxBuffered = std::max(maxBuffered, t.bufferedBytes());
  }
  EXPECT_EQ(unmatched, 0u);
  EXPECT_LE(maxBuffered, 100u);  // the id only, never the big frame
  EXPECT_FALSE(cached(c, "big.test"));
  EXPECT_TRUE(cached(c, "small.test"));  // framing kept after the skip
  EXPECT_EQ(t.stats().oversized, 1u);
  EXPECT_EQ(t.outstanding(), 0u);
  // The longest frame there is, to no query: unmatched, still unbuffered.
  Bytes huge(65535, 0);
  huge[0] = 0x99;
  EXPECT_EQ(answers(t, framed(huge), 4096), 1u);
  EXPECT_TRUE(t.tapping());
}

TEST(DnsTcpTap, OversizedQueryIsNotRemembered) {
  DnsCache c(16);
  DnsTcpTap t(c);
  Bytes big = dnsQuery(600, "bigq.test");
  big.resize(DnsTcpTap::kMaxFrameBytes + 1, 0);
  queries(t, framed(big), 512);
  EXPECT_EQ(t.outstanding(), 0u);
  EXPECT_EQ(t.stats().ignored, 1u);
  EXPECT_EQ(answers(t, framed(dnsAnswerA(600, "bigq.test", {60}))), 1u);
  EXPECT_FALSE(cached(c, "bigq.test"));
}

TEST(DnsTcpTap, QueryReusingAnIdReplacesTheOlder) {
  DnsCache c(16);
  DnsTcpTap t(c);
  queries(t, cat({framed(dnsQuery(700, "old.test")), framed(dnsQuery(700, "new.test"))}));
  EXPECT_EQ(t.outstanding(), 1u);
  EXPECT_EQ(answers(t, framed(dnsAnswerA(700, "old.test", {60}))), 1u);
  EXPECT_EQ(answers(t, framed(dnsAnswerA(700, "new.test", {60}))), 0u);
  EXPECT_FALSE(cached(c, "old.test"));
  EXPECT_TRUE(cached(c, "new.test"));
}

TEST(DnsTcpTap, NotOneQuestionOrNotAQueryIsNotRemembered) {
  DnsCache c(16);
  DnsTcpTap t(c);
  Bytes two = dnsQuery(800, "two.test");
  two[5] = 2;  // QDCOUNT 2, one question present: does not parse
  Bytes response = dnsAnswerA(801, "resp.test", {60});  // QR set on the app's side
  Bytes notify = dnsQuery(802, "notify.test");
  notify[2] |= 0x20;  // OPCODE 4
  queries(t, cat({framed(two), framed(response), framed(notify)}));
  EXPECT_EQ(t.outstanding(), 0u);
  EXPECT_EQ(t.stats().ignored, 3u);
  EXPECT_EQ(answers(t, framed(dnsAnswerA(801, "resp.test", {60}))), 1u);
  EXPECT_EQ(c.size(), 0u);
  EXPECT_TRUE(t.tapping());
}

TEST(DnsTcpTap, AtMost64OutstandingOldestForgotten) {
  DnsCache c(256);
  DnsTcpTap t(c);
  Bytes up;
  for (uint16_t id = 0; id < 100; ++id) {
    Bytes f = framed(dnsQuery(id, "n" + std::to_string(id) + ".test"));
    up.insert(up.end(), f.begin(), f.end());
  }
  queries(t, up, 1000);
  EXPECT_EQ(t.outstanding(), DnsTcpTap::kMaxOutstanding);
  EXPECT_EQ(t.stats().forgotten, 100u - DnsTcpTap::kMaxOutstanding);
  EXPECT_EQ(answers(t, framed(dnsAnswerA(0, "n0.test", {60}))), 1u);    // forgotten
  EXPECT_EQ(answers(t, framed(dnsAnswerA(99, "n99.test", {60}))), 0u);  // newest
  EXPECT_EQ(answers(t, framed(dnsAnswerA(36, "n36.test", {60}))), 0u);  // oldest kept
  EXPECT_FALSE(cached(c, "n0.test"));
  EXPECT_TRUE(cached(c, "n99.test"));
  EXPECT_TRUE(cached(c, "n36.test"));
}

TEST(DnsTcpTap, GarbageLengthStopsTapping) {
  for (bool inAnswers : {false, true}) {
    DnsCache c(16);
    DnsTcpTap t(c);
    queries(t, framed(dnsQuery(900, "before.test")));
    // LEN 5: shorter than a DNS header; the frames after it are not read.
    const Bytes junk =
        cat({Bytes{0, 5, 1, 2, 3, 4, 5}, framed(dnsAnswerA(900, "before.test", {60}))});
    if (inAnswers) {
      EXPECT_EQ(answers(t, junk), 0u);
    } else {
      queries(t, junk);
      EXPECT_EQ(answers(t, framed(dnsAnswerA(900, "before.test", {60}))), 0u);
    }
    EXPECT_FALSE(t.tapping());
    EXPECT_EQ(t.outstanding(), 0u);
    EXPECT_EQ(t.bufferedBytes(), 0u);
    EXPECT_FALSE(cached(c, "before.test"));
    // Anything later is ignored, cheaply.
    queries(t, framed(dnsQuery(901, "after.test")));
    EXPECT_EQ(answers(t, framed(dnsAnswerA(901, "after.test", {60}))), 0u);
    EXPECT_EQ(c.size(), 0u);
  }
  // LEN 0 too.
  DnsCache c(16);
  DnsTcpTap t(c);
  queries(t, Bytes{0, 0});
  EXPECT_FALSE(t.tapping());
}

TEST(DnsTcpTap, UncacheableMatchedAnswerCountsAsMatched) {
  DnsCache c(16);
  DnsTcpTap t(c);
  queries(t, cat({framed(dnsQuery(1000, "servfail.test")), framed(dnsQuery(1001, "tc.test"))}));
  EXPECT_EQ(answers(t, cat({framed(dnsAnswerA(1000, "servfail.test", {}, 2)),
                            framed(dnsAnswerA(1001, "tc.test", {60}, 0, 0x0200))})),
            0u);
  EXPECT_EQ(t.stats().matched, 2u);
  EXPECT_EQ(t.stats().stored, 0u);
  EXPECT_EQ(c.size(), 0u);
}

TEST(DnsTcpTap, PartialFrameBoundedByTheLimit) {
  DnsCache c(16);
  DnsTcpTap t(c);
  queries(t, framed(dnsQuery(1100, "bound.test")));
  // An answer of exactly kMaxFrameBytes, held until its last byte.
  Bytes a = dnsAnswerA(1100, "bound.test", {60});
  a.resize(DnsTcpTap::kMaxFrameBytes, 0);
  const Bytes down = framed(a);
  t.onAnswerBytes(down.data(), down.size() - 1, 0);
  EXPECT_LE(t.bufferedBytes(), DnsTcpTap::kMaxFrameBytes);
  EXPECT_FALSE(cached(c, "bound.test"));
  t.onAnswerBytes(down.data() + down.size() - 1, 1, 0);
  EXPECT_EQ(t.bufferedBytes(), 0u);
  EXPECT_TRUE(cached(c, "bound.test"));
}

}  // namespace
}  // namespace vt::client
