#include "codec/smux.h"

#include "buffer/cursor.h"
#include "core/bytes.h"

namespace vt::codec {
namespace {

void appendHeader(uint8_t version, SmuxCommand command, uint16_t length, uint32_t stream_id,
                  BufferChain& out) {
  uint8_t h[kSmuxHeaderSize];
  h[0] = version;
  h[1] = static_cast<uint8_t>(command);
  storeLe16(h + 2, length);
  storeLe32(h + 4, stream_id);
  out.append(h, sizeof h);
}

}  // namespace

void encodeSmuxControl(uint8_t version, SmuxCommand command, uint32_t stream_id, BufferChain& out) {
  appendHeader(version, command, 0, stream_id, out);
}

bool encodeSmuxPsh(uint8_t version, uint32_t stream_id, BufferChain& data, BufferChain& out) {
  if (data.size() > kSmuxMaxPshData) return false;
  appendHeader(version, SmuxCommand::kPsh, static_cast<uint16_t>(data.size()), stream_id, out);
  out.moveFrom(data);
  return true;
}

void encodeSmuxUpd(uint32_t stream_id, uint32_t consumed, uint32_t window, BufferChain& out) {
  uint8_t f[kSmuxHeaderSize + kSmuxUpdSize];
  f[0] = kSmuxVersion2;
  f[1] = static_cast<uint8_t>(SmuxCommand::kUpd);
  storeLe16(f + 2, kSmuxUpdSize);
  storeLe32(f + 4, stream_id);
  storeLe32(f + 8, consumed);
  storeLe32(f + 12, window);
  out.append(f, sizeof f);
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
  if (ver != kSmuxVersion1 && ver != kSmuxVersion2) {
    return fail("smux version " + std::to_string(ver));
  }
  if (!c.readU8(cmd)) return r;
  const uint8_t max_cmd = ver == kSmuxVersion2 ? 4 : 3;
  if (cmd > max_cmd) {
    return fail("bad smux command " + std::to_string(cmd) + " in version " + std::to_string(ver));
  }
  uint16_t len;
  if (!c.readLe16(len)) return r;
  const auto command = static_cast<SmuxCommand>(cmd);
  if (command == SmuxCommand::kUpd ? len != kSmuxUpdSize
                                   : command != SmuxCommand::kPsh && len != 0) {
    return fail("smux command " + std::to_string(cmd) + " with LEN " + std::to_string(len));
  }
  uint32_t sid;
  if (!c.readLe32(sid) || !c.has(len)) return r;
  if (command == SmuxCommand::kUpd) {
    c.readLe32(r.upd_consumed);
    c.readLe32(r.upd_window);
  }
  r.status = DecodeStatus::kDone;
  r.header.version = ver;
  r.header.command = command;
  r.header.length = len;
  r.header.stream_id = sid;
  r.payload_offset = kSmuxHeaderSize;
  r.payload_size = len;
  r.consumed = kSmuxHeaderSize + len;
  return r;
}

}  // namespace vt::codec
