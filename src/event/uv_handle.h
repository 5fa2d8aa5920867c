// Internal to src/event and src/stream/tcp_stream.cc: the one way we close
// libuv handles. The handle's memory is heap-allocated and freed only in its
// close callback, so the C++ owner may be destroyed at any time.
#pragma once

#include <uv.h>

namespace vt::event {

template <typename H>
void closeAndFree(H* h) {
  auto* handle = reinterpret_cast<uv_handle_t*>(h);
  handle->data = nullptr;  // callbacks still queued must see no owner
  if (uv_is_closing(handle)) return;
  uv_close(handle, [](uv_handle_t* x) { delete reinterpret_cast<H*>(x); });
}

}  // namespace vt::event
