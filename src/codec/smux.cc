#include "codec/smux.h"

#include "buffer/cursor.h"
#include "core/bytes.h"

namespace vt::codec {
namespace {

void appendHeader(SmuxCommand command, uint16_t length, uint32_t stream_id, BufferChain& out) {
  uint8_t h[kSmuxHeaderSize];
  h[0] = kSmuxVersion;
  h[1] = static_cast<uint8_t>(command);
  storeLe16(h + 2, length);
  storeLe32(h + 4, stream_id);
  out.append(h, sizeof h);
}

}  // namespace

void encodeSmuxControl(SmuxCommand command, uint32_t stream_id, BufferChain& out) {
  appendHeader(command, 0, stream_id, out);
}

bool encodeSmuxPsh(uint32_t stream_id, BufferChain& data, BufferChain& out) {
  if (data.size() > kSmuxMaxPshData) return false;
  appendHeader(SmuxCommand::kPsh, static_cast<uint16_t>(data.size()), stream_id, out);
  out.moveFrom(data);
  return true;
}

SmuxDecodeResult decodeSmuxFrame(const BufferChain& in) {
  SmuxDecodeResult r;
  auto fail = [&r](std::string why) {
    r.status = DecodeStatus::kInvalid;
    r.error = std::move(why);
    return r;
  };
  Cursor c(in);
  uint8_t ver, cmd;
  if (!c.readU8(ver)) return r;
  if (ver != kSmuxVersion) return fail("smux version " + std::to_string(ver));
  if (!c.readU8(cmd)) return r;
  if (cmd > 3) return fail("bad smux command " + std::to_string(cmd));
  uint16_t len;
  if (!c.readLe16(len)) return r;
  if (cmd != static_cast<uint8_t>(SmuxCommand::kPsh) && len != 0) {
    return fail("smux command " + std::to_string(cmd) + " with LEN " + std::to_string(len));
  }
  uint32_t sid;
  if (!c.readLe32(sid) || !c.has(len)) return r;
  r.status = DecodeStatus::kDone;
  r.header.command = static_cast<SmuxCommand>(cmd);
  r.header.length = len;
  r.header.stream_id = sid;
  r.payload_offset = kSmuxHeaderSize;
  r.payload_size = len;
  r.consumed = kSmuxHeaderSize + len;
  return r;
}

}  // namespace vt::codec
