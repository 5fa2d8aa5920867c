// DnsNames: address -> question name from A / AAAA answers, CNAME chains,
// lifetimes, LRU bound, and what is never learnt.
#include "client/dns_names.h"

#include <gtest/gtest.h>

#include "unit/codec/dns_builder.h"

namespace vt::client {
namespace {

using test::dnsAnswerA;
using test::dnsHeader;
using test::dnsPut16;
using test::dnsPut32;
using test::dnsPutName;
using test::dnsQuery;

using Bytes = std::vector<uint8_t>;

struct Rr {
  std::string owner;  // "" = compressed to the question
  uint16_t type;
  uint32_t ttl;
  Bytes rdata;
};

Bytes response(const std::string& qname, uint16_t qtype, const std::vector<Rr>& answers,
               uint16_t flags = 0x8180) {
  Bytes v = dnsHeader(7, flags, 1, static_cast<uint16_t>(answers.size()), 0, 0);
  dnsPutName(v, qname);
  dnsPut16(v, qtype);
  dnsPut16(v, 1);
  for (const Rr& rr : answers) {
    if (rr.owner.empty()) {
      dnsPut16(v, 0xC00C);
    } else {
      dnsPutName(v, rr.owner);
    }
    dnsPut16(v, rr.type);
    dnsPut16(v, 1);
    dnsPut32(v, rr.ttl);
    dnsPut16(v, static_cast<uint16_t>(rr.rdata.size()));
    v.insert(v.end(), rr.rdata.begin(), rr.rdata.end());
  }
  return v;
}

Bytes nameRdata(const std::string& name) {
  Bytes v;
  dnsPutName(v, name);
  return v;
}

Bytes v6addr(uint8_t last) {
  Bytes a = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, last};
  return a;
}

void learn(DnsNames& d, const Bytes& m, uint64_t now) {
  d.learn(m.data(), m.size(), now);
}

std::optional<std::string> v4(DnsNames& d, uint8_t a, uint8_t b, uint8_t c, uint8_t e,
                              uint64_t now) {
  const uint8_t addr[4] = {a, b, c, e};
  return d.nameOf(false, addr, now);
}

TEST(DnsNames, AAndAaaa) {
  DnsNames d(16);
  // dnsAnswerA: 198.18.1.1, 198.18.1.2, ...
  learn(d, dnsAnswerA(1, "WWW.Example.Test", {300, 300}), 0);
  EXPECT_EQ(v4(d, 198, 18, 1, 1, 0), "www.example.test");
  EXPECT_EQ(v4(d, 198, 18, 1, 2, 0), "www.example.test");
  EXPECT_FALSE(v4(d, 198, 18, 1, 3, 0));
  learn(d, response("six.test", 28, {{"", 28, 300, v6addr(1)}, {"", 28, 300, v6addr(2)}}), 0);
  EXPECT_EQ(d.nameOf(true, v6addr(2).data(), 0), "six.test");
  EXPECT_FALSE(d.nameOf(true, v6addr(3).data(), 0));
  // The same 4 bytes as v4 and the first 4 of a v6 address are different keys.
  const uint8_t prefix[4] = {0x20, 0x01, 0x0d, 0xb8};
  EXPECT_FALSE(d.nameOf(false, prefix, 0));
  EXPECT_EQ(d.size(), 4u);
  DnsNamesStats s = d.stats();
  EXPECT_EQ(s.learned, 4u);
  EXPECT_EQ(s.hits, 3u);
  EXPECT_EQ(s.misses, 3u);
}

TEST(DnsNames, CnameChainMapsToQuestion) {
  DnsNames d(16);
  learn(d,
        response("app.example.test", 1,
                 {{"", 5, 600, nameRdata("app.cdn.test")},
                  {"app.cdn.test", 5, 600, nameRdata("edge7.cdn.test")},
                  {"edge7.cdn.test", 1, 120, {203, 0, 113, 7}},
                  {"edge7.cdn.test", 1, 120, {203, 0, 113, 8}}}),
        0);
  EXPECT_EQ(v4(d, 203, 0, 113, 7, 0), "app.example.test");
  EXPECT_EQ(v4(d, 203, 0, 113, 8, 0), "app.example.test");
  // Lifetime from the smallest answer TTL (120 s).
  EXPECT_TRUE(v4(d, 203, 0, 113, 7, 119'999));
  EXPECT_FALSE(v4(d, 203, 0, 113, 7, 120'000));
}

TEST(DnsNames, LifetimeRaisedAndCapped) {
  DnsNames d(16);
  learn(d, dnsAnswerA(1, "short.test", {5}), 1000);  // 198.18.1.1 for 60 s
  EXPECT_EQ(v4(d, 198, 18, 1, 1, 1000 + 59'999), "short.test");
  EXPECT_FALSE(v4(d, 198, 18, 1, 1, 1000 + 60'000));
  EXPECT_EQ(d.size(), 0u);  // expired and erased
  EXPECT_EQ(d.stats().expired, 1u);
  learn(d, dnsAnswerA(1, "zero.test", {0}), 0);
  EXPECT_EQ(v4(d, 198, 18, 1, 1, 59'000), "zero.test");
  learn(d, dnsAnswerA(1, "long.test", {86400}), 0);
  EXPECT_EQ(v4(d, 198, 18, 1, 1, 3'599'999), "long.test");
  EXPECT_FALSE(v4(d, 198, 18, 1, 1, 3'600'000));
}

TEST(DnsNames, NewerAnswerReplaces) {
  DnsNames d(16);
  learn(d, dnsAnswerA(1, "first.test", {3000}), 0);
  learn(d, dnsAnswerA(1, "second.test", {60}), 10'000);
  EXPECT_EQ(v4(d, 198, 18, 1, 1, 10'000), "second.test");
  EXPECT_EQ(d.size(), 1u);
  // The newer lifetime too, even though shorter.
  EXPECT_FALSE(v4(d, 198, 18, 1, 1, 70'000));
}

TEST(DnsNames, CapacityEvictsLeastRecentlyUsed) {
  DnsNames d(3);
  for (uint8_t i = 1; i <= 3; ++i) {
    learn(d, response("n" + std::to_string(i) + ".test", 1, {{"", 1, 300, {10, 0, 0, i}}}), 0);
  }
  EXPECT_TRUE(v4(d, 10, 0, 0, 1, 0));  // 1 is now the most recent; 2 the oldest
  learn(d, response("n4.test", 1, {{"", 1, 300, {10, 0, 0, 4}}}), 0);
  EXPECT_EQ(d.size(), 3u);
  EXPECT_FALSE(v4(d, 10, 0, 0, 2, 0));
  EXPECT_EQ(v4(d, 10, 0, 0, 1, 0), "n1.test");
  EXPECT_EQ(v4(d, 10, 0, 0, 3, 0), "n3.test");
  EXPECT_EQ(v4(d, 10, 0, 0, 4, 0), "n4.test");
  EXPECT_EQ(d.stats().evicted, 1u);
  // One answer with more addresses than the capacity keeps the last ones.
  std::vector<Rr> many;
  for (uint8_t i = 1; i <= 5; ++i) many.push_back({"", 1, 300, {10, 1, 0, i}});
  learn(d, response("many.test", 1, many), 0);
  EXPECT_EQ(d.size(), 3u);
  EXPECT_FALSE(v4(d, 10, 1, 0, 2, 0));
  EXPECT_EQ(v4(d, 10, 1, 0, 5, 0), "many.test");
  d.clear();
  EXPECT_EQ(d.size(), 0u);
  EXPECT_FALSE(v4(d, 10, 1, 0, 5, 0));

  DnsNames off(0);
  learn(off, dnsAnswerA(1, "x.test", {300}), 0);
  EXPECT_EQ(off.size(), 0u);
}

TEST(DnsNames, IgnoresWhatIsNotAnAnswer) {
  DnsNames d(16);
  learn(d, dnsQuery(1, "query.test"), 0);                                   // not a response
  learn(d, dnsAnswerA(1, "servfail.test", {300}, 2), 0);                    // rcode 2
  learn(d, dnsAnswerA(1, "nx.test", {300}, 3), 0);                          // rcode 3
  learn(d, dnsHeader(1, 0x8180, 0, 0, 0, 0), 0);                            // no question
  learn(d, response("bad name.test", 1, {{"", 1, 300, {1, 2, 3, 4}}}), 0);  // unnameable
  learn(d, response("dot\\.test", 1, {{"", 1, 300, {1, 2, 3, 5}}}), 0);
  learn(d, response("mx.test", 15, {{"", 15, 300, nameRdata("mail.test")}}), 0);
  learn(d, response("short.test", 1, {{"", 1, 300, {1, 2, 3}}}), 0);  // A of 3 bytes
  Bytes ok = dnsAnswerA(1, "cut.test", {300});
  for (size_t k = 0; k < ok.size(); ++k) {
    Bytes cut(ok.begin(), ok.begin() + static_cast<long>(k));
    learn(d, cut, 0);
  }
  Bytes junk = {1, 2, 3};
  learn(d, junk, 0);
  d.learn(nullptr, 0, 0);
  EXPECT_EQ(d.size(), 0u);
  EXPECT_EQ(d.stats().learned, 0u);
}

TEST(DnsNames, CaseFolded) {
  DnsNames d(16);
  learn(d, response("MiXeD.CaSe.TEST", 1, {{"", 1, 300, {192, 0, 2, 1}}}), 0);
  EXPECT_EQ(v4(d, 192, 0, 2, 1, 0), "mixed.case.test");
}

}  // namespace
}  // namespace vt::client
