#include "engine/engine.h"

#include <algorithm>
#include <cerrno>
#include <deque>
#include <chrono>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#ifdef __linux__
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>
#endif

#include "client/client.h"
#include "client/connection_pool.h"
#include "client/dialled_ips.h"
#include "client/dns_cache.h"
#include "client/dns_names.h"
#include "client/ip_tunnel.h"
#include "client/mux_pool.h"
#include "client/packet_sink.h"
#include "client/tcp_session.h"
#include "client/tls_options.h"
#include "client/tun_pump.h"
#include "client/udp_session.h"
#include "engine/engine_running.h"
#include "engine/route_options.h"
#include "engine/stats_json.h"
#include "engine/worker.h"
#include "event/loop.h"
#include "event/fd_watcher.h"
#include "event/signal_watcher.h"
#include "event/timer.h"
#include "netstack/lwip_lock.h"
#include "network_monitor.h"
#include "route_manager.h"
#include "tls/tls_engine.h"
#include "tun_device.h"

namespace vt::engine {

namespace {

constexpr size_t kInBatch = 256;   // queued packets fed to the stack per wakeup
constexpr uint64_t kStatsWaitMs = 1000;

#ifdef __linux__
// An fd the core can read packets from: open, a character device, and (if
// the kernel answers) a TUN in IFF_TUN mode without packet information.
Status checkTunFd(int fd) {
  struct stat st{};
  if (fcntl(fd, F_GETFL) < 0 || fstat(fd, &st) != 0) {
    return Error(Errc::kIo, "tun fd " + std::to_string(fd) + ": not an open fd (" +
                                std::strerror(errno) + ")");
  }
  if (!S_ISCHR(st.st_mode)) {
    return Error(Errc::kIo, "tun fd " + std::to_string(fd) +
                                ": not a TUN device (not a character device)");
  }
  ifreq ifr{};
  if (ioctl(fd, TUNGETIFF, &ifr) != 0) {
    int err = errno;
    // A sandbox may refuse the ioctl; anything else is not a TUN.
    if (err == EACCES || err == EPERM) return Status::okStatus();
    return Error(Errc::kIo, "tun fd " + std::to_string(fd) + ": not a TUN device (TUNGETIFF: " +
                                std::strerror(err) + ")");
  }
  if ((ifr.ifr_flags & IFF_TUN) == 0) {
    return Error(Errc::kIo, "tun fd " + std::to_string(fd) + ": a TAP device, not a TUN");
  }
  if ((ifr.ifr_flags & IFF_NO_PI) == 0) {
    return Error(Errc::kIo, "tun fd " + std::to_string(fd) +
                                ": opened without IFF_NO_PI (packets would carry a 4-byte header)");
  }
  return Status::okStatus();
}
#endif

}  // namespace


namespace {
constexpr uint64_t kNetSettleMs = 300;
}

void Engine::Running::networkChangeSeen(uint64_t delayMs) {
  if (stopping || netTimer == nullptr) return;
  // The first change arms the timer; later ones within the window join it
  // (an uplink move is a burst: address gone, routes gone, link, new ones).
  if (netTimerArmed && delayMs > 0) return;
  netTimerArmed = true;
  netTimer->start(delayMs, [this] {
    netTimerArmed = false;
    handleNetworkChange();
  });
}

void Engine::Running::handleNetworkChange() {
  if (stopping) return;
  VT_INFO("network change seen: %s", netWhy.c_str());
  std::vector<std::string> addrs = platform::usableAddresses(tunIfindex);
  if (routes) {
    auto changed = routes->refresh();
    if (!changed.ok()) VT_ERROR("auto_route: network changed: %s", changed.error().message.c_str());
  }
  for (size_t i = 1; i < workers.size(); ++i) workers[i]->requestNetworkChange(addrs);
  client->networkChanged(&addrs);
}

std::vector<const client::Client*> Engine::Running::clients() const {
  std::vector<const client::Client*> out;
  if (workers.empty()) {
    if (client) out.push_back(client.get());
    return out;
  }
  for (const auto& w : workers) out.push_back(w->client);
  return out;
}

std::vector<const client::TunPumpStats*> Engine::Running::pumpStats() const {
  std::vector<const client::TunPumpStats*> out;
  for (const auto& w : workers) {
    if (w->pump != nullptr) out.push_back(&w->pump->stats());
  }
  return out;
}

bool parseNameservers(const std::string& text, std::vector<event::SocketAddress>& out,
                      std::string& bad) {
  out.clear();
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find(',', pos);
    if (end == std::string::npos) end = text.size();
    std::string item = text.substr(pos, end - pos);
    while (!item.empty() && item.front() == ' ') item.erase(item.begin());
    while (!item.empty() && item.back() == ' ') item.pop_back();
    auto a = event::SocketAddress::parseIp(item, 53);
    if (!a) {
      bad = item;
      return false;
    }
    out.push_back(*a);
    pos = end + 1;
  }
  return !out.empty();
}

