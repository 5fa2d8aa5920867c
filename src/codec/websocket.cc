#include "codec/websocket.h"

#include <cstring>

#include "core/bytes.h"

namespace vt::codec {

// --- SHA-1 (FIPS 180-4), only for Sec-WebSocket-Accept -------------------
// Not a security primitive here: RFC 6455 uses it to prove the server read
// the handshake, nothing more. Kept small rather than fast.

namespace {

inline uint32_t rotl(uint32_t x, int n) noexcept {
  return (x << n) | (x >> (32 - n));
}

void sha1Block(uint32_t h[5], const uint8_t* block) noexcept {
  uint32_t w[80];
  for (int i = 0; i < 16; ++i) w[i] = loadBe32(block + 4 * i);
  for (int i = 16; i < 80; ++i) w[i] = rotl(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
  uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
  for (int i = 0; i < 80; ++i) {
    uint32_t f, k;
    if (i < 20) {
      f = (b & c) | (~b & d);
      k = 0x5a827999;
    } else if (i < 40) {
      f = b ^ c ^ d;
      k = 0x6ed9eba1;
    } else if (i < 60) {
      f = (b & c) | (b & d) | (c & d);
      k = 0x8f1bbcdc;
    } else {
      f = b ^ c ^ d;
      k = 0xca62c1d6;
    }
    uint32_t t = rotl(a, 5) + f + e + k + w[i];
    e = d;
    d = c;
    c = rotl(b, 30);
    b = a;
    a = t;
  }
  h[0] += a;
  h[1] += b;
  h[2] += c;
  h[3] += d;
  h[4] += e;
}

}  // namespace

Sha1Digest sha1(const uint8_t* p, size_t n) {
  uint32_t h[5] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0};
  const uint64_t bits = static_cast<uint64_t>(n) * 8;
  size_t i = 0;
  for (; n - i >= 64; i += 64) sha1Block(h, p + i);
  // The tail, the 0x80 marker and the 64-bit length: one or two blocks.
  uint8_t last[128] = {};
  const size_t rest = n - i;
  if (rest) std::memcpy(last, p + i, rest);
  last[rest] = 0x80;
  const size_t total = rest + 1 + 8 <= 64 ? 64 : 128;
  storeBe32(last + total - 8, static_cast<uint32_t>(bits >> 32));
  storeBe32(last + total - 4, static_cast<uint32_t>(bits));
  sha1Block(h, last);
  if (total == 128) sha1Block(h, last + 64);
  Sha1Digest out;
  for (int j = 0; j < 5; ++j) storeBe32(out.data() + 4 * j, h[j]);
  return out;
}

// --- base64 (RFC 4648 sections 4 and 5) ------------------------------------

namespace {

constexpr char kB64Std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr char kB64Url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int b64Value(char c, Base64Alphabet a) noexcept {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (a == Base64Alphabet::kStandard) return c == '+' ? 62 : c == '/' ? 63 : -1;
  return c == '-' ? 62 : c == '_' ? 63 : -1;
}

}  // namespace

std::string base64Encode(const uint8_t* p, size_t n, Base64Alphabet a) {
  const char* table = a == Base64Alphabet::kStandard ? kB64Std : kB64Url;
  std::string out;
  out.reserve((n + 2) / 3 * 4);
  size_t i = 0;
  for (; n - i >= 3; i += 3) {
    uint32_t v = (uint32_t{p[i]} << 16) | (uint32_t{p[i + 1]} << 8) | p[i + 2];
    out += table[v >> 18];
    out += table[(v >> 12) & 63];
    out += table[(v >> 6) & 63];
    out += table[v & 63];
  }
  if (n - i == 0) return out;
  uint32_t v = uint32_t{p[i]} << 16;
  if (n - i == 2) v |= uint32_t{p[i + 1]} << 8;
  out += table[v >> 18];
  out += table[(v >> 12) & 63];
  if (n - i == 2) out += table[(v >> 6) & 63];
  if (a == Base64Alphabet::kStandard) out.append(n - i == 2 ? 1 : 2, '=');
  return out;
}

bool base64Decode(std::string_view text, std::vector<uint8_t>& out, Base64Alphabet a) {
  out.clear();
  if (a == Base64Alphabet::kStandard) {
    if (text.size() % 4 != 0) return false;
    size_t pad = 0;
    while (pad < 2 && pad < text.size() && text[text.size() - 1 - pad] == '=') ++pad;
    text.remove_suffix(pad);
  }
  // One leftover symbol carries only 6 bits: never a whole byte.
  if (text.size() % 4 == 1) return false;
  out.reserve(text.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    int v = b64Value(c, a);
    if (v < 0) return false;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<uint8_t>(acc >> bits));
      acc &= (1u << bits) - 1;
    }
  }
  // Left-over bits must be zero, or two spellings would decode alike.
  return acc == 0;
}

