#include "server/server_stats.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <unordered_map>
#include <vector>

#include "core/json.h"
#include "core/text_table.h"
#include "server/ip_exit.h"
#include "server/server.h"
#include "server/server_session.h"
#include "tls/tls_engine.h"

namespace vt::server {
namespace {

constexpr size_t kKinds = 6;  // ServerSession::Kind

struct UserRow {
  std::string name;
  bool configured = false;
  uint64_t connections = 0;
  uint64_t mux_streams = 0;
  size_t connections_live = 0;
  size_t mux_streams_live = 0;
  TrafficCounters traffic;
};

// Everything the three outputs print, taken at once on the loop thread.
struct Snapshot {
  uint64_t uptime_ms = 0;
  TotalCounters totals;
  TrafficCounters traffic;      // ended + live (Mux connections' own bytes not counted)
  size_t connections_live = 0;  // sessions that are not Mux streams
  size_t mux_streams_live = 0;
  size_t sessions_live = 0;
  std::array<size_t, kKinds> by_kind{};
  std::vector<UserRow> users;
  std::vector<ServerSession::Info> sessions;  // by id
};

Snapshot takeSnapshot(Server& s) {
  Snapshot snap;
  const uint64_t now = s.loop().now();
  snap.uptime_ms = now - s.startedMs();
  snap.totals = s.totalCounters();
  snap.traffic = snap.totals.closed;
  // Users: the configured ones in config order, then those a reload
  // removed (their counters stay), by name.
  std::unordered_map<const char*, size_t> row_of;
  auto addRow = [&](const char* key, bool configured) {
    if (row_of.count(key) != 0) return;
    auto it = s.userCounters().find(key);
    UserRow r;
    r.name = key;
    r.configured = configured;
    if (it != s.userCounters().end()) {
      r.connections = it->second.connections;
      r.mux_streams = it->second.mux_streams;
      r.traffic = it->second.closed;
    }
    r.connections_live = s.userConnections(key);
    r.mux_streams_live = s.userStreams(key);
    row_of.emplace(key, snap.users.size());
    snap.users.push_back(std::move(r));
  };
  std::vector<std::string> names;
  for (const config::ServerUser& u : s.config().users) names.push_back(u.name);
  for (const std::string& n : names) addRow(s.userKey(n), true);
  std::vector<const char*> removed;
  for (const auto& [key, c] : s.userCounters()) {
    if (row_of.count(key) == 0) removed.push_back(key);
  }
  std::sort(removed.begin(), removed.end(),
            [](const char* a, const char* b) { return std::string_view(a) < std::string_view(b); });
  for (const char* key : removed) addRow(key, false);

  s.forEachSession(
      [&](const ServerSession& session) { snap.sessions.push_back(session.info(now)); });
  std::sort(snap.sessions.begin(), snap.sessions.end(),
            [](const ServerSession::Info& a, const ServerSession::Info& b) { return a.id < b.id; });
  for (const ServerSession::Info& i : snap.sessions) {
    ++snap.sessions_live;
    ++snap.by_kind[static_cast<size_t>(i.kind)];
    if (i.mux_parent != 0) {
      ++snap.mux_streams_live;
    } else {
      ++snap.connections_live;
    }
    if (i.kind == ServerSession::Kind::kMux) continue;  // its streams carry its bytes
    TrafficCounters t;
    t.bytes_up = i.up;
    t.bytes_down = i.down;
    t.udp_datagrams_up = i.udp_datagrams_up;
    t.udp_datagrams_down = i.udp_datagrams_down;
    snap.traffic.add(t);
    auto it = row_of.find(i.user);
    if (it != row_of.end()) snap.users[it->second].traffic.add(t);
  }
  return snap;
}

void trafficJson(JsonObject& o, const TrafficCounters& t) {
  o.num("bytes_up", t.bytes_up);
  o.num("bytes_down", t.bytes_down);
  o.num("udp_datagrams_up", t.udp_datagrams_up);
  o.num("udp_datagrams_down", t.udp_datagrams_down);
}

void totalsJson(std::string& out, Server& s, const Snapshot& snap) {
  JsonObject o(out);
  o.num("connections_accepted", snap.totals.accepted);
  o.num("connections", snap.totals.connections);
  o.num("mux_streams", snap.totals.mux_streams);
  o.num("fallbacks", snap.totals.fallbacks);
  o.num("connections_live", snap.connections_live);
  o.num("mux_streams_live", snap.mux_streams_live);
  o.num("sessions_live", snap.sessions_live);
  o.key("sessions_live_by_kind");
  {
    JsonObject k(out);
    for (size_t i = 0; i < kKinds; ++i) {
      k.num(ServerSession::kindName(static_cast<ServerSession::Kind>(i)), snap.by_kind[i]);
    }
  }
  trafficJson(o, snap.traffic);
  const Server::AdmissionStats& as = s.admissionStats();
  o.key("admission_refused");
  {
    JsonObject a(out);
    a.num("max_connections", as.max_connections);
    a.num("max_connections_per_source", as.source_connections);
    a.num("max_handshakes_per_source", as.source_handshakes);
    a.num("max_connections_per_user", as.user_connections);
  }
  o.num("egress_denied", s.egressDenied());
  const UdpNatStats& us = s.udpNat().stats();
  o.key("udp_nat");
  {
    JsonObject u(out);
    u.num("sessions", s.udpNat().size());
    u.num("created", us.created);
    u.num("expired", us.expired);
    u.num("expired_unassured", us.expired_new);
    u.num("evicted_max_sessions_per_user", us.evicted_max_sessions_per_user);
    u.num("evicted_max_sessions", us.evicted_max_sessions);
  }
  const stream::BufferBudget& bb = s.bufferBudget();
  o.key("buffer_budget");
  {
    JsonObject b(out);
    b.num("limit_bytes", bb.limit());
    b.num("queued_bytes", bb.used());
    b.num("peak_bytes", bb.peak());
    b.num("pressure_episodes", bb.pressureEpisodes());
  }
  const event::ResolverPool::Stats& rs = s.resolvers().stats();
  o.key("name_lookups");
  {
    JsonObject r(out);
    r.num("lookups", rs.lookups);
    r.num("queued", rs.queued);
    r.num("busy", rs.busy);
    r.num("timeouts", rs.timeouts);
    r.num("late", rs.late);
  }
  if (s.tlsEnabled()) {
    o.key("tls");
    JsonObject t(out);
    t.num("handshakes", s.tlsHandshakes());
    t.num("tickets_accepted", s.tlsTicketsAccepted());
  }
  if (const IpExit* ip = s.ipExit()) {
    const IpExit::Stats& is = ip->stats();
    o.key("ip");
    JsonObject i(out);
    i.num("sessions", is.sessions);
    i.num("refused", is.refused);
    i.num("packets_up", is.totals.pkts_up);
    i.num("bytes_up", is.totals.bytes_up);
    i.num("packets_down", is.totals.pkts_down);
    i.num("bytes_down", is.totals.bytes_down);
    i.num("dropped", is.totals.dropped());
  }
}

// Prometheus text: # HELP and # TYPE once per family, then its samples.
class PromWriter {
 public:
  explicit PromWriter(std::string& out) : out_(out) {}
  void family(const char* name, const char* type, const char* help) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    out_ += help;
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }
  // `labels`: already formatted, `a="x",b="y"`, or empty.
  void sample(const char* name, const std::string& labels, uint64_t v) {
    out_ += name;
    if (!labels.empty()) out_ += "{" + labels + "}";
    out_ += ' ';
    out_ += std::to_string(v);
    out_ += '\n';
  }
  void one(const char* name, const char* type, const char* help, uint64_t v) {
    family(name, type, help);
    sample(name, "", v);
  }

