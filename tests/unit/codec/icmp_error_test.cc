// icmpPortUnreachable: the bytes a host answers a UDP datagram with when
// nothing listens, rebuilt for a datagram a block rule refused.
#include <gtest/gtest.h>

#include <arpa/inet.h>

#include <vector>

#include "codec/icmp_error.h"

namespace vt::codec {
namespace {

uint16_t at16(const std::vector<uint8_t>& p, size_t i) {
  return static_cast<uint16_t>(p[i] << 8 | p[i + 1]);
}

// The one's-complement sum of a span that includes its checksum is 0xffff.
uint32_t sum(const uint8_t* p, size_t n, uint32_t acc = 0) {
  for (size_t i = 0; i + 1 < n; i += 2) acc += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
  if (n % 2) acc += static_cast<uint32_t>(p[n - 1] << 8);
  while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
  return acc;
}

TEST(IcmpError, Ipv4PortUnreachable) {
  uint8_t app[4], dst[4];
  inet_pton(AF_INET, "198.18.2.1", app);
  inet_pton(AF_INET, "198.18.1.2", dst);
  const uint8_t payload[] = {'W', 'H', 'O', '?'};
  auto p = icmpPortUnreachable(false, app, 40000, dst, 7302, payload, sizeof payload);
  ASSERT_EQ(p.size(), 20u + 8 + 20 + 8 + 4);
  EXPECT_EQ(p[0], 0x45);
  EXPECT_EQ(at16(p, 2), p.size());
  EXPECT_EQ(p[9], 1);  // ICMP
  EXPECT_EQ(std::vector<uint8_t>(p.begin() + 12, p.begin() + 16), std::vector<uint8_t>(dst, dst + 4));
  EXPECT_EQ(std::vector<uint8_t>(p.begin() + 16, p.begin() + 20), std::vector<uint8_t>(app, app + 4));
  EXPECT_EQ(sum(p.data(), 20), 0xffffu);  // header checksum
  EXPECT_EQ(p[20], 3);  // destination unreachable
  EXPECT_EQ(p[21], 3);  // port unreachable
  EXPECT_EQ(sum(p.data() + 20, p.size() - 20), 0xffffu);
  // The quoted datagram: app -> dst, UDP, its ports and payload.
  const size_t q = 28;
  EXPECT_EQ(p[q + 9], 17);
  EXPECT_EQ(sum(p.data() + q, 20), 0xffffu);
  EXPECT_EQ(at16(p, q + 20), 40000);
  EXPECT_EQ(at16(p, q + 22), 7302);
  EXPECT_EQ(at16(p, q + 24), 12);
  EXPECT_EQ(p.back(), '?');
}

TEST(IcmpError, Ipv6PortUnreachableWithPseudoHeader) {
  uint8_t app[16], dst[16];
  inet_pton(AF_INET6, "2001:db8:2::1", app);
  inet_pton(AF_INET6, "2001:db8:1::2", dst);
  std::vector<uint8_t> payload(3000, 0xab);  // quoted only up to 1280 in all
  auto p = icmpPortUnreachable(true, app, 40000, dst, 7302, payload.data(), payload.size());
  ASSERT_EQ(p.size(), 1280u);
  EXPECT_EQ(p[0] >> 4, 6);
  EXPECT_EQ(at16(p, 4), p.size() - 40);
  EXPECT_EQ(p[6], 58);
  EXPECT_EQ(p[40], 1);
  EXPECT_EQ(p[41], 4);
  uint32_t acc = 0;
  acc = sum(dst, 16, acc);
  acc = sum(app, 16, acc);
  acc += static_cast<uint32_t>(p.size() - 40) + 58;
  EXPECT_EQ(sum(p.data() + 40, p.size() - 40, acc), 0xffffu);
  const size_t q = 48;
  EXPECT_EQ(p[q + 6], 17);
  EXPECT_EQ(at16(p, q + 40), 40000);
  EXPECT_EQ(at16(p, q + 42), 7302);
  EXPECT_EQ(at16(p, q + 44), 3008);  // the datagram's own length, not the quote's
}

TEST(IcmpError, EmptyPayload) {
  uint8_t a[4] = {198, 18, 2, 1}, d[4] = {198, 18, 1, 2};
  auto p = icmpPortUnreachable(false, a, 1, d, 2, nullptr, 0);
  EXPECT_EQ(p.size(), 56u);
  EXPECT_EQ(sum(p.data() + 20, p.size() - 20), 0xffffu);
}

}  // namespace
}  // namespace vt::codec
