#include "engine/stats_json.h"

#include <cinttypes>
#include <cstdio>

#include "client/connection_pool.h"
#include "client/ip_tunnel.h"
#include "client/mux_pool.h"
#include "client/tcp_session.h"
#include "client/udp_session.h"
#include "core/log.h"
#include "tls/tls_engine.h"

namespace vt::engine {

namespace {

using ull = unsigned long long;

class Obj {
 public:
  explicit Obj(std::string& out) : out_(out) { out_ += '{'; }
  ~Obj() { out_ += '}'; }
  Obj(const Obj&) = delete;
  Obj& operator=(const Obj&) = delete;
  void key(const char* k) {
    if (!first_) out_ += ',';
    first_ = false;
    out_ += '"';
    out_ += k;
    out_ += "\":";
  }
  void num(const char* k, uint64_t v) {
    key(k);
    out_ += std::to_string(v);
  }
  void str(const char* k, const std::string& v) {
    key(k);
    out_ += jsonString(v);
  }
  void boolean(const char* k, bool v) {
    key(k);
    out_ += v ? "true" : "false";
  }

 private:
  std::string& out_;
  bool first_ = true;
};

std::string endpoint(const netstack::IpAddress& a, uint16_t port) {
  return netstack::UdpEndpoint{a, port}.toString();
}

}  // namespace

std::string jsonString(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
  return out;
}

std::string buildStatsJson(const StatsInput& in) {
  std::string out;
  out.reserve(1024);
  {
    Obj o(out);
    o.str("state", in.state);
    o.str("tun_mode", in.mode);
    if (in.cfg != nullptr) {
      o.str("server", in.cfg->server.address.toString());
      o.num("server_version", in.cfg->server.version);
    }
    const client::Client* c = in.client;
    if (c == nullptr) return out + "}";
    o.num("uptime_ms", in.uptimeMs);
    {
      o.key("tun");
      Obj t(out);
      t.str("name", in.tunName);
      if (in.pump != nullptr) {
        t.num("packets_in", in.pump->packetsIn);
        t.num("bytes_in", in.pump->bytesIn);
        t.num("packets_out", in.pump->packetsOut);
        t.num("bytes_out", in.pump->bytesOut);
        t.num("write_dropped", in.pump->writeDropped);
        t.num("write_queued", in.pump->writeQueued);
        t.num("read_dropped", in.pump->readDropped);
      } else {
        t.num("packets_in", in.packetsIn);
        t.num("bytes_in", in.bytesIn);
        t.num("packets_out", in.packetsOut);
        t.num("bytes_out", in.bytesOut);
        t.num("input_queued", in.inputQueued);
        t.num("input_queued_bytes", in.inputQueuedBytes);
      }
    }
    const client::ClientStats& cs = c->stats();
    {
      o.key("tcp");
      Obj t(out);
      t.num("flows", c->sessionCount());
      t.num("opened", cs.flowsOpened);
      t.num("closed", cs.flowsClosed);
      t.num("evicted", cs.evicted);
      t.num("connect_failed", cs.connectFailed);
      t.num("loops_refused", cs.loopsRefused);
      t.num("ipv6_refused", cs.ipv6Refused);
      t.num("bytes_up", cs.bytesUp);
      t.num("bytes_down", cs.bytesDown);
    }
    {
      o.key("udp");
      Obj u(out);
      u.num("sessions", c->udpSessionCount());
      u.num("opened", cs.udpSessionsOpened);
      u.num("closed", cs.udpSessionsClosed);
      u.num("evicted", cs.udpEvicted);
      u.num("channels_evicted", cs.udpChannelsEvicted);
      u.num("datagrams_up", cs.udpDatagramsUp);
      u.num("bytes_up", cs.udpBytesUp);
      u.num("datagrams_down", cs.udpDatagramsDown);
      u.num("bytes_down", cs.udpBytesDown);
      u.num("drops", cs.udpDrops);
      u.num("refused", cs.udpRefused);
    }
    {
      o.key("network");
      Obj n(out);
      n.num("changes", cs.networkChanges);
      n.num("connections_closed", cs.networkClosed);
    }
    {
      o.key("dns");
      Obj d(out);
      d.num("hijacked", cs.dnsHijacked);
      d.num("tcp_hijacked", cs.dnsTcpHijacked);
      d.num("cache_hits", cs.dnsCacheHits);
      d.num("not_cached", cs.dnsUnmatched);
    }
    {
      o.key("connections");  // to the server
      Obj k(out);
      k.key("server_addresses");
      out += '[';
      bool first = true;
      for (const auto& a : c->serverAddresses()) {
        if (!first) out += ',';
        first = false;
        out += jsonString(a.toString());
      }
      out += ']';
      if (const tls::TlsContext* tls = c->tlsContext(); tls != nullptr) {
        k.num("tls_handshakes", tls->stats().handshakes);
        k.num("tls_resumed", tls->stats().resumed);
      }
      if (const client::MuxPool* mux = c->mux(); mux != nullptr) {
        const client::MuxPoolStats& ms = mux->stats();
        k.num("mux_connections", mux->connections());
        k.num("mux_streams", mux->streams());
        k.num("mux_connections_opened", ms.connectionsOpened);
        k.num("mux_connections_lost", ms.connectionsLost);
        k.num("mux_dials_failed", ms.dialsFailed);
      }
      if (const client::ConnectionPool* pool = c->pool(); pool != nullptr) {
        k.num("pool_idle", pool->idle());
        k.num("pool_reused", pool->stats().reused);
      }
    }
    if (const client::IpTunnel* ip = c->ipTunnel(); ip != nullptr) {
      const client::IpTunnelStats& is = ip->stats();
      o.key("ip");
      Obj i(out);
      i.num("packets_up", is.packetsUp);
      i.num("bytes_up", is.bytesUp);
      i.num("packets_down", is.packetsDown);
      i.num("bytes_down", is.bytesDown);
      i.num("drops", is.drops() + cs.ipNotRoutable + cs.ipRefusedV6);
      i.num("dials", is.dials);
      i.num("lost", is.lost);
    }
    // Flow by flow, at most kMaxListedFlows of each kind.
    size_t listed = 0;
    o.key("flows");
    out += '[';
    c->forEachSession([&](const client::TcpSession& s) {
      if (listed >= kMaxListedFlows) return;
      if (listed++ > 0) out += ',';
      Obj f(out);
      f.num("id", s.id());
      f.str("proto", "tcp");
      f.str("src", endpoint(s.key().src, s.key().srcPort));
      f.str("dst", endpoint(s.key().dst, s.key().dstPort));
      f.num("age_ms", in.nowMs - std::min(in.nowMs, s.startMs()));
      f.num("idle_ms", in.nowMs - std::min(in.nowMs, s.lastActivityMs()));
    });
    size_t udpListed = 0;
    c->forEachUdpSession([&](const client::UdpSession& s) {
      if (udpListed >= kMaxListedFlows) return;
      if (listed++ > 0) out += ',';
      ++udpListed;
      Obj f(out);
      f.num("id", s.id());
      f.str("proto", "udp");
      f.str("src", s.app().toString());
      f.num("channels", s.channelCount());
      f.boolean("assured", s.assured());
      f.num("age_ms", in.nowMs - std::min(in.nowMs, s.startMs()));
      f.num("idle_ms", in.nowMs - std::min(in.nowMs, s.lastActivityMs()));
    });
    out += ']';
    o.boolean("flows_truncated",
              c->sessionCount() + c->udpSessionCount() > listed);
  }
  return out;
}

void logStopStats(const client::Client& c, const client::TunPumpStats* pump) {
  const client::ClientStats& cs = c.stats();
  client::TunPumpStats none;
  const client::TunPumpStats& ps = pump != nullptr ? *pump : none;
  VT_INFO("stopping: %llu flows (%llu evicted, %llu failed dials, %llu loops refused), "
          "up %llu B, down %llu B, tun drops %llu (%llu control), "
          "%llu writes waited for room (%llu control)",
          ull(cs.flowsOpened), ull(cs.evicted), ull(cs.connectFailed), ull(cs.loopsRefused),
          ull(cs.bytesUp), ull(cs.bytesDown), ull(ps.writeDropped), ull(ps.controlDropped),
          ull(ps.writeQueued), ull(ps.controlQueued));
  auto& stack = const_cast<client::Client&>(c).stack();
  const netstack::NetStackStats& ns = stack.stats();
  VT_INFO("stopping: tcp syns %llu held (%llu replaced, %llu evicted, %llu expired), "
          "4-tuples reused from time_wait %llu / closing %llu, time_wait %zu now (%llu evicted)",
          ull(ns.synHeld), ull(ns.synReplaced), ull(ns.synEvicted), ull(ns.synExpired),
          ull(ns.timeWaitReused), ull(ns.closingReused), stack.timeWaitCount(),
          ull(ns.timeWaitEvicted));
  if (const tls::TlsContext* tls = c.tlsContext(); tls != nullptr) {
    VT_INFO("stopping: tls %llu handshakes, %llu resumed, %llu tickets received",
            ull(tls->stats().handshakes), ull(tls->stats().resumed),
            ull(tls->stats().ticketsReceived));
  }
  if (const client::ConnectionPool* pool = c.pool(); pool != nullptr) {
    const client::ConnectionPoolStats& p = pool->stats();
    VT_INFO("stopping: pool %llu flows on reused connections, %llu connections released, "
            "%llu expired idle, %llu closed by the server while idle, %llu over max_idle",
            ull(p.reused), ull(p.released), ull(p.expired), ull(p.serverClosed),
            ull(p.overflow));
  }
  if (const client::MuxPool* mux = c.mux(); mux != nullptr) {
    const client::MuxPoolStats& ms = mux->stats();
    VT_INFO("stopping: mux %llu streams on %llu connections (%llu lost, %llu of them failed "
            "dials; %llu closed idle), at most %llu streams on %llu connections, %zu "
            "connections now",
            ull(ms.streamsOpened), ull(ms.connectionsOpened), ull(ms.connectionsLost),
            ull(ms.dialsFailed), ull(ms.connectionsIdled), ull(ms.maxStreams),
            ull(ms.maxConnections), mux->connections());
  }
}

void logStopStatsAfter(const client::Client& c) {
  const client::ClientStats& cs = c.stats();
  VT_INFO("stopping: udp %llu sessions (%llu evicted, %llu channels evicted), up %llu/%llu B, "
          "down %llu/%llu B, drops %llu (%llu while pausing after a failed channel); dns %llu "
          "hijacked (%llu tcp), %llu cache hits, %llu answers not cached (no matching query)",
          ull(cs.udpSessionsOpened), ull(cs.udpEvicted), ull(cs.udpChannelsEvicted),
          ull(cs.udpDatagramsUp), ull(cs.udpBytesUp), ull(cs.udpDatagramsDown),
          ull(cs.udpBytesDown), ull(cs.udpDrops), ull(cs.udpBackoffDrops), ull(cs.dnsHijacked),
          ull(cs.dnsTcpHijacked), ull(cs.dnsCacheHits), ull(cs.dnsUnmatched));
  auto& stack = const_cast<client::Client&>(c).stack();
  if (const client::IpTunnel* ip = c.ipTunnel(); ip != nullptr) {
    const client::IpTunnelStats& is = ip->stats();
    VT_INFO("stopping: ip (CmdIP) up %llu packets/%llu B, down %llu packets/%llu B, drops %llu "
            "(queue full %llu, congested %llu, too big %llu, at stop %llu, invalid from the "
            "server %llu, not routable %llu, ipv6 refused %llu), %llu dials (%llu reconnects, "
            "%llu failed, %llu lost, %llu protocol errors), %llu passthrough packets",
            ull(is.packetsUp), ull(is.bytesUp), ull(is.packetsDown), ull(is.bytesDown),
            ull(is.drops() + cs.ipNotRoutable + cs.ipRefusedV6), ull(is.dropQueueFull),
            ull(is.dropCongested), ull(is.dropTooBig), ull(is.dropStopped),
            ull(is.dropInvalidDown), ull(cs.ipNotRoutable), ull(cs.ipRefusedV6), ull(is.dials),
            ull(is.reconnects), ull(is.connectFailed), ull(is.lost), ull(is.protocolErrors),
            ull(stack.stats().passthrough));
  } else {
    VT_INFO("stopping: ip (CmdIP) off (%s): %llu packets of other protocols dropped",
            c.config().server.version == 0 ? "server.version = 0" : "ip.enabled = false",
            ull(stack.stats().otherDropped));
  }
}

}  // namespace vt::engine
