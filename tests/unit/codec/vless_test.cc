#include "codec/vless.h"

#include <gtest/gtest.h>

#include <random>
#include <sstream>

#include "codec/length_frame.h"
#include "codec/udp_packet.h"
#include "codec_test_util.h"
#include "core/bytes.h"

namespace vt::codec {
namespace {

using test::checkDoneEverySplit;
using test::checkInvalidAt;
using test::checkNeedMore;
using test::hex;

constexpr const char* kUuidHex = "a684455cb14f11eabf0d42010aaa0003";

std::string describe(const Address& a) {
  const char* t = a.type == Address::Type::kIpv4 ? "4" : a.type == Address::Type::kIpv6 ? "6" : "d";
  return std::string(t) + ":" + a.toString();
}

std::string summarizeRequest(const BufferChain& in) {
  Request req;
  RequestDecodeResult r = decodeRequest(in, req);
  if (r.status == DecodeStatus::kNeedMore) return "need";
  if (r.status == DecodeStatus::kInvalid) return "invalid: " + r.error;
  std::ostringstream os;
  os << "done " << r.consumed << " | v" << int(req.version) << " " << toHex(req.uuid.data(), 16)
     << " cmd " << int(req.command) << " target "
     << (req.target ? describe(*req.target) : std::string("-")) << " addons "
     << toHex(req.v0_addons) << " multi " << req.udp_multi << " session "
     << (req.udp_session ? std::to_string(*req.udp_session) : std::string("-")) << " pad "
     << (req.padding ? toHex(*req.padding) : std::string("-")) << " want_ip " << req.want_ip
     << " reuse " << req.reuse;
  return os.str();
}

std::vector<uint8_t> encoded(const Request& req) {
  BufferChain out;
  encodeRequest(req, out);
  return out.toVector();
}

Request decodedWhole(const std::vector<uint8_t>& bytes) {
  Request req;
  BufferChain c = test::chainOf(bytes);
  EXPECT_EQ(decodeRequest(c, req).status, DecodeStatus::kDone);
  return req;
}

Uuid testUuid() {
  Uuid u;
  EXPECT_TRUE(parseUuid("a684455c-b14f-11ea-bf0d-42010aaa0003", u));
  return u;
}

// --- Appendix A vectors -------------------------------------------------

TEST(VlessRequest, V0TcpExampleCom) {
  auto bytes = hex(
      "00 a6 84 45 5c b1 4f 11 ea bf 0d 42 01 0a aa 00 03 00 01 01 bb 02 0b 65 78 61 6d 70 6c 65 "
      "2e 63 6f 6d 47 45 54 20 2f");
  ASSERT_EQ(bytes.size(), 39u);
  std::string s = checkDoneEverySplit(bytes, 34, summarizeRequest);
  EXPECT_NE(s.find("v0 a684455cb14f11eabf0d42010aaa0003 cmd 1 target d:example.com:443"),
            std::string::npos)
      << s;
  Request req = decodedWhole(bytes);
  EXPECT_EQ(encoded(req), std::vector<uint8_t>(bytes.begin(), bytes.begin() + 34));
}

TEST(VlessRequest, V0VisionAddons) {
  auto bytes = hex(
      "00 a6 84 45 5c b1 4f 11 ea bf 0d 42 01 0a aa 00 03 12 0a 10 78 74 6c 73 2d 72 70 72 78 2d "
      "76 69 73 69 6f 6e 01 01 bb 01 01 02 03 04");
  ASSERT_EQ(bytes.size(), 44u);
  std::string s = checkDoneEverySplit(bytes, 44, summarizeRequest);
  EXPECT_NE(s.find("target 4:1.2.3.4:443 addons 0a1078746c732d727072782d766973696f6e"),
            std::string::npos)
      << s;
  EXPECT_EQ(encoded(decodedWhole(bytes)), bytes);
}

TEST(VlessRequest, V0UdpWithFirstPacket) {
  auto bytes = hex(
      "00 a6 84 45 5c b1 4f 11 ea bf 0d 42 01 0a aa 00 03 00 02 00 35 01 08 08 08 08 00 21 12 34 "
      "01 00 00 01 00 00 00 00 00 00 03 77 77 77 07 65 78 61 6d 70 6c 65 03 63 6f 6d 00 00 01 00 "
      "01");
  ASSERT_EQ(bytes.size(), 61u);
  std::string s = checkDoneEverySplit(bytes, 26, summarizeRequest);
  EXPECT_NE(s.find("cmd 2 target 4:8.8.8.8:53"), std::string::npos) << s;
  EXPECT_EQ(encoded(decodedWhole(bytes)), std::vector<uint8_t>(bytes.begin(), bytes.begin() + 26));
  // The packet after the header: LEN 33, moved out whole.
  BufferChain c = test::chainOf(bytes);
  c.drain(26);
  PacketDecodeResult p = decodeLengthPacket(c);
  ASSERT_EQ(p.status, DecodeStatus::kDone);
  EXPECT_EQ(p.payload_size, 33u);
  BufferChain payload;
  takePacket(c, p, payload);
  EXPECT_TRUE(c.empty());
  EXPECT_EQ(toHex(payload.toVector()).substr(0, 8), "12340100");
}

TEST(VlessRequest, V0MuxHasNoAddress) {
  auto bytes = hex("00 a6 84 45 5c b1 4f 11 ea bf 0d 42 01 0a aa 00 03 00 03");
  std::string s = checkDoneEverySplit(bytes, 19, summarizeRequest);
  EXPECT_NE(s.find("cmd 3 target -"), std::string::npos) << s;
  EXPECT_EQ(encoded(decodedWhole(bytes)), bytes);
}

TEST(VlessRequest, V1Tcp) {
  auto bytes = hex(
      "01 a6 84 45 5c b1 4f 11 ea bf 0d 42 01 0a aa 00 03 00 01 01 bb 02 0b 65 78 61 6d 70 6c 65 "
      "2e 63 6f 6d 47 45 54 20 2f");
  std::string s = checkDoneEverySplit(bytes, 34, summarizeRequest);
  EXPECT_NE(s.find("v1 a684455cb14f11eabf0d42010aaa0003 cmd 1 target d:example.com:443 addons  "
                   "multi 0 session - pad - want_ip 0 reuse 0"),
            std::string::npos)
      << s;
  EXPECT_EQ(encoded(decodedWhole(bytes)), std::vector<uint8_t>(bytes.begin(), bytes.begin() + 34));
}

TEST(VlessRequest, V1UdpClassicHeaderAndPackets) {
  auto bytes = hex(std::string("01") + kUuidHex +
                   "00 02 00 35 01 08 08 08 08 | 00 35 01 08 08 08 08 00 04 aa bb cc dd");
  std::string s = checkDoneEverySplit(bytes, 26, summarizeRequest);
  EXPECT_NE(s.find("cmd 2 target 4:8.8.8.8:53"), std::string::npos) << s;
  EXPECT_EQ(encoded(decodedWhole(bytes)), std::vector<uint8_t>(bytes.begin(), bytes.begin() + 26));
}

TEST(VlessRequest, V1UdpMultiHeader) {
  auto bytes = hex(std::string("01") + kUuidHex + "01 02 0d 96 01 01 02 03 04 | 00 04 aa bb cc dd");
  std::string s = checkDoneEverySplit(bytes, 26, summarizeRequest);
  EXPECT_NE(s.find("cmd 2 target 4:1.2.3.4:3478 addons  multi 1"), std::string::npos) << s;
  EXPECT_EQ(encoded(decodedWhole(bytes)), std::vector<uint8_t>(bytes.begin(), bytes.begin() + 26));
}

TEST(VlessRequest, V1MuxDecodesAppendixAddressEncodesPlaceholder) {
  auto appendix =
      hex(std::string("01") + kUuidHex + "00 03 01 bb 02 0b 65 78 61 6d 70 6c 65 2e 63 6f 6d");
  std::string s = checkDoneEverySplit(appendix, appendix.size(), summarizeRequest);
  EXPECT_NE(s.find("cmd 3 target d:example.com:443"), std::string::npos) << s;
  // Ours: v1.mux.cool:1, whatever the target.
  auto ours = hex(std::string("01") + kUuidHex + "00 03 00 01 02 0b 76 31 2e 6d 75 78 2e 63 6f 6f 6c");
  s = checkDoneEverySplit(ours, ours.size(), summarizeRequest);
  EXPECT_NE(s.find("cmd 3 target d:v1.mux.cool:1"), std::string::npos) << s;
  EXPECT_EQ(encoded(decodedWhole(appendix)), ours);
}

// --- our own v1 vectors ---------------------------------------------------

TEST(VlessRequest, V1AllTlvs) {
  auto bytes = hex(std::string("01") + kUuidHex +
                   "02 05 | 01 00 | 03 08 01 02 03 04 05 06 07 08 | 05 03 aa bb cc | 06 00 | 07 00"
                   "| 01 | 01 bb 01 01 02 03 04");
  std::string s = checkDoneEverySplit(bytes, bytes.size(), summarizeRequest);
  EXPECT_NE(s.find("multi 1 session 72623859790382856 pad aabbcc want_ip 1 reuse 1"),
            std::string::npos)
      << s;
  EXPECT_EQ(encoded(decodedWhole(bytes)), bytes);
}

TEST(VlessRequest, V1IpCommandHasNoAddress) {
  auto bytes = hex(std::string("01") + kUuidHex + "00 05 | 00 14 45");
  std::string s = checkDoneEverySplit(bytes, 19, summarizeRequest);
  EXPECT_NE(s.find("cmd 5 target -"), std::string::npos) << s;
  EXPECT_EQ(encoded(decodedWhole(bytes)), std::vector<uint8_t>(bytes.begin(), bytes.begin() + 19));
}

TEST(VlessRequest, UnknownNonCriticalTlvIsSkipped) {
  auto bytes = hex(std::string("01") + kUuidHex + "02 02 40 03 aa bb cc 06 00 01 01 bb 01 01 02 03 04");
  std::string s = checkDoneEverySplit(bytes, bytes.size(), summarizeRequest);
  EXPECT_NE(s.find("want_ip 1"), std::string::npos) << s;
}

TEST(VlessRequest, UdpPortZeroAndEmptyTlvListAccepted) {
  auto bytes = hex(std::string("01") + kUuidHex + "02 00 02 00 00 01 01 02 03 04");
  checkDoneEverySplit(bytes, bytes.size(), summarizeRequest);
}

TEST(VlessRequest, Ipv4MappedIpv6DecodesAsIpv4) {
  auto bytes = hex(std::string("01") + kUuidHex +
                   "00 01 00 50 03 00000000000000000000ffff01020304");
  std::string s = checkDoneEverySplit(bytes, bytes.size(), summarizeRequest);
  EXPECT_NE(s.find("target 4:1.2.3.4:80"), std::string::npos) << s;
}

// --- hostile -------------------------------------------------------------

std::string v1(const std::string& rest) { return std::string("01") + kUuidHex + rest; }

TEST(VlessRequestInvalid, BadVersion) {
  checkInvalidAt(hex("02" + std::string(kUuidHex) + "00 01 01 bb 01 01 02 03 04"), 1,
                 summarizeRequest);
  checkInvalidAt(hex("ff"), 1, summarizeRequest);
}

TEST(VlessRequestInvalid, BadAddonByte) {
  for (const char* addon : {"03", "04", "80", "ff"}) {
    checkInvalidAt(hex(v1(std::string(addon) + "01 01 bb 01 01 02 03 04")), 18, summarizeRequest);
  }
}

TEST(VlessRequestInvalid, UnknownCriticalTlv) {
  checkInvalidAt(hex(v1("02 01 85 00 01 01 bb 01 01 02 03 04")), 20, summarizeRequest);
  checkInvalidAt(hex(v1("02 02 06 00 80 00 01 01 bb 01 01 02 03 04")), 22, summarizeRequest);
}

TEST(VlessRequestInvalid, KnownTlvWithWrongLength) {
  checkInvalidAt(hex(v1("02 01 03 07 01 02 03 04 05 06 07 01 01 bb 01 01 02 03 04")), 21,
                 summarizeRequest);
  checkInvalidAt(hex(v1("02 01 06 01 00 01 01 bb 01 01 02 03 04")), 21, summarizeRequest);
  checkInvalidAt(hex(v1("02 01 01 01 00 01 01 bb 01 01 02 03 04")), 21, summarizeRequest);
}

TEST(VlessRequestInvalid, DuplicateTlv) {
  checkInvalidAt(hex(v1("02 02 07 00 07 00 01 01 bb 01 01 02 03 04")), 22, summarizeRequest);
}

TEST(VlessRequestInvalid, TlvListOverCapIsInvalidNotNeedMore) {
  // Unknown non-critical TLVs of 255 bytes: the 4th LEN passes 1024 bytes.
  std::string rest = "02 05";
  for (int i = 0; i < 5; ++i) rest += "40 ff" + std::string(255 * 2, 'a');
  auto bytes = hex(v1(rest));
  size_t at = 1 + 16 + 2 + 3 * 257 + 2;
  checkInvalidAt(bytes, at, summarizeRequest);
  EXPECT_LT(at, kMaxRequestHeader);
}

TEST(VlessRequestInvalid, TlvPastTheEndIsNeedMore) {
  // LEN covers bytes that have not arrived: truncated, never invalid.
  checkNeedMore(hex(v1("02 01 05 10 aa bb cc dd 01")), summarizeRequest);
}

TEST(VlessRequestInvalid, BadCommand) {
  for (const char* cmd : {"00", "04", "06", "7f", "ff"}) {
    checkInvalidAt(hex(v1(std::string("00") + cmd + "01 bb 01 01 02 03 04")), 19,
                   summarizeRequest);
  }
  for (const char* cmd : {"00", "04", "05"}) {
    checkInvalidAt(hex(std::string("00") + kUuidHex + "00" + cmd + "01 bb 01 01 02 03 04"), 19,
                   summarizeRequest);
  }
}

TEST(VlessRequestInvalid, BadAddressType) {
  for (const char* atyp : {"00", "04", "ff"}) {
    checkInvalidAt(hex(v1(std::string("00 01 01 bb") + atyp + "01 02 03 04")), 22,
                   summarizeRequest);
  }
}

TEST(VlessRequestInvalid, ZeroLengthDomain) {
  checkInvalidAt(hex(v1("00 01 01 bb 02 00")), 23, summarizeRequest);
}

TEST(VlessRequestInvalid, TcpPortZero) {
  checkInvalidAt(hex(v1("00 01 00 00 01 01 02 03 04")), 21, summarizeRequest);
  checkInvalidAt(hex(std::string("00") + kUuidHex + "00 01 00 00 02 01 61"), 21,
                 summarizeRequest);
}

TEST(VlessRequestInvalid, TruncatedIsNeedMore) {
  checkNeedMore(hex(v1("00 01 01 bb 02 0b 65 78 61")), summarizeRequest);
  checkNeedMore(hex("00" + std::string(kUuidHex) + "12 0a 10 78"), summarizeRequest);
}

// --- round trips -----------------------------------------------------------

Address randomAddress(std::mt19937& rng, bool tcp) {
  uint16_t port = static_cast<uint16_t>(rng());
  if (tcp && port == 0) port = 1;
  uint8_t ip[16];
  for (auto& b : ip) b = static_cast<uint8_t>(rng());
  switch (rng() % 5) {
    case 0:
      return Address::ipv4(ip, port);
    case 1:
      ip[0] = 0x20;  // not mapped
      return Address::ipv6(ip, port);
    case 2: {
      uint8_t mapped[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, ip[0], ip[1], ip[2], ip[3]};
      return Address::ipv6(mapped, port);
    }
    case 3:
      return Address::fromDomain("a", port);
    default:
      return Address::fromDomain(std::string(255, static_cast<char>('a' + rng() % 26)), port);
  }
}

TEST(VlessRequest, RandomRoundTrips) {
  std::mt19937 rng(1234);
  for (int i = 0; i < 400; ++i) {
    Request req;
    req.version = rng() % 2;
    req.uuid = testUuid();
    req.uuid[15] = static_cast<uint8_t>(i);
    const Command v0cmds[] = {Command::kTcp, Command::kUdp, Command::kMux};
    const Command v1cmds[] = {Command::kTcp, Command::kUdp, Command::kMux, Command::kIp};
    req.command = req.version == 0 ? v0cmds[rng() % 3] : v1cmds[rng() % 4];
    if (req.command == Command::kTcp || req.command == Command::kUdp) {
      req.target = randomAddress(rng, req.command == Command::kTcp);
    } else if (req.version == 1 && req.command == Command::kMux) {
      req.target = Address::fromDomain(kMuxPlaceholderHost, kMuxPlaceholderPort);
    }
    if (req.version == 0) {
      req.v0_addons.resize(rng() % 40);
      for (auto& b : req.v0_addons) b = static_cast<uint8_t>(rng());
    } else {
      req.udp_multi = rng() % 2;
      if (rng() % 2) req.udp_session = (uint64_t{rng()} << 32) | rng();
      if (rng() % 2) {
        req.padding = std::vector<uint8_t>(rng() % 2 ? 255 : rng() % 8);
        for (auto& b : *req.padding) b = static_cast<uint8_t>(rng());
      }
      req.want_ip = rng() % 2;
      req.reuse = rng() % 2;
    }
    auto bytes = encoded(req);
    ASSERT_LE(bytes.size(), kMaxRequestHeader);
    Request back;
    BufferChain c = test::chainOf(bytes);
    RequestDecodeResult r = decodeRequest(c, back);
    ASSERT_EQ(r.status, DecodeStatus::kDone) << r.error << " " << toHex(bytes);
    EXPECT_EQ(r.consumed, bytes.size());
    EXPECT_TRUE(back == req) << i << " " << toHex(bytes);
    if (i < 40) checkDoneEverySplit(bytes, bytes.size(), summarizeRequest);
  }
}

TEST(VlessRequest, EncoderPicksShortestAddon) {
  Request req;
  req.uuid = testUuid();
  req.command = Command::kUdp;
  req.target = Address::ipv4(0x01020304, 53);
  EXPECT_EQ(encoded(req)[17], 0x00);
  req.udp_multi = true;
  EXPECT_EQ(encoded(req)[17], 0x01);
  req.reuse = true;
  EXPECT_EQ(toHex(encoded(req)).substr(34, 12), "020201000700");
}

// --- v0 response, want_ip, uuid ------------------------------------------

std::string summarizeResponse(const BufferChain& in) {
  ResponseDecodeResult r = decodeV0Response(in);
  if (r.status == DecodeStatus::kNeedMore) return "need";
  if (r.status == DecodeStatus::kInvalid) return "invalid: " + r.error;
  return "done " + std::to_string(r.consumed) + " |";
}

TEST(VlessResponse, V0) {
  BufferChain out;
  encodeV0Response(out);
  EXPECT_EQ(toHex(out.toVector()), "0000");
  checkDoneEverySplit(hex("00 00"), 2, summarizeResponse);
  checkDoneEverySplit(hex("00 00 | 00 04 de ad be ef"), 2, summarizeResponse);
  checkDoneEverySplit(hex("00 03 aa bb cc | 47"), 5, summarizeResponse);
  checkInvalidAt(hex("01 00"), 1, summarizeResponse);
}

std::string summarizeWantIp(const BufferChain& in) {
  WantIpDecodeResult r = decodeWantIpPrefix(in);
  if (r.status == DecodeStatus::kNeedMore) return "need";
  if (r.status == DecodeStatus::kInvalid) return "invalid: " + r.error;
  return "done " + std::to_string(r.consumed) + " | " + (r.ip ? describe(*r.ip) : "-");
}

TEST(WantIp, Vectors) {
  auto check = [](const std::optional<Address>& a, const char* want_hex, const char* want) {
    BufferChain out;
    encodeWantIpPrefix(a, out);
    auto bytes = out.toVector();
    EXPECT_EQ(toHex(bytes), want_hex);
    bytes.push_back(0x47);  // payload follows
    EXPECT_EQ(checkDoneEverySplit(bytes, bytes.size() - 1, summarizeWantIp), want);
  };
  check(std::nullopt, "00", "done 1 | -");
  check(Address::ipv4(0x5db8d822, 443), "01015db8d822", "done 6 | 4:93.184.216.34:0");
  uint8_t v6[16] = {0x26, 0x06, 0x28, 0, 0x02, 0x20, 0, 1, 0x2, 0x48, 0x18, 0x93, 0x25, 0xc8, 0x19, 0x46};
  check(Address::ipv6(v6, 443), "010326062800022000010248189325c81946",
        "done 18 | 6:[2606:2800:220:1:248:1893:25c8:1946]:0");
  uint8_t mapped[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2, 3, 4};
  check(Address::ipv6(mapped, 1), "010101020304", "done 6 | 4:1.2.3.4:0");
  check(Address::fromDomain("example.com", 1), "00", "done 1 | -");
}

TEST(WantIp, Invalid) {
  checkInvalidAt(hex("02"), 1, summarizeWantIp);
  checkInvalidAt(hex("01 02 0b 65"), 2, summarizeWantIp);
  checkInvalidAt(hex("01 04 01 02 03 04"), 2, summarizeWantIp);
  checkNeedMore(hex("01 03 01 02 03"), summarizeWantIp);
}

TEST(Uuid, ParseAndFormat) {
  Uuid u;
  ASSERT_TRUE(parseUuid("a684455c-b14f-11ea-bf0d-42010aaa0003", u));
  EXPECT_EQ(toHex(u.data(), 16), kUuidHex);
  EXPECT_EQ(uuidToString(u), "a684455c-b14f-11ea-bf0d-42010aaa0003");
  ASSERT_TRUE(parseUuid("A684455CB14F11EABF0D42010AAA0003", u));
  EXPECT_EQ(toHex(u.data(), 16), kUuidHex);
  EXPECT_FALSE(parseUuid("a684455c-b14f-11ea-bf0d-42010aaa000", u));
  EXPECT_FALSE(parseUuid("a684455cb-14f-11ea-bf0d-42010aaa0003", u));
  EXPECT_FALSE(parseUuid("g684455c-b14f-11ea-bf0d-42010aaa0003", u));
  EXPECT_FALSE(parseUuid("", u));
}

}  // namespace
}  // namespace vt::codec
