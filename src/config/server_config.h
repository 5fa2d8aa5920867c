// ServerConfig: what vless-server reads from its TOML file. Plain structs;
// the loader validates everything so that the server never sees a value it
// has to second-guess. Reference: docs/server.md.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config_util.h"
#include "core/error.h"
#include "core/ip_prefix.h"
#include "core/log.h"

namespace vt::config {

struct ServerTlsConfig {
  std::string cert_file;  // absolute, or relative to the process cwd
  std::string key_file;
  std::vector<std::string> alpn;
  // Session tickets for resumption (docs/server.md "TLS"); the ticket key
  // rotates every ticket_lifetime (the previous one is still accepted).
  bool session_tickets = true;
  uint64_t ticket_lifetime_ms = 3'600'000;
};

struct ServerUser {
  std::string name;
  UuidBytes uuid{};
  // Bandwidth of all this user's connections together, each direction
  // (docs/server.md "Rate limit"); 0: none.
  uint64_t rate_limit_bytes_per_s = 0;
};

// [udp]: the UDP relay and its full-cone NAT table (docs/server.md).
struct ServerUdpConfig {
  // A NAT session (user, udp_session) lives this long after its last
  // packet either way once it is assured (a reply came and the client sent
  // again after it); RFC 4787 REQ-5 recommends 300 s.
  uint64_t session_timeout_ms = 300'000;
  // Before that (one exchange or none, like a DNS lookup) only this long,
  // as kernel NATs do for unreplied/unassured flows (REQ-5 allows shorter
  // timers for such ports). <= session_timeout_ms; the loader makes the
  // default follow a shorter session_timeout.
  uint64_t new_session_timeout_ms = 30'000;
  uint64_t channel_idle_timeout_ms = 300'000;  // a UDP channel with no packet
  uint32_t max_sessions = 4096;                // NAT sessions in total
  uint32_t max_sessions_per_user = 256;
};

// [mux]: VLESS v1 Mux connections (CMD 3, smux + SimpleSocks;
// docs/server.md "Mux"). Every stream is a session of its own and counts
// against max_connections too.
struct ServerMuxConfig {
  uint32_t max_streams = 1024;            // live streams per connection
  uint32_t max_streams_per_user = 16384;  // live streams per user, all connections
  uint64_t keepalive_ms = 10'000;         // NOP when nothing was sent this long
  uint64_t dead_ms = 30'000;              // nothing received this long: connection dead
  uint32_t stream_window = 256 * 1024;    // VER 2 receive window per stream
  uint32_t max_stream_window = 1 << 20;   // VER 2: what a stream's window may grow to
  uint32_t datagram_window = 1 << 20;     // VER 2 receive window of a UDP stream
};

// [egress]: which addresses users may reach (docs/server.md "Egress").
// Loopback, private, link-local, multicast, reserved and the server's own
// addresses are refused unless `allow` lists them; `deny` refuses more
// (and wins over `allow`).
struct ServerEgressConfig {
  std::vector<IpPrefix> allow;
  std::vector<IpPrefix> deny;
};

// [ip]: IP sessions (CMD 5) through the server's own TUN device
// (docs/server.md "IP sessions (CMD 5)").
struct ServerIpConfig {
  bool enabled = false;
  std::string tun_name = "vlessip0";
  // The first host address is the server's own on the TUN; the others are
  // leased, one per session and family. pool4 /8../30, pool6 /64../120.
  IpPrefix pool4 = *IpPrefix::parse("198.18.240.0/24");
  std::optional<IpPrefix> pool6;
  bool masquerade = true;  // forwarding sysctls + an nftables table of ours
  uint32_t mtu = 1500;
  uint32_t max_sessions = 1024;
  uint32_t max_sessions_per_user = 8;
  uint64_t lease_grace_ms = 30'000;  // an address rests this long before reuse
  uint32_t queue_packets = 256;      // per session toward the client
  // What masquerade installed, for the clean-up after a crash; empty:
  // /run/vless-server/<tun_name>.ip
  std::string state_file;
};

// [ws]: every connection is a WebSocket upgrade first (docs/server.md
// "WebSocket"); a request for another path or host, or one that is not an
// upgrade, goes to `fallback` with its bytes as they came.
struct ServerWsConfig {
  std::string path;  // the exact path the upgrade asks for (before any '?')
  std::string host;  // empty: any Host
};

// [metrics]: the Prometheus endpoint (docs/server.md "Metrics"). Off unless
// `listen` is set; the counters name users, so it belongs on loopback or
// behind a firewall.
struct ServerMetricsConfig {
  std::optional<HostPort> listen;  // IP literal and port
};

struct ServerConfig {
  LogLevel log_level = LogLevel::kInfo;
  std::vector<HostPort> listen;  // IP literals only, at least one
  bool accept_v0 = true;         // from `versions`
  bool accept_v1 = true;
  std::optional<HostPort> fallback;  // may be a DNS name
  std::optional<ServerWsConfig> ws;   // [ws]; unset: VLESS straight on the connection
  uint64_t handshake_timeout_ms = 10'000;
  uint64_t idle_timeout_ms = 300'000;
  // A reused connection (TLV 0x07) waiting for its next request is closed
  // after this long (docs/protocol.md 3.8; the contract's default).
  uint64_t reuse_idle_timeout_ms = 60'000;
  // Once both directions have ended, what is still queued for either side
  // must make progress at least this often, or the connection is closed.
  uint64_t drain_timeout_ms = 30'000;
  uint32_t max_connections = 10'000;
  // Admission before cost (docs/server.md "Admission"): per source address
  // (IPv4 /32, IPv6 /64), connections and those still in their TLS
  // handshake or request header; per user, authenticated connections.
  uint32_t max_connections_per_source = 1024;
  uint32_t max_handshakes_per_source = 128;
  uint32_t max_connections_per_user = 4096;
  // Name resolution (docs/server.md "Name resolution"): lookups of one user
  // running at once, and how long a caller waits for one.
  uint32_t max_lookups_per_user = 4;
  uint64_t resolve_timeout_ms = 5'000;
  // Bytes queued in all sockets' write queues together before every
  // stream's watermarks shrink (docs/server.md "Buffer budget").
  uint64_t buffer_budget_bytes = 256ULL << 20;
  std::optional<ServerTlsConfig> tls;  // absent: plain TCP
  std::vector<ServerUser> users;       // at least one, UUIDs unique
  ServerUdpConfig udp;
  ServerMuxConfig mux;
  ServerEgressConfig egress;
  ServerIpConfig ip;
  ServerMetricsConfig metrics;
  ControlConfig control;  // [control]; the --control flag overrides socket
  // The file as loadServerConfig read it (a reload compares against it).
  std::string source_text;
};

// Reads and validates a file. Errors (Errc::kConfig) read like
//   "/etc/vless/server.toml:7:8: users[1].uuid: expected a UUID like ..."
Result<ServerConfig> loadServerConfig(const std::string& path);

// The same from a string; `source` names it in errors and `base_dir`
// anchors relative cert/key paths ("" = leave them as written).
Result<ServerConfig> parseServerConfig(std::string_view text, const std::string& source,
                                       const std::string& base_dir);

}  // namespace vt::config
