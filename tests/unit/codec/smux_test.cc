// smux VER 1 and VER 2 frames and the SimpleSocks header they carry.
#include "codec/smux.h"

#include <gtest/gtest.h>

#include <sstream>

#include "codec/simple_socks.h"
#include "codec/trojan_udp.h"
#include "codec_test_util.h"
#include "core/bytes.h"

namespace vt::codec {
namespace {

using test::checkDoneEverySplit;
using test::checkInvalidAt;
using test::checkNeedMore;
using test::hex;

std::string smux(const BufferChain& in) {
  SmuxDecodeResult r = decodeSmuxFrame(in);
  if (r.status == DecodeStatus::kNeedMore) return "need";
  if (r.status == DecodeStatus::kInvalid) return "invalid: " + r.error;
  std::vector<uint8_t> data(r.payload_size);
  in.copyOut(r.payload_offset, data.data(), data.size());
  std::ostringstream os;
  os << "done " << r.consumed << " | cmd " << int(r.header.command) << " len " << r.header.length
     << " sid " << r.header.stream_id << " " << toHex(data);
  if (r.header.command == SmuxCommand::kUpd) {
    os << "| consumed " << r.upd_consumed << " window " << r.upd_window;
  }
  if (r.header.version != kSmuxVersion1) os << " v" << int(r.header.version);
  return os.str();
}

std::string socks(const BufferChain& in) {
  SimpleSocksHeader h;
  SimpleSocksDecodeResult r = decodeSimpleSocks(in, h);
  if (r.status == DecodeStatus::kNeedMore) return "need";
  if (r.status == DecodeStatus::kInvalid) return "invalid: " + r.error;
  return "done " + std::to_string(r.consumed) + " | cmd " + std::to_string(int(h.command)) + " " +
         h.target.toString();
}

TEST(Smux, ControlFrames) {
  auto syn = hex("01 00 00 00 03 00 00 00");
  auto fin = hex("01 01 00 00 03 00 00 00");
  auto nop = hex("01 03 00 00 00 00 00 00");
  EXPECT_EQ(checkDoneEverySplit(syn, 8, smux), "done 8 | cmd 0 len 0 sid 3 ");
  EXPECT_EQ(checkDoneEverySplit(fin, 8, smux), "done 8 | cmd 1 len 0 sid 3 ");
  EXPECT_EQ(checkDoneEverySplit(nop, 8, smux), "done 8 | cmd 3 len 0 sid 0 ");
  BufferChain out;
  encodeSmuxControl(1, SmuxCommand::kSyn, 3, out);
  encodeSmuxControl(1, SmuxCommand::kFin, 3, out);
  encodeSmuxControl(1, SmuxCommand::kNop, 0, out);
  EXPECT_EQ(out.toVector(), test::concat({syn, fin, nop}));
  // A large stream id, little-endian.
  EXPECT_EQ(checkDoneEverySplit(hex("01 00 00 00 02 01 00 80"), 8, smux),
            "done 8 | cmd 0 len 0 sid 2147483906 ");
}

TEST(Smux, PshWithSimpleSocksConnect) {
  auto bytes = hex(
      "01 02 13 00 03 00 00 00 01 03 0b 65 78 61 6d 70 6c 65 2e 63 6f 6d 01 bb 47 45 54");
  EXPECT_EQ(checkDoneEverySplit(bytes, 27, smux),
            "done 27 | cmd 2 len 19 sid 3 01030b6578616d706c652e636f6d01bb474554");
  // The PSH data starts with a SimpleSocks CONNECT; "GET" follows it.
  std::vector<uint8_t> data(bytes.begin() + 8, bytes.end());
  EXPECT_EQ(checkDoneEverySplit(data, 16, socks), "done 16 | cmd 1 example.com:443");
  BufferChain inner;
  encodeSimpleSocks({SimpleSocksCommand::kTcp, Address::fromDomain("example.com", 443)}, inner);
  inner.append("GET");
  BufferChain out;
  ASSERT_TRUE(encodeSmuxPsh(1, 3, inner, out));
  EXPECT_EQ(out.toVector(), bytes);
}

TEST(Smux, PshSizeLimits) {
  BufferChain out;
  BufferChain data;
  std::vector<uint8_t> big(kSmuxMaxPshData + 1, 0x61);
  data.append(big);
  EXPECT_FALSE(encodeSmuxPsh(1, 3, data, out));
  EXPECT_EQ(data.size(), big.size());
  EXPECT_TRUE(out.empty());
  // We receive up to 65535 and PSH of length 0.
  std::vector<uint8_t> frame = hex("01 02 ff ff 05 00 00 00");
  frame.resize(8 + 65535, 0x62);
  BufferChain in = test::chainOf(frame);
  SmuxDecodeResult r = decodeSmuxFrame(in);
  EXPECT_EQ(r.status, DecodeStatus::kDone);
  EXPECT_EQ(r.payload_size, 65535u);
  EXPECT_EQ(checkDoneEverySplit(hex("01 02 00 00 05 00 00 00"), 8, smux),
            "done 8 | cmd 2 len 0 sid 5 ");
}

TEST(Smux, Version2) {
  // The reference's worked UPD: stream 3 consumed 1024, window 65536.
  auto upd = hex("02 04 08 00 03 00 00 00 00 04 00 00 00 00 01 00");
  EXPECT_EQ(checkDoneEverySplit(upd, 16, smux),
            "done 16 | cmd 4 len 8 sid 3 0004000000000100| consumed 1024 window 65536 v2");
  BufferChain out;
  encodeSmuxUpd(3, 1024, 65536, out);
  EXPECT_EQ(out.toVector(), upd);
  // Wrapping counters are just numbers.
  out.clear();
  encodeSmuxUpd(0x80000001u, 0xffffffffu, 262144, out);
  EXPECT_EQ(out.toVector(), hex("02 04 08 00 01 00 00 80 ff ff ff ff 00 00 04 00"));
  // The other commands as in VER 1, with VER 2.
  out.clear();
  encodeSmuxControl(2, SmuxCommand::kSyn, 3, out);
  encodeSmuxControl(2, SmuxCommand::kNop, 0, out);
  BufferChain data;
  data.append("hi");
  ASSERT_TRUE(encodeSmuxPsh(2, 3, data, out));
  encodeSmuxControl(2, SmuxCommand::kFin, 3, out);
  EXPECT_EQ(out.toVector(), hex("02 00 00 00 03 00 00 00  02 03 00 00 00 00 00 00"
                                "02 02 02 00 03 00 00 00 68 69  02 01 00 00 03 00 00 00"));
  EXPECT_EQ(checkDoneEverySplit(hex("02 02 02 00 03 00 00 00 68 69"), 10, smux),
            "done 10 | cmd 2 len 2 sid 3 6869 v2");
  // UPD must carry exactly 8 bytes.
  checkInvalidAt(hex("02 04 00 00 03 00 00 00"), 4, smux);
  checkInvalidAt(hex("02 04 09 00 03 00 00 00"), 4, smux);
  checkInvalidAt(hex("02 05 00 00 03 00 00 00"), 2, smux);
  checkNeedMore(hex("02 04 08 00 03 00 00 00 00 04 00"), smux);
}

TEST(Smux, Invalid) {
  checkInvalidAt(hex("03 00 00 00 03 00 00 00"), 1, smux);
  checkInvalidAt(hex("00 00 00 00 03 00 00 00"), 1, smux);
  // UPD does not exist in VER 1.
  checkInvalidAt(hex("01 04 08 00 03 00 00 00"), 2, smux);
  checkInvalidAt(hex("01 ff 00 00 03 00 00 00"), 2, smux);
  checkInvalidAt(hex("01 00 01 00 03 00 00 00 aa"), 4, smux);
  checkInvalidAt(hex("01 01 00 01 03 00 00 00"), 4, smux);
  checkInvalidAt(hex("01 03 05 00 00 00 00 00"), 4, smux);
  checkNeedMore(hex("01 02 05 00 03 00 00 00 aa bb"), smux);
}

TEST(SimpleSocks, UdpHeaders) {
  // trojan-go: UDP_CONN:0.
  auto tg = hex("03 03 08 55 44 50 5f 43 4f 4e 4e 00 00");
  EXPECT_EQ(checkDoneEverySplit(tg, 13, socks), "done 13 | cmd 3 UDP_CONN:0");
  BufferChain out;
  encodeSimpleSocks({SimpleSocksCommand::kUdp, Address::fromDomain("UDP_CONN", 0)}, out);
  EXPECT_EQ(out.toVector(), tg);
  // vs: real target, then the first Trojan-style packet.
  auto vs = hex("03 01 08 08 08 08 00 35 | 01 08 08 08 08 00 35 00 02 0d 0a ab cd");
  EXPECT_EQ(checkDoneEverySplit(vs, 8, socks), "done 8 | cmd 3 8.8.8.8:53");
  BufferChain rest = test::chainOf(vs);
  rest.drain(8);
  EXPECT_EQ(decodeTrojanUdpPacket(rest).status, DecodeStatus::kDone);
}

TEST(SimpleSocks, RoundTrips) {
  uint8_t v6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  for (const Address& a : {Address::ipv4(0x7f000001, 80), Address::ipv6(v6, 443),
                           Address::fromDomain("a", 1), Address::fromDomain(std::string(255, 'z'), 2)}) {
    for (auto cmd : {SimpleSocksCommand::kTcp, SimpleSocksCommand::kUdp}) {
      SimpleSocksHeader h{cmd, a};
      BufferChain out;
      encodeSimpleSocks(h, out);
      EXPECT_LE(out.size(), kMaxSimpleSocksHeader);
      SimpleSocksHeader back;
      SimpleSocksDecodeResult r = decodeSimpleSocks(out, back);
      ASSERT_EQ(r.status, DecodeStatus::kDone) << r.error;
      EXPECT_EQ(r.consumed, out.size());
      EXPECT_TRUE(back == h);
    }
  }
}

TEST(SimpleSocks, Invalid) {
  for (const char* cmd : {"00", "02", "04", "7f", "ff"}) {
    checkInvalidAt(hex(std::string(cmd) + "01 08 08 08 08 00 35"), 1, socks);
  }
  checkInvalidAt(hex("01 01 08 08 08 08 00 00"), 8, socks);
  checkInvalidAt(hex("01 02 08 08 08 08 00 35"), 2, socks);
  checkInvalidAt(hex("01 00"), 2, socks);
  checkInvalidAt(hex("01 03 00 00 35"), 3, socks);
  checkNeedMore(hex("01 03 0b 65 78 61"), socks);
}

TEST(SimpleSocks, UdpSessionDomain) {
  EXPECT_EQ(udpSessionDomain(0x0123456789abcdefULL), "0123456789abcdef.udp-session.invalid");
  EXPECT_EQ(udpSessionDomain(0), "0000000000000000.udp-session.invalid");
  EXPECT_EQ(parseUdpSessionDomain("0123456789abcdef.udp-session.invalid"), 0x0123456789abcdefULL);
  EXPECT_EQ(parseUdpSessionDomain("ffffffffffffffff.udp-session.invalid"), ~0ULL);
  EXPECT_FALSE(parseUdpSessionDomain("0123456789ABCDEF.udp-session.invalid"));  // lowercase only
  EXPECT_FALSE(parseUdpSessionDomain("0123456789abcde.udp-session.invalid"));   // 15 digits
  EXPECT_FALSE(parseUdpSessionDomain("0123456789abcdeg.udp-session.invalid"));
  EXPECT_FALSE(parseUdpSessionDomain("0123456789abcdef.udp-session.invalid."));
  EXPECT_FALSE(parseUdpSessionDomain("example.com"));
  EXPECT_FALSE(parseUdpSessionDomain(""));
  // The header bytes a UDP stream with a session opens with (CMD 3, ATYP 3
  // domain, LEN 36, the name, port 0).
  BufferChain out;
  encodeSimpleSocks({SimpleSocksCommand::kUdp,
                     Address::fromDomain(udpSessionDomain(0x0123456789abcdefULL), 0)},
                    out);
  std::vector<uint8_t> bytes(out.size());
  out.copyOut(0, bytes.data(), bytes.size());
  std::string name = "0123456789abcdef.udp-session.invalid";
  EXPECT_EQ(toHex(bytes), "030324" +
                              toHex(reinterpret_cast<const uint8_t*>(name.data()), name.size()) +
                              "0000");
}

}  // namespace
}  // namespace vt::codec
