// codec/ip_nat: the CmdIP server's packet parser and NAT rewrite. Packets
// are built from scratch (ip_packet_builder.h, with its own checksum
// routine, not the codec's); every rewrite is checked against a packet built from scratch
// with the new addresses, or by recomputing each checksum, and the reverse
// rewrite must give back the original bytes. Hostile inputs each have their
// own error.
#include "codec/ip_nat.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "unit/codec/ip_packet_builder.h"

namespace vt::codec {
namespace {

using namespace test;  // NOLINT: the builder's short names read best here

IpAddressBytes a4(const char* s) {
  IpAddressBytes a{};
  EXPECT_EQ(inet_pton(AF_INET, s, a.data()), 1) << s;
  return a;
}
IpAddressBytes a6(const char* s) {
  IpAddressBytes a{};
  EXPECT_EQ(inet_pton(AF_INET6, s, a.data()), 1) << s;
  return a;
}

// Recomputes every checksum of a whole packet (not a fragment) and expects
// each stored one to be exactly what a sender computes; an ICMP error's
// quote is checked the same way when `quote_whole`.
void expectChecksums(const Bytes& pkt, bool quote_whole = true, int depth = 0) {
  SCOPED_TRACE("depth " + std::to_string(depth));
  ASSERT_GE(pkt.size(), 20u);
  const bool v6 = (pkt[0] >> 4) == 6;
  IpAddressBytes src{}, dst{};
  size_t t;
  uint8_t proto;
  if (!v6) {
    size_t ihl = (pkt[0] & 15u) * 4;
    Bytes h(pkt.begin(), pkt.begin() + ihl);
    h[10] = h[11] = 0;
    EXPECT_EQ(get16(pkt, 10), finish(onesSum(h.data(), h.size()))) << "IPv4 header checksum";
    std::memcpy(src.data(), &pkt[12], 4);
    std::memcpy(dst.data(), &pkt[16], 4);
    t = ihl;
    proto = pkt[9];
  } else {
    std::memcpy(src.data(), &pkt[8], 16);
    std::memcpy(dst.data(), &pkt[24], 16);
    t = 40;
    proto = pkt[6];
    while (proto == kHbh || proto == kRouting || proto == kDest || proto == kAh || proto == kFrag) {
      size_t len = proto == kFrag ? 8
                   : proto == kAh ? (pkt[t + 1] + 2u) * 4
                                  : (pkt[t + 1] + 1u) * 8;
      proto = pkt[t];
      t += len;
    }
  }
  if (checksumAt(v6, proto) < 0) return;
  Bytes seg(pkt.begin() + static_cast<long>(t), pkt.end());
  size_t at = static_cast<size_t>(checksumAt(v6, proto));
  if (proto == kUdp && !v6 && get16(seg, at) == 0) return;  // no checksum
  EXPECT_EQ(get16(seg, at), upperChecksum(seg, v6, src, dst, proto))
      << "checksum of protocol " << int(proto);
  bool error =
      (proto == kIcmp && (seg[0] == 3 || seg[0] == 11)) || (proto == kIcmp6 && seg[0] <= 4);
  if (error && quote_whole && depth == 0) {
    expectChecksums(Bytes(seg.begin() + 8, seg.end()), true, depth + 1);
  }
}

RawIpPacket parseOk(const Bytes& b) {
  RawIpPacket r;
  IpPacketError e = parseRawIpPacket(b.data(), b.size(), r);
  EXPECT_EQ(e, IpPacketError::kNone) << ipPacketErrorName(e);
  return r;
}
IpPacketError parseErr(const Bytes& b) {
  RawIpPacket r;
  return parseRawIpPacket(b.data(), b.size(), r);
}

const IpAddressBytes kClient4 = a4("198.18.0.1");
const IpAddressBytes kPool4 = a4("10.233.0.7");
const IpAddressBytes kHost4 = a4("203.0.113.9");
const IpAddressBytes kRouter4 = a4("192.0.2.254");
const IpAddressBytes kClient6 = a6("fdfe:dcba:9876::1");
const IpAddressBytes kPool6 = a6("fd00:233::7");
const IpAddressBytes kHost6 = a6("2001:db8:5::9");
const IpAddressBytes kRouter6 = a6("2001:db8:ffff::1");

// Client -> internet and back, for a packet the client sends: the rewritten
// packet is `expect_out` (built with the pool address), the reverse gives
// back the original.
void roundTripSource(const Bytes& original, const Bytes& expect_out, const IpAddressBytes& pool) {
  Bytes b = original;
  RawIpPacket info = parseOk(b);
  IpAddressBytes client = info.src;
  IpRewriteResult r = rewriteIpSource(b.data(), info, pool);
  EXPECT_TRUE(r.changed);
  EXPECT_EQ(b, expect_out);
  EXPECT_EQ(info.src, pool);
  // What went out parses again, with the same fields.
  RawIpPacket again = parseOk(b);
  EXPECT_EQ(again.checksum_offset, info.checksum_offset);
  EXPECT_EQ(again.quote_offset, info.quote_offset);
  rewriteIpSource(b.data(), info, client);
  EXPECT_EQ(b, original);
}

// ---- well-formed packets ----

TEST(IpNat, Icmp4EchoNoPseudoHeader) {
  Bytes p = ping4(kClient4, kHost4);
  RawIpPacket info = parseOk(p);
  EXPECT_EQ(info.version, 4);
  EXPECT_EQ(info.protocol, kIcmp);
  EXPECT_EQ(info.header_len, 20u);
  EXPECT_EQ(info.transport_offset, 20u);
  EXPECT_EQ(info.checksum_offset, 22u);
  EXPECT_FALSE(info.checksum_pseudo);
  EXPECT_TRUE(info.icmp);
  EXPECT_EQ(info.icmp_type, 8);
  EXPECT_FALSE(info.isIcmpError());
  EXPECT_FALSE(info.fragment);
  EXPECT_EQ(info.src, kClient4);
  EXPECT_EQ(info.dst, kHost4);
  Bytes expect = ping4(kPool4, kHost4);
  roundTripSource(p, expect, kPool4);
  // The ICMP message itself is untouched (no pseudo-header, id kept).
  EXPECT_TRUE(std::equal(p.begin() + 20, p.end(), expect.begin() + 20));
  expectChecksums(expect);
}

TEST(IpNat, Icmp6EchoPseudoHeader) {
  Bytes p = ping6(kClient6, kHost6);
  RawIpPacket info = parseOk(p);
  EXPECT_EQ(info.version, 6);
  EXPECT_EQ(info.protocol, kIcmp6);
  EXPECT_EQ(info.checksum_offset, 42u);
  EXPECT_TRUE(info.checksum_pseudo);
  EXPECT_EQ(info.icmp_type, 128);
  roundTripSource(p, ping6(kPool6, kHost6), kPool6);
  expectChecksums(ping6(kPool6, kHost6));
  // The reply comes back to the pool address and goes to the client.
  auto pong = [](const IpAddressBytes& d) {
    Bytes e = echo(true, 0x77, 1, text("abcdefgh01234567"));
    e[0] = 129;
    seal(e, true, kHost6, d, kIcmp6);
    return ip6(kIcmp6, kHost6, d, e);
  };
  Bytes reply = pong(kPool6);
  RawIpPacket ri = parseOk(reply);
  EXPECT_EQ(ri.icmp_type, 129);
  rewriteIpDestination(reply.data(), ri, kClient6);
  EXPECT_EQ(reply, pong(kClient6));
  expectChecksums(reply);
}

TEST(IpNat, TcpSynBothDirections) {
  for (bool v6 : {false, true}) {
    SCOPED_TRACE(v6 ? "v6" : "v4");
    const auto& c = v6 ? kClient6 : kClient4;
    const auto& pool = v6 ? kPool6 : kPool4;
    const auto& h = v6 ? kHost6 : kHost4;
    auto build = [v6](const IpAddressBytes& s, const IpAddressBytes& d) {
      return v6 ? tcp6(s, d) : tcp4(s, d);
    };
    Bytes out = build(c, h);
    RawIpPacket info = parseOk(out);
    EXPECT_EQ(info.protocol, kTcp);
    EXPECT_EQ(info.checksum_offset, info.header_len + 16);
    roundTripSource(out, build(pool, h), pool);

    // Internet -> client: destination pool -> client.
    Bytes back = build(h, pool);
    Bytes orig = back;
    RawIpPacket bi = parseOk(back);
    IpRewriteResult r = rewriteIpDestination(back.data(), bi, c);
    EXPECT_TRUE(r.changed);
    EXPECT_FALSE(r.quote_rewritten);
    EXPECT_EQ(back, build(h, c));
    expectChecksums(back);
    EXPECT_EQ(bi.dst, c);
    rewriteIpDestination(back.data(), bi, pool);
    EXPECT_EQ(back, orig);
  }
}

TEST(IpNat, UdpBothFamilies) {
  Bytes p4 = udp4(kClient4, kHost4, text("query"));
  roundTripSource(p4, udp4(kPool4, kHost4, text("query")), kPool4);
  expectChecksums(udp4(kPool4, kHost4, text("query")));
  Bytes p6 = udp6(kClient6, kHost6, text("query6"));
  roundTripSource(p6, udp6(kPool6, kHost6, text("query6")), kPool6);
  // An odd-length payload: the checksum pads, the rewrite does not care.
  Bytes odd = udp6(kClient6, kHost6, text("odd"));
  roundTripSource(odd, udp6(kPool6, kHost6, text("odd")), kPool6);
}

TEST(IpNat, Udp4ZeroChecksumStaysZero) {
  Bytes p = udp4(kClient4, kHost4, text("nocheck"), /*zero=*/true);
  RawIpPacket info = parseOk(p);
  EXPECT_EQ(info.checksum_offset, 0u);
  EXPECT_EQ(info.transport_offset, 20u);
  roundTripSource(p, udp4(kPool4, kHost4, text("nocheck"), true), kPool4);
}

TEST(IpNat, Udp6ZeroChecksumRefused) {
  Bytes p = udp6(kClient6, kHost6, text("x"));
  set16(p, 46, 0);
  EXPECT_EQ(parseErr(p), IpPacketError::kUdpZeroChecksum);
}

TEST(IpNat, UdpChecksumThatBecomesZeroIsSentAsFfff) {
  // Find a payload whose checksum with the pool address computes to 0,
  // so the sender form is 0xffff, and one whose original is 0xffff.
  for (const auto* target : {&kPool4, &kClient4}) {
    bool found = false;
    for (uint32_t w = 0; w <= 0xffff && !found; ++w) {
      Bytes pl = {static_cast<uint8_t>(w >> 8), static_cast<uint8_t>(w)};
      Bytes seg = udpSeg(5353, 53, pl);  // as udp4() builds it
      if (upperChecksum(seg, false, *target, kHost4, kUdp) != 0xffff) continue;
      found = true;
      Bytes out = udp4(kClient4, kHost4, pl);
      Bytes expect = udp4(kPool4, kHost4, pl);
      if (target == &kPool4)
        EXPECT_EQ(get16(expect, 26), 0xffff);
      else
        EXPECT_EQ(get16(out, 26), 0xffff);
      roundTripSource(out, expect, kPool4);
    }
    EXPECT_TRUE(found);
  }
}

TEST(IpNat, UdpLiteAndDccp) {
  for (uint8_t proto : {kUdpLite, kDccp}) {
    SCOPED_TRACE(int(proto));
    auto build = [proto](const IpAddressBytes& s, const IpAddressBytes& d) {
      Bytes seg = udpSeg(7, 9, text("dccp-ish payload"));  // 16 bytes of header-ish data
      if (proto == kUdpLite) set16(seg, 4, 0);             // coverage 0: whole datagram
      seal(seg, true, s, d, proto);
      return ip6(proto, s, d, seg);
    };
    Bytes p = build(kClient6, kHost6);
    RawIpPacket info = parseOk(p);
    EXPECT_EQ(info.checksum_offset, 46u);
    EXPECT_TRUE(info.checksum_pseudo);
    roundTripSource(p, build(kPool6, kHost6), kPool6);
  }
  Bytes lite = ip4(kUdpLite, kClient4, kHost4, udpSeg(1, 2, text("z")));
  EXPECT_EQ(parseErr(lite), IpPacketError::kUdpZeroChecksum);
}

TEST(IpNat, RawProtocol253) {
  Bytes payload = text("raw protocol 253 payload, any bytes \x01\x02");
  Bytes p4 = ip4(kRaw, kClient4, kHost4, payload);
  RawIpPacket i4 = parseOk(p4);
  EXPECT_EQ(i4.protocol, kRaw);
  EXPECT_EQ(i4.transport_offset, 20u);
  EXPECT_EQ(i4.checksum_offset, 0u);
  roundTripSource(p4, ip4(kRaw, kPool4, kHost4, payload), kPool4);
  Bytes p6 = ip6(kRaw, kClient6, kHost6, payload);
  RawIpPacket i6 = parseOk(p6);
  EXPECT_EQ(i6.protocol, kRaw);
  EXPECT_EQ(i6.header_len, 40u);
  roundTripSource(p6, ip6(kRaw, kPool6, kHost6, payload), kPool6);
  // A tiny raw payload (shorter than any transport header) is fine too.
  roundTripSource(ip4(kRaw, kClient4, kHost4, {}), ip4(kRaw, kPool4, kHost4, {}), kPool4);
}

TEST(IpNat, Ipv4OptionsKept) {
  Bytes opts = {0x94, 0x04, 0x00, 0x00};  // Router Alert
  auto build = [&](const IpAddressBytes& s) {
    Bytes t = tcpSyn(1, 2);
    seal(t, false, s, kHost4, kTcp);
    return ip4(kTcp, s, kHost4, t, 0, opts);
  };
  RawIpPacket info = parseOk(build(kClient4));
  EXPECT_EQ(info.header_len, 24u);
  EXPECT_EQ(info.checksum_offset, 40u);
  roundTripSource(build(kClient4), build(kPool4), kPool4);
}

TEST(IpNat, SameAddressIsANoOp) {
  Bytes p = tcp4(kClient4, kHost4);
  Bytes orig = p;
  RawIpPacket info = parseOk(p);
  IpRewriteResult r = rewriteIpSource(p.data(), info, kClient4);
  EXPECT_FALSE(r.changed);
  EXPECT_EQ(p, orig);
}

// ---- ICMP errors ----

TEST(IpNat, Icmp4PortUnreachableQuotingUdpGoesBackToTheClient) {
  // The client sent UDP from kClient4; it left with kPool4; the host
  // answers port unreachable to kPool4 quoting what it got.
  Bytes sent = udp4(kPool4, kHost4, text("hello there"));
  Bytes err = error4(3, 3, kHost4, kPool4, sent);
  RawIpPacket info = parseOk(err);
  EXPECT_TRUE(info.isIcmpError());
  EXPECT_EQ(info.quote_offset, 28u);
  EXPECT_EQ(info.inner_header_len, 20u);
  EXPECT_EQ(info.inner_checksum_offset, 28u + 20 + 6);
  EXPECT_TRUE(info.inner_checksum_udp);
  Bytes orig = err;
  IpRewriteResult r = rewriteIpDestination(err.data(), info, kClient4);
  EXPECT_TRUE(r.quote_rewritten);
  // Exactly what the client would have received without a NAT.
  Bytes expect = error4(3, 3, kHost4, kClient4, udp4(kClient4, kHost4, text("hello there")));
  EXPECT_EQ(err, expect);
  expectChecksums(err);
  rewriteIpDestination(err.data(), info, kPool4);
  EXPECT_EQ(err, orig);
}

TEST(IpNat, Icmp4TruncatedQuotes) {
  // RFC 792 minimum: inner header + 8 bytes. For UDP the checksum is in
  // those 8 bytes and is fixed; for TCP it is not and is left alone.
  Bytes full_pool = udp4(kPool4, kHost4, text("a longer payload that is cut"));
  Bytes full_client = udp4(kClient4, kHost4, text("a longer payload that is cut"));
  Bytes err = error4(11, 0, kRouter4, kPool4, Bytes(full_pool.begin(), full_pool.begin() + 28));
  RawIpPacket info = parseOk(err);
  EXPECT_EQ(info.inner_checksum_offset, 28u + 26);
  EXPECT_TRUE(rewriteIpDestination(err.data(), info, kClient4).quote_rewritten);
  EXPECT_EQ(
      err, error4(11, 0, kRouter4, kClient4, Bytes(full_client.begin(), full_client.begin() + 28)));

  Bytes tcp_pool = tcp4(kPool4, kHost4);
  Bytes terr = error4(3, 1, kRouter4, kPool4, Bytes(tcp_pool.begin(), tcp_pool.begin() + 28));
  RawIpPacket ti = parseOk(terr);
  EXPECT_EQ(ti.inner_checksum_offset, 0u);  // TCP checksum is at +16: not quoted
  Bytes torig = terr;
  EXPECT_TRUE(rewriteIpDestination(terr.data(), ti, kClient4).quote_rewritten);
  Bytes tcp_client = tcp4(kClient4, kHost4);
  EXPECT_EQ(terr,
            error4(3, 1, kRouter4, kClient4, Bytes(tcp_client.begin(), tcp_client.begin() + 28)));
  expectChecksums(terr, /*quote_whole=*/false);
  rewriteIpDestination(terr.data(), ti, kPool4);
  EXPECT_EQ(terr, torig);

  // Quote cut inside the inner TCP header just past its checksum: fixed.
  Bytes cut = error4(3, 1, kRouter4, kPool4, Bytes(tcp_pool.begin(), tcp_pool.begin() + 38));
  RawIpPacket ci = parseOk(cut);
  EXPECT_EQ(ci.inner_checksum_offset, 28u + 20 + 16);
  rewriteIpDestination(cut.data(), ci, kClient4);
  EXPECT_EQ(cut,
            error4(3, 1, kRouter4, kClient4, Bytes(tcp_client.begin(), tcp_client.begin() + 38)));
}

TEST(IpNat, Icmp6TimeExceededQuotingEcho) {
  Bytes sent = ping6(kPool6, kHost6);
  Bytes err = error6(3, 0, kRouter6, kPool6, sent);
  RawIpPacket info = parseOk(err);
  EXPECT_EQ(info.quote_offset, 48u);
  EXPECT_EQ(info.inner_checksum_offset, 48u + 40 + 2);
  EXPECT_FALSE(info.inner_checksum_udp);
  Bytes orig = err;
  IpRewriteResult r = rewriteIpDestination(err.data(), info, kClient6);
  EXPECT_TRUE(r.quote_rewritten);
  Bytes expect = error6(3, 0, kRouter6, kClient6, ping6(kClient6, kHost6));
  EXPECT_EQ(err, expect);
  expectChecksums(err);
  rewriteIpDestination(err.data(), info, kPool6);
  EXPECT_EQ(err, orig);
}

TEST(IpNat, Icmp6PacketTooBigTruncatedQuote) {
  Bytes big = udp6(kPool6, kHost6, Bytes(1400, 0x5a));
  Bytes cut(big.begin(), big.begin() + 1232);  // what fits in 1280
  Bytes err = error6(2, 0, kRouter6, kPool6, cut);
  set16(err, 44, 1280);  // MTU
  {
    Bytes seg(err.begin() + 40, err.end());
    seal(seg, true, kRouter6, kPool6, kIcmp6);
    std::copy(seg.begin(), seg.end(), err.begin() + 40);
  }
  RawIpPacket info = parseOk(err);
  EXPECT_EQ(info.inner_checksum_offset, 48u + 46);
  rewriteIpDestination(err.data(), info, kClient6);
  Bytes client_big = udp6(kClient6, kHost6, Bytes(1400, 0x5a));
  EXPECT_TRUE(std::equal(err.begin() + 48, err.end(), client_big.begin()));
  expectChecksums(err, /*quote_whole=*/false);
}

TEST(IpNat, ClientSentErrorQuotesItsOwnAddressAsDestination) {
  // The client's host answers port unreachable to a packet the internet
  // sent it; on the way out the quote's destination becomes the pool.
  Bytes got = udp4(kHost4, kClient4, text("probe"));
  Bytes err = error4(3, 3, kClient4, kHost4, got);
  Bytes expect = error4(3, 3, kPool4, kHost4, udp4(kHost4, kPool4, text("probe")));
  roundTripSource(err, expect, kPool4);
  Bytes got6 = tcp6(kHost6, kClient6);
  Bytes err6 = error6(1, 4, kClient6, kHost6, got6);
  roundTripSource(err6, error6(1, 4, kPool6, kHost6, tcp6(kHost6, kPool6)), kPool6);
}

TEST(IpNat, QuoteOfSomeoneElseIsLeftAlone) {
  Bytes other = udp4(a4("10.233.0.99"), kHost4, text("not ours"));
  Bytes err = error4(3, 3, kHost4, kPool4, other);
  RawIpPacket info = parseOk(err);
  IpRewriteResult r = rewriteIpDestination(err.data(), info, kClient4);
  EXPECT_TRUE(r.changed);
  EXPECT_FALSE(r.quote_rewritten);
  EXPECT_TRUE(std::equal(err.begin() + 28, err.end(), other.begin()));
  expectChecksums(err);
}

TEST(IpNat, Icmp4QuotingIcmpEchoAndInnerOptions) {
  // Inner ICMP has no pseudo-header: only the inner IPv4 header changes.
  Bytes sent = ping4(kPool4, kHost4);
  Bytes err = error4(11, 0, kRouter4, kPool4, sent);
  RawIpPacket info = parseOk(err);
  EXPECT_EQ(info.inner_checksum_offset, 0u);
  rewriteIpDestination(err.data(), info, kClient4);
  EXPECT_EQ(err, error4(11, 0, kRouter4, kClient4, ping4(kClient4, kHost4)));

  // An inner header with options.
  auto inner = [](const IpAddressBytes& s) {
    Bytes u = udpSeg(1, 2, text("opt"));
    seal(u, false, s, kHost4, kUdp);
    return ip4(kUdp, s, kHost4, u, 0, {1, 1, 1, 0});  // NOPs, EOL
  };
  Bytes e2 = error4(3, 3, kHost4, kPool4, inner(kPool4));
  RawIpPacket i2 = parseOk(e2);
  EXPECT_EQ(i2.inner_header_len, 24u);
  rewriteIpDestination(e2.data(), i2, kClient4);
  EXPECT_EQ(e2, error4(3, 3, kHost4, kClient4, inner(kClient4)));
}

// ---- IPv6 extension headers and fragments ----

TEST(IpNat, Ipv6HopByHopDestOptsFragmentUdp) {
  // A UDP datagram, checksum over all of it, sent as two fragments whose
  // unfragmentable part carries Hop-by-Hop and Destination Options.
  Bytes payload(100, 0);
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<uint8_t>(i * 7);
  auto datagram = [&](const IpAddressBytes& s) {
    Bytes u = udpSeg(4000, 4001, payload);
    seal(u, true, s, kHost6, kUdp);
    return u;
  };
  auto first = [&](const IpAddressBytes& s) {
    Bytes u = datagram(s);
    Bytes part(u.begin(), u.begin() + 56);
    return ip6(kHbh, s, kHost6,
               cat({ext(kHbh, kDest), ext(kDest, kFrag, 16), ext(kFrag, kUdp, 8, 0x0001), part}));
  };
  auto later = [&](const IpAddressBytes& s) {
    Bytes u = datagram(s);
    Bytes part(u.begin() + 56, u.end());
    return ip6(kHbh, s, kHost6,
               cat({ext(kHbh, kDest), ext(kDest, kFrag, 16), ext(kFrag, kUdp, 8, 56), part}));
  };
  Bytes f1 = first(kClient6);
  RawIpPacket i1 = parseOk(f1);
  EXPECT_EQ(i1.ext_headers, 3);
  EXPECT_EQ(i1.header_len, 40u + 8 + 16 + 8);
  EXPECT_EQ(i1.protocol, kUdp);
  EXPECT_TRUE(i1.fragment);
  EXPECT_TRUE(i1.more_fragments);
  EXPECT_EQ(i1.fragment_offset, 0);
  EXPECT_EQ(i1.transport_offset, 72u);
  EXPECT_EQ(i1.checksum_offset, 78u);
  roundTripSource(f1, first(kPool6), kPool6);

  Bytes f2 = later(kClient6);
  RawIpPacket i2 = parseOk(f2);
  EXPECT_TRUE(i2.fragment);
  EXPECT_FALSE(i2.more_fragments);
  EXPECT_EQ(i2.fragment_offset, 56);
  EXPECT_EQ(i2.protocol, kUdp);
  EXPECT_EQ(i2.transport_offset, 0u);
  EXPECT_EQ(i2.checksum_offset, 0u);
  EXPECT_EQ(i2.header_len, 72u);
  roundTripSource(f2, later(kPool6), kPool6);
}

TEST(IpNat, Ipv6AtomicFragmentAhAndRoutingSegmentsLeftZero) {
  auto build = [](const IpAddressBytes& s) {
    Bytes t = tcpSyn(5, 6);
    seal(t, true, s, kHost6, kTcp);
    return ip6(kRouting, s, kHost6,
               cat({ext(kRouting, kFrag, 24), ext(kFrag, kAh, 8, 0), ext(kAh, kTcp, 24), t}));
  };
  Bytes p = build(kClient6);
  RawIpPacket info = parseOk(p);
  EXPECT_EQ(info.ext_headers, 3);
  EXPECT_FALSE(info.fragment);  // atomic
  EXPECT_EQ(info.protocol, kTcp);
  EXPECT_EQ(info.transport_offset, 40u + 24 + 8 + 24);
  roundTripSource(p, build(kPool6), kPool6);
}

TEST(IpNat, Ipv4Fragments) {
  Bytes payload(64, 0x33);
  auto datagram = [&](const IpAddressBytes& s) {
    Bytes u = udpSeg(9, 10, payload);
    seal(u, false, s, kHost4, kUdp);
    return u;
  };
  auto first = [&](const IpAddressBytes& s) {
    Bytes u = datagram(s);
    return ip4(kUdp, s, kHost4, Bytes(u.begin(), u.begin() + 40), 0x2000);
  };
  auto later = [&](const IpAddressBytes& s) {
    Bytes u = datagram(s);
    return ip4(kUdp, s, kHost4, Bytes(u.begin() + 40, u.end()), 5);
  };
  RawIpPacket i1 = parseOk(first(kClient4));
  EXPECT_TRUE(i1.fragment);
  EXPECT_TRUE(i1.more_fragments);
  EXPECT_EQ(i1.checksum_offset, 26u);
  roundTripSource(first(kClient4), first(kPool4), kPool4);
  RawIpPacket i2 = parseOk(later(kClient4));
  EXPECT_TRUE(i2.fragment);
  EXPECT_EQ(i2.fragment_offset, 40);
  EXPECT_EQ(i2.transport_offset, 0u);
  EXPECT_EQ(i2.checksum_offset, 0u);
  roundTripSource(later(kClient4), later(kPool4), kPool4);
  // A first fragment too short for the TCP header (RFC 1858).
  Bytes t = tcpSyn(1, 2);
  EXPECT_EQ(parseErr(ip4(kTcp, kClient4, kHost4, Bytes(t.begin(), t.begin() + 16), 0x2000)),
            IpPacketError::kTransportTruncated);
}

// ---- hostile input ----

std::vector<Bytes> samplePackets() {
  std::vector<Bytes> v = {
      ping4(kClient4, kHost4),
      ping6(kClient6, kHost6),
      tcp4(kClient4, kHost4),
      tcp6(kClient6, kHost6),
      udp4(kClient4, kHost4, text("u")),
      udp6(kClient6, kHost6, text("u6")),
      error4(3, 3, kHost4, kPool4, udp4(kPool4, kHost4, text("q"))),
      error6(3, 0, kRouter6, kPool6, ping6(kPool6, kHost6)),
      ip6(kHbh, kClient6, kHost6, cat({ext(kHbh, kDest), ext(kDest, kRaw, 16), text("raw")})),
      ip4(kRaw, kClient4, kHost4, text("raw")),
  };
  return v;
}

TEST(IpNat, TruncatedAtEveryLength) {
  for (const Bytes& full : samplePackets()) {
    const bool v6 = (full[0] >> 4) == 6;
    for (size_t k = 0; k < full.size(); ++k) {
      Bytes cut(full.begin(), full.begin() + static_cast<long>(k));
      IpPacketError want = k == 0                 ? IpPacketError::kEmpty
                           : k < (v6 ? 40u : 20u) ? IpPacketError::kTruncatedHeader
                           : v6                   ? IpPacketError::kPayloadLengthMismatch
                                                  : IpPacketError::kTotalLengthMismatch;
      EXPECT_EQ(parseErr(cut), want) << "at " << k;
      // The same cut with its lengths (and IPv4 header checksum) made to
      // agree: parses or fails inside, never reads past the end. A copy of
      // exactly k bytes on the heap lets ASan see any overrun.
      if (k >= (v6 ? 40u : 20u)) {
        if (v6) {
          set16(cut, 4, static_cast<uint16_t>(k - 40));
        } else {
          size_t ihl = (cut[0] & 15u) * 4;
          set16(cut, 2, static_cast<uint16_t>(k));
          if (ihl <= k) {
            set16(cut, 10, 0);
            set16(cut, 10, finish(onesSum(cut.data(), ihl)));
          }
        }
        std::unique_ptr<uint8_t[]> heap(new uint8_t[k]);
        std::memcpy(heap.get(), cut.data(), k);
        RawIpPacket info;
        if (parseRawIpPacket(heap.get(), k, info) == IpPacketError::kNone) {
          IpAddressBytes other = v6 ? kPool6 : kPool4;
          rewriteIpSource(heap.get(), info, other);
          rewriteIpDestination(heap.get(), info, other);
        }
      }
    }
  }
}

TEST(IpNat, Ipv4HeaderErrors) {
  Bytes good = tcp4(kClient4, kHost4);
  for (uint8_t ihl = 0; ihl < 5; ++ihl) {
    Bytes b = good;
    b[0] = static_cast<uint8_t>(0x40 | ihl);
    EXPECT_EQ(parseErr(b), IpPacketError::kIhlTooSmall) << int(ihl);
  }
  // IHL 15 (60 bytes) in a 20-byte packet.
  Bytes small = ip4(kRaw, kClient4, kHost4, {});
  small[0] = 0x4f;
  EXPECT_EQ(parseErr(small), IpPacketError::kIhlPastEnd);
  // Total length larger, smaller (trailing bytes).
  Bytes longer = good;
  set16(longer, 2, static_cast<uint16_t>(good.size() + 1));
  EXPECT_EQ(parseErr(longer), IpPacketError::kTotalLengthMismatch);
  Bytes trailing = good;
  trailing.push_back(0);
  EXPECT_EQ(parseErr(trailing), IpPacketError::kTotalLengthMismatch);
  Bytes shorter = good;
  set16(shorter, 2, 20);
  EXPECT_EQ(parseErr(shorter), IpPacketError::kTotalLengthMismatch);
  Bytes badck = good;
  badck[10] ^= 1;
  EXPECT_EQ(parseErr(badck), IpPacketError::kHeaderChecksum);
  // The header checksum is verified over the options too.
  Bytes opt = ip4(kRaw, kClient4, kHost4, text("x"), 0, {1, 1, 1, 1});
  opt[21] = 0;
  EXPECT_EQ(parseErr(opt), IpPacketError::kHeaderChecksum);
  // TCP header cut short (unfragmented).
  Bytes t = tcpSyn(1, 2);
  EXPECT_EQ(parseErr(ip4(kTcp, kClient4, kHost4, Bytes(t.begin(), t.begin() + 19))),
            IpPacketError::kTransportTruncated);
  EXPECT_EQ(parseErr(ip4(kUdp, kClient4, kHost4, Bytes(7, 1))), IpPacketError::kTransportTruncated);
  EXPECT_EQ(parseErr(ip4(kIcmp, kClient4, kHost4, Bytes{8, 0, 0, 0})),
            IpPacketError::kTransportTruncated);
}

TEST(IpNat, BadVersions) {
  for (uint8_t v = 0; v < 16; ++v) {
    if (v == 4 || v == 6) continue;
    Bytes b = tcp4(kClient4, kHost4);
    b[0] = static_cast<uint8_t>((v << 4) | 5);
    EXPECT_EQ(parseErr(b), IpPacketError::kBadVersion) << int(v);
  }
}

TEST(IpNat, Ipv6Errors) {
  Bytes good = ping6(kClient6, kHost6);
  Bytes longer = good;
  set16(longer, 4, static_cast<uint16_t>(good.size() - 40 + 1));
  EXPECT_EQ(parseErr(longer), IpPacketError::kPayloadLengthMismatch);
  Bytes trailing = good;
  trailing.push_back(0);
  EXPECT_EQ(parseErr(trailing), IpPacketError::kPayloadLengthMismatch);
  Bytes jumbo = good;
  set16(jumbo, 4, 0);
  EXPECT_EQ(parseErr(jumbo), IpPacketError::kPayloadLengthMismatch);
  // A bare header (payload length 0, No Next Header) is fine.
  RawIpPacket bare = parseOk(ip6(59, kClient6, kHost6, {}));
  EXPECT_EQ(bare.protocol, 59);
  EXPECT_EQ(bare.transport_offset, 40u);

  // Chains: exactly the cap is accepted, one more is not.
  auto chain = [](size_t count, uint8_t last) {
    Bytes body;
    for (size_t i = 0; i < count; ++i)
      body = cat({body, ext(kDest, i + 1 == count ? last : kDest)});
    return ip6(count ? kDest : last, kClient6, kHost6, cat({body, text("payload.")}));
  };
  RawIpPacket capped = parseOk(chain(kMaxIpv6ExtHeaders, kRaw));
  EXPECT_EQ(capped.ext_headers, kMaxIpv6ExtHeaders);
  EXPECT_EQ(parseErr(chain(kMaxIpv6ExtHeaders + 1, kRaw)), IpPacketError::kTooManyExtHeaders);
  // A "loop": every header names Destination Options as the next one, to
  // the end of the packet and past it.
  Bytes loop(40 + 8 * 40, 0);
  for (size_t i = 40; i < loop.size(); i += 8) loop[i] = kDest;
  Bytes lp = ip6(kDest, kClient6, kHost6, Bytes(loop.begin() + 40, loop.end()));
  EXPECT_EQ(parseErr(lp), IpPacketError::kTooManyExtHeaders);
  Bytes lp2 = ip6(kDest, kClient6, kHost6, Bytes(8 * 3, 0));
  for (size_t i = 40; i < lp2.size(); i += 8) lp2[i] = kDest;
  EXPECT_EQ(parseErr(lp2), IpPacketError::kExtHeaderPastEnd);

  // Length running past the end; header cut before its 8 bytes.
  Bytes past = ip6(kDest, kClient6, kHost6, cat({ext(kDest, kRaw), text("12345678")}));
  past[41] = 10;  // (10 + 1) * 8 bytes
  EXPECT_EQ(parseErr(past), IpPacketError::kExtHeaderPastEnd);
  EXPECT_EQ(parseErr(ip6(kDest, kClient6, kHost6, Bytes{kRaw, 0, 0, 0})),
            IpPacketError::kExtHeaderPastEnd);
  Bytes ah_past = ip6(kAh, kClient6, kHost6, cat({ext(kAh, kRaw, 8)}));
  ah_past[41] = 3;  // (3 + 2) * 4 = 20 bytes
  EXPECT_EQ(parseErr(ah_past), IpPacketError::kExtHeaderPastEnd);

  EXPECT_EQ(parseErr(ip6(kDest, kClient6, kHost6, cat({ext(kDest, kHbh), ext(kHbh, kRaw)}))),
            IpPacketError::kMisplacedHopByHop);
  EXPECT_EQ(parseErr(ip6(kHbh, kClient6, kHost6, cat({ext(kHbh, kHbh), ext(kHbh, kRaw)}))),
            IpPacketError::kMisplacedHopByHop);
  EXPECT_EQ(parseErr(ip6(kFrag, kClient6, kHost6,
                         cat({ext(kFrag, kFrag, 8, 1), ext(kFrag, kRaw, 8, 1), text("x")}))),
            IpPacketError::kRepeatedFragmentHeader);
  Bytes rh = ip6(kRouting, kClient6, kHost6, cat({ext(kRouting, kRaw, 24), text("x")}));
  rh[43] = 1;  // Segments Left
  EXPECT_EQ(parseErr(rh), IpPacketError::kRoutingSegmentsLeft);
  // A first fragment whose chain does not reach the upper layer (RFC 7112).
  EXPECT_EQ(parseErr(ip6(kFrag, kClient6, kHost6, cat({ext(kFrag, kDest, 8, 1), Bytes{kTcp, 1}}))),
            IpPacketError::kExtHeaderPastEnd);
  Bytes t = tcpSyn(1, 2);
  EXPECT_EQ(parseErr(ip6(kTcp, kClient6, kHost6, Bytes(t.begin(), t.begin() + 12))),
            IpPacketError::kTransportTruncated);
}

TEST(IpNat, IcmpQuoteErrors) {
  Bytes inner = udp4(kPool4, kHost4, text("q"));
  EXPECT_EQ(parseErr(error4(3, 3, kHost4, kPool4, Bytes(inner.begin(), inner.begin() + 19))),
            IpPacketError::kIcmpQuoteTruncated);
  EXPECT_EQ(parseErr(error4(3, 3, kHost4, kPool4, {})), IpPacketError::kIcmpQuoteTruncated);
  Bytes v6inner = inner;
  v6inner[0] = 0x65;
  EXPECT_EQ(parseErr(error4(3, 3, kHost4, kPool4, v6inner)), IpPacketError::kIcmpQuoteBadHeader);
  Bytes ihl4 = inner;
  ihl4[0] = 0x44;
  EXPECT_EQ(parseErr(error4(3, 3, kHost4, kPool4, ihl4)), IpPacketError::kIcmpQuoteBadHeader);
  Bytes ihl15 = inner;
  ihl15[0] = 0x4f;  // 60 bytes, the quote has 29
  EXPECT_EQ(parseErr(error4(3, 3, kHost4, kPool4, ihl15)), IpPacketError::kIcmpQuoteTruncated);
  Bytes in6 = ping6(kPool6, kHost6);
  EXPECT_EQ(parseErr(error6(1, 0, kRouter6, kPool6, Bytes(in6.begin(), in6.begin() + 39))),
            IpPacketError::kIcmpQuoteTruncated);
  EXPECT_EQ(parseErr(error6(1, 0, kRouter6, kPool6, ip4(kRaw, kPool4, kHost4, text("x")))),
            IpPacketError::kIcmpQuoteTruncated);  // 21 bytes < 40
  Bytes v4in6 = tcp4(kPool4, kHost4);
  v4in6.resize(48, 0);
  EXPECT_EQ(parseErr(error6(1, 0, kRouter6, kPool6, v4in6)), IpPacketError::kIcmpQuoteBadHeader);
  // An inner IPv6 header whose extension headers run past the quote: the
  // error parses; there is just no inner checksum to fix.
  Bytes cut6 = ip6(kDest, kPool6, kHost6, cat({ext(kDest, kUdp, 64), udpSeg(1, 2, {})}));
  RawIpPacket info =
      parseOk(error6(1, 0, kRouter6, kPool6, Bytes(cut6.begin(), cut6.begin() + 60)));
  EXPECT_EQ(info.inner_checksum_offset, 0u);
}

TEST(IpNat, ErrorNamesAreDistinct) {
  std::set<std::string> names;
  for (size_t i = 0; i < kIpPacketErrorCount; ++i) {
    names.insert(ipPacketErrorName(static_cast<IpPacketError>(i)));
  }
  EXPECT_EQ(names.size(), kIpPacketErrorCount);
  EXPECT_EQ(names.count("unknown"), 0u);
}

TEST(IpNat, RandomAddressesRoundTrip) {
  std::mt19937 rng(12345);
  for (const Bytes& base : samplePackets()) {
    for (int i = 0; i < 200; ++i) {
      Bytes b = base;
      RawIpPacket info = parseOk(b);
      IpAddressBytes s{}, d{};
      for (size_t k = 0; k < info.addressLength(); ++k) {
        s[k] = static_cast<uint8_t>(rng());
        d[k] = static_cast<uint8_t>(rng());
      }
      IpAddressBytes os = info.src, od = info.dst;
      rewriteIpSource(b.data(), info, s);
      rewriteIpDestination(b.data(), info, d);
      RawIpPacket again = parseOk(b);
      EXPECT_EQ(again.src, s);
      EXPECT_EQ(again.dst, d);
      expectChecksums(b);
      rewriteIpDestination(b.data(), info, od);
      rewriteIpSource(b.data(), info, os);
      EXPECT_EQ(b, base);
    }
  }
}

TEST(IpNat, AddressClasses) {
  EXPECT_TRUE(ipIsLoopback(false, a4("127.1.2.3").data()));
  EXPECT_FALSE(ipIsLoopback(false, a4("128.0.0.1").data()));
  EXPECT_TRUE(ipIsLoopback(true, a6("::1").data()));
  EXPECT_TRUE(ipIsLoopback(true, a6("::ffff:127.0.0.1").data()));
  EXPECT_FALSE(ipIsLoopback(true, a6("::2").data()));
  EXPECT_TRUE(ipIsUnspecified(false, a4("0.0.0.0").data()));
  EXPECT_TRUE(ipIsUnspecified(true, a6("::").data()));
  EXPECT_FALSE(ipIsUnspecified(true, a6("::1").data()));
  EXPECT_TRUE(ipIsMulticast(false, a4("224.0.0.1").data()));
  EXPECT_TRUE(ipIsMulticast(false, a4("239.255.255.250").data()));
  EXPECT_FALSE(ipIsMulticast(false, a4("240.0.0.1").data()));
  EXPECT_TRUE(ipIsMulticast(true, a6("ff02::1").data()));
  EXPECT_FALSE(ipIsMulticast(true, a6("fe80::1").data()));
  EXPECT_TRUE(ipIsBroadcast(false, a4("255.255.255.255").data()));
  EXPECT_TRUE(ipIsBroadcast(true, a6("::ffff:255.255.255.255").data()));
  EXPECT_FALSE(ipIsBroadcast(false, a4("255.255.255.254").data()));
}

}  // namespace
}  // namespace vt::codec
