// DnsCache: what is cached, the query id rewritten, TTLs aged, LRU bound.
#include "client/dns_cache.h"

#include <gtest/gtest.h>

#include "codec/dns.h"
#include "unit/codec/dns_builder.h"

namespace vt::client {
namespace {

using test::dnsAnswerA;
using test::dnsNxDomain;
using test::dnsQuery;

uint16_t idOf(const std::vector<uint8_t>& m) { return static_cast<uint16_t>((m[0] << 8) | m[1]); }

std::vector<uint32_t> ttlsOf(const std::vector<uint8_t>& m) {
  codec::DnsMessage msg;
  std::string err;
  EXPECT_TRUE(codec::parseDnsMessage(m.data(), m.size(), msg, err)) << err;
  std::vector<uint32_t> out;
  for (size_t off : msg.ttlOffsets) out.push_back(codec::dnsReadU32(m.data() + off));
  return out;
}

std::optional<std::vector<uint8_t>> ask(DnsCache& c, uint16_t id, const std::string& name,
                                        uint64_t now, uint16_t type = 1) {
  auto q = dnsQuery(id, name, type);
  return c.lookup(q.data(), q.size(), now);
}

TEST(DnsCache, HitRewritesIdAndAgesTtls) {
  DnsCache c(8);
  auto a = dnsAnswerA(1, "example.test", {100, 40});
  ASSERT_TRUE(c.store(a.data(), a.size(), 1000));
  EXPECT_FALSE(ask(c, 2, "example.test", 1000, 28));  // other type: miss
  auto r = ask(c, 0xBEEF, "EXAMPLE.test", 1000);      // case-insensitive
  ASSERT_TRUE(r);
  EXPECT_EQ(idOf(*r), 0xBEEF);
  EXPECT_EQ(ttlsOf(*r), (std::vector<uint32_t>{100, 40}));
  // The question comes back as the query wrote it.
  EXPECT_EQ((*r)[13], 'E');
  r = ask(c, 3, "example.test", 1000 + 25'500);
  ASSERT_TRUE(r);
  EXPECT_EQ(ttlsOf(*r), (std::vector<uint32_t>{75, 15}));
  // Expired at the smallest TTL.
  EXPECT_FALSE(ask(c, 4, "example.test", 1000 + 40'000));
  EXPECT_EQ(c.size(), 0u);
  EXPECT_EQ(c.stats().hits, 2u);
}

TEST(DnsCache, TtlCappedAt300) {
  DnsCache c(8);
  auto a = dnsAnswerA(1, "long.test", {86400});
  ASSERT_TRUE(c.store(a.data(), a.size(), 0));
  EXPECT_TRUE(ask(c, 2, "long.test", 299'000));
  EXPECT_FALSE(ask(c, 2, "long.test", 300'000));
}

TEST(DnsCache, NeverTruncatedErrorsOrZeroTtl) {
  DnsCache c(8);
  auto tc = dnsAnswerA(1, "tc.test", {100}, 0, 0x0200);
  EXPECT_FALSE(c.store(tc.data(), tc.size(), 0));
  auto servfail = dnsAnswerA(1, "sf.test", {}, 2);
  EXPECT_FALSE(c.store(servfail.data(), servfail.size(), 0));
  auto zero = dnsAnswerA(1, "zero.test", {0});
  EXPECT_FALSE(c.store(zero.data(), zero.size(), 0));
  auto nxNoSoa = dnsAnswerA(1, "nx.test", {}, 3);
  EXPECT_FALSE(c.store(nxNoSoa.data(), nxNoSoa.size(), 0));
  auto query = dnsQuery(1, "q.test");
  EXPECT_FALSE(c.store(query.data(), query.size(), 0));
  std::vector<uint8_t> junk = {1, 2, 3};
  EXPECT_FALSE(c.store(junk.data(), junk.size(), 0));
  EXPECT_FALSE(c.lookup(junk.data(), junk.size(), 0));
  EXPECT_EQ(c.size(), 0u);
  EXPECT_GE(c.stats().malformed, 2u);
}

TEST(DnsCache, NxDomainForMinOfSoaAnd60s) {
  DnsCache c(8);
  auto nx = dnsNxDomain(1, "nope.test", 3600, 900);
  ASSERT_TRUE(c.store(nx.data(), nx.size(), 0));
  auto r = ask(c, 9, "nope.test", 59'000);
  ASSERT_TRUE(r);
  EXPECT_EQ((*r)[3] & 0xF, 3);
  EXPECT_FALSE(ask(c, 9, "nope.test", 60'000));
  auto shortNx = dnsNxDomain(1, "short.test", 3600, 5);
  ASSERT_TRUE(c.store(shortNx.data(), shortNx.size(), 0));
  EXPECT_FALSE(ask(c, 9, "short.test", 5'000));
}

TEST(DnsCache, LruBound) {
  DnsCache c(2);
  for (const char* n : {"a.test", "b.test"}) {
    auto a = dnsAnswerA(1, n, {100});
    ASSERT_TRUE(c.store(a.data(), a.size(), 0));
  }
  EXPECT_TRUE(ask(c, 1, "a.test", 0));  // a is now the most recent
  auto a = dnsAnswerA(1, "c.test", {100});
  ASSERT_TRUE(c.store(a.data(), a.size(), 0));
  EXPECT_EQ(c.size(), 2u);
  EXPECT_TRUE(ask(c, 1, "a.test", 0));
  EXPECT_FALSE(ask(c, 1, "b.test", 0));
  EXPECT_TRUE(ask(c, 1, "c.test", 0));
  DnsCache off(0);
  EXPECT_FALSE(off.store(a.data(), a.size(), 0));
}

}  // namespace
}  // namespace vt::client