// --- UTF-8 (RFC 3629) ------------------------------------------------------

bool isValidUtf8(const uint8_t* p, size_t n) noexcept {
  size_t i = 0;
  while (i < n) {
    const uint8_t b = p[i];
    if (b < 0x80) {
      ++i;
      continue;
    }
    size_t more;
    uint8_t lo = 0x80, hi = 0xbf;  // the range of the second byte
    if (b >= 0xc2 && b <= 0xdf) {
      more = 1;
    } else if (b >= 0xe0 && b <= 0xef) {
      more = 2;
      if (b == 0xe0) lo = 0xa0;  // overlong
      if (b == 0xed) hi = 0x9f;  // surrogates
    } else if (b >= 0xf0 && b <= 0xf4) {
      more = 3;
      if (b == 0xf0) lo = 0x90;  // overlong
      if (b == 0xf4) hi = 0x8f;  // past U+10FFFF
    } else {
      return false;  // 0x80..0xc1 (continuation, overlong lead), 0xf5..0xff
    }
    if (n - i <= more) return false;
    if (p[i + 1] < lo || p[i + 1] > hi) return false;
    for (size_t k = 2; k <= more; ++k) {
      if ((p[i + k] & 0xc0) != 0x80) return false;
    }
    i += more + 1;
  }
  return true;
}

// --- Frames ----------------------------------------------------------------

bool isValidWsCloseCode(uint16_t code) noexcept {
  // 7.4.1 defines 1000-1003 and 1007-1011 (1004 reserved; 1005, 1006 and
  // 1015 are for reporting only, never sent); 7.4.2: 3000-4999 are for
  // libraries and applications. Everything else is refused.
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) ||
         (code >= 3000 && code <= 4999);
}

namespace {

bool knownOpcode(uint8_t op) noexcept {
  return op <= 2 || (op >= 8 && op <= 10);
}

// XORs the chain's bytes in place with key[i % 4], i counted over the
// whole chain. Eight bytes at a time with the key repeated in a word
// (rotated to where each slice starts), then the tail byte by byte: a
// masked upload passes every byte through here once on each end.
void maskChain(BufferChain& c, const std::array<uint8_t, 4>& key) {
  size_t pos = 0;
  for (size_t s = 0; s < c.sliceCount(); ++s) {
    Slice& slice = c.slice(s);
    uint8_t* d = slice.data();
    const size_t n = slice.size();
    uint8_t k8[8];
    for (size_t j = 0; j < 8; ++j) k8[j] = key[(pos + j) & 3];
    uint64_t kw;
    std::memcpy(&kw, k8, 8);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
      uint64_t w;
      std::memcpy(&w, d + i, 8);
      w ^= kw;
      std::memcpy(d + i, &w, 8);
    }
    for (; i < n; ++i) d[i] ^= key[(pos + i) & 3];
    pos += n;
  }
}

}  // namespace

bool encodeWsFrame(WsOpcode op, bool fin, BufferChain& payload,
                   const std::array<uint8_t, 4>* mask_key, BufferChain& out) {
  const auto code = static_cast<uint8_t>(op);
  if (!knownOpcode(code)) return false;
  const size_t len = payload.size();
  if (isWsControl(op) && (!fin || len > kWsMaxControlPayload)) return false;
  uint8_t h[kWsMaxFrameHeader];
  size_t n = 0;
  h[n++] = static_cast<uint8_t>((fin ? 0x80 : 0) | code);
  const uint8_t mask_bit = mask_key ? 0x80 : 0;
  // The shortest form, as 5.2 requires of senders.
  if (len <= 125) {
    h[n++] = static_cast<uint8_t>(mask_bit | len);
  } else if (len <= 0xffff) {
    h[n++] = mask_bit | 126;
    storeBe16(h + n, static_cast<uint16_t>(len));
    n += 2;
  } else {
    h[n++] = mask_bit | 127;
    const auto len64 = static_cast<uint64_t>(len);
    storeBe32(h + n, static_cast<uint32_t>(len64 >> 32));
    storeBe32(h + n + 4, static_cast<uint32_t>(len64));
    n += 8;
  }
  if (mask_key) {
    std::memcpy(h + n, mask_key->data(), 4);
    n += 4;
    maskChain(payload, *mask_key);
  }
  out.append(h, n);
  out.moveFrom(payload);
  return true;
}

