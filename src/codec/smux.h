// xtaci/smux frames (VER 1 and VER 2), the body of a v1 Mux (CMD 3)
// connection. Little-endian, unlike the rest of the protocol.
//
//   +--------+--------+------------+----------------+------------+
//   | VER(1) | CMD(1) | LEN(2, LE) | STREAMID(4,LE) | DATA(LEN)  |
//   +--------+--------+------------+----------------+------------+
//   VER 1 or 2. CMD 0 SYN, 1 FIN, 2 PSH, 3 NOP, 4 UPD (VER 2 only; its
//   DATA is CONSUMED(4, LE) WINDOW(4, LE), so LEN must be 8). SYN, FIN and
//   NOP must have LEN 0: smux itself reads no body for them, so a LEN there
//   would desynchronise the stream; we reject it. PSH may carry 0..65535
//   bytes on receipt; we send at most kSmuxMaxPshData. Whether the VER is
//   the session's, and stream-id parity, are the session's business.
//
// The frame's data is given by offset (PacketDecodeResult, takePacket()).
#pragma once

#include <cstddef>
#include <cstdint>

#include "codec/length_frame.h"

namespace vt::codec {

enum class SmuxCommand : uint8_t { kSyn = 0, kFin = 1, kPsh = 2, kNop = 3, kUpd = 4 };

inline constexpr uint8_t kSmuxVersion1 = 1;
inline constexpr uint8_t kSmuxVersion2 = 2;
inline constexpr size_t kSmuxHeaderSize = 8;
inline constexpr size_t kSmuxUpdSize = 8;
inline constexpr size_t kSmuxMaxPshData = 32768;

struct SmuxFrameHeader {
  uint8_t version = kSmuxVersion1;
  SmuxCommand command = SmuxCommand::kNop;
  uint16_t length = 0;
  uint32_t stream_id = 0;

  friend bool operator==(const SmuxFrameHeader&, const SmuxFrameHeader&) = default;
};

// SYN, FIN or NOP (LEN 0). NOP goes on stream 0 by smux custom.
void encodeSmuxControl(uint8_t version, SmuxCommand command, uint32_t stream_id, BufferChain& out);
// PSH header plus `data` (drained: slices move). False, with nothing
// written and `data` untouched, over kSmuxMaxPshData bytes.
bool encodeSmuxPsh(uint8_t version, uint32_t stream_id, BufferChain& data, BufferChain& out);
// VER 2 window update: the receiver has consumed `consumed` bytes of the
// stream in all (wrapping) and accepts `window` bytes beyond that.
void encodeSmuxUpd(uint32_t stream_id, uint32_t consumed, uint32_t window, BufferChain& out);

struct SmuxDecodeResult : PacketDecodeResult {
  SmuxFrameHeader header;  // on kDone; payload_offset is always 8
  uint32_t upd_consumed = 0;  // UPD only
  uint32_t upd_window = 0;
};
SmuxDecodeResult decodeSmuxFrame(const BufferChain& in);

}  // namespace vt::codec
