// Engine: one client core (the C API's vless_tun, and what vless-tun's main
// runs): a loop, the Client and its NetStack, the TUN (an fd it created or
// adopted, or packet callbacks) and, on Linux, auto_route.
//
// Threads: create() and the destructor on any thread; run() on the thread
// that is to carry the core (it builds, runs and tears down the loop and
// everything on it there); stop(), input(), networkChanged(), statsJson()
// and lastError() on any thread. Every callback runs on the run() thread.
// The thread inside run() logs through opts.log at opts.logLevel (a
// LogScope), so two engines in one process keep their lines apart.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "config/client_config.h"
#include "core/error.h"
#include "core/log.h"
#include "event/socket_address.h"

struct uv_async_s;

namespace vt::engine {

enum class TunMode {
  kCallbacks,  // packets through packetOut / input()
  kFd,         // an open TUN fd (dup'ed)
  kCreate,     // create the TUN of cfg.tun (Linux, CAP_NET_ADMIN)
};

struct EngineOptions {
  config::ClientConfig cfg;
  TunMode mode = TunMode::kCallbacks;
  int tunFd = -1;          // kFd
  bool autoRoute = false;  // honour cfg.route.auto_route (kCreate, or kFd with a named TUN)
  bool handleSignals = false;  // SIGINT/SIGTERM stop the engine (the vless-tun program)
  // With handleSignals: SIGHUP re-reads this file and applies what a
  // running core can (docs/client.md "Reload"). Empty: SIGHUP not handled.
  std::string configPath;
  // kCallbacks: a batch of packets for the TUN (valid during the call).
  std::function<void(const uint8_t* const* packets, const size_t* lengths, size_t count)> packetOut;
  // kCallbacks: room in the input queue again after input() refused one.
  std::function<void()> inputReady;
  // Every socket towards the network, before it connects (false: fail it).
  std::function<bool(int fd)> protect;
  // The run() thread's log lines (fn null: stderr) and level.
  LogSink log;
  std::vector<event::SocketAddress> nameservers;
  // The operator's control socket (docs/operations.md "Control socket"):
  // stats, status, close a flow, the log level. Empty: none.
  std::string controlSocket;
  std::string controlGroup;  // empty: mode 0600; else 0660 with this group
  // On the run() thread once the core carries traffic (the TUN, routes and
  // control socket are up), before the loop runs: the readiness signal.
  std::function<void()> onStarted;
  size_t inputQueuePackets = 512;
  size_t inputQueueBytes = 1 << 20;
};

struct StatsInput;  // stats_json.h

// What run() returns.
enum class RunResult { kStopped, kStartFailed, kFatal, kBadState };

class Engine {
 public:
  // Checks what can be checked without running: the TUN fd (open, a TUN),
  // the TLS context (loads the CA file). Errors: Errc::kConfig for the
  // options, kIo for the fd, the TLS context's own code.
  static Result<std::unique_ptr<Engine>> create(EngineOptions opts);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Blocks until stop() (or a fatal TUN error). Once per engine.
  RunResult run();
  // Any thread, idempotent, also before run().
  void stop();
  bool running() const;

  // kCallbacks: copies up to `count` packets into the bounded input queue;
  // returns how many were taken (0: full, inputReady follows), or -1 when
  // stopping/stopped. Any thread.
  int input(const uint8_t* const* packets, const size_t* lengths, size_t count);
  // Any thread: the network under the tunnel changed (Client::networkChanged).
  void networkChanged(std::optional<std::string> ifname);
  // Any thread: the state as JSON (docs/embedding.md).
  std::string statsJson();
  std::string lastError() const;

  const EngineOptions& options() const { return opts_; }

 private:
  struct Running;  // everything that lives on the loop, built in run()
  explicit Engine(EngineOptions opts);
  RunResult runImpl();
  void setError(std::string message);
  void onAsync();  // loop thread: drain the cross-thread requests
  void drainInput(Running& r);
  std::string buildStats(Running* r) const;
  // buildStats' input; the caller parks the other workers while it is used.
  void fillStatsInput(Running* r, StatsInput& in) const;
  // engine_control.cc: the control socket's requests, on the loop thread.
  Status openControl(Running& r);
  std::string onControl(Running& r, const std::string& line);
  // SIGHUP: the config file again (engine_control.cc).
  void reload(Running& r);
  void publishStats(std::string json);

  EngineOptions opts_;

  mutable std::mutex mu_;
  enum class State { kCreated, kRunning, kDone } state_ = State::kCreated;
  bool stopRequested_ = false;
  bool networkChangeRequested_ = false;
  uv_async_s* async_ = nullptr;  // while the loop runs
  std::thread::id runThread_;
  std::string lastError_;
  Running* running_ = nullptr;  // loop thread only (set in run)

  // Input queue (kCallbacks).
  std::deque<std::vector<uint8_t>> inQueue_;
  size_t inBytes_ = 0;
  bool inRefused_ = false;

  // Stats requests from other threads.
  uint64_t statsWanted_ = 0;
  uint64_t statsServed_ = 0;
  std::string statsSnapshot_;
  std::condition_variable statsCv_;

  bool finalStats_ = false;  // loop thread, under mu_ when read by buildStats
  std::atomic<bool> workerFailed_{false};  // a worker's TUN queue failed: stop, kFatal
  uint64_t startedAtMs_ = 0;
};

// "ip,ip,..." as nameservers (port 53); false with `bad` set on a bad entry.
bool parseNameservers(const std::string& text, std::vector<event::SocketAddress>& out,
                      std::string& bad);

}  // namespace vt::engine
