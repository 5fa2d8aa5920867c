// Timer: one-shot or repeating. Safe to destroy at any time, including from
// its own callback: the uv handle is closed and freed in its close callback
// independently of this object.
#pragma once

#include <cstdint>
#include <functional>

#include "event/loop.h"

struct uv_timer_s;

namespace vt::event {

class Timer {
 public:
  explicit Timer(Loop& loop);
  ~Timer();
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  // Restarts the timer if it is running. repeat_ms 0: one-shot.
  void start(uint64_t timeout_ms, std::function<void()> cb, uint64_t repeat_ms = 0);
  void stop();
  bool active() const;

 private:
  static void onFire(uv_timer_s* t);

  uv_timer_s* handle_;  // heap; freed in its close callback
  std::function<void()> cb_;
  bool repeating_ = false;
};

}  // namespace vt::event
