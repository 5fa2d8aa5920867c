#include "netstack/udp_packet.h"

#include <cstring>

#include "core/bytes.h"

namespace vt::netstack {
namespace {

constexpr uint8_t kProtoIpv6Frag = 44;
constexpr size_t kMaxIpv4Total = 65535;
constexpr size_t kMaxIpv6Payload = 65535;

}  // namespace

void InetChecksum::add(const uint8_t* p, size_t n) noexcept {
  if (n == 0) return;
  if (odd_) {
    acc_ += *p++;
    --n;
    odd_ = false;
  }
  uint64_t acc = acc_;
  // 64-bit accumulator: 2^48 16-bit words before it could overflow.
  for (; n >= 2; n -= 2, p += 2) acc += loadBe16(p);
  if (n == 1) {
    acc += uint64_t{*p} << 8;
    odd_ = true;
  }
  acc_ = acc;
}

void InetChecksum::add(const BufferChain& chain) noexcept {
  for (size_t i = 0; i < chain.sliceCount(); ++i) {
    const Slice& s = chain.slice(i);
    add(s.data(), s.size());
  }
}

void InetChecksum::addBe16(uint16_t v) noexcept {
  const uint8_t b[2] = {static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v)};
  add(b, 2);
}

uint16_t InetChecksum::finish() const noexcept {
  uint64_t a = acc_;
  while ((a >> 16) != 0) a = (a & 0xffff) + (a >> 16);
  return static_cast<uint16_t>(~a);
}

bool parseUdpHeader(const uint8_t* seg, size_t segLen, UdpHeaderInfo& out) noexcept {
  out = UdpHeaderInfo{};
  if (seg == nullptr || segLen < kUdpHeaderLen) return false;
  const size_t len = loadBe16(seg + 4);
  if (len < kUdpHeaderLen || len > segLen) return false;
  out.srcPort = loadBe16(seg);
  out.dstPort = loadBe16(seg + 2);
  out.payloadLen = len - kUdpHeaderLen;
  return true;
}

bool parseFragment(const uint8_t* p, size_t n, FragmentInfo& out) noexcept {
  out = FragmentInfo{};
  if (p == nullptr || n < 1) return false;
  out.version = p[0] >> 4;
  size_t dataEnd = 0;
  if (out.version == 4) {
    if (n < kIpv4HeaderLen) return false;
    const size_t ihl = static_cast<size_t>(p[0] & 0x0f) * 4;
    const size_t total = loadBe16(p + 2);
    if (ihl < kIpv4HeaderLen || ihl > n || total < ihl || total > n) return false;
    const uint16_t frag = loadBe16(p + 6);
    out.more = (frag & 0x2000) != 0;
    out.offset = static_cast<size_t>(frag & 0x1fff) * 8;
    out.id = loadBe16(p + 4);
    out.protocol = p[9];
    out.src = IpAddress::v4(p + 12);
    out.dst = IpAddress::v4(p + 16);
    out.dataOffset = ihl;
    out.dataLen = total - ihl;
    // The reassembled datagram keeps a 20-byte header: 65515 bytes of data.
    dataEnd = kMaxIpv4Total - kIpv4HeaderLen;
  } else if (out.version == 6) {
    if (n < kIpv6HeaderLen + kIpv6FragHeaderLen || p[6] != kProtoIpv6Frag) return false;
    const size_t total = size_t{loadBe16(p + 4)} + kIpv6HeaderLen;
    if (total > n || total < kIpv6HeaderLen + kIpv6FragHeaderLen) return false;
    const uint8_t* f = p + kIpv6HeaderLen;
    const uint16_t word = loadBe16(f + 2);
    out.more = (word & 1) != 0;
    out.offset = static_cast<size_t>(word >> 3) * 8;
    out.id = loadBe32(f + 4);
    out.protocol = f[0];
    out.src = IpAddress::v6(p + 8);
    out.dst = IpAddress::v6(p + 24);
    out.dataOffset = kIpv6HeaderLen + kIpv6FragHeaderLen;
    out.dataLen = total - out.dataOffset;
    dataEnd = kMaxIpv6Payload;
  } else {
    return false;
  }
  // Offset 0 without M is an IPv6 "atomic fragment" (RFC 6946): a whole
  // datagram, passed through the reassembler like any other.
  if (out.more && (out.dataLen == 0 || out.dataLen % 8 != 0)) return false;
  return out.offset + out.dataLen <= dataEnd;
}

IpAddress unmapV4(const IpAddress& a) noexcept {
  static constexpr uint8_t kPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (a.isV6() && std::memcmp(a.bytes.data(), kPrefix, 12) == 0) {
    return IpAddress::v4(a.bytes.data() + 12);
  }
  return a;
}

