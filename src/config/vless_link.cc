// vless:// share links (docs: the header). The format has no spec of its
// own; this follows what Xray, v2rayN and sing-box write: Go's url.Parse
// rules for decoding ('+' is a space in query values, not in the
// fragment), empty values meaning "not set".
#include "config/vless_link.h"

#include <map>
#include <optional>

namespace vt::config {
namespace {

constexpr const char* kPrefix = "vless link: ";
constexpr uint32_t kMaxEarlyData = 2048;

Error linkError(const std::string& what) {
  return Error(Errc::kConfig, kPrefix + what);
}

Error paramError(std::string_view key, const std::string& what) {
  return linkError("parameter \"" + std::string(key) + "\": " + what);
}

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// %XX decoding; `plus_is_space` for query keys and values (as Go's
// url.ParseQuery). nullopt on a broken escape.
std::optional<std::string> percentDecode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      int hi = hexValue(s[i + 1]);
      int lo = hexValue(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// Everything but RFC 3986's unreserved characters is escaped: what v2rayN
// writes (Uri.EscapeDataString), and safe in any part of the link.
std::string percentEncode(std::string_view s) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    bool unreserved = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved) {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

// Valid UTF-8 (no overlongs, no surrogates) without control characters:
// the name lands in a TOML comment and in logs.
bool cleanUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      if (c < 0x20 || c == 0x7f) return false;
      ++i;
      continue;
    }
    size_t n = 0;
    uint32_t cp = 0;
    if ((c & 0xe0) == 0xc0) {
      n = 1;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      n = 2;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + n >= s.size()) return false;
    for (size_t k = 1; k <= n; ++k) {
      auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    if (cp >= 0x80 && cp < 0xa0) return false;  // C1 controls
    i += n + 1;
  }
  return true;
}

bool printableAscii(std::string_view s) {
  for (char c : s) {
    if (c <= 0x20 || c >= 0x7f) return false;
  }
  return true;
}

// For messages: values from a link are not secrets, but may be long or
// hold bytes a terminal should not get.
std::string bare(std::string_view v) {
  std::string s(v.substr(0, 48));
  for (char& c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
  }
  return v.size() > 48 ? s + "..." : s;
}
std::string shown(std::string_view v) {
  return "\"" + bare(v) + "\"";
}

std::optional<bool> parseBool(std::string_view v) {
  if (v == "1" || v == "true") return true;
  if (v == "0" || v == "false") return false;
  return std::nullopt;
}

// ed=N in the path's query (Xray's early data); 0 when absent or not a
// number. Larger values are capped: early data is "up to" on both sides.
uint32_t earlyDataOf(std::string_view path) {
  size_t q = path.find('?');
  if (q == std::string_view::npos) return 0;
  std::string_view query = path.substr(q + 1);
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view kv = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (kv.substr(0, 3) != "ed=") continue;
    std::string_view num = kv.substr(3);
    if (num.empty() || num.size() > 9) return 0;
    uint32_t n = 0;
    for (char c : num) {
      if (c < '0' || c > '9') return 0;
      n = n * 10 + static_cast<uint32_t>(c - '0');
    }
    return n > kMaxEarlyData ? kMaxEarlyData : n;
  }
  return 0;
}

// Transports Xray links name that vless-tun does not speak.
const char* unsupportedTransport(std::string_view t) {
  if (t == "grpc" || t == "gun") return "gRPC";
  if (t == "h2" || t == "http") return "HTTP/2";
  if (t == "quic") return "QUIC";
  if (t == "kcp" || t == "mkcp") return "mKCP";
  if (t == "httpupgrade") return "HTTPUpgrade";
  if (t == "xhttp" || t == "splithttp") return "XHTTP";
  return nullptr;
}

std::string tomlString(std::string_view s) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out = "\"";
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (ch == '"' || ch == '\\') {
      out.push_back('\\');
      out.push_back(ch);
    } else if (c < 0x20 || c == 0x7f) {
      out += "\\u00";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    } else {
      out.push_back(ch);
    }
  }
  out.push_back('"');
  return out;
}

}  // namespace