Engine::Engine(EngineOptions opts) : opts_(std::move(opts)) {}

Engine::~Engine() = default;

Result<std::unique_ptr<Engine>> Engine::create(EngineOptions opts) {
  switch (opts.mode) {
    case TunMode::kCallbacks:
      if (!opts.packetOut) {
        return Error(Errc::kConfig, "callback mode (no tun fd) needs a packet_out callback");
      }
      break;
    case TunMode::kFd:
      if (opts.tunFd < 0) return Error(Errc::kConfig, "tun fd " + std::to_string(opts.tunFd) + ": not an fd");
#ifdef __linux__
      if (Status st = checkTunFd(opts.tunFd); !st.ok()) return st.error();
#endif
      break;
    case TunMode::kCreate:
#ifndef __linux__
      return Error(Errc::kConfig, "creating a TUN is only supported on Linux; pass an fd");
#endif
      break;
  }
  if (opts.inputQueuePackets == 0) opts.inputQueuePackets = 512;
  if (opts.inputQueueBytes == 0) opts.inputQueueBytes = 1 << 20;
  if (opts.inputQueueBytes < 65535) opts.inputQueueBytes = 65535;  // one packet always fits
  // What Client::create would refuse later: the TLS context (CA file).
  if (opts.cfg.server.tls) {
    auto ctx = tls::TlsContext::create(client::clientTlsOptions(opts.cfg.server));
    if (!ctx.ok()) return Error(ctx.error().code, "server.ca: " + ctx.error().message);
  }
  return std::unique_ptr<Engine>(new Engine(std::move(opts)));
}

bool Engine::running() const {
  std::lock_guard<std::mutex> lk(mu_);
  return state_ == State::kRunning;
}

void Engine::setError(std::string message) {
  std::lock_guard<std::mutex> lk(mu_);
  lastError_ = std::move(message);
}

std::string Engine::lastError() const {
  std::lock_guard<std::mutex> lk(mu_);
  return lastError_;
}

void Engine::stop() {
  std::lock_guard<std::mutex> lk(mu_);
  stopRequested_ = true;
  if (async_ != nullptr) uv_async_send(async_);
}

void Engine::networkChanged(std::optional<std::string> ifname) {
  std::lock_guard<std::mutex> lk(mu_);
  (void)ifname;  // the interface is for the log; the client re-dials whatever the routes say
  networkChangeRequested_ = true;
  if (async_ != nullptr) uv_async_send(async_);
}

int Engine::input(const uint8_t* const* packets, const size_t* lengths, size_t count) {
  std::lock_guard<std::mutex> lk(mu_);
  if (stopRequested_ || state_ == State::kDone) return -1;
  size_t taken = 0;
  for (; taken < count; ++taken) {
    size_t len = lengths[taken];
    if (inQueue_.size() >= opts_.inputQueuePackets || inBytes_ + len > opts_.inputQueueBytes) {
      inRefused_ = true;
      break;
    }
    inQueue_.emplace_back(packets[taken], packets[taken] + len);
    inBytes_ += len;
  }
  if (taken > 0 && async_ != nullptr) uv_async_send(async_);
  return static_cast<int>(taken);
}

