#include "codec/dns.h"

#include <algorithm>

namespace vt::codec {
namespace {

uint16_t u16(const uint8_t* p) noexcept { return static_cast<uint16_t>((p[0] << 8) | p[1]); }

// Skips one record's fixed part and RDATA; fills the TTL bookkeeping.
bool readRecord(const uint8_t* p, size_t n, size_t& off, int section, DnsMessage& out,
                std::string& error) {
  std::string name;
  size_t next = 0;
  if (!readDnsName(p, n, off, name, next, error)) return false;
  if (n - next < 10) {
    error = "record header past the end";
    return false;
  }
  uint16_t type = u16(p + next);
  uint32_t ttl = dnsReadU32(p + next + 4);
  uint16_t rdlen = u16(p + next + 8);
  size_t rdata = next + 10;
  if (n - rdata < rdlen) {
    error = "RDATA past the end";
    return false;
  }
  if (type != kDnsTypeOpt) {
    out.ttlOffsets.push_back(next + 4);
    if (section == 1) out.minAnswerTtl = std::min(out.minAnswerTtl, ttl);
    if (section == 2 && type == kDnsTypeSoa && !out.hasSoa) {
      // RDATA: MNAME RNAME SERIAL REFRESH RETRY EXPIRE MINIMUM; MINIMUM is
      // the last 4 bytes. The names may be compressed, so walk them.
      std::string skip;
      size_t q = 0;
      if (!readDnsName(p, rdata + rdlen, rdata, skip, q, error)) return false;
      if (!readDnsName(p, rdata + rdlen, q, skip, q, error)) return false;
      if (rdata + rdlen - q != 20) {
        error = "SOA RDATA of the wrong size";
        return false;
      }
      out.hasSoa = true;
      out.soaNegativeTtl = std::min(ttl, dnsReadU32(p + q + 16));
    }
  }
  off = rdata + rdlen;
  return true;
}

}  // namespace

uint32_t dnsReadU32(const uint8_t* p) noexcept {
  return (static_cast<uint32_t>(p[0]) << 24) | (static_cast<uint32_t>(p[1]) << 16) |
         (static_cast<uint32_t>(p[2]) << 8) | p[3];
}

void dnsWriteU32(uint8_t* p, uint32_t v) noexcept {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}

void dnsSetId(uint8_t* msg, uint16_t id) noexcept {
  msg[0] = static_cast<uint8_t>(id >> 8);
  msg[1] = static_cast<uint8_t>(id);
}

bool readDnsName(const uint8_t* p, size_t n, size_t offset, std::string& wire, size_t& next,
                 std::string& error) {
  wire.clear();
  size_t pos = offset;
  bool jumped = false;
  // Every pointer must go strictly backwards from the label that holds it,
  // so the walk ends; the hop cap is a second fence.
  size_t floor = offset;
  int hops = 0;
  for (;;) {
    if (pos >= n) {
      error = "name past the end";
      return false;
    }
    uint8_t len = p[pos];
    if ((len & 0xC0) == 0xC0) {
      if (n - pos < 2) {
        error = "compression pointer past the end";
        return false;
      }
      size_t target = static_cast<size_t>(u16(p + pos) & 0x3FFF);
      if (target >= floor || ++hops > 64) {
        error = "compression pointer that does not point backwards";
        return false;
      }
      if (!jumped) next = pos + 2;
      jumped = true;
      floor = target;
      pos = target;
      continue;
    }
    if ((len & 0xC0) != 0) {
      error = "unsupported label type";
      return false;
    }
    if (wire.size() + 1 + len > kDnsMaxName) {
      error = "name longer than 255 bytes";
      return false;
    }
    if (len == 0) {
      wire.push_back('\0');
      if (!jumped) next = pos + 1;
      return true;
    }
    if (n - pos - 1 < len) {
      error = "label past the end";
      return false;
    }
    wire.push_back(static_cast<char>(len));
    for (size_t i = 0; i < len; ++i) {
      uint8_t c = p[pos + 1 + i];
      if (c >= 'A' && c <= 'Z') c = static_cast<uint8_t>(c - 'A' + 'a');
      wire.push_back(static_cast<char>(c));
    }
    pos += 1 + len;
    if (!jumped) floor = std::max(floor, pos);
  }
}

bool parseDnsMessage(const uint8_t* p, size_t n, DnsMessage& out, std::string& error) {
  out = DnsMessage{};
  if (n < kDnsHeaderSize) {
    error = "shorter than a DNS header";
    return false;
  }
  out.id = u16(p);
  out.flags = u16(p + 2);
  out.qdcount = u16(p + 4);
  out.ancount = u16(p + 6);
  out.nscount = u16(p + 8);
  out.arcount = u16(p + 10);
  if (out.qdcount > kDnsMaxQuestions) {
    error = "too many questions";
    return false;
  }
  out.minAnswerTtl = UINT32_MAX;
  size_t off = kDnsHeaderSize;
  for (uint16_t i = 0; i < out.qdcount; ++i) {
    DnsQuestion q;
    size_t next = 0;
    if (!readDnsName(p, n, off, q.wireName, next, error)) return false;
    if (n - next < 4) {
      error = "question past the end";
      return false;
    }
    q.type = u16(p + next);
    q.klass = u16(p + next + 2);
    off = next + 4;
    out.questions.push_back(std::move(q));
  }
  out.questionsEnd = off;
  // Each record is at least 11 bytes: a count larger than the rest of the
  // message can hold is rejected before any work.
  size_t records = size_t{out.ancount} + out.nscount + out.arcount;
  if (records > (n - off) / 11) {
    error = "record counts larger than the message";
    return false;
  }
  const uint16_t counts[3] = {out.ancount, out.nscount, out.arcount};
  for (int section = 0; section < 3; ++section) {
    for (uint16_t i = 0; i < counts[section]; ++i) {
      if (!readRecord(p, n, off, section + 1, out, error)) return false;
    }
  }
  if (out.ancount == 0) out.minAnswerTtl = 0;
  return true;
}

std::string DnsQuestion::text() const {
  std::string s;
  size_t i = 0;
  while (i < wireName.size()) {
    auto len = static_cast<uint8_t>(wireName[i]);
    if (len == 0) break;
    for (size_t j = 1; j <= len && i + j < wireName.size(); ++j) {
      auto c = static_cast<uint8_t>(wireName[i + j]);
      if (c > 0x20 && c < 0x7F && c != '.' && c != '\\') {
        s.push_back(static_cast<char>(c));
      } else {
        s += "\\" + std::to_string(c / 100) + std::to_string(c / 10 % 10) + std::to_string(c % 10);
      }
    }
    s.push_back('.');
    i += 1 + len;
  }
  return s.empty() ? "." : s;
}

std::vector<std::vector<uint8_t>> dnsAnswerAddresses(const uint8_t* p, size_t n,
                                                     const DnsMessage& m, uint16_t type) {
  std::vector<std::vector<uint8_t>> out;
  const size_t want = type == 1 ? 4 : type == 28 ? 16 : 0;
  if (want == 0) return out;
  // ttlOffsets lists every record but OPT in message order, so the first
  // ancount of them are the answers: TYPE(2) CLASS(2) before the TTL(4),
  // RDLEN(2) and RDATA after it.
  for (size_t i = 0; i < m.ancount && i < m.ttlOffsets.size(); ++i) {
    const size_t off = m.ttlOffsets[i];
    if (off < 4 || off + 6 > n) continue;
    const uint16_t rtype = static_cast<uint16_t>(p[off - 4] << 8 | p[off - 3]);
    const size_t rdlen = static_cast<size_t>(p[off + 4] << 8 | p[off + 5]);
    if (rtype != type || rdlen != want || off + 6 + rdlen > n) continue;
    out.emplace_back(p + off + 6, p + off + 6 + rdlen);
  }
  return out;
}

}  // namespace vt::codec
