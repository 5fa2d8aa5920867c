#include "codec/simple_socks.h"

#include "buffer/cursor.h"

namespace vt::codec {

void encodeSimpleSocks(const SimpleSocksHeader& h, BufferChain& out) {
  out.appendByte(static_cast<uint8_t>(h.command));
  encodeSocksAddress(h.target, out);
}

SimpleSocksDecodeResult decodeSimpleSocks(const BufferChain& in, SimpleSocksHeader& out) {
  SimpleSocksDecodeResult r;
  Cursor c(in);
  uint8_t cmd;
  if (!c.readU8(cmd)) return r;
  if (cmd != 1 && cmd != 3) {
    r.status = DecodeStatus::kInvalid;
    r.error = "bad SimpleSocks command " + std::to_string(cmd);
    return r;
  }
  Address a;
  DecodeStatus s = decodeSocksAddress(c, a, r.error);
  if (s != DecodeStatus::kDone) {
    r.status = s;
    if (s == DecodeStatus::kInvalid) r.error = "SimpleSocks target: " + r.error;
    return r;
  }
  if (cmd == 1 && a.port == 0) {
    r.status = DecodeStatus::kInvalid;
    r.error = "SimpleSocks TCP target with port 0";
    return r;
  }
  out.command = static_cast<SimpleSocksCommand>(cmd);
  out.target = std::move(a);
  r.status = DecodeStatus::kDone;
  r.consumed = c.position();
  return r;
}

}  // namespace vt::codec