 private:
  std::string& out_;
};

std::string label(const char* k, std::string_view v) {
  return std::string(k) + "=\"" + prometheusLabelValue(v) + "\"";
}

}  // namespace

std::string prometheusLabelValue(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string serverStatsJson(Server& s, size_t max_listed) {
  const Snapshot snap = takeSnapshot(s);
  std::string out;
  {
    JsonObject o(out);
    o.num("uptime_ms", snap.uptime_ms);
    o.key("totals");
    totalsJson(out, s, snap);
    o.key("users");
    out += '[';
    for (size_t i = 0; i < snap.users.size(); ++i) {
      if (i != 0) out += ',';
      const UserRow& r = snap.users[i];
      JsonObject u(out);
      u.str("name", r.name);
      u.boolean("configured", r.configured);
      u.num("connections_live", r.connections_live);
      u.num("mux_streams_live", r.mux_streams_live);
      u.num("connections", r.connections);
      u.num("mux_streams", r.mux_streams);
      trafficJson(u, r.traffic);
    }
    out += ']';
    o.key("connections");
    out += '[';
    const size_t listed = std::min(max_listed, snap.sessions.size());
    for (size_t i = 0; i < listed; ++i) {
      if (i != 0) out += ',';
      const ServerSession::Info& in = snap.sessions[i];
      JsonObject c(out);
      c.num("id", in.id);
      c.str("user", in.user);
      c.str("peer", in.peer);
      c.str("target", in.target);
      c.str("kind", ServerSession::kindName(in.kind));
      c.str("state", in.state);
      c.num("up", in.up);
      c.num("down", in.down);
      c.num("udp_datagrams_up", in.udp_datagrams_up);
      c.num("udp_datagrams_down", in.udp_datagrams_down);
      c.num("age_ms", in.age_ms);
      c.num("idle_ms", in.idle_ms);
      if (in.mux_parent != 0) {
        c.num("mux_parent", in.mux_parent);
        c.str("mux_stream", in.mux_stream);
      }
    }
    out += ']';
    o.boolean("connections_truncated", listed < snap.sessions.size());
  }
  return out;
}

std::string serverStatusTable(Server& s, size_t max_rows) {
  Snapshot snap = takeSnapshot(s);
  std::string out;
  out += "uptime " + humanDuration(snap.uptime_ms) + ", " + std::to_string(snap.connections_live) +
         " connections live (" + std::to_string(snap.mux_streams_live) + " mux streams), " +
         std::to_string(snap.totals.accepted) + " accepted since start\n";
  out += "traffic: up " + humanBytes(snap.traffic.bytes_up) + ", down " +
         humanBytes(snap.traffic.bytes_down) + "; udp datagrams " +
         std::to_string(snap.traffic.udp_datagrams_up) + " up, " +
         std::to_string(snap.traffic.udp_datagrams_down) + " down\n";
  const Server::AdmissionStats& as = s.admissionStats();
  out += "refused: " + std::to_string(as.max_connections) + " at max_connections, " +
         std::to_string(as.source_connections) + " per source, " +
         std::to_string(as.source_handshakes) + " handshakes per source, " +
         std::to_string(as.user_connections) + " per user; egress denied " +
         std::to_string(s.egressDenied()) + "; udp nat " + std::to_string(s.udpNat().size()) +
         " sessions; buffers " + humanBytes(s.bufferBudget().used()) + " queued\n";

  TextTable users({"USER", "LIVE", "STREAMS", "CONNS", "MUX", "UP", "DOWN"});
  for (const UserRow& r : snap.users) {
    users.add({r.name + (r.configured ? "" : " (removed)"), std::to_string(r.connections_live),
               std::to_string(r.mux_streams_live), std::to_string(r.connections),
               std::to_string(r.mux_streams), humanBytes(r.traffic.bytes_up),
               humanBytes(r.traffic.bytes_down)});
  }
  out += "\n" + users.render();

  std::vector<ServerSession::Info>& list = snap.sessions;
  std::stable_sort(list.begin(), list.end(),
                   [](const ServerSession::Info& a, const ServerSession::Info& b) {
                     return a.up + a.down > b.up + b.down;
                   });
  TextTable conns({"ID", "USER", "KIND", "PEER", "TARGET", "UP", "DOWN", "AGE"});
  const size_t shown = std::min(max_rows, list.size());
  for (size_t i = 0; i < shown; ++i) {
    const ServerSession::Info& in = list[i];
    std::string id = std::to_string(in.id);
    if (in.mux_parent != 0) id += " (" + std::to_string(in.mux_parent) + "/" + in.mux_stream + ")";
    conns.add({id, in.user, ServerSession::kindName(in.kind), in.peer, in.target, humanBytes(in.up),
               humanBytes(in.down), humanDuration(in.age_ms)});
  }
  out += "\n" + conns.render();
  if (shown < list.size()) out += "... and " + std::to_string(list.size() - shown) + " more\n";
  return out;
}

std::string serverPrometheus(Server& s) {
  const Snapshot snap = takeSnapshot(s);
  std::string out;
  PromWriter w(out);
  {
    char buf[48];
    std::snprintf(buf, sizeof buf, "%.3f", static_cast<double>(snap.uptime_ms) / 1000.0);
    w.family("vless_server_uptime_seconds", "gauge", "Seconds since the server started.");
    out += std::string("vless_server_uptime_seconds ") + buf + "\n";
  }
  w.one("vless_server_connections_accepted_total", "counter",
        "Client connections accepted past admission, whatever came of them.", snap.totals.accepted);
  w.one("vless_server_connections_total", "counter",
        "Authenticated client connections opened (Mux streams not counted).",
        snap.totals.connections);
  w.one("vless_server_mux_streams_total", "counter", "Mux streams opened.",
        snap.totals.mux_streams);
  w.one("vless_server_fallbacks_total", "counter",
        "Connections with bad input handed to the fallback.", snap.totals.fallbacks);
  w.one("vless_server_connections_live", "gauge",
        "Client connections open now, in any phase (Mux streams not counted).",
        snap.connections_live);
  w.one("vless_server_mux_streams_live", "gauge", "Mux streams open now.", snap.mux_streams_live);
  w.family("vless_server_sessions_live", "gauge",
           "Sessions open now (connections and Mux streams) by what they carry.");
  for (size_t i = 0; i < kKinds; ++i) {
    w.sample("vless_server_sessions_live",
             label("kind", ServerSession::kindName(static_cast<ServerSession::Kind>(i))),
             snap.by_kind[i]);
  }
  w.family("vless_server_bytes_total", "counter",
           "Payload bytes relayed, up = client to target, down = target to client; open "
           "connections included.");
  w.sample("vless_server_bytes_total", label("direction", "up"), snap.traffic.bytes_up);
  w.sample("vless_server_bytes_total", label("direction", "down"), snap.traffic.bytes_down);
  w.family("vless_server_udp_datagrams_total", "counter", "UDP datagrams relayed.");
  w.sample("vless_server_udp_datagrams_total", label("direction", "up"),
           snap.traffic.udp_datagrams_up);
  w.sample("vless_server_udp_datagrams_total", label("direction", "down"),
           snap.traffic.udp_datagrams_down);

  struct PerUser {
    const char* name;
    const char* type;
    const char* help;
    uint64_t (*value)(const UserRow&);
  };
  const PerUser per_user[] = {
      {"vless_server_user_connections_total", "counter",
       "Authenticated connections the user opened (Mux streams not counted).",
       [](const UserRow& r) { return r.connections; }},
      {"vless_server_user_mux_streams_total", "counter", "Mux streams the user opened.",
       [](const UserRow& r) { return r.mux_streams; }},
      {"vless_server_user_connections_live", "gauge",
       "The user's authenticated connections open now.",
       [](const UserRow& r) { return static_cast<uint64_t>(r.connections_live); }},
      {"vless_server_user_mux_streams_live", "gauge", "The user's Mux streams open now.",
       [](const UserRow& r) { return static_cast<uint64_t>(r.mux_streams_live); }},
  };
  for (const PerUser& m : per_user) {
    w.family(m.name, m.type, m.help);
    for (const UserRow& r : snap.users) w.sample(m.name, label("user", r.name), m.value(r));
  }
  w.family("vless_server_user_bytes_total", "counter",
           "The user's payload bytes, open connections included.");
  for (const UserRow& r : snap.users) {
    w.sample("vless_server_user_bytes_total",
             label("user", r.name) + "," + label("direction", "up"), r.traffic.bytes_up);
    w.sample("vless_server_user_bytes_total",
             label("user", r.name) + "," + label("direction", "down"), r.traffic.bytes_down);
  }
  w.family("vless_server_user_udp_datagrams_total", "counter", "The user's UDP datagrams.");
  for (const UserRow& r : snap.users) {
    w.sample("vless_server_user_udp_datagrams_total",
             label("user", r.name) + "," + label("direction", "up"), r.traffic.udp_datagrams_up);
    w.sample("vless_server_user_udp_datagrams_total",
             label("user", r.name) + "," + label("direction", "down"),
             r.traffic.udp_datagrams_down);
  }

  const Server::AdmissionStats& as = s.admissionStats();
  w.family("vless_server_admission_refused_total", "counter",
           "Connections refused (or closed after the request) at an admission limit.");
  w.sample("vless_server_admission_refused_total", label("limit", "max_connections"),
           as.max_connections);
  w.sample("vless_server_admission_refused_total", label("limit", "max_connections_per_source"),
           as.source_connections);
  w.sample("vless_server_admission_refused_total", label("limit", "max_handshakes_per_source"),
           as.source_handshakes);
  w.sample("vless_server_admission_refused_total", label("limit", "max_connections_per_user"),
           as.user_connections);
  w.one("vless_server_egress_denied_total", "counter",
        "Dials and datagrams the egress policy refused.", s.egressDenied());

  const UdpNatStats& us = s.udpNat().stats();
  w.one("vless_server_udp_nat_sessions", "gauge", "UDP NAT table sessions now.", s.udpNat().size());
  w.one("vless_server_udp_nat_sessions_created_total", "counter", "UDP NAT table sessions opened.",
        us.created);
  w.family("vless_server_udp_nat_sessions_expired_total", "counter",
           "UDP NAT sessions removed by a timeout.");
  w.sample("vless_server_udp_nat_sessions_expired_total", label("state", "unassured"),
           us.expired_new);
  w.sample("vless_server_udp_nat_sessions_expired_total", label("state", "assured"),
           us.expired >= us.expired_new ? us.expired - us.expired_new : 0);
  w.family("vless_server_udp_nat_sessions_evicted_total", "counter",
           "UDP NAT sessions evicted to make room at a cap.");
  w.sample("vless_server_udp_nat_sessions_evicted_total", label("limit", "max_sessions_per_user"),
           us.evicted_max_sessions_per_user);
  w.sample("vless_server_udp_nat_sessions_evicted_total", label("limit", "max_sessions"),
           us.evicted_max_sessions);

  w.one("vless_server_tls_handshakes_total", "counter", "TLS handshakes completed.",
        s.tlsHandshakes());
  w.one("vless_server_tls_tickets_accepted_total", "counter", "TLS sessions resumed from a ticket.",
        s.tlsTicketsAccepted());

  const stream::BufferBudget& bb = s.bufferBudget();
  w.one("vless_server_buffer_budget_bytes", "gauge", "The buffer budget (buffer_budget).",
        bb.limit());
  w.one("vless_server_buffer_budget_queued_bytes", "gauge",
        "Memory queued in all sockets' write queues now.", bb.used());
  w.one("vless_server_buffer_budget_peak_bytes", "gauge",
        "The most memory queued in write queues at once.", bb.peak());
  w.one("vless_server_buffer_budget_pressure_total", "counter",
        "Times the queued memory reached the budget.", bb.pressureEpisodes());

  const event::ResolverPool::Stats& rs = s.resolvers().stats();
  w.one("vless_server_name_lookups_total", "counter", "Name lookups started.", rs.lookups);
  w.one("vless_server_name_lookups_queued_total", "counter", "Name lookups that waited for a slot.",
        rs.queued);
  w.one("vless_server_name_lookups_busy_total", "counter",
        "Name lookups refused because the user's queue was full.", rs.busy);
  w.one("vless_server_name_lookups_timeouts_total", "counter",
        "Name lookups that timed out (resolve_timeout).", rs.timeouts);
  w.one("vless_server_name_lookups_late_total", "counter",
        "Name lookups that finished after their caller gave up.", rs.late);

  if (const IpExit* ip = s.ipExit()) {
    const IpExit::Stats& is = ip->stats();
    w.one("vless_server_ip_sessions_total", "counter", "IP sessions (CMD 5) started.", is.sessions);
    w.one("vless_server_ip_sessions_refused_total", "counter",
          "IP sessions refused at ip.max_sessions or ip.max_sessions_per_user.", is.refused);
    w.family("vless_server_ip_packets_total", "counter", "IP packets relayed.");
    w.sample("vless_server_ip_packets_total", label("direction", "up"), is.totals.pkts_up);
    w.sample("vless_server_ip_packets_total", label("direction", "down"), is.totals.pkts_down);
    w.one("vless_server_ip_packets_dropped_total", "counter", "IP packets dropped (any reason).",
          is.totals.dropped());
  }
  return out;
}

}  // namespace vt::server
