// UdpCoalescer: the UDP datagrams NetStack emits toward the app, gathered
// per loop pass into one UDP GSO packet (virtio_net_hdr gso_type UDP_L4)
// for a TUN with IFF_VNET_HDR, so that the kernel takes a burst of one
// flow's datagrams in one write and one trip through its input path,
// cutting it back into datagrams at the app's socket (or, when forwarded,
// at the outgoing device). What joins a run: consecutive IPv4 (no options,
// no fragment) or IPv6 (UDP right after the fixed header) datagrams of one
// 4-tuple whose payloads are all as long as the first one's, except the
// last, which may be shorter; at most kMaxSegments datagrams and one IP
// packet's length. Anything else starts a new run (the caller writes the
// old one first, so order holds).
//
// Pure: no I/O. TunPump owns one and writes what it builds; a kernel that
// refuses UDP GSO from a TUN (before Linux 6.2) gets the run cut back into
// its datagrams with forEachDatagram().
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "netstack/net_stack.h"

namespace vt::client {

class UdpCoalescer {
 public:
  static constexpr size_t kMaxSegments = 64;
  static constexpr uint8_t kGsoUdpL4 = 5;  // VIRTIO_NET_HDR_GSO_UDP_L4

  // What parse() learns of a datagram.
  struct Datagram {
    bool v6 = false;
    size_t ipHeader = 0;  // 20 or 40
    size_t payload = 0;   // UDP payload bytes
    uint8_t head[48] = {};  // the IP and UDP headers (ipHeader + 8 bytes)
  };
  // True if `packet` is a UDP datagram a run can carry (see above), with a
  // payload of at least one byte.
  static bool parse(const netstack::PacketView& packet, Datagram& out);

  bool empty() const { return count_ == 0; }
  size_t count() const { return count_; }
  // Whether `d` may join the run; an empty run takes anything parse()
  // accepted.
  bool joins(const Datagram& d) const;
  // Appends (the caller checked joins()).
  void add(const netstack::PacketView& packet, const Datagram& d);

  // The run as one packet, and its virtio_net_hdr in `vnet` (10 bytes):
  // one datagram as it came with a zero header; several as one IP packet
  // whose lengths cover them all, its UDP checksum field holding the
  // pseudo-header's sum (NEEDS_CSUM: the kernel completes each segment's).
  // Valid until the next add() or clear().
  const std::vector<uint8_t>& build(uint8_t* vnet);
  // Each datagram of the run as a packet of its own, lengths and checksums
  // complete (after build() too).
  void forEachDatagram(const std::function<void(const uint8_t*, size_t)>& fn) const;
  void clear();

 private:
  std::vector<uint8_t> bytes_;  // the first packet's headers, then every payload
  Datagram first_;
  size_t count_ = 0;
  size_t lastPayload_ = 0;
};

}  // namespace vt::client
