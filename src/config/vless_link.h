// vless:// share links, as Xray, v2rayN and sing-box import and export them:
//   vless://UUID@HOST:PORT?key=value&key=value#NAME
// read into what vless-tun can carry (tcp or ws, TLS or not, VLESS v0, or
// v1 with our own `vtv=1`), written back in one canonical form, and turned
// into a client config. Anything the link asks for that vless-tun cannot
// do (REALITY, XTLS flows, other transports, uTLS fingerprints) is an
// error naming it, never silently dropped: a link that "works" without
// what the provider required would fail later and obscurely.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "config/config_util.h"
#include "core/error.h"

namespace vt::config {

struct VlessLink {
  std::string uuid_text;  // canonical: lowercase with dashes
  UuidBytes uuid{};
  std::string host;  // DNS name or IP literal, without brackets
  uint16_t port = 0;
  bool ipv6_literal = false;  // host was [bracketed]
  uint8_t version = 0;        // 0 (any Xray/v2ray server), 1 with vtv=1
  bool tls = false;           // security=tls
  // The TLS settings; empty/false without TLS (where a link's sni, alpn and
  // allowInsecure mean nothing and are dropped).
  std::string sni;                // empty: the host
  std::vector<std::string> alpn;  // offered in this order
  bool insecure = false;          // allowInsecure / insecure
  bool ws = false;                // type=ws
  // The WebSocket settings; empty/0 with type=tcp.
  std::string ws_path;         // with its query, "?ed=N" included; "/" when absent
  std::string ws_host;         // empty: sni, else the host
  uint32_t ws_early_data = 0;  // from the path's ed=N, at most 2048
  std::string name;            // the #fragment, decoded (UTF-8)

  bool operator==(const VlessLink&) const = default;
};

// Parses a link (surrounding whitespace allowed). Errors are Errc::kConfig
// with a message "vless link: ..." naming the part at fault; the user id is
// never shown. `ignore` lists parameters to skip rather than refuse; it
// applies only to the uTLS/REALITY ones (fp, pbk, sid, spx) and to keys
// vless-tun does not know, never to ones that change what is spoken
// (security, type, flow, encryption...).
Result<VlessLink> parseVlessLink(std::string_view link, const std::set<std::string>& ignore = {});

// The canonical link: encryption=none, security, sni, alpn, allowInsecure
// (only if true), type, host, path, vtv (only if 1), then #name; values
// percent-encoded but for RFC 3986's unreserved characters.
std::string formatVlessLink(const VlessLink& link);

// A complete vless-tun config (TOML) for the link: [tun] left to the
// defaults, [server] and, for ws, [server.ws]. parseClientConfig reads it
// back to the link's settings.
std::string clientConfigToml(const VlessLink& link);

}  // namespace vt::config
