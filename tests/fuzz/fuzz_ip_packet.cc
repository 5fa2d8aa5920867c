// The CmdIP server's packet parser and NAT rewrite (codec/ip_nat.h). The
// input is one raw packet, copied into a buffer of its exact size so ASan
// sees any access past the end. It must parse or fail with a named reason;
// what parses has every offset inside the packet, and is rewritten (source,
// then destination, to addresses drawn from the input) and back:
//   - after the rewrite it still parses, with the new addresses and the same
//     layout (the IPv4 header checksum stays right);
//   - every checksum we maintain keeps its one's-complement residue (a
//     right checksum stays right, a wrong one exactly as wrong);
//   - the reverse gives back the input, except that a checksum stored as
//     0xffff may come back as 0x0000 (the same value in one's complement;
//     RFC 1624 eqn. 3 never produces 0xffff), and only where a quote's
//     address matched both ways.
#include <cstring>
#include <memory>
#include <set>
#include <string>

#include "codec/ip_nat.h"
#include "core/bytes.h"
#include "fuzz_util.h"

using namespace vt;
using namespace vt::codec;

namespace {

uint32_t sum(const uint8_t* p, size_t n, uint32_t acc = 0) {
  for (size_t i = 0; i < n; i += 2) acc += (uint32_t{p[i]} << 8) | (i + 1 < n ? p[i + 1] : 0u);
  return acc;
}
// The one's-complement class of a sum: 0 and 0xffff are the same zero.
uint16_t residue(uint32_t acc) {
  while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
  return acc == 0xffff ? 0 : static_cast<uint16_t>(acc);
}

// The residue of what the upper-layer checksum covers, as stored now.
uint16_t upperResidue(const uint8_t* p, const RawIpPacket& r) {
  const size_t t = r.transport_offset;
  uint32_t acc = 0;
  if (r.checksum_pseudo) {
    const size_t alen = r.addressLength();
    acc = sum(r.src.data(), alen, acc);
    acc = sum(r.dst.data(), alen, acc);
    acc += r.protocol;
    acc += static_cast<uint32_t>(r.size - t);  // any fixed length: it does not change
  }
  return residue(sum(p + t, r.size - t, acc));
}

void checkLayout(const RawIpPacket& r, size_t n) {
  fuzz::check(r.version == 4 || r.version == 6, "version");
  fuzz::check(r.size == n, "size");
  fuzz::check(r.header_len >= (r.v6() ? 40u : 20u) && r.header_len <= n, "header_len");
  fuzz::check(r.ext_headers <= kMaxIpv6ExtHeaders, "ext header cap");
  fuzz::check(r.fragment == (r.more_fragments || r.fragment_offset != 0), "fragment flags");
  if (r.transport_offset != 0) {
    fuzz::check(r.fragment_offset == 0 && r.transport_offset == r.header_len, "transport offset");
  } else {
    fuzz::check(r.fragment_offset != 0, "no transport only in a later fragment");
  }
  if (r.checksum_offset != 0) {
    fuzz::check(r.transport_offset != 0 && r.checksum_offset > r.transport_offset,
                "checksum after transport");
    fuzz::check(r.checksum_offset + 2 <= n && r.checksum_offset % 2 == 0,
                "checksum inside, aligned");
  }
  if (r.quote_offset != 0) {
    fuzz::check(r.icmp && r.quote_offset == r.transport_offset + 8, "quote after the ICMP header");
    fuzz::check(r.quote_offset + r.inner_header_len <= n, "inner header inside");
    fuzz::check(r.inner_header_len >= (r.v6() ? 40u : 20u), "inner header length");
  }
  if (r.inner_checksum_offset != 0) {
    fuzz::check(r.quote_offset != 0, "inner checksum only in a quote");
    fuzz::check(r.inner_checksum_offset >= r.quote_offset + r.inner_header_len,
                "inner checksum past inner header");
    fuzz::check(r.inner_checksum_offset + 2 <= n && r.inner_checksum_offset % 2 == 0,
                "inner checksum inside");
  }
}

bool sameLayout(const RawIpPacket& a, const RawIpPacket& b) {
  return a.version == b.version && a.protocol == b.protocol && a.size == b.size &&
         a.header_len == b.header_len && a.transport_offset == b.transport_offset &&
         a.checksum_offset == b.checksum_offset && a.quote_offset == b.quote_offset &&
         a.inner_header_len == b.inner_header_len &&
         a.inner_checksum_offset == b.inner_checksum_offset && a.fragment == b.fragment;
}

IpAddressBytes drawAddress(const uint8_t* data, size_t size, uint32_t salt) {
  IpAddressBytes a{};
  uint32_t h = 2166136261u ^ salt;
  for (size_t i = 0; i < size; ++i) h = (h ^ data[i]) * 16777619u;
  for (size_t i = 0; i < a.size(); ++i) {
    h = (h ^ static_cast<uint32_t>(i)) * 16777619u;
    a[i] = static_cast<uint8_t>(h >> 11);
  }
  return a;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::unique_ptr<uint8_t[]> buf(new uint8_t[size == 0 ? 1 : size]);
  if (size > 0) std::memcpy(buf.get(), data, size);
  uint8_t* p = buf.get();
  RawIpPacket info;
  IpPacketError e = parseRawIpPacket(p, size, info);
  fuzz::check(static_cast<size_t>(e) < kIpPacketErrorCount, "error in range");
  fuzz::check(std::string(ipPacketErrorName(e)) != "unknown", "error has a name");
  if (e != IpPacketError::kNone) return 0;
  checkLayout(info, size);
  const bool v6 = info.v6();
  (void)ipIsLoopback(v6, info.dst.data());
  (void)ipIsUnspecified(v6, info.src.data());
  (void)ipIsMulticast(v6, info.dst.data());
  (void)ipIsBroadcast(v6, info.dst.data());

  const RawIpPacket before = info;
  const uint16_t upper_before = info.checksum_offset ? upperResidue(p, info) : 0;
  const bool inner_v4 = info.quote_offset != 0 && !v6;
  const uint16_t inner_hdr_before =
      inner_v4 ? residue(sum(p + info.quote_offset, info.inner_header_len)) : 0;

  IpAddressBytes s = drawAddress(data, size, 1);
  IpAddressBytes d = drawAddress(data, size, 2);
  if (!v6) {
    std::memset(s.data() + 4, 0, 12);
    std::memset(d.data() + 4, 0, 12);
  }
  // Sometimes the new source is the old destination (a quote then matches
  // on the way back too).
  if (size > 0 && (data[size - 1] & 3) == 0) s = info.dst;

  IpRewriteResult fs = rewriteIpSource(p, info, s);
  IpRewriteResult fd = rewriteIpDestination(p, info, d);
  {
    RawIpPacket again;
    IpPacketError e2 = parseRawIpPacket(p, size, again);
    fuzz::check(e2 == IpPacketError::kNone, "rewritten packet parses", ipPacketErrorName(e2));
    fuzz::check(again.src == s && again.dst == d, "new addresses");
    fuzz::check(info.src == s && info.dst == d, "info follows");
    fuzz::check(sameLayout(again, before), "same layout");
    if (info.checksum_offset) {
      fuzz::check(upperResidue(p, again) == upper_before, "upper-layer checksum residue kept");
    }
    if (inner_v4) {
      fuzz::check(residue(sum(p + info.quote_offset, info.inner_header_len)) == inner_hdr_before,
                  "inner header checksum residue kept");
    }
  }

  IpRewriteResult rd = rewriteIpDestination(p, info, before.dst);
  IpRewriteResult rs = rewriteIpSource(p, info, before.src);
  fuzz::check(fs.changed == rs.changed && fd.changed == rd.changed, "reverse changes as much");
  if (fs.quote_rewritten != rs.quote_rewritten || fd.quote_rewritten != rd.quote_rewritten)
    return 0;

  std::set<size_t> checksums;
  if (!v6) checksums.insert(10);
  if (info.checksum_offset) checksums.insert(info.checksum_offset);
  if (inner_v4) checksums.insert(info.quote_offset + 10);
  if (info.inner_checksum_offset) checksums.insert(info.inner_checksum_offset);
  for (size_t i = 0; i < size; ++i) {
    if (p[i] == data[i]) continue;
    size_t w = i & ~size_t{1};
    fuzz::check(checksums.count(w) == 1, "round trip restores the input",
                "offset " + std::to_string(i));
    fuzz::check(loadBe16(data + w) == 0xffff && loadBe16(p + w) == 0, "only 0xffff becomes 0",
                "offset " + std::to_string(w));
  }
  return 0;
}
