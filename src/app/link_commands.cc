#include "link_commands.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <set>
#include <string>

#include "config/client_config.h"
#include "config/server_config.h"
#include "config/vless_link.h"

namespace vt::app {
namespace {

void importUsage(FILE* out) {
  std::fprintf(out,
               "usage: vless-tun import [--ignore KEY[,KEY...]] [-o FILE] 'vless://UUID@HOST:PORT?...#NAME'\n"
               "  writes a vless-tun config for the link to stdout or FILE (not over an existing file).\n"
               "  --ignore fp,spx   skip parameters vless-tun cannot honour (a uTLS fingerprint, ...)\n"
               "                    instead of refusing the link\n");
}

void linksUsage(FILE* out) {
  std::fprintf(out,
               "usage: vless-server links -c FILE [--host NAME] [--v0]\n"
               "  prints a vless:// link for every [[users]] entry of FILE (\"name<TAB>link\").\n"
               "  --host NAME  the name or address clients dial (default: the first listen\n"
               "               address, when it is not 0.0.0.0 or ::)\n"
               "  --v0         links for VLESS v0 only (no vtv=1: what any Xray client speaks)\n");
}

std::set<std::string> splitComma(const std::string& s) {
  std::set<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t comma = s.find(',', start);
    if (comma == std::string::npos) comma = s.size();
    if (comma > start) out.insert(s.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

// Writes `text` to a new file `path` (0600: the config holds the user id).
bool writeNewFile(const std::string& path, const std::string& text) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    std::fprintf(stderr, "vless-tun import: %s: %s%s\n", path.c_str(), std::strerror(errno),
                 errno == EEXIST ? " (not overwritten)" : "");
    return false;
  }
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      std::fprintf(stderr, "vless-tun import: %s: %s\n", path.c_str(), std::strerror(errno));
      ::close(fd);
      return false;
    }
    done += static_cast<size_t>(n);
  }
  return ::close(fd) == 0;
}

}  // namespace

int importLinkCommand(int argc, char** argv) {
  std::set<std::string> ignore;
  std::string out_path, link;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      importUsage(stdout);
      return 0;
    }
    if (a == "--ignore" && i + 1 < argc) {
      for (const std::string& k : splitComma(argv[++i])) ignore.insert(k);
    } else if ((a == "-o" || a == "--output") && i + 1 < argc) {
      out_path = argv[++i];
    } else if (link.empty() && a.rfind("-", 0) != 0) {
      link = a;
    } else {
      std::fprintf(stderr, "vless-tun import: unexpected argument '%s'\n", a.c_str());
      importUsage(stderr);
      return 2;
    }
  }
  if (link.empty()) {
    std::fprintf(stderr, "vless-tun import: missing the vless:// link\n");
    importUsage(stderr);
    return 2;
  }
  auto parsed = config::parseVlessLink(link, ignore);
  if (!parsed.ok()) {
    const std::string& msg = parsed.error().message;
    std::fprintf(stderr, "vless-tun import: %s\n", msg.c_str());
    if (msg.find("vless link: fp=") == 0 || msg.find("unknown parameter") != std::string::npos) {
      std::fprintf(stderr,
                   "vless-tun import: to import the link without it: --ignore KEY (the server "
                   "may then refuse or tell the connection apart)\n");
    }
    return 1;
  }
  const std::string toml = config::clientConfigToml(parsed.value());
  // What we write must load: checked before anything reaches the disk.
  auto check = config::parseClientConfig(toml, out_path.empty() ? "<stdout>" : out_path, ".");
  if (!check.ok()) {
    std::fprintf(stderr, "vless-tun import: the config written for the link does not load: %s\n",
                 check.error().message.c_str());
    return 1;
  }
  if (out_path.empty()) {
    std::fputs(toml.c_str(), stdout);
    return 0;
  }
  if (!writeNewFile(out_path, toml)) return 1;
  std::fprintf(stderr, "vless-tun import: wrote %s (run: vless-tun -c %s)\n", out_path.c_str(),
               out_path.c_str());
  return 0;
}

int serverLinksCommand(int argc, char** argv) {
  std::string config_path, host;
  bool v0 = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      linksUsage(stdout);
      return 0;
    }
    if ((a == "-c" || a == "--config") && i + 1 < argc) {
      config_path = argv[++i];
    } else if (a == "--host" && i + 1 < argc) {
      host = argv[++i];
    } else if (a == "--v0") {
      v0 = true;
    } else {
      std::fprintf(stderr, "vless-server links: unexpected argument '%s'\n", a.c_str());
      linksUsage(stderr);
      return 2;
    }
  }
  if (config_path.empty()) {
    std::fprintf(stderr, "vless-server links: missing -c FILE\n");
    linksUsage(stderr);
    return 2;
  }
  auto loaded = config::loadServerConfig(config_path);
  if (!loaded.ok()) {
    std::fprintf(stderr, "%s\n", loaded.error().message.c_str());
    return 1;
  }
  const config::ServerConfig& cfg = loaded.value();
  const config::HostPort& listen = cfg.listen.front();
  if (host.empty()) {
    if (listen.host == "0.0.0.0" || listen.host == "::") {
      std::fprintf(stderr,
                   "vless-server links: %s listens on %s: say which name clients dial "
                   "(--host vpn.example.com)\n",
                   config_path.c_str(), listen.toString().c_str());
      return 2;
    }
    host = listen.host;
  }
  if (v0 && !cfg.accept_v0) {
    std::fprintf(stderr, "vless-server links: --v0, but %s does not accept version 0\n",
                 config_path.c_str());
    return 1;
  }
  int rc = 0;
  for (const config::ServerUser& u : cfg.users) {
    config::VlessLink l;
    l.uuid = u.uuid;
    l.host = host;
    l.ipv6_literal = host.find(':') != std::string::npos;
    l.port = listen.port;
    l.version = !v0 && cfg.accept_v1 ? 1 : 0;
    l.tls = cfg.tls.has_value();
    if (l.tls) l.alpn = cfg.tls->alpn;
    if (cfg.ws) {
      l.ws = true;
      l.ws_path = cfg.ws->path;
      l.ws_host = cfg.ws->host;
    }
    l.name = u.name;
    const std::string text = config::formatVlessLink(l);
    // The link must read back as written (the same check a client makes).
    auto back = config::parseVlessLink(text);
    if (!back.ok()) {
      std::fprintf(stderr, "vless-server links: user %s: %s\n", u.name.c_str(),
                   back.error().message.c_str());
      rc = 1;
      continue;
    }
    std::printf("%s\t%s\n", u.name.c_str(), text.c_str());
  }
  return rc;
}

}  // namespace vt::app
