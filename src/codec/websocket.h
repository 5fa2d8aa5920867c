// WebSocket (RFC 6455) as a transport under VLESS: frames, and the HTTP/1.1
// upgrade that opens them. Pure codec, no I/O; the stream layer that will
// drives it is stream/ws_stream.h.
//
//    0                   1                   2                   3
//   +-+-+-+-+-------+-+-------------+-------------------------------+
//   |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
//   |I|S|S|S|  (4)  |A|     (7)     |    (16 or 64 bits, BE)        |
//   |N|V|V|V|       |S|  0..125, or |  126: 16 bits follow          |
//   | |1|2|3|       |K|  126 / 127  |  127: 64 bits follow (MSB 0)  |
//   +-+-+-+-+-------+-+-------------+-------------------------------+
//   | Masking key (4), present iff MASK = 1 | Payload (len bytes)   |
//   +---------------------------------------+-----------------------+
//   payload[i] is sent XOR key[i % 4]. Clients mask every frame,
//   servers never do. Opcodes: 0 continuation, 1 text, 2 binary,
//   8 close, 9 ping, 10 pong. Control frames (8..10): FIN set, len <= 125.
//   A close payload is empty or CODE(2, BE) + UTF-8 reason.
//
// The handshake (client request, server 101 response) is plain HTTP/1.1
// text with CRLF line ends; both heads are capped at kWsMaxHandshakeSize.
// "Early data" (v2ray/Xray): the client may carry the first bytes of the
// stream, base64url without padding, in Sec-WebSocket-Protocol; the server
// echoes that header in its 101, as browser-style clients require.
//
// What is refused, and why, is listed in docs/protocol.md, "WebSocket
// framing (codec)".
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "buffer/buffer_chain.h"
#include "codec/address.h"
#include "core/error.h"

