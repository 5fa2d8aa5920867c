#include "codec/ip_nat.h"

#include <cstring>

#include "core/bytes.h"
#include "core/ip_prefix.h"

namespace vt::codec {
namespace {

constexpr uint8_t kProtoHopByHop = 0;
constexpr uint8_t kProtoIcmp = 1;
constexpr uint8_t kProtoTcp = 6;
constexpr uint8_t kProtoUdp = 17;
constexpr uint8_t kProtoDccp = 33;
constexpr uint8_t kProtoRouting = 43;
constexpr uint8_t kProtoFragment = 44;
constexpr uint8_t kProtoAh = 51;
constexpr uint8_t kProtoIcmpv6 = 58;
constexpr uint8_t kProtoDestOpts = 60;
constexpr uint8_t kProtoUdpLite = 136;

// ---- one's-complement arithmetic (RFC 1071, RFC 1624) ----

uint16_t fold(uint32_t sum) noexcept {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

// The sum of n (even) bytes as 16-bit big-endian words.
uint32_t sumWords(const uint8_t* p, size_t n) noexcept {
  uint32_t s = 0;
  for (size_t i = 0; i + 1 < n; i += 2) s += loadBe16(p + i);
  return s;
}

// The change made to a checksummed region, as the sum of ~old + new over the
// 16-bit words replaced (RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m')). Every
// field we replace starts at an even offset from the start of the region
// its checksum covers (addresses, IPv4 header checksum, upper-layer
// checksums, IHL*4 and extension header lengths are all even), so words
// line up.
struct Delta {
  uint32_t sum = 0;
  bool any = false;

  void replace(const uint8_t* old_bytes, const uint8_t* new_bytes, size_t n) noexcept {
    for (size_t i = 0; i + 1 < n; i += 2) {
      sum += static_cast<uint16_t>(~loadBe16(old_bytes + i)) + loadBe16(new_bytes + i);
      sum = fold(sum);  // keeps it far from overflow whatever the count
    }
    any = true;
  }
  void add(const Delta& d) noexcept {
    if (!d.any) return;
    sum = fold(sum + d.sum);
    any = true;
  }
};

// Applies `d` to the checksum stored at `field`; records the field's own
// change in `outer` when that checksum lies inside a region another checksum
// covers (an inner checksum inside an ICMP quote).
void applyDelta(uint8_t* field, const Delta& d, bool udp, Delta* outer) noexcept {
  const uint16_t old_ck = loadBe16(field);
  uint16_t ck = static_cast<uint16_t>(~fold(static_cast<uint16_t>(~old_ck) + d.sum));
  if (udp && ck == 0) ck = 0xffff;  // 0 means "no checksum" in UDP
  uint8_t before[2] = {field[0], field[1]};
  storeBe16(field, ck);
  if (outer) outer->replace(before, field, 2);
}

// ---- upper layers ----

struct UpperRule {
  size_t min_len = 0;      // the header must be this long (0: unknown protocol)
  size_t checksum_at = 0;  // offset of the checksum in the header
  bool has_checksum = false;
  bool pseudo = false;
  bool udp = false;           // a computed 0 is sent as 0xffff
  bool zero_allowed = false;  // checksum 0 means "none" (UDP over IPv4)
};

UpperRule upperRule(bool v6, uint8_t proto) noexcept {
  switch (proto) {
    case kProtoTcp: return {20, 16, true, true, false, false};
    case kProtoUdp: return {8, 6, true, true, true, !v6};
    case kProtoUdpLite: return {8, 6, true, true, true, false};
    case kProtoDccp: return {12, 6, true, true, false, false};
    case kProtoIcmp:
      if (!v6) return {8, 2, true, false, false, false};
      return {};
    case kProtoIcmpv6:
      if (v6) return {8, 2, true, true, false, false};
      return {};
    default: return {};
  }
}

bool isIcmpErrorType(bool v6, uint8_t type) noexcept {
  if (v6) return type >= 1 && type <= 4;
  return type == 3 || type == 4 || type == 5 || type == 11 || type == 12;
}

// ---- IPv6 extension headers ----

struct ExtChain {
  uint8_t proto = 0;  // the upper layer (or, in a later fragment, Next)
  size_t end = 0;     // where it starts
  uint8_t count = 0;
  bool fragment_header = false;
  bool more = false;
  uint16_t frag_offset = 0;  // bytes
};

// Walks the extension headers of the IPv6 packet p[0, n) (n >= 40). Every
// step moves at least 8 bytes forward and the count is capped: no loops.
IpPacketError walkExtHeaders(const uint8_t* p, size_t n, ExtChain& c) noexcept {
  uint8_t next = p[6];
  size_t off = 40;
  for (;;) {
    if (next != kProtoHopByHop && next != kProtoRouting && next != kProtoFragment &&
        next != kProtoDestOpts && next != kProtoAh) {
      c.proto = next;
      c.end = off;
      return IpPacketError::kNone;
    }
    if (c.count == kMaxIpv6ExtHeaders) return IpPacketError::kTooManyExtHeaders;
    if (next == kProtoHopByHop && c.count != 0) return IpPacketError::kMisplacedHopByHop;
    if (n - off < 8) return IpPacketError::kExtHeaderPastEnd;
    const uint8_t* h = p + off;
    size_t len = next == kProtoFragment ? 8
                 : next == kProtoAh     ? (size_t{h[1]} + 2) * 4
                                        : (size_t{h[1]} + 1) * 8;
    if (len > n - off) return IpPacketError::kExtHeaderPastEnd;
    if (next == kProtoRouting && h[3] != 0) return IpPacketError::kRoutingSegmentsLeft;
    ++c.count;
    if (next == kProtoFragment) {
      if (c.fragment_header) return IpPacketError::kRepeatedFragmentHeader;
      c.fragment_header = true;
      uint16_t fo = loadBe16(h + 2);
      c.frag_offset = static_cast<uint16_t>(fo & 0xfff8);
      c.more = (fo & 1) != 0;
      if (c.frag_offset != 0) {
        // A later fragment: what follows is fragment data, not headers.
        c.proto = h[0];
        c.end = off + 8;
        return IpPacketError::kNone;
      }
    }
    next = h[0];
    off += len;
  }
}

// ---- ICMP error quotes ----

// Finds the inner packet of an ICMP error in p[q, n). Errors only for what
// makes the quote useless (no whole inner header); an inner upper layer we
// cannot find or that is cut short only means no inner checksum to fix.
IpPacketError parseQuote(const uint8_t* p, size_t n, size_t q, RawIpPacket& out) noexcept {
  const bool v6 = out.v6();
  const uint8_t* in = p + q;
  const size_t avail = n - q;
  const size_t fixed = v6 ? 40 : 20;
  if (avail < fixed) return IpPacketError::kIcmpQuoteTruncated;
  if ((in[0] >> 4) != out.version) return IpPacketError::kIcmpQuoteBadHeader;
  size_t inner_transport = 0;
  uint8_t inner_proto = 0;
  bool later_fragment = false;
  if (!v6) {
    size_t ihl = size_t{in[0] & 0x0fu} * 4;
    if (ihl < 20) return IpPacketError::kIcmpQuoteBadHeader;
    if (ihl > avail) return IpPacketError::kIcmpQuoteTruncated;
    out.inner_header_len = ihl;
    inner_transport = ihl;
    inner_proto = in[9];
    later_fragment = (loadBe16(in + 6) & 0x1fff) != 0;
  } else {
    out.inner_header_len = 40;
    ExtChain c;
    if (walkExtHeaders(in, avail, c) != IpPacketError::kNone) return IpPacketError::kNone;
    inner_transport = c.end;
    inner_proto = c.proto;
    later_fragment = c.frag_offset != 0;
  }
  if (later_fragment) return IpPacketError::kNone;
  UpperRule r = upperRule(v6, inner_proto);
  if (!r.has_checksum || !r.pseudo) return IpPacketError::kNone;
  if (avail - inner_transport < r.checksum_at + 2) return IpPacketError::kNone;
  size_t at = q + inner_transport + r.checksum_at;
  if (r.udp && loadBe16(p + at) == 0) return IpPacketError::kNone;  // none, or invalid: left alone
  out.inner_checksum_offset = at;
  out.inner_checksum_udp = r.udp;
  return IpPacketError::kNone;
}

// The upper-layer header at out.transport_offset.
IpPacketError parseUpper(const uint8_t* p, size_t n, RawIpPacket& out) noexcept {
  const bool v6 = out.v6();
  UpperRule r = upperRule(v6, out.protocol);
  if (!r.has_checksum) return IpPacketError::kNone;
  const size_t t = out.transport_offset;
  if (n - t < r.min_len) return IpPacketError::kTransportTruncated;
  uint16_t ck = loadBe16(p + t + r.checksum_at);
  if (r.udp && ck == 0) {
    if (!r.zero_allowed) return IpPacketError::kUdpZeroChecksum;
  } else {
    out.checksum_offset = t + r.checksum_at;
    out.checksum_pseudo = r.pseudo;
    out.checksum_udp = r.udp;
  }
  if (out.protocol == (v6 ? kProtoIcmpv6 : kProtoIcmp)) {
    out.icmp = true;
    out.icmp_type = p[t];
    out.icmp_code = p[t + 1];
    if (isIcmpErrorType(v6, out.icmp_type)) {
      out.quote_offset = t + 8;
      return parseQuote(p, n, out.quote_offset, out);
    }
  }
  return IpPacketError::kNone;
}

IpPacketError parseV4(const uint8_t* p, size_t n, RawIpPacket& out) noexcept {
  if (n < 20) return IpPacketError::kTruncatedHeader;
  const size_t ihl = size_t{p[0] & 0x0fu} * 4;
  if (ihl < 20) return IpPacketError::kIhlTooSmall;
  if (ihl > n) return IpPacketError::kIhlPastEnd;
  if (loadBe16(p + 2) != n) return IpPacketError::kTotalLengthMismatch;
  if (fold(sumWords(p, ihl)) != 0xffff) return IpPacketError::kHeaderChecksum;
  out.version = 4;
  out.size = n;
  out.header_len = ihl;
  out.ttl = p[8];
  out.protocol = p[9];
  std::memcpy(out.src.data(), p + 12, 4);
  std::memcpy(out.dst.data(), p + 16, 4);
  const uint16_t frag = loadBe16(p + 6);
  out.more_fragments = (frag & 0x2000) != 0;
  out.fragment_offset = static_cast<uint16_t>((frag & 0x1fff) * 8);
  out.fragment = out.more_fragments || out.fragment_offset != 0;
  if (out.fragment_offset != 0) return IpPacketError::kNone;
  out.transport_offset = ihl;
  return parseUpper(p, n, out);
}

IpPacketError parseV6(const uint8_t* p, size_t n, RawIpPacket& out) noexcept {
  if (n < 40) return IpPacketError::kTruncatedHeader;
  if (40 + size_t{loadBe16(p + 4)} != n) return IpPacketError::kPayloadLengthMismatch;
  out.version = 6;
  out.size = n;
  out.ttl = p[7];
  std::memcpy(out.src.data(), p + 8, 16);
  std::memcpy(out.dst.data(), p + 24, 16);
  ExtChain c;
  if (IpPacketError e = walkExtHeaders(p, n, c); e != IpPacketError::kNone) return e;
  out.protocol = c.proto;
  out.header_len = c.end;
  out.ext_headers = c.count;
  out.more_fragments = c.more;
  out.fragment_offset = c.frag_offset;
  out.fragment = c.more || c.frag_offset != 0;
  if (c.frag_offset != 0) return IpPacketError::kNone;
  out.transport_offset = c.end;
  return parseUpper(p, n, out);
}

// ---- rewrite ----

IpRewriteResult rewrite(uint8_t* p, RawIpPacket& info, bool source,
                        const IpAddressBytes& to) noexcept {
  IpRewriteResult res;
  const bool v6 = info.v6();
  const size_t alen = info.addressLength();
  IpAddressBytes& field = source ? info.src : info.dst;
  if (std::memcmp(field.data(), to.data(), alen) == 0) return res;
  res.changed = true;

  const size_t at = v6 ? (source ? 8 : 24) : (source ? 12 : 16);
  IpAddressBytes old = field;
  Delta addr;
  addr.replace(old.data(), to.data(), alen);
  std::memcpy(p + at, to.data(), alen);
  std::memcpy(field.data(), to.data(), alen);
  if (!v6) applyDelta(p + 10, addr, false, nullptr);

  // What the upper-layer checksum has to absorb: the pseudo-header, and
  // every byte of the quote that changes.
  Delta upper;
  if (info.checksum_pseudo) upper.add(addr);

  if (info.quote_offset != 0) {
    // The quoted packet went the other way: its opposite address is ours.
    const size_t q = info.quote_offset;
    const size_t inner_at = q + (v6 ? (source ? 24 : 8) : (source ? 16 : 12));
    if (std::memcmp(p + inner_at, old.data(), alen) == 0) {
      res.quote_rewritten = true;
      upper.replace(p + inner_at, to.data(), alen);
      std::memcpy(p + inner_at, to.data(), alen);
      if (!v6) applyDelta(p + q + 10, addr, false, &upper);
      if (info.inner_checksum_offset != 0) {
        applyDelta(p + info.inner_checksum_offset, addr, info.inner_checksum_udp, &upper);
      }
    }
  }
  if (info.checksum_offset != 0 && upper.any) {
    applyDelta(p + info.checksum_offset, upper, info.checksum_udp, nullptr);
  }
  return res;
}

// ---- address classes ----

// IPv4-mapped IPv6 addresses are judged as the IPv4 address they carry.
const uint8_t* asV4(bool& v6, const uint8_t* a) noexcept {
  static const uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (v6 && std::memcmp(a, kMapped, 12) == 0) {
    v6 = false;
    return a + 12;
  }
  return a;
}

bool inRange(bool v6, const uint8_t* a, const IpPrefix& v4net, const IpPrefix& v6net) noexcept {
  a = asV4(v6, a);
  return v6 ? v6net.contains(true, a) : v4net.contains(false, a);
}

}  // namespace

static_assert(static_cast<size_t>(IpPacketError::kIcmpQuoteBadHeader) + 1 == kIpPacketErrorCount,
              "kIpPacketErrorCount follows the last reason");

const char* ipPacketErrorName(IpPacketError e) noexcept {
  switch (e) {
    case IpPacketError::kNone: return "none";
    case IpPacketError::kEmpty: return "empty";
    case IpPacketError::kBadVersion: return "bad version";
    case IpPacketError::kTruncatedHeader: return "truncated header";
    case IpPacketError::kIhlTooSmall: return "ihl too small";
    case IpPacketError::kIhlPastEnd: return "ihl past end";
    case IpPacketError::kTotalLengthMismatch: return "total length mismatch";
    case IpPacketError::kHeaderChecksum: return "bad header checksum";
    case IpPacketError::kPayloadLengthMismatch: return "payload length mismatch";
    case IpPacketError::kExtHeaderPastEnd: return "extension header past end";
    case IpPacketError::kTooManyExtHeaders: return "too many extension headers";
    case IpPacketError::kMisplacedHopByHop: return "misplaced hop-by-hop";
    case IpPacketError::kRepeatedFragmentHeader: return "repeated fragment header";
    case IpPacketError::kRoutingSegmentsLeft: return "routing header segments left";
    case IpPacketError::kTransportTruncated: return "transport header truncated";
    case IpPacketError::kUdpZeroChecksum: return "udp zero checksum";
    case IpPacketError::kIcmpQuoteTruncated: return "icmp quote truncated";
    case IpPacketError::kIcmpQuoteBadHeader: return "icmp quote bad header";
  }
  return "unknown";
}

IpPacketError parseRawIpPacket(const uint8_t* p, size_t n, RawIpPacket& out) noexcept {
  out = RawIpPacket{};
  if (n == 0) return IpPacketError::kEmpty;
  switch (p[0] >> 4) {
    case 4: return parseV4(p, n, out);
    case 6: return parseV6(p, n, out);
    default: return IpPacketError::kBadVersion;
  }
}

IpRewriteResult rewriteIpSource(uint8_t* p, RawIpPacket& info, const IpAddressBytes& to) noexcept {
  return rewrite(p, info, true, to);
}

IpRewriteResult rewriteIpDestination(uint8_t* p, RawIpPacket& info,
                                     const IpAddressBytes& to) noexcept {
  return rewrite(p, info, false, to);
}

bool ipIsUnspecified(bool v6, const uint8_t* a) noexcept {
  static const IpPrefix k4 = IpPrefix::v4Net(0, 0, 0, 0, 8);
  static const IpPrefix k6 = IpPrefix::v6Net({}, 128);
  return inRange(v6, a, k4, k6);
}

bool ipIsLoopback(bool v6, const uint8_t* a) noexcept {
  static const IpPrefix k4 = IpPrefix::v4Net(127, 0, 0, 0, 8);
  static const IpPrefix k6 = IpPrefix::v6Net({0, 0, 0, 0, 0, 0, 0, 1}, 128);
  return inRange(v6, a, k4, k6);
}

bool ipIsMulticast(bool v6, const uint8_t* a) noexcept {
  static const IpPrefix k4 = IpPrefix::v4Net(224, 0, 0, 0, 4);
  static const IpPrefix k6 = IpPrefix::v6Net({0xff00}, 8);
  return inRange(v6, a, k4, k6);
}

bool ipIsBroadcast(bool v6, const uint8_t* a) noexcept {
  a = asV4(v6, a);
  static const uint8_t kAll[4] = {0xff, 0xff, 0xff, 0xff};
  return !v6 && std::memcmp(a, kAll, 4) == 0;
}

}  // namespace vt::codec
