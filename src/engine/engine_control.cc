// Engine: the operator's control socket (docs/operations.md "Control
// socket"). Requests run on the run() thread, never inside lwIP, so the
// other workers can be parked while their state is read.
#include <string>
#include <vector>

#include "engine/engine.h"
#include "engine/engine_running.h"
#include "engine/stats_json.h"

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

}  // namespace vt::engine
