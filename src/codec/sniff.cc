#include "codec/sniff.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cstring>

#include "core/bytes.h"

namespace vt::codec {
namespace {

constexpr size_t kTlsRecordHeader = 5;
constexpr size_t kTlsMaxRecord = 16 * 1024;  // 2^14, RFC 8446 5.1
constexpr size_t kHandshakeHeader = 4;
// The smallest ClientHello body: version, random, three empty-ish vectors
// (session id 0, one cipher suite, one compression method).
constexpr size_t kMinClientHello = 2 + 32 + 1 + 2 + 2 + 1 + 1;

uint16_t u16(const uint8_t* p) noexcept {
  return static_cast<uint16_t>((p[0] << 8) | p[1]);
}

SniffResult none(const char* protocol = nullptr) {
  return {SniffStatus::kNone, {}, protocol};
}
SniffResult needMore(const char* protocol) {
  return {SniffStatus::kNeedMore, {}, protocol};
}

SniffResult foundOrNone(std::optional<std::string> host, const char* protocol) {
  if (!host) return none(protocol);
  return {SniffStatus::kFound, std::move(*host), protocol};
}

// A bounds-checked cursor over one vector of the ClientHello: every take
// fails (and the whole read with it) rather than step past the end.
struct Reader {
  const uint8_t* p;
  size_t n;
  size_t pos = 0;