UdpPacketWriter::Result UdpPacketWriter::write(const UdpEndpoint& fromIn, const UdpEndpoint& to,
                                               const BufferChain& payload, EmitFn emit, void* ctx) {
  UdpEndpoint from = fromIn;
  if (to.addr.isV4()) from.addr = unmapV4(from.addr);
  if (from.addr.family != to.addr.family || !(to.addr.isV4() || to.addr.isV6())) {
    return Result::kFamilyMismatch;
  }
  if (from.port == 0 || to.port == 0) return Result::kBadAddress;
  const bool v4 = to.addr.isV4();
  if (payload.size() > (v4 ? kMaxUdpPayloadV4 : kMaxUdpPayloadV6)) return Result::kTooBig;

  const size_t udpLen = kUdpHeaderLen + payload.size();
  const size_t alen = v4 ? 4 : 16;
  InetChecksum sum;
  sum.add(from.addr.bytes.data(), alen);
  sum.add(to.addr.bytes.data(), alen);
  sum.addBe16(kIpProtoUdp);
  // IPv6 pseudo header has a 32-bit length; udpLen < 65536 either way.
  sum.addBe16(static_cast<uint16_t>(udpLen));
  storeBe16(udpHeader_, from.port);
  storeBe16(udpHeader_ + 2, to.port);
  storeBe16(udpHeader_ + 4, static_cast<uint16_t>(udpLen));
  storeBe16(udpHeader_ + 6, 0);
  sum.add(udpHeader_, kUdpHeaderLen);
  sum.add(payload);
  uint16_t csum = sum.finish();
  storeBe16(udpHeader_ + 6, csum == 0 ? 0xffff : csum);

  pieceCount_ = 0;
  pieces_[pieceCount_++] = Piece{udpHeader_, kUdpHeaderLen};
  if (payload.sliceCount() + 1 > sizeof pieces_ / sizeof pieces_[0]) {
    scratch_.resize(payload.size());
    payload.copyOut(0, scratch_.data(), scratch_.size());
    pieces_[pieceCount_++] = Piece{scratch_.data(), scratch_.size()};
  } else {
    for (size_t i = 0; i < payload.sliceCount(); ++i) {
      const Slice& s = payload.slice(i);
      if (!s.empty()) pieces_[pieceCount_++] = Piece{s.data(), s.size()};
    }
  }

  const size_t ipHdr = v4 ? kIpv4HeaderLen : kIpv6HeaderLen;
  const bool fragment = ipHdr + udpLen > mtu_;
  // Non-last fragments carry a multiple of 8 bytes.
  const size_t perFrag =
      fragment ? ((mtu_ - ipHdr - (v4 ? 0 : kIpv6FragHeaderLen)) & ~size_t{7}) : udpLen;
  const uint16_t id4 = nextId4_++;
  const uint32_t id6 = nextId6_++;

  iovec iov[kMaxIov];
  for (size_t off = 0; off < udpLen; off += perFrag) {  // udpLen >= 8
    const size_t end = off + perFrag < udpLen ? off + perFrag : udpLen;
    const bool more = end < udpLen;
    size_t hdrLen = ipHdr;
    std::memset(header_, 0, sizeof header_);
    if (v4) {
      header_[0] = 0x45;
      storeBe16(header_ + 2, static_cast<uint16_t>(ipHdr + end - off));
      storeBe16(header_ + 4, id4);
      // DF off: the kernel on the app side reassembles our fragments.
      storeBe16(header_ + 6, static_cast<uint16_t>((more ? 0x2000 : 0) | (off / 8)));
      header_[8] = 64;
      header_[9] = kIpProtoUdp;
      std::memcpy(header_ + 12, from.addr.bytes.data(), 4);
      std::memcpy(header_ + 16, to.addr.bytes.data(), 4);
      InetChecksum h;
      h.add(header_, kIpv4HeaderLen);
      storeBe16(header_ + 10, h.finish());
    } else {
      header_[0] = 0x60;
      header_[6] = fragment ? kProtoIpv6Frag : kIpProtoUdp;
      header_[7] = 64;
      std::memcpy(header_ + 8, from.addr.bytes.data(), 16);
      std::memcpy(header_ + 24, to.addr.bytes.data(), 16);
      if (fragment) {
        uint8_t* f = header_ + kIpv6HeaderLen;
        f[0] = kIpProtoUdp;
        storeBe16(f + 2, static_cast<uint16_t>(off | (more ? 1 : 0)));  // off % 8 == 0
        storeBe32(f + 4, id6);
        hdrLen += kIpv6FragHeaderLen;
      }
      storeBe16(header_ + 4, static_cast<uint16_t>(hdrLen - kIpv6HeaderLen + end - off));
    }
    iov[0].iov_base = header_;
    iov[0].iov_len = hdrLen;
    const int n = 1 + gather(off, end, iov + 1);
    if (fragment) ++fragments_;
    emit(ctx, iov, n, hdrLen + end - off);
    if (!more) break;
  }
  return Result::kOk;
}

int UdpPacketWriter::gather(size_t begin, size_t end, iovec* iov) const noexcept {
  int n = 0;
  size_t pos = 0;  // stream offset of pieces_[i]
  for (size_t i = 0; i < pieceCount_ && pos < end; pos += pieces_[i].n, ++i) {
    const size_t pEnd = pos + pieces_[i].n;
    if (pEnd <= begin) continue;
    const size_t from = begin > pos ? begin - pos : 0;
    const size_t to = (end < pEnd ? end : pEnd) - pos;
    // const_cast: iovec is the writev shape; the bytes are only read.
    iov[n].iov_base = const_cast<uint8_t*>(pieces_[i].p + from);
    iov[n].iov_len = to - from;
    ++n;
  }
  return n;
}

}  // namespace vt::netstack