RunResult Engine::run() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (state_ != State::kCreated) return RunResult::kBadState;
    state_ = State::kRunning;
    runThread_ = std::this_thread::get_id();
  }
  LogScope scope(&opts_.log);
  RunResult r = runImpl();
  std::lock_guard<std::mutex> lk(mu_);
  state_ = State::kDone;
  runThread_ = {};
  inQueue_.clear();
  inBytes_ = 0;
  // Anyone still waiting for stats gets the last snapshot.
  statsServed_ = statsWanted_;
  statsCv_.notify_all();
  return r;
}

void Engine::Running::shutdown() {
  if (stopping) return;
  stopping = true;
  // Callers may be inside a NetStack callback (a TUN read error): parking
  // the other workers from there could wait on a worker waiting for the
  // lwIP lock.
  loop.post([this] { finishShutdown(); });
}

void Engine::Running::finishShutdown() {
  parkWorkers(workers, true);
  logStopStats(clients(), pumpStats());
  parkWorkers(workers, false);
  for (size_t i = 1; i < workers.size(); ++i) workers[i]->requestStop();
  client->stop();  // resets every flow: the RSTs go out through the TUN now
  if (!workers.empty()) {
    workers[0]->stopped = true;
    workers[0]->closeInbox();
  }
  if (sink) sink->flush();
  if (pump) pump->stop();
  if (routes) {
    if (Status st = routes->restore(); !st.ok()) {
      VT_ERROR("auto_route: restoring: %s", st.error().message.c_str());
    }
  }
  if (netTimer) netTimer->stop();
  if (monitorWatch) monitorWatch->stop();
  // Watchers are closed outside their own callbacks.
  loop.post([this] {
    sigint.reset();
    sigterm.reset();
    sighup.reset();
    control.reset();
    loop.stop();
  });
}

