#include "client/udp_channel.h"

#include <cinttypes>

#include "client/client.h"
#include "client/udp_session.h"
#include "codec/length_frame.h"
#include "codec/trojan_udp.h"
#include "codec/udp_packet.h"
#include "core/log.h"

namespace vt::client {

codec::Address udpAddress(const netstack::UdpEndpoint& e) {
  netstack::IpAddress ip = netstack::unmapV4(e.addr);
  return ip.isV4() ? codec::Address::ipv4(ip.bytes.data(), e.port)
                   : codec::Address::ipv6(ip.bytes.data(), e.port);
}

std::optional<netstack::UdpEndpoint> udpEndpoint(const codec::Address& a) {
  if (!a.isIp()) return std::nullopt;
  netstack::UdpEndpoint e;
  e.addr = a.type == codec::Address::Type::kIpv4 ? netstack::IpAddress::v4(a.ip.data())
                                                 : netstack::IpAddress::v6(a.ip.data());
  e.port = a.port;
  return e;
}

UdpChannel::UdpChannel(UdpSession& session, const netstack::UdpEndpoint& remote, uint64_t id)
    : session_(session),
      loop_(session.client().loop()),
      mode_(session.client().config().udp.mode),
      remote_(remote),
      id_(id),
      startMs_(loop_.now()),
      lastActivityMs_(startMs_) {}

UdpChannel::~UdpChannel() = default;

void UdpChannel::start(stream::StreamPtr out) {
  out_ = std::move(out);
  out_->setCallbacks(*this);
  out_->connect();  // failures arrive through onClose, later
  // A mux stream takes datagrams at once: it holds them (bounded by its
  // watermark, then we drop) until its connection is up.
  if (mode_ == config::UdpMode::kMux && !closed_) connected_ = true;
}

bool UdpChannel::encode(const netstack::UdpEndpoint& to, BufferChain& payload, BufferChain& out) {
  if (mode_ == config::UdpMode::kClassic) {
    return codec::encodeClassicUdpPacket(udpAddress(to), payload, out);
  }
  if (mode_ == config::UdpMode::kMux) {
    return codec::encodeTrojanUdpPacket(udpAddress(to), payload, out);
  }
  return codec::encodeLengthPacket(payload, out);
}

bool UdpChannel::send(const netstack::UdpEndpoint& to, BufferChain& payload) {
  if (closed_) return false;
  lastActivityMs_ = loop_.now();
  BufferChain framed;
  if (!encode(to, payload, framed)) {
    ++drops_;
    return false;
  }
  if (!connected_) {
    if (queued_ >= session_.client().config().udp.queue_datagrams) {
      if (!overflowLogged_) {
        overflowLogged_ = true;
        VT_WARN("udp #%" PRIu64 "/%" PRIu64 " to %s: %zu datagrams already wait for the "
                "server connection; dropping more until it is up",
                session_.id(), id_, remote_.toString().c_str(), queued_);
      }
      ++drops_;
      session_.client().countUdpQueueOverflow();
      return false;
    }
    queue_.moveFrom(framed);
    ++queued_;
    ++up_;
    return true;
  }
  if (above_) {
    // The server side is slow: drop rather than queue without bound.
    ++drops_;
    return false;
  }
  ++up_;
  out_->write(framed, false);
  return true;
}

void UdpChannel::onConnected() {
  if (closed_) return;
  connected_ = true;
  lastActivityMs_ = loop_.now();
  if (queued_ > 0) {
    queued_ = 0;
    out_->write(queue_, false);  // rides with the request header
  }
}

void UdpChannel::onData(BufferChain& data, bool end_stream) {
  if (closed_) {
    data.clear();
    return;
  }
  rx_.moveFrom(data);
  decode();
  if (end_stream && !closed_) close("server_closed");
}

void UdpChannel::decode() {
  while (!closed_ && !rx_.empty()) {
    codec::PacketDecodeResult r = mode_ == config::UdpMode::kSeparated
                                      ? codec::decodeMultiUdpDown(rx_)
                                  : mode_ == config::UdpMode::kClassic
                                      ? codec::decodeClassicUdpPacket(rx_)
                                  : mode_ == config::UdpMode::kMux
                                      ? codec::decodeTrojanUdpPacket(rx_)
                                      : codec::decodeLengthPacket(rx_);
    if (r.status == codec::DecodeStatus::kNeedMore) return;
    if (r.status == codec::DecodeStatus::kInvalid) {
      VT_WARN("udp #%" PRIu64 "/%" PRIu64 " to %s: malformed framing from the server: %s",
              session_.id(), id_, remote_.toString().c_str(), r.error.c_str());
      close("protocol_error");
      return;
    }
    BufferChain payload;
    codec::takePacket(rx_, r, payload);
    netstack::UdpEndpoint from = remote_;
    if (r.address) {
      auto e = udpEndpoint(*r.address);
      if (!e || e->port == 0) {
        ++drops_;
        session_.countDrops(1);
        continue;
      }
      from = *e;
    }
    ++down_;
    lastActivityMs_ = loop_.now();
    session_.onChannelDatagram(*this, from, payload);
  }
}

void UdpChannel::onClose(stream::CloseReason reason, const std::string& detail) {
  outClosed_ = true;
  if (closed_) return;
  const char* why = "server_closed";
  if (!connected_) {
    why = "connect_failed";
    session_.client().onDialFailed();
  } else if (reason == stream::CloseReason::kProtocolError) {
    why = "protocol_error";
  } else if (reason != stream::CloseReason::kRemoteClose &&
             reason != stream::CloseReason::kLocalClose) {
    why = "server_lost";
  }
  // Nothing came back and an error ended it: the server is down or
  // refuses. The session pauses new channels; only the first failure of a
  // streak is a WARN (the client's stop line counts the datagrams dropped
  // meanwhile).
  const bool failed = down_ == 0 && reason != stream::CloseReason::kRemoteClose &&
                      reason != stream::CloseReason::kLocalClose;
  const bool first = failed ? session_.onChannelFailed() : true;
  if (!connected_ || reason != stream::CloseReason::kRemoteClose) {
    VT_LOG(first ? LogLevel::kWarn : LogLevel::kDebug,
           "udp #%" PRIu64 "/%" PRIu64 " to %s: server connection %s: %s%s%s%s", session_.id(), id_,
           remote_.toString().c_str(), connected_ ? "lost" : "failed",
           stream::closeReasonName(reason), detail.empty() ? "" : ": ", detail.c_str(),
           failed ? "; new channels of this socket wait (200 ms, doubling to 2 s)" : "");
  }
  close(why);
}

void UdpChannel::close(const char* reason) {
  if (closed_) return;
  closed_ = true;
  if (queued_ > 0) {
    drops_ += queued_;
    session_.countDrops(queued_);
    queued_ = 0;
  }
  queue_.clear();
  rx_.clear();
  if (out_ != nullptr && !outClosed_) {
    outClosed_ = true;
    out_->close(stream::CloseReason::kLocalClose);
  }
  VT_DEBUG("udp #%" PRIu64 "/%" PRIu64 " channel to %s closed: up=%" PRIu64 " down=%" PRIu64
           " drops=%" PRIu64 " ms=%" PRIu64 " reason=%s",
           session_.id(), id_, remote_.toString().c_str(), up_, down_, drops_,
           loop_.now() - startMs_, reason);
  session_.onChannelClosed(*this);  // deferred delete: `this` stays valid for now
}

}  // namespace vt::client
