// IpSession: the IP relay of one VLESS v1 connection with CMD 5
// (docs/protocol.md 3.7, docs/server.md "IP sessions (CMD 5)").
//
//   client --LEN(2) packet--> parse (ip_nat.h) -> source check -> destination
//     check -> source := the session's pool address -> the server's TUN
//   TUN -> IpExit (lease table: destination -> session) -> destination :=
//     the client's own address -> LEN(2) packet --> client
//
// The client's own address per family is the source of its first packet of
// that family; later packets with another source are dropped (spoofed).
// Every refusal drops only the packet and counts it by reason; a framing
// error (the codec's Invalid: LEN 0, bad version nibble, too short) ends
// the session. Toward the client nothing queues beyond the client stream's
// write queue, which is bounded by ip.queue_packets packets of ip.mtu
// bytes and by the stream's high watermark: past either, packets are
// dropped (IP is unreliable; the senders' congestion control adapts).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "buffer/buffer_chain.h"
#include "codec/ip_nat.h"
#include "event/loop.h"
#include "event/timer.h"
#include "stream/stream.h"

namespace vt::server {

class Server;
class IpExit;

// Why a packet was dropped; the parse errors are counted apart
// (codec::IpPacketError).
enum class IpDrop : uint8_t {
  kSpoofed = 0,      // source other than the client's first one
  kBadSource,        // multicast / broadcast source
  kDstUnspecified,   // 0.0.0.0/8, ::
  kDstLoopback,      // 127/8, ::1
  kDstMulticast,     // multicast or broadcast
  kDstOwn,           // the server's own addresses (TUN gateway, interfaces)
  kDstPool,          // another session's pool address
  kDstEgress,        // the egress policy refuses it
  kNoAddress,        // no pool for the family, or the pool exhausted
  kTunFull,          // the TUN's queue was full (EAGAIN) or the write failed
  kClientSlow,       // toward the client: above its watermark or queue full
  kUnknownDst,       // from the TUN: no session holds the destination (IpExit)
  kBadFromTun,       // from the TUN: unparseable (IpExit)
};
inline constexpr size_t kIpDropCount = 13;
const char* ipDropName(IpDrop d) noexcept;

struct IpCounters {
  uint64_t pkts_up = 0, bytes_up = 0, pkts_down = 0, bytes_down = 0;
  std::array<uint64_t, kIpDropCount> drops{};
  std::array<uint64_t, codec::kIpPacketErrorCount> parse{};  // index: IpPacketError
  void add(const IpCounters& o);
  uint64_t dropped() const;
  // "spoofed=1 dst_own=2 parse[ihl too small]=1" (non-zero ones only), or "none".
  std::string dropsText() const;
};

class IpSession {
 public:
  using CloseFn = std::function<void(stream::CloseReason, const std::string&)>;

  // `in`: the client stream, alive until shutdown(). `close` asks the owner
  // to close the connection (which then calls shutdown()).
  IpSession(Server& server, IpExit& exit, stream::Stream& in, std::string user, std::string peer,
            uint64_t conn_id, CloseFn close);
  ~IpSession();
  IpSession(const IpSession&) = delete;
  IpSession& operator=(const IpSession&) = delete;

  // Registers with the exit (caps); false, with close() already asked,
  // when refused. `payload`: bytes after the request header.
  bool start(BufferChain& payload, bool end_stream);
  void onData(BufferChain& data, bool end_stream);
  void onWatermark(bool above) { client_slow_ = above; }
  // Admitted by the exit (start() returned true).
  bool started() const { return id_ != 0; }
  // A packet from the TUN for our leased address (p, info from the parser).
  void deliver(uint8_t* p, codec::RawIpPacket& info);
  // Leaves the exit (the addresses start their grace), logs the one line.
  // Idempotent.
  void shutdown(stream::CloseReason reason, const std::string& detail);
  // Stats: the session's counters and its last packet's time.
  const IpCounters& counters() const { return c_; }
  uint64_t lastActiveMs() const { return last_active_ms_; }

 private:
  void up(uint8_t* p, size_t n);
  void drop(IpDrop d);
  // Why `dst` may not be reached, or kSpoofed... as "none" (returns false).
  bool refuseDestination(const codec::RawIpPacket& info, IpDrop& why);
  void onIdleTimer();

  Server& server_;
  IpExit& exit_;
  event::Loop& loop_;
  stream::Stream& in_;
  std::string user_;
  std::string peer_;
  uint64_t conn_id_;
  CloseFn close_;
  uint64_t id_ = 0;  // in the lease table; 0 before start
  bool done_ = false;
  bool client_slow_ = false;
  BufferChain buf_;  // client bytes not yet a whole unit
  std::optional<codec::IpAddressBytes> client4_, client6_;  // the client's own
  std::optional<codec::IpAddressBytes> lease4_, lease6_;
  IpCounters c_;
  event::Timer idle_timer_;
  uint64_t started_ms_;
  uint64_t last_active_ms_;
};

}  // namespace vt::server
