// What an operator's tools send, as hostile bytes: the metrics endpoint's
// request head (server/metrics_listener.h classifyMetricsRequest) and a
// control socket request line (event/control_socket.h dispatchControl,
// parseControlId). Every input gets a verdict; only a well-formed
// "GET /metrics HTTP/1.x" is served; a control reply is "ok\n..." or
// "error: ...\n"; an id is accepted only as the decimal it is (leading
// zeros allowed).
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "event/control_socket.h"
#include "fuzz_util.h"
#include "server/metrics_listener.h"

using namespace vt;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool quiet = [] {
    setLogLevel(LogLevel::kError);  // log-level's WARN line, once per input
    return true;
  }();
  (void)quiet;
  const std::string in(reinterpret_cast<const char*>(data), size);

  const server::MetricsRequest m = server::classifyMetricsRequest(in);
  if (m == server::MetricsRequest::kMetrics) {
    fuzz::check(in.rfind("GET /metrics", 0) == 0, "served without GET /metrics", in);
  }
  if (m == server::MetricsRequest::kNotGet || m == server::MetricsRequest::kNotFound) {
    fuzz::check(in.find(" HTTP/1.") != std::string::npos, "a verdict past a bad line", in);
  }

  uint64_t id = 0;
  if (event::parseControlId(in, &id)) {
    // Leading zeros are allowed ("042" is 42); nothing but digits is.
    const size_t nz = in.find_first_not_of('0');
    fuzz::check(id != 0 && nz != std::string::npos && std::to_string(id) == in.substr(nz),
                "id is the decimal given", in);
  }

  std::vector<std::string> seen;
  const std::vector<event::ControlCommand> commands = {
      {"close", 1, 1, "close ID", [&](const std::vector<std::string>& a) {
         fuzz::check(a.size() == 1, "arity checked");
         uint64_t v = 0;
         if (!event::parseControlId(a[0], &v)) return event::controlError("bad id");
         seen.push_back(a[0]);
         return event::controlOk("closed " + a[0]);
       }},
      {"stats", 0, 0, "stats", [](const std::vector<std::string>& a) {
         fuzz::check(a.empty(), "arity checked");
         return event::controlOk("{}");
       }},
      {"log-level", 0, 1, "log-level [LEVEL]", [](const std::vector<std::string>& a) {
         return event::controlLogLevel(a, LogLevel::kOff, [](LogLevel) {});
       }},
  };
  const std::string reply = event::dispatchControl(in, commands);
  const bool ok = reply.rfind("ok\n", 0) == 0;
  const bool err = reply.rfind("error: ", 0) == 0;
  fuzz::check(ok != err, "a reply is ok or error", reply);
  fuzz::check(!reply.empty() && reply.back() == '\n', "a reply ends its line", reply);
  for (const std::string& w : seen) {
    fuzz::check(w.find(' ') == std::string::npos && w.find('\t') == std::string::npos,
                "arguments are words", w);
  }
  return 0;
}
