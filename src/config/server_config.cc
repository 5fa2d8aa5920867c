#include "config/server_config.h"
#include "config/control_config.h"

#include <toml++/toml.h>

#include <algorithm>
#include <cstdio>
#include <tuple>

#include "config/toml_reader.h"

namespace vt::config {
namespace {

constexpr const char* kUuidExample = "a684455c-b14f-11ea-bf0d-42010aaa0003";

// The server config uses the same reader as the client config.
using Reader = TomlReader;

void readTls(Reader& r, const toml::node& node, const std::string& base_dir, ServerConfig& cfg) {
  const auto* t = node.as_table();
  if (t == nullptr) {
    r.fail(node, "tls", "expected a table with cert and key, got " + Reader::typeName(node));
    return;
  }
  r.checkKeys(*t, "tls", {"cert", "key", "alpn", "session_tickets", "ticket_lifetime"});
  ServerTlsConfig tls;
  for (const char* k : {"cert", "key"}) {
    const toml::node* n = t->get(k);
    std::string key = std::string("tls.") + k;
    if (n == nullptr) {
      r.fail(&t->source(), key, "missing; expected the path of a PEM file");
      return;
    }
    const std::string* s = r.str(*n, key, "the path of a PEM file");
    if (s == nullptr) return;
    if (s->empty()) {
      r.fail(*n, key, "expected the path of a PEM file, got an empty string");
      return;
    }
    (k[0] == 'c' ? tls.cert_file : tls.key_file) = resolvePath(base_dir, *s);
  }
  if (const toml::node* n = t->get("alpn")) {
    const auto* a = r.array(*n, "tls.alpn", "protocol names such as \"http/1.1\"");
    if (a == nullptr) return;
    for (size_t i = 0; i < a->size(); ++i) {
      std::string key = "tls.alpn[" + std::to_string(i) + "]";
      const std::string* s = r.str(*a->get(i), key, "a protocol name such as \"http/1.1\"");
      if (s == nullptr) return;
      if (s->empty() || s->size() > 255) {
        r.fail(*a->get(i), key, "expected a protocol name of 1..255 bytes");
        return;
      }
      tls.alpn.push_back(*s);
    }
  }
  if (const toml::node* n = t->get("session_tickets")) {
    auto b = r.boolean(*n, "tls.session_tickets");
    if (!b) return;
    tls.session_tickets = *b;
  }
  if (const toml::node* n = t->get("ticket_lifetime")) {
    auto ms = r.duration(*n, "tls.ticket_lifetime");
    if (!ms) return;
    // RFC 8446 4.6.1: at most 7 days; whole seconds on the wire.
    if (*ms < 1000 || *ms > 7ull * 24 * 3600 * 1000) {
      r.fail(*n, "tls.ticket_lifetime",
             "expected a duration from 1s to 7 days (RFC 8446 4.6.1), got " + formatDurationMs(*ms));
      return;
    }
    tls.ticket_lifetime_ms = *ms;
  }
  cfg.tls = std::move(tls);
}

void readUdp(Reader& r, const toml::node& node, ServerConfig& cfg) {
  const auto* t = node.as_table();
  if (t == nullptr) {
    r.fail(node, "udp", "expected a table, got " + Reader::typeName(node));
    return;
  }
  r.checkKeys(*t, "udp",
              {"session_timeout", "new_session_timeout", "channel_idle_timeout", "max_sessions",
               "max_sessions_per_user"});
  if (r.failed()) return;
  if (const toml::node* n = t->get("session_timeout")) {
    auto ms = r.duration(*n, "udp.session_timeout");
    if (!ms) return;
    cfg.udp.session_timeout_ms = *ms;
  }
  if (const toml::node* n = t->get("new_session_timeout")) {
    auto ms = r.duration(*n, "udp.new_session_timeout");
    if (!ms) return;
    if (*ms > cfg.udp.session_timeout_ms) {
      r.fail(*n, "udp.new_session_timeout",
             "expected a duration no longer than udp.session_timeout (" +
                 formatDurationMs(cfg.udp.session_timeout_ms) + "), got " + formatDurationMs(*ms));
      return;
    }
    cfg.udp.new_session_timeout_ms = *ms;
  } else {
    // Unset: 30 s, or a shorter session_timeout.
    cfg.udp.new_session_timeout_ms =
        std::min(cfg.udp.new_session_timeout_ms, cfg.udp.session_timeout_ms);
  }
  if (const toml::node* n = t->get("channel_idle_timeout")) {
    auto ms = r.duration(*n, "udp.channel_idle_timeout");
    if (!ms) return;
    cfg.udp.channel_idle_timeout_ms = *ms;
  }
  if (const toml::node* n = t->get("max_sessions")) {
    auto v = r.integer(*n, "udp.max_sessions", 1, 1'000'000);
    if (!v) return;
    cfg.udp.max_sessions = static_cast<uint32_t>(*v);
  }
  if (const toml::node* n = t->get("max_sessions_per_user")) {
    auto v = r.integer(*n, "udp.max_sessions_per_user", 1, 1'000'000);
    if (!v) return;
    cfg.udp.max_sessions_per_user = static_cast<uint32_t>(*v);
  }
}

void readWs(Reader& r, const toml::node& node, ServerConfig& cfg) {
  const auto* t = node.as_table();
  if (t == nullptr) {
    r.fail(node, "ws", "expected a table [ws] with path (and host), got " + Reader::typeName(node));
    return;
  }
  r.checkKeys(*t, "ws", {"path", "host"});
  if (r.failed()) return;
  ServerWsConfig ws;
  const toml::node* p = t->get("path");
  if (p == nullptr) {
    r.fail(&t->source(), "ws.path", "missing; expected the tunnel's path like \"/ray\"");
    return;
  }
  const std::string* path = r.str(*p, "ws.path", "a path like \"/ray\"");
  if (path == nullptr) return;
  std::string why = wsPathProblem(*path);
  if (why.empty() && path->find('?') != std::string::npos) why = "the query is not compared";
  if (!why.empty()) {
    r.fail(*p, "ws.path", "expected a path like \"/ray\" (" + why + "), got \"" + *path + "\"");
    return;
  }
  ws.path = *path;
  if (const toml::node* h = t->get("host")) {
    const std::string* host = r.str(*h, "ws.host", "a host name like \"cdn.example.com\"");
    if (host == nullptr) return;
    if (std::string w = wsHostProblem(*host); !w.empty()) {
      r.fail(*h, "ws.host", "expected a host name like \"cdn.example.com\" (" + w + ")");
      return;
    }
    ws.host = *host;
  }
  cfg.ws = std::move(ws);
}

void readMux(Reader& r, const toml::node& node, ServerConfig& cfg) {
  const auto* t = node.as_table();
  if (t == nullptr) {
    r.fail(node, "mux", "expected a table, got " + Reader::typeName(node));
    return;
  }
  r.checkKeys(*t, "mux",
              {"max_streams", "max_streams_per_user", "keepalive", "dead_after", "stream_window",
               "max_stream_window", "datagram_window"});
  if (r.failed()) return;
  if (const toml::node* n = t->get("max_streams")) {
    auto v = r.integer(*n, "mux.max_streams", 1, 1'000'000);
    if (!v) return;
    cfg.mux.max_streams = static_cast<uint32_t>(*v);
  }
  if (const toml::node* n = t->get("max_streams_per_user")) {
    auto v = r.integer(*n, "mux.max_streams_per_user", 1, 10'000'000);
    if (!v) return;
    cfg.mux.max_streams_per_user = static_cast<uint32_t>(*v);
  }
  readMuxLiveness(r, *t, cfg.mux.keepalive_ms, cfg.mux.dead_ms, cfg.mux.stream_window,
                  cfg.mux.max_stream_window, cfg.mux.datagram_window);
}

void readPrefixes(Reader& r, const toml::table& t, const char* key, std::vector<IpPrefix>& out) {
  const toml::node* n = t.get(key);
  if (n == nullptr) return;
  const std::string name = std::string("egress.") + key;
  const char* expect = "CIDR prefixes such as \"10.0.0.0/8\" or \"2001:db8::/32\"";
  const auto* a = r.array(*n, name, expect);
  if (a == nullptr) return;
  for (size_t i = 0; i < a->size(); ++i) {
    std::string k = name + "[" + std::to_string(i) + "]";
    const std::string* s = r.str(*a->get(i), k, "a CIDR prefix such as \"10.0.0.0/8\"");
    if (s == nullptr) return;
    auto p = IpPrefix::parse(*s);
    if (!p) {
      r.fail(*a->get(i), k,
             "expected an IP address or a CIDR prefix with no host bits set (\"10.0.0.0/8\", "
             "\"192.0.2.7\", \"2001:db8::/32\"), got \"" + *s + "\"");
      return;
    }
    out.push_back(*p);
  }
}

void readEgress(Reader& r, const toml::node& node, ServerConfig& cfg) {
  const auto* t = node.as_table();
  if (t == nullptr) {
    r.fail(node, "egress", "expected a table, got " + Reader::typeName(node));
    return;
  }
  r.checkKeys(*t, "egress", {"allow", "deny"});
  if (r.failed()) return;
  readPrefixes(r, *t, "allow", cfg.egress.allow);
  if (r.failed()) return;
  readPrefixes(r, *t, "deny", cfg.egress.deny);
}

void readIp(Reader& r, const toml::node& node, const std::string& base_dir, ServerConfig& cfg) {
  const auto* t = node.as_table();
  if (t == nullptr) {
    r.fail(node, "ip", "expected a table, got " + Reader::typeName(node));
    return;
  }
  r.checkKeys(*t, "ip",
              {"enabled", "tun_name", "pool4", "pool6", "masquerade", "mtu", "max_sessions",
               "max_sessions_per_user", "lease_grace", "queue_packets", "state_file"});
  if (r.failed()) return;
  ServerIpConfig& ip = cfg.ip;
  for (auto [key, field] : {std::pair{"enabled", &ip.enabled}, std::pair{"masquerade", &ip.masquerade}}) {
    if (const toml::node* n = t->get(key)) {
      auto b = r.boolean(*n, std::string("ip.") + key);
      if (!b) return;
      *field = *b;
    }
  }
  if (const toml::node* n = t->get("tun_name")) {
    const char* expect = "an interface name of 1..15 characters from [A-Za-z0-9_.-] such as \"vlessip0\"";
    const std::string* s = r.str(*n, "ip.tun_name", expect);
    if (s == nullptr) return;
    bool ok = !s->empty() && s->size() <= 15 && *s != "." && *s != "..";
    for (char c : *s) {
      ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-' || c == '.');
    }
    if (!ok) {
      r.fail(*n, "ip.tun_name", std::string("expected ") + expect + ", got \"" + *s + "\"");
      return;
    }
    ip.tun_name = *s;
  }
  struct PoolKey {
    const char* key;
    bool v6;
    int lo, hi;
    const char* example;
  };
  for (const PoolKey& pk : {PoolKey{"pool4", false, 8, 30, "\"198.18.240.0/24\""},
                            PoolKey{"pool6", true, 64, 120, "\"2001:db8:ffff::/64\""}}) {
    const toml::node* n = t->get(pk.key);
    if (n == nullptr) continue;
    const std::string key = std::string("ip.") + pk.key;
    const std::string expect = std::string("an IPv") + (pk.v6 ? "6" : "4") +
                               " CIDR prefix /" + std::to_string(pk.lo) + "../" +
                               std::to_string(pk.hi) + " with no host bits set, such as " +
                               pk.example;
    const std::string* s = r.str(*n, key, expect);
    if (s == nullptr) return;
    auto p = IpPrefix::parse(*s);
    if (!p || p->v6 != pk.v6 || p->bits < pk.lo || p->bits > pk.hi || s->find('/') == std::string::npos) {
      r.fail(*n, key, "expected " + expect + ", got \"" + *s + "\"");
      return;
    }
    if (pk.v6) {
      ip.pool6 = *p;
    } else {
      ip.pool4 = *p;
    }
  }
  if (const toml::node* n = t->get("mtu")) {
    auto v = r.integer(*n, "ip.mtu", 1280, 65535);
    if (!v) return;
    ip.mtu = static_cast<uint32_t>(*v);
  }
  for (auto [key, field, hi] :
       {std::tuple{"max_sessions", &ip.max_sessions, 1'000'000},
        std::tuple{"max_sessions_per_user", &ip.max_sessions_per_user, 1'000'000},
        std::tuple{"queue_packets", &ip.queue_packets, 65'536}}) {
    if (const toml::node* n = t->get(key)) {
      auto v = r.integer(*n, std::string("ip.") + key, 1, hi);
      if (!v) return;
      *field = static_cast<uint32_t>(*v);
    }
  }
  if (const toml::node* n = t->get("lease_grace")) {
    auto ms = r.duration(*n, "ip.lease_grace");
    if (!ms) return;
    ip.lease_grace_ms = *ms;
  }
  if (const toml::node* n = t->get("state_file")) {
    const std::string* s = r.str(*n, "ip.state_file", "a file path");
    if (s == nullptr) return;
    ip.state_file = resolvePath(base_dir, *s);
  }
}

void readMetrics(Reader& r, const toml::node& node, ServerConfig& cfg) {
  const char* expect = "an address like \"127.0.0.1:9105\" or \"[::1]:9105\"";
  const auto* t = node.as_table();
  if (t == nullptr) {
    r.fail(node, "metrics", "expected a table [metrics] with listen, got " + Reader::typeName(node));
    return;
  }
  r.checkKeys(*t, "metrics", {"listen"});
  if (r.failed()) return;
  const toml::node* n = t->get("listen");
  if (n == nullptr) {
    r.fail(&t->source(), "metrics.listen", std::string("missing; expected ") + expect);
    return;
  }
  const std::string* s = r.str(*n, "metrics.listen", expect);
  if (s == nullptr) return;
  auto hp = parseHostPort(*s, false);
  if (!hp) {
    r.fail(*n, "metrics.listen",
           std::string("expected ") + expect + " (IP literal and port 1..65535), got \"" + *s +
               "\"");
    return;
  }
  cfg.metrics.listen = *hp;
}

void readUsers(Reader& r, const toml::table& root, ServerConfig& cfg) {
  const toml::node* node = root.get("users");
  if (node == nullptr) {
    r.fail(nullptr, "users", "missing; expected at least one [[users]] table with name and uuid");
    return;
  }
  const auto* a = node->as_array();
  if (a == nullptr || a->empty()) {
    r.fail(*node, "users", "expected at least one [[users]] table with name and uuid");
    return;
  }
  for (size_t i = 0; i < a->size(); ++i) {
    std::string prefix = "users[" + std::to_string(i) + "]";
    const auto* t = a->get(i)->as_table();
    if (t == nullptr) {
      r.fail(*a->get(i), prefix, "expected a table with name and uuid");
      return;
    }
    r.checkKeys(*t, prefix, {"name", "uuid", "rate_limit"});
    ServerUser user;
    const toml::node* un = t->get("uuid");
    if (un == nullptr) {
      r.fail(&t->source(), prefix + ".uuid",
             std::string("missing; expected a UUID like ") + kUuidExample);
      return;
    }
    const std::string* us =
        r.str(*un, prefix + ".uuid", std::string("a UUID like ") + kUuidExample);
    if (us == nullptr) return;
    auto uuid = parseUuidText(*us);
    if (!uuid) {
      // The value is a user's secret: never echoed.
      r.fail(*un, prefix + ".uuid",
             std::string("expected a UUID like ") + kUuidExample + ", got " +
                 std::to_string(us->size()) + " characters that are not one (not shown: a secret)");
      return;
    }
    user.uuid = *uuid;
    for (size_t j = 0; j < cfg.users.size(); ++j) {
      if (cfg.users[j].uuid == user.uuid) {
        r.fail(*un, prefix + ".uuid",
               "expected a unique UUID; users[" + std::to_string(j) + "] has the same one");
        return;
      }
    }
    if (const toml::node* nn = t->get("name")) {
      const std::string* s = r.str(*nn, prefix + ".name", "a user name (for logs)");
      if (s == nullptr) return;
      user.name = *s;
    }
    if (const toml::node* rn = t->get("rate_limit")) {
      const char* expect = "a bandwidth such as \"8MB/s\", \"512KiB/s\" or \"100Mbit/s\" "
                           "(1 KB/s .. 100 GB/s)";
      const std::string* s = r.str(*rn, prefix + ".rate_limit", expect);
      if (s == nullptr) return;
      auto rate = parseRateBytesPerS(*s);
      if (!rate) {
        r.fail(*rn, prefix + ".rate_limit", std::string("expected ") + expect + ", got \"" + *s + "\"");
        return;
      }
      user.rate_limit_bytes_per_s = *rate;
    }
    // Logs need some name; the index is stable and does not leak the UUID.
    if (user.name.empty()) user.name = "user" + std::to_string(i);
    cfg.users.push_back(std::move(user));
  }
}

void readRoot(Reader& r, const toml::table& root, const std::string& base_dir, ServerConfig& cfg) {
  r.checkKeys(root, "",
              {"log_level", "listen", "versions", "fallback", "handshake_timeout", "idle_timeout",
               "reuse_idle_timeout", "drain_timeout", "max_connections",
               "max_connections_per_source", "max_handshakes_per_source", "max_connections_per_user",
               "max_lookups_per_user", "resolve_timeout", "buffer_budget", "tls", "users", "udp", "mux", "egress", "ip", "ws",
               "metrics", "control"});
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

  const std::string listen_expect = "an address like \"0.0.0.0:443\" or \"[::]:443\"";
  if (const toml::node* n = root.get("listen")) {
    // A single string is accepted too: listen = "0.0.0.0:443".
    std::vector<const toml::node*> items;
    std::vector<std::string> keys;
    if (n->is_string()) {
      items.push_back(n);
      keys.push_back("listen");
    } else if (const auto* a = r.array(*n, "listen", listen_expect.substr(3))) {
      for (size_t i = 0; i < a->size(); ++i) {
        items.push_back(a->get(i));
        keys.push_back("listen[" + std::to_string(i) + "]");
      }
    } else {
      return;
    }
    if (items.empty()) {
      r.fail(*n, "listen", "expected at least one " + listen_expect);
      return;
    }
    for (size_t i = 0; i < items.size(); ++i) {
      const std::string* s = r.str(*items[i], keys[i], listen_expect);
      if (s == nullptr) return;
      auto hp = parseHostPort(*s, false);
      if (!hp) {
        r.fail(*items[i], keys[i],
               "expected " + listen_expect + " (IP literal and port 1..65535), got \"" + *s + "\"");
        return;
      }
      cfg.listen.push_back(*hp);
    }
  } else {
    r.fail(nullptr, "listen", "missing; expected " + listen_expect);
    return;
  }

  if (const toml::node* n = root.get("versions")) {
    const std::string expect = "a non-empty array of VLESS versions from {0, 1}";
    const auto* a = r.array(*n, "versions", "versions from {0, 1}");
    if (a == nullptr) return;
    if (a->empty()) {
      r.fail(*n, "versions", "expected " + expect);
      return;
    }
    cfg.accept_v0 = cfg.accept_v1 = false;
    for (size_t i = 0; i < a->size(); ++i) {
      auto v = r.integer(*a->get(i), "versions[" + std::to_string(i) + "]", 0, 1);
      if (!v) return;
      (*v == 0 ? cfg.accept_v0 : cfg.accept_v1) = true;
    }
  }

  if (const toml::node* n = root.get("fallback")) {
    const std::string expect = "an address like \"127.0.0.1:8080\" or \"web.internal:80\"";
    const std::string* s = r.str(*n, "fallback", expect);
    if (s == nullptr) return;
    auto hp = parseHostPort(*s, true);
    if (!hp) {
      r.fail(*n, "fallback", "expected " + expect + ", got \"" + *s + "\"");
      return;
    }
    cfg.fallback = *hp;
  }

  if (const toml::node* n = root.get("handshake_timeout")) {
    auto ms = r.duration(*n, "handshake_timeout");
    if (!ms) return;
    cfg.handshake_timeout_ms = *ms;
  }
  if (const toml::node* n = root.get("idle_timeout")) {
    auto ms = r.duration(*n, "idle_timeout");
    if (!ms) return;
    cfg.idle_timeout_ms = *ms;
  }
  if (const toml::node* n = root.get("buffer_budget")) {
    const char* expect = "a size such as \"256MiB\" or \"1GB\" (64 KiB .. 1 TiB)";
    const std::string* s = r.str(*n, "buffer_budget", expect);
    if (s == nullptr) return;
    auto v = parseSizeBytes(*s);
    if (!v) {
      r.fail(*n, "buffer_budget", std::string("expected ") + expect + ", got \"" + *s + "\"");
      return;
    }
    cfg.buffer_budget_bytes = *v;
  }
  if (const toml::node* n = root.get("resolve_timeout")) {
    auto ms = r.duration(*n, "resolve_timeout");
    if (!ms) return;
    cfg.resolve_timeout_ms = *ms;
  }
  if (const toml::node* n = root.get("drain_timeout")) {
    auto ms = r.duration(*n, "drain_timeout");
    if (!ms) return;
    cfg.drain_timeout_ms = *ms;
  }
  if (const toml::node* n = root.get("reuse_idle_timeout")) {
    auto ms = r.duration(*n, "reuse_idle_timeout");
    if (!ms) return;
    cfg.reuse_idle_timeout_ms = *ms;
  }
  if (const toml::node* n = root.get("max_connections")) {
    auto v = r.integer(*n, "max_connections", 1, 10'000'000);
    if (!v) return;
    cfg.max_connections = static_cast<uint32_t>(*v);
  }
  for (auto [key, field] : {std::pair{"max_connections_per_source", &cfg.max_connections_per_source},
                            std::pair{"max_handshakes_per_source", &cfg.max_handshakes_per_source},
                            std::pair{"max_connections_per_user", &cfg.max_connections_per_user},
                            std::pair{"max_lookups_per_user", &cfg.max_lookups_per_user}}) {
    if (const toml::node* n = root.get(key)) {
      auto v = r.integer(*n, key, 1, 10'000'000);
      if (!v) return;
      *field = static_cast<uint32_t>(*v);
    }
  }
  if (const toml::node* n = root.get("tls")) {
    readTls(r, *n, base_dir, cfg);
    if (r.failed()) return;
  }
  if (const toml::node* n = root.get("udp")) {
    readUdp(r, *n, cfg);
    if (r.failed()) return;
  }
  if (const toml::node* n = root.get("mux")) {
    readMux(r, *n, cfg);
    if (r.failed()) return;
  }
  if (const toml::node* n = root.get("egress")) {
    readEgress(r, *n, cfg);
    if (r.failed()) return;
  }
  if (const toml::node* n = root.get("ip")) {
    readIp(r, *n, base_dir, cfg);
    if (r.failed()) return;
  }
  if (const toml::node* n = root.get("ws")) {
    readWs(r, *n, cfg);
    if (r.failed()) return;
  }
  if (const toml::node* n = root.get("metrics")) {
    readMetrics(r, *n, cfg);
    if (r.failed()) return;
  }
  if (const toml::node* n = root.get("control")) {
    readControl(r, *n, base_dir, cfg.control);
    if (r.failed()) return;
  }
  readUsers(r, root, cfg);
}

}  // namespace

Result<ServerConfig> parseServerConfig(std::string_view text, const std::string& source,
                                       const std::string& base_dir) {
  Reader r(source);
  toml::table root;
  if (!r.parse(text, root)) return r.takeError();
  ServerConfig cfg;
  readRoot(r, root, base_dir, cfg);
  if (r.failed()) return r.takeError();
  return cfg;
}

Result<ServerConfig> loadServerConfig(const std::string& path) {
  Result<std::string> text = readConfigFile(path);
  if (!text.ok()) return text.error();
  Result<ServerConfig> cfg = parseServerConfig(text.value(), path, configDir(path));
  if (cfg.ok()) cfg.value().source_text = std::move(text).value();
  return cfg;
}

}  // namespace vt::config
