#include "server/ip_session.h"

#include <errno.h>

#include <cinttypes>
#include <cstring>

#include "codec/length_frame.h"
#include "core/log.h"
#include "event/socket_address.h"
#include "server/ip_exit.h"
#include "server/server.h"

namespace vt::server {
namespace {

constexpr const char* kDropNames[kIpDropCount] = {
    "spoofed",    "bad_source", "dst_unspecified", "dst_loopback", "dst_multicast",
    "dst_own",    "dst_pool",   "dst_egress",      "no_address",   "tun_full",
    "client_slow", "unknown_dst", "bad_from_tun"};

bool sameAddress(bool v6, const codec::IpAddressBytes& a, const codec::IpAddressBytes& b) {
  return std::memcmp(a.data(), b.data(), v6 ? 16 : 4) == 0;
}

event::SocketAddress socketAddress(bool v6, const codec::IpAddressBytes& a) {
  if (v6) return event::SocketAddress::ipv6(a.data(), 0);
  return event::SocketAddress::ipv4((uint32_t{a[0]} << 24) | (uint32_t{a[1]} << 16) |
                                        (uint32_t{a[2]} << 8) | a[3],
                                    0);
}

}  // namespace

const char* ipDropName(IpDrop d) noexcept {
  size_t i = static_cast<size_t>(d);
  return i < kIpDropCount ? kDropNames[i] : "?";
}

void IpCounters::add(const IpCounters& o) {
  pkts_up += o.pkts_up;
  bytes_up += o.bytes_up;
  pkts_down += o.pkts_down;
  bytes_down += o.bytes_down;
  for (size_t i = 0; i < drops.size(); ++i) drops[i] += o.drops[i];
  for (size_t i = 0; i < parse.size(); ++i) parse[i] += o.parse[i];
}

uint64_t IpCounters::dropped() const {
  uint64_t n = 0;
  for (uint64_t d : drops) n += d;
  for (uint64_t d : parse) n += d;
  return n;
}

std::string IpCounters::dropsText() const {
  std::string s;
  for (size_t i = 0; i < drops.size(); ++i) {
    if (drops[i] == 0) continue;
    s += (s.empty() ? "" : " ") + std::string(kDropNames[i]) + "=" + std::to_string(drops[i]);
  }
  for (size_t i = 1; i < parse.size(); ++i) {
    if (parse[i] == 0) continue;
    s += (s.empty() ? "" : " ") + std::string("parse[") +
         codec::ipPacketErrorName(static_cast<codec::IpPacketError>(i)) + "]=" +
         std::to_string(parse[i]);
  }
  return s.empty() ? "none" : s;
}

IpSession::IpSession(Server& server, IpExit& exit, stream::Stream& in, std::string user,
                     std::string peer, uint64_t conn_id, CloseFn close)
    : server_(server),
      exit_(exit),
      loop_(server.loop()),
      in_(in),
      user_(std::move(user)),
      peer_(std::move(peer)),
      conn_id_(conn_id),
      close_(std::move(close)),
      idle_timer_(loop_),
      started_ms_(loop_.now()),
      last_active_ms_(loop_.now()) {}

IpSession::~IpSession() {
  if (!done_) shutdown(stream::CloseReason::kLocalClose, "destroyed");
}

bool IpSession::start(BufferChain& payload, bool end_stream) {
  auto id = exit_.attach(this, user_);
  if (!id.ok()) {
    // The owner's close line (a WARN, like every refusal at a cap) says it;
    // the exit counts it for the stop line.
    done_ = true;
    close_(stream::CloseReason::kEvicted, "ip session refused: " + id.error().message);
    return false;
  }
  id_ = id.value();
  idle_timer_.start(server_.config().idle_timeout_ms, [this] { onIdleTimer(); });
  onData(payload, end_stream);
  return true;
}

void IpSession::onIdleTimer() {
  if (done_) return;
  const uint64_t idle = server_.config().idle_timeout_ms;
  const uint64_t quiet = loop_.now() - last_active_ms_;
  if (quiet >= idle) {
    close_(stream::CloseReason::kTimeout, "idle timeout");
    return;
  }
  idle_timer_.start(idle - quiet, [this] { onIdleTimer(); });
}

void IpSession::drop(IpDrop d) {
  ++c_.drops[static_cast<size_t>(d)];
  exit_.countDrop(d);
}

void IpSession::onData(BufferChain& data, bool end_stream) {
  if (done_) {
    data.clear();
    return;
  }
  buf_.moveFrom(data);
  while (!done_) {
    codec::PacketDecodeResult r = codec::decodeIpPacket(buf_);
    if (r.status == codec::DecodeStatus::kNeedMore) break;
    if (r.status == codec::DecodeStatus::kInvalid) {
      // LEN 0, not IPv4/IPv6, shorter than a header: the framing is still
      // in step (LEN says where the next unit starts), so the unit is
      // dropped and counted (parseRawIpPacket names why) and the session
      // goes on, once the whole unit is here.
      const size_t unit = codec::ipUnitSize(buf_);
      if (unit == 0) break;
      uint8_t* p = exit_.scratch();
      buf_.copyOut(2, p, unit - 2);
      buf_.drain(unit);
      up(p, unit - 2);
      continue;
    }
    uint8_t* p = exit_.scratch();
    buf_.copyOut(r.payload_offset, p, r.payload_size);
    buf_.drain(r.consumed);
    up(p, r.payload_size);
  }
  if (end_stream && !done_) close_(stream::CloseReason::kRemoteClose, "client ended the session");
}

bool IpSession::refuseDestination(const codec::RawIpPacket& info, IpDrop& why) {
  const bool v6 = info.v6();
  const uint8_t* d = info.dst.data();
  if (codec::ipIsUnspecified(v6, d)) {
    why = IpDrop::kDstUnspecified;
  } else if (codec::ipIsLoopback(v6, d)) {
    why = IpDrop::kDstLoopback;
  } else if (codec::ipIsMulticast(v6, d) || codec::ipIsBroadcast(v6, d)) {
    why = IpDrop::kDstMulticast;
  } else if (exit_.isGateway(v6, d)) {
    why = IpDrop::kDstOwn;
  } else if (exit_.leases().inPool(v6, d)) {
    why = IpDrop::kDstPool;  // other sessions are not reachable from here
  } else if (const char* r = server_.checkEgress(socketAddress(v6, info.dst))) {
    why = std::strcmp(r, "the server's own address") == 0 ? IpDrop::kDstOwn : IpDrop::kDstEgress;
  } else {
    return false;
  }
  return true;
}

void IpSession::up(uint8_t* p, size_t n) {
  codec::RawIpPacket info;
  codec::IpPacketError err = codec::parseRawIpPacket(p, n, info);
  if (err != codec::IpPacketError::kNone) {
    ++c_.parse[static_cast<size_t>(err)];
    ++exit_.totals().parse[static_cast<size_t>(err)];
    return;
  }
  const bool v6 = info.v6();
  std::optional<codec::IpAddressBytes>& own = v6 ? client6_ : client4_;
  if (!own) {
    if (codec::ipIsMulticast(v6, info.src.data()) || codec::ipIsBroadcast(v6, info.src.data())) {
      drop(IpDrop::kBadSource);
      return;
    }
    own = info.src;
  } else if (!sameAddress(v6, *own, info.src)) {
    drop(IpDrop::kSpoofed);
    return;
  }
  IpDrop why{};
  if (refuseDestination(info, why)) {
    drop(why);
    return;
  }
  std::optional<codec::IpAddressBytes>& lease = v6 ? lease6_ : lease4_;
  if (!lease) {
    lease = exit_.leases().lease(id_, v6, loop_.now());
    if (!lease) {
      drop(IpDrop::kNoAddress);
      return;
    }
  }
  codec::rewriteIpSource(p, info, *lease);
  ssize_t w = exit_.send(p, n);
  if (w < 0) {
    drop(IpDrop::kTunFull);
    return;
  }
  last_active_ms_ = loop_.now();
  ++c_.pkts_up;
  c_.bytes_up += n;
  ++exit_.totals().pkts_up;
  exit_.totals().bytes_up += n;
}

void IpSession::deliver(uint8_t* p, codec::RawIpPacket& info) {
  if (done_) return;
  const bool v6 = info.v6();
  const std::optional<codec::IpAddressBytes>& own = v6 ? client6_ : client4_;
  if (!own) {
    drop(IpDrop::kUnknownDst);
    return;
  }
  const size_t cap = static_cast<size_t>(exit_.config().queue_packets) * (exit_.config().mtu + 2);
  if (client_slow_ || in_.bufferedBytes() + info.size + 2 > cap) {
    drop(IpDrop::kClientSlow);
    return;
  }
  codec::rewriteIpDestination(p, info, *own);
  BufferChain out;
  if (!codec::encodeLengthPacket(p, info.size, out)) {
    drop(IpDrop::kClientSlow);
    return;
  }
  last_active_ms_ = loop_.now();
  ++c_.pkts_down;
  c_.bytes_down += info.size;
  ++exit_.totals().pkts_down;
  exit_.totals().bytes_down += info.size;
  in_.write(out, false);  // may close us (write error): nothing follows
}

void IpSession::shutdown(stream::CloseReason reason, const std::string& detail) {
  if (done_) return;
  done_ = true;
  idle_timer_.stop();
  if (id_ != 0) exit_.detach(id_, c_);
  auto addr = [](bool v6, const std::optional<codec::IpAddressBytes>& lease,
                 const std::optional<codec::IpAddressBytes>& client) {
    if (!lease) return std::string("-");
    return IpLeaseTable::text(v6, *lease) + "(client " + IpLeaseTable::text(v6, *client) + ")";
  };
  const LogLevel level = reason == stream::CloseReason::kProtocolError ? LogLevel::kWarn
                                                                        : LogLevel::kInfo;
  VT_LOG(level,
         "conn #%" PRIu64 " peer=%s user=%s ip v4=%s v6=%s up=%" PRIu64 "p/%" PRIu64
         "B down=%" PRIu64 "p/%" PRIu64 "B drops=%s ms=%" PRIu64 " close=%s",
         conn_id_, peer_.c_str(), user_.c_str(), addr(false, lease4_, client4_).c_str(),
         addr(true, lease6_, client6_).c_str(), c_.pkts_up, c_.bytes_up, c_.pkts_down,
         c_.bytes_down, c_.dropsText().c_str(), loop_.now() - started_ms_,
         detail.empty() ? stream::closeReasonName(reason) : detail.c_str());
}

}  // namespace vt::server