Result<VlessLink> parseVlessLink(std::string_view link, const std::set<std::string>& ignore) {
  // Copied from a web page or a file: stray whitespace around it is common.
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!link.empty() && space(link.front())) link.remove_prefix(1);
  while (!link.empty() && space(link.back())) link.remove_suffix(1);

  constexpr std::string_view kScheme = "vless://";
  bool scheme_ok = link.size() >= kScheme.size();
  for (size_t i = 0; scheme_ok && i < kScheme.size(); ++i) {
    char c = link[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');  // schemes ignore case
    scheme_ok = c == kScheme[i];
  }
  if (!scheme_ok) return linkError("expected a link starting with vless://");
  std::string_view rest = link.substr(kScheme.size());

  VlessLink out;
  // The fragment first: '?' and '&' may appear in it.
  if (size_t hash = rest.find('#'); hash != std::string_view::npos) {
    auto name = percentDecode(rest.substr(hash + 1), false);
    if (!name) return linkError("the name (after #): broken percent-encoding");
    if (!cleanUtf8(*name)) {
      return linkError("the name (after #): expected UTF-8 text without control characters");
    }
    out.name = std::move(*name);
    rest = rest.substr(0, hash);
  }
  std::string_view query;
  if (size_t q = rest.find('?'); q != std::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  // Some exporters write "host:port/?...": an empty path is fine, another
  // one means nothing to VLESS.
  if (size_t slash = rest.find('/'); slash != std::string_view::npos) {
    if (rest.substr(slash) != "/") {
      return linkError("unexpected path " + shown(rest.substr(slash)) + " after HOST:PORT");
    }
    rest = rest.substr(0, slash);
  }

  size_t at = rest.rfind('@');
  if (at == std::string_view::npos) {
    return linkError("expected vless://USER-ID@HOST:PORT, found no '@'");
  }
  // The user id is the secret: never echoed, whatever is wrong with it.
  auto id = percentDecode(rest.substr(0, at), false);
  std::optional<UuidBytes> uuid;
  if (id) uuid = parseUuidText(*id);
  if (!uuid) {
    return linkError(
        "the user id is not a UUID like a684455c-b14f-11ea-bf0d-42010aaa0003 "
        "(36 characters with dashes, or 32 hex digits; not shown: a secret)");
  }
  out.uuid = *uuid;
  out.uuid_text = uuidText(*uuid);

  std::string_view hostport = rest.substr(at + 1);
  std::string_view host;
  std::string_view port_text;
  if (!hostport.empty() && hostport.front() == '[') {
    size_t close = hostport.find(']');
    if (close == std::string_view::npos) {
      return linkError("host: an IPv6 literal without its closing ']'");
    }
    host = hostport.substr(1, close - 1);
    if (close + 1 >= hostport.size() || hostport[close + 1] != ':') {
      return linkError("expected :PORT after the host " + shown(hostport.substr(0, close + 1)));
    }
    port_text = hostport.substr(close + 2);
    out.ipv6_literal = true;
  } else {
    size_t colon = hostport.rfind(':');
    if (colon == std::string_view::npos) {
      return linkError("expected HOST:PORT after '@', found no port");
    }
    host = hostport.substr(0, colon);
    port_text = hostport.substr(colon + 1);
  }
  uint32_t port = 0;
  bool port_ok = !port_text.empty() && port_text.size() <= 5;
  for (char c : port_text) {
    port_ok = port_ok && c >= '0' && c <= '9';
    if (port_ok) port = port * 10 + static_cast<uint32_t>(c - '0');
  }
  if (!port_ok || port == 0 || port > 65535) {
    return linkError("port " + shown(port_text) + ": expected 1..65535");
  }
  // parseHostPort is the config's own reading of server.address: what it
  // takes here, the config will take.
  std::string check = out.ipv6_literal ? "[" + std::string(host) + "]:1" : std::string(host) + ":1";
  auto hp = parseHostPort(check, true);
  // Printable first: inet_pton reads the host up to a NUL, so "::1\0junk"
  // would pass as an IPv6 literal.
  if (!hp || host.empty() || !printableAscii(host)) {
    return linkError("host " + shown(host) +
                     ": expected a DNS name or an IP literal ([...] for IPv6)");
  }
  out.host = std::string(host);
  out.port = static_cast<uint16_t>(port);

  // key -> value, decoded; duplicates refused (which one would count?).
  std::map<std::string, std::string> params;
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view kv = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (kv.empty()) continue;  // "?&a=b", a trailing '&'
    size_t eq = kv.find('=');
    auto key = percentDecode(kv.substr(0, eq), true);
    if (!key) {
      return linkError("a parameter name " + shown(kv.substr(0, eq)) + ": broken percent-encoding");
    }
    if (key->empty()) return linkError("a parameter without a name");
    std::optional<std::string> value = std::string();
    if (eq != std::string_view::npos) value = percentDecode(kv.substr(eq + 1), true);
    if (!value) return paramError(*key, "broken percent-encoding");
    if (!params.emplace(*key, std::move(*value)).second) return paramError(*key, "given twice");
  }
  // An empty value is "not set", as exporters write every key they know.
  auto take = [&params](const char* key) -> std::string {
    auto it = params.find(key);
    if (it == params.end()) return {};
    std::string v = std::move(it->second);
    params.erase(it);
    return v;
  };

  // What changes the protocol on the wire first: those are the errors that
  // tell the user this link cannot work here at all.
  if (std::string enc = take("encryption"); !enc.empty() && enc != "none") {
    return paramError("encryption", shown(enc) + " is not supported by vless-tun (only none)");
  }
  std::string security = take("security");
  if (security == "tls") {
    out.tls = true;
  } else if (security == "reality") {
    return linkError("security=reality: REALITY is not supported by vless-tun");
  } else if (security == "xtls") {
    return linkError("security=xtls: XTLS is not supported by vless-tun");
  } else if (!security.empty() && security != "none") {
    return paramError("security", "expected tls or none, got " + shown(security));
  }
  std::string type = take("type");
  if (type == "ws") {
    out.ws = true;
  } else if (const char* name = unsupportedTransport(type)) {
    return paramError("type", std::string("the ") + name + " transport (type=" + type +
                                  ") is not supported by vless-tun (tcp and ws are)");
  } else if (!type.empty() && type != "tcp" && type != "raw") {  // Xray now says raw for tcp
    return paramError("type", "expected tcp or ws, got " + shown(type));
  }
  if (std::string h = take("headerType"); !h.empty() && h != "none") {
    if (h == "http") {
      return linkError("headerType=http: HTTP header obfuscation is not supported by vless-tun");
    }
    return paramError("headerType", "expected none, got " + shown(h));
  }
  if (std::string flow = take("flow"); !flow.empty()) {
    return linkError("flow=" + bare(flow) + ": XTLS flows (Vision) are not supported by vless-tun");
  }
  if (std::string vtv = take("vtv"); vtv == "1") {
    out.version = 1;
  } else if (!vtv.empty() && vtv != "0") {
    return paramError("vtv", "expected 0 or 1 (the VLESS version), got " + shown(vtv));
  }

  // TLS.
  std::string sni = take("sni");
  std::string peer = take("peer");  // the older clients' name for sni
  if (!sni.empty() && !peer.empty() && sni != peer) {
    return paramError("peer", "differs from sni (both name the TLS server name)");
  }
  if (sni.empty()) sni = std::move(peer);
  if (!sni.empty() && (sni.size() > 255 || !printableAscii(sni))) {
    return paramError("sni",
                      "expected a host name of 1..255 printable characters, got " + shown(sni));
  }
  std::vector<std::string> alpn;
  if (std::string a = take("alpn"); !a.empty()) {
    std::string_view list = a;
    while (true) {
      size_t comma = list.find(',');
      std::string_view one = list.substr(0, comma);
      if (one.empty() || one.size() > 255 || !printableAscii(one)) {
        return paramError("alpn", "expected protocol names like h2,http/1.1, got " + shown(a));
      }
      alpn.emplace_back(one);
      if (comma == std::string_view::npos) break;
      list = list.substr(comma + 1);
    }
  }
  std::optional<bool> insecure;
  for (const char* key : {"allowInsecure", "insecure"}) {
    std::string v = take(key);
    if (v.empty()) continue;
    auto b = parseBool(v);
    if (!b) return paramError(key, "expected 1, true, 0 or false, got " + shown(v));
    if (insecure && *insecure != *b) return paramError(key, "contradicts allowInsecure");
    insecure = b;
  }
  if (out.tls) {
    out.sni = std::move(sni);
    out.alpn = std::move(alpn);
    out.insecure = insecure.value_or(false);
  }

  // WebSocket.
  std::string path = take("path");
  std::string host_header = take("host");
  if (out.ws) {
    out.ws_path = path.empty() ? "/" : path;
    if (std::string why = wsPathProblem(out.ws_path); !why.empty()) {
      return paramError("path",
                        "expected a path like /ray (" + why + "), got " + shown(out.ws_path));
    }
    out.ws_early_data = earlyDataOf(out.ws_path);
    if (!host_header.empty()) {
      if (std::string why = wsHostProblem(host_header); !why.empty()) {
        return paramError("host", "expected a host name like cdn.example.com (" + why + ")");
      }
      out.ws_host = std::move(host_header);
    }
  } else {
    // With tcp, host and path only belong to HTTP header obfuscation.
    if (!host_header.empty()) {
      return paramError("host",
                        "an HTTP Host with type=tcp means HTTP header obfuscation, "
                        "which vless-tun does not support");
    }
    if (!path.empty()) {
      return paramError("path",
                        "a path with type=tcp means HTTP header obfuscation, "
                        "which vless-tun does not support");
    }
  }

  // Whatever is left: uTLS, REALITY's keys and unknown ones, each refused
  // unless the caller chose to ignore it.
  // Known ones first, so the message is the telling one.
  for (const char* key : {"fp", "pbk", "sid", "spx"}) {
    std::string value = take(key);
    if (value.empty() || ignore.count(key) != 0) continue;
    if (key[0] == 'f') {
      return linkError("fp=" + bare(value) +
                       ": TLS fingerprint imitation (uTLS) is not supported by vless-tun");
    }
    return paramError(key, "a REALITY setting; REALITY is not supported by vless-tun");
  }
  for (const auto& kv : params) {
    if (ignore.count(kv.first) == 0) return linkError("unknown parameter " + shown(kv.first));
  }
  return out;
}

