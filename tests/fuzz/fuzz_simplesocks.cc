// SimpleSocks header: split-invariance, port rule, round trip.
#include "codec/simple_socks.h"
#include "fuzz_util.h"

using namespace vt;
using namespace vt::codec;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto summarize = [](const BufferChain& in) {
    SimpleSocksHeader h;
    SimpleSocksDecodeResult r = decodeSimpleSocks(in, h);
    std::string s = fuzz::statusName(r.status);
    if (r.status == DecodeStatus::kInvalid) fuzz::check(!r.error.empty(), "message");
    if (r.status == DecodeStatus::kNeedMore) {
      fuzz::check(in.size() < kMaxSimpleSocksHeader, "NeedMore past the longest header");
    }
    if (r.status != DecodeStatus::kDone) return s;
    fuzz::check(r.consumed <= in.size() && r.consumed <= kMaxSimpleSocksHeader, "consumed");
    fuzz::check(h.command == SimpleSocksCommand::kUdp || h.target.port != 0, "TCP port 0");
    BufferChain out;
    encodeSimpleSocks(h, out);
    SimpleSocksHeader back;
    SimpleSocksDecodeResult rb = decodeSimpleSocks(out, back);
    fuzz::check(rb.status == DecodeStatus::kDone && back == h, "round trip");
    // The udp_session a UDP stream's header may name (what the server keys
    // its NAT by): any domain parses or not, and what parses round-trips.
    if (!h.target.isIp()) {
      if (auto id = parseUdpSessionDomain(h.target.domain)) {
        fuzz::check(udpSessionDomain(*id) == h.target.domain, "udp_session domain round trip");
      }
    }
    return s + " " + std::to_string(r.consumed) + " " + h.target.toString();
  };
  fuzz::checkSplitsAgree(data, size, summarize);
  return 0;
}
