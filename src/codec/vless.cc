#include "codec/vless.h"

#include <cstring>

#include "core/bytes.h"

namespace vt::codec {
namespace {

int hexValue(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string hexByte(uint8_t b) {
  static const char* digits = "0123456789abcdef";
  return std::string("0x") + digits[b >> 4] + digits[b & 15];
}

// Parses the v1 ADDON field into `out`; kDone leaves the cursor after it.
DecodeStatus decodeAddon(Cursor& c, Request& out, std::string& why) {
  uint8_t addon;
  if (!c.readU8(addon)) return DecodeStatus::kNeedMore;
  if (addon == kAddonNone) return DecodeStatus::kDone;
  if (addon == kAddonUdpMulti) {
    out.udp_multi = true;
    return DecodeStatus::kDone;
  }
  if (addon != kAddonTlv) {
    why = "bad ADDON byte " + hexByte(addon);
    return DecodeStatus::kInvalid;
  }
  uint8_t count;
  if (!c.readU8(count)) return DecodeStatus::kNeedMore;
  size_t total = 0;
  uint32_t seen = 0;  // bit per known TYPE, to refuse duplicates
  for (unsigned i = 0; i < count; ++i) {
    // Each check runs as soon as its byte is in, so that input already
    // known to be bad never reads as kNeedMore.
    uint8_t type, len;
    if (!c.readU8(type)) return DecodeStatus::kNeedMore;
    bool known = type == kTlvUdpMulti || type == kTlvUdpSession || type == kTlvPadding ||
                 type == kTlvWantIp || type == kTlvReuse;
    if (!known && (type & kTlvCritical)) {
      why = "unknown critical TLV " + hexByte(type);
      return DecodeStatus::kInvalid;
    }
    if (known && (seen & (1u << type))) {
      why = "TLV " + hexByte(type) + " given twice";
      return DecodeStatus::kInvalid;
    }
    if (!c.readU8(len)) return DecodeStatus::kNeedMore;
    total += 2u + len;
    if (total > kMaxAddonTlvBytes) {
      why = "addon TLV list longer than " + std::to_string(kMaxAddonTlvBytes) + " bytes";
      return DecodeStatus::kInvalid;
    }
    if (!known) {
      if (!c.skip(len)) return DecodeStatus::kNeedMore;
      continue;
    }
    seen |= 1u << type;
    size_t want = type == kTlvUdpSession ? 8 : 0;
    if (type != kTlvPadding && len != want) {
      why = "TLV " + hexByte(type) + " has LEN " + std::to_string(len) + ", expected " +
            std::to_string(want);
      return DecodeStatus::kInvalid;
    }
    switch (type) {
      case kTlvUdpMulti:
        out.udp_multi = true;
        break;
      case kTlvUdpSession: {
        uint8_t b[8];
        if (!c.readBytes(b, 8)) return DecodeStatus::kNeedMore;
        out.udp_session = (uint64_t{loadBe32(b)} << 32) | loadBe32(b + 4);
        break;
      }
      case kTlvPadding: {
        std::vector<uint8_t> pad(len);
        if (!c.readBytes(pad.data(), len)) return DecodeStatus::kNeedMore;
        out.padding = std::move(pad);
        break;
      }
      case kTlvWantIp:
        out.want_ip = true;
        break;
      case kTlvReuse:
        out.reuse = true;
        break;
    }
  }
  return DecodeStatus::kDone;
}

void appendTlv(BufferChain& out, uint8_t type, const uint8_t* value, size_t len) {
  uint8_t head[2] = {type, static_cast<uint8_t>(len)};
  out.append(head, 2);
  if (len) out.append(value, len);
}

}  // namespace

bool parseUuid(std::string_view text, Uuid& out) {
  std::string digits;
  if (text.size() == 36) {
    for (size_t i = 0; i < 36; ++i) {
      bool dash_pos = i == 8 || i == 13 || i == 18 || i == 23;
      if (dash_pos != (text[i] == '-')) return false;
      if (!dash_pos) digits.push_back(text[i]);
    }
  } else if (text.size() == 32) {
    digits = std::string(text);
  } else {
    return false;
  }
  Uuid u{};
  for (size_t i = 0; i < 16; ++i) {
    int hi = hexValue(digits[2 * i]), lo = hexValue(digits[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    u[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  out = u;
  return true;
}

std::string uuidToString(const Uuid& u) {
  std::string hex = toHex(u.data(), u.size());
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" +
         hex.substr(16, 4) + "-" + hex.substr(20);
}

void encodeRequest(const Request& req, BufferChain& out) {
  uint8_t head[17];
  head[0] = req.version == 0 ? 0 : 1;
  std::memcpy(head + 1, req.uuid.data(), 16);
  out.append(head, 17);
  bool has_address;
  if (req.version == 0) {
    size_t m = std::min<size_t>(req.v0_addons.size(), 255);
    out.appendByte(static_cast<uint8_t>(m));
    if (m) out.append(req.v0_addons.data(), m);
    has_address = req.command != Command::kMux;
  } else {
    bool others = req.udp_session || req.padding || req.want_ip || req.reuse;
    if (!others) {
      out.appendByte(req.udp_multi ? kAddonUdpMulti : kAddonNone);
    } else {
      uint8_t count = (req.udp_multi ? 1 : 0) + (req.udp_session ? 1 : 0) +
                      (req.padding ? 1 : 0) + (req.want_ip ? 1 : 0) + (req.reuse ? 1 : 0);
      uint8_t list[2] = {kAddonTlv, count};
      out.append(list, 2);
      if (req.udp_multi) appendTlv(out, kTlvUdpMulti, nullptr, 0);
      if (req.udp_session) {
        uint8_t b[8];
        storeBe32(b, static_cast<uint32_t>(*req.udp_session >> 32));
        storeBe32(b + 4, static_cast<uint32_t>(*req.udp_session));
        appendTlv(out, kTlvUdpSession, b, 8);
      }
      if (req.padding) {
        appendTlv(out, kTlvPadding, req.padding->data(), std::min<size_t>(req.padding->size(), 255));
      }
      if (req.want_ip) appendTlv(out, kTlvWantIp, nullptr, 0);
      if (req.reuse) appendTlv(out, kTlvReuse, nullptr, 0);
    }
    has_address = req.command != Command::kIp;
  }
  out.appendByte(static_cast<uint8_t>(req.command));
  if (!has_address) return;
  if (req.version != 0 && req.command == Command::kMux) {
    encodeVlessAddress(Address::fromDomain(kMuxPlaceholderHost, kMuxPlaceholderPort), out);
  } else {
    encodeVlessAddress(req.target ? *req.target : Address{}, out);
  }
}

RequestDecodeResult decodeRequest(const BufferChain& in, Request& out) {
  RequestDecodeResult r;
  out = Request{};
  auto fail = [&r](std::string why) {
    r.status = DecodeStatus::kInvalid;
    r.error = std::move(why);
    return r;
  };
  auto need = [&r]() {
    r.status = DecodeStatus::kNeedMore;
    return r;
  };
  Cursor c(in);
  uint8_t ver;
  if (!c.readU8(ver)) return need();
  if (ver > 1) return fail("bad request version " + std::to_string(ver));
  out.version = ver;
  if (!c.readBytes(out.uuid.data(), 16)) return need();
  std::string why;
  if (ver == 0) {
    uint8_t m;
    if (!c.readU8(m)) return need();
    out.v0_addons.resize(m);
    if (!c.readBytes(out.v0_addons.data(), m)) return need();
  } else {
    DecodeStatus s = decodeAddon(c, out, why);
    if (s == DecodeStatus::kNeedMore) return need();
    if (s == DecodeStatus::kInvalid) return fail(std::move(why));
  }
  uint8_t cmd;
  if (!c.readU8(cmd)) return need();
  bool has_address;
  if (ver == 0) {
    if (cmd < 1 || cmd > 3) return fail("bad v0 command " + std::to_string(cmd));
    has_address = cmd != 3;
  } else {
    if (cmd < 1 || cmd == 4 || cmd > 5) return fail("bad v1 command " + std::to_string(cmd));
    has_address = cmd != 5;
  }
  out.command = static_cast<Command>(cmd);
  if (has_address) {
    // Port 0 for TCP is known bad as soon as the port is in (port first).
    uint8_t port[2];
    if (out.command == Command::kTcp && in.copyOut(c.position(), port, 2) == 2 &&
        port[0] == 0 && port[1] == 0) {
      return fail("TCP target with port 0");
    }
    Address a;
    DecodeStatus s = decodeVlessAddress(c, a, why);
    if (s == DecodeStatus::kNeedMore) return need();
    if (s == DecodeStatus::kInvalid) return fail("target: " + why);
    out.target = std::move(a);
  }
  r.status = DecodeStatus::kDone;
  r.consumed = c.position();
  return r;
}

void encodeV0Response(BufferChain& out) {
  const uint8_t head[2] = {0, 0};
  out.append(head, 2);
}

ResponseDecodeResult decodeV0Response(const BufferChain& in) {
  ResponseDecodeResult r;
  Cursor c(in);
  uint8_t ver, n;
  if (!c.readU8(ver)) return r;
  if (ver != 0) {
    r.status = DecodeStatus::kInvalid;
    r.error = "bad response version " + std::to_string(ver);
    return r;
  }
  if (!c.readU8(n) || !c.skip(n)) return r;
  r.status = DecodeStatus::kDone;
  r.consumed = c.position();
  return r;
}

void encodeWantIpPrefix(const std::optional<Address>& dialled, BufferChain& out) {
  if (!dialled || !dialled->isIp()) {
    out.appendByte(0);
    return;
  }
  // The VLESS address encoder normalises mapped IPv6; drop its port bytes.
  BufferChain addr;
  encodeVlessAddress(*dialled, addr);
  addr.drain(2);
  out.appendByte(1);
  out.moveFrom(addr);
}

WantIpDecodeResult decodeWantIpPrefix(const BufferChain& in) {
  WantIpDecodeResult r;
  Cursor c(in);
  uint8_t flag;
  if (!c.readU8(flag)) return r;
  if (flag == 0) {
    r.status = DecodeStatus::kDone;
    r.consumed = 1;
    return r;
  }
  if (flag != 1) {
    r.status = DecodeStatus::kInvalid;
    r.error = "bad want_ip FLAG " + std::to_string(flag);
    return r;
  }
  uint8_t atyp;
  if (!c.readU8(atyp)) return r;
  uint8_t ip[16];
  if (atyp == 1) {
    if (!c.readBytes(ip, 4)) return r;
    r.ip = Address::ipv4(ip, 0);
  } else if (atyp == 3) {
    if (!c.readBytes(ip, 16)) return r;
    r.ip = Address::ipv6(ip, 0);
  } else {
    r.status = DecodeStatus::kInvalid;
    r.error = "bad want_ip address type " + std::to_string(atyp);
    return r;
  }
  r.status = DecodeStatus::kDone;
  r.consumed = c.position();
  return r;
}

}  // namespace vt::codec
