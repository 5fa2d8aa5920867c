#include "event/timer.h"

#include "event/uv_handle.h"

namespace vt::event {

Timer::Timer(Loop& loop) : handle_(new uv_timer_t) {
  uv_timer_init(loop.raw(), handle_);  // cannot fail for timers
  handle_->data = this;
}

Timer::~Timer() {
  uv_timer_stop(handle_);
  closeAndFree(handle_);
}

void Timer::start(uint64_t timeout_ms, std::function<void()> cb, uint64_t repeat_ms) {
  cb_ = std::move(cb);
  repeating_ = repeat_ms != 0;
  uv_timer_start(handle_, &Timer::onFire, timeout_ms, repeat_ms);
}

void Timer::stop() {
  uv_timer_stop(handle_);
  cb_ = nullptr;
}

bool Timer::active() const {
  return uv_is_active(reinterpret_cast<const uv_handle_t*>(handle_)) != 0;
}

void Timer::onFire(uv_timer_s* t) {
  auto* self = static_cast<Timer*>(t->data);
  if (self == nullptr) return;
  // The callback may destroy the Timer or restart it with a new callback,
  // so it must not run from inside cb_ itself.
  if (self->repeating_) {
    std::function<void()> fn = self->cb_;
    if (fn) fn();
  } else {
    std::function<void()> fn = std::move(self->cb_);
    self->cb_ = nullptr;
    if (fn) fn();
  }
}

}  // namespace vt::event
