#include "client/write_coalescer.h"

#include <cstring>

#include "netstack/udp_packet.h"

namespace vt::client {
namespace {

constexpr size_t kMaxIpPacket = 65535;
constexpr uint8_t kNeedsCsum = 1;  // VIRTIO_NET_HDR_F_NEEDS_CSUM
constexpr uint8_t kTcpAck = 0x10, kTcpPsh = 0x08;

uint16_t get16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
uint32_t get32(const uint8_t* p) {
  return (static_cast<uint32_t>(p[0]) << 24) | (static_cast<uint32_t>(p[1]) << 16) |
         (static_cast<uint32_t>(p[2]) << 8) | p[3];
}
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

// Lengths of the packet `p` (headers as in `d`, `total` bytes) and its
// IPv4 header checksum; the transport checksum is left to the caller.
void setLengths(uint8_t* p, const WriteCoalescer::Piece& d, size_t total) {
  if (d.v6) {
    put16(p + 4, total - 40);
  } else {
    put16(p + 2, total);
    p[10] = p[11] = 0;
    netstack::InetChecksum sum;
    sum.add(p, 20);
    put16(p + 10, sum.finish());
  }
  if (!d.tcp) put16(p + d.ipHeader + 4, total - d.ipHeader);  // UDP length
}

// The pseudo-header's sum over addresses, protocol and transport length.
netstack::InetChecksum pseudoHeader(const uint8_t* p, const WriteCoalescer::Piece& d,
                                    size_t l4Len) {
  netstack::InetChecksum sum;
  sum.add(p + (d.v6 ? 8 : 12), d.v6 ? 32 : 8);
  sum.addBe16(d.tcp ? 6 : 17);
  sum.addBe16(static_cast<uint16_t>(l4Len));  // < 65536 either way
  return sum;
}

size_t checksumOffset(const WriteCoalescer::Piece& d) { return d.tcp ? 16 : 6; }

}  // namespace

bool WriteCoalescer::parse(const netstack::PacketView& packet, Piece& out) {
  if (packet.gsoSize != 0 || packet.size < 20 + 8 + 1 || packet.size > kMaxIpPacket) return false;
  uint8_t first[1];
  gather(packet, 0, 1, first);
  const int version = first[0] >> 4;
  if (version != 4 && version != 6) return false;
  out.v6 = version == 6;
  out.ipHeader = out.v6 ? 40 : 20;
  if (packet.size < out.ipHeader + 20) {
    // Too short for TCP; UDP needs only 8 header bytes.
    if (packet.size <= out.ipHeader + 8) return false;
  }
  const size_t probe = packet.size < out.ipHeader + 20 ? out.ipHeader + 8 : out.ipHeader + 20;
  gather(packet, 0, probe, out.head);
  const uint8_t* h = out.head;
  uint8_t proto = 0;
  if (!out.v6) {
    const bool fragment = ((h[6] & 0x3f) | h[7]) != 0;  // MF or an offset
    if ((h[0] & 0x0f) != 5 || fragment || get16(h + 2) != packet.size) return false;
    proto = h[9];
  } else {
    if (get16(h + 4) + 40u != packet.size) return false;
    proto = h[6];
  }
  const uint8_t* l4 = h + out.ipHeader;
  if (proto == 17) {
    out.tcp = false;
    out.l4Header = 8;
    if (get16(l4 + 4) != packet.size - out.ipHeader) return false;
  } else if (proto == 6 && probe == out.ipHeader + 20) {
    out.tcp = true;
    out.l4Header = static_cast<size_t>(l4[12] >> 4) * 4;
    // ACK, or ACK|PSH; nothing else (SYN, FIN, RST, URG, ECE, CWR).
    const uint8_t flags = l4[13];
    if (out.l4Header < 20 || (flags != kTcpAck && flags != (kTcpAck | kTcpPsh)) ||
        (l4[12] & 0x0f) != 0) {
      return false;
    }
    if (packet.size < out.headers() + 1) return false;
    gather(packet, 0, out.headers(), out.head);
    out.seq = get32(l4 + 4);
  } else {
    return false;
  }
  if (packet.size <= out.headers()) return false;  // no payload: nothing to gather
  out.payload = packet.size - out.headers();
  return true;
}

bool WriteCoalescer::joins(const Piece& p) const {
  if (count_ == 0) return true;
  if (count_ >= kMaxSegments || p.v6 != first_.v6 || p.tcp != first_.tcp ||
      lastPayload_ != first_.payload || p.payload > first_.payload ||
      bytes_.size() + p.payload > kMaxIpPacket) {
    return false;
  }
  const uint8_t* a = first_.head;
  const uint8_t* b = p.head;
  const size_t ip = p.ipHeader;
  if (p.v6) {
    // Version, traffic class and flow label; hop limit; addresses.
    if (std::memcmp(a, b, 4) != 0 || a[7] != b[7] || std::memcmp(a + 8, b + 8, 32) != 0) {
      return false;
    }
  } else if (a[1] != b[1] || a[8] != b[8] || (a[6] & 0x40) != (b[6] & 0x40) ||
             std::memcmp(a + 12, b + 12, 8) != 0) {  // TOS, TTL, DF; addresses
    return false;
  }
  if (std::memcmp(a + ip, b + ip, 4) != 0) return false;  // ports
  if (!p.tcp) return true;
  // In sequence, after a segment without PSH; the same ACK number, data
  // offset, window and options (bytes 8..11, 12, 14..15, 20..).
  const uint8_t* ta = a + ip;
  const uint8_t* tb = b + ip;
  return p.seq == nextSeq_ && (lastFlags_ & kTcpPsh) == 0 && p.l4Header == first_.l4Header &&
         std::memcmp(ta + 8, tb + 8, 5) == 0 && std::memcmp(ta + 14, tb + 14, 2) == 0 &&
         std::memcmp(ta + 18, tb + 18, p.l4Header - 18) == 0;  // urgent pointer, options
}

void WriteCoalescer::add(const netstack::PacketView& packet, const Piece& p) {
  const size_t headers = p.headers();
  if (count_ == 0) {
    first_ = p;
    bytes_.assign(p.head, p.head + headers);
  }
  const size_t at = bytes_.size();
  bytes_.resize(at + p.payload);
  gather(packet, headers, p.payload, bytes_.data() + at);
  lastPayload_ = p.payload;
  if (p.tcp) {
    nextSeq_ = p.seq + static_cast<uint32_t>(p.payload);
    lastFlags_ = p.head[p.ipHeader + 13];
  }
  ++count_;
}

const std::vector<uint8_t>& WriteCoalescer::build(uint8_t* vnet) {
  std::memset(vnet, 0, 10);
  if (count_ < 2) return bytes_;  // one packet: as NetStack built it
  uint8_t* p = bytes_.data();
  const size_t ip = first_.ipHeader;
  setLengths(p, first_, bytes_.size());
  if (first_.tcp) p[ip + 13] = lastFlags_;  // PSH as the last had it; the kernel keeps it there
  const size_t l4Len = bytes_.size() - ip;
  const uint16_t partial = static_cast<uint16_t>(~pseudoHeader(p, first_, l4Len).finish());
  put16(p + ip + checksumOffset(first_), partial);
  vnet[0] = kNeedsCsum;
  vnet[1] = first_.tcp ? (first_.v6 ? kGsoTcp6 : kGsoTcp4) : kGsoUdpL4;
  const auto le16 = [vnet](size_t at, size_t v) {
    const auto x = static_cast<uint16_t>(v);
    std::memcpy(vnet + at, &x, sizeof x);  // host order, as the TUN reads it
  };
  le16(2, first_.headers());         // hdr_len
  le16(4, first_.payload);           // gso_size
  le16(6, ip);                       // csum_start
  le16(8, checksumOffset(first_));   // csum_offset
  return bytes_;
}

void WriteCoalescer::forEachPacket(const std::function<void(const uint8_t*, size_t)>& fn) const {
  if (count_ == 0 || first_.tcp) return;
  const size_t ip = first_.ipHeader;
  const size_t headers = first_.headers();
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

void WriteCoalescer::clear() {
  count_ = 0;
  lastPayload_ = 0;
  lastFlags_ = 0;
  bytes_.clear();  // the buffer (up to 64 KiB, one per pump) is kept
}

}  // namespace vt::client
