#include "codec/icmp_error.h"

#include <algorithm>
#include <cstring>

#include "core/bytes.h"

namespace vt::codec {
namespace {

constexpr size_t kMaxTotal4 = 576;
constexpr size_t kMaxTotal6 = 1280;

void put16(uint8_t* p, uint16_t v) { storeBe16(p, v); }

// One's-complement sum of 16-bit words, not yet folded or inverted.
uint32_t sum16(const uint8_t* p, size_t n, uint32_t acc = 0) {
  for (size_t i = 0; i + 1 < n; i += 2) acc += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
  if (n % 2 != 0) acc += static_cast<uint32_t>(p[n - 1] << 8);
  return acc;
}

uint16_t fold(uint32_t acc) {
  while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
  return static_cast<uint16_t>(~acc);
}

// An IPv4 or IPv6 header for `payload_len` bytes of `proto` from src to dst.
void ipHeader(bool v6, uint8_t* h, const uint8_t* src, const uint8_t* dst, uint8_t proto,
              size_t payload_len) {
  if (v6) {
    h[0] = 0x60;
    put16(h + 4, static_cast<uint16_t>(payload_len));
    h[6] = proto;
    h[7] = 64;
    std::memcpy(h + 8, src, 16);
    std::memcpy(h + 24, dst, 16);
    return;
  }
  h[0] = 0x45;
  put16(h + 2, static_cast<uint16_t>(20 + payload_len));
  h[8] = 64;
  h[9] = proto;
  std::memcpy(h + 12, src, 4);
  std::memcpy(h + 16, dst, 4);
  put16(h + 10, fold(sum16(h, 20)));
}

}  // namespace

std::vector<uint8_t> icmpPortUnreachable(bool v6, const uint8_t* app, uint16_t appPort,
                                         const uint8_t* dst, uint16_t dstPort,
                                         const uint8_t* payload, size_t n) {
  const size_t ip = v6 ? 40 : 20;
  const size_t room = (v6 ? kMaxTotal6 : kMaxTotal4) - ip - 8 - ip - 8;
  const size_t quoted = std::min(n, room);
  std::vector<uint8_t> out(ip + 8 + ip + 8 + quoted, 0);
  uint8_t* icmp = out.data() + ip;
  uint8_t* inner = icmp + 8;
  // The refused datagram as the app sent it (UDP length from the whole payload).
  const size_t udp_len = 8 + n;
  ipHeader(v6, inner, app, dst, 17, std::min<size_t>(udp_len, 0xffff - ip));
  uint8_t* udp = inner + ip;
  put16(udp, appPort);
  put16(udp + 2, dstPort);
  put16(udp + 4, static_cast<uint16_t>(std::min<size_t>(udp_len, 0xffff)));
  if (quoted > 0) std::memcpy(udp + 8, payload, quoted);
  // The error, from the destination back to the app.
  const size_t icmp_len = 8 + ip + 8 + quoted;
  icmp[0] = v6 ? 1 : 3;  // destination unreachable
  icmp[1] = v6 ? 4 : 3;  // port unreachable
  uint32_t acc = sum16(icmp, icmp_len);
  if (v6) {
    // RFC 4443 2.3: the pseudo-header (addresses, length, next header 58).
    acc = sum16(dst, 16, acc);
    acc = sum16(app, 16, acc);
    acc += static_cast<uint32_t>(icmp_len);
    acc += 58;
  }
  put16(icmp + 2, fold(acc));
  ipHeader(v6, out.data(), dst, app, v6 ? 58 : 1, icmp_len);
  return out;
}

}  // namespace vt::codec
