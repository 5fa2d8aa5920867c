// A flow sniffer: the host name an app means, read from the first bytes it
// sends on a TCP flow, for routing rules by domain. Pure: no I/O, no
// clocks; every input byte is treated as hostile and every read is
// bounds-checked. Allocates only the returned name (and, for a ClientHello
// split over several records, one buffer to join it).
//
// TLS (RFC 8446 5.1, 4.1.2; RFC 6066 3):
//   record:      TYPE(1)=0x16 | VERSION(2)=0x03xx | LENGTH(2, 1..2^14) | fragment
//   handshake:   TYPE(1)=1 | LENGTH(3) | ClientHello
//   ClientHello: VERSION(2) | RANDOM(32) | SID_LEN(1, <=32) SID |
//                CS_LEN(2, even, >=2) CS | CM_LEN(1, >=1) CM |
//                EXT_LEN(2) { TYPE(2) LEN(2) DATA }*
//   server_name (type 0): LIST_LEN(2) { NAME_TYPE(1) LEN(2) NAME }*,
//                host_name is NAME_TYPE 0.
//   A ClientHello fragmented over several handshake records (some clients
//   and anti-censorship tools cut it) is joined before it is read.
// HTTP/1.x (RFC 9112 3, 3.2): METHOD SP target SP HTTP/1.x CRLF, headers,
//   CRLF. The name comes from the target for CONNECT (authority-form) and
//   for absolute-form ("http://host:port/..."), which RFC 9112 3.2.2 says
//   wins over Host; otherwise from the first Host header.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace vt::codec {

// How much of a flow's start the caller should hold for sniffing: one
// full-size TLS plaintext record (2^14 bytes, the most a record may carry,
// RFC 8446 5.1) plus its 5-byte header. A ClientHello in one record always
// fits (real ones, even with post-quantum key shares, are ~2 KB), and an
// HTTP request whose header block is still open after 16 KiB is not one we
// would want to wait on anyway. Bytes past the cap are ignored; a verdict
// still pending at the cap is kNone, so the caller never waits forever.
inline constexpr size_t kMaxSniffBytes = 16 * 1024 + 5;

enum class SniffStatus {
  kNeedMore,  // could still be TLS/HTTP with a name: send more bytes
  kFound,     // `host` is the name
  kNone,      // not TLS/HTTP, malformed, no name, or a name we refuse
};

struct SniffResult {
  SniffStatus status = SniffStatus::kNone;
  // Lowercase; 1..253 characters; a DNS-like name of letters, digits,
  // '-', '_' and '.' (no empty labels, labels <= 63, no trailing dot), an
  // IPv4 literal, or an IPv6 literal without brackets. Empty unless kFound.
  std::string host;
  const char* protocol = nullptr;  // "tls" or "http" once known, else null
};

// Reads p[0, min(n, kMaxSniffBytes)): the contiguous bytes of the flow so
// far. Deterministic and monotonic in n: once a prefix gives kFound or
// kNone, every longer input with that prefix gives the same.
SniffResult sniffHost(const uint8_t* p, size_t n);

// The name check and normalization sniffHost applies (see SniffResult::host);
// nullopt for anything else. `name` is without port or brackets. Exposed
// for tests and the fuzz target.
std::optional<std::string> sniffNormalizeHost(std::string_view name);

}  // namespace vt::codec