std::string formatVlessLink(const VlessLink& l) {
  std::string s = "vless://" + uuidText(l.uuid) + "@";
  s += l.ipv6_literal ? "[" + l.host + "]" : l.host;
  s += ":" + std::to_string(l.port);
  s += "?encryption=none";
  s += l.tls ? "&security=tls" : "&security=none";
  if (l.tls) {
    if (!l.sni.empty()) s += "&sni=" + percentEncode(l.sni);
    if (!l.alpn.empty()) {
      std::string joined;
      for (const auto& a : l.alpn) joined += (joined.empty() ? "" : ",") + a;
      s += "&alpn=" + percentEncode(joined);
    }
    if (l.insecure) s += "&allowInsecure=1";
  }
  s += l.ws ? "&type=ws" : "&type=tcp";
  if (l.ws) {
    if (!l.ws_host.empty()) s += "&host=" + percentEncode(l.ws_host);
    s += "&path=" + percentEncode(l.ws_path.empty() ? "/" : l.ws_path);
  }
  if (l.version == 1) s += "&vtv=1";
  s += "#" + percentEncode(l.name);
  return s;
}

std::string clientConfigToml(const VlessLink& l) {
  std::string t;
  t += l.name.empty() ? "# vless-tun config from a vless:// link\n"
                      : "# vless-tun config from the vless:// link \"" + l.name + "\"\n";
  t += "\n[tun]\n";
  t += "# Defaults apply (device vt0, MTU 8500, no addresses): see docs/client.md.\n";
  t += "# Nothing is routed into the TUN until [route] auto_route = true (docs/routing.md).\n";
  t += "\n[server]\n";
  t += "address = " +
       tomlString(l.ipv6_literal ? "[" + l.host + "]:" + std::to_string(l.port)
                                 : l.host + ":" + std::to_string(l.port)) +
       "\n";
  t += "uuid = " + tomlString(uuidText(l.uuid)) + "\n";
  // connect_mode follows the version by default (wait for v1, immediate
  // for v0), so it is not written.
  t += "version = " + std::to_string(l.version) + "\n";
  t += l.tls ? "tls = true\n" : "tls = false\n";
  if (l.tls) {
    if (!l.sni.empty()) t += "sni = " + tomlString(l.sni) + "\n";
    if (!l.alpn.empty()) {
      t += "alpn = [";
      for (size_t i = 0; i < l.alpn.size(); ++i) t += (i ? ", " : "") + tomlString(l.alpn[i]);
      t += "]\n";
    }
    if (l.insecure) {
      t += "insecure = true  # the link's allowInsecure: the certificate is not checked\n";
    }
  }
  if (l.ws) {
    t += "\n[server.ws]\n";
    t += "path = " + tomlString(l.ws_path.empty() ? "/" : l.ws_path) + "\n";
    if (!l.ws_host.empty()) t += "host = " + tomlString(l.ws_host) + "\n";
    if (l.ws_early_data != 0) t += "early_data = " + std::to_string(l.ws_early_data) + "\n";
  }
  return t;
}

}  // namespace vt::config
