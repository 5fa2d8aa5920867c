// vless-server: loads the config, starts the listeners, runs the loop until
// SIGINT/SIGTERM, then closes listeners and sessions and exits.
#include <sys/resource.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "command_line.h"
#include "link_commands.h"
#include "malloc_tuning.h"

#include "config/server_config.h"
#include "core/log.h"
#include "event/loop.h"
#include "event/service_notify.h"
#include "event/signal_watcher.h"
#include "event/timer.h"
#include "server/ip_exit.h"
#include "server/server.h"
#include "tls/tls_engine.h"

namespace {

constexpr const char* kVersion = "vless-server 0.1.0";
// After a stop signal, sessions get this long to close before the loop is
// stopped regardless.
constexpr uint64_t kStopGraceMs = 5000;

void usage(FILE* out) {
  std::fprintf(
      out,
      "usage: vless-server -c FILE          run with the TOML config FILE\n"
      "       vless-server --check -c FILE  validate FILE (and load its TLS files), print ok\n"
      "       vless-server links -c FILE [--host NAME] [--v0]\n"
      "                                     print a vless:// link for every user\n"
      "       vless-server --version\n"
      "       vless-server --help\n"
      "Config reference: docs/server.md\n");
}

// Each connection needs up to two descriptors (client and target); the
// soft limit is raised to the hard one, and a limit that cannot hold
// max_connections is said at start rather than found out under load.
void raiseOpenFilesLimit(uint32_t max_connections) {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
  if (rl.rlim_cur < rl.rlim_max) {
    rlimit want = rl;
    want.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &want) == 0) rl = want;
  }
  const unsigned long long need = 2ULL * max_connections + 64;
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
    VT_WARN("open files limit %llu is below what max_connections %u can need (%llu): raise "
            "the hard limit (LimitNOFILE= in a systemd unit, ulimit -Hn) or lower "
            "max_connections",
            static_cast<unsigned long long>(rl.rlim_cur), max_connections, need);
  } else {
    VT_INFO("open files limit %llu", static_cast<unsigned long long>(rl.rlim_cur));
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::string(argv[1]) == "links") {
    return vt::app::serverLinksCommand(argc - 1, argv + 1);
  }
  vt::app::tuneMalloc();
  vt::app::CommandLine cl;
  if (auto code = vt::app::parseCommandLine(argc, argv, "vless-server", kVersion, usage, cl)) {
    return *code;
  }
  const std::string& config_path = cl.config_path;
  const bool check = cl.check_only;

  auto cfg = vt::config::loadServerConfig(config_path);
  if (!cfg.ok()) {
    std::fprintf(stderr, "%s\n", cfg.error().message.c_str());
    return 1;
  }
  // A write to a socket the peer reset must be an error code, not a signal.
  std::signal(SIGPIPE, SIG_IGN);
  // Name lookups run on libuv's thread pool, sized when it first starts:
  // 16 threads (the operator's UV_THREADPOOL_SIZE wins), shared fairly
  // between users (docs/server.md "Name resolution").
  setenv("UV_THREADPOOL_SIZE", "16", 0);

  vt::event::Loop loop;
  auto server = vt::server::Server::create(loop, cfg.value());
  if (!server.ok()) {
    std::fprintf(stderr, "%s: tls: %s\n", config_path.c_str(), server.error().message.c_str());
    return 1;
  }
  if (check) {
    std::printf("ok\n");
    return 0;
  }
  vt::setLogLevel(cfg.value().log_level);
  raiseOpenFilesLimit(cfg.value().max_connections);
  std::unique_ptr<vt::server::Server> srv = std::move(server).value();
  vt::Status st = srv->start();
  if (!st.ok()) {
    VT_ERROR("%s", st.error().message.c_str());
    return 1;
  }
  // Type=notify: listening now (a no-op unless systemd asked).
  vt::event::notifyServiceManager("READY=1\nSTATUS=listening");

  std::unique_ptr<vt::event::SignalWatcher> sigint, sigterm;
  vt::event::Timer stop_poll(loop);
  uint64_t stop_deadline = 0;
  auto onStop = [&] {
    if (stop_deadline != 0) return;
    VT_INFO("stopping");
    vt::event::notifyServiceManager("STOPPING=1\nSTATUS=draining connections");
    if (const vt::tls::TlsContext* tls = srv->tlsContext(); tls != nullptr) {
      VT_INFO("stopping: tls %llu handshakes, %llu session tickets accepted",
              static_cast<unsigned long long>(tls->stats().handshakes),
              static_cast<unsigned long long>(tls->stats().ticketsAccepted));
    }
    stop_deadline = loop.now() + kStopGraceMs;
    srv->stop();
    VT_INFO("stopping: egress policy refused %llu dials and datagrams",
            static_cast<unsigned long long>(srv->egressDenied()));
    const vt::server::Server::AdmissionStats& as = srv->admissionStats();
    VT_INFO("stopping: admission refused %llu connections at max_connections, %llu at "
            "max_connections_per_source, %llu at max_handshakes_per_source, %llu at "
            "max_connections_per_user",
            static_cast<unsigned long long>(as.max_connections),
            static_cast<unsigned long long>(as.source_connections),
            static_cast<unsigned long long>(as.source_handshakes),
            static_cast<unsigned long long>(as.user_connections));
    const vt::stream::BufferBudget& bb = srv->bufferBudget();
    VT_INFO("stopping: buffer budget %llu bytes: peak %llu queued, %llu times under pressure",
            static_cast<unsigned long long>(bb.limit()), static_cast<unsigned long long>(bb.peak()),
            static_cast<unsigned long long>(bb.pressureEpisodes()));
    const vt::event::ResolverPool::Stats& rs = srv->resolvers().stats();
    VT_INFO("stopping: name lookups %llu (%llu waited for a slot, %llu refused as busy, %llu "
            "timed out, %llu finished after their caller gave up)",
            static_cast<unsigned long long>(rs.lookups), static_cast<unsigned long long>(rs.queued),
            static_cast<unsigned long long>(rs.busy), static_cast<unsigned long long>(rs.timeouts),
            static_cast<unsigned long long>(rs.late));
    for (const std::string& line : srv->rateLimitSummary()) {
      VT_INFO("stopping: rate limit %s", line.c_str());
    }
    const vt::server::UdpNatStats& us = srv->udpNat().stats();
    VT_INFO(
        "stopping: udp nat %llu sessions (%llu expired, %llu of them unassured; evicted %llu "
        "at max_sessions_per_user, %llu at max_sessions)",
        static_cast<unsigned long long>(us.created), static_cast<unsigned long long>(us.expired),
        static_cast<unsigned long long>(us.expired_new),
        static_cast<unsigned long long>(us.evicted_max_sessions_per_user),
        static_cast<unsigned long long>(us.evicted_max_sessions));
    if (vt::server::IpExit* ip = srv->ipExit()) {
      VT_INFO("stopping: ip %s", ip->summary().c_str());
    }
    // Watchers are destroyed outside their own callback.
    loop.post([&] {
      sigint.reset();
      sigterm.reset();
    });
    stop_poll.start(
        10,
        [&] {
          if (srv->sessionCount() == 0 || loop.now() >= stop_deadline) {
            stop_poll.stop();
            loop.stop();
          }
        },
        50);
  };
  sigint = std::make_unique<vt::event::SignalWatcher>(loop, SIGINT, onStop);
  sigterm = std::make_unique<vt::event::SignalWatcher>(loop, SIGTERM, onStop);
  // SIGHUP: the config file again; users and limits apply now (docs/server.md
  // "Reload"). A file that does not load changes nothing. The read is the
  // operator's request, a small local file: the one file read after start.
  auto onReload = [&] {
    if (stop_deadline != 0) return;
    vt::event::notifyServiceManager("RELOADING=1");
    auto fresh = vt::config::loadServerConfig(config_path);
    if (!fresh.ok()) {
      VT_ERROR("reload refused, the running config stays: %s", fresh.error().message.c_str());
    } else {
      std::vector<std::string> notes;
      std::string summary = srv->reload(fresh.value(), &notes);
      vt::setLogLevel(fresh.value().log_level);
      VT_INFO("reloaded %s: %s", config_path.c_str(), summary.c_str());
      for (const std::string& n : notes) {
        VT_WARN("reload: %s changed in %s; it applies at the next restart", n.c_str(),
                config_path.c_str());
      }
    }
    vt::event::notifyServiceManager("READY=1\nSTATUS=listening");
  };
  auto sighup = std::make_unique<vt::event::SignalWatcher>(loop, SIGHUP, onReload);
  loop.run();
  srv.reset();
  sigint.reset();
  sigterm.reset();
  sighup.reset();
  vt::flushFlowLog();
  VT_INFO("stopped");
  return 0;
}
