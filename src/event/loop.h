// Loop: the one libuv loop everything runs on, plus the two services every
// layer needs from it: deferred deletion (an object may not be destroyed
// inside its own callback stack) and post() (errors are delivered on a later
// iteration, never synchronously from the call that caused them).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

// Same type as libuv's typedef; headers outside src/event and
// stream/tcp_stream.cc never include <uv.h>.
struct uv_loop_s;
typedef struct uv_loop_s uv_loop_t;  // NOLINT(modernize-use-using): must match uv.h
struct uv_idle_s;

namespace vt::event {

// Base for anything handed to Loop::deferredDelete.
class DeferredDeletable {
 public:
  virtual ~DeferredDeletable() = default;
};

class Loop {
 public:
  Loop();  // owns a new uv_loop_t
  explicit Loop(uv_loop_t* borrowed);
  ~Loop();
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  uv_loop_t* raw() { return loop_; }
  uint64_t now() const;  // milliseconds, cached per iteration (uv_now)
  int run();             // uv_run(UV_RUN_DEFAULT)
  // One pass: UV_RUN_ONCE when `wait` (blocks until something happens),
  // else UV_RUN_NOWAIT. Returns whether work remains.
  int runOnce(bool wait = false);
  void stop();

  // Destroys `obj` on a later loop iteration, never inside the caller's stack.
  void deferredDelete(std::unique_ptr<DeferredDeletable> obj);
  // Runs `fn` on the next iteration, in FIFO order. Capture liveness
  // tokens, not raw `this`, if the target may die before then.
  void post(std::function<void()> fn);

  size_t pendingDeletes() const { return to_delete_.size(); }

 private:
  void armIdle();
  static void onIdle(uv_idle_s* idle);
  void drain();

  uv_loop_t* loop_ = nullptr;
  bool owned_ = false;
  uv_idle_s* idle_ = nullptr;  // heap; freed in its close callback
  bool idle_active_ = false;
  std::vector<std::unique_ptr<DeferredDeletable>> to_delete_;
  std::vector<std::function<void()>> posted_;
};

}  // namespace vt::event
