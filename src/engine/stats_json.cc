#include "engine/stats_json.h"

#include <cinttypes>
#include <cstdio>

#include "client/connection_pool.h"
#include "client/ip_tunnel.h"
#include "client/mux_pool.h"
#include "client/tcp_session.h"
#include "client/udp_session.h"
#include "core/json.h"
#include "core/log.h"
#include "tls/tls_engine.h"

namespace vt::engine {

namespace {

using ull = unsigned long long;

using Obj = JsonObject;

std::string endpoint(const netstack::IpAddress& a, uint16_t port) {
  return netstack::UdpEndpoint{a, port}.toString();
}


// The sum of `field` (a member, or a call like `drops()`) over the objects.
template <typename T, typename F>
uint64_t sumField(const std::vector<const T*>& v, F f) {
  uint64_t t = 0;
  for (const T* x : v) t += static_cast<uint64_t>(f(*x));
  return t;
}
#define VT_SUM(vec, field) sumField(vec, [](const auto& x) { return x.field; })

// The workers' parts of one kind, to be summed.
struct Parts {
  explicit Parts(const std::vector<const client::Client*>& clients) {
    for (const client::Client* c : clients) {
      stats.push_back(&c->stats());
      if (const tls::TlsContext* t = c->tlsContext(); t != nullptr) tls.push_back(&t->stats());
      if (const client::MuxPool* m = c->mux(); m != nullptr) {
        muxPools.push_back(m);
        mux.push_back(&m->stats());
      }
      if (const client::ConnectionPool* x = c->pool(); x != nullptr) pools.push_back(x);
      if (const client::IpTunnel* i = c->ipTunnel(); i != nullptr) ip.push_back(&i->stats());
    }
  }
  std::vector<const client::ClientStats*> stats;
  std::vector<const tls::TlsStats*> tls;
  std::vector<const client::MuxPool*> muxPools;
  std::vector<const client::MuxPoolStats*> mux;
  std::vector<const client::ConnectionPool*> pools;
  std::vector<const client::IpTunnelStats*> ip;
};

}  // namespace


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
    if (in.clients.empty()) return out + "}";
    const Parts p(in.clients);
    const client::Client* c = in.clients.front();
    o.num("uptime_ms", in.uptimeMs);
    o.num("workers", in.clients.size());
    {
      o.key("tun");
      Obj t(out);
      t.str("name", in.tunName);
      if (!in.pumps.empty()) {
        t.num("packets_in", VT_SUM(in.pumps, packetsIn));
        t.num("bytes_in", VT_SUM(in.pumps, bytesIn));
        t.num("packets_out", VT_SUM(in.pumps, packetsOut));
        t.num("bytes_out", VT_SUM(in.pumps, bytesOut));
        t.num("write_dropped", VT_SUM(in.pumps, writeDropped));
        t.num("write_queued", VT_SUM(in.pumps, writeQueued));
        t.num("read_dropped", VT_SUM(in.pumps, readDropped));
        t.num("gso_in", VT_SUM(in.pumps, gsoIn));
        t.num("gso_out", VT_SUM(in.pumps, gsoOut));
        t.num("tcp_gathered", VT_SUM(in.pumps, tcpGathered));
        t.num("udp_gathered", VT_SUM(in.pumps, udpGathered));
        t.num("offload_dropped", VT_SUM(in.pumps, offloadDropped));
      } else {
        t.num("packets_in", in.packetsIn);
        t.num("bytes_in", in.bytesIn);
        t.num("packets_out", in.packetsOut);
        t.num("bytes_out", in.bytesOut);
        t.num("input_queued", in.inputQueued);
        t.num("input_queued_bytes", in.inputQueuedBytes);
      }
    }
    const auto& cs = p.stats;
    size_t sessions = 0, udpSessions = 0;
    for (const client::Client* w : in.clients) {
      sessions += w->sessionCount();
      udpSessions += w->udpSessionCount();
    }
    {
      o.key("tcp");
      Obj t(out);
      t.num("flows", sessions);
      t.num("opened", VT_SUM(cs, flowsOpened));
      t.num("closed", VT_SUM(cs, flowsClosed));
      t.num("evicted", VT_SUM(cs, evicted));
      t.num("connect_failed", VT_SUM(cs, connectFailed));
      t.num("loops_refused", VT_SUM(cs, loopsRefused));
      t.num("ipv6_refused", VT_SUM(cs, ipv6Refused));
      t.num("bytes_up", VT_SUM(cs, bytesUp));
      t.num("bytes_down", VT_SUM(cs, bytesDown));
    }
    {
      o.key("udp");
      Obj u(out);
      u.num("sessions", udpSessions);
      u.num("opened", VT_SUM(cs, udpSessionsOpened));
      u.num("closed", VT_SUM(cs, udpSessionsClosed));
      u.num("evicted", VT_SUM(cs, udpEvicted));
      u.num("channels_evicted", VT_SUM(cs, udpChannelsEvicted));
      u.num("datagrams_up", VT_SUM(cs, udpDatagramsUp));
      u.num("bytes_up", VT_SUM(cs, udpBytesUp));
      u.num("datagrams_down", VT_SUM(cs, udpDatagramsDown));
      u.num("bytes_down", VT_SUM(cs, udpBytesDown));
      u.num("drops", VT_SUM(cs, udpDrops) + VT_SUM(cs, handOverDrops));
      u.num("refused", VT_SUM(cs, udpRefused));
      u.num("handed_over", VT_SUM(cs, handedOver));
      u.num("hand_over_drops", VT_SUM(cs, handOverDrops));
    }
    {
      o.key("network");
      Obj n(out);
      n.num("changes", c->stats().networkChanges);
      n.num("connections_closed", VT_SUM(cs, networkClosed));
    }
    {
      o.key("route");
      Obj r(out);
      r.num("rules", c->config().route.rules.count);
      r.num("tcp_direct", VT_SUM(cs, flowsDirect));
      r.num("tcp_blocked", VT_SUM(cs, flowsBlocked));
      r.num("udp_direct", VT_SUM(cs, udpDirect));
      r.num("udp_blocked", VT_SUM(cs, udpBlocked));
      r.num("dns_direct", VT_SUM(cs, dnsDirect));
      r.num("names_sniffed", VT_SUM(cs, namesSniffed));
      r.num("sniff_misses", VT_SUM(cs, sniffMisses));
    }
    {
      o.key("dns");
      Obj d(out);
      d.num("hijacked", VT_SUM(cs, dnsHijacked));
      d.num("tcp_hijacked", VT_SUM(cs, dnsTcpHijacked));
      d.num("cache_hits", VT_SUM(cs, dnsCacheHits));
      d.num("not_cached", VT_SUM(cs, dnsUnmatched));
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
      if (!p.tls.empty()) {
        k.num("tls_handshakes", VT_SUM(p.tls, handshakes));
        k.num("tls_resumed", VT_SUM(p.tls, resumed));
      }
      if (!p.mux.empty()) {
        k.num("mux_connections", VT_SUM(p.muxPools, connections()));
        k.num("mux_streams", VT_SUM(p.muxPools, streams()));
        k.num("mux_connections_opened", VT_SUM(p.mux, connectionsOpened));
        k.num("mux_connections_lost", VT_SUM(p.mux, connectionsLost));
        k.num("mux_dials_failed", VT_SUM(p.mux, dialsFailed));
        k.num("mux_frames_sent", VT_SUM(p.muxPools, framesSent()));
        k.num("mux_connection_writes", VT_SUM(p.muxPools, connectionWrites()));
        k.num("mux_window_growths", VT_SUM(p.muxPools, windowGrowths()));
      }
      if (!p.pools.empty()) {
        k.num("pool_idle", VT_SUM(p.pools, idle()));
        k.num("pool_reused", VT_SUM(p.pools, stats().reused));
      }
    }
    if (!p.ip.empty()) {
      o.key("ip");
      Obj i(out);
      i.num("packets_up", VT_SUM(p.ip, packetsUp));
      i.num("bytes_up", VT_SUM(p.ip, bytesUp));
      i.num("packets_down", VT_SUM(p.ip, packetsDown));
      i.num("bytes_down", VT_SUM(p.ip, bytesDown));
      i.num("drops", VT_SUM(p.ip, drops()) + VT_SUM(cs, ipNotRoutable) +
                         VT_SUM(cs, ipRefusedV6) + VT_SUM(cs, ipNotCarried));
      i.num("dials", VT_SUM(p.ip, dials));
      i.num("lost", VT_SUM(p.ip, lost));
    }
    // Flow by flow, at most kMaxListedFlows of each kind.
    size_t listed = 0;
    size_t tcpListed = 0;
    o.key("flows");
    out += '[';
    for (const client::Client* w : in.clients) {
      w->forEachSession([&](const client::TcpSession& s) {
        if (tcpListed >= kMaxListedFlows) return;
        ++tcpListed;
        if (listed++ > 0) out += ',';
        Obj f(out);
        f.num("id", s.id());
        f.str("proto", "tcp");
        f.str("src", endpoint(s.key().src, s.key().srcPort));
        f.str("dst", endpoint(s.key().dst, s.key().dstPort));
        if (!s.name().empty()) f.str("name", s.name());
        if (s.direct()) f.boolean("direct", true);
        f.num("up", s.upBytes());
        f.num("down", s.downBytes());
        f.num("age_ms", in.nowMs - std::min(in.nowMs, s.startMs()));
        f.num("idle_ms", in.nowMs - std::min(in.nowMs, s.lastActivityMs()));
      });
    }
    size_t udpListed = 0;
    for (const client::Client* w : in.clients) {
      w->forEachUdpSession([&](const client::UdpSession& s) {
        if (udpListed >= kMaxListedFlows) return;
        if (listed++ > 0) out += ',';
        ++udpListed;
        Obj f(out);
        f.num("id", s.id());
        f.str("proto", "udp");
        f.str("src", s.app().toString());
        f.num("channels", s.channelCount());
        f.boolean("assured", s.assured());
        f.num("up", s.upBytes());
        f.num("down", s.downBytes());
        f.num("age_ms", in.nowMs - std::min(in.nowMs, s.startMs()));
        f.num("idle_ms", in.nowMs - std::min(in.nowMs, s.lastActivityMs()));
      });
    }
    out += ']';
    o.boolean("flows_truncated", sessions + udpSessions > listed);
  }
  return out;
}

