// The client's DNS-over-TCP tap (client/dns_tcp_tap.h) on both directions
// of a hijacked port-53 flow, interleaved as the input says: each chunk is
// a byte H (bit 0: 0 app -> resolver, 1 resolver -> app; H >> 1: the
// chunk's length - 1) then that many bytes. Whatever arrives, the tap stays
// within its bounds, stores nothing it did not match, and reaches the same
// state whether each chunk comes whole, byte by byte or as a sliced chain.
#include <string>

#include "client/dns_cache.h"
#include "client/dns_tcp_tap.h"
#include "fuzz_util.h"

using namespace vt;
using namespace vt::client;

namespace {

enum class Cut { kWhole, kBytes, kSliced };

std::string run(const uint8_t* data, size_t size, Cut cut) {
  DnsCache cache(8);
  DnsTcpTap tap(cache);
  uint64_t unmatched = 0;
  size_t pos = 0;
  while (pos < size) {
    const bool answers = data[pos] & 1;
    size_t n = (data[pos] >> 1) + 1u;
    ++pos;
    if (n > size - pos) n = size - pos;
    const uint8_t* p = data + pos;
    pos += n;
    if (cut == Cut::kSliced) {
      BufferChain c = fuzz::slicedChain(p, n);
      if (answers) {
        unmatched += tap.onAnswerBytes(c, 0);
      } else {
        tap.onQueryBytes(c);
      }
      fuzz::check(c.size() == n, "the tap does not drain what it reads");
    } else {
      const size_t step = cut == Cut::kBytes ? 1 : n;
      for (size_t i = 0; i < n; i += step) {
        if (answers) {
          unmatched += tap.onAnswerBytes(p + i, step, 0);
        } else {
          tap.onQueryBytes(p + i, step);
        }
      }
    }
    fuzz::check(tap.outstanding() <= DnsTcpTap::kMaxOutstanding, "outstanding bounded");
    fuzz::check(tap.bufferedBytes() <= 2 * DnsTcpTap::kMaxFrameBytes, "one partial frame a side");
    fuzz::check(tap.tapping() || (tap.outstanding() == 0 && tap.bufferedBytes() == 0),
                "a stopped tap holds nothing");
  }
  const DnsTcpTapStats& s = tap.stats();
  fuzz::check(unmatched == s.unmatched, "every unmatched answer reported");
  fuzz::check(s.stored <= s.matched && s.matched <= s.queries, "only matched answers stored");
  fuzz::check(cache.stats().stored == s.stored, "nothing reached the cache but through a match");
  return std::to_string(s.queries) + " " + std::to_string(s.ignored) + " " +
         std::to_string(s.forgotten) + " " + std::to_string(s.matched) + " " +
         std::to_string(s.stored) + " " + std::to_string(s.unmatched) + " " +
         std::to_string(s.oversized) + " " + std::to_string(tap.outstanding()) + " " +
         std::to_string(tap.bufferedBytes()) + (tap.tapping() ? " on" : " off");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string whole = run(data, size, Cut::kWhole);
  fuzz::check(run(data, size, Cut::kBytes) == whole, "byte by byte agrees", whole);
  fuzz::check(run(data, size, Cut::kSliced) == whole, "sliced agrees", whole);
  return 0;
}
