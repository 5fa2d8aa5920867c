// Reuse chunks (first byte even) and CmdIP packets (odd).
#include "codec/length_frame.h"
#include "fuzz_util.h"

using namespace vt;
using namespace vt::codec;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool ip = data[0] & 1;
  auto summarize = [ip](const BufferChain& in) {
    if (ip) {
      PacketDecodeResult r = decodeIpPacket(in);
      fuzz::checkPacket(r, in.size());
      if (r.status == DecodeStatus::kDone) {
        uint8_t v = in.byteAt(2) >> 4;
        fuzz::check(v == 4 || v == 6, "IP version");
      }
      return fuzz::summarizePacket(in, r);
    }
    ReuseChunkResult r = decodeReuseChunk(in);
    fuzz::checkPacket(r, in.size());
    fuzz::check(r.end == (r.status == DecodeStatus::kDone && r.payload_size == 0), "end flag");
    return fuzz::summarizePacket(in, r) + (r.end ? " end" : "");
  };
  fuzz::checkSplitsAgree(data + 1, size - 1, summarize);
  return 0;
}
