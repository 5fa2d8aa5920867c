// VLESS request headers (v0 and v1): split-invariance, limits, round trip.
#include "codec/vless.h"
#include "fuzz_util.h"

using namespace vt;
using namespace vt::codec;

namespace {

std::string summarize(const BufferChain& in, Request& req, RequestDecodeResult& r) {
  r = decodeRequest(in, req);
  std::string s = fuzz::statusName(r.status);
  if (r.status == DecodeStatus::kDone) s += " " + std::to_string(r.consumed);
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Request req, req2;
  RequestDecodeResult r, r2;
  BufferChain whole = fuzz::wholeChain(data, size);
  BufferChain sliced = fuzz::slicedChain(data, size);
  std::string a = summarize(whole, req, r);
  std::string b = summarize(sliced, req2, r2);
  fuzz::check(a == b, "whole and sliced differ", a + " / " + b);
  if (r.status == DecodeStatus::kNeedMore) {
    fuzz::check(size < kMaxRequestHeader, "NeedMore past kMaxRequestHeader");
    return 0;
  }
  if (r.status == DecodeStatus::kInvalid) {
    fuzz::check(!r.error.empty(), "invalid has a message");
    return 0;
  }
  fuzz::check(r.consumed <= size && r.consumed <= kMaxRequestHeader, "consumed in bounds");
  fuzz::check(req == req2, "whole and sliced requests differ");
  // One byte short of the header must be NeedMore.
  BufferChain shorter = fuzz::wholeChain(data, r.consumed - 1);
  fuzz::check(decodeRequest(shorter, req2).status == DecodeStatus::kNeedMore, "prefix not NeedMore");
  // Re-encode what we decoded; it must decode to the same request, except
  // that the encoder writes the placeholder for v1 Mux and caps padding.
  BufferChain out;
  encodeRequest(req, out);
  Request back;
  RequestDecodeResult rb = decodeRequest(out, back);
  fuzz::check(rb.status == DecodeStatus::kDone && rb.consumed == out.size(), "re-encode decodes",
              rb.error);
  Request want = req;
  if (want.version == 1 && want.command == Command::kMux) {
    want.target = Address::fromDomain(kMuxPlaceholderHost, kMuxPlaceholderPort);
  }
  fuzz::check(back == want, "round trip differs");
  return 0;
}
