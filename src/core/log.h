// Logging: one line per event to stderr, with a level filter. printf-style
// because GCC 12's libstdc++ has no <format>.
#pragma once

#include <cstdarg>
#include <string_view>

namespace vt {

enum class LogLevel { kTrace = 0, kDebug, kInfo, kWarn, kError, kOff };

// Parses "trace", "debug", "info", "warn", "error", "off".
bool parseLogLevel(std::string_view text, LogLevel& out) noexcept;
const char* logLevelName(LogLevel level) noexcept;  // "INFO": the log line's
// "info": the config's (what parseLogLevel reads).
const char* logLevelConfigName(LogLevel level) noexcept;

// Where a thread's lines go instead of stderr, and its own level: a core
// embedded through the C API sets one on the thread that runs it, so that
// two cores in one process log to their own callbacks at their own levels.
struct LogSink {
  void (*fn)(void* ctx, LogLevel level, const char* message) = nullptr;  // null: stderr
  void* ctx = nullptr;
  LogLevel level = LogLevel::kInfo;
};
// Installs `sink` on the calling thread for the scope's lifetime (scopes
// nest; the previous one comes back).
class LogScope {
 public:
  explicit LogScope(const LogSink* sink) noexcept;
  ~LogScope();
  LogScope(const LogScope&) = delete;
  LogScope& operator=(const LogScope&) = delete;

 private:
  const LogSink* previous_;
};

// A sink's level, read or changed while other threads log through it.
LogLevel sinkLevel(const LogSink& sink) noexcept;
void setSinkLevel(LogSink& sink, LogLevel level) noexcept;
// The calling thread's level: its sink's, else the process-wide one.
LogLevel currentLogLevel() noexcept;

// The process-wide level (threads without a LogSink).
void setLogLevel(LogLevel level) noexcept;
LogLevel logLevel() noexcept;
bool logEnabled(LogLevel level) noexcept;

void logLine(LogLevel level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

// journald: when $JOURNAL_STREAM names stderr (systemd set it up so), each
// line carries a syslog priority prefix ("<4>WARN  ...") instead of the
// time. Exposed for tests: whether `env` ("DEV:INODE") names `fd`.
bool isJournalStream(const char* env, int fd) noexcept;
int syslogPriority(LogLevel level) noexcept;

// Per-flow lines (a flow's, UDP session's or connection's close line) under
// a flood: at most kFlowLinesPerSecond a second on each thread, in bursts
// of up to kFlowLineBurst; the rest are counted, and the count is logged
// ("log: N flow lines suppressed") before the next line let through, or by
// flushFlowLog() (at stop). Thousands of flows a second otherwise turn the
// log (and journald) into the bottleneck.
inline constexpr unsigned kFlowLinesPerSecond = 1000;
inline constexpr unsigned kFlowLineBurst = 5000;
bool flowLogAllowed() noexcept;
void flushFlowLog() noexcept;

}  // namespace vt

#define VT_LOG(level, ...)                                      \
  do {                                                          \
    if (::vt::logEnabled(level)) ::vt::logLine(level, __VA_ARGS__); \
  } while (0)
#define VT_TRACE(...) VT_LOG(::vt::LogLevel::kTrace, __VA_ARGS__)
#define VT_DEBUG(...) VT_LOG(::vt::LogLevel::kDebug, __VA_ARGS__)
#define VT_INFO(...) VT_LOG(::vt::LogLevel::kInfo, __VA_ARGS__)
#define VT_WARN(...) VT_LOG(::vt::LogLevel::kWarn, __VA_ARGS__)
#define VT_ERROR(...) VT_LOG(::vt::LogLevel::kError, __VA_ARGS__)
// A per-flow line: at INFO rate-limited (flowLogAllowed); other levels
// (a failure's WARN) always.
#define VT_FLOW_LOG(level, ...)                                                        \
  do {                                                                                 \
    if (::vt::logEnabled(level) && ((level) != ::vt::LogLevel::kInfo || ::vt::flowLogAllowed())) \
      ::vt::logLine(level, __VA_ARGS__);                                               \
  } while (0)
// A per-flow INFO line, rate-limited (flowLogAllowed).
#define VT_FLOW_INFO(...)                                                         \
  do {                                                                            \
    if (::vt::logEnabled(::vt::LogLevel::kInfo) && ::vt::flowLogAllowed())        \
      ::vt::logLine(::vt::LogLevel::kInfo, __VA_ARGS__);                          \
  } while (0)
