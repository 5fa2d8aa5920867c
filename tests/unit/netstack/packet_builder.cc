#include "packet_builder.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace vt::test {
namespace {

void put16(std::vector<uint8_t>& v, size_t at, uint16_t x) {
  v[at] = static_cast<uint8_t>(x >> 8);
  v[at + 1] = static_cast<uint8_t>(x);
}
void put32(std::vector<uint8_t>& v, size_t at, uint32_t x) {
  put16(v, at, static_cast<uint16_t>(x >> 16));
  put16(v, at + 2, static_cast<uint16_t>(x));
}
uint16_t get16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] << 8 | p[1]);
}
uint32_t get32(const uint8_t* p) {
  return uint32_t{get16(p)} << 16 | get16(p + 2);
}

uint32_t sum(const uint8_t* p, size_t n, uint32_t acc = 0) {
  for (size_t i = 0; i + 1 < n; i += 2) acc += get16(p + i);
  if (n % 2) acc += uint32_t{p[n - 1]} << 8;
  return acc;
}
uint16_t fold(uint32_t acc) {
  while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
  return static_cast<uint16_t>(~acc);
}

struct Addr {
  int family = 0;
  uint8_t b[16] = {};
  size_t len() const { return family == AF_INET ? 4 : 16; }
};
Addr parseAddr(const std::string& s) {
  Addr a;
  if (inet_pton(AF_INET, s.c_str(), a.b) == 1) {
    a.family = AF_INET;
  } else if (inet_pton(AF_INET6, s.c_str(), a.b) == 1) {
    a.family = AF_INET6;
  } else {
    throw std::invalid_argument("bad address " + s);
  }
  return a;
}
std::string addrText(int family, const uint8_t* p) {
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(family, p, buf, sizeof buf);
  return buf;
}

uint32_t pseudo(int family, const uint8_t* src, const uint8_t* dst, uint8_t proto, size_t len) {
  size_t alen = family == AF_INET ? 4 : 16;
  uint32_t acc = sum(src, alen) + sum(dst, alen);
  acc += proto;
  acc += static_cast<uint32_t>(len & 0xffff) + static_cast<uint32_t>(len >> 16);
  return acc;
}

// Wraps a transport segment (checksum field at csumAt, or none) in an IP header.
std::vector<uint8_t> wrap(const Addr& s, const Addr& d, uint8_t proto, std::vector<uint8_t> seg,
                          int csumAt, bool pseudoSum) {
  if (csumAt >= 0) {
    uint32_t acc = pseudoSum ? pseudo(s.family, s.b, d.b, proto, seg.size()) : 0;
    put16(seg, static_cast<size_t>(csumAt), fold(sum(seg.data(), seg.size(), acc)));
  }
  std::vector<uint8_t> out;
  if (s.family == AF_INET) {
    out.assign(20, 0);
    out[0] = 0x45;
    put16(out, 2, static_cast<uint16_t>(20 + seg.size()));
    put16(out, 4, 0x1234);
    put16(out, 6, 0x4000);  // DF
    out[8] = 64;
    out[9] = proto;
    std::memcpy(&out[12], s.b, 4);
    std::memcpy(&out[16], d.b, 4);
    put16(out, 10, fold(sum(out.data(), 20)));
  } else {
    out.assign(40, 0);
    out[0] = 0x60;
    put16(out, 4, static_cast<uint16_t>(seg.size()));
    out[6] = proto;
    out[7] = 64;
    std::memcpy(&out[8], s.b, 16);
    std::memcpy(&out[24], d.b, 16);
  }
  out.insert(out.end(), seg.begin(), seg.end());
  return out;
}

}  // namespace

std::vector<uint8_t> buildTcp(const TcpSegment& t) {
  Addr s = parseAddr(t.src), d = parseAddr(t.dst);
  std::vector<uint8_t> opts;
  if (t.mss) opts.insert(opts.end(), {2, 4, static_cast<uint8_t>(t.mss >> 8), static_cast<uint8_t>(t.mss)});
  if (t.sackPermitted) opts.insert(opts.end(), {1, 1, 4, 2});
  if (t.wscale >= 0) opts.insert(opts.end(), {1, 3, 3, static_cast<uint8_t>(t.wscale)});
  if (!t.sack.empty()) {
    opts.insert(opts.end(), {1, 1, 5, static_cast<uint8_t>(2 + 8 * t.sack.size())});
    for (const auto& [left, right] : t.sack) {
      for (uint32_t v : {left, right}) {
        for (int shift = 24; shift >= 0; shift -= 8) opts.push_back(static_cast<uint8_t>(v >> shift));
      }
    }
  }
  while (opts.size() % 4 != 0) opts.push_back(0);
  const size_t hlen = 20 + opts.size();
  std::vector<uint8_t> seg(20, 0);
  put16(seg, 0, t.srcPort);
  put16(seg, 2, t.dstPort);
  put32(seg, 4, t.seq);
  put32(seg, 8, t.ack);
  seg[12] = static_cast<uint8_t>((hlen / 4) << 4);
  seg[13] = t.flags;
  put16(seg, 14, t.window);
  seg.insert(seg.end(), opts.begin(), opts.end());
  seg.insert(seg.end(), t.payload.begin(), t.payload.end());
  return wrap(s, d, 6, std::move(seg), 16, true);
}

