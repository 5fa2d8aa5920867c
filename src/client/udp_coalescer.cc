#include "client/udp_coalescer.h"

#include <cstring>

#include "netstack/udp_packet.h"

namespace vt::client {
namespace {

constexpr size_t kUdpHeader = 8;
constexpr size_t kMaxIpPacket = 65535;
constexpr uint8_t kNeedsCsum = 1;  // VIRTIO_NET_HDR_F_NEEDS_CSUM

uint16_t get16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
void put16(uint8_t* p, size_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v & 0xff);
}

// Copies the packet's bytes [from, from + n) out of its iovecs into `out`.
void gather(const netstack::PacketView& packet, size_t from, size_t n, uint8_t* out) {
  size_t at = 0;
  for (int i = 0; i < packet.iovCount && n > 0; ++i) {
    const auto* base = static_cast<const uint8_t*>(packet.iov[i].iov_base);
    size_t len = packet.iov[i].iov_len;
    if (from >= at + len) {
      at += len;
      continue;
    }
    size_t skip = from > at ? from - at : 0;
    size_t take = len - skip < n ? len - skip : n;
    std::memcpy(out, base + skip, take);
    out += take;
    n -= take;
    from += take;
    at += len;
  }
}

void setIpv4Checksum(uint8_t* ip) {
  ip[10] = ip[11] = 0;
  netstack::InetChecksum sum;
  sum.add(ip, 20);
  put16(ip + 10, sum.finish());
}

// Lengths of the packet `p` (headers of `d`, `total` bytes) and its IPv4
// header checksum; the UDP checksum is left to the caller.
void setLengths(uint8_t* p, const UdpCoalescer::Datagram& d, size_t total) {
  if (d.v6) {
    put16(p + 4, total - 40);
  } else {
    put16(p + 2, total);
    setIpv4Checksum(p);
  }
  put16(p + d.ipHeader + 4, total - d.ipHeader);
}

// The pseudo-header's sum over addresses, protocol and UDP length.
netstack::InetChecksum pseudoHeader(const uint8_t* p, const UdpCoalescer::Datagram& d,
                                    size_t udpLen) {
  netstack::InetChecksum sum;
  sum.add(p + (d.v6 ? 8 : 12), d.v6 ? 32 : 8);
  sum.addBe16(17);
  sum.addBe16(static_cast<uint16_t>(udpLen));  // < 65536 either way
  return sum;
}

}  // namespace

bool UdpCoalescer::parse(const netstack::PacketView& packet, Datagram& out) {
  if (packet.gsoSize != 0 || packet.size < 20 + kUdpHeader + 1 || packet.size > kMaxIpPacket) {
    return false;
  }
  uint8_t first[1];
  gather(packet, 0, 1, first);
  const int version = first[0] >> 4;
  if (version == 4) {
    out.v6 = false;
    out.ipHeader = 20;
  } else if (version == 6) {
    out.v6 = true;
    out.ipHeader = 40;
  } else {
    return false;
  }
  const size_t headers = out.ipHeader + kUdpHeader;
  if (packet.size <= headers) return false;  // no payload: nothing to gather
  gather(packet, 0, headers, out.head);
  const uint8_t* h = out.head;
  if (!out.v6) {
    const bool fragment = ((h[6] & 0x3f) | h[7]) != 0;  // MF or an offset
    if ((h[0] & 0x0f) != 5 || h[9] != 17 || fragment || get16(h + 2) != packet.size) return false;
  } else {
    if (h[6] != 17 || get16(h + 4) + 40u != packet.size) return false;
  }
  if (get16(h + out.ipHeader + 4) != packet.size - out.ipHeader) return false;
  out.payload = packet.size - headers;
  return true;
}

