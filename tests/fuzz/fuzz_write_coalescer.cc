// WriteCoalescer (TunPump's runs toward the app) fed arbitrary packets:
// the input is up to 80 records (a 2-byte big-endian length, then that
// many bytes), each handed over as a PacketView cut into up to three
// iovecs where the record's own bytes say. What parse() accepts joins the
// run or ends it, as TunPump does. NetStack only ever hands it packets it
// built, but what it parses must hold for any bytes.
// Checks: no crash, no sanitizer report; a run never passes 64 packets or
// 65,535 bytes; a built run's lengths and vnet header agree with what was
// added; a UDP run cut back gives every datagram with a checksum that
// verifies and the payloads in order.
#include <sys/uio.h>

#include <cstring>
#include <vector>

#include "client/write_coalescer.h"
#include "fuzz_util.h"
#include "netstack/udp_packet.h"

using vt::client::WriteCoalescer;

namespace {

struct Added {
  std::vector<uint8_t> payloads;
  size_t headers = 0;
  size_t first = 0;
  bool tcp = false;
  bool v6 = false;
};

uint16_t be16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }

void checkRun(WriteCoalescer& run, const Added& added) {
  if (run.empty()) return;
  vt::fuzz::check(run.count() <= WriteCoalescer::kMaxSegments, "at most 64 packets a run");
  uint8_t vnet[10];
  const std::vector<uint8_t>& out = run.build(vnet);
  vt::fuzz::check(out.size() <= 65535, "a run is one IP packet");
  vt::fuzz::check(out.size() == added.headers + added.payloads.size(), "the run's size");
  vt::fuzz::check(std::memcmp(out.data() + added.headers, added.payloads.data(),
                              added.payloads.size()) == 0,
                  "the payloads in order");
  if (run.count() > 1) {
    const uint8_t want = added.tcp ? (added.v6 ? 4 : 1) : 5;
    uint16_t gso = 0;
    std::memcpy(&gso, vnet + 4, 2);
    vt::fuzz::check(vnet[0] == 1 && vnet[1] == want && gso == added.first, "the vnet header");
    const size_t ip = added.v6 ? 40 : 20;
    vt::fuzz::check(be16(out.data() + (added.v6 ? 4 : 2)) == out.size() - (added.v6 ? 40 : 0),
                    "the IP length covers the run");
    if (!added.tcp) vt::fuzz::check(be16(out.data() + ip + 4) == out.size() - ip, "UDP length");
  }
  if (!added.tcp) {
    size_t at = 0;
    size_t n = 0;
    run.forEachPacket([&](const uint8_t* p, size_t len) {
      const size_t ip = added.v6 ? 40 : 20;
      vt::fuzz::check(len > added.headers && len - added.headers <= added.payloads.size() - at,
                      "a datagram's size");
      vt::fuzz::check(std::memcmp(p + added.headers, added.payloads.data() + at,
                                  len - added.headers) == 0,
                      "a datagram's payload");
      vt::netstack::InetChecksum sum;
      sum.add(p + (added.v6 ? 8 : 12), added.v6 ? 32 : 8);
      sum.addBe16(17);
      sum.addBe16(static_cast<uint16_t>(len - ip));
      sum.add(p + ip, len - ip);
      vt::fuzz::check(sum.finish() == 0, "a datagram's checksum verifies");
      at += len - added.headers;
      ++n;
    });
    vt::fuzz::check(n == run.count() && at == added.payloads.size(), "every datagram once");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  WriteCoalescer run;
  Added added;
  size_t pos = 0;
  for (int record = 0; record < 80 && pos + 2 <= size; ++record) {
    size_t len = be16(data + pos);
    pos += 2;
    if (len > size - pos) len = size - pos;
    const uint8_t* p = data + pos;
    pos += len;
    // Up to three pieces, cut where the record's first bytes say.
    iovec iov[3];
    int count = 0;
    size_t cut1 = len > 0 ? p[0] % (len + 1) : 0;
    size_t cut2 = len > 1 ? cut1 + p[1] % (len - cut1 + 1) : len;
    size_t bounds[4] = {0, cut1, cut2, len};
    for (int i = 0; i < 3; ++i) {
      if (bounds[i + 1] > bounds[i]) {
        iov[count++] = {const_cast<uint8_t*>(p + bounds[i]), bounds[i + 1] - bounds[i]};
      }
    }
    vt::netstack::PacketView view{iov, count, len};
    WriteCoalescer::Piece piece;
    if (!WriteCoalescer::parse(view, piece)) {
      checkRun(run, added);  // anything else ends the run
      run.clear();
      continue;
    }
    vt::fuzz::check(piece.headers() + piece.payload == len && piece.payload > 0, "parse sizes");
    if (!run.joins(piece)) {
      checkRun(run, added);
      run.clear();
    }
    if (run.empty()) {
      added = Added{};
      added.headers = piece.headers();
      added.first = piece.payload;
      added.tcp = piece.tcp;
      added.v6 = piece.v6;
    }
    run.add(view, piece);
    added.payloads.insert(added.payloads.end(), p + piece.headers(), p + len);
  }
  checkRun(run, added);
  return 0;
}