std::vector<uint8_t> buildEcho(const std::string& src, const std::string& dst, uint16_t id,
                               uint16_t seq, bool reply) {
  Addr s = parseAddr(src), d = parseAddr(dst);
  std::vector<uint8_t> seg(8 + 16, 0xab);
  bool v4 = s.family == AF_INET;
  seg[0] = v4 ? (reply ? 0 : 8) : (reply ? 129 : 128);
  seg[1] = 0;
  put16(seg, 2, 0);
  put16(seg, 4, id);
  put16(seg, 6, seq);
  return wrap(s, d, v4 ? 1 : 58, std::move(seg), 2, !v4);
}

std::vector<uint8_t> buildUdp(const std::string& src, const std::string& dst, uint16_t srcPort,
                              uint16_t dstPort, const std::vector<uint8_t>& payload) {
  Addr s = parseAddr(src), d = parseAddr(dst);
  std::vector<uint8_t> seg(8, 0);
  put16(seg, 0, srcPort);
  put16(seg, 2, dstPort);
  put16(seg, 4, static_cast<uint16_t>(8 + payload.size()));
  seg.insert(seg.end(), payload.begin(), payload.end());
  std::vector<uint8_t> out = wrap(s, d, 17, std::move(seg), 6, true);
  size_t at = (s.family == AF_INET ? 20 : 40) + 6;
  if (get16(&out[at]) == 0) put16(out, at, 0xffff);  // RFC 768: 0 means none
  return out;
}

std::vector<std::vector<uint8_t>> fragmentPacket(const std::vector<uint8_t>& packet, size_t mtu,
                                                 uint32_t id) {
  std::vector<std::vector<uint8_t>> out;
  const bool v4 = (packet[0] >> 4) == 4;
  const size_t hdr = v4 ? 20 : 40;
  const size_t perFrag = (mtu - hdr - (v4 ? 0 : 8)) & ~size_t{7};
  const size_t dataLen = packet.size() - hdr;
  for (size_t off = 0; off < dataLen; off += perFrag) {
    size_t n = std::min(perFrag, dataLen - off);
    bool more = off + n < dataLen;
    std::vector<uint8_t> f(packet.begin(), packet.begin() + static_cast<long>(hdr));
    if (v4) {
      put16(f, 2, static_cast<uint16_t>(hdr + n));
      put16(f, 4, static_cast<uint16_t>(id));
      put16(f, 6, static_cast<uint16_t>((more ? 0x2000 : 0) | (off / 8)));
      put16(f, 10, 0);
      put16(f, 10, fold(sum(f.data(), 20)));
    } else {
      uint8_t next = f[6];
      f[6] = 44;
      put16(f, 4, static_cast<uint16_t>(8 + n));
      f.resize(48, 0);
      f[40] = next;
      put16(f, 42, static_cast<uint16_t>(off | (more ? 1 : 0)));
      put32(f, 44, id);
    }
    f.insert(f.end(), packet.begin() + static_cast<long>(hdr + off),
             packet.begin() + static_cast<long>(hdr + off + n));
    out.push_back(std::move(f));
  }
  return out;
}

