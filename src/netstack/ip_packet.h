// Bounds-checked look at one IP packet from the TUN, enough to gate TCP
// SYNs and sort packets before lwIP sees them. No lwIP types here.
//
//   IPv4 header (RFC 791)                 IPv6 header (RFC 8200)
//   +-------+-------+-------+-------+     +-------+-------+-------+-------+
//   |Ver|IHL|  TOS  |  Total Length |     |Ver| TC |     Flow Label      |
//   |   Identification  |Flg|FragOff|     | Payload Length| Next  |  Hop  |
//   |  TTL  | Proto |   Checksum    |     | Source (16) | Destination (16)|
//   | Source (4)    | Destination(4)|     +-------+-------+-------+-------+
//   +-------+-------+-------+-------+
//
//   TCP header (RFC 9293): | SrcPort | DstPort | Seq (4) | Ack (4) |
//   | DataOff(4b) rsvd | Flags | Window | Checksum | Urgent | options...
//
// Only the first IPv6 header is looked at: a packet with extension headers
// before TCP/UDP is "other" (the accept-any patch does the same), and a
// fragment (IPv4 MF/offset, IPv6 next header 44) is kFragment.
#pragma once

#include <cstddef>
#include <cstdint>

#include "netstack/flow_key.h"

namespace vt::netstack {

enum class IpKind { kTcp, kUdp, kIcmp, kOther, kFragment };

struct IpPacketInfo {
  IpKind kind = IpKind::kOther;
  uint8_t version = 0;
  uint8_t protocol = 0;  // IPv4 protocol / IPv6 next header
  size_t ipHeaderLen = 0;
  size_t totalLen = 0;  // as the header says; <= the buffer length
  IpAddress src;
  IpAddress dst;
  // kTcp and kUdp:
  uint16_t srcPort = 0;
  uint16_t dstPort = 0;
  // kTcp only:
  uint32_t seq = 0;
  uint32_t ack = 0;
  uint8_t tcpFlags = 0;
  size_t payloadLen = 0;  // TCP payload bytes

  FlowKey flowKey() const noexcept { return FlowKey{src, srcPort, dst, dstPort}; }
};

namespace tcpflag {
inline constexpr uint8_t kFin = 0x01;
inline constexpr uint8_t kSyn = 0x02;
inline constexpr uint8_t kRst = 0x04;
inline constexpr uint8_t kPsh = 0x08;
inline constexpr uint8_t kAck = 0x10;
}  // namespace tcpflag

// Not unspecified, broadcast (IPv4) or multicast: something a TCP
// connection may have at either end.
bool isUnicast(const IpAddress& a) noexcept;

// False when the packet is malformed (short, wrong version, lengths that do
// not fit, a TCP/UDP header that does not fit).
bool parseIpPacket(const uint8_t* p, size_t n, IpPacketInfo& out) noexcept;

}  // namespace vt::netstack
