// Every UDP framing, chosen by the first input byte: 0 LEN(2) payload (v0,
// separated channel up), 1 v1 classic, 2 separated channel down.
#include "codec/length_frame.h"
#include "codec/udp_packet.h"
#include "fuzz_util.h"

using namespace vt;
using namespace vt::codec;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const unsigned mode = data[0] % 3;
  auto decode = [mode](const BufferChain& in) {
    return mode == 0 ? decodeLengthPacket(in)
                     : mode == 1 ? decodeClassicUdpPacket(in) : decodeMultiUdpDown(in);
  };
  auto summarize = [&](const BufferChain& in) {
    PacketDecodeResult r = decode(in);
    fuzz::checkPacket(r, in.size());
    return fuzz::summarizePacket(in, r);
  };
  std::string s = fuzz::checkSplitsAgree(data + 1, size - 1, summarize);
  BufferChain in = fuzz::wholeChain(data + 1, size - 1);
  PacketDecodeResult r = decode(in);
  if (r.status != DecodeStatus::kDone) return 0;
  if (mode == 2 && r.address) fuzz::check(r.address->isIp(), "FLAG 1 source is an IP");
  // Re-encode and decode again: same result.
  BufferChain payload = fuzz::wholeChain(data + 1 + r.payload_offset, r.payload_size);
  BufferChain out;
  bool ok = mode == 0   ? encodeLengthPacket(payload, out)
            : mode == 1 ? encodeClassicUdpPacket(*r.address, payload, out)
                        : encodeMultiUdpDown(r.address, payload, out);
  fuzz::check(ok, "re-encode");
  PacketDecodeResult back = decode(out);
  fuzz::check(back.status == DecodeStatus::kDone && back.consumed == out.size(), "re-decode");
  fuzz::check(back.address == r.address && fuzz::payloadOf(out, back) == fuzz::payloadOf(in, r),
              "round trip");
  // takePacket leaves exactly the bytes after the unit.
  BufferChain moved;
  takePacket(in, r, moved);
  fuzz::check(in.size() == size - 1 - r.consumed && moved.size() == r.payload_size, "takePacket");
  return 0;
}
