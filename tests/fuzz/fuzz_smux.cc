// smux VER 1/2 frames: split-invariance, strict header rules, round trip.
#include "codec/smux.h"
#include "fuzz_util.h"

using namespace vt;
using namespace vt::codec;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto summarize = [](const BufferChain& in) {
    SmuxDecodeResult r = decodeSmuxFrame(in);
    fuzz::checkPacket(r, in.size());
    std::string s = fuzz::summarizePacket(in, r);
    if (r.status != DecodeStatus::kDone) return s;
    fuzz::check(r.header.command == SmuxCommand::kPsh || r.header.length == 0 ||
                    (r.header.command == SmuxCommand::kUpd && r.header.length == 8),
                "LEN 0 control, 8 UPD");
    fuzz::check(r.payload_offset == kSmuxHeaderSize, "offset 8");
    if (r.header.command == SmuxCommand::kPsh && r.payload_size <= kSmuxMaxPshData) {
      BufferChain payload, out;
      payload.append(fuzz::payloadOf(in, r));
      fuzz::check(encodeSmuxPsh(r.header.version, r.header.stream_id, payload, out), "encode PSH");
      SmuxDecodeResult back = decodeSmuxFrame(out);
      fuzz::check(back.status == DecodeStatus::kDone && back.header == r.header, "round trip");
    } else if (r.header.command == SmuxCommand::kUpd) {
      BufferChain out;
      encodeSmuxUpd(r.header.stream_id, r.upd_consumed, r.upd_window, out);
      SmuxDecodeResult back = decodeSmuxFrame(out);
      fuzz::check(back.header == r.header && back.upd_consumed == r.upd_consumed &&
                      back.upd_window == r.upd_window,
                  "UPD round trip");
    } else if (r.header.command != SmuxCommand::kPsh) {
      BufferChain out;
      encodeSmuxControl(r.header.version, r.header.command, r.header.stream_id, out);
      fuzz::check(out.size() == 8 && decodeSmuxFrame(out).header == r.header, "round trip");
    }
    return s + " " + std::to_string(int(r.header.command)) + " " +
           std::to_string(r.header.stream_id);
  };
  fuzz::checkSplitsAgree(data, size, summarize);
  return 0;
}
