// Slice: one contiguous block of bytes with one owner. Either memory we
// allocated (with headroom in front for prepending headers and tailroom
// behind for appending) or foreign memory adopted with a release hook (a
// pbuf, say), which is called exactly once when the Slice lets go of it.
//
//   storage: [ headroom | data ........ | tailroom ]
//              ^base      ^begin_  ^end_            ^base+capacity
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <utility>

namespace vt {

class Slice {
 public:
  using ReleaseFn = void (*)(void* ctx, uint8_t* data) noexcept;

  Slice() = default;
  ~Slice() { reset(); }
  Slice(const Slice&) = delete;
  Slice& operator=(const Slice&) = delete;
  Slice(Slice&& o) noexcept { steal(o); }
  Slice& operator=(Slice&& o) noexcept {
    if (this != &o) {
      reset();
      steal(o);
    }
    return *this;
  }

  // Owned memory of `capacity` bytes; data starts empty after `headroom`.
  static Slice allocate(size_t capacity, size_t headroom = 0);
  // Owned copy of [p, p+n) with the given headroom in front.
  static Slice copyOf(const void* p, size_t n, size_t headroom = 0, size_t tailroom = 0);
  // Foreign memory: `release(ctx, data)` runs when this Slice is destroyed.
  // The memory is read-write but has no head- or tailroom.
  static Slice adopt(uint8_t* data, size_t n, ReleaseFn release, void* ctx) noexcept;

  uint8_t* data() noexcept { return begin_; }
  const uint8_t* data() const noexcept { return begin_; }
  size_t size() const noexcept { return static_cast<size_t>(end_ - begin_); }
  bool empty() const noexcept { return begin_ == end_; }
  bool valid() const noexcept { return base_ != nullptr; }

  size_t headroom() const noexcept { return static_cast<size_t>(begin_ - base_); }
  // The bytes of memory this slice holds (head- and tailroom included).
  size_t capacity() const noexcept { return capacity_; }
  size_t tailroom() const noexcept { return static_cast<size_t>(base_ + capacity_ - end_); }

  // Drops n bytes from the front (n <= size()).
  void trimFront(size_t n) noexcept { begin_ += n; }
  // Drops bytes from the back so that size() == n (n <= size()).
  void truncate(size_t n) noexcept { end_ = begin_ + n; }
  // Grows the data into the headroom by n bytes and returns the new front.
  uint8_t* prepend(size_t n) noexcept {
    begin_ -= n;
    return begin_;
  }
  // Grows the data into the tailroom by n bytes and returns where they go.
  uint8_t* append(size_t n) noexcept {
    uint8_t* p = end_;
    end_ += n;
    return p;
  }
  uint8_t* tail() noexcept { return end_; }

 private:
  void reset() noexcept;
  void steal(Slice& o) noexcept {
    base_ = std::exchange(o.base_, nullptr);
    begin_ = std::exchange(o.begin_, nullptr);
    end_ = std::exchange(o.end_, nullptr);
    capacity_ = std::exchange(o.capacity_, 0);
    release_ = std::exchange(o.release_, nullptr);
    ctx_ = std::exchange(o.ctx_, nullptr);
  }

  uint8_t* base_ = nullptr;
  uint8_t* begin_ = nullptr;
  uint8_t* end_ = nullptr;
  size_t capacity_ = 0;
  ReleaseFn release_ = nullptr;  // null: base_ came from new[]
  void* ctx_ = nullptr;
};

}  // namespace vt