void logStopStats(const std::vector<const client::Client*>& clients,
                  const std::vector<const client::TunPumpStats*>& pumps) {
  if (clients.empty()) return;
  const Parts p(clients);
  const auto& cs = p.stats;
  const auto& ps = pumps;
  size_t timeWait = 0;
  std::vector<const netstack::NetStackStats*> ns;
  for (const client::Client* c : clients) {
    auto& stack = const_cast<client::Client&>(*c).stack();
    timeWait += stack.timeWaitCount();
    ns.push_back(&stack.stats());
  }
  VT_INFO("stopping: %llu flows (%llu evicted, %llu failed dials, %llu loops refused), "
          "up %llu B, down %llu B, tun drops %llu (%llu control), "
          "%llu writes waited for room (%llu control)",
          ull(VT_SUM(cs, flowsOpened)), ull(VT_SUM(cs, evicted)), ull(VT_SUM(cs, connectFailed)),
          ull(VT_SUM(cs, loopsRefused)), ull(VT_SUM(cs, bytesUp)), ull(VT_SUM(cs, bytesDown)),
          ull(VT_SUM(ps, writeDropped)), ull(VT_SUM(ps, controlDropped)),
          ull(VT_SUM(ps, writeQueued)), ull(VT_SUM(ps, controlQueued)));
  if (VT_SUM(ps, gsoIn) + VT_SUM(ps, gsoOut) + VT_SUM(ps, offloadDropped) > 0) {
    VT_INFO("stopping: tun offload: %llu of %llu packets read were TSO segments (%llu dropped), "
            "%llu of %llu written GSO packets (%llu TCP segments and %llu UDP datagrams gathered in them)",
            ull(VT_SUM(ps, gsoIn)), ull(VT_SUM(ps, packetsIn)), ull(VT_SUM(ps, offloadDropped)),
            ull(VT_SUM(ps, gsoOut)), ull(VT_SUM(ps, packetsOut)), ull(VT_SUM(ps, tcpGathered)),
            ull(VT_SUM(ps, udpGathered)));
  }
  VT_INFO("stopping: tcp syns %llu held (%llu replaced, %llu evicted, %llu expired), "
          "4-tuples reused from time_wait %llu / closing %llu, time_wait %zu now (%llu evicted)",
          ull(VT_SUM(ns, synHeld)), ull(VT_SUM(ns, synReplaced)), ull(VT_SUM(ns, synEvicted)),
          ull(VT_SUM(ns, synExpired)), ull(VT_SUM(ns, timeWaitReused)),
          ull(VT_SUM(ns, closingReused)), timeWait, ull(VT_SUM(ns, timeWaitEvicted)));
  if (clients.size() > 1) {
    std::string each;
    for (const client::Client* c : clients) {
      if (!each.empty()) each += ' ';
      each += std::to_string(c->stats().flowsOpened) + "/" +
              std::to_string(c->stats().udpSessionsOpened);
    }
    VT_INFO("stopping: %zu workers, tcp flows/udp sessions per worker %s, %llu datagrams handed "
            "to their home worker (%llu dropped: its queue was full)",
            clients.size(), each.c_str(), ull(VT_SUM(cs, handedOver)),
            ull(VT_SUM(cs, handOverDrops)));
  }
  if (clients.front()->config().route.rules.set != nullptr) {
    VT_INFO("stopping: routing: %zu rules, default %s; tcp direct=%llu blocked=%llu, "
            "udp direct=%llu blocked=%llu (datagrams), dns direct=%llu; names sniffed %llu "
            "(%llu flows without one)",
            clients.front()->config().route.rules.count,
            clients.front()->config().route.rules.default_action.c_str(),
            ull(VT_SUM(cs, flowsDirect)), ull(VT_SUM(cs, flowsBlocked)),
            ull(VT_SUM(cs, udpDirect)), ull(VT_SUM(cs, udpBlocked)), ull(VT_SUM(cs, dnsDirect)),
            ull(VT_SUM(cs, namesSniffed)), ull(VT_SUM(cs, sniffMisses)));
  }
  if (!p.tls.empty()) {
    VT_INFO("stopping: tls %llu handshakes, %llu resumed, %llu tickets received",
            ull(VT_SUM(p.tls, handshakes)), ull(VT_SUM(p.tls, resumed)),
            ull(VT_SUM(p.tls, ticketsReceived)));
  }
  if (!p.pools.empty()) {
    std::vector<const client::ConnectionPoolStats*> pl;
    for (const client::ConnectionPool* x : p.pools) pl.push_back(&x->stats());
    VT_INFO("stopping: pool %llu flows on reused connections, %llu connections released, "
            "%llu expired idle, %llu closed by the server while idle, %llu over max_idle",
            ull(VT_SUM(pl, reused)), ull(VT_SUM(pl, released)), ull(VT_SUM(pl, expired)),
            ull(VT_SUM(pl, serverClosed)), ull(VT_SUM(pl, overflow)));
  }
  if (!p.mux.empty()) {
    VT_INFO("stopping: mux %llu streams on %llu connections (%llu lost, %llu of them failed "
            "dials; %llu closed idle), at most %llu streams on %llu connections, %llu "
            "connections now; %llu frames sent in %llu writes; %llu stream windows grown",
            ull(VT_SUM(p.mux, streamsOpened)), ull(VT_SUM(p.mux, connectionsOpened)),
            ull(VT_SUM(p.mux, connectionsLost)), ull(VT_SUM(p.mux, dialsFailed)),
            ull(VT_SUM(p.mux, connectionsIdled)), ull(VT_SUM(p.mux, maxStreams)),
            ull(VT_SUM(p.mux, maxConnections)), ull(VT_SUM(p.muxPools, connections())),
            ull(VT_SUM(p.muxPools, framesSent())), ull(VT_SUM(p.muxPools, connectionWrites())),
            ull(VT_SUM(p.muxPools, windowGrowths())));
  }
}