RunResult Engine::runImpl() {
  const config::ClientConfig& cfg = opts_.cfg;
  Running r(*this);
  running_ = &r;
  struct ClearRunning {
    Engine* e;
    ~ClearRunning() { e->running_ = nullptr; }
  } clear_running{this};

  const bool autoRoute = opts_.autoRoute && cfg.route.auto_route && opts_.mode != TunMode::kCallbacks;
  // auto_route: undo what a crashed earlier run left behind before touching
  // anything (the state file is named after the TUN).
  // The control socket first: a second instance configured with the same
  // socket stops here, before it touches the first one's TUN or routes.
  if (Status st = openControl(r); !st.ok()) {
    VT_ERROR("%s", st.error().message.c_str());
    setError(st.error().message);
    return RunResult::kStartFailed;
  }
  if (autoRoute && opts_.mode == TunMode::kCreate) {
    platform::RouteManager probe(routeOptions(cfg, cfg.tun.name, 0));
    if (Status st = platform::RouteManager::recover(probe.stateFile()); !st.ok()) {
      VT_WARN("auto_route: recovering %s: %s", probe.stateFile().c_str(),
              st.error().message.c_str());
    }
  }

  auto fail = [&](std::string msg) {
    VT_ERROR("%s", msg.c_str());
    setError(std::move(msg));
    return RunResult::kStartFailed;
  };

  // Workers: only a TUN created here gets several queues.
  size_t nWorkers = 1;
  if (opts_.mode == TunMode::kCreate) {
    nWorkers = config::effectiveWorkers(cfg.tun.workers);
  } else if (cfg.tun.workers > 1) {
    VT_INFO("tun.workers = %u: %s runs one worker (only a TUN vless-tun creates has several "
            "queues)",
            static_cast<unsigned>(cfg.tun.workers),
            opts_.mode == TunMode::kFd ? "an adopted TUN fd" : "packet callback mode");
  }
  // Each worker gets its share of the process-wide limits.
  config::ClientConfig wcfg = cfg;
  if (nWorkers > 1) {
    auto share = [nWorkers](uint64_t total, uint64_t floor) {
      return std::max<uint64_t>(floor, (total + nWorkers - 1) / nWorkers);
    };
    wcfg.limits.max_flows = static_cast<uint32_t>(share(cfg.limits.max_flows, 1));
    wcfg.limits.buffer_budget_bytes = share(cfg.limits.buffer_budget_bytes, 1 << 20);
    wcfg.udp.max_sessions = static_cast<uint32_t>(share(cfg.udp.max_sessions, 1));
  }

  if (opts_.mode == TunMode::kFd) {
    auto t = platform::TunDevice::adopt(opts_.tunFd);
    if (!t.ok()) return fail("cannot adopt the TUN fd " + std::to_string(opts_.tunFd) + ": " + t.error().message);
    r.tun = std::move(t).value();
    r.tunName = r.tun->name().empty() ? "fd " + std::to_string(opts_.tunFd) : r.tun->name();
  } else if (opts_.mode == TunMode::kCreate) {
    platform::TunConfig tc;
    tc.name = cfg.tun.name;
    tc.mtu = cfg.tun.mtu;
    tc.queues = static_cast<uint32_t>(nWorkers);
    tc.offload = cfg.tun.offload && cfg.ip.passthrough.empty();
    if (cfg.tun.ipv4) {
      tc.ipv4 = cfg.tun.ipv4->address;
      tc.ipv4Prefix = cfg.tun.ipv4->prefix;
    }
    if (cfg.tun.ipv6) {
      tc.ipv6 = cfg.tun.ipv6->address;
      tc.ipv6Prefix = cfg.tun.ipv6->prefix;
    }
    auto t = platform::TunDevice::create(tc);
    if (!t.ok()) {
      return fail("cannot create the TUN device " + cfg.tun.name +
                  " (vless-tun needs root or CAP_NET_ADMIN): " + t.error().message);
    }
    r.tun = std::move(t).value();
    r.tunName = r.tun->name();
  } else {
    r.tunName = "callbacks";
  }

  for (size_t i = 0; i < nWorkers; ++i) {
    r.workers.push_back(std::make_unique<Worker>());
    r.workers.back()->index = i;
  }
  // One DNS cache for all workers: an answer learnt on one worker's flow
  // serves a query read on another queue.
  std::shared_ptr<client::DnsCache> sharedDns;
  if (nWorkers > 1 && cfg.dns.cache_size > 0) {
    sharedDns = std::make_shared<client::DnsCache>(cfg.dns.cache_size);
  }
  // Likewise the names the answers taught, for rules by domain.
  std::shared_ptr<client::DnsNames> sharedNames;
  std::shared_ptr<client::DialledIps> sharedDialled;
  if (nWorkers > 1 && cfg.route.rules.set != nullptr) {
    if (cfg.route.rules.set->usesDomains() || cfg.route.rules.dial_by_name) {
      sharedNames = std::make_shared<client::DnsNames>(client::Client::kDnsNamesCapacity);
    }
    if (cfg.route.rules.dial_by_name && cfg.route.rules.geoip != nullptr) {
      sharedDialled = std::make_shared<client::DialledIps>(client::Client::kDnsNamesCapacity,
                                                          cfg.route.rules.want_ip_ttl_ms);
    }
  }
  auto makeHooks = [&](size_t i) {
    client::ClientHooks hooks;
    hooks.dnsNames = sharedNames;
    hooks.dialledIps = sharedDialled;
    hooks.protect = opts_.protect;
    hooks.nameservers = opts_.nameservers;
    hooks.dnsCache = sharedDns;
    hooks.idFirst = i + 1;
    hooks.idStride = nWorkers;
    // A UDP session lives on its app endpoint's home worker (full cone
    // across queues), CmdIP on worker 0: the others hand over a copy.
    if (nWorkers > 1) addHandOverHooks(hooks, r.workers, r.udpHomes, i);
    return hooks;
  };
  auto created = client::Client::create(r.loop, wcfg, makeHooks(0));
  if (!created.ok()) return fail(created.error().message);
  r.client = std::move(created).value();
  struct SinkGuard {  // the client outlives the pump and the sink
    client::Client* c;
    ~SinkGuard() { c->setPacketSink(nullptr); }
  } sink_guard{r.client.get()};
  r.workers[0]->loop = &r.loop;
  r.workers[0]->client = r.client.get();
  if (r.tun) {
    r.pump = std::make_unique<client::TunPump>(r.loop, r.tun->fd(), r.client->stack(), cfg.tun.mtu,
                                               r.tun->vnetHeader());
    // GSO writes (NetStack::setGsoOutput) stay off: under loss between the
    // app and the TUN they stalled a download (docs/netstack.md "TUN offload").
    r.client->setPacketSink(r.pump.get());
    if (Status st = r.pump->start(); !st.ok()) return fail(st.error().message);
    r.pump->onFatalError([&r](const std::string& why) {
      r.engine.setError("the TUN failed: " + why);
      r.result = RunResult::kFatal;
      r.shutdown();
    });
    r.workers[0]->pump = r.pump.get();
    for (size_t i = 1; i < nWorkers; ++i) {
      Worker& w = *r.workers[i];
      w.ownLoop = std::make_unique<event::Loop>();
      w.loop = w.ownLoop.get();
      auto c = client::Client::create(*w.loop, wcfg, makeHooks(i));
      if (!c.ok()) return fail(c.error().message);
      w.ownClient = std::move(c).value();
      w.client = w.ownClient.get();
      w.ownPump = std::make_unique<client::TunPump>(*w.loop, r.tun->queueFd(i), w.client->stack(),
                                                     cfg.tun.mtu, r.tun->vnetHeader());
      w.pump = w.ownPump.get();
      w.client->setPacketSink(w.pump);
      if (Status st = w.pump->start(); !st.ok()) return fail(st.error().message);
      w.pump->onFatalError([this, i](const std::string& why) {
        setError("the TUN failed (queue " + std::to_string(i) + "): " + why);
        workerFailed_ = true;
        stop();
      });
    }
  } else {
    r.sink = std::make_unique<CallbackSink>(r.loop, opts_);
    r.client->setPacketSink(r.sink.get());
  }
  for (auto& w : r.workers) {
    w->client->start();
    w->openInbox();
  }

  // Cross-thread requests: stop, packets, stats, network changes.
  r.async = new uv_async_t;
  r.async->data = this;
  uv_async_init(r.loop.raw(), r.async, [](uv_async_t* a) { static_cast<Engine*>(a->data)->onAsync(); });
  struct AsyncCloser {
    uv_async_t*& a;
    ~AsyncCloser() {
      uv_close(reinterpret_cast<uv_handle_t*>(a), [](uv_handle_t* h) { delete reinterpret_cast<uv_async_t*>(h); });
      a = nullptr;
    }
  };
  {
    std::lock_guard<std::mutex> lk(mu_);
    async_ = r.async;
    // Whatever came before run (a stop, queued packets) is handled now.
    uv_async_send(async_);
  }
  AsyncCloser async_closer{r.async};
  struct AsyncUnpublish {
    Engine* e;
    ~AsyncUnpublish() {
      std::lock_guard<std::mutex> lk(e->mu_);
      e->async_ = nullptr;
    }
  } async_unpublish{this};  // destroyed before the closer

  if (opts_.handleSignals) {
    // Installed before the routes: a signal from here on is delivered by
    // the loop and restores them.
    r.sigint = std::make_unique<event::SignalWatcher>(r.loop, SIGINT, [&r] { r.shutdown(); });
    r.sigterm = std::make_unique<event::SignalWatcher>(r.loop, SIGTERM, [&r] { r.shutdown(); });
    if (!opts_.configPath.empty()) {
      r.sighup = std::make_unique<event::SignalWatcher>(r.loop, SIGHUP, [this, &r] { reload(r); });
    }
  }

  // Routes go in once the TUN is up and every outbound socket is marked
  // (the config sets server.fwmark to the route fwmark). Restored on every
  // exit path from here on.
  if (autoRoute) {
    if (r.tun->name().empty()) {
      r.client->stop();
      return fail("auto_route needs the TUN's name; the adopted fd " + std::to_string(opts_.tunFd) +
                  " has none");
    }
    r.routes = std::make_unique<platform::RouteManager>(
        routeOptions(cfg, r.tun->name(), r.tun->ifindex()));
    if (Status st = r.routes->apply(); !st.ok()) {
      r.client->stop();
      return fail("auto_route: " + st.error().message);
    }
  }

  r.tunIfindex = r.tun ? r.tun->ifindex() : 0;
  r.netTimer = std::make_unique<event::Timer>(r.loop);
  {
    auto m = platform::NetworkMonitor::open(r.tunIfindex, autoRoute ? cfg.route.table : 0);
    if (m.ok()) {
      r.monitor = std::move(m).value();
      r.monitorWatch = std::make_unique<event::FdWatcher>(r.loop, r.monitor->fd());
      r.monitorWatch->onReadable([&r] {
        std::string why;
        if (r.monitor->drain(&why)) {
          if (!r.netTimerArmed) r.netWhy = why;
          r.networkChangeSeen(kNetSettleMs);
        }
      });
    } else {
      // A sandbox (Android apps) may refuse rtnetlink: the embedder calls
      // vless_tun_network_changed instead.
      VT_INFO("network changes: not following rtnetlink (%s); vless_tun_network_changed() still "
              "works",
              m.error().message.c_str());
    }
  }
  VT_INFO("vless-tun started: tun %s mtu %u%s, server %s (v%u, %s)", r.tunName.c_str(),
          static_cast<unsigned>(cfg.tun.mtu),
          r.tun && r.tun->vnetHeader() ? " offload tso" : "",
          cfg.server.address.toString().c_str(),
          static_cast<unsigned>(cfg.server.version), cfg.server.tls ? "tls" : "plain");
  if (cfg.route.rules.set != nullptr) {
    VT_INFO("routing: %zu rules, default %s (direct sockets carry fwmark %u%s)",
            cfg.route.rules.count, cfg.route.rules.default_action.c_str(), cfg.server.fwmark,
            opts_.protect ? " and go through protect()" : "");
    if (cfg.server.fwmark == 0 && !opts_.protect && !cfg.route.auto_route) {
      VT_WARN("routing: direct rules without server.fwmark or auto_route: direct sockets follow "
              "the main table, which may send them back into the TUN");
    }
  }
  if (!cfg.server.tls) {
    const config::HostPort& a = cfg.server.address;
    auto ip = a.is_ip ? event::SocketAddress::parseIp(a.host, a.port) : std::nullopt;
    if (!(ip && ip->isLoopback()) && a.host != "localhost") {
      VT_WARN("server %s WITHOUT TLS (server.tls = false): the UUID and all traffic cross the "
              "network in clear",
              a.toString().c_str());
    }
  }
  if (nWorkers > 1) {
    VT_INFO("workers: %zu (tun.workers = %u), each with its own TUN queue, netstack and server "
            "connections",
            nWorkers, static_cast<unsigned>(cfg.tun.workers));
  }
  for (size_t i = 1; i < nWorkers; ++i) r.workers[i]->startThread(&opts_.log);
  startedAtMs_ = r.loop.now();
  if (opts_.onStarted) opts_.onStarted();
  r.loop.run();
  for (size_t i = 1; i < r.workers.size(); ++i) {
    if (r.workers[i]->thread.joinable()) r.workers[i]->thread.join();
  }
  if (r.stopping) logStopStatsAfter(r.clients());
  if (workerFailed_) r.result = RunResult::kFatal;
  r.monitorWatch.reset();
  r.monitor.reset();
  r.netTimer.reset();
  r.routes.reset();
  r.sigint.reset();
  r.sigterm.reset();
  r.sighup.reset();
  r.control.reset();
  {
    std::lock_guard<std::mutex> lk(mu_);
    finalStats_ = true;  // the last snapshot, kept for after run
  }
  publishStats(buildStats(&r));
  flushFlowLog();
  VT_INFO("stopped");
  return r.result;
}

