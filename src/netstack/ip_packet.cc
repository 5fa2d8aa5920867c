#include "netstack/ip_packet.h"

#include "core/bytes.h"

namespace vt::netstack {
namespace {

constexpr uint8_t kProtoIcmp = 1;
constexpr uint8_t kProtoTcp = 6;
constexpr uint8_t kProtoUdp = 17;
constexpr uint8_t kProtoIpv6Frag = 44;
constexpr uint8_t kProtoIcmp6 = 58;

// Transport header at p[0..n): n is what the IP header says it carries.
bool parseTransport(const uint8_t* p, size_t n, IpPacketInfo& out) noexcept {
  if (out.protocol == kProtoTcp) {
    if (n < 20) return false;
    size_t doff = static_cast<size_t>(p[12] >> 4) * 4;
    if (doff < 20 || doff > n) return false;
    out.kind = IpKind::kTcp;
    out.srcPort = loadBe16(p);
    out.dstPort = loadBe16(p + 2);
    out.seq = loadBe32(p + 4);
    out.ack = loadBe32(p + 8);
    out.tcpFlags = p[13];
    out.payloadLen = n - doff;
    return true;
  }
  if (out.protocol == kProtoUdp) {
    if (n < 8) return false;
    out.kind = IpKind::kUdp;
    out.srcPort = loadBe16(p);
    out.dstPort = loadBe16(p + 2);
    return true;
  }
  out.kind = (out.protocol == kProtoIcmp && out.version == 4) ||
                     (out.protocol == kProtoIcmp6 && out.version == 6)
                 ? IpKind::kIcmp
                 : IpKind::kOther;
  return true;
}

}  // namespace

bool isUnicast(const IpAddress& a) noexcept {
  if (a.isV4()) {
    const uint32_t v = loadBe32(a.bytes.data());
    return v != 0 && v != 0xffffffffu && (v >> 28) != 0xe;  // 224.0.0.0/4
  }
  if (a.isV6()) {
    if (a.bytes[0] == 0xff) return false;  // ff00::/8
    for (uint8_t b : a.bytes) {
      if (b != 0) return true;
    }
    return false;  // ::
  }
  return false;
}

bool parseIpPacket(const uint8_t* p, size_t n, IpPacketInfo& out) noexcept {
  out = IpPacketInfo{};
  if (p == nullptr || n < 1) return false;
  out.version = p[0] >> 4;
  if (out.version == 4) {
    if (n < 20) return false;
    size_t ihl = static_cast<size_t>(p[0] & 0x0f) * 4;
    size_t total = loadBe16(p + 2);
    if (ihl < 20 || ihl > n || total < ihl || total > n) return false;
    out.ipHeaderLen = ihl;
    out.totalLen = total;
    out.protocol = p[9];
    out.src = IpAddress::v4(p + 12);
    out.dst = IpAddress::v4(p + 16);
    uint16_t frag = loadBe16(p + 6);
    if ((frag & 0x2000) != 0 || (frag & 0x1fff) != 0) {
      out.kind = IpKind::kFragment;
      return true;
    }
    return parseTransport(p + ihl, total - ihl, out);
  }
  if (out.version == 6) {
    if (n < 40) return false;
    size_t total = size_t{loadBe16(p + 4)} + 40;
    if (total > n) return false;  // jumbograms (length 0 + hop-by-hop) are "other" below
    out.ipHeaderLen = 40;
    out.totalLen = total;
    out.protocol = p[6];
    out.src = IpAddress::v6(p + 8);
    out.dst = IpAddress::v6(p + 24);
    if (out.protocol == kProtoIpv6Frag) {
      out.kind = IpKind::kFragment;
      return true;
    }
    return parseTransport(p + 40, total - 40, out);
  }
  return false;
}

}  // namespace vt::netstack
