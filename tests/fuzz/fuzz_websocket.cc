// WebSocket codec: the frame decoder in both roles, fed whole and in
// pieces cut where the input says (same frames, same error, limits kept,
// re-encoded frames decode alike), and the request / response parsers
// (split-invariance, bounds, request -> 101 -> client check round trip).
//
// Byte 0 picks the decoder options: bit 0 role (client/server), bit 1
// reassembly, bits 2-3 max_message (16, 200, 65536, the default). The
// rest is the input for every part.
#include "codec/websocket.h"
#include "fuzz_util.h"

using namespace vt;
using namespace vt::codec;

namespace {

constexpr size_t kMaxMessages[] = {16, 200, 65536, kWsDefaultMaxMessage};

// Decodes everything `pieces` delivers, one slice at a time; every frame
// is checked and summarised, and appended to `frames` for re-encoding.
std::string decodeFrames(const BufferChain& pieces, WsDecoderOptions opt,
                         std::vector<WsFrame>* frames) {
  WsFrameDecoder d(opt);
  BufferChain in;
  std::string s;
  size_t message = 0;
  for (size_t i = 0; i < pieces.sliceCount(); ++i) {
    const Slice& piece = pieces.slice(i);
    in.append(Slice::copyOf(piece.data(), piece.size()));
    for (;;) {
      auto r = d.decode(in);
      if (!r.ok()) {
        fuzz::check(d.failed() && d.closeCode() != 0, "failed with a close code");
        fuzz::check(!r.error().message.empty(), "error has a message");
        fuzz::check(!d.decode(in).ok(), "error is final");
        return s + "error " + r.error().message;
      }
      if (!r.value()) break;
      WsFrame& f = *r.value();
      const size_t n = f.payload.size();
      if (isWsControl(f.opcode)) {
        fuzz::check(n <= kWsMaxControlPayload && f.fin, "control frame limits");
        if (f.opcode == WsOpcode::kClose && n > 0) {
          fuzz::check(isValidWsCloseCode(f.close_code), "close code");
          fuzz::check(isValidUtf8(reinterpret_cast<const uint8_t*>(f.close_reason.data()),
                                  f.close_reason.size()),
                      "close reason UTF-8");
        }
      } else {
        message = f.opcode == WsOpcode::kContinuation ? message + n : n;
        fuzz::check(message <= opt.max_message, "message within max_message");
        fuzz::check(!opt.reassemble || f.fin, "reassembled messages are whole");
        fuzz::check(f.message_opcode == WsOpcode::kText || f.message_opcode == WsOpcode::kBinary,
                    "message opcode");
      }
      s += std::to_string(int(f.opcode)) + (f.fin ? "f " : " ") + f.payload.toString() + "|";
      if (frames) frames->push_back(std::move(f));
    }
  }
  return s;
}

void fuzzFrames(const uint8_t* data, size_t size, WsDecoderOptions opt) {
  BufferChain whole = fuzz::wholeChain(data, size);
  BufferChain sliced = fuzz::slicedChain(data, size);
  std::vector<WsFrame> frames;
  std::string a = decodeFrames(whole, opt, &frames);
  std::string b = decodeFrames(sliced, opt, nullptr);
  fuzz::check(a == b, "whole and sliced differ", a + " / " + b);
  if (opt.reassemble) return;
  // The frames re-encoded the way the peer would have sent them decode to
  // the same frames (the error, if any, aside).
  const std::array<uint8_t, 4> key = {1, 2, 3, 4};
  BufferChain wire;
  std::string want;
  for (WsFrame& f : frames) {
    want += std::to_string(int(f.opcode)) + (f.fin ? "f " : " ") + f.payload.toString() + "|";
    fuzz::check(encodeWsFrame(f.opcode, f.fin, f.payload,
                              opt.role == WsRole::kServer ? &key : nullptr, wire),
                "re-encode");
  }
  std::string c = decodeFrames(fuzz::wholeChain(wire.toVector().data(), wire.size()), opt, nullptr);
  fuzz::check(c == want, "re-encoded frames differ", c + " / " + want);
}

std::string summarizeRequest(const BufferChain& in) {
  WsRequestParseResult r = parseWsRequest(in);
  switch (r.status) {
    case WsRequestStatus::kNeedMore:
      fuzz::check(in.size() < kWsMaxHandshakeSize, "need only under the cap");
      return "need";
    case WsRequestStatus::kInvalid:
      fuzz::check(!r.error.empty(), "invalid has a message");
      return "invalid " + r.error;
    case WsRequestStatus::kNotWebSocket:
      fuzz::check(r.consumed <= in.size() && r.consumed <= kWsMaxHandshakeSize, "head bounds");
      return "not-ws " + std::to_string(r.consumed);
    case WsRequestStatus::kDone: break;
  }
  fuzz::check(r.consumed <= in.size() && r.consumed <= kWsMaxHandshakeSize, "head bounds");
  const WsRequest& q = r.request;
  std::vector<uint8_t> key;
  fuzz::check(base64Decode(q.key, key) && key.size() == 16, "key is 16 bytes");
  fuzz::check(!q.path.empty() && q.path[0] == '/', "path");
  if (q.early_data) {
    fuzz::check(base64Encode(q.early_data->data(), q.early_data->size(), Base64Alphabet::kUrl) ==
                    q.protocol,
                "early data spelled one way");
  }
  // The 101 we would send satisfies a client that sent this request.
  BufferChain resp;
  encodeWsResponse(q.key, q.protocol, resp);
  WsResponseParseResult back = parseWsResponse(resp, q.key, q.protocol);
  fuzz::check(back.status == DecodeStatus::kDone && back.consumed == resp.size(), "our 101 parses",
              back.error);
  return "done " + std::to_string(r.consumed) + " " + q.path + " " + q.host + " " +
         (q.early_data ? q.protocol : "-");
}

std::string summarizeResponse(const BufferChain& in) {
  WsResponseParseResult r = parseWsResponse(in, "dGhlIHNhbXBsZSBub25jZQ==", "AAH7_38");
  if (r.status == DecodeStatus::kInvalid) fuzz::check(!r.error.empty(), "invalid has a message");
  if (r.status == DecodeStatus::kNeedMore) {
    fuzz::check(in.size() < kWsMaxHandshakeSize, "need only under the cap");
  }
  if (r.status == DecodeStatus::kDone) {
    fuzz::check(r.consumed <= in.size() && r.status_code == 101, "response bounds");
  }
  return std::string(fuzz::statusName(r.status)) + " " + std::to_string(r.consumed) + " " +
         std::to_string(r.status_code) + " " + r.error;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  ++data;
  --size;
  WsDecoderOptions opt;
  opt.role = mode & 1 ? WsRole::kServer : WsRole::kClient;
  opt.reassemble = (mode & 2) != 0;
  opt.max_message = kMaxMessages[(mode >> 2) & 3];
  fuzzFrames(data, size, opt);
  fuzz::checkSplitsAgree(data, size, summarizeRequest);
  fuzz::checkSplitsAgree(data, size, summarizeResponse);
  // The helpers: base64url of the input decodes back; SHA-1 never fails.
  std::string t = base64Encode(data, size, Base64Alphabet::kUrl);
  std::vector<uint8_t> back;
  fuzz::check(base64Decode(t, back, Base64Alphabet::kUrl) &&
                  back == std::vector<uint8_t>(data, data + size),
              "base64url round trip");
  (void)sha1(data, size);
  return 0;
}
