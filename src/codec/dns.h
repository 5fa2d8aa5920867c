// A small, bounds-checked DNS message reader (RFC 1035) for the client's
// answer cache: the header, the questions, and where every resource
// record's TTL sits, so a cached answer can be replayed with its TTLs aged.
// Pure: no I/O, no clocks. Never writes outside the input.
//
// Message:
//   +--------+--------+---------+---------+---------+---------+----------
//   | ID(2)  | FLAGS  | QDCOUNT | ANCOUNT | NSCOUNT | ARCOUNT | sections
//   +--------+--------+---------+---------+---------+---------+----------
//   FLAGS: QR(1) OPCODE(4) AA TC RD | RA Z(3) RCODE(4)
// Question:  NAME | TYPE(2) | CLASS(2)
// RR:        NAME | TYPE(2) | CLASS(2) | TTL(4) | RDLEN(2) | RDATA
// NAME: labels LEN(1, 1..63) bytes, ended by a 0 byte or by a compression
//   pointer 11xxxxxx xxxxxxxx (14-bit offset from the message start).
//   We accept only pointers to strictly earlier offsets than the label that
//   holds them (so no loop is possible) and names of at most 255 bytes.
//   Label types 01/10 (extended, obsolete) are invalid.
// Everything is big-endian.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace vt::codec {

inline constexpr size_t kDnsHeaderSize = 12;
inline constexpr size_t kDnsMaxName = 255;  // wire form, incl. the final 0
inline constexpr uint16_t kDnsTypeSoa = 6;
inline constexpr uint16_t kDnsTypeOpt = 41;
inline constexpr uint8_t kDnsRcodeNoError = 0;
inline constexpr uint8_t kDnsRcodeNxDomain = 3;
// Questions kept per message (real queries have one).
inline constexpr size_t kDnsMaxQuestions = 4;

struct DnsQuestion {
  // The name in uncompressed wire form (length-prefixed labels, final 0),
  // ASCII letters lowered: a cache key with no text ambiguity.
  std::string wireName;
  uint16_t type = 0;
  uint16_t klass = 0;
  // "example.test." for logs (non-printable bytes as \DDD).
  std::string text() const;
};

struct DnsMessage {
  uint16_t id = 0;
  uint16_t flags = 0;
  uint16_t qdcount = 0, ancount = 0, nscount = 0, arcount = 0;
  std::vector<DnsQuestion> questions;  // all of them (at most kDnsMaxQuestions)
  size_t questionsEnd = kDnsHeaderSize;  // offset just after the question section
  // Offsets of the TTL field of every record except OPT (whose "TTL" is
  // EDNS flags), in message order.
  std::vector<size_t> ttlOffsets;
  // The smallest TTL in the answer section; meaningful when ancount > 0.
  uint32_t minAnswerTtl = 0;
  // From an SOA in the authority section: min(its TTL, its MINIMUM), the
  // negative-caching TTL of RFC 2308. Meaningful when hasSoa.
  bool hasSoa = false;
  uint32_t soaNegativeTtl = 0;

  bool isResponse() const noexcept { return (flags & 0x8000) != 0; }
  uint8_t opcode() const noexcept { return static_cast<uint8_t>((flags >> 11) & 0xF); }
  bool truncated() const noexcept { return (flags & 0x0200) != 0; }
  uint8_t rcode() const noexcept { return static_cast<uint8_t>(flags & 0xF); }
};

// Parses a whole message. False (with `error` saying why, `out` partly
// filled) for anything malformed: short header, counts that run past the
// end, bad or looping names, RDATA past the end, more than
// kDnsMaxQuestions questions. Trailing bytes after the last record are
// allowed (some servers pad).
bool parseDnsMessage(const uint8_t* p, size_t n, DnsMessage& out, std::string& error);

// The A (4 bytes) or AAAA (16 bytes) RDATA of the answer records of `type`
// in a message parseDnsMessage accepted (`m` is its result), in order;
// records of another type or size are skipped. Never reads outside p[0,n).
std::vector<std::vector<uint8_t>> dnsAnswerAddresses(const uint8_t* p, size_t n,
                                                     const DnsMessage& m, uint16_t type);
// Reads the name at `offset` into uncompressed, lowered wire form. On
// success `next` is the offset just after the name's own bytes (after its
// first pointer, if any). Exposed for tests and the fuzz target.
bool readDnsName(const uint8_t* p, size_t n, size_t offset, std::string& wire, size_t& next,
                 std::string& error);

// Helpers for the cache: read/write the 16-bit id and 32-bit TTLs in place.
uint32_t dnsReadU32(const uint8_t* p) noexcept;
void dnsWriteU32(uint8_t* p, uint32_t v) noexcept;
void dnsSetId(uint8_t* msg, uint16_t id) noexcept;

}  // namespace vt::codec