bool UdpCoalescer::joins(const Datagram& d) const {
  if (count_ == 0) return true;
  if (count_ >= kMaxSegments || d.v6 != first_.v6 || lastPayload_ != first_.payload ||
      d.payload > first_.payload || bytes_.size() + d.payload > kMaxIpPacket) {
    return false;
  }
  const uint8_t* a = first_.head;
  const uint8_t* b = d.head;
  const size_t ip = d.ipHeader;
  if (std::memcmp(a + ip, b + ip, 4) != 0) return false;  // ports
  if (d.v6) {
    // Version, traffic class and flow label; hop limit; addresses.
    return std::memcmp(a, b, 4) == 0 && a[7] == b[7] && std::memcmp(a + 8, b + 8, 32) == 0;
  }
  // TOS, TTL, DF; addresses.
  return a[1] == b[1] && a[8] == b[8] && (a[6] & 0x40) == (b[6] & 0x40) &&
         std::memcmp(a + 12, b + 12, 8) == 0;
}

void UdpCoalescer::add(const netstack::PacketView& packet, const Datagram& d) {
  const size_t headers = d.ipHeader + kUdpHeader;
  if (count_ == 0) {
    first_ = d;
    bytes_.assign(d.head, d.head + headers);
  }
  const size_t at = bytes_.size();
  bytes_.resize(at + d.payload);
  gather(packet, headers, d.payload, bytes_.data() + at);
  lastPayload_ = d.payload;
  ++count_;
}

const std::vector<uint8_t>& UdpCoalescer::build(uint8_t* vnet) {
  std::memset(vnet, 0, 10);
  if (count_ < 2) return bytes_;  // one datagram: as NetStack built it
  uint8_t* p = bytes_.data();
  const size_t ip = first_.ipHeader;
  setLengths(p, first_, bytes_.size());
  const size_t udpLen = bytes_.size() - ip;
  const uint16_t partial = static_cast<uint16_t>(~pseudoHeader(p, first_, udpLen).finish());
  put16(p + ip + 6, partial);
  vnet[0] = kNeedsCsum;
  vnet[1] = kGsoUdpL4;
  const auto le16 = [vnet](size_t at, size_t v) {
    const auto x = static_cast<uint16_t>(v);
    std::memcpy(vnet + at, &x, sizeof x);  // host order, as the TUN reads it
  };
  le16(2, ip + kUdpHeader);     // hdr_len
  le16(4, first_.payload);      // gso_size
  le16(6, ip);                  // csum_start
  le16(8, 6);                   // csum_offset: the UDP checksum
  return bytes_;
}

void UdpCoalescer::forEachDatagram(const std::function<void(const uint8_t*, size_t)>& fn) const {
  if (count_ == 0) return;
  const size_t ip = first_.ipHeader;
  const size_t headers = ip + kUdpHeader;
  std::vector<uint8_t> one;
  size_t at = headers;
  for (size_t i = 0; i < count_; ++i) {
    const size_t n = i + 1 < count_ ? first_.payload : bytes_.size() - at;
    one.assign(bytes_.begin(), bytes_.begin() + static_cast<std::ptrdiff_t>(headers));
    one.insert(one.end(), bytes_.begin() + static_cast<std::ptrdiff_t>(at),
               bytes_.begin() + static_cast<std::ptrdiff_t>(at + n));
    uint8_t* p = one.data();
    if (!first_.v6) put16(p + 4, get16(first_.head + 4) + i);  // one IPv4 ID each
    setLengths(p, first_, one.size());
    p[ip + 6] = p[ip + 7] = 0;
    netstack::InetChecksum sum = pseudoHeader(p, first_, one.size() - ip);
    sum.add(p + ip, one.size() - ip);
    uint16_t c = sum.finish();
    put16(p + ip + 6, c == 0 ? 0xffff : c);  // 0 would mean "no checksum"
    fn(one.data(), one.size());
    at += n;
  }
}

void UdpCoalescer::clear() {
  count_ = 0;
  lastPayload_ = 0;
  bytes_.clear();  // the buffer (up to 64 KiB, one per pump) is kept
}

}  // namespace vt::client
