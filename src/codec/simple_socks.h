// SimpleSocks (trojan-go): the header at the start of every smux stream of
// v1 Mux. No authentication, no reply. Socks5 address order and ATYP.
//
//   +--------+------+------+---------+----------------------------------
//   | CMD(1) | ATYP | ADDR | PORT(2) | CMD 1: raw TCP bytes both ways
//   |        |      |      |         | CMD 3: Trojan-style UDP packets
//   +--------+------+------+---------+----------------------------------
//   CMD 1 = TCP (port 0 is kInvalid), CMD 3 = UDP (port 0 accepted: the
//   per-packet addresses are what count). Other CMDs are kInvalid.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "buffer/buffer_chain.h"
#include "codec/address.h"

namespace vt::codec {

enum class SimpleSocksCommand : uint8_t { kTcp = 1, kUdp = 3 };

struct SimpleSocksHeader {
  SimpleSocksCommand command = SimpleSocksCommand::kTcp;
  Address target;

  friend bool operator==(const SimpleSocksHeader&, const SimpleSocksHeader&) = default;
};

// The longest valid header: CMD, ATYP, LEN, 255-byte name, PORT.
inline constexpr size_t kMaxSimpleSocksHeader = 1 + 1 + 1 + 255 + 2;

void encodeSimpleSocks(const SimpleSocksHeader& h, BufferChain& out);

struct SimpleSocksDecodeResult {
  DecodeStatus status = DecodeStatus::kNeedMore;
  size_t consumed = 0;  // header length on kDone; stream bytes follow
  std::string error;
};
// Does not drain `in`; `out` is meaningful only on kDone.
SimpleSocksDecodeResult decodeSimpleSocks(const BufferChain& in, SimpleSocksHeader& out);

// A UDP stream's header address is otherwise unused (every packet names its
// own peer), so vless-tun puts the app endpoint's udp_session id there, as
// the domain "<16 lowercase hex>.udp-session.invalid" (port 0): the server
// then keys the stream's NAT socket by (user, id) like a separated channel,
// and a stream re-opened after a network change gets the same socket, so
// the mapping remote peers see survives (docs/protocol.md 3.6).
std::string udpSessionDomain(uint64_t id);
// The id of such a domain; nullopt for anything else.
std::optional<uint64_t> parseUdpSessionDomain(std::string_view domain);

}  // namespace vt::codec
