// Engine: the operator's control socket (docs/operations.md "Control
// socket"). Requests run on the run() thread, never inside lwIP, so the
// other workers can be parked while their state is read.
#include <cerrno>
#include <cstdlib>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "engine/engine_running.h"
#include "engine/stats_json.h"

namespace vt::engine {

namespace {

std::vector<std::string> words(const std::string& line) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    size_t j = i;
    while (j < line.size() && line[j] != ' ' && line[j] != '\t') ++j;
    if (j > i) out.push_back(line.substr(i, j - i));
    i = j;
  }
  return out;
}

constexpr const char* kHelp =
    "stats              the state as JSON (totals, flows)\n"
    "status             summary lines and the busiest flows\n"
    "close ID           close the TCP flow (reset) or UDP session with that id\n"
    "log-level [LEVEL]  show or set the level: trace, debug, info, warn, error, off\n";

}  // namespace

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
  const std::vector<std::string> w = words(line);
  if (w.empty()) return event::controlError("empty request; `help` lists the commands");
  const std::string& cmd = w[0];
  if (cmd == "help") return event::controlOk(kHelp);
  if (r.stopping) return event::controlError("stopping");
  auto arity = [&](size_t min, size_t max) { return w.size() - 1 >= min && w.size() - 1 <= max; };
  if (cmd == "stats" && arity(0, 0)) return event::controlOk(buildStats(&r));
  if (cmd == "status" && arity(0, 0)) {
    StatsInput in;
    fillStatsInput(&r, in);
    parkWorkers(r.workers, true);
    std::string table = buildStatusTable(in);
    parkWorkers(r.workers, false);
    return event::controlOk(table);
  }
  if (cmd == "close" && arity(1, 1)) {
    const std::string& arg = w[1];
    char* end = nullptr;
    errno = 0;
    unsigned long long id = std::strtoull(arg.c_str(), &end, 10);
    if (arg.empty() || arg[0] < '0' || arg[0] > '9' || *end != '\0' || errno != 0 || id == 0) {
      return event::controlError("close: expected a flow id (a number from `status`), got \"" +
                                 arg + "\"");
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
  }
  if (cmd == "log-level" && arity(0, 1)) {
    const LogLevel now = sinkLevel(opts_.log);
    if (w.size() == 1) return event::controlOk(logLevelConfigName(now));
    LogLevel want;
    if (!parseLogLevel(w[1], want)) {
      return event::controlError("log-level: expected one of trace, debug, info, warn, error, off, "
                                 "got \"" + w[1] + "\"");
    }
    // Said at the old level and the new one's: the change is on record.
    VT_WARN("control: log level %s -> %s", logLevelConfigName(now), logLevelConfigName(want));
    setSinkLevel(opts_.log, want);
    return event::controlOk(std::string("log level ") + logLevelConfigName(now) + " -> " +
                            logLevelConfigName(want));
  }
  if (cmd == "stats" || cmd == "status" || cmd == "close" || cmd == "log-level") {
    return event::controlError(cmd + ": wrong number of arguments; `help` lists the commands");
  }
  return event::controlError("unknown command \"" + cmd + "\"; `help` lists the commands");
}

}  // namespace vt::engine
