// vless:// share links (config/vless_link.h), which a user pastes from
// anywhere: any bytes must parse or fail with a kConfig message that never
// holds the user id, and what parses must survive the canonical form
// (format -> parse gives the same link, and format is a fixed point) and
// the config written from it (parseClientConfig reads the same settings).
#include <set>
#include <string>
#include <string_view>

#include "config/client_config.h"
#include "config/vless_link.h"
#include "fuzz_util.h"

using namespace vt;
using namespace vt::config;

namespace {

// The text between "://" and '@' when it is a UUID written once in the
// input: then no error message may show it.
std::string secretOf(std::string_view in) {
  size_t s = in.find("://");
  if (s == std::string_view::npos) return {};
  size_t at = in.find('@', s + 3);
  if (at == std::string_view::npos) return {};
  std::string_view id = in.substr(s + 3, at - s - 3);
  if (!parseUuidText(id) || in.find(id, at) != std::string_view::npos) return {};
  return std::string(id);
}

void checkLink(const VlessLink& l) {
  std::string f = formatVlessLink(l);
  auto again = parseVlessLink(f);
  fuzz::check(again.ok(), "a formatted link parses",
              again.ok() ? "" : again.error().message + " " + f);
  fuzz::check(again.value() == l, "format -> parse gives the same link", f);
  fuzz::check(formatVlessLink(again.value()) == f, "the canonical form is a fixed point", f);

  std::string toml = clientConfigToml(l);
  auto cfg = parseClientConfig(toml, "link.toml", "/nonexistent");
  fuzz::check(cfg.ok(), "the link's config parses",
              cfg.ok() ? "" : cfg.error().message + "\n" + toml);
  const ClientServerConfig& s = cfg.value().server;
  fuzz::check(s.address.host == l.host && s.address.port == l.port, "config address", toml);
  fuzz::check(s.uuid == l.uuid && s.version == l.version && s.tls == l.tls, "config id/version/tls",
              toml);
  fuzz::check(
      s.sni == (l.sni.empty() ? l.host : l.sni) && s.alpn == l.alpn && s.insecure == l.insecure,
      "config TLS settings", toml);
  fuzz::check(s.ws.has_value() == l.ws, "config ws", toml);
  if (l.ws) {
    fuzz::check(
        s.ws->path == l.ws_path && s.ws->host == l.ws_host && s.ws->early_data == l.ws_early_data,
        "config ws settings", toml);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string in(reinterpret_cast<const char*>(data), size);
  static const std::set<std::string> kIgnore = {"fp", "pbk", "sid", "spx", "foo"};
  for (const auto* ignore : {static_cast<const std::set<std::string>*>(nullptr), &kIgnore}) {
    auto r = ignore ? parseVlessLink(in, *ignore) : parseVlessLink(in);
    if (r.ok()) {
      checkLink(r.value());
      continue;
    }
    const std::string& m = r.error().message;
    fuzz::check(r.error().code == Errc::kConfig, "errors are kConfig", m);
    fuzz::check(m.rfind("vless link: ", 0) == 0 && m.size() > 12, "errors say what", m);
    std::string secret = secretOf(in);
    fuzz::check(secret.empty() || m.find(secret) == std::string::npos, "the user id is never shown",
                m);
  }
  return 0;
}