void Engine::onAsync() {
  Running* r = running_;
  if (r == nullptr) return;
  bool stop = false, netChange = false, stats = false;
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop = stopRequested_;
    netChange = std::exchange(networkChangeRequested_, false);
    stats = statsWanted_ > statsServed_;
  }
  if (stats) publishStats(buildStats(r));
  if (stop) {
    r->shutdown();
    return;
  }
  if (netChange) {
    r->netWhy = "the embedder said so (vless_tun_network_changed)";
    r->networkChangeSeen(0);
  }
  drainInput(*r);
}

void Engine::drainInput(Running& r) {
  if (r.stopping) return;
  std::deque<std::vector<uint8_t>> batch;
  bool more = false, ready = false;
  {
    std::lock_guard<std::mutex> lk(mu_);
    for (size_t i = 0; i < kInBatch && !inQueue_.empty(); ++i) {
      inBytes_ -= inQueue_.front().size();
      batch.push_back(std::move(inQueue_.front()));
      inQueue_.pop_front();
    }
    more = !inQueue_.empty();
    if (inRefused_ && inQueue_.size() <= opts_.inputQueuePackets / 2 &&
        inBytes_ <= opts_.inputQueueBytes / 2) {
      inRefused_ = false;
      ready = true;
    }
  }
  netstack::NetStack::InputBatch acks(r.client->stack());
  for (auto& p : batch) {
    ++r.inputPackets;
    r.inputBytes += p.size();
    r.client->stack().input(p.data(), p.size());
    if (r.stopping) return;
  }
  if (more) {
    // Fair to the sockets: the rest on the next iteration.
    uv_async_send(r.async);
  }
  if (ready && opts_.inputReady) opts_.inputReady();
}

