#include "buffer/slice.h"

namespace vt {

Slice Slice::allocate(size_t capacity, size_t headroom) {
  Slice s;
  if (capacity == 0) capacity = 1;  // a valid() slice always has storage
  if (headroom > capacity) headroom = capacity;
  s.base_ = new uint8_t[capacity];
  s.capacity_ = capacity;
  s.begin_ = s.end_ = s.base_ + headroom;
  return s;
}

Slice Slice::copyOf(const void* p, size_t n, size_t headroom, size_t tailroom) {
  Slice s = allocate(headroom + n + tailroom, headroom);
  if (n != 0) std::memcpy(s.append(n), p, n);
  return s;
}

Slice Slice::adopt(uint8_t* data, size_t n, ReleaseFn release, void* ctx) noexcept {
  Slice s;
  s.base_ = s.begin_ = data;
  s.end_ = data + n;
  s.capacity_ = n;
  s.release_ = release;
  s.ctx_ = ctx;
  return s;
}

void Slice::reset() noexcept {
  if (base_ == nullptr) return;
  if (release_ != nullptr) {
    release_(ctx_, base_);
  } else {
    delete[] base_;
  }
  base_ = begin_ = end_ = nullptr;
  capacity_ = 0;
  release_ = nullptr;
  ctx_ = nullptr;
}

}  // namespace vt
