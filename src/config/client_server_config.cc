// [server] of the client config (and its [server.ws]): where the server
// is and how to reach it. Split out of client_config.cc.
#include "config/client_server_config.h"

#include "config/toml_reader.h"

namespace vt::config {
namespace {
constexpr const char* kUuidExample = "a684455c-b14f-11ea-bf0d-42010aaa0003";
}  // namespace

// [server.ws]
static void readClientWs(TomlReader& r, const toml::node& n, ClientServerConfig& s) {
  const auto* t = n.as_table();
  if (t == nullptr) {
    r.fail(n, "server.ws",
           "expected a table [server.ws] (path, host, headers, early_data, half_close), got " +
               TomlReader::typeName(n));
    return;
  }
  r.checkKeys(*t, "server.ws", {"path", "host", "headers", "early_data", "half_close"});
  if (r.failed()) return;
  ClientWsConfig ws;
  if (const toml::node* p = t->get("path")) {
    const std::string* v = r.str(*p, "server.ws.path", "a path like \"/ray\"");
    if (v == nullptr) return;
    if (std::string why = wsPathProblem(*v); !why.empty()) {
      r.fail(*p, "server.ws.path", "expected a path like \"/ray\" (" + why + "), got \"" + *v + "\"");
      return;
    }
    ws.path = *v;
  }
  if (const toml::node* h = t->get("host")) {
    const std::string* v = r.str(*h, "server.ws.host", "a host name like \"cdn.example.com\"");
    if (v == nullptr) return;
    if (std::string why = wsHostProblem(*v); !why.empty()) {
      r.fail(*h, "server.ws.host", "expected a host name like \"cdn.example.com\" (" + why + ")");
      return;
    }
    ws.host = *v;
  }
  if (const toml::node* h = t->get("headers")) {
    const auto* ht = h->as_table();
    if (ht == nullptr) {
      r.fail(*h, "server.ws.headers",
             "expected a table of header names to strings, e.g. { \"User-Agent\" = \"...\" }, got " +
                 TomlReader::typeName(*h));
      return;
    }
    for (const auto& [k, v] : *ht) {
      std::string key = "server.ws.headers." + std::string(k.str());
      const std::string* value = r.str(v, key, "a string");
      if (value == nullptr) return;
      if (std::string why = wsHeaderProblem(k.str(), *value); !why.empty()) {
        r.fail(v, key, "expected an extra request header: " + why);
        return;
      }
      ws.headers.emplace_back(std::string(k.str()), *value);
    }
  }
  if (const toml::node* e = t->get("early_data")) {
    auto v = r.integer(*e, "server.ws.early_data", 0, 2048);
    if (!v) return;
    ws.early_data = static_cast<size_t>(*v);
  }
  if (const toml::node* b = t->get("half_close")) {
    auto v = r.boolean(*b, "server.ws.half_close");
    if (!v) return;
    ws.half_close = *v;
  }
  s.ws = std::move(ws);
}

void readServer(TomlReader& r, const toml::table* t, ClientServerConfig& s) {
  if (t == nullptr) {
    r.fail(nullptr, "server", "missing; expected a [server] table with address and uuid");
    return;
  }
  r.checkKeys(*t, "server",
              {"address", "uuid", "version", "tls", "sni", "alpn", "ca", "insecure", "session_tickets",
               "connect_mode", "fwmark", "ws"});
  if (r.failed()) return;

  const std::string addr_expect =
      "an address like \"198.18.0.2:443\", \"[2001:db8::2]:443\" or \"vpn.example.com:443\"";
  const toml::node* an = t->get("address");
  if (an == nullptr) {
    r.fail(&t->source(), "server.address", "missing; expected " + addr_expect);
    return;
  }
  const std::string* as = r.str(*an, "server.address", addr_expect);
  if (as == nullptr) return;
  auto hp = parseHostPort(*as, true);
  if (!hp) {
    r.fail(*an, "server.address", "expected " + addr_expect + ", got \"" + *as + "\"");
    return;
  }
  s.address = *hp;

  const toml::node* un = t->get("uuid");
  if (un == nullptr) {
    r.fail(&t->source(), "server.uuid", std::string("missing; expected a UUID like ") + kUuidExample);
    return;
  }
  const std::string* us = r.str(*un, "server.uuid", std::string("a UUID like ") + kUuidExample);
  if (us == nullptr) return;
  auto uuid = parseUuidText(*us);
  if (!uuid) {
    // The value is the user's secret, nearly right when mistyped: never
    // echoed (logs and terminals are read by others).
    r.fail(*un, "server.uuid",
           std::string("expected a UUID like ") + kUuidExample + ", got " +
               std::to_string(us->size()) + " characters that are not one (not shown: a secret)");
    return;
  }
  s.uuid = *uuid;

  if (const toml::node* n = t->get("version")) {
    auto v = r.integer(*n, "server.version", 0, 1);
    if (!v) return;
    s.version = static_cast<uint8_t>(*v);
  }
  s.connect_mode = s.version == 1 ? ConnectMode::kWait : ConnectMode::kImmediate;
  if (const toml::node* n = t->get("connect_mode")) {
    const std::string* m = r.str(*n, "server.connect_mode", "\"wait\" or \"immediate\"");
    if (m == nullptr) return;
    if (*m == "wait") {
      if (s.version == 0) {
        r.fail(*n, "server.connect_mode",
               "expected \"immediate\" with version = 0 (VLESS v0 has no connected signal; "
               "\"wait\" needs version = 1)");
        return;
      }
      s.connect_mode = ConnectMode::kWait;
    } else if (*m == "immediate") {
      s.connect_mode = ConnectMode::kImmediate;
    } else {
      r.fail(*n, "server.connect_mode", "expected \"wait\" or \"immediate\", got \"" + *m + "\"");
      return;
    }
  }
  if (const toml::node* n = t->get("tls")) {
    auto b = r.boolean(*n, "server.tls");
    if (!b) return;
    s.tls = *b;
  }
  s.sni = s.address.host;
  if (const toml::node* n = t->get("sni")) {
    const std::string* v = r.str(*n, "server.sni", "a host name");
    if (v == nullptr) return;
    if (v->empty() || v->size() > 255) {
      r.fail(*n, "server.sni", "expected a host name of 1..255 characters");
      return;
    }
    s.sni = *v;
  }
  if (const toml::node* n = t->get("alpn")) {
    const auto* a = r.array(*n, "server.alpn", "protocol names such as \"http/1.1\"");
    if (a == nullptr) return;
    for (size_t i = 0; i < a->size(); ++i) {
      std::string key = "server.alpn[" + std::to_string(i) + "]";
      const std::string* v = r.str(*a->get(i), key, "a protocol name such as \"http/1.1\"");
      if (v == nullptr) return;
      if (v->empty() || v->size() > 255) {
        r.fail(*a->get(i), key, "expected a protocol name of 1..255 bytes");
        return;
      }
      s.alpn.push_back(*v);
    }
  }
  if (const toml::node* n = t->get("ca")) {
    const std::string* v = r.str(*n, "server.ca", "the path of a PEM file of CA certificates");
    if (v == nullptr) return;
    if (v->empty()) {
      r.fail(*n, "server.ca", "expected the path of a PEM file, got an empty string");
      return;
    }
    s.ca_file = *v;
  }
  if (const toml::node* n = t->get("insecure")) {
    auto b = r.boolean(*n, "server.insecure");
    if (!b) return;
    s.insecure = *b;
  }
  if (const toml::node* n = t->get("session_tickets")) {
    auto b = r.boolean(*n, "server.session_tickets");
    if (!b) return;
    s.session_tickets = *b;
  }
  if (const toml::node* n = t->get("fwmark")) {
    auto v = r.integer(*n, "server.fwmark", 0, 0xffffffffLL);
    if (!v) return;
    s.fwmark = static_cast<uint32_t>(*v);
  }
  if (const toml::node* n = t->get("ws")) readClientWs(r, *n, s);
}

}  // namespace vt::config
