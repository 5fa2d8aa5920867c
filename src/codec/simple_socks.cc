#include "codec/simple_socks.h"

#include "buffer/cursor.h"

namespace vt::codec {

void encodeSimpleSocks(const SimpleSocksHeader& h, BufferChain& out) {
  out.appendByte(static_cast<uint8_t>(h.command));
  encodeSocksAddress(h.target, out);
}

namespace {
constexpr std::string_view kUdpSessionSuffix = ".udp-session.invalid";
}

std::string udpSessionDomain(uint64_t id) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s(16, '0');
  for (int i = 15; i >= 0; --i, id >>= 4) s[static_cast<size_t>(i)] = kHex[id & 0xf];
  return s + std::string(kUdpSessionSuffix);
}

std::optional<uint64_t> parseUdpSessionDomain(std::string_view domain) {
  if (domain.size() != 16 + kUdpSessionSuffix.size() ||
      domain.substr(16) != kUdpSessionSuffix) {
    return std::nullopt;
  }
  uint64_t id = 0;
  for (size_t i = 0; i < 16; ++i) {
    char c = domain[i];
    int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (v < 0) return std::nullopt;
    id = id << 4 | static_cast<uint64_t>(v);
  }
  return id;
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