  size_t left() const noexcept { return n - pos; }
  bool skip(size_t k) noexcept {
    if (left() < k) return false;
    pos += k;
    return true;
  }
  bool u8(size_t& v) noexcept {
    if (left() < 1) return false;
    v = p[pos++];
    return true;
  }
  bool u16v(size_t& v) noexcept {
    if (left() < 2) return false;
    v = u16(p + pos);
    pos += 2;
    return true;
  }
};

// The host_name of a complete ClientHello body (after the handshake
// header). Any length that runs past its enclosing vector is kNone: the
// bytes are all here, so a lie cannot be fixed by waiting.
SniffResult readClientHello(const uint8_t* p, size_t n) {
  constexpr const char* kTls = "tls";
  Reader r{p, n};
  size_t len = 0;
  if (!r.skip(2 + 32)) return none(kTls);                         // legacy_version, random
  if (!r.u8(len) || len > 32 || !r.skip(len)) return none(kTls);  // session id
  if (!r.u16v(len) || len < 2 || len % 2 != 0 || !r.skip(len)) return none(kTls);  // suites
  if (!r.u8(len) || len < 1 || !r.skip(len)) return none(kTls);                    // compression
  size_t extLen = 0;
  if (!r.u16v(extLen) || extLen > r.left()) return none(kTls);  // no extensions: no SNI
  Reader ext{p + r.pos, extLen};
  while (ext.left() > 0) {
    size_t type = 0, dataLen = 0;
    if (!ext.u16v(type) || !ext.u16v(dataLen) || dataLen > ext.left()) return none(kTls);
    if (type != 0) {
      ext.skip(dataLen);
      continue;
    }
    // server_name: the list must fill the extension exactly; a list that
    // says otherwise is a lie we do not guess around.
    Reader sn{ext.p + ext.pos, dataLen};
    size_t listLen = 0;
    if (!sn.u16v(listLen) || listLen != sn.left() || listLen == 0) return none(kTls);
    while (sn.left() > 0) {
      size_t nameType = 0, nameLen = 0;
      if (!sn.u8(nameType) || !sn.u16v(nameLen) || nameLen > sn.left()) return none(kTls);
      if (nameType == 0) {
        std::string_view name(reinterpret_cast<const char*>(sn.p + sn.pos), nameLen);
        return foundOrNone(sniffNormalizeHost(name), kTls);
      }
      sn.skip(nameLen);
    }
    return none(kTls);  // server_name without a host_name
  }
  return none(kTls);
}

SniffResult sniffTls(const uint8_t* p, size_t n) {
  constexpr const char* kTls = "tls";
  // Handshake bytes: in place while they come from the first record (the
  // common case), joined into `joined` once a second record is needed.
  const uint8_t* hs = nullptr;
  size_t hsSize = 0;
  std::string joined;
  size_t pos = 0;
  for (;;) {
    const size_t have = n - pos;
    // Record header, checked byte by byte so that a wrong one is refused
    // as soon as it shows.
    if (have >= 1 && p[pos] != 0x16) return none(kTls);
    if (have >= 2 && p[pos + 1] != 0x03) return none(kTls);
    if (have < kTlsRecordHeader) return needMore(kTls);
    const size_t recLen = u16(p + pos + 3);
    // Zero-length handshake fragments are forbidden (RFC 8446 5.1).
    if (recLen == 0 || recLen > kTlsMaxRecord) return none(kTls);
    const size_t avail = std::min(recLen, have - kTlsRecordHeader);
    const uint8_t* frag = p + pos + kTlsRecordHeader;
    if (pos == 0) {
      hs = frag;
      hsSize = avail;
    } else {
      if (joined.empty()) joined.assign(reinterpret_cast<const char*>(hs), hsSize);
      joined.append(reinterpret_cast<const char*>(frag), avail);
      hs = reinterpret_cast<const uint8_t*>(joined.data());
      hsSize = joined.size();
    }
    if (hsSize >= 1 && hs[0] != 1) return none(kTls);  // not a ClientHello
    if (hsSize >= kHandshakeHeader) {
      const size_t bodyLen = size_t{hs[1]} << 16 | size_t{hs[2]} << 8 | hs[3];
      // A ClientHello longer than the sniff window could never complete.
      if (bodyLen < kMinClientHello ||
          bodyLen + kHandshakeHeader > kMaxSniffBytes - kTlsRecordHeader) {
        return none(kTls);
      }
      if (hsSize >= kHandshakeHeader + bodyLen) {
        return readClientHello(hs + kHandshakeHeader, bodyLen);
      }
    }
    if (avail < recLen) return needMore(kTls);  // this record is still arriving
    pos += kTlsRecordHeader + recLen;           // the next record carries more of it
  }
}

// ---- HTTP/1.x

constexpr std::array<std::string_view, 9> kMethods = {
    "GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH", "CONNECT", "TRACE"};

bool isDigits(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool iequals(std::string_view a, std::string_view b) { return asciiIEquals(a, b); }

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// "host", "host:port", "[v6]" or "[v6]:port" (plus "user@" when
// `userinfo`, as in an absolute URI) -> the normalized host.
std::optional<std::string> hostOfAuthority(std::string_view a, bool userinfo) {
  if (userinfo) {
    size_t at = a.rfind('@');
    if (at != std::string_view::npos) a.remove_prefix(at + 1);
  }
  std::string_view host, rest;
  if (!a.empty() && a.front() == '[') {
    size_t close = a.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    host = a.substr(1, close - 1);
    rest = a.substr(close + 1);
    // Brackets hold only an IPv6 literal (RFC 3986 3.2.2).
    if (host.find(':') == std::string_view::npos) return std::nullopt;
  } else {
    size_t colon = a.find(':');
    host = a.substr(0, colon);
    if (colon != std::string_view::npos) rest = a.substr(colon);
  }
  if (!rest.empty() && (rest.front() != ':' || !isDigits(rest.substr(1)))) return std::nullopt;
  return sniffNormalizeHost(host);
}

// Bytes no request line or header may hold (RFC 9110 5.5: CTLs other
// than HTAB; CR and LF only as line ends): refusing them early keeps a
// binary protocol that happens to start with "GET " from holding the
// flow until the cap.
bool hasControl(const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    uint8_t c = p[i];
    if ((c < 0x20 && c != '\t' && c != '\r' && c != '\n') || c == 0x7f) return true;
  }
  return false;
}

enum class Line { kOk, kNeedMore, kBad };

// One line [pos, end of line) without its CR LF (a bare LF is tolerated,
// RFC 9112 2.2). Only the bytes up to the line end are looked at, so what
// follows the header block (a body) never changes the verdict.
Line nextLine(const uint8_t* p, size_t n, size_t& pos, std::string_view& line) {
  const void* lf = std::memchr(p + pos, '\n', n - pos);
  size_t end = lf == nullptr ? n : static_cast<size_t>(static_cast<const uint8_t*>(lf) - p);
  if (hasControl(p + pos, end - pos)) return Line::kBad;
  if (lf == nullptr) return Line::kNeedMore;
  line = std::string_view(reinterpret_cast<const char*>(p + pos), end - pos);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  pos = end + 1;
  return Line::kOk;
}

SniffResult sniffHttp(const uint8_t* p, size_t n) {
  constexpr const char* kHttp = "http";
  // The method and its space, compared as far as the bytes go: the first
  // byte that fits no method ends it.
  std::string_view method;
  bool partial = false;
  for (std::string_view m : kMethods) {
    const size_t k = std::min(n, m.size() + 1);
    bool match = true;
    for (size_t i = 0; i < k && match; ++i) match = p[i] == (i < m.size() ? m[i] : ' ');
    if (!match) continue;
    if (n > m.size()) {
      method = m;
      break;
    }
    partial = true;
  }
  if (method.empty()) return partial ? needMore(nullptr) : none();

  size_t pos = 0;
  std::string_view line;
  if (Line l = nextLine(p, n, pos, line); l != Line::kOk) {
    return l == Line::kNeedMore ? needMore(kHttp) : none(kHttp);
  }
  // METHOD SP request-target SP HTTP-version
  std::string_view rest = line.substr(method.size() + 1);
  size_t sp = rest.find(' ');
  if (sp == std::string_view::npos) return none(kHttp);
  std::string_view target = rest.substr(0, sp);
  std::string_view version = rest.substr(sp + 1);
  if (target.empty() || version.size() != 8 || version.substr(0, 7) != "HTTP/1." ||
      !isDigits(version.substr(7))) {
    return none(kHttp);
  }
  if (method == "CONNECT") return foundOrNone(hostOfAuthority(target, false), kHttp);
  // absolute-form: scheme "://" authority [path]; its authority wins over
  // Host (RFC 9112 3.2.2), and proxies are sent exactly this.
  size_t sep = target.find("://");
  if (sep != std::string_view::npos && sep > 0 && target.front() != '/') {
    std::string_view scheme = target.substr(0, sep);
    bool schemeOk = std::all_of(scheme.begin(), scheme.end(), [](char c) {
      return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '+' || c == '-' || c == '.';
    });
    if (!schemeOk) return none(kHttp);
    std::string_view authority = target.substr(sep + 3);
    authority = authority.substr(0, authority.find_first_of("/?#"));
    return foundOrNone(hostOfAuthority(authority, true), kHttp);
  }
  for (;;) {
    if (Line l = nextLine(p, n, pos, line); l != Line::kOk) {
      return l == Line::kNeedMore ? needMore(kHttp) : none(kHttp);
    }
    if (line.empty()) return none(kHttp);                       // end of the header block: no Host
    if (line.front() == ' ' || line.front() == '\t') continue;  // obs-fold continuation
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) return none(kHttp);
    std::string_view name = line.substr(0, colon);
    // No whitespace between a field name and its colon (RFC 9112 5.1).
    if (name.empty() || name.find_first_of(" \t") != std::string_view::npos) return none(kHttp);
    if (iequals(name, "host")) {
      return foundOrNone(hostOfAuthority(trim(line.substr(colon + 1)), false), kHttp);
    }
  }
}

}  // namespace

