// codec/dns: header, questions, compression (incl. loops), truncation,
// counts, TTL offsets and the SOA negative TTL.
#include "codec/dns.h"

#include <gtest/gtest.h>

#include "unit/codec/dns_builder.h"

namespace vt::codec {
namespace {

using test::dnsAnswerA;
using test::dnsHeader;
using test::dnsNxDomain;
using test::dnsPut16;
using test::dnsPutName;
using test::dnsQuery;

bool parse(const std::vector<uint8_t>& v, DnsMessage& m, std::string& err) {
  return parseDnsMessage(v.data(), v.size(), m, err);
}

TEST(Dns, QueryHeaderAndQuestion) {
  auto q = dnsQuery(0x1234, "WWW.Example.TEST", 28);
  DnsMessage m;
  std::string err;
  ASSERT_TRUE(parse(q, m, err)) << err;
  EXPECT_EQ(m.id, 0x1234);
  EXPECT_FALSE(m.isResponse());
  EXPECT_EQ(m.opcode(), 0);
  ASSERT_EQ(m.questions.size(), 1u);
  EXPECT_EQ(m.questions[0].type, 28);
  EXPECT_EQ(m.questions[0].klass, 1);
  EXPECT_EQ(m.questions[0].text(), "www.example.test.");  // lowered
  EXPECT_EQ(m.questions[0].wireName, std::string("\3www\7example\4test\0", 18));
  EXPECT_EQ(m.questionsEnd, q.size());
  EXPECT_TRUE(m.ttlOffsets.empty());
}

TEST(Dns, AnswerWithCompressionAndTtls) {
  auto a = dnsAnswerA(7, "example.test", {120, 30, 600});
  DnsMessage m;
  std::string err;
  ASSERT_TRUE(parse(a, m, err)) << err;
  EXPECT_TRUE(m.isResponse());
  EXPECT_FALSE(m.truncated());
  EXPECT_EQ(m.rcode(), 0);
  EXPECT_EQ(m.ancount, 3);
  EXPECT_EQ(m.minAnswerTtl, 30u);
  ASSERT_EQ(m.ttlOffsets.size(), 3u);
  EXPECT_EQ(dnsReadU32(a.data() + m.ttlOffsets[1]), 30u);
}

TEST(Dns, NxDomainSoaNegativeTtl) {
  auto a = dnsNxDomain(9, "nope.test", 3600, 45);
  DnsMessage m;
  std::string err;
  ASSERT_TRUE(parse(a, m, err)) << err;
  EXPECT_EQ(m.rcode(), kDnsRcodeNxDomain);
  EXPECT_TRUE(m.hasSoa);
  EXPECT_EQ(m.soaNegativeTtl, 45u);
  EXPECT_EQ(m.ttlOffsets.size(), 1u);
}

TEST(Dns, OptRecordTtlIsNotATtl) {
  auto a = dnsAnswerA(7, "example.test", {100});
  a[11] = 1;  // ARCOUNT 1
  a.push_back(0);  // root name
  dnsPut16(a, kDnsTypeOpt);
  dnsPut16(a, 1232);
  for (int i = 0; i < 4; ++i) a.push_back(0);
  dnsPut16(a, 0);
  DnsMessage m;
  std::string err;
  ASSERT_TRUE(parse(a, m, err)) << err;
  EXPECT_EQ(m.ttlOffsets.size(), 1u);
}

TEST(Dns, PointerLoopsAreRejected) {
  // Question name is a pointer to itself.
  auto v = dnsHeader(1, 0x0100, 1, 0, 0, 0);
  dnsPut16(v, 0xC00C);
  dnsPut16(v, 1);
  dnsPut16(v, 1);
  DnsMessage m;
  std::string err;
  EXPECT_FALSE(parse(v, m, err));
  EXPECT_NE(err.find("pointer"), std::string::npos) << err;

  // Two names pointing at each other: label then pointer forward.
  v = dnsHeader(1, 0x8180, 1, 1, 0, 0);
  dnsPutName(v, "a");  // 12: 1 'a' 0
  dnsPut16(v, 1);
  dnsPut16(v, 1);
  size_t rr = v.size();
  v.push_back(1);
  v.push_back('b');
  dnsPut16(v, static_cast<uint16_t>(0xC000 | (rr + 4)));  // forward pointer
  dnsPut16(v, 0xC000 | static_cast<uint16_t>(rr));        // back into the name
  EXPECT_FALSE(parse(v, m, err));

  // A pointer past the end.
  v = dnsHeader(1, 0x0100, 1, 0, 0, 0);
  v.push_back(0xC0);
  EXPECT_FALSE(parse(v, m, err));
}

TEST(Dns, BadLabelsAndLongNames) {
  auto v = dnsHeader(1, 0x0100, 1, 0, 0, 0);
  v.push_back(0x40);  // extended label type
  v.push_back(0);
  DnsMessage m;
  std::string err;
  EXPECT_FALSE(parse(v, m, err));

  std::string longName;
  for (int i = 0; i < 5; ++i) longName += std::string(60, 'a') + ".";
  longName += "test";
  auto q = dnsQuery(1, longName);
  EXPECT_FALSE(parse(q, m, err));
  EXPECT_NE(err.find("255"), std::string::npos) << err;
}

TEST(Dns, TruncatedEverywhereFailsCleanly) {
  auto a = dnsAnswerA(7, "example.test", {120, 30});
  for (size_t n = 0; n < a.size(); ++n) {
    DnsMessage m;
    std::string err;
    EXPECT_FALSE(parseDnsMessage(a.data(), n, m, err)) << n;
    EXPECT_FALSE(err.empty());
  }
  // Trailing bytes are tolerated.
  a.push_back(0);
  DnsMessage m;
  std::string err;
  EXPECT_TRUE(parse(a, m, err)) << err;
}

TEST(Dns, BadCounts) {
  auto q = dnsQuery(1, "example.test");
  DnsMessage m;
  std::string err;
  auto v = q;
  v[7] = 0xFF;  // ANCOUNT 255 with nothing behind
  EXPECT_FALSE(parse(v, m, err));
  v = q;
  v[5] = 9;  // QDCOUNT 9
  EXPECT_FALSE(parse(v, m, err));
  v = q;
  v[5] = 2;  // QDCOUNT 2, one present
  EXPECT_FALSE(parse(v, m, err));
  v = q;
  v[9] = 1;  // an RR whose RDLEN runs past the end
  dnsPut16(v, 0xC00C);
  for (uint16_t x : {1, 1, 0, 60, 100}) dnsPut16(v, x);
  v[7] = 0;
  v[9] = 1;
  EXPECT_FALSE(parse(v, m, err));
  EXPECT_NE(err.find("RDATA"), std::string::npos) << err;
}

TEST(Dns, NameHelperStopsAtFirstPointer) {
  auto a = dnsAnswerA(7, "example.test", {120});
  std::string wire;
  size_t next = 0;
  std::string err;
  size_t rr = 12 + 14 + 4;
  ASSERT_TRUE(readDnsName(a.data(), a.size(), rr, wire, next, err)) << err;
  EXPECT_EQ(next, rr + 2);
  EXPECT_EQ(wire, std::string("\7example\4test\0", 14));
}

}  // namespace
}  // namespace vt::codec
