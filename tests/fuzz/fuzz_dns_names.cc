// DnsNames (client/dns_names.h) on hostile resolver answers: any bytes are
// offered without harm; a question name it returns is one the routing
// rules can trust (lowercase letters, digits, '-', '_', dots between
// non-empty labels, at most 253 characters); every address it learnt maps
// to exactly that name. The input is copied into a buffer of its exact
// size so ASan sees every read past the end.
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "client/dns_names.h"
#include "codec/dns.h"
#include "fuzz_util.h"

using namespace vt;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::unique_ptr<uint8_t[]> buf(new uint8_t[size == 0 ? 1 : size]);
  if (size > 0) std::memcpy(buf.get(), data, size);
  const std::string q = client::DnsNames::questionName(buf.get(), size);
  if (!q.empty()) {
    fuzz::check(q.size() <= 253, "name length", q);
    fuzz::check(q.front() != '.' && q.back() != '.' && q.find("..") == std::string::npos,
                "labels are not empty", q);
    for (char c : q) {
      const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
      fuzz::check(ok, "name characters", q);
    }
  }
  client::DnsNames names(8);
  names.learn(buf.get(), size, 1000);
  codec::DnsMessage m;
  std::string error;
  if (!codec::parseDnsMessage(buf.get(), size, m, error)) return 0;
  for (uint16_t type : {uint16_t{1}, uint16_t{28}}) {
    for (const std::vector<uint8_t>& a : codec::dnsAnswerAddresses(buf.get(), size, m, type)) {
      if (a.size() != 4 && a.size() != 16) continue;
      auto got = names.nameOf(a.size() == 16, a.data(), 1000);
      if (got) fuzz::check(*got == q, "an address maps to the question's name", *got + " vs " + q);
    }
  }
  return 0;
}
