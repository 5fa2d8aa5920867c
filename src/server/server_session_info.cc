// ServerSession's read-only views for the stats (server_stats.h): what it
// is, what it carried, how long it has been quiet. Nothing here changes
// the session.
#include <algorithm>

#include "server/ip_session.h"
#include "server/server.h"
#include "server/server_session.h"
#include "server/udp_channel.h"

namespace vt::server {

const char* ServerSession::kindName(Kind k) {
  switch (k) {
    case Kind::kHandshake: return "handshake";
    case Kind::kTcp: return "tcp";
    case Kind::kUdp: return "udp";
    case Kind::kMux: return "mux";
    case Kind::kIp: return "ip";
    case Kind::kFallback: return "fallback";
  }
  return "?";
}

TrafficCounters ServerSession::traffic() const {
  TrafficCounters t;
  if (mux_) {
    t.bytes_up = mux_->stats().bytesIn;
    t.bytes_down = mux_->stats().bytesOut;
  } else if (udp_) {
    t.bytes_up = udp_->bytesUp();
    t.bytes_down = udp_->bytesDown();
    t.udp_datagrams_up = udp_->packetsUp();
    t.udp_datagrams_down = udp_->packetsDown();
  } else if (ip_) {
    t.bytes_up = ip_->counters().bytes_up;
    t.bytes_down = ip_->counters().bytes_down;
  } else {
    t.bytes_up = up_;
    t.bytes_down = down_;
  }
  return t;
}

ServerSession::Info ServerSession::info(uint64_t now_ms) const {
  Info i;
  i.id = id_;
  i.user = user_;
  i.peer = peer_name_;
  i.target = target_;
  if (mux_) {
    i.kind = Kind::kMux;
  } else if (udp_) {
    i.kind = Kind::kUdp;
  } else if (ip_) {
    i.kind = Kind::kIp;
  } else if (fallback_) {
    i.kind = Kind::kFallback;
  } else if (state_ == State::kHandshake && flows_ == 0) {
    i.kind = Kind::kHandshake;
  } else {
    i.kind = Kind::kTcp;
  }
  switch (state_) {
    case State::kHandshake: i.state = flows_ > 0 ? "reuse_idle" : "handshake"; break;
    case State::kDialling: i.state = "dialling"; break;
    case State::kRelay: i.state = "relay"; break;
    case State::kDraining: i.state = "draining"; break;
    case State::kUdp: i.state = udp_ending_ ? "ending" : "udp"; break;
    case State::kMux: i.state = "mux"; break;
    case State::kIp: i.state = "ip"; break;
    case State::kClosed: i.state = "closed"; break;
  }
  const TrafficCounters t = traffic();
  i.up = t.bytes_up;
  i.down = t.bytes_down;
  i.udp_datagrams_up = t.udp_datagrams_up;
  i.udp_datagrams_down = t.udp_datagrams_down;
  i.age_ms = now_ms > started_ms_ ? now_ms - started_ms_ : 0;
  uint64_t last = std::max(started_ms_, last_active_ms_);
  if (mux_) {
    const uint64_t since = mux_->idleSinceMs();
    last = since == 0 ? now_ms : since;  // streams open: not idle
  } else if (udp_) {
    last = udp_->lastActiveMs();
  } else if (ip_) {
    last = ip_->lastActiveMs();
  }
  i.idle_ms = now_ms > last ? now_ms - last : 0;
  if (mux_stream_) {
    i.mux_parent = mux_parent_;
    i.mux_stream = mux_stream_id_;
  }
  return i;
}

std::string ServerSession::describe(uint64_t now_ms) const {
  const Info i = info(now_ms);
  std::string out =
      "connection " + std::to_string(i.id) + " " + i.user + " " + i.peer + " -> " + i.target;
  if (i.mux_parent != 0) {
    out += " (mux stream " + std::to_string(i.mux_parent) + "/" + i.mux_stream + ")";
  }
  return out;
}

}  // namespace vt::server
