#include "codec/address.h"

#include <gtest/gtest.h>

#include "buffer/cursor.h"
#include "codec_test_util.h"
#include "core/bytes.h"

namespace vt::codec {
namespace {

std::string vlessHex(const Address& a) {
  BufferChain out;
  encodeVlessAddress(a, out);
  EXPECT_EQ(out.size(), vlessAddressSize(a));
  return toHex(out.toVector());
}

std::string socksHex(const Address& a) {
  BufferChain out;
  encodeSocksAddress(a, out);
  EXPECT_EQ(out.size(), socksAddressSize(a));
  return toHex(out.toVector());
}

TEST(Address, EncodesBothOrders) {
  EXPECT_EQ(vlessHex(Address::ipv4(0x08080808, 53)), "00350108080808");
  EXPECT_EQ(socksHex(Address::ipv4(0x08080808, 53)), "01080808080035");
  EXPECT_EQ(vlessHex(Address::fromDomain("example.com", 443)), "01bb020b6578616d706c652e636f6d");
  EXPECT_EQ(socksHex(Address::fromDomain("example.com", 443)), "030b6578616d706c652e636f6d01bb");
  uint8_t v6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  EXPECT_EQ(vlessHex(Address::ipv6(v6, 80)), "00500320010db8000000000000000000000001");
  EXPECT_EQ(socksHex(Address::ipv6(v6, 80)), "0420010db80000000000000000000000010050");
}

TEST(Address, MappedIpv6IsIpv4) {
  uint8_t mapped[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2, 3, 4};
  Address a = Address::ipv6(mapped, 7);
  EXPECT_EQ(a.type, Address::Type::kIpv4);
  // Even when built by hand as IPv6, the wire gets IPv4.
  Address raw;
  raw.type = Address::Type::kIpv6;
  std::copy(mapped, mapped + 16, raw.ip.begin());
  raw.port = 7;
  EXPECT_EQ(vlessHex(raw), "00070101020304");
  EXPECT_EQ(socksHex(raw), "01010203040007");
}

TEST(Address, ParseHostAndToString) {
  EXPECT_EQ(Address::parseHost("1.2.3.4", 80).toString(), "1.2.3.4:80");
  EXPECT_EQ(Address::parseHost("::1", 80).toString(), "[::1]:80");
  EXPECT_EQ(Address::parseHost("[2001:db8::1]", 443).toString(), "[2001:db8::1]:443");
  EXPECT_EQ(Address::parseHost("::ffff:1.2.3.4", 1).type, Address::Type::kIpv4);
  Address d = Address::parseHost("example.com", 443);
  EXPECT_EQ(d.type, Address::Type::kDomain);
  EXPECT_EQ(d.toString(), "example.com:443");
  EXPECT_EQ(d.hostString(), "example.com");
  EXPECT_TRUE(d.isValid());
  EXPECT_FALSE(Address::fromDomain("", 1).isValid());
  EXPECT_FALSE(Address::fromDomain(std::string(256, 'a'), 1).isValid());
  EXPECT_TRUE(Address::fromDomain(std::string(255, 'a'), 1).isValid());
}

std::string summarize(const BufferChain& in, bool socks) {
  Cursor c(in);
  Address a;
  std::string why;
  DecodeStatus s = socks ? decodeSocksAddress(c, a, why) : decodeVlessAddress(c, a, why);
  if (s == DecodeStatus::kNeedMore) {
    EXPECT_EQ(c.position(), 0u);
    return "need";
  }
  if (s == DecodeStatus::kInvalid) {
    EXPECT_EQ(c.position(), 0u);
    return "invalid: " + why;
  }
  return "done " + std::to_string(c.position()) + " | " + a.toString();
}

TEST(Address, DecodeVectors) {
  auto vless = [](const BufferChain& in) { return summarize(in, false); };
  auto socks = [](const BufferChain& in) { return summarize(in, true); };
  EXPECT_EQ(test::checkDoneEverySplit(test::hex("0035 01 08080808 ff"), 7, vless),
            "done 7 | 8.8.8.8:53");
  EXPECT_EQ(test::checkDoneEverySplit(test::hex("01 08080808 0035 ff"), 7, socks),
            "done 7 | 8.8.8.8:53");
  EXPECT_EQ(test::checkDoneEverySplit(test::hex("03 08 5544505f434f4e4e 0000"), 12, socks),
            "done 12 | UDP_CONN:0");
  // One-byte and 255-byte names.
  EXPECT_EQ(test::checkDoneEverySplit(test::hex("0001 02 01 61"), 5, vless), "done 5 | a:1");
  std::string long_name = "0001 02 ff" + std::string(510, '6');
  EXPECT_EQ(test::checkDoneEverySplit(test::hex(long_name), 259, vless),
            "done 259 | " + std::string(255, 'f') + ":1");
  for (const char* bad : {"0035 00 01020304", "0035 04 01020304", "0035 ff"}) {
    test::checkInvalidAt(test::hex(bad), 3, vless);
  }
  for (const char* bad : {"00 01020304", "02 01020304", "ff"}) {
    test::checkInvalidAt(test::hex(bad), 1, socks);
  }
  test::checkInvalidAt(test::hex("0035 02 00"), 4, vless);
  test::checkInvalidAt(test::hex("03 00 0035"), 2, socks);
}

}  // namespace
}  // namespace vt::codec
