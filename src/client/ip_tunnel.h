// IpTunnel: the client's one CmdIP session (VLESS v1 CMD 5, docs/protocol.md
// 3.7; docs/client.md "IP passthrough (CmdIP)").
//
//   NetStack --onOtherPacket--> Client --> IpTunnel --LEN(2) packet--> Vless[Tls[Tcp]] -> server
//   TUN <-- PacketSink (TunPump) <-- IpTunnel <--LEN(2) packet-- server
//
// One connection of its own (never inside the mux), opened on the first
// packet. While it connects, or waits to reconnect, packets wait in a queue
// bounded by queue_packets and queue_bytes (framed bytes); beyond either
// bound they are dropped and counted. Once connected they are written at
// once, unless the connection is above its high watermark (dropped and
// counted: IP may lose, nothing here grows without bound).
//
// After a failure (the dial failed, or the connection ended before the
// server sent anything) the next dial waits 200 ms, doubling to 2 s; the
// wait resets once the server was reached (a packet came back here, or any
// other connection of the client reached the server since). The queue
// survives a failure; a dial starts as soon as the wait is over and
// something is queued.
//
// Packets from the server are framed units (codec::decodeIpPacket); each
// must parse as one whole IPv4/IPv6 packet (codec::parseRawIpPacket: exact
// lengths, IPv4 header checksum, ...) or it is dropped and counted. Bad
// framing (LEN 0, a version nibble other than 4/6) closes the connection
// (protocol error), which reconnects like a failure.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "buffer/buffer_chain.h"
#include "event/loop.h"
#include "event/timer.h"
#include "stream/vless_client_stream.h"

namespace vt::client {

// What the tunnel needs from its owner (the Client; a fake in tests).
class IpTunnelHost {
 public:
  // A new, unconnected VLESS v1 stream carrying a CMD 5 request; null when
  // it cannot be made now (server address not known yet): retried after
  // the backoff.
  virtual std::unique_ptr<stream::VlessClientStream> openIpStream() = 0;
  // One packet from the server for the TUN; bytes valid during the call.
  virtual void deliverIpPacket(const uint8_t* packet, size_t len) = 0;
  // The server answered on this connection.
  virtual void onIpServerReached() {}
  // A dial failed before the connection was up.
  virtual void onIpDialFailed() {}
  // loop time (ms) when any connection last reached the server; 0: never.
  virtual uint64_t ipServerReachedMs() const { return 0; }

 protected:
  ~IpTunnelHost() = default;
};

struct IpTunnelOptions {
  uint32_t queuePackets = 256;
  uint64_t queueBytes = 256 * 1024;
  uint64_t connectTimeoutMs = 10'000;
};

struct IpTunnelStats {
  uint64_t packetsUp = 0;  // written to the server connection
  uint64_t bytesUp = 0;    // IP bytes (without the LEN prefixes)
  uint64_t packetsDown = 0;  // handed to the TUN writer
  uint64_t bytesDown = 0;
  // Drops, by reason.
  uint64_t dropQueueFull = 0;    // while connecting: over queue_packets / queue_bytes
  uint64_t dropCongested = 0;    // connected, but the connection is above its high watermark
  uint64_t dropTooBig = 0;       // cannot be framed (over 65535 bytes)
  uint64_t dropStopped = 0;      // after stop(), and what was queued then
  uint64_t dropInvalidDown = 0;  // from the server: not a well-formed IP packet
  // Connections.
  uint64_t dials = 0;
  uint64_t reconnects = 0;     // dials after the first
  uint64_t connectFailed = 0;  // closed before connected (refused, TLS, timeout, no address)
  uint64_t lost = 0;           // closed after connected (server closed, reset, protocol error)
  uint64_t protocolErrors = 0;  // of lost: bad framing from the server

  uint64_t drops() const {
    return dropQueueFull + dropCongested + dropTooBig + dropStopped + dropInvalidDown;
  }
};

class IpTunnel final : private stream::StreamCallbacks {
 public:
  static constexpr uint64_t kFirstBackoffMs = 200;
  static constexpr uint64_t kMaxBackoffMs = 2'000;

  IpTunnel(event::Loop& loop, IpTunnelHost& host, const IpTunnelOptions& options);
  ~IpTunnel();
  IpTunnel(const IpTunnel&) = delete;
  IpTunnel& operator=(const IpTunnel&) = delete;

  // One whole IP packet from the TUN (copied; valid during the call). False
  // if it was dropped (counted).
  bool send(const uint8_t* packet, size_t len);
  // Closes the connection, drops (counts) what is queued, refuses from now
  // on. Idempotent.
  void stop();

  const IpTunnelStats& stats() const { return stats_; }
  bool connected() const { return state_ == State::kConnected; }
  bool connecting() const { return state_ == State::kConnecting; }
  size_t queuedPackets() const { return queuedPackets_; }
  size_t queuedBytes() const { return queue_.size(); }
  // The current wait before a dial after failures (0: none).
  uint64_t backoffMs() const { return backoffMs_; }

 private:
  enum class State { kIdle, kWaiting, kConnecting, kConnected, kStopped };

  void dial();
  void dialWhenAllowed();
  // The connection ended (`failed`: the server was not reached on it).
  void ended(const char* why, bool failed, const std::string& detail);
  void closeLocally(stream::CloseReason reason);
  void decode();

  void onConnected() override;
  void onData(BufferChain& data, bool end_stream) override;
  void onAboveHighWatermark() override { above_ = true; }
  void onBelowLowWatermark() override { above_ = false; }
  void onClose(stream::CloseReason reason, const std::string& detail) override;

  event::Loop& loop_;
  IpTunnelHost& host_;
  IpTunnelOptions options_;
  State state_ = State::kIdle;
  std::unique_ptr<stream::VlessClientStream> out_;
  event::Timer dialTimer_;     // the backoff wait
  event::Timer connectTimer_;  // connect_timeout
  BufferChain queue_;          // framed packets waiting for the connection
  size_t queuedPackets_ = 0;
  BufferChain rx_;             // server bytes not yet a whole unit
  std::vector<uint8_t> scratch_;  // one packet, contiguous, for the parser and the TUN
  uint64_t backoffMs_ = 0;
  uint64_t noDialUntilMs_ = 0;
  uint64_t failedAtMs_ = 0;
  bool reached_ = false;  // this connection brought something back
  bool above_ = false;
  bool closingLocally_ = false;
  bool overflowLogged_ = false;  // one WARN per streak of queue drops
  IpTunnelStats stats_;
};

}  // namespace vt::client
