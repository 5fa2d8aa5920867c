// Engine: the operator's control socket (docs/operations.md "Control
// socket"). Requests run on the run() thread, never inside lwIP, so the
// other workers can be parked while their state is read.
#include <algorithm>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "engine/engine_running.h"
#include "config/config_diff.h"
#include "engine/stats_json.h"
#include "event/service_notify.h"

namespace vt::engine {

Status Engine::openControl(Running& r) {
  if (opts_.controlSocket.empty()) return Status::okStatus();
  event::ControlSocketOptions o;
  o.path = opts_.controlSocket;
  o.group = opts_.controlGroup;
  auto cs = event::ControlSocket::open(r.loop, o, [this, &r](const std::string& line) {
    return onControl(r, line);
  });
  if (!cs.ok()) return cs.error();
  r.control = std::move(cs).value();
  return Status::okStatus();
}

std::string Engine::onControl(Running& r, const std::string& line) {
  using Args = std::vector<std::string>;
  if (r.stopping) return event::controlError("stopping");
  const std::vector<event::ControlCommand> commands = {
      {"stats", 0, 0, "stats              the state as JSON (totals, flows)",
       [&](const Args&) { return event::controlOk(buildStats(&r)); }},
      {"status", 0, 0, "status             summary lines and the busiest flows",
       [&](const Args&) {
         StatsInput in;
         fillStatsInput(&r, in);
         parkWorkers(r.workers, true);
         std::string table = buildStatusTable(in);
         parkWorkers(r.workers, false);
         return event::controlOk(table);
       }},
      {"close", 1, 1, "close ID           close the TCP flow (a reset) or UDP session with that id",
       [&](const Args& a) {
         uint64_t id = 0;
         if (!event::parseControlId(a[0], &id)) {
           return event::controlError("close: expected a flow id (a number from `status`), got \"" +
                                      a[0] + "\"");
         }
         size_t owner = r.workers.size();
         std::string what;
         parkWorkers(r.workers, true);
         for (size_t i = 0; i < r.workers.size() && owner == r.workers.size(); ++i) {
           what = r.workers[i]->client->describeFlow(id);
           if (!what.empty()) owner = i;
         }
         parkWorkers(r.workers, false);
         if (owner == r.workers.size()) {
           return event::controlError("no live flow with id " + std::to_string(id));
         }
         VT_INFO("control: closing %s", what.c_str());
         if (owner == 0) {
           r.client->closeFlow(id);
         } else {
           r.workers[owner]->requestCloseFlow(id);
         }
         return event::controlOk("closed " + what);
       }},
      {"log-level", 0, 1, "log-level [LEVEL]  show or set: trace, debug, info, warn, error, off",
       [&](const Args& a) {
         return event::controlLogLevel(a, sinkLevel(opts_.log),
                                       [&](LogLevel l) { setSinkLevel(opts_.log, l); });
       }},
  };
  return event::dispatchControl(line, commands);
}

void Engine::reload(Running& r) {
  if (r.stopping) return;
  event::notifyServiceManager("RELOADING=1");
  struct Ready {
    ~Ready() { event::notifyServiceManager("READY=1\nSTATUS=running"); }
  } ready;
  const std::string& path = opts_.configPath;
  // The operator's request, a small local file (and the geoip database it
  // names): read on the loop, as at start.
  auto loaded = config::loadClientConfig(path);
  if (!loaded.ok()) {
    VT_ERROR("reload refused, the running config stays: %s", loaded.error().message.c_str());
    return;
  }
  const config::ClientConfig& fresh = loaded.value();
  config::ClientConfig& now = opts_.cfg;
  static const std::vector<std::string> kRuleKeys = {"route.rules", "route.default_action",
                                                     "route.block_style",
                                                     "route.geoip_database"};
  auto changed = config::changedTomlKeys(now.source_text, fresh.source_text, {"log_level"});
  std::vector<std::string> notes;
  bool rulesTouched = fresh.route.rules.geoip != nullptr;  // a database updated in place
  if (changed.ok()) {
    for (const std::string& k : changed.value()) {
      if (std::find(kRuleKeys.begin(), kRuleKeys.end(), k) != kRuleKeys.end()) {
        rulesTouched = true;
      } else {
        notes.push_back(k);
      }
    }
  }
  std::string summary;
  const LogLevel before = sinkLevel(opts_.log);
  setSinkLevel(opts_.log, fresh.log_level);
  now.log_level = fresh.log_level;
  summary += std::string("log level ") + logLevelConfigName(fresh.log_level);
  if (before != fresh.log_level) summary += std::string(" (was ") + logLevelConfigName(before) + ")";
  if (rulesTouched) {
    if (!r.client->rulesReplaceable(fresh.route.rules)) {
      notes.push_back("route.rules (to or from no rules, or adding or removing domain or geoip "
                      "conditions)");
    } else {
      parkWorkers(r.workers, true);
      for (const auto& w : r.workers) w->client->setRules(fresh.route.rules);
      parkWorkers(r.workers, false);
      config::ClientRulesConfig& mine = now.route.rules;
      mine.set = fresh.route.rules.set;
      mine.count = fresh.route.rules.count;
      mine.default_action = fresh.route.rules.default_action;
      mine.geoip = fresh.route.rules.geoip;
      mine.geoip_path = fresh.route.rules.geoip_path;
      summary += "; routing: " + std::to_string(mine.count) + " rules, default " +
                 mine.default_action + " (new flows; live flows keep their route)";
    }
  }
  VT_INFO("reloaded %s: %s", path.c_str(), summary.c_str());
  for (const std::string& n : notes) {
    VT_WARN("reload: %s changed in %s; it applies at the next restart", n.c_str(), path.c_str());
  }
}

}  // namespace vt::engine
