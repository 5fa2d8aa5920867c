// LogSummary: for events that would flood the log (UDP evictions under
// churn). The owner counts them and calls note(); `write` (the owner's,
// printing its counts and resetting them) runs at once if the last write
// was at least `intervalMs` ago, else when the interval ends (a timer), so
// at most one summary per interval. flush() writes what is held now (stop).
#pragma once

#include <cstdint>
#include <functional>

#include "event/loop.h"
#include "event/timer.h"

namespace vt::event {

class LogSummary {
 public:
  LogSummary(Loop& loop, uint64_t intervalMs, std::function<void()> write)
      : loop_(loop), intervalMs_(intervalMs), write_(std::move(write)), timer_(loop) {}
  LogSummary(const LogSummary&) = delete;
  LogSummary& operator=(const LogSummary&) = delete;

  void note() {
    pending_ = true;
    maybeWrite(false);
  }
  void flush() { maybeWrite(true); }

 private:
  void maybeWrite(bool force) {
    if (!pending_) return;
    const uint64_t now = loop_.now();
    if (!force && now < nextMs_) {
      if (!timer_.active()) timer_.start(nextMs_ - now, [this] { maybeWrite(false); });
      return;
    }
    timer_.stop();
    pending_ = false;
    nextMs_ = now + intervalMs_;
    write_();
  }

  Loop& loop_;
  uint64_t intervalMs_;
  std::function<void()> write_;
  Timer timer_;
  uint64_t nextMs_ = 0;
  bool pending_ = false;
};

}  // namespace vt::event
