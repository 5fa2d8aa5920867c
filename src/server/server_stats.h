// The Server's counters as data (docs/server.md "Stats" and "Metrics"):
// a JSON document for programs, a table for people, and the Prometheus
// text exposition format for a scraper.
//
// Each call takes one snapshot on the loop thread: the Server's counters
// of ended traffic plus, summed now, what the live sessions carried so far
// (the data path pays one add per read, never a sum). Users appear by
// their config name only; a UUID is never printed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace vt::server {

class Server;

// One JSON object:
//   {"uptime_ms":N,
//    "totals":{"connections_accepted","connections","mux_streams","fallbacks",
//              "connections_live","mux_streams_live","sessions_live",
//              "sessions_live_by_kind":{"handshake":N,"tcp":N,...},
//              "bytes_up","bytes_down","udp_datagrams_up","udp_datagrams_down",
//              "admission_refused":{"max_connections",...},"egress_denied",
//              "udp_nat":{...},"buffer_budget":{...},"name_lookups":{...},
//              "tls":{...} (with [tls]),"ip":{...} (with [ip])},
//    "users":[{"name","configured","connections_live","mux_streams_live",
//              "connections","mux_streams","bytes_up","bytes_down",
//              "udp_datagrams_up","udp_datagrams_down"}],
//    "connections":[{"id","user","peer","target","kind","state","up","down",
//              "udp_datagrams_up","udp_datagrams_down","age_ms","idle_ms",
//              "mux_parent","mux_stream" (Mux streams only)}],
//    "connections_truncated":bool}
// `connections` lists at most `max_listed` live sessions, by id.
std::string serverStatsJson(Server& s, size_t max_listed = 1000);

// For a person: a few summary lines, a table per user, then the live
// connections with the most bytes first (at most `max_rows`, then
// "... and N more"). Columns aligned with spaces; ends with a newline.
std::string serverStatusTable(Server& s, size_t max_rows = 50);

// Prometheus text exposition format 0.0.4: every metric named
// vless_server_*, with # HELP and # TYPE; counters end in _total.
std::string serverPrometheus(Server& s);

// A label value escaped per the exposition format (\\, \", \n).
std::string prometheusLabelValue(std::string_view v);

}  // namespace vt::server
