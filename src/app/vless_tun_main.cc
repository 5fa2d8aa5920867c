// vless-tun: loads the config, creates (or adopts) the TUN, runs the
// client core on one loop until SIGINT/SIGTERM, then resets the flows and
// exits. Config reference: docs/client.md.
#include <csignal>
#include <cstdio>
#include <memory>
#include <string>

#include "command_line.h"

#include "client/client.h"
#include "client/tun_pump.h"
#include "config/client_config.h"
#include "core/log.h"
#include "event/loop.h"
#include "event/signal_watcher.h"
#include "event/socket_address.h"
#include "engine/route_options.h"
#include "route_manager.h"
#include "tls/tls_engine.h"
#include "tun_device.h"

namespace {

constexpr const char* kVersion = "vless-tun 0.1.0";

void usage(FILE* out) {
  std::fprintf(out,
               "usage: vless-tun -c FILE          run with the TOML config FILE (needs "
               "CAP_NET_ADMIN)\n"
               "       vless-tun --check -c FILE  validate FILE (and load its CA file), print ok\n"
               "       vless-tun --version\n"
               "       vless-tun --help\n"
               "Config reference: docs/client.md\n");
}

// --check: what Client::create would load, without a TUN or a NetStack.
int check(const vt::config::ClientConfig& cfg, const std::string& path) {
  if (cfg.server.tls) {
    vt::tls::TlsOptions o;
    o.role = vt::tls::Role::kClient;
    o.server_name = cfg.server.sni;
    o.alpn = cfg.server.alpn;
    o.ca_file = cfg.server.ca_file;
    o.insecure = cfg.server.insecure;
    auto ctx = vt::tls::TlsContext::create(o);
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
  vt::app::CommandLine cl;
  if (auto code = vt::app::parseCommandLine(argc, argv, "vless-tun", kVersion, usage, cl)) {
    return *code;
  }
  const std::string& config_path = cl.config_path;
  const bool check_only = cl.check_only;
  auto loaded = vt::config::loadClientConfig(config_path);
  if (!loaded.ok()) {
    std::fprintf(stderr, "%s\n", loaded.error().message.c_str());
    return 1;
  }
  const vt::config::ClientConfig& cfg = loaded.value();
  if (check_only) return check(cfg, config_path);
  vt::setLogLevel(cfg.log_level);
  // A write to a socket the peer reset must be an error code, not a signal.
  std::signal(SIGPIPE, SIG_IGN);

  // auto_route: undo what a crashed earlier run left behind before touching
  // anything (the state file is named after the TUN).
  if (cfg.route.auto_route && !cfg.tun.fd) {
    vt::platform::RouteManager probe(vt::engine::routeOptions(cfg, cfg.tun.name, 0));
    if (vt::Status st = vt::platform::RouteManager::recover(probe.stateFile()); !st.ok()) {
      VT_WARN("auto_route: recovering %s: %s", probe.stateFile().c_str(),
              st.error().message.c_str());
    }
  }

  std::unique_ptr<vt::platform::TunDevice> tun;
  if (cfg.tun.fd) {
    auto t = vt::platform::TunDevice::adopt(*cfg.tun.fd);
    if (!t.ok()) {
      VT_ERROR("cannot adopt the TUN fd %d: %s", *cfg.tun.fd, t.error().message.c_str());
      return 1;
    }
    tun = std::move(t).value();
  } else {
    vt::platform::TunConfig tc;
    tc.name = cfg.tun.name;
    tc.mtu = cfg.tun.mtu;
    if (cfg.tun.ipv4) {
      tc.ipv4 = cfg.tun.ipv4->address;
      tc.ipv4Prefix = cfg.tun.ipv4->prefix;
    }
    if (cfg.tun.ipv6) {
      tc.ipv6 = cfg.tun.ipv6->address;
      tc.ipv6Prefix = cfg.tun.ipv6->prefix;
    }
    auto t = vt::platform::TunDevice::create(tc);
    if (!t.ok()) {
      VT_ERROR("cannot create the TUN device %s (vless-tun needs root or CAP_NET_ADMIN): %s",
               cfg.tun.name.c_str(), t.error().message.c_str());
      return 1;
    }
    tun = std::move(t).value();
  }

  vt::event::Loop loop;
  auto created = vt::client::Client::create(loop, cfg);
  if (!created.ok()) {
    VT_ERROR("%s", created.error().message.c_str());
    return 1;
  }
  std::unique_ptr<vt::client::Client> client = std::move(created).value();
  auto pump = std::make_unique<vt::client::TunPump>(loop, tun->fd(), client->stack(), cfg.tun.mtu);
  client->setPacketSink(pump.get());
  // The client outlives the pump: detach it on every exit path.
  struct SinkGuard {
    vt::client::Client* c;
    ~SinkGuard() { c->setPacketSink(nullptr); }
  } sink_guard{client.get()};
  if (vt::Status st = pump->start(); !st.ok()) {
    VT_ERROR("%s", st.error().message.c_str());
    return 1;
  }
  client->start();

  std::unique_ptr<vt::platform::RouteManager> routes;
  std::unique_ptr<vt::event::SignalWatcher> sigint, sigterm;
  bool stopping = false;
  auto onStop = [&] {
    if (stopping) return;
    stopping = true;
    const vt::client::ClientStats& cs = client->stats();
    VT_INFO("stopping: %llu flows (%llu evicted, %llu failed dials, %llu loops refused), "
            "up %llu B, down %llu B, tun drops %llu (%llu control), "
            "%llu writes waited for room (%llu control)",
            static_cast<unsigned long long>(cs.flowsOpened),
            static_cast<unsigned long long>(cs.evicted),
            static_cast<unsigned long long>(cs.connectFailed),
            static_cast<unsigned long long>(cs.loopsRefused),
            static_cast<unsigned long long>(cs.bytesUp),
            static_cast<unsigned long long>(cs.bytesDown),
            static_cast<unsigned long long>(pump->stats().writeDropped),
            static_cast<unsigned long long>(pump->stats().controlDropped),
            static_cast<unsigned long long>(pump->stats().writeQueued),
            static_cast<unsigned long long>(pump->stats().controlQueued));
    const vt::netstack::NetStackStats& ns = client->stack().stats();
    VT_INFO("stopping: tcp syns %llu held (%llu replaced, %llu evicted, %llu expired), "
            "4-tuples reused from time_wait %llu / closing %llu, time_wait %zu now (%llu evicted)",
            static_cast<unsigned long long>(ns.synHeld),
            static_cast<unsigned long long>(ns.synReplaced),
            static_cast<unsigned long long>(ns.synEvicted),
            static_cast<unsigned long long>(ns.synExpired),
            static_cast<unsigned long long>(ns.timeWaitReused),
            static_cast<unsigned long long>(ns.closingReused), client->stack().timeWaitCount(),
            static_cast<unsigned long long>(ns.timeWaitEvicted));
    if (const vt::tls::TlsContext* tls = client->tlsContext(); tls != nullptr) {
      VT_INFO("stopping: tls %llu handshakes, %llu resumed, %llu tickets received",
              static_cast<unsigned long long>(tls->stats().handshakes),
              static_cast<unsigned long long>(tls->stats().resumed),
              static_cast<unsigned long long>(tls->stats().ticketsReceived));
    }
    if (const vt::client::ConnectionPool* pool = client->pool(); pool != nullptr) {
      const vt::client::ConnectionPoolStats& ps = pool->stats();
      VT_INFO("stopping: pool %llu flows on reused connections, %llu connections released, "
              "%llu expired idle, %llu closed by the server while idle, %llu over max_idle",
              static_cast<unsigned long long>(ps.reused),
              static_cast<unsigned long long>(ps.released),
              static_cast<unsigned long long>(ps.expired),
              static_cast<unsigned long long>(ps.serverClosed),
              static_cast<unsigned long long>(ps.overflow));
    }
    if (const vt::client::MuxPool* mux = client->mux(); mux != nullptr) {
      const vt::client::MuxPoolStats& ms = mux->stats();
      VT_INFO("stopping: mux %llu streams on %llu connections (%llu lost, %llu of them failed "
              "dials; %llu closed idle), at most %llu streams on %llu connections, %zu "
              "connections now",
              static_cast<unsigned long long>(ms.streamsOpened),
              static_cast<unsigned long long>(ms.connectionsOpened),
              static_cast<unsigned long long>(ms.connectionsLost),
              static_cast<unsigned long long>(ms.dialsFailed),
              static_cast<unsigned long long>(ms.connectionsIdled),
              static_cast<unsigned long long>(ms.maxStreams),
              static_cast<unsigned long long>(ms.maxConnections), mux->connections());
    }
    client->stop();  // resets every flow: the RSTs go out through the pump now
    // After stop(): the UDP sessions it closed have added their drops.
    VT_INFO("stopping: udp %llu sessions (%llu evicted, %llu channels evicted), up %llu/%llu B, "
            "down %llu/%llu B, drops %llu (%llu while pausing after a failed channel); dns %llu "
            "hijacked (%llu tcp), %llu cache hits, %llu answers not cached (no matching query)",
            static_cast<unsigned long long>(cs.udpSessionsOpened),
            static_cast<unsigned long long>(cs.udpEvicted),
            static_cast<unsigned long long>(cs.udpChannelsEvicted),
            static_cast<unsigned long long>(cs.udpDatagramsUp),
            static_cast<unsigned long long>(cs.udpBytesUp),
            static_cast<unsigned long long>(cs.udpDatagramsDown),
            static_cast<unsigned long long>(cs.udpBytesDown),
            static_cast<unsigned long long>(cs.udpDrops),
            static_cast<unsigned long long>(cs.udpBackoffDrops),
            static_cast<unsigned long long>(cs.dnsHijacked),
            static_cast<unsigned long long>(cs.dnsTcpHijacked),
            static_cast<unsigned long long>(cs.dnsCacheHits),
            static_cast<unsigned long long>(cs.dnsUnmatched));
    if (const vt::client::IpTunnel* ip = client->ipTunnel(); ip != nullptr) {
      const vt::client::IpTunnelStats& is = ip->stats();
      VT_INFO("stopping: ip (CmdIP) up %llu packets/%llu B, down %llu packets/%llu B, drops %llu "
              "(queue full %llu, congested %llu, too big %llu, at stop %llu, invalid from the "
              "server %llu, not routable %llu, ipv6 refused %llu), %llu dials (%llu reconnects, "
              "%llu failed, %llu lost, %llu protocol errors), %llu passthrough packets",
              static_cast<unsigned long long>(is.packetsUp),
              static_cast<unsigned long long>(is.bytesUp),
              static_cast<unsigned long long>(is.packetsDown),
              static_cast<unsigned long long>(is.bytesDown),
              static_cast<unsigned long long>(is.drops() + cs.ipNotRoutable + cs.ipRefusedV6),
              static_cast<unsigned long long>(is.dropQueueFull),
              static_cast<unsigned long long>(is.dropCongested),
              static_cast<unsigned long long>(is.dropTooBig),
              static_cast<unsigned long long>(is.dropStopped),
              static_cast<unsigned long long>(is.dropInvalidDown),
              static_cast<unsigned long long>(cs.ipNotRoutable),
              static_cast<unsigned long long>(cs.ipRefusedV6),
              static_cast<unsigned long long>(is.dials),
              static_cast<unsigned long long>(is.reconnects),
              static_cast<unsigned long long>(is.connectFailed),
              static_cast<unsigned long long>(is.lost),
              static_cast<unsigned long long>(is.protocolErrors),
              static_cast<unsigned long long>(client->stack().stats().passthrough));
    } else {
      VT_INFO("stopping: ip (CmdIP) off (%s): %llu packets of other protocols dropped",
              cfg.server.version == 0 ? "server.version = 0" : "ip.enabled = false",
              static_cast<unsigned long long>(client->stack().stats().otherDropped));
    }
    pump->stop();
    if (routes) {
      if (vt::Status st = routes->restore(); !st.ok()) {
        VT_ERROR("auto_route: restoring: %s", st.error().message.c_str());
      }
    }
    // Watchers are destroyed outside their own callback.
    loop.post([&] {
      sigint.reset();
      sigterm.reset();
      loop.stop();
    });
  };
  // Installed before the routes: a signal from here on is delivered by the
  // loop and restores them.
  sigint = std::make_unique<vt::event::SignalWatcher>(loop, SIGINT, onStop);
  sigterm = std::make_unique<vt::event::SignalWatcher>(loop, SIGTERM, onStop);
  int exit_code = 0;
  pump->onFatalError([&](const std::string&) {
    exit_code = 1;
    onStop();
  });

  // Routes go in once the TUN is up and every outbound socket is marked
  // (the config sets server.fwmark to the route fwmark). The destructor
  // restores them on every exit path from here on.
  if (cfg.route.auto_route) {
    if (tun->name().empty()) {
      VT_ERROR("auto_route needs the TUN's name; the adopted fd %d has none", *cfg.tun.fd);
      return 1;
    }
    routes = std::make_unique<vt::platform::RouteManager>(
        vt::engine::routeOptions(cfg, tun->name(), tun->ifindex()));
    if (vt::Status st = routes->apply(); !st.ok()) {
      VT_ERROR("auto_route: %s", st.error().message.c_str());
      return 1;
    }
  }

  std::string tun_name = tun->name().empty() ? "fd " + std::to_string(*cfg.tun.fd) : tun->name();
  VT_INFO("vless-tun started: tun %s mtu %u, server %s (v%u, %s)", tun_name.c_str(),
          static_cast<unsigned>(cfg.tun.mtu), cfg.server.address.toString().c_str(),
          static_cast<unsigned>(cfg.server.version), cfg.server.tls ? "tls" : "plain");
  if (!cfg.server.tls) {
    const vt::config::HostPort& a = cfg.server.address;
    auto ip = a.is_ip ? vt::event::SocketAddress::parseIp(a.host, a.port) : std::nullopt;
    if (!(ip && ip->isLoopback()) && a.host != "localhost") {
      VT_WARN("server %s WITHOUT TLS (server.tls = false): the UUID and all traffic cross the "
              "network in clear",
              a.toString().c_str());
    }
  }
  loop.run();
  routes.reset();
  sigint.reset();
  sigterm.reset();
  VT_INFO("stopped");
  return exit_code;
}
