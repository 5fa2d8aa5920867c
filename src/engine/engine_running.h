// Internal to src/engine: what Engine::run() builds on its loop (Running)
// and the packet sink of callback mode, shared by engine.cc and
// engine_control.cc (the control socket's commands).
#pragma once

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <uv.h>

#include "client/client.h"
#include "client/packet_sink.h"
#include "client/tun_pump.h"
#include "engine/engine.h"
#include "engine/worker.h"
#include "event/control_socket.h"
#include "event/fd_watcher.h"
#include "event/loop.h"
#include "event/signal_watcher.h"
#include "event/timer.h"
#include "network_monitor.h"
#include "route_manager.h"
#include "tun_device.h"


namespace vt::engine {

inline constexpr size_t kOutBatch = 64;  // packets per packetOut call

// kCallbacks: packets for the TUN, gathered and handed over in batches at
// the end of the loop iteration (or every kOutBatch packets).
class CallbackSink final : public client::PacketSink {
 public:
  CallbackSink(event::Loop& loop, const EngineOptions& opts) : loop_(loop), opts_(opts) {}
  ~CallbackSink() { alive_.reset(); }

  void writePacket(const netstack::PacketView& packet) override {
    std::vector<uint8_t> bytes(packet.size);
    size_t off = 0;
    for (int i = 0; i < packet.iovCount; ++i) {
      std::memcpy(bytes.data() + off, packet.iov[i].iov_base, packet.iov[i].iov_len);
      off += packet.iov[i].iov_len;
    }
    ++packetsOut;
    bytesOut += bytes.size();
    batch_.push_back(std::move(bytes));
    if (batch_.size() >= kOutBatch) {
      flush();
    } else if (batch_.size() == 1) {
      std::weak_ptr<bool> alive = alive_;
      loop_.post([this, alive] {
        if (!alive.expired()) flush();
      });
    }
  }

  void flush() {
    if (batch_.empty()) return;
    std::vector<std::vector<uint8_t>> out;
    out.swap(batch_);
    std::vector<const uint8_t*> ptrs;
    std::vector<size_t> lens;
    ptrs.reserve(out.size());
    lens.reserve(out.size());
    for (const auto& p : out) {
      ptrs.push_back(p.data());
      lens.push_back(p.size());
    }
    if (opts_.packetOut) opts_.packetOut(ptrs.data(), lens.data(), ptrs.size());
  }

  uint64_t packetsOut = 0;
  uint64_t bytesOut = 0;

 private:
  event::Loop& loop_;
  const EngineOptions& opts_;
  std::vector<std::vector<uint8_t>> batch_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

struct Engine::Running {
  explicit Running(Engine& e) : engine(e) {}
  Engine& engine;
  event::Loop loop;
  std::unique_ptr<platform::TunDevice> tun;
  UdpHomes udpHomes;  // before the clients: their sessions release their entries
  std::unique_ptr<client::Client> client;
  std::unique_ptr<client::TunPump> pump;
  std::unique_ptr<CallbackSink> sink;
  // tun.workers; [0] is this thread's (loop, client, pump above).
  Workers workers;
  std::unique_ptr<platform::RouteManager> routes;
  std::unique_ptr<event::SignalWatcher> sigint, sigterm, sighup;
  std::unique_ptr<event::ControlSocket> control;  // opts.controlSocket
  // Network changes: rtnetlink (Linux), or vless_tun_network_changed.
  std::unique_ptr<platform::NetworkMonitor> monitor;
  std::unique_ptr<event::FdWatcher> monitorWatch;
  std::unique_ptr<event::Timer> netTimer;
  int tunIfindex = 0;
  uv_async_t* async = nullptr;
  bool stopping = false;
  RunResult result = RunResult::kStopped;
  std::string tunName;
  uint64_t inputPackets = 0, inputBytes = 0;
  bool netTimerArmed = false;
  std::string netWhy;  // the first change of the burst, for the log

  // Stops everything, from a clean stack (a later loop iteration).
  void shutdown();
  void finishShutdown();
  // Every worker's client and TUN counters, worker 0 first.
  std::vector<const client::Client*> clients() const;
  std::vector<const client::TunPumpStats*> pumpStats() const;
  // A change was seen: handled once things settle (kNetSettleMs).
  void networkChangeSeen(uint64_t delayMs);
  void handleNetworkChange();
};

}  // namespace vt::engine
