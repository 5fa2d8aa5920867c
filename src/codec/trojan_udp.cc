#include "codec/trojan_udp.h"

#include "buffer/cursor.h"
#include "core/bytes.h"

namespace vt::codec {

bool encodeTrojanUdpPacket(const Address& addr, BufferChain& payload, BufferChain& out) {
  if (payload.size() > kMaxPacketPayload) return false;
  encodeSocksAddress(addr, out);
  uint8_t tail[4];
  storeBe16(tail, static_cast<uint16_t>(payload.size()));
  tail[2] = '\r';
  tail[3] = '\n';
  out.append(tail, 4);
  out.moveFrom(payload);
  return true;
}

PacketDecodeResult decodeTrojanUdpPacket(const BufferChain& in) {
  PacketDecodeResult r;
  Cursor c(in);
  Address a;
  DecodeStatus s = decodeSocksAddress(c, a, r.error);
  if (s != DecodeStatus::kDone) {
    r.status = s;
    if (s == DecodeStatus::kInvalid) r.error = "Trojan UDP address: " + r.error;
    return r;
  }
  uint16_t len;
  if (!c.readBe16(len)) return r;
  // Check each CRLF byte as it arrives so a bad one is never kNeedMore.
  for (uint8_t expected : {uint8_t{'\r'}, uint8_t{'\n'}}) {
    uint8_t b;
    if (!c.readU8(b)) return r;
    if (b != expected) {
      r.status = DecodeStatus::kInvalid;
      r.error = "Trojan UDP packet without CRLF";
      return r;
    }
  }
  if (!c.has(len)) return r;
  r.status = DecodeStatus::kDone;
  r.address = std::move(a);
  r.payload_offset = c.position();
  r.payload_size = len;
  r.consumed = c.position() + len;
  return r;
}

}  // namespace vt::codec
