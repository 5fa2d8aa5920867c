// Raw IP packets for the CmdIP server's NAT (docs/protocol.md 3.7, "Packet
// rules"): a bounds-checked parser for one whole IPv4 or IPv6 packet (from
// an untrusted client, or from the server's TUN), and the address rewrite a
// NAT does, every checksum that covers the address fixed incrementally
// (RFC 1624, eqn. 3). Pure: works in place on one contiguous packet; never
// reads or writes outside [p, p + size).
//
//   IPv4 (RFC 791)                      IPv6 (RFC 8200)
//   +---+---+-----+---------------+     +---+----+-------------------+
//   |Ver|IHL| TOS | Total Length  |     |Ver| TC |    Flow Label     |
//   | Identification |Flg|FragOff |     | Payload Length | Next | Hop |
//   |  TTL  | Proto | Hdr Checksum|     | Source (16)                 |
//   | Source (4)                  |     | Destination (16)            |
//   | Destination (4)             |     +-----------------------------+
//   | Options (IHL*4 - 20)        |     then extension headers, each
//   +-----------------------------+     | Next | Len | ...:
//     0 Hop-by-Hop, 43 Routing, 60 Destination Options: (Len + 1) * 8 bytes
//     51 AH: (Len + 2) * 4 bytes;  44 Fragment: 8 bytes,
//       | Next | 0 | Offset (13 bits) 0 0 M | Identification (4) |
//   Anything else is the upper layer (ESP, No Next Header and 253 too).
//
//   Upper layers whose checksum we keep right (offset in their header):
//     TCP 6 (+16), UDP 17 (+6), UDP-Lite 136 (+6), DCCP 33 (+6), ICMPv6 58
//     (+2): the checksum covers a pseudo-header with both addresses.
//     ICMP 1 (+2, IPv4 only): no pseudo-header.
//   ICMP errors (IPv4 types 3 4 5 11 12, ICMPv6 types 1..4) quote the packet
//   that caused them:
//     | Type | Code | Checksum | 4 bytes | inner IP header | inner upper layer...
//   The quote is as long as the sender chose (8 bytes of upper layer at
//   least in ICMPv4, as much as fits 1280 bytes in ICMPv6).
//
// Policies (also in docs/protocol.md):
//   - Lengths: IPv4 total length and IPv6 40 + payload length must equal the
//     bytes received exactly (a CmdIP unit is one packet; trailing bytes are
//     refused, not trimmed). IPv6 jumbograms fail that test.
//   - The IPv4 header checksum is verified (a bad one is refused and
//     counted rather than forwarded to a kernel that would drop it
//     silently). Upper-layer checksums are not verified: the update is
//     incremental, so a wrong checksum stays exactly as wrong and the
//     receiver drops the packet, as it would without us.
//   - IPv6 extension headers: at most kMaxIpv6ExtHeaders, each inside the
//     packet, Hop-by-Hop only first, one Fragment header, a Routing header
//     only with Segments Left 0 (else the header's destination is not the
//     one in the pseudo-header). Every header is >= 8 bytes and the walk
//     only moves forward, so no chain can loop.
//   - Fragments (IPv4 MF/offset, IPv6 Fragment header): the first fragment
//     must hold the whole upper-layer header (RFC 1858, RFC 7112); its
//     checksum is fixed like an unfragmented packet's, which is exact, since
//     the change to the checksum depends only on the addresses. Later
//     fragments carry no upper-layer header: only the IP header changes.
//   - UDP checksum 0: IPv4 "no checksum", left 0; IPv6 (and UDP-Lite in
//     either family) refused. A recomputed UDP/UDP-Lite checksum of 0 is
//     written as 0xffff.
//   - ICMP error quotes: the quote must hold a whole inner IP header of the
//     outer packet's version (IHL >= 5). The quoted upper-layer checksum is
//     fixed when its two bytes are inside the quote (exact however short the
//     quote, for the same reason as with fragments), else left alone; UDP 0
//     there stays 0. The inner address is rewritten only when it is the
//     address being replaced (see rewriteIpSource). Quotes are not followed
//     recursively.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace vt::codec {

// An IPv4 (first 4 bytes, the rest zero) or IPv6 address, network order.
using IpAddressBytes = std::array<uint8_t, 16>;

inline constexpr size_t kMaxIpv6ExtHeaders = 8;

// Why a packet was refused; each a distinct reason so that the server can
// count them. kNone is success.
enum class IpPacketError : uint8_t {
  kNone = 0,
  kEmpty,                   // no bytes
  kBadVersion,              // version nibble not 4 or 6
  kTruncatedHeader,         // shorter than the fixed header (20 / 40 bytes)
  kIhlTooSmall,             // IPv4 IHL < 5
  kIhlPastEnd,              // IPv4 IHL * 4 > the bytes received
  kTotalLengthMismatch,     // IPv4 total length != the bytes received
  kHeaderChecksum,          // IPv4 header checksum wrong
  kPayloadLengthMismatch,   // IPv6 40 + payload length != the bytes received
  kExtHeaderPastEnd,        // an IPv6 extension header runs past the end
  kTooManyExtHeaders,       // more than kMaxIpv6ExtHeaders
  kMisplacedHopByHop,       // Hop-by-Hop not right after the IPv6 header
  kRepeatedFragmentHeader,  // a second IPv6 Fragment header
  kRoutingSegmentsLeft,     // IPv6 Routing header with Segments Left != 0
  kTransportTruncated,      // the upper-layer header does not fit
  kUdpZeroChecksum,         // UDP over IPv6, or UDP-Lite, with checksum 0
  kIcmpQuoteTruncated,      // ICMP error quote shorter than the inner IP header
  kIcmpQuoteBadHeader,      // quoted packet of another version, or IHL < 5
};
inline constexpr size_t kIpPacketErrorCount = 18;  // kNone included

