#include "config/client_config.h"
#include "config/control_config.h"

#include <arpa/inet.h>

#include <algorithm>
#include <thread>
#ifdef __linux__
#include <sched.h>
#endif

#include "config/client_rules_config.h"
#include "config/client_server_config.h"
#include "config/toml_reader.h"
#include "core/ip_prefix.h"

namespace vt::config {
namespace {

const toml::table* section(TomlReader& r, const toml::table& root, const char* name) {
  const toml::node* n = root.get(name);
  if (n == nullptr) return nullptr;
  const auto* t = n->as_table();
  if (t == nullptr) r.fail(*n, name, "expected a table [" + std::string(name) + "], got " +
                                        TomlReader::typeName(*n));
  return t;
}

void readTun(TomlReader& r, const toml::table& t, ClientTunConfig& tun) {
  r.checkKeys(t, "tun", {"name", "mtu", "ipv4", "ipv6", "fd", "workers", "offload"});
  if (r.failed()) return;
  if (const toml::node* n = t.get("name")) {
    const std::string* s = r.str(*n, "tun.name", "an interface name of 1..15 characters");
    if (s == nullptr) return;
    if (s->empty() || s->size() > 15 || s->find_first_of("/ \t%") != std::string::npos) {
      r.fail(*n, "tun.name",
             "expected an interface name of 1..15 characters without '/', '%' or spaces, got \"" +
                 *s + "\"");
      return;
    }
    tun.name = *s;
  }
  if (const toml::node* n = t.get("mtu")) {
    auto v = r.integer(*n, "tun.mtu", 576, 65535);
    if (!v) return;
    tun.mtu = static_cast<uint32_t>(*v);
  }
  for (const char* fam : {"ipv4", "ipv6"}) {
    const toml::node* n = t.get(fam);
    if (n == nullptr) continue;
    std::string key = std::string("tun.") + fam;
    bool v6 = fam[3] == '6';
    std::string expect = v6 ? "an IPv6 address/prefix like \"2001:db8:2::1/64\""
                            : "an IPv4 address/prefix like \"198.18.2.1/30\"";
    const std::string* s = r.str(*n, key, expect);
    if (s == nullptr) return;
    auto c = parseCidr(*s);
    if (!c || c->v6 != v6) {
      r.fail(*n, key, "expected " + expect + ", got \"" + *s + "\"");
      return;
    }
    (v6 ? tun.ipv6 : tun.ipv4) = *c;
  }
  if (const toml::node* n = t.get("fd")) {
    auto v = r.integer(*n, "tun.fd", 0, 1'000'000);
    if (!v) return;
    tun.fd = static_cast<int>(*v);
  }
  if (const toml::node* n = t.get("workers")) {
    auto v = r.integer(*n, "tun.workers", 0, kMaxWorkers);
    if (!v) return;
    tun.workers = static_cast<uint32_t>(*v);
  }
  if (const toml::node* n = t.get("offload")) {
    auto b = r.boolean(*n, "tun.offload");
    if (!b) return;
    tun.offload = *b;
  }
}


std::optional<std::vector<Cidr>> cidrList(TomlReader& r, const toml::node& n, const std::string& key) {
  const std::string expect = "CIDRs like \"0.0.0.0/0\" or \"2001:db8::/32\"";
  const auto* a = r.array(n, key, expect);
  if (a == nullptr) return std::nullopt;
  std::vector<Cidr> out;
  for (size_t i = 0; i < a->size(); ++i) {
    std::string k = key + "[" + std::to_string(i) + "]";
    const std::string* s = r.str(*a->get(i), k, "a CIDR like \"10.0.0.0/8\"");
    if (s == nullptr) return std::nullopt;
    auto c = parseCidr(*s);
    if (!c) {
      r.fail(*a->get(i), k, "expected a CIDR like \"10.0.0.0/8\" or \"fc00::/7\", got \"" + *s + "\"");
      return std::nullopt;
    }
    out.push_back(*c);
  }
  return out;
}

// [route.gateway]; after the [route] keys it depends on.
void readGateway(TomlReader& r, const toml::node& n, ClientRouteConfig& route) {
  const auto* g = n.as_table();
  if (g == nullptr) {
    r.fail(n, "route.gateway",
           "expected a table [route.gateway] with interfaces, got " + TomlReader::typeName(n));
    return;
  }
  r.checkKeys(*g, "route.gateway", {"interfaces", "ipv6"});
  if (r.failed()) return;
  if (!route.auto_route) {
    r.fail(n, "route.gateway",
           "expected route.auto_route = true (gateway mode adds the LANs to auto_route's rules)");
    return;
  }
  if (!route.keep_lan) {
    r.fail(n, "route.gateway",
           "expected route.keep_lan = true (without it traffic between the LANs and to the "
           "router's other networks would be tunnelled)");
    return;
  }
  ClientGatewayConfig gw;
  const std::string expect = "LAN interface names like [\"lan0\", \"br-lan\"]";
  const toml::node* in = g->get("interfaces");
  if (in == nullptr) {
    r.fail(&g->source(), "route.gateway.interfaces", "missing; expected an array of " + expect);
    return;
  }
  const auto* a = r.array(*in, "route.gateway.interfaces", expect);
  if (a == nullptr) return;
  if (a->empty()) {
    r.fail(*in, "route.gateway.interfaces", "expected at least one LAN interface name");
    return;
  }
  for (size_t i = 0; i < a->size(); ++i) {
    const std::string k = "route.gateway.interfaces[" + std::to_string(i) + "]";
    const std::string* s = r.str(*a->get(i), k, "an interface name");
    if (s == nullptr) return;
    if (s->empty() || s->size() > 15 || s->find_first_of("/ \t%") != std::string::npos ||
        *s == "lo") {
      r.fail(*a->get(i), k,
             "expected an interface name of 1..15 characters without '/', '%' or spaces (not "
             "lo), got \"" + *s + "\"");
      return;
    }
    if (std::find(gw.interfaces.begin(), gw.interfaces.end(), *s) != gw.interfaces.end()) {
      r.fail(*a->get(i), k, "expected each interface once, got \"" + *s + "\" again");
      return;
    }
    gw.interfaces.push_back(*s);
  }
  if (const toml::node* b = g->get("ipv6")) {
    auto v = r.boolean(*b, "route.gateway.ipv6");
    if (!v) return;
    gw.ipv6 = *v;
  }
  route.gateway = std::move(gw);
}

void readRoute(TomlReader& r, const toml::table& t, ClientRouteConfig& route,
               ClientServerConfig& server) {
  r.checkKeys(t, "route",
              {"auto_route", "fwmark", "table", "priority", "capture", "bypass", "keep_lan",
               "carry_ipv6", "state_file", "gateway", "rules", "default_action", "block_style",
               "geoip_database", "dial_by_name", "want_ip_ttl", "direct_interface"});
  if (r.failed()) return;
  struct B {
    const char* name;
    bool* out;
  };
  for (B b : {B{"auto_route", &route.auto_route}, B{"keep_lan", &route.keep_lan},
              B{"carry_ipv6", &route.carry_ipv6}}) {
    const toml::node* n = t.get(b.name);
    if (n == nullptr) continue;
    auto v = r.boolean(*n, std::string("route.") + b.name);
    if (!v) return;
    *b.out = *v;
  }
  bool mark_set = false;
  if (const toml::node* n = t.get("fwmark")) {
    auto v = r.integer(*n, "route.fwmark", 1, 0xffffffffLL);
    if (!v) return;
    route.fwmark = static_cast<uint32_t>(*v);
    mark_set = true;
    if (route.auto_route && server.fwmark != 0 && server.fwmark != route.fwmark) {
      r.fail(*n, "route.fwmark",
             "expected the same mark as server.fwmark (" + std::to_string(server.fwmark) +
                 "): the tunnel's sockets must carry the mark the rules skip");
      return;
    }
  }
  if (const toml::node* n = t.get("table")) {
    auto v = r.integer(*n, "route.table", 1, 0xffffffffLL);
    if (!v) return;
    if (*v == 253 || *v == 254 || *v == 255) {
      r.fail(*n, "route.table",
             "expected a table of our own, not 253/254/255 (default/main/local)");
      return;
    }
    route.table = static_cast<uint32_t>(*v);
  }
  if (const toml::node* n = t.get("priority")) {
    auto v = r.integer(*n, "route.priority", 1, 32000);
    if (!v) return;
    route.priority = static_cast<uint32_t>(*v);
  }
  if (const toml::node* n = t.get("capture")) {
    route.capture = cidrList(r, *n, "route.capture");
    if (r.failed()) return;
    if (route.capture->empty()) {
      r.fail(*n, "route.capture", "expected at least one CIDR to send into the TUN");
      return;
    }
  }
  if (const toml::node* n = t.get("bypass")) {
    route.bypass = cidrList(r, *n, "route.bypass");
    if (r.failed()) return;
  }
  if (const toml::node* n = t.get("state_file")) {
    const std::string* v = r.str(*n, "route.state_file", "a file path");
    if (v == nullptr) return;
    if (v->empty()) {
      r.fail(*n, "route.state_file", "expected a file path, got an empty string");
      return;
    }
    route.state_file = *v;
  }
  if (const toml::node* n = t.get("gateway")) {
    readGateway(r, *n, route);
    if (r.failed()) return;
  }

  if (route.auto_route) {
    if (!mark_set && server.fwmark != 0) route.fwmark = server.fwmark;
    server.fwmark = route.fwmark;  // every outbound socket skips the TUN
  }
}

void readLimits(TomlReader& r, const toml::table& t, ClientLimits& l) {
  r.checkKeys(t, "limits",
              {"max_flows", "idle_timeout", "drain_timeout", "connect_timeout", "buffer_budget"});
  if (r.failed()) return;
  if (const toml::node* n = t.get("buffer_budget")) {
    const char* expect = "a size such as \"32MiB\" or \"8MB\" (64 KiB .. 1 TiB)";
    const std::string* s = r.str(*n, "limits.buffer_budget", expect);
    if (s == nullptr) return;
    auto v = parseSizeBytes(*s);
    if (!v) {
      r.fail(*n, "limits.buffer_budget", std::string("expected ") + expect + ", got \"" + *s + "\"");
      return;
    }
    l.buffer_budget_bytes = *v;
  }
  if (const toml::node* n = t.get("max_flows")) {
    auto v = r.integer(*n, "limits.max_flows", 1, 1'000'000);
    if (!v) return;
    l.max_flows = static_cast<uint32_t>(*v);
  }
  struct D {
    const char* name;
    uint64_t* out;
  };
  for (D d : {D{"idle_timeout", &l.idle_timeout_ms}, D{"drain_timeout", &l.drain_timeout_ms},
              D{"connect_timeout", &l.connect_timeout_ms}}) {
    const toml::node* n = t.get(d.name);
    if (n == nullptr) continue;
    auto ms = r.duration(*n, std::string("limits.") + d.name);
    if (!ms) return;
    *d.out = *ms;
  }
}

void readUdp(TomlReader& r, const toml::table* t, ClientUdpConfig& u, uint8_t version,
             bool* explicitMode) {
  u.mode = version == 0 ? UdpMode::kV0 : UdpMode::kMux;  // readMux may change kMux
  if (t == nullptr) return;
  r.checkKeys(*t, "udp",
              {"mode", "idle_timeout", "new_session_timeout", "max_sessions", "max_channels",
               "queue_datagrams"});
  if (r.failed()) return;
  if (const toml::node* n = t->get("mode")) {
    const std::string expect = "\"mux\", \"separated\", \"classic\" or \"v0\"";
    const std::string* m = r.str(*n, "udp.mode", expect);
    if (m == nullptr) return;
    *explicitMode = true;
    if (*m == "mux") {
      if (version == 0) {
        r.fail(*n, "udp.mode", "expected \"v0\" with server.version = 0 (\"mux\" needs version = 1)");
        return;
      }
      u.mode = UdpMode::kMux;
    } else if (*m == "separated" || *m == "classic") {
      if (version == 0) {
        r.fail(*n, "udp.mode",
               "expected \"v0\" with server.version = 0 (\"" + *m + "\" needs version = 1)");
        return;
      }
      u.mode = *m == "separated" ? UdpMode::kSeparated : UdpMode::kClassic;
    } else if (*m == "v0") {
      if (version != 0) {
        r.fail(*n, "udp.mode",
               "expected \"mux\", \"separated\" or \"classic\" with server.version = 1 (\"v0\" "
               "needs version = 0)");
        return;
      }
      u.mode = UdpMode::kV0;
    } else {
      r.fail(*n, "udp.mode", "expected " + expect + ", got \"" + *m + "\"");
      return;
    }
  }
  if (const toml::node* n = t->get("idle_timeout")) {
    auto ms = r.duration(*n, "udp.idle_timeout");
    if (!ms) return;
    u.idle_timeout_ms = *ms;
  }
  if (const toml::node* n = t->get("new_session_timeout")) {
    auto ms = r.duration(*n, "udp.new_session_timeout");
    if (!ms) return;
    if (*ms > u.idle_timeout_ms) {
      r.fail(*n, "udp.new_session_timeout",
             "expected a duration no longer than udp.idle_timeout (" +
                 formatDurationMs(u.idle_timeout_ms) + "), got " + formatDurationMs(*ms));
      return;
    }
    u.new_session_timeout_ms = *ms;
  } else {
    // Unset: 30 s, or a shorter idle_timeout.
    u.new_session_timeout_ms = std::min(u.new_session_timeout_ms, u.idle_timeout_ms);
  }
  struct I {
    const char* name;
    uint32_t* out;
    int64_t lo, hi;
  };
  for (I i : {I{"max_sessions", &u.max_sessions, 1, 1'000'000},
              I{"max_channels", &u.max_channels, 1, 4096},
              I{"queue_datagrams", &u.queue_datagrams, 1, 65536}}) {
    const toml::node* n = t->get(i.name);
    if (n == nullptr) continue;
    auto v = r.integer(*n, std::string("udp.") + i.name, i.lo, i.hi);
    if (!v) return;
    *i.out = static_cast<uint32_t>(*v);
  }
}

void readDns(TomlReader& r, const toml::table* t, ClientDnsConfig& d, bool auto_route) {
  // With auto_route every DNS query enters the TUN anyway; hijack is then on
  // by default, as soon as a resolver is named (an explicit hijack = true
  // without one is an error).
  d.hijack = false;
  if (t == nullptr) return;
  r.checkKeys(*t, "dns", {"hijack", "resolver", "direct_resolver", "cache_size"});
  if (r.failed()) return;
  const std::string expect =
      "an IP address and port like \"198.18.1.53:53\" or \"[2001:db8::53]:53\"";
  if (const toml::node* n = t->get("resolver")) {
    const std::string* s = r.str(*n, "dns.resolver", expect);
    if (s == nullptr) return;
    auto hp = parseHostPort(*s, false);
    if (!hp || !hp->is_ip || hp->port == 0) {
      r.fail(*n, "dns.resolver", "expected " + expect + ", got \"" + *s + "\"");
      return;
    }
    d.resolver = *hp;
  }
  if (const toml::node* n = t->get("direct_resolver")) {
    const std::string* s = r.str(*n, "dns.direct_resolver", expect);
    if (s == nullptr) return;
    auto hp = parseHostPort(*s, false);
    if (!hp || !hp->is_ip || hp->port == 0) {
      r.fail(*n, "dns.direct_resolver", "expected " + expect + ", got \"" + *s + "\"");
      return;
    }
    if (!d.resolver) {
      r.fail(*n, "dns.direct_resolver", "needs dns.resolver (the one through the tunnel)");
      return;
    }
    d.direct_resolver = *hp;
  }
  d.hijack = auto_route && d.resolver.has_value();
  if (const toml::node* n = t->get("hijack")) {
    auto b = r.boolean(*n, "dns.hijack");
    if (!b) return;
    d.hijack = *b;
    if (d.hijack && !d.resolver) {
      r.fail(*n, "dns.hijack", "is on, so dns.resolver is required: expected " + expect);
      return;
    }
  }
  if (const toml::node* n = t->get("cache_size")) {
    auto v = r.integer(*n, "dns.cache_size", 0, 1'000'000);
    if (!v) return;
    d.cache_size = static_cast<uint32_t>(*v);
  }
}

void readPool(TomlReader& r, const toml::table& t, ClientPoolConfig& p) {
  r.checkKeys(t, "pool", {"reuse", "idle_timeout", "max_idle"});
  if (r.failed()) return;
  if (const toml::node* n = t.get("reuse")) {
    auto b = r.boolean(*n, "pool.reuse");
    if (!b) return;
    p.reuse = *b;
  }
  if (const toml::node* n = t.get("idle_timeout")) {
    auto ms = r.duration(*n, "pool.idle_timeout");
    if (!ms) return;
    p.idle_timeout_ms = *ms;
  }
  if (const toml::node* n = t.get("max_idle")) {
    auto v = r.integer(*n, "pool.max_idle", 0, 4096);
    if (!v) return;
    p.max_idle = static_cast<uint32_t>(*v);
  }
}

void readMux(TomlReader& r, const toml::table& t, ClientMuxConfig& m) {
  r.checkKeys(t, "mux",
              {"enabled", "version", "max_streams", "idle_timeout", "keepalive", "dead_after",
               "stream_window", "max_stream_window", "datagram_window", "warm"});
  if (r.failed()) return;
  if (const toml::node* n = t.get("enabled")) {
    auto b = r.boolean(*n, "mux.enabled");
    if (!b) return;
    m.enabled = *b;
  }
  if (const toml::node* n = t.get("version")) {
    auto v = r.integer(*n, "mux.version", 1, 2);
    if (!v) return;
    m.version = static_cast<uint8_t>(*v);
  }
  if (const toml::node* n = t.get("max_streams")) {
    auto v = r.integer(*n, "mux.max_streams", 1, 65536);
    if (!v) return;
    m.max_streams = static_cast<uint32_t>(*v);
  }
  if (const toml::node* n = t.get("idle_timeout")) {
    auto ms = r.duration(*n, "mux.idle_timeout");
    if (!ms) return;
    m.idle_timeout_ms = *ms;
  }
  readMuxLiveness(r, t, m.keepalive_ms, m.dead_ms, m.stream_window, m.max_stream_window,
                  m.datagram_window);
  if (r.failed()) return;
  if (const toml::node* n = t.get("warm")) {
    auto v = r.integer(*n, "mux.warm", 0, 16);
    if (!v) return;
    m.warm = static_cast<uint32_t>(*v);
  }
}

// [ip] (docs/client.md "IP passthrough (CmdIP)"). CmdIP is VLESS v1 only:
// asking for it with version 0 is an error, not a silent no-op.
void readIp(TomlReader& r, const toml::table* t, ClientIpConfig& ip, uint8_t version) {
  ip.enabled = version == 1;
  if (t == nullptr) return;
  r.checkKeys(*t, "ip", {"enabled", "passthrough", "queue_packets", "queue_bytes"});
  if (r.failed()) return;
  if (const toml::node* n = t->get("enabled")) {
    auto b = r.boolean(*n, "ip.enabled");
    if (!b) return;
    if (*b && version == 0) {
      r.fail(*n, "ip.enabled",
             "expected false with server.version = 0 (CmdIP needs VLESS v1: set "
             "server.version = 1 or ip.enabled = false)");
      return;
    }
    ip.enabled = *b;
  }
  if (const toml::node* n = t->get("passthrough")) {
    auto list = cidrList(r, *n, "ip.passthrough");
    if (!list) return;
    const auto* a = n->as_array();
    for (size_t i = 0; i < list->size(); ++i) {
      // The netstack matches prefixes, not address/prefix pairs: host bits
      // set ("198.18.0.1/15") are almost always a typo, so refused.
      if (!IpPrefix::parse((*list)[i].toString())) {
        r.fail(*a->get(i), "ip.passthrough[" + std::to_string(i) + "]",
               "expected a network without host bits (like \"198.18.0.0/15\"), got \"" +
                   (*list)[i].toString() + "\"");
        return;
      }
    }
    if (!list->empty() && !ip.enabled) {
      r.fail(*n, "ip.passthrough",
             version == 0 ? "expected no CIDRs with server.version = 0 (CmdIP needs VLESS v1)"
                          : "expected no CIDRs with ip.enabled = false (passthrough goes through "
                            "CmdIP)");
      return;
    }
    ip.passthrough = std::move(*list);
  }
  if (const toml::node* n = t->get("queue_packets")) {
    auto v = r.integer(*n, "ip.queue_packets", 1, 65536);
    if (!v) return;
    ip.queue_packets = static_cast<uint32_t>(*v);
  }
  if (const toml::node* n = t->get("queue_bytes")) {
    const char* expect =
        "a size such as \"256KiB\" (64 KiB .. 1 GiB) or an integer of bytes in 65535..1073741824";
    std::optional<uint64_t> v;
    if (const auto* i = n->as_integer()) {
      if (i->get() >= 65535 && i->get() <= (int64_t{1} << 30)) v = static_cast<uint64_t>(i->get());
    } else if (const auto* s = n->as_string()) {
      v = parseSizeBytes(s->get());
      if (v && *v > (uint64_t{1} << 30)) v.reset();
    }
    if (!v) {
      r.fail(*n, "ip.queue_bytes", std::string("expected ") + expect);
      return;
    }
    ip.queue_bytes = *v;
  }
}

void readRoot(TomlReader& r, const toml::table& root, const std::string& base_dir,
              ClientConfig& cfg) {
  r.checkKeys(root, "",
              {"log_level", "tun", "server", "route", "limits", "udp", "dns", "pool", "mux", "ip",
               "control"});
  if (r.failed()) return;
  if (const toml::node* n = root.get("log_level")) {
    const std::string* s = r.str(*n, "log_level", "one of trace, debug, info, warn, error, off");
    if (s == nullptr) return;
    if (!parseLogLevel(*s, cfg.log_level)) {
      r.fail(*n, "log_level",
             "expected one of trace, debug, info, warn, error, off, got \"" + *s + "\"");
      return;
    }
  }
  if (const toml::node* n = root.get("control")) readControl(r, *n, base_dir, cfg.control);
  if (r.failed()) return;
  if (const toml::table* t = section(r, root, "tun")) readTun(r, *t, cfg.tun);
  if (r.failed()) return;
  const toml::table* st = section(r, root, "server");
  if (r.failed()) return;
  readServer(r, st, cfg.server);
  if (r.failed()) return;
  cfg.server.ca_file = resolvePath(base_dir, cfg.server.ca_file);
  if (const toml::table* t = section(r, root, "route")) {
    readRoute(r, *t, cfg.route, cfg.server);
    if (r.failed()) return;
    readRules(r, *t, base_dir, cfg.route.rules);
    if (r.failed()) return;
    if (cfg.route.rules.direct_interface == cfg.tun.name) {
      r.fail(&t->get("direct_interface")->source(), "route.direct_interface",
             "expected the real interface, not the TUN (tun.name = \"" + cfg.tun.name + "\")");
      return;
    }
    const auto& gw = cfg.route.gateway;
    if (gw && std::find(gw->interfaces.begin(), gw->interfaces.end(), cfg.tun.name) !=
                  gw->interfaces.end()) {
      const toml::node* at = t->at_path("gateway.interfaces").node();
      r.fail(at != nullptr ? &at->source() : nullptr, "route.gateway.interfaces",
             "expected the LAN interfaces, not the TUN (tun.name = \"" + cfg.tun.name + "\")");
      return;
    }
  }
  cfg.route.state_file = resolvePath(base_dir, cfg.route.state_file);
  if (r.failed()) return;
  if (const toml::table* t = section(r, root, "limits")) readLimits(r, *t, cfg.limits);
  if (r.failed()) return;
  const toml::table* ut = section(r, root, "udp");
  if (r.failed()) return;
  bool explicitUdpMode = false;
  readUdp(r, ut, cfg.udp, cfg.server.version, &explicitUdpMode);
  if (r.failed()) return;
  const toml::table* dt = section(r, root, "dns");
  if (r.failed()) return;
  readDns(r, dt, cfg.dns, cfg.route.auto_route);
  if (r.failed()) return;
  if (const toml::table* t = section(r, root, "pool")) readPool(r, *t, cfg.pool);
  if (r.failed()) return;
  if (const toml::table* t = section(r, root, "mux")) readMux(r, *t, cfg.mux);
  if (r.failed()) return;
  const toml::table* it = section(r, root, "ip");
  if (r.failed()) return;
  readIp(r, it, cfg.ip, cfg.server.version);
  if (r.failed()) return;
  if (cfg.server.version == 0) cfg.mux.enabled = false;  // v0 has no v1 Mux
  if (cfg.udp.mode == UdpMode::kMux && !cfg.mux.enabled) {
    if (explicitUdpMode) {
      const toml::node* at = ut != nullptr ? ut->get("mode") : nullptr;
      r.fail(at != nullptr ? &at->source() : nullptr, "udp.mode",
             "expected \"separated\" or \"classic\" with mux.enabled = false (\"mux\" needs "
             "the mux)");
      return;
    }
    cfg.udp.mode = UdpMode::kSeparated;
  }
}

}  // namespace

std::optional<Cidr> parseCidr(std::string_view text) {
  size_t slash = text.find('/');
  if (slash == std::string_view::npos || slash == 0) return std::nullopt;
  Cidr c;
  c.address = std::string(text.substr(0, slash));
  std::string_view p = text.substr(slash + 1);
  if (p.empty() || p.size() > 3) return std::nullopt;
  unsigned prefix = 0;
  for (char ch : p) {
    if (ch < '0' || ch > '9') return std::nullopt;
    prefix = prefix * 10 + static_cast<unsigned>(ch - '0');
  }
  uint8_t buf[16];
  if (inet_pton(AF_INET, c.address.c_str(), buf) == 1) {
    if (prefix > 32) return std::nullopt;
  } else if (inet_pton(AF_INET6, c.address.c_str(), buf) == 1) {
    if (prefix > 128) return std::nullopt;
    c.v6 = true;
  } else {
    return std::nullopt;
  }
  c.prefix = static_cast<uint8_t>(prefix);
  return c;
}

const char* udpModeName(UdpMode m) noexcept {
  switch (m) {
    case UdpMode::kSeparated: return "separated";
    case UdpMode::kClassic: return "classic";
    case UdpMode::kV0: return "v0";
    case UdpMode::kMux: return "mux";
  }
  return "?";
}

uint32_t effectiveWorkers(uint32_t configured) {
  if (configured != 0) return std::min(configured, kMaxWorkers);
  uint32_t cores = 0;
#ifdef __linux__
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) cores = static_cast<uint32_t>(CPU_COUNT(&set));
#endif
  if (cores == 0) cores = std::thread::hardware_concurrency();
  return std::clamp<uint32_t>(cores, 1, kMaxAutoWorkers);
}

