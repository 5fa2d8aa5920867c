// The level is process-wide, unless the thread has a LogSink (a core run
// through the C API): then that sink's level and callback apply.
#include "core/log.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <sys/stat.h>
#include <sys/time.h>

namespace vt {

namespace {
std::atomic<LogLevel> g_level{LogLevel::kInfo};
thread_local const LogSink* t_sink = nullptr;
}

LogScope::LogScope(const LogSink* sink) noexcept : previous_(t_sink) { t_sink = sink; }
LogScope::~LogScope() { t_sink = previous_; }

LogLevel sinkLevel(const LogSink& sink) noexcept {
  // The control socket may change a sink's level while other threads log
  // through it: read and written as an atomic.
  return std::atomic_ref<LogLevel>(const_cast<LogLevel&>(sink.level)).load(std::memory_order_relaxed);
}

void setSinkLevel(LogSink& sink, LogLevel level) noexcept {
  std::atomic_ref<LogLevel>(sink.level).store(level, std::memory_order_relaxed);
}

LogLevel currentLogLevel() noexcept {
  const LogSink* s = t_sink;
  return s != nullptr ? sinkLevel(*s) : g_level.load(std::memory_order_relaxed);
}

bool logEnabled(LogLevel level) noexcept { return level >= currentLogLevel(); }

bool parseLogLevel(std::string_view text, LogLevel& out) noexcept {
  static constexpr std::pair<std::string_view, LogLevel> kNames[] = {
      {"trace", LogLevel::kTrace}, {"debug", LogLevel::kDebug}, {"info", LogLevel::kInfo},
      {"warn", LogLevel::kWarn},   {"error", LogLevel::kError}, {"off", LogLevel::kOff},
  };
  for (const auto& [name, level] : kNames) {
    if (name == text) {
      out = level;
      return true;
    }
  }
  return false;
}

const char* logLevelConfigName(LogLevel level) noexcept {
  switch (level) {
    case LogLevel::kTrace: return "trace";
    case LogLevel::kDebug: return "debug";
    case LogLevel::kInfo: return "info";
    case LogLevel::kWarn: return "warn";
    case LogLevel::kError: return "error";
    case LogLevel::kOff: return "off";
  }
  return "?";
}

const char* logLevelName(LogLevel level) noexcept {
  switch (level) {
    case LogLevel::kTrace: return "TRACE";
    case LogLevel::kDebug: return "DEBUG";
    case LogLevel::kInfo: return "INFO";
    case LogLevel::kWarn: return "WARN";
    case LogLevel::kError: return "ERROR";
    case LogLevel::kOff: return "OFF";
  }
  return "?";
}

int syslogPriority(LogLevel level) noexcept {
  switch (level) {
    case LogLevel::kTrace:
    case LogLevel::kDebug: return 7;
    case LogLevel::kInfo: return 6;
    case LogLevel::kWarn: return 4;
    case LogLevel::kError: return 3;
    case LogLevel::kOff: return 6;
  }
  return 6;
}

bool isJournalStream(const char* env, int fd) noexcept {
  if (env == nullptr) return false;
  unsigned long long dev = 0, ino = 0;
  if (std::sscanf(env, "%llu:%llu", &dev, &ino) != 2) return false;
  struct stat st {};
  if (fstat(fd, &st) != 0) return false;
  return static_cast<unsigned long long>(st.st_dev) == dev &&
         static_cast<unsigned long long>(st.st_ino) == ino;
}

void setLogLevel(LogLevel level) noexcept { g_level.store(level); }
LogLevel logLevel() noexcept { return g_level.load(std::memory_order_relaxed); }

void logLine(LogLevel level, const char* fmt, ...) {
  char msg[2048];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if (const LogSink* s = t_sink; s != nullptr && s->fn != nullptr) {
    s->fn(s->ctx, level, msg);
    return;
  }
  // Under systemd with stderr going to the journal: a syslog priority
  // prefix instead of the time (journald stamps each line itself), so
  // `journalctl -p warning` finds the WARN lines.
  static const bool journal = isJournalStream(std::getenv("JOURNAL_STREAM"), 2);
  if (journal) {
    fprintf(stderr, "<%d>%-5s %s\n", syslogPriority(level), logLevelName(level), msg);
    return;
  }
  timeval tv{};
  gettimeofday(&tv, nullptr);
  tm t{};
  gmtime_r(&tv.tv_sec, &t);
  // One fprintf per line so that concurrent processes do not interleave.
  fprintf(stderr, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s %s\n", t.tm_year + 1900,
          t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec,
          static_cast<long>(tv.tv_usec / 1000), logLevelName(level), msg);
}

namespace {

struct FlowLogBucket {
  double tokens = kFlowLineBurst;
  std::chrono::steady_clock::time_point last{};
  unsigned long long suppressed = 0;
  std::chrono::steady_clock::time_point first_suppressed{};
};
thread_local FlowLogBucket t_flow_log;

void reportSuppressed(FlowLogBucket& b, std::chrono::steady_clock::time_point now) {
  if (b.suppressed == 0) return;
  const long long ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now - b.first_suppressed).count();
  logLine(LogLevel::kInfo, "log: %llu flow lines suppressed in the last %lld ms (over %u a second)",
          b.suppressed, ms, kFlowLinesPerSecond);
  b.suppressed = 0;
}

}  // namespace

bool flowLogAllowed() noexcept {
  FlowLogBucket& b = t_flow_log;
  const auto now = std::chrono::steady_clock::now();
  if (b.last.time_since_epoch().count() != 0) {
    const double secs = std::chrono::duration<double>(now - b.last).count();
    b.tokens = std::min<double>(kFlowLineBurst, b.tokens + secs * kFlowLinesPerSecond);
  }
  b.last = now;
  if (b.tokens < 1.0) {
    if (b.suppressed++ == 0) b.first_suppressed = now;
    return false;
  }
  b.tokens -= 1.0;
  reportSuppressed(b, now);
  return true;
}

void flushFlowLog() noexcept { reportSuppressed(t_flow_log, std::chrono::steady_clock::now()); }

}  // namespace vt
