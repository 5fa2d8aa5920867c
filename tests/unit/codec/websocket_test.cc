// WebSocket codec: RFC 6455's worked examples, every refusal, cut-anywhere
// feeding, and the SHA-1 / base64 helpers the handshake rests on.
#include "codec/websocket.h"

#include <gtest/gtest.h>

#include <sstream>

#include "codec_test_util.h"
#include "core/bytes.h"

namespace vt::codec {
namespace {

using test::checkDoneEverySplit;
using test::checkInvalidAt;
using test::checkNeedMore;
using test::hex;

std::vector<uint8_t> bytesOf(std::string_view s) {
  return {s.begin(), s.end()};
}

const std::array<uint8_t, 4> kRfcKey = {0x37, 0xfa, 0x21, 0x3d};

std::string describe(const WsFrame& f) {
  std::ostringstream os;
  os << "op" << int(f.opcode);
  if (f.message_opcode != f.opcode) os << "/" << int(f.message_opcode);
  os << (f.fin ? "" : " more");
  if (f.opcode == WsOpcode::kClose) {
    os << " code " << f.close_code << " '" << f.close_reason << "'";
  } else if (f.payload.size() <= 40) {
    os << " '" << f.payload.toString() << "'";
  } else {
    os << " " << f.payload.size() << " bytes";
  }
  return os.str();
}

// Feeds `bytes` to a fresh decoder in pieces of `piece` bytes (0: all at
// once), each piece its own slice, decoding after every piece until it
// yields nothing; the frames and the first error, joined by " | ".
std::string decodeAll(const std::vector<uint8_t>& bytes, WsDecoderOptions opt, size_t piece = 0) {
  WsFrameDecoder d(opt);
  BufferChain in;
  std::string out;
  size_t pos = 0;
  while (pos < bytes.size()) {
    size_t n = piece == 0 ? bytes.size() : std::min(piece, bytes.size() - pos);
    in.append(Slice::copyOf(bytes.data() + pos, n));
    pos += n;
    for (;;) {
      auto r = d.decode(in);
      if (!r.ok()) {
        EXPECT_TRUE(d.failed());
        // Sticky: the same error again, whatever follows.
        auto again = d.decode(in);
        EXPECT_FALSE(again.ok());
        if (!again.ok()) {
          EXPECT_EQ(again.error().message, r.error().message);
        }
        return out + "error " + errcName(r.error().code) + " " + std::to_string(d.closeCode()) +
               ": " + r.error().message;
      }
      if (!r.value()) break;
      out += describe(*r.value()) + " | ";
    }
  }
  if (!in.empty()) out += "left " + std::to_string(in.size());
  return out;
}

// Whole, one byte at a time, and cut in two at every point: one answer.
std::string decodeEveryWay(const std::vector<uint8_t>& bytes, WsDecoderOptions opt) {
  std::string whole = decodeAll(bytes, opt);
  EXPECT_EQ(decodeAll(bytes, opt, 1), whole) << "byte by byte";
  EXPECT_EQ(decodeAll(bytes, opt, 3), whole) << "3 bytes at a time";
  const size_t step = bytes.size() > 300 ? bytes.size() / 97 : 1;
  for (size_t cut = 1; cut < bytes.size(); cut += step) {
    WsFrameDecoder d(opt);
    BufferChain in;
    std::string got;
    bool failed = false;
    for (size_t part = 0; part < 2 && !failed; ++part) {
      size_t b = part == 0 ? 0 : cut, e = part == 0 ? cut : bytes.size();
      test::appendSlice(in, bytes, b, e);
      for (;;) {
        auto r = d.decode(in);
        if (!r.ok()) {
          got += "error " + std::string(errcName(r.error().code)) + " " +
                 std::to_string(d.closeCode()) + ": " + r.error().message;
          failed = true;
          break;
        }
        if (!r.value()) break;
        got += describe(*r.value()) + " | ";
      }
    }
    if (!failed && !in.empty()) got += "left " + std::to_string(in.size());
    EXPECT_EQ(got, whole) << "cut at " << cut;
  }
  return whole;
}

WsDecoderOptions server() {
  return {WsRole::kServer, kWsDefaultMaxMessage, false};
}
WsDecoderOptions client() {
  return {WsRole::kClient, kWsDefaultMaxMessage, false};
}

std::vector<uint8_t> encode(WsOpcode op, bool fin, const std::vector<uint8_t>& payload,
                            const std::array<uint8_t, 4>* key) {
  BufferChain p = test::chainOf(payload), out;
  EXPECT_TRUE(encodeWsFrame(op, fin, p, key, out));
  EXPECT_TRUE(p.empty());
  return out.toVector();
}

// --- helpers -------------------------------------------------------------

TEST(WebSocketSha1, KnownAnswers) {
  EXPECT_EQ(toHex(sha1("abc").data(), 20), "a9993e364706816aba3e25717850c26c9cd0d89d");
  EXPECT_EQ(toHex(sha1("").data(), 20), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  EXPECT_EQ(toHex(sha1("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq").data(), 20),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
  // A million 'a': many blocks, and a tail that needs a second pad block.
  EXPECT_EQ(toHex(sha1(std::string(1000000, 'a')).data(), 20),
            "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
  // Lengths around the padding edges: 55 bytes is the most that still
  // fits one final block with the marker and the length, 56 needs two.
  const std::pair<size_t, const char*> edges[] = {
      {55, "cef734ba81a024479e09eb5a75b6ddae62e6abf1"},
      {56, "901305367c259952f4e7af8323f480d59f81335b"},
      {63, "0ddc4e0cccd9a12850deb5abb0853a4425559fec"},
      {64, "bb2fa3ee7afb9f54c6dfb5d021f14b1ffe40c163"},
      {65, "78c741ddc482e4cdf8c474a0876347a0905b6233"},
      {119, "4300320394f7ee239bcdce7d3b8bcee173a0cd5c"},
      {120, "ceb2821639c4b6dcb10bce0e522ca2e608ce056d"}};
  for (const auto& [n, want] : edges) {
    EXPECT_EQ(toHex(sha1(std::string(n, 'x')).data(), 20), want) << n;
  }
}

TEST(WebSocketBase64, Rfc4648Vectors) {
  const char* plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
  const char* std64[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
  const char* url64[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
  for (int i = 0; i < 7; ++i) {
    auto p = bytesOf(plain[i]);
    EXPECT_EQ(base64Encode(p.data(), p.size()), std64[i]);
    EXPECT_EQ(base64Encode(p.data(), p.size(), Base64Alphabet::kUrl), url64[i]);
    std::vector<uint8_t> back;
    EXPECT_TRUE(base64Decode(std64[i], back));
    EXPECT_EQ(back, p);
    EXPECT_TRUE(base64Decode(url64[i], back, Base64Alphabet::kUrl));
    EXPECT_EQ(back, p);
  }
}

TEST(WebSocketBase64, RoundTripsAndAlphabets) {
  std::vector<uint8_t> all(256);
  for (size_t i = 0; i < 256; ++i) all[i] = static_cast<uint8_t>(255 - i);
  for (size_t n = 0; n <= all.size(); n += 7) {
    for (auto a : {Base64Alphabet::kStandard, Base64Alphabet::kUrl}) {
      std::string t = base64Encode(all.data(), n, a);
      std::vector<uint8_t> back;
      ASSERT_TRUE(base64Decode(t, back, a)) << t;
      EXPECT_EQ(back, std::vector<uint8_t>(all.begin(), all.begin() + n));
    }
  }
  auto fb = hex("fb ff bf");
  EXPECT_EQ(base64Encode(fb.data(), 3), "+/+/");
  EXPECT_EQ(base64Encode(fb.data(), 3, Base64Alphabet::kUrl), "-_-_");
}

TEST(WebSocketBase64, StrictRefusals) {
  std::vector<uint8_t> out;
  EXPECT_FALSE(base64Decode("Zg=", out));     // not a multiple of 4
  EXPECT_FALSE(base64Decode("Zg", out));      // standard needs padding
  EXPECT_FALSE(base64Decode("Zh==", out));    // non-zero leftover bits
  EXPECT_FALSE(base64Decode("Z===", out));    // one symbol is no byte
  EXPECT_FALSE(base64Decode("Zm9v\n", out));  // no whitespace
  EXPECT_FALSE(base64Decode("-_-_", out));    // url symbols in standard
  EXPECT_FALSE(base64Decode("+/+/", out, Base64Alphabet::kUrl));
  EXPECT_FALSE(base64Decode("Zg==", out, Base64Alphabet::kUrl));   // url: no padding
  EXPECT_FALSE(base64Decode("Zm9vY", out, Base64Alphabet::kUrl));  // 5 symbols
  EXPECT_FALSE(base64Decode("Zh", out, Base64Alphabet::kUrl));
  EXPECT_FALSE(base64Decode("Zm=v", out));  // padding inside
}

TEST(WebSocketUtf8, StrictValidation) {
  auto ok = [](std::string_view h) {
    auto b = hex(h);
    return isValidUtf8(b.data(), b.size());
  };
  EXPECT_TRUE(ok(""));
  EXPECT_TRUE(ok("48 69"));
  EXPECT_TRUE(ok("c2 a9"));         // U+00A9
  EXPECT_TRUE(ok("e2 82 ac"));      // U+20AC
  EXPECT_TRUE(ok("ed 9f bf"));      // U+D7FF
  EXPECT_TRUE(ok("f0 9f 98 80"));   // U+1F600
  EXPECT_TRUE(ok("f4 8f bf bf"));   // U+10FFFF
  EXPECT_FALSE(ok("c0 80"));        // overlong NUL
  EXPECT_FALSE(ok("c1 bf"));        // overlong
  EXPECT_FALSE(ok("e0 9f bf"));     // overlong 3-byte
  EXPECT_FALSE(ok("f0 8f bf bf"));  // overlong 4-byte
  EXPECT_FALSE(ok("ed a0 80"));     // surrogate U+D800
  EXPECT_FALSE(ok("f4 90 80 80"));  // past U+10FFFF
  EXPECT_FALSE(ok("f5 80 80 80"));
  EXPECT_FALSE(ok("80"));        // lone continuation
  EXPECT_FALSE(ok("e2 82"));     // truncated
  EXPECT_FALSE(ok("e2 28 ac"));  // bad continuation
  EXPECT_FALSE(ok("ff"));
}

// --- frames: RFC 6455 5.7 ------------------------------------------------

TEST(WebSocketFrame, RfcSingleFrameUnmasked) {
  auto bytes = hex("81 05 48 65 6c 6c 6f");
  EXPECT_EQ(encode(WsOpcode::kText, true, bytesOf("Hello"), nullptr), bytes);
  EXPECT_EQ(decodeEveryWay(bytes, client()), "op1 'Hello' | ");
}

TEST(WebSocketFrame, RfcSingleFrameMasked) {
  auto bytes = hex("81 85 37 fa 21 3d 7f 9f 4d 51 58");
  EXPECT_EQ(encode(WsOpcode::kText, true, bytesOf("Hello"), &kRfcKey), bytes);
  EXPECT_EQ(decodeEveryWay(bytes, server()), "op1 'Hello' | ");
}

TEST(WebSocketFrame, RfcFragmentedUnmasked) {
  auto bytes = hex("01 03 48 65 6c | 80 02 6c 6f");
  EXPECT_EQ(test::concat({encode(WsOpcode::kText, false, bytesOf("Hel"), nullptr),
                          encode(WsOpcode::kContinuation, true, bytesOf("lo"), nullptr)}),
            bytes);
  EXPECT_EQ(decodeEveryWay(bytes, client()), "op1 more 'Hel' | op0/1 'lo' | ");
  WsDecoderOptions whole = client();
  whole.reassemble = true;
  EXPECT_EQ(decodeEveryWay(bytes, whole), "op1 'Hello' | ");
}

TEST(WebSocketFrame, RfcPingAndMaskedPong) {
  auto ping = hex("89 05 48 65 6c 6c 6f");
  auto pong = hex("8a 85 37 fa 21 3d 7f 9f 4d 51 58");
  EXPECT_EQ(encode(WsOpcode::kPing, true, bytesOf("Hello"), nullptr), ping);
  EXPECT_EQ(encode(WsOpcode::kPong, true, bytesOf("Hello"), &kRfcKey), pong);
  EXPECT_EQ(decodeEveryWay(ping, client()), "op9 'Hello' | ");
  EXPECT_EQ(decodeEveryWay(pong, server()), "op10 'Hello' | ");
}

TEST(WebSocketFrame, Rfc256ByteBinary) {
  std::vector<uint8_t> payload(256);
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<uint8_t>(i);
  auto bytes = encode(WsOpcode::kBinary, true, payload, nullptr);
  ASSERT_EQ(bytes.size(), 4u + 256);
  EXPECT_EQ(std::vector<uint8_t>(bytes.begin(), bytes.begin() + 4), hex("82 7e 01 00"));
  EXPECT_EQ(decodeEveryWay(bytes, client()), "op2 256 bytes | ");
  WsFrameDecoder d(client());
  BufferChain in = test::chainOf(bytes);
  auto r = d.decode(in);
  ASSERT_TRUE(r.ok() && r.value());
  EXPECT_EQ(r.value()->payload.toVector(), payload);
}

TEST(WebSocketFrame, Rfc64KiBBinary) {
  std::vector<uint8_t> payload(65536);
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<uint8_t>(i * 7);
  auto bytes = encode(WsOpcode::kBinary, true, payload, nullptr);
  ASSERT_EQ(bytes.size(), 10u + 65536);
  EXPECT_EQ(std::vector<uint8_t>(bytes.begin(), bytes.begin() + 10),
            hex("82 7f 00 00 00 00 00 01 00 00"));
  EXPECT_EQ(decodeEveryWay(bytes, client()), "op2 65536 bytes | ");
  // Masked, the same payload comes back out of a server decoder.
  auto masked = encode(WsOpcode::kBinary, true, payload, &kRfcKey);
  EXPECT_EQ(std::vector<uint8_t>(masked.begin(), masked.begin() + 14),
            hex("82 ff 00 00 00 00 00 01 00 00 37 fa 21 3d"));
  WsFrameDecoder d(server());
  BufferChain in = test::chainOf(masked);
  auto r = d.decode(in);
  ASSERT_TRUE(r.ok() && r.value());
  EXPECT_EQ(r.value()->payload.toVector(), payload);
  // 65535 is the largest 16-bit form.
  auto edge = encode(WsOpcode::kBinary, true, std::vector<uint8_t>(65535), nullptr);
  EXPECT_EQ(std::vector<uint8_t>(edge.begin(), edge.begin() + 4), hex("82 7e ff ff"));
  auto small = encode(WsOpcode::kBinary, true, std::vector<uint8_t>(125), nullptr);
  EXPECT_EQ(std::vector<uint8_t>(small.begin(), small.begin() + 2), hex("82 7d"));
}

TEST(WebSocketFrame, EncoderMovesUnmaskedSlicesAndMasksInPlace) {
  BufferChain payload, out;
  payload.append(Slice::copyOf("Hello", 5));
  const uint8_t* where = payload.slice(0).data();
  ASSERT_TRUE(encodeWsFrame(WsOpcode::kBinary, true, payload, nullptr, out));
  EXPECT_EQ(out.slice(out.sliceCount() - 1).data(), where);  // moved, not copied
  BufferChain p2, out2;
  p2.append(Slice::copyOf("Hel", 3));
  p2.append(Slice::copyOf("lo", 2));
  const uint8_t* where2 = p2.slice(1).data();
  ASSERT_TRUE(encodeWsFrame(WsOpcode::kText, true, p2, &kRfcKey, out2));
  EXPECT_EQ(out2.slice(out2.sliceCount() - 1).data(), where2);
  // The key runs on across slices: the RFC's masked "Hello".
  EXPECT_EQ(out2.toVector(), hex("81 85 37 fa 21 3d 7f 9f 4d 51 58"));
}

// Masking goes eight bytes at a time within a slice: slices of every length
// 0..20 in a row, starting at every key offset, against the RFC's rule
// payload[i] ^ key[i % 4] over the whole payload.
TEST(WebSocketFrame, MaskingRunsOnAcrossSlicesOfAnyLength) {
  for (size_t first = 0; first < 4; ++first) {
    BufferChain payload, out;
    std::vector<uint8_t> plain;
    if (first > 0) {
      std::vector<uint8_t> lead(first, 0x11);
      payload.append(Slice::copyOf(lead.data(), lead.size()));
      plain.insert(plain.end(), lead.begin(), lead.end());
    }
    for (size_t len = 0; len <= 20; ++len) {
      std::vector<uint8_t> piece(len);
      for (size_t i = 0; i < len; ++i) piece[i] = static_cast<uint8_t>(len * 31 + i * 7);
      if (len > 0) payload.append(Slice::copyOf(piece.data(), len));
      plain.insert(plain.end(), piece.begin(), piece.end());
    }
    ASSERT_TRUE(encodeWsFrame(WsOpcode::kBinary, true, payload, &kRfcKey, out));
    std::vector<uint8_t> wire = out.toVector();
    ASSERT_GE(wire.size(), plain.size());
    const uint8_t* masked = wire.data() + (wire.size() - plain.size());
    for (size_t i = 0; i < plain.size(); ++i) {
      ASSERT_EQ(masked[i], plain[i] ^ kRfcKey[i % 4]) << "first " << first << " byte " << i;
    }
  }
}

TEST(WebSocketFrame, DecoderMovesWholeSlices) {
  // A payload that arrives as a slice of its own leaves as that slice.
  BufferChain in;
  in.append(Slice::copyOf(hex("82 7e 01 00").data(), 4));
  in.append(Slice::copyOf(std::vector<uint8_t>(256, 'q').data(), 256));
  const uint8_t* where = in.slice(1).data();
  WsFrameDecoder d(client());
  auto r = d.decode(in);
  ASSERT_TRUE(r.ok() && r.value());
  ASSERT_EQ(r.value()->payload.sliceCount(), 1u);
  EXPECT_EQ(r.value()->payload.slice(0).data(), where);
  EXPECT_TRUE(in.empty());
  // A small frame inside a bigger read: only its bytes are copied out.
  in.append(Slice::copyOf(hex("89 01 70 82 00").data(), 5));
  r = d.decode(in);
  ASSERT_TRUE(r.ok() && r.value());
  EXPECT_EQ(r.value()->payload.toString(), "p");
  EXPECT_EQ(r.value()->payload.slice(0).capacity(), 1u);
  EXPECT_EQ(in.size(), 2u);
}

TEST(WebSocketFrame, EncoderRefusals) {
  BufferChain p = test::chainOf(std::vector<uint8_t>(126)), out;
  EXPECT_FALSE(encodeWsFrame(WsOpcode::kPing, true, p, nullptr, out));
  EXPECT_EQ(p.size(), 126u);
  BufferChain p2 = test::chainOf(bytesOf("x"));
  EXPECT_FALSE(encodeWsFrame(WsOpcode::kClose, false, p2, nullptr, out));
  EXPECT_FALSE(encodeWsFrame(static_cast<WsOpcode>(3), true, p2, nullptr, out));
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(p2.size(), 1u);
  BufferChain p3 = test::chainOf(std::vector<uint8_t>(125));
  EXPECT_TRUE(encodeWsFrame(WsOpcode::kPong, true, p3, nullptr, out));
}

TEST(WebSocketFrame, CloseEncodeAndDecode) {
  BufferChain out;
  ASSERT_TRUE(encodeWsClose(kWsCloseNormal, "bye", nullptr, out));
  EXPECT_EQ(out.toVector(), hex("88 05 03 e8 62 79 65"));
  EXPECT_EQ(decodeEveryWay(out.toVector(), client()), "op8 code 1000 'bye' | ");
  out.clear();
  ASSERT_TRUE(encodeWsClose(0, "", &kRfcKey, out));
  EXPECT_EQ(out.toVector(), hex("88 80 37 fa 21 3d"));
  EXPECT_EQ(decodeEveryWay(out.toVector(), server()), "op8 code 0 '' | ");
  out.clear();
  ASSERT_TRUE(encodeWsClose(4999, "\xc3\xa9t\xc3\xa9", &kRfcKey, out));
  EXPECT_EQ(decodeEveryWay(out.toVector(), server()), "op8 code 4999 '\xc3\xa9t\xc3\xa9' | ");
  EXPECT_FALSE(encodeWsClose(1005, "", nullptr, out));
  EXPECT_FALSE(encodeWsClose(1000, "\xc0\x80", nullptr, out));
  EXPECT_FALSE(encodeWsClose(1000, std::string(124, 'a'), nullptr, out));
  EXPECT_TRUE(encodeWsClose(1000, std::string(123, 'a'), nullptr, out));
  EXPECT_FALSE(encodeWsClose(0, "why", nullptr, out));
}

TEST(WebSocketFrame, CloseCodes) {
  for (uint16_t c :
       {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999}) {
    EXPECT_TRUE(isValidWsCloseCode(c)) << c;
  }
  for (uint16_t c : {0, 999, 1004, 1005, 1006, 1012, 1015, 1016, 2000, 2999, 5000, 65535}) {
    EXPECT_FALSE(isValidWsCloseCode(c)) << c;
  }
}

TEST(WebSocketFrame, ControlFramesInterleaveWithFragments) {
  auto bytes = test::concat({encode(WsOpcode::kBinary, false, bytesOf("ab"), nullptr),
                             encode(WsOpcode::kPing, true, bytesOf("p"), nullptr),
                             encode(WsOpcode::kContinuation, false, bytesOf("cd"), nullptr),
                             encode(WsOpcode::kPong, true, {}, nullptr),
                             encode(WsOpcode::kContinuation, true, bytesOf("ef"), nullptr),
                             encode(WsOpcode::kText, true, bytesOf("next"), nullptr)});
  EXPECT_EQ(decodeEveryWay(bytes, client()),
            "op2 more 'ab' | op9 'p' | op0/2 more 'cd' | op10 '' | op0/2 'ef' | op1 'next' | ");
  WsDecoderOptions whole = client();
  whole.reassemble = true;
  EXPECT_EQ(decodeEveryWay(bytes, whole), "op9 'p' | op10 '' | op2 'abcdef' | op1 'next' | ");
  // A close inside a fragmented message is a frame like any other.
  auto with_close =
      test::concat({encode(WsOpcode::kBinary, false, bytesOf("ab"), nullptr), hex("88 02 03 e8")});
  EXPECT_EQ(decodeEveryWay(with_close, client()), "op2 more 'ab' | op8 code 1000 '' | ");
}

TEST(WebSocketFrame, EmptyAndPartialInput) {
  EXPECT_EQ(decodeEveryWay(hex("82 00"), client()), "op2 '' | ");
  // A header and part of a payload: nothing yet, the rest is kept.
  EXPECT_EQ(decodeAll(hex("82 05 48 65"), client()), "left 2");
  EXPECT_EQ(decodeAll(hex("82 7e 01"), client()), "left 3");
  EXPECT_EQ(decodeAll(hex("82 85 37 fa 21"), server()), "left 5");
}

// --- frames: refusals ----------------------------------------------------

TEST(WebSocketFrame, RefusesReservedBitsAndOpcodes) {
  EXPECT_EQ(decodeEveryWay(hex("c1 05 48 65 6c 6c 6f"), client()),
            "error unsupported 1002: websocket: reserved bits set without an extension");
  EXPECT_EQ(decodeEveryWay(hex("91 00"), client()),
            "error unsupported 1002: websocket: reserved bits set without an extension");
  EXPECT_EQ(decodeEveryWay(hex("a2 00"), client()),
            "error unsupported 1002: websocket: reserved bits set without an extension");
  for (int op : {3, 4, 5, 6, 7, 11, 12, 13, 14, 15}) {
    std::vector<uint8_t> b = {static_cast<uint8_t>(0x80 | op), 0x00};
    EXPECT_EQ(decodeEveryWay(b, client()),
              "error unsupported 1002: websocket: unknown opcode " + std::to_string(op));
  }
}

TEST(WebSocketFrame, RefusesBadControlFrames) {
  EXPECT_EQ(decodeEveryWay(hex("89 7e 00 7e"), client()),
            "error malformed 1002: websocket: control frame longer than 125 bytes");
  EXPECT_EQ(decodeEveryWay(hex("8a 7f 00 00 00 00 00 00 00 01"), client()),
            "error malformed 1002: websocket: control frame longer than 125 bytes");
  EXPECT_EQ(decodeEveryWay(hex("09 00"), client()),
            "error malformed 1002: websocket: fragmented control frame");
  EXPECT_EQ(decodeEveryWay(hex("08 00"), client()),
            "error malformed 1002: websocket: fragmented control frame");
  // 125 is fine.
  auto ping = test::concat({hex("89 7d"), std::vector<uint8_t>(125, 'a')});
  EXPECT_EQ(decodeAll(ping, client()), "op9 125 bytes | ");
}

TEST(WebSocketFrame, RefusesWrongMasking) {
  EXPECT_EQ(decodeEveryWay(hex("81 05 48 65 6c 6c 6f"), server()),
            "error malformed 1002: websocket: unmasked frame from a client");
  EXPECT_EQ(decodeEveryWay(hex("81 85 37 fa 21 3d 7f 9f 4d 51 58"), client()),
            "error malformed 1002: websocket: masked frame from a server");
  // Control frames too.
  EXPECT_EQ(decodeEveryWay(hex("89 00"), server()),
            "error malformed 1002: websocket: unmasked frame from a client");
}

TEST(WebSocketFrame, RefusesOversizedLengths) {
  EXPECT_EQ(decodeEveryWay(hex("82 ff 80 00 00 00 00 00 00 00 37 fa 21 3d"), server()),
            "error limit 1002: websocket: 64-bit length with the high bit set");
  EXPECT_EQ(decodeEveryWay(hex("82 7f ff ff ff ff ff ff ff ff"), client()),
            "error limit 1002: websocket: 64-bit length with the high bit set");
  // Past max_message: refused at the length, before any payload arrives.
  WsDecoderOptions small = client();
  small.max_message = 1000;
  EXPECT_EQ(decodeEveryWay(hex("82 7e 03 e9"), small),
            "error limit 1009: websocket: message over 1000 bytes (frame of 1001)");
  EXPECT_EQ(decodeEveryWay(hex("82 7f 00 00 00 01 00 00 00 00"), client()),
            "error limit 1009: websocket: message over 1048576 bytes (frame of 4294967296)");
  auto exactly = test::concat({hex("82 7e 03 e8"), std::vector<uint8_t>(1000, 'z')});
  EXPECT_EQ(decodeAll(exactly, small), "op2 1000 bytes | ");
  // Fragments add up: 600 + 600 > 1000, refused at the second header.
  auto frag = test::concat({hex("02 7e 02 58"), std::vector<uint8_t>(600, 'a'), hex("80 7e 02 58"),
                            std::vector<uint8_t>(600, 'b')});
  EXPECT_EQ(decodeAll(frag, small, 1),
            "op2 more 600 bytes | error limit 1009: websocket: message over 1000 bytes (frame of "
            "600)");
  small.reassemble = true;
  EXPECT_EQ(decodeAll(frag, small, 7),
            "error limit 1009: websocket: message over 1000 bytes (frame of 600)");
  // Non-minimal length forms are accepted.
  EXPECT_EQ(decodeEveryWay(hex("82 7e 00 02 68 69"), client()), "op2 'hi' | ");
}

TEST(WebSocketFrame, RefusesBrokenFragmentation) {
  EXPECT_EQ(decodeEveryWay(hex("80 02 6c 6f"), client()),
            "error malformed 1002: websocket: continuation frame without a message");
  EXPECT_EQ(decodeEveryWay(hex("00 02 6c 6f"), client()),
            "error malformed 1002: websocket: continuation frame without a message");
  EXPECT_EQ(decodeEveryWay(hex("01 03 48 65 6c | 81 02 6c 6f"), client()),
            "op1 more 'Hel' | error malformed 1002: websocket: new data frame inside a "
            "fragmented message");
  EXPECT_EQ(decodeEveryWay(hex("01 03 48 65 6c | 02 00"), client()),
            "op1 more 'Hel' | error malformed 1002: websocket: new data frame inside a "
            "fragmented message");
  // After a finished message, a continuation is again out of place.
  EXPECT_EQ(decodeEveryWay(hex("01 01 48 | 80 01 69 | 80 00"), client()),
            "op1 more 'H' | op0/1 'i' | error malformed 1002: websocket: continuation frame "
            "without a message");
}

TEST(WebSocketFrame, RefusesBadCloseBodies) {
  EXPECT_EQ(decodeEveryWay(hex("88 01 03"), client()),
            "error malformed 1002: websocket: close frame with a 1-byte body");
  EXPECT_EQ(decodeEveryWay(hex("88 02 03 ed"), client()),
            "error malformed 1002: websocket: close code 1005 not allowed");
  EXPECT_EQ(decodeEveryWay(hex("88 02 03 e7"), client()),
            "error malformed 1002: websocket: close code 999 not allowed");
  EXPECT_EQ(decodeEveryWay(hex("88 02 07 d0"), client()),
            "error malformed 1002: websocket: close code 2000 not allowed");
  EXPECT_EQ(decodeEveryWay(hex("88 02 13 88"), client()),
            "error malformed 1002: websocket: close code 5000 not allowed");
  EXPECT_EQ(decodeEveryWay(hex("88 04 03 e8 c0 80"), client()),
            "error malformed 1007: websocket: close reason is not UTF-8");
  EXPECT_EQ(decodeEveryWay(hex("88 05 03 e8 ed a0 80"), client()),
            "error malformed 1007: websocket: close reason is not UTF-8");
  EXPECT_EQ(decodeEveryWay(hex("88 04 03 e8 e2 82"), client()),
            "error malformed 1007: websocket: close reason is not UTF-8");
}

TEST(WebSocketFrame, ErrorIsFinal) {
  WsFrameDecoder d(client());
  BufferChain in = test::chainOf(hex("83 00 82 00"));
  EXPECT_FALSE(d.decode(in).ok());
  in.clear();
  in.append(hex("82 00"));
  auto r = d.decode(in);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "websocket: unknown opcode 3");
  EXPECT_EQ(d.closeCode(), kWsCloseProtocolError);
}

// --- handshake -----------------------------------------------------------

const std::array<uint8_t, 16> kSampleNonce = {'t', 'h', 'e', ' ', 's', 'a', 'm', 'p',
                                              'l', 'e', ' ', 'n', 'o', 'n', 'c', 'e'};

std::string request(const BufferChain& in) {
  WsRequestParseResult r = parseWsRequest(in);
  switch (r.status) {
    case WsRequestStatus::kNeedMore: return "need";
    case WsRequestStatus::kInvalid: return "invalid: " + r.error;
    case WsRequestStatus::kNotWebSocket:
      return "done " + std::to_string(r.consumed) + " not-ws: " + r.error;
    case WsRequestStatus::kDone: break;
  }
  const WsRequest& q = r.request;
  std::string s = "done " + std::to_string(r.consumed) + " " + q.path + " host=" + q.host +
                  " key=" + q.key + " headers=" + std::to_string(q.headers.size());
  if (q.early_data) s += " early=" + toHex(*q.early_data) + " proto=" + q.protocol;
  return s;
}

std::string response(const BufferChain& in, std::string_view key, std::string_view proto) {
  WsResponseParseResult r = parseWsResponse(in, key, proto);
  if (r.status == DecodeStatus::kNeedMore) return "need";
  if (r.status == DecodeStatus::kInvalid) return "invalid: " + r.error;
  return "done " + std::to_string(r.consumed) + " " + std::to_string(r.status_code);
}

TEST(WebSocketHandshake, RfcAcceptValue) {
  EXPECT_EQ(base64Encode(kSampleNonce.data(), 16), "dGhlIHNhbXBsZSBub25jZQ==");
  EXPECT_EQ(wsAcceptFor("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST(WebSocketHandshake, ClientRequestBytesAndServerParse) {
  WsClientRequest req;
  req.path = "/chat?ed=2048";
  req.host = "server.example.com";
  req.key = kSampleNonce;
  req.extra_headers = {{"User-Agent", "vless-tun"}};
  BufferChain out;
  ASSERT_TRUE(encodeWsRequest(req, out).ok());
  const std::string want =
      "GET /chat?ed=2048 HTTP/1.1\r\n"
      "Host: server.example.com\r\n"
      "Upgrade: websocket\r\n"
      "Connection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
      "Sec-WebSocket-Version: 13\r\n"
      "User-Agent: vless-tun\r\n"
      "\r\n";
  EXPECT_EQ(out.toString(), want);
  auto bytes = test::concat({bytesOf(want), hex("82 80 00 00 00 00")});  // a frame follows
  EXPECT_EQ(checkDoneEverySplit(bytes, want.size(), request),
            "done " + std::to_string(want.size()) +
                " /chat?ed=2048 host=server.example.com key=dGhlIHNhbXBsZSBub25jZQ== headers=6");
}

TEST(WebSocketHandshake, EarlyDataRoundTrip) {
  WsClientRequest req;
  req.host = "h";
  req.key = kSampleNonce;
  req.early_data = hex("00 01 fb ff 7f");
  BufferChain out;
  ASSERT_TRUE(encodeWsRequest(req, out).ok());
  EXPECT_NE(out.toString().find("\r\nSec-WebSocket-Protocol: AAH7_38\r\n"), std::string::npos);
  WsRequestParseResult r = parseWsRequest(out);
  ASSERT_EQ(r.status, WsRequestStatus::kDone);
  ASSERT_TRUE(r.request.early_data.has_value());
  EXPECT_EQ(*r.request.early_data, req.early_data);
  EXPECT_EQ(r.request.protocol, "AAH7_38");
  EXPECT_EQ(r.consumed, out.size());
  ASSERT_NE(r.request.header("sec-websocket-KEY"), nullptr);
  BufferChain resp;
  encodeWsResponse(r.request.key, r.request.protocol, resp);
  EXPECT_EQ(resp.toString(),
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
            "Sec-WebSocket-Protocol: AAH7_38\r\n\r\n");
  auto rb = resp.toVector();
  auto with_frame = test::concat({rb, hex("82 00")});
  EXPECT_EQ(checkDoneEverySplit(with_frame, rb.size(),
                                [](const BufferChain& in) {
                                  return response(in, "dGhlIHNhbXBsZSBub25jZQ==", "AAH7_38");
                                }),
            "done " + std::to_string(rb.size()) + " 101");
  // The echo is optional, but a different protocol is refused.
  EXPECT_EQ(response(resp, "dGhlIHNhbXBsZSBub25jZQ==", "other"),
            "invalid: websocket: server chose a protocol we did not offer");
  EXPECT_EQ(response(resp, "dGhlIHNhbXBsZSBub25jZQ==", ""),
            "invalid: websocket: server chose a protocol we did not offer");
  BufferChain plain;
  encodeWsResponse("dGhlIHNhbXBsZSBub25jZQ==", "", plain);
  EXPECT_EQ(response(plain, "dGhlIHNhbXBsZSBub25jZQ==", "AAH7_38").rfind("done", 0), 0u);
}

TEST(WebSocketHandshake, EncoderRefusals) {
  BufferChain out;
  WsClientRequest req;
  req.host = "h";
  req.path = "no-slash";
  EXPECT_FALSE(encodeWsRequest(req, out).ok());
  req.path = "/a b";
  EXPECT_FALSE(encodeWsRequest(req, out).ok());
  req.path = "/";
  req.host = "h\r\nX: y";
  EXPECT_FALSE(encodeWsRequest(req, out).ok());
  req.host = "h";
  req.extra_headers = {{"X-A", "v\r\nInjected: 1"}};
  EXPECT_FALSE(encodeWsRequest(req, out).ok());
  req.extra_headers = {{"Bad Name", "v"}};
  EXPECT_FALSE(encodeWsRequest(req, out).ok());
  req.extra_headers = {{"sec-websocket-key", "v"}};
  EXPECT_FALSE(encodeWsRequest(req, out).ok());
  req.extra_headers = {{"X-Big", std::string(9000, 'a')}};
  EXPECT_FALSE(encodeWsRequest(req, out).ok());
  req.extra_headers = {};
  req.early_data.assign(kWsMaxEarlyData + 1, 0);
  Status s = encodeWsRequest(req, out);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, Errc::kInvalidArgument);
  EXPECT_TRUE(out.empty());
  req.early_data.assign(kWsMaxEarlyData, 0);
  EXPECT_TRUE(encodeWsRequest(req, out).ok());
}

std::string upgrade(std::string_view first_line, std::string_view headers) {
  return std::string(first_line) + "\r\n" + std::string(headers) + "\r\n";
}
constexpr std::string_view kGoodHeaders =
    "Host: h\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";

TEST(WebSocketHandshake, ServerParseLeniencies) {
  // Case-insensitive names and tokens, optional whitespace around values.
  std::string s = upgrade("GET / HTTP/1.1",
                          "hOsT:h\r\nUPGRADE:  WebSocket \r\nconnection: upgrade\r\n"
                          "sec-websocket-key:\tdGhlIHNhbXBsZSBub25jZQ==\r\n"
                          "SEC-WEBSOCKET-VERSION: 13\r\n");
  EXPECT_EQ(
      request(test::chainOf(bytesOf(s))),
      "done " + std::to_string(s.size()) + " / host=h key=dGhlIHNhbXBsZSBub25jZQ== headers=5");
  // A list split over two header lines.
  s = upgrade("GET / HTTP/1.1",
              "Host: h\r\nConnection: keep-alive\r\nConnection: Upgrade\r\n"
              "Upgrade: h2c\r\nUpgrade: websocket\r\n"
              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n");
  EXPECT_EQ(request(test::chainOf(bytesOf(s))).rfind("done", 0), 0u);
  // A real subprotocol list is not early data.
  s = upgrade("GET / HTTP/1.1", std::string(kGoodHeaders) + "Sec-WebSocket-Protocol: chat, v2\r\n");
  EXPECT_EQ(request(test::chainOf(bytesOf(s))).find("early="), std::string::npos);
}

TEST(WebSocketHandshake, NotWebSocketGoesToFallback) {
  auto check = [](const std::string& s, std::string_view why) {
    auto b = bytesOf(s);
    EXPECT_EQ(checkDoneEverySplit(b, b.size(), request),
              "done " + std::to_string(b.size()) + " not-ws: " + std::string(why));
  };
  check(upgrade("GET /index.html HTTP/1.1", "Host: h\r\n"),
        "GET /index.html is not a WebSocket upgrade");
  check(upgrade("POST / HTTP/1.1", kGoodHeaders), "POST / is not a WebSocket upgrade");
  check(upgrade("GET / HTTP/1.0", kGoodHeaders), "GET / is not a WebSocket upgrade");
  check(upgrade("GET / HTTP/1.1", "Host: h\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n"),
        "GET / is not a WebSocket upgrade");
}

TEST(WebSocketHandshake, ServerParseRefusals) {
  auto invalid = [](const std::string& s, std::string_view why) {
    WsRequestParseResult r = parseWsRequest(test::chainOf(bytesOf(s)));
    EXPECT_EQ(r.status, WsRequestStatus::kInvalid) << s;
    EXPECT_EQ(r.error, why) << s;
  };
  const std::string good = std::string(kGoodHeaders);
  invalid(upgrade("GET / HTTP/1.1",
                  "Host: h\r\nUpgrade: websocket\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                  "Sec-WebSocket-Version: 13\r\n"),
          "Connection header without 'upgrade'");
  invalid(upgrade("GET / HTTP/1.1",
                  "Host: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n"),
          "Sec-WebSocket-Version is not 13");
  invalid(upgrade("GET / HTTP/1.1",
                  "Host: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Version: 13\r\n"),
          "Sec-WebSocket-Key is not base64 of 16 bytes");
  invalid(upgrade("GET / HTTP/1.1",
                  "Host: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZQ==\r\n"
                  "Sec-WebSocket-Version: 13\r\n"),
          "Sec-WebSocket-Key is not base64 of 16 bytes");
  invalid(upgrade("GET / HTTP/1.1", good + "Host: other\r\n"), "not exactly one Host header");
  invalid(upgrade("GET http://h/ HTTP/1.1", good), "request target is not a path");
  invalid(upgrade("GET / HTTP/2.0", good), "HTTP version HTTP/2.0");
  invalid(upgrade("GET  / HTTP/1.1", good), "bad HTTP request line");
  invalid(upgrade("GET / HTTP/1.1", good + " folded\r\n"), "folded HTTP header line");
  invalid(upgrade("GET / HTTP/1.1", good + "No-Colon\r\n"), "bad HTTP header line");
  invalid(upgrade("GET / HTTP/1.1", good + "Bad Name: x\r\n"), "bad HTTP header line");
  invalid("GET / HTTP/1.1\nHost: h\n\n", "bare LF in the HTTP head");
  invalid("GET / HTTP/1.1\rHost: h\r\n\r\n", "bare CR in the HTTP head");
  invalid(upgrade("GET / HTTP/1.1", good + "X: a\x01"
                                           "b\r\n"),
          "control byte in the HTTP head");
}

TEST(WebSocketHandshake, RefusedEarlyAndBounded) {
  // Not HTTP at all (a TLS ClientHello): refused at the first byte.
  checkInvalidAt(hex("16 03 01 00 a5 01 00 00"), 1, request);
  // A bad request line is refused as soon as it is whole.
  auto line = bytesOf("GET / HTTX/1.1\r\nHost: h\r\n");
  checkInvalidAt(line, 16, request);
  // A head that never ends is refused at 8 KiB.
  std::string big = "GET / HTTP/1.1\r\nX-Pad: " + std::string(kWsMaxHandshakeSize, 'a');
  auto bigb = bytesOf(big);
  WsRequestParseResult r = parseWsRequest(
      test::chainOf(std::vector<uint8_t>(bigb.begin(), bigb.begin() + kWsMaxHandshakeSize - 1)));
  EXPECT_EQ(r.status, WsRequestStatus::kNeedMore);
  r = parseWsRequest(test::chainOf(bigb));
  EXPECT_EQ(r.status, WsRequestStatus::kInvalid);
  EXPECT_EQ(r.error, "HTTP head over 8192 bytes");
  checkNeedMore(bytesOf("GET / HTTP/1.1\r\nHost: h\r\n"), request);
}

TEST(WebSocketHandshake, ClientResponseRefusals) {
  const std::string key = "dGhlIHNhbXBsZSBub25jZQ==";
  auto resp = [&](const std::string& s) { return response(test::chainOf(bytesOf(s)), key, ""); };
  const std::string ok_tail =
      "Upgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
  EXPECT_EQ(resp("HTTP/1.1 101 Switching Protocols\r\n" + ok_tail).rfind("done", 0), 0u);
  EXPECT_EQ(resp("HTTP/1.1 101\r\n" + ok_tail).rfind("done", 0), 0u);
  EXPECT_EQ(resp("HTTP/1.1 404 Not Found\r\n"),
            "invalid: websocket: HTTP status 404 instead of 101");
  // The status is known as soon as the status line is in.
  WsResponseParseResult partial =
      parseWsResponse(test::chainOf(bytesOf("HTTP/1.1 101 OK\r\nUpgrade: web")), key, "");
  EXPECT_EQ(partial.status, DecodeStatus::kNeedMore);
  EXPECT_EQ(partial.status_code, 101);
  EXPECT_EQ(resp("HTTP/1.0 101 OK\r\n"), "invalid: websocket: bad HTTP status line");
  EXPECT_EQ(resp("HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Accept: xxxPLMBiTxaQ9kXGzzhZRbK+xOo=\r\n\r\n"),
            "invalid: websocket: wrong Sec-WebSocket-Accept");
  EXPECT_EQ(resp("HTTP/1.1 101 OK\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"),
            "invalid: websocket: 101 without Upgrade: websocket");
  EXPECT_EQ(resp("HTTP/1.1 101 OK\r\nUpgrade: websocket\r\n"
                 "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"),
            "invalid: websocket: 101 without Connection: upgrade");
  EXPECT_EQ(resp("HTTP/1.1 101 OK\r\nSec-WebSocket-Extensions: permessage-deflate\r\n" + ok_tail),
            "invalid: websocket: server chose an extension we did not offer");
}

}  // namespace
}  // namespace vt::codec
