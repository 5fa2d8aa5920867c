// WriteCoalescer: what NetStack emits toward the app in one loop pass,
// gathered per flow into one GSO packet for a TUN with IFF_VNET_HDR, so
// that the kernel takes a burst of one flow in one write and one trip
// through its input path (what GRO does for a NIC), cutting it back into
// packets only where it must (at a UDP socket, or at the outgoing device
// when it forwards). lwIP keeps sending MSS-sized segments, so its loss
// recovery is untouched; only the writes are fewer.
//
// What joins a run (IPv4 without options and not a fragment, or IPv6 with
// the transport header right after the fixed one; same addresses, ports,
// TOS / traffic class and TTL / hop limit; at most kMaxSegments packets
// and one IP packet's length; every payload as long as the first one's
// but the last, which may be shorter):
//   - UDP: consecutive datagrams (gso_type UDP_L4);
//   - TCP: segments that follow one another in sequence, with the same
//     ACK number, window and options (timestamps included), flags ACK
//     only, the last ACK or ACK|PSH (gso_type TCPV4 / TCPV6); the kernel
//     gives every piece the first's header with its own sequence number,
//     PSH only on the last.
// Anything else ends the run (the caller writes it first, so order holds).
//
// Pure: no I/O. TunPump owns one and writes what it builds; a kernel that
// refuses UDP GSO from a TUN (before Linux 6.2) gets a UDP run cut back
// into its datagrams with forEachPacket().
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "netstack/net_stack.h"

namespace vt::client {

class WriteCoalescer {
 public:
  static constexpr size_t kMaxSegments = 64;
  // virtio_net_hdr gso_type values.
  static constexpr uint8_t kGsoTcp4 = 1, kGsoTcp6 = 4, kGsoUdpL4 = 5;

  // What parse() learns of a packet.
  struct Piece {
    bool v6 = false;
    bool tcp = false;
    size_t ipHeader = 0;  // 20 or 40
    size_t l4Header = 0;  // 8 for UDP, 20..60 for TCP
    size_t payload = 0;
    uint32_t seq = 0;     // TCP
    uint8_t head[100] = {};  // the IP and transport headers
    size_t headers() const { return ipHeader + l4Header; }
  };
  // True if `packet` is a UDP datagram or TCP segment a run can carry (see
  // above), with at least one byte of payload.
  static bool parse(const netstack::PacketView& packet, Piece& out);

  bool empty() const { return count_ == 0; }
  size_t count() const { return count_; }
  bool tcp() const { return first_.tcp; }
  // Whether `p` may join the run; an empty run takes anything parse()
  // accepted.
  bool joins(const Piece& p) const;
  // Appends (the caller checked joins()).
  void add(const netstack::PacketView& packet, const Piece& p);

  // The run as one packet, and its virtio_net_hdr in `vnet` (10 bytes):
  // one packet as it came with a zero header; several as one IP packet
  // whose lengths cover them all, its transport checksum field holding the
  // pseudo-header's sum (NEEDS_CSUM: the kernel completes each piece's).
  // Valid until the next add() or clear().
  const std::vector<uint8_t>& build(uint8_t* vnet);
  // Each packet of a UDP run on its own, lengths and checksums complete
  // (after build() too).
  void forEachPacket(const std::function<void(const uint8_t*, size_t)>& fn) const;
  void clear();

 private:
  std::vector<uint8_t> bytes_;  // the first packet's headers, then every payload
  Piece first_;
  size_t count_ = 0;
  size_t lastPayload_ = 0;
  uint32_t nextSeq_ = 0;  // TCP: where the next segment must start
  uint8_t lastFlags_ = 0;
};

}  // namespace vt::client
