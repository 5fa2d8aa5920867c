// vless-server: loads the config, starts the listeners, runs the loop until
// SIGINT/SIGTERM, then closes listeners and sessions and exits.
#include <sys/resource.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "command_line.h"
#include "control_commands.h"
#include "link_commands.h"
#include "malloc_tuning.h"

#include "config/config_diff.h"
#include "config/server_config.h"
#include "core/log.h"
#include "event/control_socket.h"
#include "event/loop.h"
#include "event/service_notify.h"
#include "event/signal_watcher.h"
#include "event/timer.h"
#include "server/ip_exit.h"
#include "server/metrics_listener.h"
#include "server/server.h"
#include "server/server_stats.h"
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
      "       vless-server -c FILE --control PATH  ... with the control socket at PATH\n"
      "       vless-server status [-s SOCKET] [--json]  the live state of a running server\n"
      "       vless-server close [-s SOCKET] ID         close one of its connections\n"
      "       vless-server log-level [-s SOCKET] [LEVEL]\n"
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

// The control socket's commands (docs/operations.md "Control socket").
std::string controlRequest(vt::server::Server& srv, const std::string& line) {
  using Args = std::vector<std::string>;
  const std::vector<vt::event::ControlCommand> commands = {
      {"stats", 0, 0, "stats              the state as JSON (totals, users, connections)",
       [&](const Args&) { return vt::event::controlOk(vt::server::serverStatsJson(srv)); }},
      {"status", 0, 0, "status             summary lines, users and the busiest connections",
       [&](const Args&) { return vt::event::controlOk(vt::server::serverStatusTable(srv)); }},
      {"close", 1, 1, "close ID           close the connection (or mux stream) with that id",
       [&](const Args& a) {
         uint64_t id = 0;
         if (!vt::event::parseControlId(a[0], &id)) {
           return vt::event::controlError(
               "close: expected a connection id (a number from `status`), got \"" + a[0] + "\"");
         }
         std::string what;
         if (!srv.closeConnection(id, &what)) {
           return vt::event::controlError("no live connection with id " + std::to_string(id));
         }
         VT_INFO("control: closed %s", what.c_str());
         return vt::event::controlOk("closed " + what);
       }},
      {"log-level", 0, 1, "log-level [LEVEL]  show or set: trace, debug, info, warn, error, off",
       [&](const Args& a) {
         return vt::event::controlLogLevel(a, vt::logLevel(),
                                           [](vt::LogLevel l) { vt::setLogLevel(l); });
       }},
  };
  return vt::event::dispatchControl(line, commands);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::string(argv[1]) == "links") {
    return vt::app::serverLinksCommand(argc - 1, argv + 1);
  }
  if (argc >= 2 && vt::app::isControlCommand(argv[1])) {
    return vt::app::controlCommand(
        argc - 1, argv + 1,
        vt::app::ControlTarget{"vless-server", "/run/vless-server", "/run/vless-server/control.sock"});
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
  const std::string started_text = cfg.value().source_text;
  raiseOpenFilesLimit(cfg.value().max_connections);
  std::unique_ptr<vt::server::Server> srv = std::move(server).value();
  // The control socket first: a second instance with the same socket stops
  // here, before it binds anything.
  std::unique_ptr<vt::event::ControlSocket> control;
  const std::string control_path = cl.control_path.empty() ? cfg.value().control.socket
                                                           : cl.control_path;
  if (!control_path.empty()) {
    auto c = vt::event::ControlSocket::open(
        loop, {control_path, cfg.value().control.group, 5000},
        [&srv](const std::string& line) { return controlRequest(*srv, line); });
    if (!c.ok()) {
      VT_ERROR("%s", c.error().message.c_str());
      return 1;
    }
    control = std::move(c).value();
  }
  vt::Status st = srv->start();
  if (!st.ok()) {
    VT_ERROR("%s", st.error().message.c_str());
    return 1;
  }
  // [metrics]: the Prometheus endpoint, on the same loop (docs/server.md "Metrics").
  std::unique_ptr<vt::server::MetricsListener> metrics;
  if (const auto& ml = cfg.value().metrics.listen) {
    auto addr = vt::event::SocketAddress::parseIp(ml->host, ml->port);
    if (!addr) {
      VT_ERROR("metrics: bad address %s", ml->toString().c_str());
      return 1;
    }
    auto m = vt::server::MetricsListener::start(
        loop, *addr, [&srv] { return vt::server::serverPrometheus(*srv); });
    if (!m.ok()) {
      VT_ERROR("%s", m.error().message.c_str());
      return 1;
    }
    metrics = std::move(m).value();
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
    if (srv->tlsEnabled()) {
      VT_INFO("stopping: tls %llu handshakes, %llu session tickets accepted",
              static_cast<unsigned long long>(srv->tlsHandshakes()),
              static_cast<unsigned long long>(srv->tlsTicketsAccepted()));
    }
    stop_deadline = loop.now() + kStopGraceMs;
    metrics.reset();
    control.reset();
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
      std::string summary = srv->reload(fresh.value());
      // The certificate again (certbot renews it in place).
      if (vt::Status ts = srv->reloadTls(fresh.value()); !ts.ok()) {
        VT_ERROR("reload: the running TLS certificate stays: %s", ts.error().message.c_str());
      } else if (srv->tlsEnabled()) {
        summary += "; tls certificate and key read again";
      }
      // Every key that changed and is not applied above, by name (the
      // file as started is the reference: those settings still run).
      static const std::vector<std::string> kLive = {
          "log_level", "users", "max_connections", "max_connections_per_source",
          "max_handshakes_per_source", "max_connections_per_user", "idle_timeout",
          "tls.cert", "tls.key", "tls.alpn", "tls.session_tickets", "tls.ticket_lifetime"};
      auto changed = vt::config::changedTomlKeys(started_text, fresh.value().source_text, kLive);
      std::vector<std::string> notes;
      if (changed.ok()) notes = std::move(changed).value();
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
  metrics.reset();  // its body reads srv
  control.reset();
  srv.reset();
  sigint.reset();
  sigterm.reset();
  sighup.reset();
  vt::flushFlowLog();
  VT_INFO("stopped");
  return 0;
}
