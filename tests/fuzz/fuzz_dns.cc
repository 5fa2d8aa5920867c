// The DNS message reader (codec/dns.h) the client's cache runs on answers
// from the tunnel: any bytes must parse or fail cleanly, and what parses
// must be self-consistent (TTL offsets inside the message, names bounded).
// The input is copied into a buffer of its exact size so ASan sees every
// read past the end.
#include <cstring>
#include <memory>

#include "codec/dns.h"
#include "fuzz_util.h"

using namespace vt;
using namespace vt::codec;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::unique_ptr<uint8_t[]> buf(new uint8_t[size == 0 ? 1 : size]);
  if (size > 0) std::memcpy(buf.get(), data, size);
  DnsMessage m;
  std::string error;
  bool ok = parseDnsMessage(buf.get(), size, m, error);
  if (!ok) {
    fuzz::check(!error.empty(), "a failure says why");
    return 0;
  }
  fuzz::check(size >= kDnsHeaderSize, "a parsed message has a header");
  fuzz::check(m.questions.size() == m.qdcount, "every question parsed");
  fuzz::check(m.questionsEnd <= size, "question section inside the message");
  for (const DnsQuestion& q : m.questions) {
    fuzz::check(!q.wireName.empty() && q.wireName.size() <= kDnsMaxName, "name bounded");
    fuzz::check(q.wireName.back() == '\0', "name ends with the root label");
    (void)q.text();
  }
  // The client's own resolver reads A/AAAA answers from here.
  for (uint16_t type : {uint16_t{1}, uint16_t{28}}) {
    for (const auto& ip : dnsAnswerAddresses(buf.get(), size, m, type)) {
      fuzz::check(ip.size() == (type == 1 ? 4u : 16u), "an address of its type's size");
    }
  }
  for (size_t off : m.ttlOffsets) {
    fuzz::check(off >= kDnsHeaderSize && off + 4 <= size, "TTL offset inside the message");
    // Ageing a TTL in place must stay inside the buffer.
    dnsWriteU32(buf.get() + off, dnsReadU32(buf.get() + off));
  }
  // Names at arbitrary offsets: bounded, never out of range.
  std::string wire;
  size_t next = 0;
  for (size_t off = 0; off < size && off < 64; ++off) {
    if (readDnsName(buf.get(), size, off, wire, next, error)) {
      fuzz::check(next <= size && wire.size() <= kDnsMaxName, "name read bounded");
    }
  }
  return 0;
}
