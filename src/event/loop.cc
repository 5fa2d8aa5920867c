#include "event/loop.h"

#include <uv.h>

#include <cstdlib>

#include "core/log.h"
#include "event/uv_handle.h"

namespace vt::event {

Loop::Loop() : loop_(new uv_loop_t), owned_(true) {
  int rc = uv_loop_init(loop_);
  if (rc != 0) {
    // Only fails on fd exhaustion at startup; nothing can run without it.
    VT_ERROR("uv_loop_init: %s", uv_strerror(rc));
    std::abort();
  }
  idle_ = new uv_idle_t;
  uv_idle_init(loop_, idle_);
  idle_->data = this;
}

Loop::Loop(uv_loop_t* borrowed) : loop_(borrowed), owned_(false) {
  idle_ = new uv_idle_t;
  uv_idle_init(loop_, idle_);
  idle_->data = this;
}

Loop::~Loop() {
  // Objects still waiting close their handles from their destructors.
  while (!to_delete_.empty() || !posted_.empty()) drain();
  closeAndFree(idle_);
  if (!owned_) return;
  // Let close callbacks (which free handle memory) and in-flight requests
  // (a cancelled lookup still running in the pool) finish. A handle some
  // owner forgot to close would keep UV_RUN_DEFAULT spinning forever, so
  // only wait when every handle left is already closing.
  bool leaked = false;
  uv_walk(
      loop_,
      [](uv_handle_t* h, void* arg) {
        if (!uv_is_closing(h)) *static_cast<bool*>(arg) = true;
      },
      &leaked);
  if (!leaked) {
    uv_run(loop_, UV_RUN_DEFAULT);
  } else {
    for (int i = 0; i < 16 && uv_loop_alive(loop_); ++i) uv_run(loop_, UV_RUN_NOWAIT);
  }
  int rc = uv_loop_close(loop_);
  if (rc != 0) {
    // A handle outlives the loop: a bug elsewhere; leak rather than crash.
    VT_ERROR("uv_loop_close: %s (a handle is still open)", uv_strerror(rc));
    return;
  }
  delete loop_;
}

uint64_t Loop::now() const {
  return uv_now(loop_);
}

int Loop::run() {
  return uv_run(loop_, UV_RUN_DEFAULT);
}

int Loop::runOnce(bool wait) {
  return uv_run(loop_, wait ? UV_RUN_ONCE : UV_RUN_NOWAIT);
}

void Loop::stop() {
  uv_stop(loop_);
}

void Loop::deferredDelete(std::unique_ptr<DeferredDeletable> obj) {
  if (!obj) return;
  to_delete_.push_back(std::move(obj));
  armIdle();
}

void Loop::post(std::function<void()> fn) {
  posted_.push_back(std::move(fn));
  armIdle();
}

void Loop::armIdle() {
  if (idle_active_) return;
  idle_active_ = true;
  // An active idle handle makes the loop poll with a zero timeout, so the
  // work runs on the very next iteration.
  uv_idle_start(idle_, &Loop::onIdle);
}

void Loop::onIdle(uv_idle_s* idle) {
  auto* self = static_cast<Loop*>(idle->data);
  if (self == nullptr) return;
  self->drain();
  if (self->to_delete_.empty() && self->posted_.empty()) {
    uv_idle_stop(self->idle_);
    self->idle_active_ = false;
  }
}

void Loop::drain() {
  // Swap first: work queued while draining waits for the next iteration.
  std::vector<std::function<void()>> fns;
  fns.swap(posted_);
  for (auto& fn : fns) fn();
  std::vector<std::unique_ptr<DeferredDeletable>> dead;
  dead.swap(to_delete_);
  dead.clear();
}

}  // namespace vt::event
