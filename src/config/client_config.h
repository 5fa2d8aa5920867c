// ClientConfig: what vless-tun reads from its TOML file ([tun], [server],
// [route], [limits], [udp], [dns], [pool], [mux], [ip]). Plain structs; the loader validates everything.
// Reference: docs/client.md.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config_util.h"
#include "core/error.h"
#include "core/log.h"

namespace vt::route {
class GeoIp;
class RuleSet;
}

namespace vt::config {

// "198.18.2.1/30" or "2001:db8:2::1/64".
struct Cidr {
  std::string address;  // IP literal, no brackets
  uint8_t prefix = 0;
  bool v6 = false;
  std::string toString() const { return address + "/" + std::to_string(prefix); }
};
// Parses an IPv4 (prefix 0..32) or IPv6 (0..128) CIDR; nullopt otherwise.
std::optional<Cidr> parseCidr(std::string_view text);

// The TUN's addresses when auto_route is on and none are configured.
inline constexpr const char* kDefaultTunIpv4 = "172.19.0.1/30";
inline constexpr const char* kDefaultTunIpv6 = "fdfe:dcba:9876::1/126";

struct ClientTunConfig {
  std::string name = "vt0";
  // 576..65535. The TUN's MTU only sizes the packets between the apps and
  // our own stack (nothing leaves the host at this size), so a large one
  // means fewer packets, syscalls and lwIP segments per byte: 8500 measured
  // about twice the throughput of 1500 (docs/performance.md).
  uint32_t mtu = 8500;
  std::optional<Cidr> ipv4;
  std::optional<Cidr> ipv6;
  std::optional<int> fd;  // adopt this open TUN fd instead of creating one
  // Worker threads, each with its own queue of a multi-queue TUN, its own
  // NetStack and its own server connections (docs/client.md "Workers").
  // 0: one per core, at most kMaxAutoWorkers. Only a TUN vless-tun creates
  // can have several queues; an adopted fd or packet callbacks run one.
  uint32_t workers = 0;
  // TCP segmentation offload from the kernel through the TUN (IFF_VNET_HDR,
  // docs/netstack.md "TUN offload"): the app's TCP hands over segments of
  // up to 64 KiB instead of one per MTU. Only for a TUN vless-tun creates
  // on Linux, and not with ip.passthrough (whose TCP leaves as raw packets).
  bool offload = true;
};

inline constexpr uint32_t kMaxWorkers = 64;
inline constexpr uint32_t kMaxAutoWorkers = 4;
// tun.workers as run: `configured`, or for 0 the cores this process may
// use (sched_getaffinity), capped at kMaxAutoWorkers.
uint32_t effectiveWorkers(uint32_t configured);

enum class ConnectMode {
  kWait,       // SYN-ACK only once the server reports the dial made (v1 want_ip)
  kImmediate,  // SYN-ACK at once
};
const char* connectModeName(ConnectMode m) noexcept;

// [server.ws]: the VLESS stream inside WebSocket (RFC 6455) binary frames,
// over TLS or plain TCP (docs/client.md "WebSocket").
struct ClientWsConfig {
  std::string path = "/";  // origin-form, with any query: "/ray?ed=2048"
  std::string host;        // the Host header; empty: server.sni, else the address's host
  std::vector<std::pair<std::string, std::string>> headers;  // extra, e.g. User-Agent
  size_t early_data = 0;   // 0..2048: first bytes in Sec-WebSocket-Protocol (v2ray/Xray "ed")
  // Ending our direction sends a close frame at once (a real half-close,
  // vless-server only); false: nothing until the server closes, as v2ray's
  // and Xray's clients (a close would end both directions there).
  bool half_close = false;
};

struct ClientServerConfig {
  HostPort address;  // may be a DNS name
  UuidBytes uuid{};
  uint8_t version = 1;  // 0 or 1
  bool tls = true;
  std::string sni;  // default: the host of `address`
  std::vector<std::string> alpn;
  std::string ca_file;  // empty: the system CA store
  bool insecure = false;
  // Offer a stored session ticket on each new connection (TLS resumption:
  // no certificate exchange; docs/client.md).
  bool session_tickets = true;
  ConnectMode connect_mode = ConnectMode::kWait;  // kImmediate for v0
  // SO_MARK; 0 = none. With auto_route it is the route fwmark whenever
  // unset here (the two must agree, or the tunnel would loop).
  uint32_t fwmark = 0;
  std::optional<ClientWsConfig> ws;  // [server.ws]; unset: the VLESS stream is the connection
};

// [route.gateway]: this host is a router and carries whole LANs through the
// TUN (docs/routing.md "Gateway mode"). Needs route.auto_route and keep_lan.
struct ClientGatewayConfig {
  std::vector<std::string> interfaces;  // the LAN interfaces; at least one
  bool ipv6 = true;  // forward the LANs' IPv6 too (net.ipv6.conf.all.forwarding)
};

// [[route.rules]] and the defaults (config/client_rules_config.h): which
// flows go to the server, out of the TUN directly, or nowhere.
struct ClientRulesConfig {
  // Null when there are no rules and the default is proxy: every flow goes
  // to the server, as without routing, and no lookup is paid.
  std::shared_ptr<const route::RuleSet> set;
  size_t count = 0;                      // rules, for the start-up line
  std::string default_action = "proxy";  // as written (logs)
  // route.geoip_database, opened (mapped) at load time when a rule lists
  // geoip; null otherwise. Read-only and thread-safe once open.
  std::shared_ptr<const route::GeoIp> geoip;
  std::string geoip_path;  // resolved against the config's directory
  // route.dial_by_name: a proxied TCP flow whose name is known (DNS answer
  // or sniffed) asks the server for the name, not the address; with v1
  // the server's want_ip answer is remembered for want_ip_ttl and geoip
  // rules judge the next flows to that name by it.
  bool dial_by_name = false;
  uint64_t want_ip_ttl_ms = 600'000;
  // route.direct_interface: direct sockets are also bound to this
  // interface (SO_BINDTODEVICE), e.g. when no fwmark rule keeps them out
  // of the TUN. Empty: not bound.
  std::string direct_interface;
};

// [route]: Linux policy routing into the TUN (platform/linux/route_manager.h).
// Unset lists keep the route manager's defaults.
struct ClientRouteConfig {
  bool auto_route = false;
  uint32_t fwmark = 0x1f0;  // tunnel sockets carry it and skip the TUN
  uint32_t table = 2022;
  uint32_t priority = 9000;  // uses priority .. priority + 2
  std::optional<std::vector<Cidr>> capture;  // default: 0.0.0.0/0 and ::/0
  std::optional<std::vector<Cidr>> bypass;   // default: private ranges
  bool keep_lan = true;
  // false: IPv6 that enters the TUN is refused there (RST), never sent to
  // the server and never routed around the tunnel.
  bool carry_ipv6 = true;
  std::string state_file;  // empty: /run/vless-tun/<tun name>.routes
  std::optional<ClientGatewayConfig> gateway;  // [route.gateway]; unset: off
  ClientRulesConfig rules;
};

// [pool]: connection reuse (TLV 0x07) for TCP flows to a v1 server
// (docs/client.md "Connection reuse").
struct ClientPoolConfig {
  bool reuse = true;                 // v1 only; v0 servers never see it
  uint64_t idle_timeout_ms = 30'000;  // an idle connection is closed after
  uint32_t max_idle = 32;             // idle connections kept at most
};

// [mux]: many flows over a few VLESS v1 Mux connections (CMD 3, smux +
// SimpleSocks; docs/client.md "Mux"). v1 only; v0 servers never see it.
struct ClientMuxConfig {
  bool enabled = true;
  uint8_t version = 2;                 // smux VER; 1 for verysimple/trojan-go servers
  uint32_t max_streams = 128;          // per connection; more open a new connection
  uint64_t idle_timeout_ms = 30'000;   // a connection without streams closes after
  uint64_t keepalive_ms = 10'000;      // NOP when nothing was sent this long
  uint64_t dead_ms = 30'000;           // nothing received this long: connection dead
  uint32_t stream_window = 256 * 1024;  // VER 2 receive window per stream
  uint32_t max_stream_window = 1 << 20;  // VER 2: what a stream's window may grow to
  // VER 2 receive window of a UDP stream (its datagrams never wait for a
  // reader; MuxStream::setReceiveWindow).
  uint32_t datagram_window = 1 << 20;
  // Connections kept ready with room (below 3/4 of max_streams), dialled in
  // the background, so that a flow never waits for a TCP+TLS handshake.
  uint32_t warm = 1;
};

struct ClientLimits {
  uint32_t max_flows = 4096;
  uint64_t idle_timeout_ms = 300'000;
  uint64_t drain_timeout_ms = 30'000;
  uint64_t connect_timeout_ms = 10'000;
  // Bytes queued toward the server in all sockets together before every
  // stream's watermarks shrink (docs/client.md "Buffer budget").
  uint64_t buffer_budget_bytes = 32ULL << 20;
};

// [udp]: how app UDP is carried (docs/client.md "UDP").
enum class UdpMode {
  kSeparated,  // v1 udp_multi + udp_session: one channel per remote (full cone)
  kClassic,    // v1: one connection per app endpoint, per-packet addresses
  kV0,         // v0: one connection per (app endpoint, destination)
  kMux,        // v1 Mux: one SimpleSocks UDP stream per app endpoint (full cone)
};
const char* udpModeName(UdpMode m) noexcept;

struct ClientUdpConfig {
  UdpMode mode = UdpMode::kMux;  // kSeparated without mux, kV0 for server.version 0
  // A session (app endpoint) with no datagram either way for this long is
  // closed once it is assured: the app sent again after a reply came.
  uint64_t idle_timeout_ms = 300'000;
  // Before that (one exchange or none: a DNS lookup, an NTP query, a probe)
  // only this long, like kernel NATs for unreplied/unassured flows. <=
  // idle_timeout_ms; the loader makes the default follow a shorter
  // idle_timeout.
  uint64_t new_session_timeout_ms = 30'000;
  uint32_t max_sessions = 1024;
  uint32_t max_channels = 64;
  uint32_t queue_datagrams = 64;
};

// [dns]: DNS hijack and answer cache (docs/client.md "DNS").
struct ClientDnsConfig {
  bool hijack = false;  // default: route.auto_route
  std::optional<HostPort> resolver;  // an IP literal with a port; required with hijack
  // Queries for names a `direct` routing rule matches go here, outside the
  // tunnel (docs/client.md "Routing rules"); unset: every query goes to
  // `resolver` through the tunnel.
  std::optional<HostPort> direct_resolver;
  uint32_t cache_size = 512;         // 0 = no cache
};

// [ip]: raw IP packets through one CmdIP session (VLESS v1 CMD 5;
// docs/client.md "IP passthrough (CmdIP)").
struct ClientIpConfig {
  // Packets of protocols other than TCP and UDP (ICMP, ICMPv6, GRE, ...) to
  // addresses other than the TUN's own go through CmdIP. Default: true with
  // server.version = 1; always false with version 0 (no CMD 5 there).
  bool enabled = true;
  // Every packet to these goes through CmdIP whatever its protocol (TCP and
  // UDP included), not through the netstack. Needs enabled.
  std::vector<Cidr> passthrough;
  // Held while the session connects (or waits to reconnect); beyond
  // either bound packets are dropped and counted.
  uint32_t queue_packets = 256;
  uint64_t queue_bytes = 256 * 1024;
};

struct ClientConfig {
  LogLevel log_level = LogLevel::kInfo;
  ClientTunConfig tun;
  ClientServerConfig server;
  ClientRouteConfig route;
  ClientLimits limits;
  ClientUdpConfig udp;
  ClientDnsConfig dns;
  ClientPoolConfig pool;
  ClientMuxConfig mux;
  ClientIpConfig ip;
  ControlConfig control;  // [control]; the --control flag overrides socket
  // The file as loadClientConfig read it (a reload compares against it).
  std::string source_text;
};

// Reads and validates a file; relative paths (ca) resolve against the
// file's directory. Errors (Errc::kConfig) read like
//   "/etc/vless-tun.toml:9:8: server.uuid: expected a UUID like ..."
Result<ClientConfig> loadClientConfig(const std::string& path);
// The same from a string; `source` names it in errors, `base_dir` anchors
// relative paths ("" = leave them as written).
Result<ClientConfig> parseClientConfig(std::string_view text, const std::string& source,
                                       const std::string& base_dir);

}  // namespace vt::config
