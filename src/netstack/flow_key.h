// IpAddress and FlowKey: the addresses of a flow as seen on the TUN. The
// "src" side is the app (client) that sent the SYN, "dst" the remote it
// wants to reach (and which lwIP impersonates).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace vt::netstack {

struct IpAddress {
  uint8_t family = 0;               // 4 or 6; 0 = none
  std::array<uint8_t, 16> bytes{};  // IPv4 uses the first 4

  static IpAddress v4(const uint8_t* p) noexcept {
    IpAddress a;
    a.family = 4;
    std::memcpy(a.bytes.data(), p, 4);
    return a;
  }
  static IpAddress v6(const uint8_t* p) noexcept {
    IpAddress a;
    a.family = 6;
    std::memcpy(a.bytes.data(), p, 16);
    return a;
  }
  // Parses dotted IPv4 or textual IPv6; false if neither.
  static bool parse(const std::string& text, IpAddress& out) noexcept;

  bool isV4() const noexcept { return family == 4; }
  bool isV6() const noexcept { return family == 6; }
  size_t size() const noexcept { return family == 4 ? 4 : family == 6 ? 16 : 0; }
  std::string toString() const;

  friend bool operator==(const IpAddress& a, const IpAddress& b) noexcept {
    return a.family == b.family && a.bytes == b.bytes;
  }
};

struct FlowKey {
  IpAddress src;  // the app
  uint16_t srcPort = 0;
  IpAddress dst;  // where the app connects to
  uint16_t dstPort = 0;

  // "10.0.0.2:40000 -> 1.2.3.4:443", IPv6 in brackets.
  std::string toString() const;

  friend bool operator==(const FlowKey& a, const FlowKey& b) noexcept {
    return a.srcPort == b.srcPort && a.dstPort == b.dstPort && a.src == b.src && a.dst == b.dst;
  }
};

// One end of a UDP exchange on the TUN: the app's socket (address + port)
// or a remote it talks to. UDP sessions are keyed by the app's endpoint.
struct UdpEndpoint {
  IpAddress addr;
  uint16_t port = 0;

  // "10.0.0.2:5353", IPv6 in brackets.
  std::string toString() const;

  friend bool operator==(const UdpEndpoint& a, const UdpEndpoint& b) noexcept {
    return a.port == b.port && a.addr == b.addr;
  }
};

struct UdpEndpointHash {
  size_t operator()(const UdpEndpoint& e) const noexcept {
    uint64_t h = 1469598103934665603ull;  // FNV-1a: short keys, no allocation
    auto mix = [&h](uint8_t b) { h = (h ^ b) * 1099511628211ull; };
    mix(e.addr.family);
    for (size_t i = 0; i < e.addr.size(); ++i) mix(e.addr.bytes[i]);
    mix(static_cast<uint8_t>(e.port >> 8));
    mix(static_cast<uint8_t>(e.port));
    return static_cast<size_t>(h);
  }
};

}  // namespace vt::netstack