void Engine::publishStats(std::string json) {
  std::lock_guard<std::mutex> lk(mu_);
  statsSnapshot_ = std::move(json);
  statsServed_ = statsWanted_;
  statsCv_.notify_all();
}

std::string Engine::statsJson() {
  std::unique_lock<std::mutex> lk(mu_);
  if (state_ == State::kRunning && async_ != nullptr) {
    if (std::this_thread::get_id() == runThread_) {
      // Called on the core's thread from inside a NetStack callback (a log
      // sink, say): the other workers cannot be parked from there (one may
      // be waiting for the lwIP lock this thread holds). The last snapshot.
      if (running_ != nullptr && running_->workers.size() > 1 &&
          netstack::LwipLock::heldByThisThread()) {
        return statsSnapshot_.empty() ? std::string("{\"state\":\"running\"}") : statsSnapshot_;
      }
      lk.unlock();
      return buildStats(running_);
    }
    uint64_t want = ++statsWanted_;
    uv_async_send(async_);
    statsCv_.wait_for(lk, std::chrono::milliseconds(kStatsWaitMs),
                      [&] { return statsServed_ >= want; });
  }
  if (statsSnapshot_.empty()) {
    lk.unlock();
    return buildStats(nullptr);
  }
  return statsSnapshot_;
}