bool reassemblePacket(const std::vector<std::vector<uint8_t>>& fragments,
                      std::vector<uint8_t>& out) {
  if (fragments.empty()) return false;
  struct Piece {
    size_t off;
    bool more;
    const uint8_t* p;
    size_t n;
  };
  std::vector<Piece> pieces;
  std::vector<uint8_t> header;
  uint8_t proto = 0;
  for (const auto& f : fragments) {
    if (f.size() < 20) return false;
    if ((f[0] >> 4) == 4) {
      if (fold(sum(f.data(), 20)) != 0 || get16(&f[2]) != f.size()) return false;
      uint16_t w = get16(&f[6]);
      pieces.push_back({size_t{w & 0x1fffu} * 8, (w & 0x2000) != 0, f.data() + 20, f.size() - 20});
      if (header.empty()) header.assign(f.begin(), f.begin() + 20);
    } else {
      if (f.size() < 48 || f[6] != 44 || get16(&f[4]) + 40u != f.size()) return false;
      uint16_t w = get16(&f[42]);
      pieces.push_back({size_t{w & 0xfff8u}, (w & 1) != 0, f.data() + 48, f.size() - 48});
      if (header.empty()) header.assign(f.begin(), f.begin() + 40);
      proto = f[40];
    }
  }
  std::sort(pieces.begin(), pieces.end(),
            [](const Piece& a, const Piece& b) { return a.off < b.off; });
  std::vector<uint8_t> data;
  for (size_t i = 0; i < pieces.size(); ++i) {
    if (pieces[i].off != data.size()) return false;
    if (pieces[i].more != (i + 1 < pieces.size())) return false;
    data.insert(data.end(), pieces[i].p, pieces[i].p + pieces[i].n);
  }
  out = header;
  if ((out[0] >> 4) == 4) {
    put16(out, 2, static_cast<uint16_t>(20 + data.size()));
    put16(out, 6, 0);
    put16(out, 10, 0);
    put16(out, 10, fold(sum(out.data(), 20)));
  } else {
    out[6] = proto;
    put16(out, 4, static_cast<uint16_t>(data.size()));
  }
  out.insert(out.end(), data.begin(), data.end());
  return true;
}

bool parsePacket(const uint8_t* p, size_t n, ParsedPacket& out) {
  out = ParsedPacket{};
  if (n < 20) return false;
  out.version = p[0] >> 4;
  const uint8_t* seg;
  size_t segLen;
  int family;
  bool ok = true;
  if (out.version == 4) {
    size_t ihl = static_cast<size_t>(p[0] & 15u) * 4;
    size_t total = get16(p + 2);
    if (ihl < 20 || total < ihl || total > n) return false;
    ok = fold(sum(p, ihl)) == 0;
    out.protocol = p[9];
    out.src = addrText(AF_INET, p + 12);
    out.dst = addrText(AF_INET, p + 16);
    seg = p + ihl;
    segLen = total - ihl;
    family = AF_INET;
  } else if (out.version == 6) {
    if (n < 40 || size_t{get16(p + 4)} + 40 > n) return false;
    out.protocol = p[6];
    out.src = addrText(AF_INET6, p + 8);
    out.dst = addrText(AF_INET6, p + 24);
    seg = p + 40;
    segLen = get16(p + 4);
    family = AF_INET6;
  } else {
    return false;
  }
  const uint8_t* srcB = out.version == 4 ? p + 12 : p + 8;
  const uint8_t* dstB = out.version == 4 ? p + 16 : p + 24;
  if (out.protocol == 6) {
    if (segLen < 20) return false;
    size_t doff = static_cast<size_t>(seg[12] >> 4) * 4;
    if (doff < 20 || doff > segLen) return false;
    out.srcPort = get16(seg);
    out.dstPort = get16(seg + 2);
    out.seq = get32(seg + 4);
    out.ack = get32(seg + 8);
    out.flags = seg[13];
    out.window = get16(seg + 14);
    for (size_t i = 20; i < doff;) {
      uint8_t kind = seg[i];
      if (kind == 0) break;
      if (kind == 1) {
        ++i;
        continue;
      }
      if (i + 1 >= doff || seg[i + 1] < 2 || i + seg[i + 1] > doff) break;
      if (kind == 2 && seg[i + 1] == 4) out.mss = get16(seg + i + 2);
      i += seg[i + 1];
    }
    out.payload.assign(seg + doff, seg + segLen);
    ok = ok && fold(sum(seg, segLen, pseudo(family, srcB, dstB, 6, segLen))) == 0;
  } else if (out.protocol == 17) {
    if (segLen < 8) return false;
    out.srcPort = get16(seg);
    out.dstPort = get16(seg + 2);
    out.payload.assign(seg + 8, seg + segLen);
    ok = ok && (get16(seg + 6) == 0 ||
                fold(sum(seg, segLen, pseudo(family, srcB, dstB, 17, segLen))) == 0);
  } else if (out.protocol == 1 || out.protocol == 58) {
    if (segLen < 8) return false;
    out.icmpType = seg[0];
    uint32_t acc = out.protocol == 58 ? pseudo(family, srcB, dstB, 58, segLen) : 0;
    ok = ok && fold(sum(seg, segLen, acc)) == 0;
    out.payload.assign(seg + 8, seg + segLen);
  }
  out.checksumsOk = ok;
  return true;
}

}  // namespace vt::test