bool encodeWsClose(uint16_t code, std::string_view reason, const std::array<uint8_t, 4>* mask_key,
                   BufferChain& out) {
  BufferChain body;
  if (code != 0) {
    if (!isValidWsCloseCode(code) || reason.size() > kWsMaxControlPayload - 2 ||
        !isValidUtf8(reinterpret_cast<const uint8_t*>(reason.data()), reason.size())) {
      return false;
    }
    uint8_t c[2];
    storeBe16(c, code);
    body.append(c, 2);
    body.append(reason);
  } else if (!reason.empty()) {
    return false;  // a reason needs a code in front of it
  }
  return encodeWsFrame(WsOpcode::kClose, true, body, mask_key, out);
}

Error WsFrameDecoder::fail(Errc code, std::string message, uint16_t close_code) {
  failed_ = Error(code, "websocket: " + std::move(message));
  close_code_ = close_code;
  return *failed_;
}

Result<bool> WsFrameDecoder::readHeader(BufferChain& in) {
  // Each rule is checked as soon as its bytes are in, so a hostile header
  // is refused at the same byte however the input is cut.
  if (in.size() < 2) return false;
  const uint8_t b0 = in.byteAt(0);
  const uint8_t b1 = in.byteAt(1);
  Header h;
  h.fin = (b0 & 0x80) != 0;
  const uint8_t code = b0 & 0x0f;
  if (b0 & 0x70) {
    return fail(Errc::kUnsupported, "reserved bits set without an extension",
                kWsCloseProtocolError);
  }
  if (!knownOpcode(code)) {
    return fail(Errc::kUnsupported, "unknown opcode " + std::to_string(code),
                kWsCloseProtocolError);
  }
  h.opcode = static_cast<WsOpcode>(code);
  h.masked = (b1 & 0x80) != 0;
  const uint8_t len7 = b1 & 0x7f;
  const bool control = isWsControl(h.opcode);
  if (control && !h.fin) {
    return fail(Errc::kMalformed, "fragmented control frame", kWsCloseProtocolError);
  }
  if (control && len7 > kWsMaxControlPayload) {
    return fail(Errc::kMalformed, "control frame longer than 125 bytes", kWsCloseProtocolError);
  }
  if (options_.role == WsRole::kServer && !h.masked) {
    return fail(Errc::kMalformed, "unmasked frame from a client", kWsCloseProtocolError);
  }
  if (options_.role == WsRole::kClient && h.masked) {
    return fail(Errc::kMalformed, "masked frame from a server", kWsCloseProtocolError);
  }
  if (!control) {
    if (h.opcode == WsOpcode::kContinuation && !in_message_) {
      return fail(Errc::kMalformed, "continuation frame without a message", kWsCloseProtocolError);
    }
    if (h.opcode != WsOpcode::kContinuation && in_message_) {
      return fail(Errc::kMalformed, "new data frame inside a fragmented message",
                  kWsCloseProtocolError);
    }
  }
  const size_t ext = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
  if (in.size() < 2 + ext) return false;
  // Lengths in a longer form than needed are accepted: 5.2 asks senders
  // for the shortest, but a receiver gains nothing by refusing the rest.
  if (len7 == 126) {
    uint8_t b[2];
    in.copyOut(2, b, 2);
    h.length = loadBe16(b);
  } else if (len7 == 127) {
    uint8_t b[8];
    in.copyOut(2, b, 8);
    if (b[0] & 0x80) {
      return fail(Errc::kLimit, "64-bit length with the high bit set", kWsCloseProtocolError);
    }
    h.length = (uint64_t{loadBe32(b)} << 32) | loadBe32(b + 4);
  } else {
    h.length = len7;
  }
  if (!control) {
    const uint64_t so_far = h.opcode == WsOpcode::kContinuation ? message_size_ : 0;
    if (h.length > options_.max_message || so_far + h.length > options_.max_message) {
      return fail(Errc::kLimit,
                  "message over " + std::to_string(options_.max_message) + " bytes (frame of " +
                      std::to_string(h.length) + ")",
                  kWsCloseTooBig);
    }
  }
  const size_t need = 2 + ext + (h.masked ? 4 : 0);
  if (in.size() < need) return false;
  if (h.masked) in.copyOut(2 + ext, h.key.data(), 4);
  in.drain(need);
  header_ = h;
  return true;
}

