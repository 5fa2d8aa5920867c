// FdWatcher: readiness callbacks for a file descriptor we do not own (a
// TUN fd), over uv_poll. Safe to destroy at any time, including from its
// own callback: the uv handle is closed and freed in its close callback
// independently of this object. The fd must stay open while watched.
#pragma once

#include <functional>

#include "event/loop.h"

struct uv_poll_s;

namespace vt::event {

class FdWatcher {
 public:
  using Callback = std::function<void()>;

  FdWatcher(Loop& loop, int fd);
  ~FdWatcher();
  FdWatcher(const FdWatcher&) = delete;
  FdWatcher& operator=(const FdWatcher&) = delete;

  // False if libuv refused the fd (e.g. a regular file); then nothing fires.
  bool ok() const { return init_status_ == 0; }
  int initStatus() const { return init_status_; }

  // Level-triggered: the callback keeps firing while the condition holds,
  // so a reader that stops before EAGAIN is called again next iteration.
  // An empty callback stops watching that direction.
  void onReadable(Callback cb);
  void onWritable(Callback cb);
  void stop();

 private:
  static void onEvent(uv_poll_s* p, int status, int events);
  void update();

  uv_poll_s* handle_ = nullptr;  // heap; freed in its close callback
  int init_status_ = 0;
  Callback readable_;
  Callback writable_;
};

}  // namespace vt::event
