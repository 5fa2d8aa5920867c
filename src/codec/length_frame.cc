#include "codec/length_frame.h"

#include <algorithm>

#include "buffer/cursor.h"
#include "core/bytes.h"

namespace vt::codec {

void takePacket(BufferChain& in, const PacketDecodeResult& r, BufferChain& payload) {
  in.drain(r.payload_offset);
  payload.moveFrom(in, r.payload_size);
  in.drain(r.consumed - r.payload_offset - r.payload_size);
}

bool encodeLengthPacket(BufferChain& payload, BufferChain& out) {
  if (payload.size() > kMaxPacketPayload) return false;
  uint8_t len[2];
  storeBe16(len, static_cast<uint16_t>(payload.size()));
  out.append(len, 2);
  out.moveFrom(payload);
  return true;
}

bool encodeLengthPacket(const uint8_t* p, size_t n, BufferChain& out) {
  if (n > kMaxPacketPayload) return false;
  uint8_t len[2];
  storeBe16(len, static_cast<uint16_t>(n));
  out.append(len, 2);
  if (n) out.append(p, n);
  return true;
}

PacketDecodeResult decodeLengthPacket(const BufferChain& in) {
  PacketDecodeResult r;
  Cursor c(in);
  uint16_t len;
  if (!c.readBe16(len) || !c.has(len)) return r;
  r.status = DecodeStatus::kDone;
  r.payload_offset = 2;
  r.payload_size = len;
  r.consumed = 2u + len;
  return r;
}

bool encodeReuseChunk(BufferChain& payload, BufferChain& out) {
  if (payload.empty()) return false;
  return encodeLengthPacket(payload, out);
}

void encodeReuseChunks(BufferChain& data, BufferChain& out) {
  while (!data.empty()) {
    BufferChain piece;
    piece.moveFrom(data, std::min(data.size(), kMaxPacketPayload));
    encodeLengthPacket(piece, out);
  }
}

void encodeReuseEnd(BufferChain& out) {
  const uint8_t end[2] = {0, 0};
  out.append(end, 2);
}

ReuseChunkResult decodeReuseChunk(const BufferChain& in) {
  ReuseChunkResult r;
  static_cast<PacketDecodeResult&>(r) = decodeLengthPacket(in);
  r.end = r.status == DecodeStatus::kDone && r.payload_size == 0;
  return r;
}

bool encodeIpPacket(BufferChain& packet, BufferChain& out) {
  return encodeLengthPacket(packet, out);
}

size_t ipUnitSize(const BufferChain& in) {
  Cursor c(in);
  uint16_t len;
  if (!c.readBe16(len) || in.size() < 2u + len) return 0;
  return 2u + len;
}

PacketDecodeResult decodeIpPacket(const BufferChain& in) {
  PacketDecodeResult r;
  Cursor c(in);
  uint16_t len;
  if (!c.readBe16(len)) return r;
  if (len == 0) {
    r.status = DecodeStatus::kInvalid;
    r.error = "empty IP packet";
    return r;
  }
  uint8_t first;
  if (!c.readU8(first)) return r;
  unsigned version = first >> 4;
  if (version != 4 && version != 6) {
    r.status = DecodeStatus::kInvalid;
    r.error = "IP version " + std::to_string(version);
    return r;
  }
  size_t min = version == 4 ? 20 : 40;
  if (len < min) {
    r.status = DecodeStatus::kInvalid;
    r.error = "IPv" + std::to_string(version) + " packet of " + std::to_string(len) + " bytes";
    return r;
  }
  if (in.size() < 2u + len) return r;
  r.status = DecodeStatus::kDone;
  r.payload_offset = 2;
  r.payload_size = len;
  r.consumed = 2u + len;
  return r;
}

}  // namespace vt::codec