std::optional<std::string> sniffNormalizeHost(std::string_view name) {
  if (name.find(':') != std::string_view::npos) {
    // An IPv6 literal: let inet_pton judge it (no zone ids, no brackets).
    char buf[64];
    if (name.size() >= sizeof buf) return std::nullopt;
    std::memcpy(buf, name.data(), name.size());
    buf[name.size()] = '\0';
    unsigned char addr[16];
    if (inet_pton(AF_INET6, buf, addr) != 1) return std::nullopt;
  } else {
    // An absolute name's one trailing dot names the same host.
    if (!name.empty() && name.back() == '.') name.remove_suffix(1);
    if (name.empty() || name.size() > 253) return std::nullopt;
    size_t label = 0;
    for (char c : name) {
      if (c == '.') {
        if (label == 0) return std::nullopt;  // empty label: "..", ".x"
        label = 0;
        continue;
      }
      bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '-' || c == '_';
      if (!ok || ++label > 63) return std::nullopt;
    }
    if (label == 0) return std::nullopt;  // "x.." ended in an empty label
  }
  std::string out(name);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

SniffResult sniffHost(const uint8_t* p, size_t n) {
  n = std::min(n, kMaxSniffBytes);
  if (n == 0) return needMore(nullptr);
  SniffResult r;
  if (p[0] == 0x16) {
    r = sniffTls(p, n);
  } else if (p[0] >= 'A' && p[0] <= 'Z') {
    r = sniffHttp(p, n);
  } else {
    return none();
  }
  // A verdict still pending at the cap will not come.
  if (r.status == SniffStatus::kNeedMore && n >= kMaxSniffBytes) r.status = SniffStatus::kNone;
  return r;
}

}  // namespace vt::codec
