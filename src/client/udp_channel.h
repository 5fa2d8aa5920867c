// UdpChannel: one VLESS UDP connection of a UdpSession.
//
//   UdpSession --datagrams--> UdpChannel --Vless[Tls[Tcp]]--> server
//
// Framing by mode (docs/protocol.md 3.4/3.5, codec/udp_packet.h):
//   separated  up: LEN payload               down: FLAG [PORT ATYP ADDR] LEN payload
//   classic    up: PORT ATYP ADDR LEN payload (both ways, address = peer)
//   v0         up/down: LEN payload (peer = the channel's remote)
// While the connection is being made, datagrams wait in a queue of at most
// udp.queue_datagrams; beyond that, and whenever the outbound is above its
// high watermark, datagrams are dropped and counted (UDP may lose; nothing
// here grows without bound). Hostile framing from the server closes this
// channel only. Deleted through the loop's deferred delete.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "buffer/buffer_chain.h"
#include "codec/address.h"
#include "config/client_config.h"
#include "event/loop.h"
#include "netstack/flow_key.h"
#include "stream/stream.h"

namespace vt::client {

class UdpSession;

// TUN endpoint <-> wire address. IPv4-mapped IPv6 goes out as IPv4 (as
// netstack::unmapV4); a domain or a bad address has no endpoint.
codec::Address udpAddress(const netstack::UdpEndpoint& e);
std::optional<netstack::UdpEndpoint> udpEndpoint(const codec::Address& a);

class UdpChannel final : public event::DeferredDeletable, private stream::StreamCallbacks {
 public:
  // `remote`: the channel's target (classic: the first destination).
  UdpChannel(UdpSession& session, const netstack::UdpEndpoint& remote, uint64_t id);
  ~UdpChannel() override;
  UdpChannel(const UdpChannel&) = delete;
  UdpChannel& operator=(const UdpChannel&) = delete;

  // Takes the outbound (not connected yet) and connects it.
  void start(stream::StreamPtr out);
  // One datagram to `to` (the channel's remote except in classic mode).
  // Drained; false if it was dropped (counted by the caller's session).
  bool send(const netstack::UdpEndpoint& to, BufferChain& payload);
  // Idempotent; drops what is queued (counted), one DEBUG line.
  void close(const char* reason);

  const netstack::UdpEndpoint& remote() const { return remote_; }
  uint64_t id() const { return id_; }
  bool closed() const { return closed_; }
  bool connected() const { return connected_; }
  uint64_t startMs() const { return startMs_; }
  uint64_t lastActivityMs() const { return lastActivityMs_; }

 private:
  void onConnected() override;
  void onData(BufferChain& data, bool end_stream) override;
  void onAboveHighWatermark() override { above_ = true; }
  void onBelowLowWatermark() override { above_ = false; }
  void onClose(stream::CloseReason reason, const std::string& detail) override;

  bool encode(const netstack::UdpEndpoint& to, BufferChain& payload, BufferChain& out);
  void decode();

  UdpSession& session_;
  event::Loop& loop_;
  config::UdpMode mode_;
  netstack::UdpEndpoint remote_;
  uint64_t id_;
  uint64_t startMs_;
  uint64_t lastActivityMs_;
  stream::StreamPtr out_;
  BufferChain queue_;      // framed datagrams written once connected
  size_t queued_ = 0;      // datagrams in queue_
  BufferChain rx_;         // server bytes not yet a whole packet
  bool connected_ = false;
  bool above_ = false;
  bool overflowLogged_ = false;  // one WARN per channel, the count in the log line
  bool outClosed_ = false;
  bool closed_ = false;
  uint64_t up_ = 0, down_ = 0, drops_ = 0;
};

}  // namespace vt::client