Result<std::optional<WsFrame>> WsFrameDecoder::decode(BufferChain& in) {
  if (failed_) return *failed_;
  for (;;) {
    if (!header_) {
      Result<bool> r = readHeader(in);
      if (!r.ok()) return r.error();
      if (!r.value()) return std::optional<WsFrame>();
    }
    // header_->length <= max_message (a size_t) or <= 125 here.
    const auto len = static_cast<size_t>(header_->length);
    if (in.size() < len) return std::optional<WsFrame>();
    BufferChain payload;
    if (len > 0 && in.slice(0).size() > len) {
      // Part of one read buffer (a small frame): copy just its bytes, so
      // a ping does not hold a 16 KiB slice.
      payload.append(Slice::copyOf(in.slice(0).data(), len));
      in.drain(len);
    } else {
      payload.moveFrom(in, len);  // whole slices move, uncopied
    }
    if (header_->masked) maskChain(payload, header_->key);
    Result<std::optional<WsFrame>> r = finishFrame(payload);
    header_.reset();
    // nullopt here: a fragment went into the reassembly buffer; go on.
    if (!r.ok() || r.value().has_value()) return r;
  }
}

Result<std::optional<WsFrame>> WsFrameDecoder::finishFrame(BufferChain& payload) {
  const Header& h = *header_;
  WsFrame f;
  f.opcode = h.opcode;
  f.fin = h.fin;
  if (isWsControl(h.opcode)) {
    f.message_opcode = h.opcode;
    if (h.opcode == WsOpcode::kClose && !payload.empty()) {
      if (payload.size() < 2) {
        return fail(Errc::kMalformed, "close frame with a 1-byte body", kWsCloseProtocolError);
      }
      uint8_t body[kWsMaxControlPayload];
      const size_t n = payload.copyOut(0, body, payload.size());
      f.close_code = loadBe16(body);
      if (!isValidWsCloseCode(f.close_code)) {
        return fail(Errc::kMalformed, "close code " + std::to_string(f.close_code) + " not allowed",
                    kWsCloseProtocolError);
      }
      if (!isValidUtf8(body + 2, n - 2)) {
        return fail(Errc::kMalformed, "close reason is not UTF-8", kWsCloseInvalidPayload);
      }
      f.close_reason.assign(reinterpret_cast<const char*>(body + 2), n - 2);
    }
    f.payload = std::move(payload);
    return std::optional<WsFrame>(std::move(f));
  }
  if (h.opcode != WsOpcode::kContinuation) {
    message_opcode_ = h.opcode;
    message_size_ = 0;
  }
  message_size_ += payload.size();
  in_message_ = !h.fin;
  f.message_opcode = message_opcode_;
  if (options_.reassemble) {
    message_.moveFrom(payload);
    if (!h.fin) return std::optional<WsFrame>();
    f.opcode = message_opcode_;
    f.payload = std::move(message_);
    message_.clear();
  } else {
    f.payload = std::move(payload);
  }
  return std::optional<WsFrame>(std::move(f));
}

// --- HTTP/1.1 heads --------------------------------------------------------