namespace vt::codec {

// --- Helpers the handshake needs; here so codec needs no mbedTLS. -------

using Sha1Digest = std::array<uint8_t, 20>;
Sha1Digest sha1(const uint8_t* p, size_t n);
inline Sha1Digest sha1(std::string_view s) {
  return sha1(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

enum class Base64Alphabet { kStandard, kUrl };
// Standard alphabet with '=' padding; url alphabet ('-', '_') without.
std::string base64Encode(const uint8_t* p, size_t n, Base64Alphabet a = Base64Alphabet::kStandard);
// Strict: standard input must be padded to a multiple of 4, url input must
// not be padded; no whitespace; the unused low bits of the last symbol must
// be zero (so each byte string has exactly one spelling). False on
// anything else, with `out` unspecified.
bool base64Decode(std::string_view text, std::vector<uint8_t>& out,
                  Base64Alphabet a = Base64Alphabet::kStandard);

// Strict UTF-8 (no overlongs, no surrogates, nothing past U+10FFFF).
bool isValidUtf8(const uint8_t* p, size_t n) noexcept;

// --- Frames --------------------------------------------------------------

enum class WsOpcode : uint8_t {
  kContinuation = 0,
  kText = 1,
  kBinary = 2,
  kClose = 8,
  kPing = 9,
  kPong = 10,
};
inline bool isWsControl(WsOpcode op) noexcept {
  return static_cast<uint8_t>(op) >= 8;
}

// Which end a decoder runs on: a server decodes masked client frames, a
// client decodes unmasked server frames.
enum class WsRole : uint8_t { kClient, kServer };

inline constexpr size_t kWsMaxControlPayload = 125;
inline constexpr size_t kWsMaxFrameHeader = 14;  // 2 + 8 (length) + 4 (key)
inline constexpr size_t kWsDefaultMaxMessage = 1 << 20;

// Close codes we send on a decoder error (RFC 6455 7.4.1).
inline constexpr uint16_t kWsCloseNormal = 1000;
inline constexpr uint16_t kWsCloseProtocolError = 1002;
inline constexpr uint16_t kWsCloseInvalidPayload = 1007;
inline constexpr uint16_t kWsCloseTooBig = 1009;

// A close code a peer may put on the wire (1005, 1006, 1015 and the
// unassigned protocol range are not).
bool isValidWsCloseCode(uint16_t code) noexcept;

// Appends one frame: header, then `payload` (drained; its slices move, so
// the payload bytes are not copied). With `mask_key` (client side) the
// payload is masked in place before it moves, its one pass over the bytes;
// without (server side) it goes out as is. False, writing nothing and
// leaving `payload` untouched, for a control frame over 125 bytes or
// without FIN, or a continuation/data opcode that is not one.
bool encodeWsFrame(WsOpcode op, bool fin, BufferChain& payload,
                   const std::array<uint8_t, 4>* mask_key, BufferChain& out);
// A close frame; code 0 means an empty body (no code, no reason). False for
// a code that may not be sent, a reason that is not UTF-8, or one that
// would make the body longer than 125.
bool encodeWsClose(uint16_t code, std::string_view reason, const std::array<uint8_t, 4>* mask_key,
                   BufferChain& out);

struct WsFrame {
  WsOpcode opcode = WsOpcode::kBinary;  // as on the wire (kContinuation too)
  // For data frames, the opcode of the message the frame belongs to (text
  // or binary); equal to `opcode` for control frames.
  WsOpcode message_opcode = WsOpcode::kBinary;
  bool fin = true;
  BufferChain payload;  // unmasked
  // Close frames only: the code (0 when the body was empty) and reason.
  uint16_t close_code = 0;
  std::string close_reason;
};

struct WsDecoderOptions {
  WsRole role = WsRole::kServer;
  // Caps one message, all its fragments together, and so any one frame.
  size_t max_message = kWsDefaultMaxMessage;
  // True: fragments are buffered and a data message comes out as one frame
  // (fin set, opcode text/binary). False: each data frame comes out as it
  // completes, continuation frames included, so a stream layer can pass
  // bytes on before the message ends.
  bool reassemble = false;
};

// Incremental decoder. Bytes arrive in any pieces; decode() takes whole
// frames from the front of `in` (draining what it has used: a frame
// header as soon as it is whole and valid, the payload once all of it is
// there) and returns one frame, nullopt when `in` holds no whole frame
// yet, or an Error. The first Error is final: later calls return it again
// and closeCode() says which close code to answer with.
//   Errc::kUnsupported  reserved bits, unknown opcodes
//   Errc::kMalformed    masking, control frame, fragmentation, close body
//   Errc::kLimit        a length past max_message or 2^63
class WsFrameDecoder {
 public:
  explicit WsFrameDecoder(WsDecoderOptions options = {}) : options_(options) {}

  Result<std::optional<WsFrame>> decode(BufferChain& in);

  bool failed() const noexcept { return failed_.has_value(); }
  uint16_t closeCode() const noexcept { return close_code_; }
  // True between the first fragment of a data message and its FIN.
  bool inMessage() const noexcept { return in_message_; }

 private:
  struct Header {
    bool fin = false;
    WsOpcode opcode = WsOpcode::kBinary;
    bool masked = false;
    std::array<uint8_t, 4> key{};
    uint64_t length = 0;
  };
  Error fail(Errc code, std::string message, uint16_t close_code);
  Result<bool> readHeader(BufferChain& in);  // true once header_ holds one
  Result<std::optional<WsFrame>> finishFrame(BufferChain& payload);

  WsDecoderOptions options_;
  std::optional<Header> header_;  // parsed and drained, payload pending
  bool in_message_ = false;
  WsOpcode message_opcode_ = WsOpcode::kBinary;
  size_t message_size_ = 0;
  BufferChain message_;  // reassembly buffer (reassemble only)
  std::optional<Error> failed_;
  uint16_t close_code_ = 0;
};

// --- Handshake -----------------------------------------------------------

inline constexpr size_t kWsMaxHandshakeSize = 8 * 1024;
// Our encoder's cap on early data (Xray's usual "ed=2048"); the base64url
// form then takes 2731 bytes of the 8 KiB head.
inline constexpr size_t kWsMaxEarlyData = 2048;
inline constexpr std::string_view kWsGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

using WsHeaders = std::vector<std::pair<std::string, std::string>>;

struct WsClientRequest {
  std::string path = "/";  // origin-form: starts with '/'
  std::string host;
  std::array<uint8_t, 16> key{};    // random per connection, from the caller
  WsHeaders extra_headers;          // e.g. User-Agent; not the ones we write
  std::vector<uint8_t> early_data;  // empty: no Sec-WebSocket-Protocol
};
// Errc::kInvalidArgument for a path, host or header that would break the
// request (CR, LF, NUL, a non-token name, a header we write ourselves), or
// early data over kWsMaxEarlyData.
Status encodeWsRequest(const WsClientRequest& req, BufferChain& out);

struct WsRequest {
  std::string path;
  std::string host;
  WsHeaders headers;  // all of them, names as sent, values trimmed
  std::string key;    // Sec-WebSocket-Key as sent (base64 of 16 bytes)
  // Set when Sec-WebSocket-Protocol was one strict base64url value: its
  // bytes are the start of the stream, and `protocol` (the raw value) is
  // what the 101 echoes.
  std::optional<std::vector<uint8_t>> early_data;
  std::string protocol;
  // First header of that name (ASCII case-insensitive), or nullptr.
  const std::string* header(std::string_view name) const;
};

enum class WsRequestStatus {
  kNeedMore,
  kDone,
  // A well-formed HTTP/1.x request that is not a WebSocket upgrade (not
  // GET, no "Upgrade: websocket", or HTTP/1.0): for the fallback web page.
  kNotWebSocket,
  kInvalid,  // not HTTP, over the size cap, or a broken upgrade
};
struct WsRequestParseResult {
  WsRequestStatus status = WsRequestStatus::kNeedMore;
  size_t consumed = 0;  // the head, blank line included, on kDone
  WsRequest request;    // on kDone
  std::string error;    // on kInvalid and kNotWebSocket: why
};
// Does not drain `in`. Bytes after the head (a pipelined first frame) stay
// for the frame decoder.
WsRequestParseResult parseWsRequest(const BufferChain& in);

// base64(SHA-1(key + GUID)), RFC 6455 4.2.2.
std::string wsAcceptFor(std::string_view key);
// 101 Switching Protocols; `protocol` is echoed when not empty.
void encodeWsResponse(std::string_view key, std::string_view protocol, BufferChain& out);

struct WsResponseParseResult {
  DecodeStatus status = DecodeStatus::kNeedMore;
  size_t consumed = 0;  // on kDone
  int status_code = 0;  // as soon as the status line is in (401, 404...)
  std::string error;    // on kInvalid
  // On kDone: the 101 echoed our Sec-WebSocket-Protocol (the server took
  // the early data in it; servers that take it echo it, as browsers
  // require).
  bool protocol_echoed = false;
};
// Checks a server's answer to our request with `key` (the base64 we sent)
// and `protocol` (what we sent in Sec-WebSocket-Protocol, or empty).
WsResponseParseResult parseWsResponse(const BufferChain& in, std::string_view key,
                                      std::string_view protocol);

}  // namespace vt::codec