void Engine::fillStatsInput(Running* r, StatsInput& in) const {
  {
    std::lock_guard<std::mutex> lk(mu_);
    in.state = state_ == State::kCreated ? "created" : state_ == State::kRunning ? "running" : "stopped";
    if (stopRequested_ && state_ == State::kRunning) in.state = "stopping";
    if (finalStats_) in.state = "stopped";
    in.inputQueued = inQueue_.size();
    in.inputQueuedBytes = inBytes_;
  }
  in.mode = opts_.mode == TunMode::kCallbacks ? "callbacks" : opts_.mode == TunMode::kFd ? "fd" : "created";
  in.cfg = &opts_.cfg;
  if (r != nullptr && r->client != nullptr) {
    if (r->stopping && in.state == "running") in.state = "stopping";
    in.clients = r->clients();
    in.nowMs = r->loop.now();
    in.uptimeMs = r->loop.now() - startedAtMs_;
    in.tunName = r->tunName;
    if (r->pump) {
      in.pumps = r->pumpStats();
    } else if (r->sink) {
      in.packetsIn = r->inputPackets;
      in.bytesIn = r->inputBytes;
      in.packetsOut = r->sink->packetsOut;
      in.bytesOut = r->sink->bytesOut;
    }
  }
}

std::string Engine::buildStats(Running* r) const {
  StatsInput in;
  fillStatsInput(r, in);
  if (in.clients.empty()) return buildStatsJson(in);
  // The other workers hold still while their state is read.
  parkWorkers(r->workers, true);
  std::string json = buildStatsJson(in);
  parkWorkers(r->workers, false);
  return json;
}

}  // namespace vt::engine
