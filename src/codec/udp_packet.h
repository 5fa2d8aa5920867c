// v1 UDP packets that carry an address (see docs/protocol.md). The plain
// LEN(2) payload framings (v0 UDP, separated channel client -> server) are
// in length_frame.h.
//
// Classic (ADDON 0x00, CMD 2), both directions; client -> server the address
// is the destination, server -> client the real source:
//   +---------+------+------+--------+---------+
//   | PORT(2) | ATYP | ADDR | LEN(2) | payload |
//   +---------+------+------+--------+---------+
//
// Separated channel (udp_multi), server -> client:
//   +---------+------------------------------+--------+---------+
//   | FLAG(1) | PORT ATYP ADDR  (FLAG 1 only) | LEN(2) | payload |
//   +---------+------------------------------+--------+---------+
//   FLAG 0: from the channel's own target. FLAG 1: from the IP address that
//   follows (ATYP 1 or 3; a domain is kInvalid). Other FLAGs are kInvalid.
//
// Results are PacketDecodeResult (payload by offset, see takePacket()).
// Per-packet addresses may have port 0; the UDP relay drops such packets.
#pragma once

#include "codec/length_frame.h"

namespace vt::codec {

// Appends the packet; `payload` is drained (slices move). False, with
// nothing written, for a payload over 65535 bytes.
bool encodeClassicUdpPacket(const Address& addr, BufferChain& payload, BufferChain& out);
PacketDecodeResult decodeClassicUdpPacket(const BufferChain& in);

// `source` nullopt writes FLAG 0, else FLAG 1 and the address. False, with
// nothing written, for a payload over 65535 bytes or a domain `source`.
bool encodeMultiUdpDown(const std::optional<Address>& source, BufferChain& payload,
                        BufferChain& out);
// `address` is set only for FLAG 1.
PacketDecodeResult decodeMultiUdpDown(const BufferChain& in);

}  // namespace vt::codec