namespace {

bool isTokenChar(char c) noexcept {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::strchr("!#$%&'*+-.^_`|~", c) != nullptr && c != '\0';
}

bool isToken(std::string_view s) noexcept {
  if (s.empty()) return false;
  for (char c : s) {
    if (!isTokenChar(c)) return false;
  }
  return true;
}

// A header value: VCHAR, SP, HT and obs-text; no other control byte.
bool isFieldValueChar(char c) noexcept {
  const auto u = static_cast<unsigned char>(c);
  return u == '\t' || (u >= 0x20 && u != 0x7f);
}

char lower(char c) noexcept {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

bool equalsNoCase(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// A comma-separated list (Connection, Upgrade) holds `token`. An Upgrade
// entry may carry a version ("websocket/13"); only the name counts.
bool listHasToken(std::string_view list, std::string_view token) noexcept {
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string_view item = trim(list.substr(0, comma));
    item = item.substr(0, item.find('/'));
    if (equalsNoCase(item, token)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

// Some clients split a list over several header lines ("Connection:
// keep-alive" then "Connection: Upgrade"); any of them may hold the token.
bool headersHaveToken(const WsHeaders& hs, std::string_view name, std::string_view token) {
  for (const auto& [k, v] : hs) {
    if (equalsNoCase(k, name) && listHasToken(v, token)) return true;
  }
  return false;
}

struct HttpHead {
  std::string start_line;
  WsHeaders headers;
  size_t consumed = 0;
};

size_t countHeader(const WsHeaders& hs, std::string_view name) {
  size_t n = 0;
  for (const auto& [k, v] : hs) n += equalsNoCase(k, name) ? 1 : 0;
  return n;
}

const std::string* findHeader(const WsHeaders& hs, std::string_view name) {
  for (const auto& [k, v] : hs) {
    if (equalsNoCase(k, name)) return &v;
  }
  return nullptr;
}

// Reads an HTTP/1.x head of at most kWsMaxHandshakeSize bytes. Complete
// lines are checked as they arrive (CRLF only, no folding, token names),
// so binary or TLS bytes are refused at once instead of after 8 KiB. The
// start line is only checked for bytes; its meaning is the caller's.
DecodeStatus readHead(const BufferChain& in, HttpHead& head, std::string& why) {
  const size_t avail = in.size() < kWsMaxHandshakeSize ? in.size() : kWsMaxHandshakeSize;
  std::string text(avail, '\0');
  in.copyOut(0, text.data(), avail);
  size_t pos = 0;
  bool first = true;
  for (;;) {
    size_t cr = text.find('\r', pos);
    size_t lf = text.find('\n', pos);
    if (lf < cr) {
      why = "bare LF in the HTTP head";
      return DecodeStatus::kInvalid;
    }
    if (cr == std::string::npos || cr + 1 >= text.size()) {
      // An incomplete line: refuse control bytes now, else wait for more.
      const size_t end = cr == std::string::npos ? text.size() : cr;
      for (size_t i = pos; i < end; ++i) {
        if (!isFieldValueChar(text[i])) {
          why = "control byte in the HTTP head";
          return DecodeStatus::kInvalid;
        }
      }
      if (in.size() >= kWsMaxHandshakeSize) {
        why = "HTTP head over " + std::to_string(kWsMaxHandshakeSize) + " bytes";
        return DecodeStatus::kInvalid;
      }
      return DecodeStatus::kNeedMore;
    }
    if (text[cr + 1] != '\n') {
      why = "bare CR in the HTTP head";
      return DecodeStatus::kInvalid;
    }
    std::string_view line(text.data() + pos, cr - pos);
    pos = cr + 2;
    for (char c : line) {
      if (!isFieldValueChar(c)) {
        why = "control byte in the HTTP head";
        return DecodeStatus::kInvalid;
      }
    }
    if (first) {
      if (line.empty()) {
        why = "empty HTTP start line";
        return DecodeStatus::kInvalid;
      }
      head.start_line = line;
      first = false;
      continue;
    }
    if (line.empty()) {
      head.consumed = pos;
      return DecodeStatus::kDone;
    }
    if (line.front() == ' ' || line.front() == '\t') {
      why = "folded HTTP header line";
      return DecodeStatus::kInvalid;
    }
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos || !isToken(line.substr(0, colon))) {
      why = "bad HTTP header line";
      return DecodeStatus::kInvalid;
    }
    head.headers.emplace_back(std::string(line.substr(0, colon)),
                              std::string(trim(line.substr(colon + 1))));
  }
}

bool isVchars(std::string_view s) noexcept {
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) return false;
  }
  return !s.empty();
}

bool isFieldValue(std::string_view s) noexcept {
  for (char c : s) {
    if (!isFieldValueChar(c)) return false;
  }
  return true;
}

constexpr std::string_view kOurRequestHeaders[] = {"host",
                                                   "upgrade",
                                                   "connection",
                                                   "sec-websocket-key",
                                                   "sec-websocket-version",
                                                   "sec-websocket-protocol"};

}  // namespace

// --- Handshake -------------------------------------------------------------

const std::string* WsRequest::header(std::string_view name) const {
  return findHeader(headers, name);
}

Status encodeWsRequest(const WsClientRequest& req, BufferChain& out) {
  auto bad = [](std::string why) { return Error(Errc::kInvalidArgument, "websocket: " + why); };
  if (req.path.empty() || req.path.front() != '/' || !isVchars(req.path)) {
    return bad("path must start with '/' and hold no space or control byte");
  }
  if (!isVchars(req.host)) return bad("bad Host value");
  if (req.early_data.size() > kWsMaxEarlyData) {
    return bad("early data over " + std::to_string(kWsMaxEarlyData) + " bytes");
  }
  std::string s = "GET " + req.path + " HTTP/1.1\r\nHost: " + req.host +
                  "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " +
                  base64Encode(req.key.data(), req.key.size()) +
                  "\r\nSec-WebSocket-Version: 13\r\n";
  if (!req.early_data.empty()) {
    s += "Sec-WebSocket-Protocol: " +
         base64Encode(req.early_data.data(), req.early_data.size(), Base64Alphabet::kUrl) + "\r\n";
  }
  for (const auto& [name, value] : req.extra_headers) {
    if (!isToken(name) || !isFieldValue(value)) return bad("bad header " + name);
    for (std::string_view ours : kOurRequestHeaders) {
      if (equalsNoCase(name, ours)) return bad("header " + name + " is written by the codec");
    }
    s += name + ": " + value + "\r\n";
  }
  s += "\r\n";
  if (s.size() > kWsMaxHandshakeSize) {
    return bad("request over " + std::to_string(kWsMaxHandshakeSize) + " bytes");
  }
  out.append(s);
  return Status::okStatus();
}

WsRequestParseResult parseWsRequest(const BufferChain& in) {
  WsRequestParseResult r;
  auto finish = [&r](WsRequestStatus s, std::string why) {
    r.status = s;
    r.error = std::move(why);
    return std::move(r);
  };
  HttpHead head;
  std::string why;
  DecodeStatus s = readHead(in, head, why);
  if (s == DecodeStatus::kInvalid) return finish(WsRequestStatus::kInvalid, why);
  // The request line can be judged before the headers are all in.
  std::string_view line = head.start_line;
  if (line.empty()) return r;  // not a whole line yet
  const size_t sp1 = line.find(' ');
  const size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) {
    return finish(WsRequestStatus::kInvalid, "bad HTTP request line");
  }
  std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);
  if (!isToken(method) || !isVchars(target) || version.size() != 8 ||
      version.substr(0, 5) != "HTTP/" || version[5] < '0' || version[5] > '9' ||
      version[6] != '.' || version[7] < '0' || version[7] > '9') {
    return finish(WsRequestStatus::kInvalid, "bad HTTP request line");
  }
  if (version != "HTTP/1.1" && version != "HTTP/1.0") {
    return finish(WsRequestStatus::kInvalid, "HTTP version " + std::string(version));
  }
  if (s == DecodeStatus::kNeedMore) return r;
  r.consumed = head.consumed;
  if (method != "GET" || version != "HTTP/1.1" ||
      !headersHaveToken(head.headers, "upgrade", "websocket")) {
    return finish(WsRequestStatus::kNotWebSocket,
                  std::string(method) + " " + std::string(target) + " is not a WebSocket upgrade");
  }
  if (!headersHaveToken(head.headers, "connection", "upgrade")) {
    return finish(WsRequestStatus::kInvalid, "Connection header without 'upgrade'");
  }
  if (target.front() != '/') {
    return finish(WsRequestStatus::kInvalid, "request target is not a path");
  }
  if (countHeader(head.headers, "host") != 1) {
    return finish(WsRequestStatus::kInvalid, "not exactly one Host header");
  }
  const std::string* ver = findHeader(head.headers, "sec-websocket-version");
  if (countHeader(head.headers, "sec-websocket-version") != 1 || *ver != "13") {
    return finish(WsRequestStatus::kInvalid, "Sec-WebSocket-Version is not 13");
  }
  const std::string* key = findHeader(head.headers, "sec-websocket-key");
  std::vector<uint8_t> key_bytes;
  if (countHeader(head.headers, "sec-websocket-key") != 1 || !base64Decode(*key, key_bytes) ||
      key_bytes.size() != 16) {
    return finish(WsRequestStatus::kInvalid, "Sec-WebSocket-Key is not base64 of 16 bytes");
  }
  WsRequest& q = r.request;
  // Early data only when the header is one value that decodes strictly; a
  // real subprotocol list ("chat, superchat") has commas and spaces and
  // is left alone. A single word that happens to decode is taken as early
  // data, as v2ray and Xray do; the VLESS layer then refuses it.
  const std::string* proto = findHeader(head.headers, "sec-websocket-protocol");
  std::vector<uint8_t> early;
  if (proto && countHeader(head.headers, "sec-websocket-protocol") == 1 && !proto->empty() &&
      base64Decode(*proto, early, Base64Alphabet::kUrl)) {
    q.early_data = std::move(early);
    q.protocol = *proto;
  }
  q.path = target;
  q.host = *findHeader(head.headers, "host");
  q.key = *key;
  q.headers = std::move(head.headers);
  r.status = WsRequestStatus::kDone;
  return r;
}

