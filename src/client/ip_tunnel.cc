#include "client/ip_tunnel.h"

#include <algorithm>
#include <cinttypes>

#include "codec/ip_nat.h"
#include "codec/length_frame.h"
#include "core/log.h"

namespace vt::client {

IpTunnel::IpTunnel(event::Loop& loop, IpTunnelHost& host, const IpTunnelOptions& options)
    : loop_(loop), host_(host), options_(options), dialTimer_(loop), connectTimer_(loop) {
  scratch_.reserve(2048);
}

IpTunnel::~IpTunnel() {
  stop();
}

bool IpTunnel::send(const uint8_t* packet, size_t len) {
  if (state_ == State::kStopped) {
    ++stats_.dropStopped;
    return false;
  }
  if (len == 0 || len > codec::kMaxPacketPayload) {
    ++stats_.dropTooBig;
    return false;
  }
  if (state_ == State::kConnected) {
    if (above_) {
      ++stats_.dropCongested;
      return false;
    }
    BufferChain framed;
    codec::encodeLengthPacket(packet, len, framed);
    ++stats_.packetsUp;
    stats_.bytesUp += len;
    out_->write(framed, false);
    return true;
  }
  // Connecting or waiting: queue, bounded (bytes counted with their LEN).
  if (queuedPackets_ >= options_.queuePackets || queue_.size() + len + 2 > options_.queueBytes) {
    if (!overflowLogged_) {
      overflowLogged_ = true;
      VT_WARN("ip: %zu packets (%zu bytes) already wait for the CmdIP connection; dropping "
              "more until it is up (ip.queue_packets=%u, ip.queue_bytes=%" PRIu64 ")",
              queuedPackets_, queue_.size(), options_.queuePackets, options_.queueBytes);
    }
    ++stats_.dropQueueFull;
    return false;
  }
  codec::encodeLengthPacket(packet, len, queue_);
  ++queuedPackets_;
  if (state_ == State::kIdle) dialWhenAllowed();
  return true;
}

void IpTunnel::dialWhenAllowed() {
  if (backoffMs_ != 0 && host_.ipServerReachedMs() > failedAtMs_) {
    backoffMs_ = 0;  // another connection reached the server since
  }
  const uint64_t now = loop_.now();
  if (backoffMs_ != 0 && now < noDialUntilMs_) {
    state_ = State::kWaiting;
    dialTimer_.start(noDialUntilMs_ - now, [this] { dial(); });
    return;
  }
  dial();
}

void IpTunnel::dial() {
  if (state_ == State::kStopped || state_ == State::kConnecting || state_ == State::kConnected) {
    return;
  }
  dialTimer_.stop();
  if (stats_.dials++ > 0) ++stats_.reconnects;
  state_ = State::kConnecting;
  reached_ = false;
  above_ = false;
  rx_.clear();
  out_ = host_.openIpStream();
  if (out_ == nullptr) {
    ++stats_.connectFailed;
    ended("no_server_address", true, "");
    return;
  }
  out_->setCallbacks(*this);
  connectTimer_.start(options_.connectTimeoutMs, [this] {
    if (state_ != State::kConnecting) return;
    VT_DEBUG("ip: CmdIP connection to %s: no connection after %" PRIu64 " ms",
             out_->peerName().c_str(), options_.connectTimeoutMs);
    ++stats_.connectFailed;
    host_.onIpDialFailed();
    closeLocally(stream::CloseReason::kTimeout);
    ended("connect_timeout", true, "");
  });
  out_->connect();  // failures arrive through onClose, later
}

void IpTunnel::onConnected() {
  if (state_ != State::kConnecting) return;
  connectTimer_.stop();
  state_ = State::kConnected;
  overflowLogged_ = false;
  VT_DEBUG("ip: CmdIP connection to %s up (%zu packets were waiting)", out_->peerName().c_str(),
           queuedPackets_);
  if (queuedPackets_ > 0) {
    // Rides with the request header. The framed bytes hold every LEN.
    stats_.packetsUp += queuedPackets_;
    stats_.bytesUp += queue_.size() - 2 * queuedPackets_;
    queuedPackets_ = 0;
    out_->write(queue_, false);
  }
}

void IpTunnel::onData(BufferChain& data, bool end_stream) {
  if (state_ != State::kConnected && state_ != State::kConnecting) {
    data.clear();
    return;
  }
  rx_.moveFrom(data);
  decode();
  if (end_stream && out_ != nullptr && state_ == State::kConnected) {
    const bool failed = !reached_;
    closeLocally(stream::CloseReason::kLocalClose);
    ++stats_.lost;
    ended("server_closed", failed, "");
  }
}

void IpTunnel::decode() {
  while (out_ != nullptr && !rx_.empty()) {
    codec::PacketDecodeResult r = codec::decodeIpPacket(rx_);
    if (r.status == codec::DecodeStatus::kNeedMore) return;
    if (r.status == codec::DecodeStatus::kInvalid) {
      // LEN 0 or not an IP packet: the framing is still in step, so the
      // unit is dropped (parseRawIpPacket below counts it) once it is all
      // here, and the session goes on.
      const size_t unit = codec::ipUnitSize(rx_);
      if (unit == 0) return;
      r.payload_offset = 2;
      r.payload_size = unit - 2;
      r.consumed = unit;
    }
    scratch_.resize(r.payload_size);
    rx_.copyOut(r.payload_offset, scratch_.data(), r.payload_size);
    rx_.drain(r.consumed);
    if (!reached_) {
      reached_ = true;
      backoffMs_ = 0;
      host_.onIpServerReached();
    }
    codec::RawIpPacket info;
    const codec::IpPacketError err = codec::parseRawIpPacket(scratch_.data(), scratch_.size(), info);
    if (err != codec::IpPacketError::kNone) {
      ++stats_.dropInvalidDown;
      VT_DEBUG("ip: dropped a packet of %zu bytes from the server: %s", scratch_.size(),
               codec::ipPacketErrorName(err));
      continue;
    }
    ++stats_.packetsDown;
    stats_.bytesDown += scratch_.size();
    host_.deliverIpPacket(scratch_.data(), scratch_.size());
  }
}

void IpTunnel::onClose(stream::CloseReason reason, const std::string& detail) {
  if (closingLocally_ || out_ == nullptr) return;
  connectTimer_.stop();
  const bool wasConnected = state_ == State::kConnected;
  // Into the loop's deferred delete: we are inside its callback.
  loop_.deferredDelete(std::move(out_));
  if (!wasConnected) {
    ++stats_.connectFailed;
    host_.onIpDialFailed();
    ended("connect_failed", true, std::string(stream::closeReasonName(reason)) +
                                      (detail.empty() ? "" : ": " + detail));
    return;
  }
  ++stats_.lost;
  if (reason == stream::CloseReason::kProtocolError) ++stats_.protocolErrors;
  // A connection that brought nothing back and ended in an error counts
  // as a failure (the server is down or refuses CmdIP).
  const bool failed = !reached_ && reason != stream::CloseReason::kRemoteClose;
  ended(reason == stream::CloseReason::kRemoteClose ? "server_closed" : "server_lost", failed,
        std::string(stream::closeReasonName(reason)) + (detail.empty() ? "" : ": " + detail));
}

void IpTunnel::closeLocally(stream::CloseReason reason) {
  connectTimer_.stop();
  if (out_ == nullptr) return;
  closingLocally_ = true;
  out_->close(reason);  // its onClose comes at once and is ignored
  closingLocally_ = false;
  loop_.deferredDelete(std::move(out_));
}

void IpTunnel::ended(const char* why, bool failed, const std::string& detail) {
  rx_.clear();
  above_ = false;
  if (state_ == State::kStopped) return;
  state_ = State::kIdle;
  if (failed) {
    const bool first = backoffMs_ == 0;
    backoffMs_ = first ? kFirstBackoffMs : std::min(backoffMs_ * 2, kMaxBackoffMs);
    failedAtMs_ = loop_.now();
    noDialUntilMs_ = failedAtMs_ + backoffMs_;
    VT_LOG(first ? LogLevel::kWarn : LogLevel::kDebug,
           "ip: CmdIP connection %s%s%s; next dial in %" PRIu64 " ms (%zu packets wait)", why,
           detail.empty() ? "" : ": ", detail.c_str(), backoffMs_, queuedPackets_);
  } else {
    backoffMs_ = 0;
    VT_DEBUG("ip: CmdIP connection ended: %s%s%s", why, detail.empty() ? "" : ": ",
             detail.c_str());
  }
  // Opened again on demand: at once (after the wait) when packets wait.
  if (queuedPackets_ > 0) dialWhenAllowed();
}

void IpTunnel::stop() {
  if (state_ == State::kStopped) return;
  state_ = State::kStopped;
  dialTimer_.stop();
  connectTimer_.stop();
  stats_.dropStopped += queuedPackets_;
  queuedPackets_ = 0;
  queue_.clear();
  rx_.clear();
  closeLocally(stream::CloseReason::kLocalClose);
}

}  // namespace vt::client
