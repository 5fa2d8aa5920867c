// Trojan-style UDP packets: split-invariance and round trip.
#include "codec/trojan_udp.h"
#include "fuzz_util.h"

using namespace vt;
using namespace vt::codec;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto summarize = [](const BufferChain& in) {
    PacketDecodeResult r = decodeTrojanUdpPacket(in);
    fuzz::checkPacket(r, in.size());
    std::string s = fuzz::summarizePacket(in, r);
    if (r.status != DecodeStatus::kDone) return s;
    fuzz::check(r.address.has_value(), "address");
    BufferChain payload, out;
    payload.append(fuzz::payloadOf(in, r));
    fuzz::check(encodeTrojanUdpPacket(*r.address, payload, out), "encode");
    PacketDecodeResult back = decodeTrojanUdpPacket(out);
    fuzz::check(back.status == DecodeStatus::kDone && back.address == r.address &&
                    fuzz::payloadOf(out, back) == fuzz::payloadOf(in, r),
                "round trip");
    return s;
  };
  fuzz::checkSplitsAgree(data, size, summarize);
  return 0;
}