std::string wsAcceptFor(std::string_view key) {
  std::string s(key);
  s += kWsGuid;
  Sha1Digest d = sha1(s);
  return base64Encode(d.data(), d.size());
}

void encodeWsResponse(std::string_view key, std::string_view protocol, BufferChain& out) {
  std::string s =
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Accept: " +
      wsAcceptFor(key) + "\r\n";
  if (!protocol.empty()) s += "Sec-WebSocket-Protocol: " + std::string(protocol) + "\r\n";
  s += "\r\n";
  out.append(s);
}

WsResponseParseResult parseWsResponse(const BufferChain& in, std::string_view key,
                                      std::string_view protocol) {
  WsResponseParseResult r;
  auto fail = [&r](std::string why) {
    r.status = DecodeStatus::kInvalid;
    r.error = "websocket: " + std::move(why);
    return std::move(r);
  };
  HttpHead head;
  std::string why;
  DecodeStatus s = readHead(in, head, why);
  if (s == DecodeStatus::kInvalid) return fail(why);
  std::string_view line = head.start_line;
  if (line.empty()) return r;
  // "HTTP/1.1 101 Switching Protocols"; the reason phrase may be empty.
  if (line.size() < 12 || line.substr(0, 9) != "HTTP/1.1 " ||
      (line.size() > 12 && line[12] != ' ')) {
    return fail("bad HTTP status line");
  }
  int code = 0;
  for (size_t i = 9; i < 12; ++i) {
    if (line[i] < '0' || line[i] > '9') return fail("bad HTTP status line");
    code = code * 10 + (line[i] - '0');
  }
  r.status_code = code;
  if (code != 101) return fail("HTTP status " + std::to_string(code) + " instead of 101");
  if (s == DecodeStatus::kNeedMore) return r;
  if (!headersHaveToken(head.headers, "upgrade", "websocket")) {
    return fail("101 without Upgrade: websocket");
  }
  if (!headersHaveToken(head.headers, "connection", "upgrade")) {
    return fail("101 without Connection: upgrade");
  }
  const std::string* accept = findHeader(head.headers, "sec-websocket-accept");
  if (!accept || countHeader(head.headers, "sec-websocket-accept") != 1 ||
      *accept != wsAcceptFor(key)) {
    return fail("wrong Sec-WebSocket-Accept");
  }
  if (findHeader(head.headers, "sec-websocket-extensions")) {
    return fail("server chose an extension we did not offer");
  }
  // The echo of early data is optional (some servers omit it); anything
  // else is a protocol we never asked for.
  const std::string* proto = findHeader(head.headers, "sec-websocket-protocol");
  if (proto && (protocol.empty() || *proto != protocol ||
                countHeader(head.headers, "sec-websocket-protocol") != 1)) {
    return fail("server chose a protocol we did not offer");
  }
  r.protocol_echoed = proto != nullptr;
  r.status = DecodeStatus::kDone;
  r.consumed = head.consumed;
  return r;
}

}  // namespace vt::codec
