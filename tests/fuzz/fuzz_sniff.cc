// The flow sniffer (codec/sniff.h) on the first bytes of hostile flows:
// any bytes give a verdict without reading outside them, a name it returns
// is one the routing rules can trust (lowercase, bounded, plain
// characters), and a verdict never changes once given: a prefix's kFound
// or kNone is also the whole input's. The input and its prefixes are
// copied into buffers of their exact size so ASan sees every read past the
// end.
#include <cstring>
#include <memory>
#include <string>

#include "codec/sniff.h"
#include "fuzz_util.h"

using namespace vt;
using namespace vt::codec;

namespace {

SniffResult sniffCopy(const uint8_t* data, size_t size) {
  std::unique_ptr<uint8_t[]> buf(new uint8_t[size == 0 ? 1 : size]);
  if (size > 0) std::memcpy(buf.get(), data, size);
  return sniffHost(buf.get(), size);
}

void checkResult(const SniffResult& r) {
  if (r.status != SniffStatus::kFound) {
    fuzz::check(r.host.empty(), "no name without kFound");
    return;
  }
  fuzz::check(r.protocol != nullptr, "a found name has a protocol");
  const std::string& h = r.host;
  fuzz::check(!h.empty() && h.size() <= 253, "name length 1..253", h);
  const bool v6 = h.find(':') != std::string::npos;
  for (char c : h) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
              c == '.' || (v6 && c == ':');
    fuzz::check(ok, "name characters", h);
  }
  if (!v6) {
    fuzz::check(h.front() != '.' && h.back() != '.' && h.find("..") == std::string::npos,
                "no empty labels", h);
  }
  fuzz::check(sniffNormalizeHost(h) == h, "a found name is already normal", h);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const SniffResult whole = sniffCopy(data, size);
  checkResult(whole);
  if (size == 0) return 0;
  // Two prefixes: the middle, and one the input's last byte chooses.
  for (size_t k : {size / 2, size_t{data[size - 1]} * 61 % size}) {
    const SniffResult part = sniffCopy(data, k);
    checkResult(part);
    if (part.status == SniffStatus::kFound) {
      fuzz::check(whole.status == SniffStatus::kFound && whole.host == part.host,
                  "a prefix's name is the whole's", part.host + " / " + whole.host);
    } else if (part.status == SniffStatus::kNone) {
      fuzz::check(whole.status == SniffStatus::kNone, "a prefix's kNone is the whole's");
    }
  }
  return 0;
}
