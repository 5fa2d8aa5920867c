// Trojan-style UDP packets: the body of a SimpleSocks CMD 3 (UDP) stream
// inside v1 Mux. Client -> server the address is the destination, server ->
// client the real source. Socks5 address order and ATYP values.
//
//   +------+------+---------+--------+-----------+---------+
//   | ATYP | ADDR | PORT(2) | LEN(2) | CRLF 0d0a | payload |
//   +------+------+---------+--------+-----------+---------+
//
// LEN 0 is a valid empty datagram; anything but 0d 0a after LEN is
// kInvalid. Port 0 is accepted by the decoder (the relay drops it).
// Payload by offset, as everywhere (see length_frame.h, takePacket()).
#pragma once

#include "codec/length_frame.h"

namespace vt::codec {

// `payload` is drained (slices move). False, with nothing written, over
// 65535 bytes.
bool encodeTrojanUdpPacket(const Address& addr, BufferChain& payload, BufferChain& out);
PacketDecodeResult decodeTrojanUdpPacket(const BufferChain& in);

}  // namespace vt::codec
