// ICMP "port unreachable" for a UDP datagram the client refuses (a routing
// rule's block with block_style = "reset"): the packet a host sends when
// nothing listens, so the app's connected socket fails at once
// (ECONNREFUSED) instead of waiting out its timeout.
//
//   IPv4: IP(20, dst -> app, TTL 64) | ICMP type 3 code 3 | unused(4) |
//         the refused datagram's IP header(20) | UDP header(8) | payload...
//   IPv6: IPv6(40, dst -> app, hop limit 64) | ICMPv6 type 1 code 4 |
//         unused(4) | the refused datagram's IPv6 header(40) | UDP(8) | ...
// The quoted datagram is rebuilt from what the client knows (addresses,
// ports, payload) with as much payload as kMaxQuoted allows (RFC 1812
// 4.3.2.3 asks for at most 576 bytes in all; RFC 4443 2.4 for at most the
// IPv6 minimum MTU). Its UDP checksum is 0: receivers match the quote by
// addresses and ports only. The ICMP checksum (with IPv6's pseudo-header)
// and the IPv4 header checksum are real.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace vt::codec {

// `app` and `dst` are 4 (IPv4) or 16 (IPv6) bytes; the datagram went from
// app:appPort to dst:dstPort carrying payload[0, n).
std::vector<uint8_t> icmpPortUnreachable(bool v6, const uint8_t* app, uint16_t appPort,
                                         const uint8_t* dst, uint16_t dstPort,
                                         const uint8_t* payload, size_t n);

}  // namespace vt::codec
