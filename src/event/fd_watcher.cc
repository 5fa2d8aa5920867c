#include "event/fd_watcher.h"

#include "event/uv_handle.h"

namespace vt::event {

FdWatcher::FdWatcher(Loop& loop, int fd) : handle_(new uv_poll_t) {
  init_status_ = uv_poll_init(loop.raw(), handle_, fd);
  if (init_status_ != 0) {
    delete handle_;  // never initialised: no close needed
    handle_ = nullptr;
    return;
  }
  handle_->data = this;
}

FdWatcher::~FdWatcher() {
  if (handle_ == nullptr) return;
  uv_poll_stop(handle_);
  closeAndFree(handle_);
}

void FdWatcher::onReadable(Callback cb) {
  readable_ = std::move(cb);
  update();
}

void FdWatcher::onWritable(Callback cb) {
  writable_ = std::move(cb);
  update();
}

void FdWatcher::stop() {
  readable_ = nullptr;
  writable_ = nullptr;
  update();
}

void FdWatcher::update() {
  if (handle_ == nullptr) return;
  int events = (readable_ ? UV_READABLE : 0) | (writable_ ? UV_WRITABLE : 0);
  if (events == 0) {
    uv_poll_stop(handle_);
  } else {
    uv_poll_start(handle_, events, &FdWatcher::onEvent);
  }
}

void FdWatcher::onEvent(uv_poll_s* p, int status, int events) {
  auto* self = static_cast<FdWatcher*>(p->data);
  if (self == nullptr) return;
  // An error (e.g. the fd went bad) is reported as readable so the owner's
  // read sees the errno itself.
  if (status < 0) events = UV_READABLE;
  // Copies: the callback may destroy the watcher or replace callbacks.
  if ((events & UV_WRITABLE) != 0 && self->writable_) {
    Callback fn = self->writable_;
    fn();
    self = static_cast<FdWatcher*>(p->data);
    if (self == nullptr) return;
  }
  if ((events & UV_READABLE) != 0 && self->readable_) {
    Callback fn = self->readable_;
    fn();
  }
}

}  // namespace vt::event
