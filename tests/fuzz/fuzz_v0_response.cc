// v0 response header.
#include "codec/vless.h"
#include "fuzz_util.h"

using namespace vt;
using namespace vt::codec;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto summarize = [](const BufferChain& in) {
    ResponseDecodeResult r = decodeV0Response(in);
    if (r.status == DecodeStatus::kDone) {
      fuzz::check(r.consumed <= in.size() && r.consumed >= 2 && r.consumed <= 257, "consumed");
    }
    if (r.status == DecodeStatus::kInvalid) fuzz::check(!r.error.empty(), "message");
    return std::string(fuzz::statusName(r.status)) + " " + std::to_string(r.consumed);
  };
  fuzz::checkSplitsAgree(data, size, summarize);
  return 0;
}