// "ihl too small", ...: short, stable, for logs and counter names.
const char* ipPacketErrorName(IpPacketError e) noexcept;

// What the parser found. Offsets are from the start of the packet.
struct RawIpPacket {
  uint8_t version = 0;   // 4 or 6
  uint8_t protocol = 0;  // the upper layer (IPv6: after the extension headers;
                         // in a later fragment, the Fragment header's Next)
  uint8_t ttl = 0;       // TTL / Hop Limit
  IpAddressBytes src{};
  IpAddressBytes dst{};
  size_t size = 0;          // the whole packet
  size_t header_len = 0;    // IPv4 IHL * 4; IPv6 40 + the extension headers walked
  uint8_t ext_headers = 0;  // IPv6 extension headers walked

  // Part of a fragmented datagram: MF set or a non-zero offset. An IPv6
  // atomic fragment (offset 0, M 0) is not one.
  bool fragment = false;
  bool more_fragments = false;
  uint16_t fragment_offset = 0;  // bytes

  // The upper-layer header, present unless this is a later fragment
  // (transport_offset is then 0; the payload still starts at header_len).
  size_t transport_offset = 0;
  // The upper-layer checksum the rewrite maintains; 0 when there is none
  // (no transport header, a protocol we do not know, UDP over IPv4 with
  // checksum 0).
  size_t checksum_offset = 0;
  bool checksum_pseudo = false;  // it covers the pseudo-header
  bool checksum_udp = false;     // UDP / UDP-Lite: a computed 0 is sent as 0xffff

  // ICMP / ICMPv6 type and code, when protocol is ICMP of this version and
  // the header is present.
  bool icmp = false;
  uint8_t icmp_type = 0;
  uint8_t icmp_code = 0;

  // An ICMP error: where the quoted inner packet starts (0: not an error).
  // The inner packet has the outer's version; its header is whole.
  size_t quote_offset = 0;
  size_t inner_header_len = 0;       // relative to quote_offset; IPv4 IHL * 4 or 40
  size_t inner_checksum_offset = 0;  // absolute; 0 when not (wholly) quoted
  bool inner_checksum_udp = false;

  bool v6() const noexcept { return version == 6; }
  size_t addressLength() const noexcept { return version == 6 ? 16 : 4; }
  bool isIcmpError() const noexcept { return quote_offset != 0; }
};

// Parses p[0, n) as one whole packet. kNone and `out` filled, or the first
// reason found (out then partly filled; do not use it).
IpPacketError parseRawIpPacket(const uint8_t* p, size_t n, RawIpPacket& out) noexcept;

struct IpRewriteResult {
  bool changed = false;          // false when the new address is the old one
  bool quote_rewritten = false;  // the quoted inner packet's address changed too
};

// Client -> internet: replaces the source address with `to` (of the packet's
// family) and fixes the IPv4 header checksum and the upper-layer checksum.
// In an ICMP error the client sends (quoting a packet it received), the
// quoted packet's DESTINATION is rewritten too when it equals the old
// source, with the inner IPv4 header checksum, the inner upper-layer
// checksum (when quoted) and the outer ICMP checksum fixed.
// `p` and `info` must come from parseRawIpPacket(p, info.size, info) and
// have been changed since only by these two functions; info.src (or
// info.dst) is updated, so the same `info` serves for a reverse rewrite.
IpRewriteResult rewriteIpSource(uint8_t* p, RawIpPacket& info, const IpAddressBytes& to) noexcept;

// Internet -> client: replaces the destination address; in an ICMP error
// the quoted packet's SOURCE (the pool address the client's packet left
// with) is rewritten when it equals the old destination. Else as above.
IpRewriteResult rewriteIpDestination(uint8_t* p, RawIpPacket& info,
                                     const IpAddressBytes& to) noexcept;

// For the server's checks on addresses (v6 false: the first 4 bytes of
// `a`). IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) are judged as the IPv4
// address they carry.
bool ipIsUnspecified(bool v6, const uint8_t* a) noexcept;  // 0.0.0.0/8, ::
bool ipIsLoopback(bool v6, const uint8_t* a) noexcept;     // 127.0.0.0/8, ::1
bool ipIsMulticast(bool v6, const uint8_t* a) noexcept;    // 224.0.0.0/4, ff00::/8
bool ipIsBroadcast(bool v6, const uint8_t* a) noexcept;    // 255.255.255.255

}  // namespace vt::codec
