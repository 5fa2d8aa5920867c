#include "codec/udp_packet.h"

#include "buffer/cursor.h"
#include "core/bytes.h"

namespace vt::codec {
namespace {

// Reads LEN(2) and checks the payload is there; fills the tail of `r`.
void finishLengthPayload(Cursor& c, PacketDecodeResult& r) {
  uint16_t len;
  if (!c.readBe16(len) || !c.has(len)) {
    r.status = DecodeStatus::kNeedMore;
    r.address.reset();
    return;
  }
  r.status = DecodeStatus::kDone;
  r.payload_offset = c.position();
  r.payload_size = len;
  r.consumed = c.position() + len;
}

void appendLength(size_t n, BufferChain& out) {
  uint8_t len[2];
  storeBe16(len, static_cast<uint16_t>(n));
  out.append(len, 2);
}

}  // namespace

bool encodeClassicUdpPacket(const Address& addr, BufferChain& payload, BufferChain& out) {
  if (payload.size() > kMaxPacketPayload) return false;
  encodeVlessAddress(addr, out);
  appendLength(payload.size(), out);
  out.moveFrom(payload);
  return true;
}

PacketDecodeResult decodeClassicUdpPacket(const BufferChain& in) {
  PacketDecodeResult r;
  Cursor c(in);
  Address a;
  DecodeStatus s = decodeVlessAddress(c, a, r.error);
  if (s != DecodeStatus::kDone) {
    r.status = s;
    if (s == DecodeStatus::kInvalid) r.error = "UDP packet address: " + r.error;
    return r;
  }
  r.address = std::move(a);
  finishLengthPayload(c, r);
  return r;
}

bool encodeMultiUdpDown(const std::optional<Address>& source, BufferChain& payload,
                        BufferChain& out) {
  if (payload.size() > kMaxPacketPayload) return false;
  if (source && !source->isIp()) return false;
  out.appendByte(source ? 1 : 0);
  if (source) encodeVlessAddress(*source, out);
  appendLength(payload.size(), out);
  out.moveFrom(payload);
  return true;
}

PacketDecodeResult decodeMultiUdpDown(const BufferChain& in) {
  PacketDecodeResult r;
  Cursor c(in);
  uint8_t flag;
  if (!c.readU8(flag)) return r;
  if (flag > 1) {
    r.status = DecodeStatus::kInvalid;
    r.error = "bad separated-channel FLAG " + std::to_string(flag);
    return r;
  }
  if (flag == 1) {
    // Catch a domain at its ATYP byte, before its name has arrived.
    uint8_t atyp;
    if (in.size() >= 4) {
      in.copyOut(3, &atyp, 1);
      if (atyp == 2) {
        r.status = DecodeStatus::kInvalid;
        r.error = "FLAG 1 source is a domain";
        return r;
      }
    }
    Address a;
    DecodeStatus s = decodeVlessAddress(c, a, r.error);
    if (s != DecodeStatus::kDone) {
      r.status = s;
      if (s == DecodeStatus::kInvalid) r.error = "FLAG 1 source: " + r.error;
      return r;
    }
    r.address = std::move(a);
  }
  finishLengthPayload(c, r);
  return r;
}

}  // namespace vt::codec