const char* connectModeName(ConnectMode m) noexcept {
  return m == ConnectMode::kWait ? "wait" : "immediate";
}

Result<ClientConfig> parseClientConfig(std::string_view text, const std::string& source,
                                       const std::string& base_dir) {
  TomlReader r(source);
  toml::table root;
  if (!r.parse(text, root)) return r.takeError();
  ClientConfig cfg;
  readRoot(r, root, base_dir, cfg);
  if (r.failed()) return r.takeError();
  if (cfg.route.auto_route && !cfg.tun.fd) {
    // auto_route sends both families into the TUN with the TUN's own address
    // as the preferred source (else the kernel picks a real address and the
    // inbound-reply rules route the connection around the tunnel), so the
    // TUN needs an address of each family. Internal defaults when unset.
    if (!cfg.tun.ipv4) cfg.tun.ipv4 = parseCidr(kDefaultTunIpv4);
    if (!cfg.tun.ipv6) cfg.tun.ipv6 = parseCidr(kDefaultTunIpv6);
  }
  return cfg;
}

Result<ClientConfig> loadClientConfig(const std::string& path) {
  Result<std::string> text = readConfigFile(path);
  if (!text.ok()) return text.error();
  Result<ClientConfig> cfg = parseClientConfig(text.value(), path, configDir(path));
  if (cfg.ok()) cfg.value().source_text = std::move(text).value();
  return cfg;
}

}  // namespace vt::config
