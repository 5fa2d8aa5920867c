// Test-only IP packet builder for the ip_nat tests: its own RFC 1071
// checksum (not the codec's), pseudo-headers, and whole IPv4/IPv6 packets
// (TCP SYN, UDP, ICMP echo and errors, extension headers) with every
// checksum computed from scratch, as a sender would.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <vector>

#include "codec/ip_nat.h"

namespace vt::codec::test {

using Bytes = std::vector<uint8_t>;

inline uint32_t onesSum(const uint8_t* p, size_t n, uint32_t acc = 0) {
  for (size_t i = 0; i < n; i += 2) {
    uint32_t hi = p[i];
    uint32_t lo = i + 1 < n ? p[i + 1] : 0;  // an odd tail is padded with zero
    acc += (hi << 8) | lo;
  }
  return acc;
}
inline uint16_t finish(uint32_t acc) {
  while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
  return static_cast<uint16_t>(~acc);
}
inline void put16(Bytes& b, uint16_t v) {
  b.push_back(static_cast<uint8_t>(v >> 8));
  b.push_back(static_cast<uint8_t>(v));
}
inline void put32(Bytes& b, uint32_t v) {
  put16(b, static_cast<uint16_t>(v >> 16));
  put16(b, static_cast<uint16_t>(v));
}
inline uint16_t get16(const Bytes& b, size_t at) {
  return static_cast<uint16_t>((b[at] << 8) | b[at + 1]);
}
inline void set16(Bytes& b, size_t at, uint16_t v) {
  b[at] = static_cast<uint8_t>(v >> 8);
  b[at + 1] = static_cast<uint8_t>(v);
}
inline Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

inline constexpr uint8_t kTcp = 6, kUdp = 17, kIcmp = 1, kIcmp6 = 58, kDccp = 33, kUdpLite = 136;
inline constexpr uint8_t kHbh = 0, kRouting = 43, kFrag = 44, kAh = 51, kDest = 60, kRaw = 253;

inline uint32_t pseudoSum(bool v6, const IpAddressBytes& src, const IpAddressBytes& dst, size_t len,
                          uint8_t proto) {
  Bytes ph;
  size_t alen = v6 ? 16 : 4;
  ph.insert(ph.end(), src.begin(), src.begin() + alen);
  ph.insert(ph.end(), dst.begin(), dst.begin() + alen);
  if (v6) {
    put32(ph, static_cast<uint32_t>(len));
    ph.insert(ph.end(), {0, 0, 0, proto});
  } else {
    ph.insert(ph.end(), {0, proto});
    put16(ph, static_cast<uint16_t>(len));
  }
  return onesSum(ph.data(), ph.size());
}

// Where each upper layer keeps its checksum; -1: none we know of.
inline int checksumAt(bool v6, uint8_t proto) {
  switch (proto) {
    case kTcp: return 16;
    case kUdp:
    case kUdpLite:
    case kDccp: return 6;
    case kIcmp: return v6 ? -1 : 2;
    case kIcmp6: return v6 ? 2 : -1;
    default: return -1;
  }
}

// The checksum a sender computes for the upper-layer message `seg` (its
// checksum field taken as zero).
inline uint16_t upperChecksum(Bytes seg, bool v6, const IpAddressBytes& src,
                              const IpAddressBytes& dst, uint8_t proto) {
  const int where = checksumAt(v6, proto);
  if (where < 0 || seg.size() < static_cast<size_t>(where) + 2) std::abort();  // a test bug
  const size_t at = static_cast<size_t>(where);
  seg[at] = seg[at + 1] = 0;
  bool pseudo = !(proto == kIcmp && !v6);
  uint32_t acc = pseudo ? pseudoSum(v6, src, dst, seg.size(), proto) : 0;
  uint16_t ck = finish(onesSum(seg.data(), seg.size(), acc));
  if ((proto == kUdp || proto == kUdpLite) && ck == 0) ck = 0xffff;
  return ck;
}
inline void seal(Bytes& seg, bool v6, const IpAddressBytes& src, const IpAddressBytes& dst,
                 uint8_t proto) {
  const uint16_t ck = upperChecksum(seg, v6, src, dst, proto);
  set16(seg, static_cast<size_t>(checksumAt(v6, proto)), ck);
}

inline Bytes tcpSyn(uint16_t sp, uint16_t dp) {
  Bytes t;
  put16(t, sp);
  put16(t, dp);
  put32(t, 0x01020304);
  put32(t, 0);
  t.insert(t.end(), {0x60, 0x02});  // data offset 6 (an MSS option), SYN
  put16(t, 65535);
  put16(t, 0);  // checksum
  put16(t, 0);
  t.insert(t.end(), {2, 4, 0x05, 0xb4});  // MSS 1460
  return t;
}
inline Bytes udpSeg(uint16_t sp, uint16_t dp, const Bytes& payload) {
  Bytes u;
  put16(u, sp);
  put16(u, dp);
  put16(u, static_cast<uint16_t>(8 + payload.size()));
  put16(u, 0);
  u.insert(u.end(), payload.begin(), payload.end());
  return u;
}
inline Bytes echo(bool v6, uint16_t id, uint16_t seq, const Bytes& data) {
  Bytes e = {static_cast<uint8_t>(v6 ? 128 : 8), 0, 0, 0};
  put16(e, id);
  put16(e, seq);
  e.insert(e.end(), data.begin(), data.end());
  return e;
}
inline Bytes icmpError(uint8_t type, uint8_t code, const Bytes& quote) {
  Bytes e = {type, code, 0, 0, 0, 0, 0, 0};
  e.insert(e.end(), quote.begin(), quote.end());
  return e;
}
inline Bytes text(const char* s) {
  return Bytes(s, s + std::strlen(s));
}

inline Bytes ip4(uint8_t proto, const IpAddressBytes& src, const IpAddressBytes& dst,
                 const Bytes& body, uint16_t flags_frag = 0, const Bytes& options = {}) {
  Bytes h = {static_cast<uint8_t>(0x40 | ((20 + options.size()) / 4)), 0};
  put16(h, static_cast<uint16_t>(20 + options.size() + body.size()));
  put16(h, 0x1234);
  put16(h, flags_frag);
  h.insert(h.end(), {64, proto, 0, 0});
  h.insert(h.end(), src.begin(), src.begin() + 4);
  h.insert(h.end(), dst.begin(), dst.begin() + 4);
  h.insert(h.end(), options.begin(), options.end());
  set16(h, 10, finish(onesSum(h.data(), h.size())));
  return cat({h, body});
}
inline Bytes ip6(uint8_t next, const IpAddressBytes& src, const IpAddressBytes& dst,
                 const Bytes& body) {
  Bytes h = {0x60, 0, 0, 0};
  put16(h, static_cast<uint16_t>(body.size()));
  h.insert(h.end(), {next, 64});
  h.insert(h.end(), src.begin(), src.end());
  h.insert(h.end(), dst.begin(), dst.end());
  return cat({h, body});
}
// An extension header of `type` and `len` bytes (8 for a Fragment), Next =
// `next`, options zero (Pad1), Segments Left 0.
inline Bytes ext(uint8_t type, uint8_t next, size_t len = 8, uint16_t frag = 0) {
  Bytes e(len, 0);
  e[0] = next;
  if (type == kAh) {
    e[1] = static_cast<uint8_t>(len / 4 - 2);
  } else if (type == kFrag) {
    set16(e, 2, frag);
    e[4] = 0xab;  // identification
  } else {
    e[1] = static_cast<uint8_t>(len / 8 - 1);
  }
  return e;
}

// Whole packets with correct checksums.
inline Bytes tcp4(const IpAddressBytes& s, const IpAddressBytes& d) {
  Bytes t = tcpSyn(40000, 443);
  seal(t, false, s, d, kTcp);
  return ip4(kTcp, s, d, t);
}
inline Bytes tcp6(const IpAddressBytes& s, const IpAddressBytes& d) {
  Bytes t = tcpSyn(40000, 443);
  seal(t, true, s, d, kTcp);
  return ip6(kTcp, s, d, t);
}
inline Bytes udp4(const IpAddressBytes& s, const IpAddressBytes& d, const Bytes& payload,
                  bool zero = false) {
  Bytes u = udpSeg(5353, 53, payload);
  if (!zero) seal(u, false, s, d, kUdp);
  return ip4(kUdp, s, d, u);
}
inline Bytes udp6(const IpAddressBytes& s, const IpAddressBytes& d, const Bytes& payload) {
  Bytes u = udpSeg(5353, 53, payload);
  seal(u, true, s, d, kUdp);
  return ip6(kUdp, s, d, u);
}
inline Bytes ping4(const IpAddressBytes& s, const IpAddressBytes& d) {
  Bytes e = echo(false, 0x77, 1, text("abcdefgh01234567"));
  seal(e, false, s, d, kIcmp);
  return ip4(kIcmp, s, d, e);
}
inline Bytes ping6(const IpAddressBytes& s, const IpAddressBytes& d) {
  Bytes e = echo(true, 0x77, 1, text("abcdefgh01234567"));
  seal(e, true, s, d, kIcmp6);
  return ip6(kIcmp6, s, d, e);
}
inline Bytes error4(uint8_t type, uint8_t code, const IpAddressBytes& s, const IpAddressBytes& d,
                    const Bytes& quote) {
  Bytes e = icmpError(type, code, quote);
  seal(e, false, s, d, kIcmp);
  return ip4(kIcmp, s, d, e);
}
inline Bytes error6(uint8_t type, uint8_t code, const IpAddressBytes& s, const IpAddressBytes& d,
                    const Bytes& quote) {
  Bytes e = icmpError(type, code, quote);
  seal(e, true, s, d, kIcmp6);
  return ip6(kIcmp6, s, d, e);
}

}  // namespace vt::codec::test
