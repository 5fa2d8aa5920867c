// VLESS request and response headers, v0 (v2ray/Xray) and v1 (ours, see
// docs/protocol.md). Pure: no I/O, no clocks.
//
// v0 request:
//   +-----+----------+-----+------------+-----+----------------------+---------
//   | 0x00| UUID(16) | M(1)| ADDONS(M)  | CMD | [PORT ATYP ADDR]     | payload
//   +-----+----------+-----+------------+-----+----------------------+---------
//   ADDONS is protobuf; kept raw and otherwise ignored. No address for CMD 3.
// v0 response:  0x00 | N(1) | ADDONS(N) | payload
//
// v1 request:
//   +-----+----------+-------+-----+----------------------+---------
//   | 0x01| UUID(16) | ADDON | CMD | [PORT ATYP ADDR]     | payload
//   +-----+----------+-------+-----+----------------------+---------
//   ADDON: 0x00 none | 0x01 udp_multi | 0x02 COUNT(1) {TYPE(1) LEN(1) VALUE}
//   TLV types: 0x01 udp_multi(0) 0x03 udp_session(8) 0x05 padding(0..255)
//              0x06 want_ip(0) 0x07 reuse(0); TYPE & 0x80 = critical.
//   CMD: 1 TCP, 2 UDP, 3 Mux (placeholder address), 5 IP (no address).
// v1 has no response header (see want_ip prefix for the one exception).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "codec/address.h"

namespace vt::codec {

using Uuid = std::array<uint8_t, 16>;
// Parses "a684455c-b14f-11ea-bf0d-42010aaa0003" (dashes optional).
bool parseUuid(std::string_view text, Uuid& out);
std::string uuidToString(const Uuid& u);

enum class Command : uint8_t { kTcp = 1, kUdp = 2, kMux = 3, kIp = 5 };

// ADDON first byte and TLV types of v1.
inline constexpr uint8_t kAddonNone = 0x00;
inline constexpr uint8_t kAddonUdpMulti = 0x01;
inline constexpr uint8_t kAddonTlv = 0x02;
inline constexpr uint8_t kTlvUdpMulti = 0x01;
inline constexpr uint8_t kTlvUdpSession = 0x03;
inline constexpr uint8_t kTlvPadding = 0x05;
inline constexpr uint8_t kTlvWantIp = 0x06;
inline constexpr uint8_t kTlvReuse = 0x07;
inline constexpr uint8_t kTlvCritical = 0x80;

// Our cap on the TLV list after COUNT (all TYPE LEN VALUE bytes). Our own
// encoder writes at most 273; the rest is room for a peer's unknown
// non-critical TLVs. A longer list is kInvalid.
inline constexpr size_t kMaxAddonTlvBytes = 1024;
// No valid request header is longer than this (v1 with the longest TLV list
// and a 255-byte domain; v0 tops out at 533). A decoder never answers
// kNeedMore for kMaxRequestHeader bytes or more, so a server may treat a
// longer wait as malformed.
inline constexpr size_t kMaxRequestHeader = 1 + 16 + 1 + 1 + kMaxAddonTlvBytes + 1 + 3 + 255;
// The v1 Mux placeholder target: v1.mux.cool:1.
inline constexpr std::string_view kMuxPlaceholderHost = "v1.mux.cool";
inline constexpr uint16_t kMuxPlaceholderPort = 1;

struct Request {
  uint8_t version = 1;  // 0 or 1
  Uuid uuid{};
  Command command = Command::kTcp;
  // Absent for v0 Mux and v1 IP; for v1 Mux the placeholder v1.mux.cool:1.
  std::optional<Address> target;

  // v0 only: the raw protobuf addon bytes (M of them).
  std::vector<uint8_t> v0_addons;

  // v1 addon content.
  bool udp_multi = false;
  std::optional<uint64_t> udp_session;
  bool want_ip = false;
  bool reuse = false;
  // Padding TLV: present when set; the bytes themselves are random and
  // ignored by the receiver.
  // The encoder writes at most 255 of them (one TLV).
  std::optional<std::vector<uint8_t>> padding;

  friend bool operator==(const Request&, const Request&) = default;
};

// Appends the whole header. v1 picks the shortest ADDON form: 0x00 when
// nothing is set, 0x01 when only udp_multi is set, else the TLV list (in
// type order; udp_session as 8 bytes big-endian). v1 Mux always writes the
// placeholder v1.mux.cool:1, whatever `target` holds; v0 Mux and v1 IP
// write no address. v0 ignores the v1 fields and v1 ignores v0_addons
// (cut to 255 bytes). TCP and UDP need `target`; without one 0.0.0.0:0 is
// written (a caller bug that the peer rejects for TCP).
void encodeRequest(const Request& req, BufferChain& out);

struct RequestDecodeResult {
  DecodeStatus status = DecodeStatus::kNeedMore;
  size_t consumed = 0;  // header length when kDone; payload follows
  std::string error;    // when kInvalid: what was wrong, for one log line
};
// Parses a request header from the front of `in` without draining it. The
// version must be 0 or 1; UUID is not checked here (the server does that
// in constant time). Unknown critical TLVs, bad ADDON, bad CMD, bad
// address type, zero-length domain and port 0 for TCP are kInvalid.
// Also kInvalid: a known TLV with the wrong LEN or given twice, a TLV list
// over kMaxAddonTlvBytes, v0 CMD other than 1..3, v1 CMD other than
// 1, 2, 3, 5. `out` is reset first and is meaningful only on kDone; the
// v1 Mux address is decoded as sent (placeholder or not) and not checked.
RequestDecodeResult decodeRequest(const BufferChain& in, Request& out);

// v0 response header: 0x00 N ADDONS(N).
void encodeV0Response(BufferChain& out);
struct ResponseDecodeResult {
  DecodeStatus status = DecodeStatus::kNeedMore;
  size_t consumed = 0;
  std::string error;
};
ResponseDecodeResult decodeV0Response(const BufferChain& in);

// want_ip prefix (v1, TLV 0x06): FLAG(1) [ATYP(1) IP].
// `dialled` nullopt (or a domain, which the prefix cannot carry) encodes
// FLAG 0; an IPv4-mapped IPv6 address goes out as ATYP 1.
void encodeWantIpPrefix(const std::optional<Address>& dialled, BufferChain& out);
struct WantIpDecodeResult {
  DecodeStatus status = DecodeStatus::kNeedMore;
  size_t consumed = 0;
  std::optional<Address> ip;  // port is 0
  std::string error;
};
// FLAG other than 0/1 and ATYP other than 1 (IPv4) / 3 (IPv6) are kInvalid.
WantIpDecodeResult decodeWantIpPrefix(const BufferChain& in);

}  // namespace vt::codec
