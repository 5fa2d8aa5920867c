#include "event/signal_watcher.h"

#include "core/log.h"
#include "event/uv_handle.h"

namespace vt::event {

SignalWatcher::SignalWatcher(Loop& loop, int signum, std::function<void()> cb)
    : handle_(new uv_signal_t), cb_(std::move(cb)) {
  uv_signal_init(loop.raw(), handle_);
  handle_->data = this;
  int rc = uv_signal_start(handle_, &SignalWatcher::onSignal, signum);
  if (rc != 0) VT_ERROR("uv_signal_start(%d): %s", signum, uv_strerror(rc));
}

SignalWatcher::~SignalWatcher() {
  uv_signal_stop(handle_);
  closeAndFree(handle_);
}

void SignalWatcher::onSignal(uv_signal_s* s, int) {
  auto* self = static_cast<SignalWatcher*>(s->data);
  if (self == nullptr) return;
  // A copy: the callback may destroy this watcher (e.g. shutdown on SIGTERM).
  std::function<void()> fn = self->cb_;
  if (fn) fn();
}

}  // namespace vt::event
