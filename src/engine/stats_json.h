// The engine's state as JSON (vless_tun_stats_json, docs/embedding.md), and
// the counters logged when a client stops.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "client/client.h"
#include "client/tun_pump.h"
#include "config/client_config.h"
#include "core/json.h"  // jsonString, for callers

namespace vt::engine {

struct StatsInput {
  std::string state;  // created, running, stopping, stopped
  std::string mode;   // callbacks, fd, created
  std::string tunName;
  const config::ClientConfig* cfg = nullptr;
  // One per worker (tun.workers), worker 0 first; empty: not running.
  // Counters are summed, flows listed from all.
  std::vector<const client::Client*> clients;
  std::vector<const client::TunPumpStats*> pumps;  // empty: callback mode
  // Callback mode's TUN counters.
  uint64_t packetsIn = 0, bytesIn = 0, packetsOut = 0, bytesOut = 0;
  size_t inputQueued = 0, inputQueuedBytes = 0;
  uint64_t nowMs = 0, uptimeMs = 0;
};

// At most this many flows are listed one by one ("flows_listed" says how
// many; the counts are always whole).
inline constexpr size_t kMaxListedFlows = 1000;

std::string buildStatsJson(const StatsInput& in);
// The same state as a few summary lines and a table of the busiest flows
// (at most maxRows), for `vless-tun status` (status_table.cc).
std::string buildStatusTable(const StatsInput& in, size_t maxRows = 50);

// The "stopping:" log lines (docs/client.md): before and after
// Client::stop() (the UDP sessions it closes add their drops).
// Summed over the workers' clients (and their TUN pumps, if any).
void logStopStats(const std::vector<const client::Client*>& clients,
                  const std::vector<const client::TunPumpStats*>& pumps);
void logStopStatsAfter(const std::vector<const client::Client*>& clients);

}  // namespace vt::engine
