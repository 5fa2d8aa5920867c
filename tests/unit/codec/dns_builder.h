// Test-only DNS message builder (queries and simple answers).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace vt::test {

inline void dnsPut16(std::vector<uint8_t>& v, uint16_t x) {
  v.push_back(static_cast<uint8_t>(x >> 8));
  v.push_back(static_cast<uint8_t>(x));
}
inline void dnsPut32(std::vector<uint8_t>& v, uint32_t x) {
  dnsPut16(v, static_cast<uint16_t>(x >> 16));
  dnsPut16(v, static_cast<uint16_t>(x));
}
// "example.test" -> 7example4test0
inline void dnsPutName(std::vector<uint8_t>& v, const std::string& name) {
  size_t start = 0;
  while (start < name.size()) {
    size_t dot = name.find('.', start);
    if (dot == std::string::npos) dot = name.size();
    v.push_back(static_cast<uint8_t>(dot - start));
    v.insert(v.end(), name.begin() + static_cast<long>(start), name.begin() + static_cast<long>(dot));
    start = dot + 1;
  }
  v.push_back(0);
}
inline std::vector<uint8_t> dnsHeader(uint16_t id, uint16_t flags, uint16_t qd, uint16_t an,
                                      uint16_t ns, uint16_t ar) {
  std::vector<uint8_t> v;
  for (uint16_t x : {id, flags, qd, an, ns, ar}) dnsPut16(v, x);
  return v;
}
inline std::vector<uint8_t> dnsQuery(uint16_t id, const std::string& name, uint16_t type = 1) {
  auto v = dnsHeader(id, 0x0100, 1, 0, 0, 0);
  dnsPutName(v, name);
  dnsPut16(v, type);
  dnsPut16(v, 1);
  return v;
}
// A response to dnsQuery(id, name, 1) with A records (names compressed to
// the question), `rcode` and extra flag bits (e.g. 0x0200 TC).
inline std::vector<uint8_t> dnsAnswerA(uint16_t id, const std::string& name,
                                       const std::vector<uint32_t>& ttls, uint8_t rcode = 0,
                                       uint16_t extraFlags = 0) {
  auto v = dnsHeader(id, static_cast<uint16_t>(0x8180 | extraFlags | rcode), 1,
                     static_cast<uint16_t>(ttls.size()), 0, 0);
  dnsPutName(v, name);
  dnsPut16(v, 1);
  dnsPut16(v, 1);
  uint8_t last = 1;
  for (uint32_t ttl : ttls) {
    dnsPut16(v, 0xC00C);
    dnsPut16(v, 1);
    dnsPut16(v, 1);
    dnsPut32(v, ttl);
    dnsPut16(v, 4);
    v.insert(v.end(), {198, 18, 1, last++});
  }
  return v;
}
// NXDOMAIN with an SOA (TTL soaTtl, MINIMUM `minimum`) in authority.
inline std::vector<uint8_t> dnsNxDomain(uint16_t id, const std::string& name, uint32_t soaTtl,
                                        uint32_t minimum) {
  auto v = dnsHeader(id, 0x8183, 1, 0, 1, 0);
  dnsPutName(v, name);
  dnsPut16(v, 1);
  dnsPut16(v, 1);
  dnsPut16(v, 0xC00C);
  dnsPut16(v, 6);
  dnsPut16(v, 1);
  dnsPut32(v, soaTtl);
  std::vector<uint8_t> rd;
  dnsPutName(rd, "ns.test");
  dnsPut16(rd, 0xC00C);  // RNAME compressed to the question
  for (uint32_t x : {1u, 2u, 3u, 4u, minimum}) dnsPut32(rd, x);
  dnsPut16(v, static_cast<uint16_t>(rd.size()));
  v.insert(v.end(), rd.begin(), rd.end());
  return v;
}

}  // namespace vt::test
