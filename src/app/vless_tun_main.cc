// vless-tun: loads the config and runs the client core (engine/engine.h,
// the same core the C API drives) on the main thread until SIGINT/SIGTERM,
// with the TUN it creates or adopts and auto_route. Config reference:
// docs/client.md.
#include <csignal>
#include <cstdio>
#include <memory>
#include <string>

#include "command_line.h"
#include "control_commands.h"
#include "link_commands.h"
#include "malloc_tuning.h"

#include "client/tls_options.h"
#include "config/client_config.h"
#include "core/log.h"
#include "engine/engine.h"
#include "event/service_notify.h"
#include "tls/tls_engine.h"

namespace {

constexpr const char* kVersion = "vless-tun 0.1.0";

void usage(FILE* out) {
  std::fprintf(out,
               "usage: vless-tun -c FILE          run with the TOML config FILE (needs "
               "CAP_NET_ADMIN)\n"
               "       vless-tun --check -c FILE  validate FILE (and load its CA file), print ok\n"
               "       vless-tun -c FILE --control PATH  ... with the control socket at PATH\n"
               "       vless-tun status [-s SOCKET] [--json]  the live state of a running client\n"
               "       vless-tun close [-s SOCKET] ID         close one of its flows\n"
               "       vless-tun log-level [-s SOCKET] [LEVEL]\n"
               "       vless-tun import [--ignore K,..] [-o FILE] 'vless://...'\n"
               "                                  write a config for a share link\n"
               "       vless-tun --version\n"
               "       vless-tun --help\n"
               "Config reference: docs/client.md\n");
}

// --check: what Client::create would load, without a TUN or a NetStack.
int check(const vt::config::ClientConfig& cfg, const std::string& path) {
  if (cfg.server.tls) {
    auto ctx = vt::tls::TlsContext::create(vt::client::clientTlsOptions(cfg.server));
    if (!ctx.ok()) {
      std::fprintf(stderr, "%s: server.ca: %s\n", path.c_str(), ctx.error().message.c_str());
      return 1;
    }
  }
  std::printf("ok\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::string(argv[1]) == "import") {
    return vt::app::importLinkCommand(argc - 1, argv + 1);
  }
  if (argc >= 2 && vt::app::isControlCommand(argv[1])) {
    // Instances of vless-tun@NAME.service: /run/vless-tun/NAME.sock.
    return vt::app::controlCommand(argc - 1, argv + 1,
                                   vt::app::ControlTarget{"vless-tun", "/run/vless-tun", ""});
  }
  vt::app::tuneMalloc();
  vt::app::CommandLine cl;
  if (auto code = vt::app::parseCommandLine(argc, argv, "vless-tun", kVersion, usage, cl)) {
    return *code;
  }
  auto loaded = vt::config::loadClientConfig(cl.config_path);
  if (!loaded.ok()) {
    std::fprintf(stderr, "%s\n", loaded.error().message.c_str());
    return 1;
  }
  if (cl.check_only) return check(loaded.value(), cl.config_path);
  vt::setLogLevel(loaded.value().log_level);
  // A write to a socket the peer reset must be an error code, not a signal.
  std::signal(SIGPIPE, SIG_IGN);

  vt::engine::EngineOptions o;
  o.cfg = std::move(loaded).value();
  if (o.cfg.tun.fd) {
    o.mode = vt::engine::TunMode::kFd;
    o.tunFd = *o.cfg.tun.fd;
  } else {
    o.mode = vt::engine::TunMode::kCreate;
  }
  o.autoRoute = true;
  o.handleSignals = true;
  o.configPath = cl.config_path;  // SIGHUP re-reads it
  o.log.level = o.cfg.log_level;
  o.controlSocket = cl.control_path.empty() ? o.cfg.control.socket : cl.control_path;
  o.controlGroup = o.cfg.control.group;
  // Type=notify: ready once the TUN, the routes and the control socket are up.
  o.onStarted = [] { vt::event::notifyServiceManager("READY=1\nSTATUS=running"); };
  auto engine = vt::engine::Engine::create(std::move(o));
  if (!engine.ok()) {
    VT_ERROR("%s", engine.error().message.c_str());
    return 1;
  }
  const bool stopped = engine.value()->run() == vt::engine::RunResult::kStopped;
  vt::event::notifyServiceManager("STOPPING=1");
  return stopped ? 0 : 1;
}
