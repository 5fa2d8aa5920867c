// SignalWatcher: runs a callback on the loop when a signal arrives.
#pragma once

#include <functional>

#include "event/loop.h"

struct uv_signal_s;

namespace vt::event {

class SignalWatcher {
 public:
  SignalWatcher(Loop& loop, int signum, std::function<void()> cb);
  ~SignalWatcher();
  SignalWatcher(const SignalWatcher&) = delete;
  SignalWatcher& operator=(const SignalWatcher&) = delete;

 private:
  static void onSignal(uv_signal_s* s, int signum);

  uv_signal_s* handle_;  // heap; freed in its close callback
  std::function<void()> cb_;
};

}  // namespace vt::event
