// UDP over IPv4/IPv6 on the TUN, beside lwIP: parsing the app's datagrams
// and fragments, and writing datagrams to the app from any source (full
// cone). No lwIP types here; NetStack does the plumbing.
//
//   UDP header (RFC 768)                  IPv6 Fragment header (RFC 8200 4.5)
//   +-------+-------+-------+-------+     +-------+-------+-------+-------+
//   |  Src Port     |  Dst Port     |     | Next  | Rsvd  | Offset(13)|00|M|
//   |  Length       |  Checksum     |     |        Identification (4)     |
//   +-------+-------+-------+-------+     +-------+-------+-------+-------+
//   Length counts the 8 header bytes.     Offset in 8-byte units.
//
//   IPv4 fragments: flags word at byte 6 = |0|DF|MF| Offset(13) |.
//
// The UDP checksum covers a pseudo header (src, dst, zero, protocol 17,
// UDP length) + header + payload; a computed 0 is sent as 0xffff since 0
// means "none" (allowed for IPv4 only).
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "buffer/buffer_chain.h"
#include "netstack/flow_key.h"

namespace vt::netstack {

inline constexpr uint8_t kIpProtoUdp = 17;
inline constexpr size_t kUdpHeaderLen = 8;
inline constexpr size_t kIpv4HeaderLen = 20;
inline constexpr size_t kIpv6HeaderLen = 40;
inline constexpr size_t kIpv6FragHeaderLen = 8;
// Largest UDP payload: 65535 - 20 - 8 (IPv4), 65535 - 8 (IPv6 payload
// length, no jumbograms).
inline constexpr size_t kMaxUdpPayloadV4 = 65507;
inline constexpr size_t kMaxUdpPayloadV6 = 65527;

// RFC 1071 one's complement sum, fed in pieces of any length and alignment.
class InetChecksum {
 public:
  void add(const uint8_t* p, size_t n) noexcept;
  void add(const BufferChain& chain) noexcept;
  void addBe16(uint16_t v) noexcept;
  // The complemented, folded sum (what goes into a header field).
  uint16_t finish() const noexcept;

 private:
  uint64_t acc_ = 0;
  bool odd_ = false;  // an odd number of bytes so far: next byte is low
};

// The UDP datagram in a transport segment of `segLen` bytes (what the IP
// header says it carries). False if the header is cut or its length field
// is < 8 or > segLen. Bytes beyond the UDP length (padding) are ignored.
struct UdpHeaderInfo {
  uint16_t srcPort = 0;
  uint16_t dstPort = 0;
  size_t payloadLen = 0;
};
bool parseUdpHeader(const uint8_t* seg, size_t segLen, UdpHeaderInfo& out) noexcept;

// One IP fragment: IPv4 with MF or an offset, or IPv6 whose first next
// header is Fragment (44). Other extension-header chains are not parsed.
struct FragmentInfo {
  uint8_t version = 0;
  IpAddress src;
  IpAddress dst;
  uint32_t id = 0;        // IPv4: 16 bits
  uint8_t protocol = 0;   // of the reassembled payload
  size_t offset = 0;      // bytes
  bool more = false;      // MF / M flag
  size_t dataOffset = 0;  // where this fragment's data starts in the packet
  size_t dataLen = 0;
};
// False if malformed: cut headers, lengths that do not fit, a non-last
// fragment whose length is not a multiple of 8, or an end past the largest
// datagram the header format allows.
bool parseFragment(const uint8_t* p, size_t n, FragmentInfo& out) noexcept;

// Writes UDP datagrams as IP packets: headers into an internal buffer, the
// payload referenced in place (no copy), one emit call per packet. A
// datagram larger than the MTU is split into fragments (IPv4: MF/offset;
// IPv6: a Fragment header), since the app's kernel reassembles.
class UdpPacketWriter {
 public:
  // One packet; iov[0..count) (iov[0] the headers) valid during the call.
  using EmitFn = void (*)(void* ctx, const iovec* iov, int count, size_t size);

  enum class Result { kOk, kFamilyMismatch, kTooBig, kBadAddress };

  explicit UdpPacketWriter(uint16_t mtu) noexcept : mtu_(mtu) {}

  // `from` and `to` must be the same family (an IPv4-mapped IPv6 `from`
  // with an IPv4 `to` counts as IPv4); ports may be anything but 0.
  Result write(const UdpEndpoint& from, const UdpEndpoint& to, const BufferChain& payload,
               EmitFn emit, void* ctx);

  uint64_t fragmentsWritten() const noexcept { return fragments_; }

 private:
  static constexpr int kMaxIov = 64;
  struct Piece {
    const uint8_t* p;
    size_t n;
  };
  // Fills iov with bytes [begin, end) of the transport stream (UDP header
  // + payload); returns the count. Never more than pieceCount_.
  int gather(size_t begin, size_t end, iovec* iov) const noexcept;

  uint16_t mtu_;
  uint16_t nextId4_ = 1;
  uint32_t nextId6_ = 1;
  uint64_t fragments_ = 0;
  uint8_t header_[kIpv6HeaderLen + kIpv6FragHeaderLen] = {};
  uint8_t udpHeader_[kUdpHeaderLen] = {};
  // The UDP header + the payload's slices; a payload of more slices than
  // fit is flattened into scratch_ first (rare: one copy).
  Piece pieces_[kMaxIov - 1] = {};
  size_t pieceCount_ = 0;
  std::vector<uint8_t> scratch_;
};

// IPv4-mapped IPv6 (::ffff:a.b.c.d) as IPv4, anything else unchanged.
IpAddress unmapV4(const IpAddress& a) noexcept;

}  // namespace vt::netstack
