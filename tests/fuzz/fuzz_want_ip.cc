// want_ip reply prefix: split-invariance and round trip.
#include "codec/vless.h"
#include "fuzz_util.h"

using namespace vt;
using namespace vt::codec;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto summarize = [](const BufferChain& in) {
    WantIpDecodeResult r = decodeWantIpPrefix(in);
    std::string s = fuzz::statusName(r.status);
    if (r.status == DecodeStatus::kInvalid) fuzz::check(!r.error.empty(), "message");
    if (r.status != DecodeStatus::kDone) return s;
    fuzz::check(r.consumed <= in.size(), "consumed <= size");
    BufferChain out;
    encodeWantIpPrefix(r.ip, out);
    WantIpDecodeResult back = decodeWantIpPrefix(out);
    fuzz::check(back.status == DecodeStatus::kDone && back.ip == r.ip, "round trip");
    return s + " " + std::to_string(r.consumed) + " " + (r.ip ? r.ip->toString() : "-");
  };
  fuzz::checkSplitsAgree(data, size, summarize);
  return 0;
}
