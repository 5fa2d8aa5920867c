// Length-prefixed units, and the result type every packet decoder shares.
//
//   +--------+-------------+
//   | LEN(2) | payload     |   LEN big-endian, payload 0..65535 bytes
//   |   BE   | LEN bytes   |
//   +--------+-------------+
//
// The same framing, with different rules, carries:
//   - v0 UDP datagrams, both directions (LEN 0 = empty datagram);
//   - v1 separated-channel UDP, client -> server;
//   - reuse chunks (TLV 0x07): LEN 1..65535 is data, LEN 0 ends the
//     direction;
//   - CmdIP (CMD 5): each unit a whole IPv4/IPv6 packet. We check the
//     version nibble (4 or 6) and the minimum header size (20 / 40) as
//     soon as the bytes are there; LEN 0 is kInvalid.
//
// Payloads are not copied by the decoders: a result gives where the
// payload sits in the input (payload_offset, payload_size), and
// takePacket() moves it out of the chain, whole slices without a copy.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "buffer/buffer_chain.h"
#include "codec/address.h"

namespace vt::codec {

inline constexpr size_t kMaxPacketPayload = 65535;

struct PacketDecodeResult {
  DecodeStatus status = DecodeStatus::kNeedMore;
  size_t consumed = 0;        // header + payload, on kDone
  size_t payload_offset = 0;  // payload = input bytes [offset, offset+size)
  size_t payload_size = 0;
  // The per-packet address, for framings that have one (v1 classic, FLAG 1
  // of the separated channel, Trojan-style). Unset otherwise.
  std::optional<Address> address;
  std::string error;  // on kInvalid
};

// Drops the header of a kDone packet from `in` and moves its payload onto
// the end of `payload`; `in` then starts at the next unit.
void takePacket(BufferChain& in, const PacketDecodeResult& r, BufferChain& payload);

// Appends LEN(2) and the bytes of `payload` (drained: slices move). False,
// with nothing written and `payload` untouched, past 65535 bytes.
bool encodeLengthPacket(BufferChain& payload, BufferChain& out);
bool encodeLengthPacket(const uint8_t* p, size_t n, BufferChain& out);
// v0 UDP, separated channel client -> server. Every LEN is valid.
PacketDecodeResult decodeLengthPacket(const BufferChain& in);

// Reuse chunks. Data chunks must be 1..65535 bytes (an empty one would
// read as the end); encodeReuseEnd writes the LEN 0 terminator.
bool encodeReuseChunk(BufferChain& payload, BufferChain& out);
void encodeReuseEnd(BufferChain& out);
// All of `data` (drained) as chunks of at most 65535 bytes; nothing for an
// empty chain.
void encodeReuseChunks(BufferChain& data, BufferChain& out);
struct ReuseChunkResult : PacketDecodeResult {
  bool end = false;  // the LEN 0 chunk: this direction is finished
};
ReuseChunkResult decodeReuseChunk(const BufferChain& in);

// CmdIP units: the encoder does not inspect the packet.
bool encodeIpPacket(BufferChain& packet, BufferChain& out);
PacketDecodeResult decodeIpPacket(const BufferChain& in);
// A unit decodeIpPacket calls Invalid (LEN 0, not IPv4/IPv6, shorter than
// an IP header) still says by its LEN where the next unit starts, so an IP
// session drops it and goes on. Its whole size (2 + LEN) once all of it is
// in `in`; 0 while it is not (or fewer than 2 bytes are).
size_t ipUnitSize(const BufferChain& in);

}  // namespace vt::codec
