// Test-only IPv4/IPv6 packet builder and parser with real checksums, to
// play the app side of the TUN in netstack and platform tests.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace vt::test {

constexpr uint8_t kFin = 0x01, kSyn = 0x02, kRst = 0x04, kPsh = 0x08, kAck = 0x10;

struct TcpSegment {
  std::string src;  // IPv4 or IPv6 text; both ends the same family
  std::string dst;
  uint16_t srcPort = 0;
  uint16_t dstPort = 0;
  uint32_t seq = 0;
  uint32_t ack = 0;
  uint8_t flags = 0;
  uint16_t window = 65535;
  uint16_t mss = 0;  // >0: adds an MSS option
  std::vector<uint8_t> payload;
  bool sackPermitted = false;  // adds SACK_PERM (for a SYN)
  std::vector<std::pair<uint32_t, uint32_t>> sack = {};  // SACK blocks (left, right), at most 4
  int wscale = -1;  // >=0: adds a window scale option with this shift (for a SYN)
};

std::vector<uint8_t> buildTcp(const TcpSegment& s);
// ICMP (IPv4) or ICMPv6 echo request (reply=false) or reply.
std::vector<uint8_t> buildEcho(const std::string& src, const std::string& dst, uint16_t id,
                               uint16_t seq, bool reply = false);
std::vector<uint8_t> buildUdp(const std::string& src, const std::string& dst, uint16_t srcPort,
                              uint16_t dstPort, const std::vector<uint8_t>& payload);

// Splits an IPv4 or IPv6 packet (no extension headers) into fragments of
// at most `mtu` bytes, as a kernel would: IPv4 clears DF and sets MF and
// the offset; IPv6 inserts a Fragment header. `id` is the identification.
std::vector<std::vector<uint8_t>> fragmentPacket(const std::vector<uint8_t>& packet, size_t mtu,
                                                 uint32_t id);
// The inverse, for fragments of one datagram in any order: the whole
// packet (IPv4 header with offset 0, or IPv6 without the Fragment header).
// False if they do not form one datagram or an IPv4 header checksum fails.
bool reassemblePacket(const std::vector<std::vector<uint8_t>>& fragments,
                      std::vector<uint8_t>& out);

struct ParsedPacket {
  int version = 0;
  uint8_t protocol = 0;
  std::string src, dst;
  bool checksumsOk = false;  // IPv4 header + transport checksum
  // TCP / UDP
  uint16_t srcPort = 0, dstPort = 0;
  // TCP
  uint32_t seq = 0, ack = 0;
  uint8_t flags = 0;
  uint16_t window = 0;  // raw field
  uint16_t mss = 0;     // MSS option if present
  uint8_t icmpType = 0;
  std::vector<uint8_t> payload;
};

// False if the bytes are not a well-formed IPv4/IPv6 packet.
bool parsePacket(const uint8_t* p, size_t n, ParsedPacket& out);
inline bool parsePacket(const std::vector<uint8_t>& v, ParsedPacket& out) {
  return parsePacket(v.data(), v.size(), out);
}

}  // namespace vt::test