void logStopStatsAfter(const std::vector<const client::Client*>& clients) {
  if (clients.empty()) return;
  const Parts p(clients);
  const auto& cs = p.stats;
  std::vector<const netstack::NetStackStats*> ns;
  for (const client::Client* c : clients) {
    ns.push_back(&const_cast<client::Client&>(*c).stack().stats());
  }
  VT_INFO("stopping: udp %llu sessions (%llu evicted, %llu channels evicted), up %llu/%llu B, "
          "down %llu/%llu B, drops %llu (%llu while pausing after a failed channel); dns %llu "
          "hijacked (%llu tcp), %llu cache hits, %llu answers not cached (no matching query)",
          ull(VT_SUM(cs, udpSessionsOpened)), ull(VT_SUM(cs, udpEvicted)),
          ull(VT_SUM(cs, udpChannelsEvicted)), ull(VT_SUM(cs, udpDatagramsUp)),
          ull(VT_SUM(cs, udpBytesUp)), ull(VT_SUM(cs, udpDatagramsDown)),
          ull(VT_SUM(cs, udpBytesDown)), ull(VT_SUM(cs, udpDrops) + VT_SUM(cs, handOverDrops)),
          ull(VT_SUM(cs, udpBackoffDrops)), ull(VT_SUM(cs, dnsHijacked)),
          ull(VT_SUM(cs, dnsTcpHijacked)), ull(VT_SUM(cs, dnsCacheHits)),
          ull(VT_SUM(cs, dnsUnmatched)));
  const client::Client& c = *clients.front();
  if (!p.ip.empty()) {
    const auto& is = p.ip;
    VT_INFO("stopping: ip (CmdIP) up %llu packets/%llu B, down %llu packets/%llu B, drops %llu "
            "(queue full %llu, congested %llu, too big %llu, at stop %llu, invalid from the "
            "server %llu, not routable %llu, ipv6 refused %llu), %llu dials (%llu reconnects, "
            "%llu failed, %llu lost, %llu protocol errors), %llu passthrough packets",
            ull(VT_SUM(is, packetsUp)), ull(VT_SUM(is, bytesUp)), ull(VT_SUM(is, packetsDown)),
            ull(VT_SUM(is, bytesDown)),
            ull(VT_SUM(is, drops()) + VT_SUM(cs, ipNotRoutable) + VT_SUM(cs, ipRefusedV6) +
                VT_SUM(cs, ipNotCarried)),
            ull(VT_SUM(is, dropQueueFull)), ull(VT_SUM(is, dropCongested)),
            ull(VT_SUM(is, dropTooBig)), ull(VT_SUM(is, dropStopped)),
            ull(VT_SUM(is, dropInvalidDown)), ull(VT_SUM(cs, ipNotRoutable)),
            ull(VT_SUM(cs, ipRefusedV6)), ull(VT_SUM(is, dials)), ull(VT_SUM(is, reconnects)),
            ull(VT_SUM(is, connectFailed)), ull(VT_SUM(is, lost)), ull(VT_SUM(is, protocolErrors)),
            ull(VT_SUM(ns, passthrough)));
  } else {
    VT_INFO("stopping: ip (CmdIP) off (%s): %llu packets of other protocols dropped",
            c.config().server.version == 0 ? "server.version = 0" : "ip.enabled = false",
            ull(VT_SUM(ns, otherDropped)));
  }
}

}  // namespace vt::engine
