// BufferChain: a move-only FIFO of Slices, the unit in which bytes travel
// between layers. Appending a Slice or another chain moves memory without
// copying; write(BufferChain&) APIs drain their argument.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <string>
#include <string_view>
#include <vector>

#include "buffer/slice.h"

namespace vt {

// The FIFO of Slices under a BufferChain: a ring in one heap block, made on
// the first push and grown by doubling. std::deque allocated a 512-byte
// block and its map even for an empty chain (two mallocs per temporary
// chain, ~0.6 KiB per idle one); an empty SliceRing holds nothing.
class SliceRing {
 public:
  SliceRing() = default;
  ~SliceRing() { release(); }
  SliceRing(SliceRing&& o) noexcept
      : buf_(o.buf_), cap_(o.cap_), head_(o.head_), count_(o.count_) {
    o.buf_ = nullptr;
    o.cap_ = o.head_ = o.count_ = 0;
  }
  SliceRing& operator=(SliceRing&& o) noexcept {
    if (this != &o) {
      release();
      buf_ = o.buf_;
      cap_ = o.cap_;
      head_ = o.head_;
      count_ = o.count_;
      o.buf_ = nullptr;
      o.cap_ = o.head_ = o.count_ = 0;
    }
    return *this;
  }
  SliceRing(const SliceRing&) = delete;
  SliceRing& operator=(const SliceRing&) = delete;

  size_t size() const noexcept { return count_; }
  bool empty() const noexcept { return count_ == 0; }
  Slice& operator[](size_t i) noexcept { return buf_[(head_ + i) & (cap_ - 1)]; }
  const Slice& operator[](size_t i) const noexcept { return buf_[(head_ + i) & (cap_ - 1)]; }
  Slice& front() noexcept { return buf_[head_]; }
  Slice& back() noexcept { return (*this)[count_ - 1]; }

  void push_back(Slice&& s) {
    if (count_ == cap_) grow();
    new (&buf_[(head_ + count_) & (cap_ - 1)]) Slice(std::move(s));
    ++count_;
  }
  void push_front(Slice&& s) {
    if (count_ == cap_) grow();
    head_ = (head_ + cap_ - 1) & (cap_ - 1);
    new (&buf_[head_]) Slice(std::move(s));
    ++count_;
  }
  void pop_front() noexcept {
    buf_[head_].~Slice();
    head_ = (head_ + 1) & (cap_ - 1);
    --count_;
  }
  // Empties the ring; a small one keeps its block for reuse, a large one
  // (a burst queued once) lets it go.
  void clear() noexcept {
    while (count_ > 0) pop_front();
    head_ = 0;
    if (cap_ > kKeepCapacity) release();
  }

  template <typename R, typename S>
  class Iter {
   public:
    Iter(R* r, size_t i) : r_(r), i_(i) {}
    S& operator*() const { return (*r_)[i_]; }
    Iter& operator++() {
      ++i_;
      return *this;
    }
    bool operator!=(const Iter& o) const { return i_ != o.i_; }

   private:
    R* r_;
    size_t i_;
  };
  Iter<SliceRing, Slice> begin() { return {this, 0}; }
  Iter<SliceRing, Slice> end() { return {this, count_}; }
  Iter<const SliceRing, const Slice> begin() const { return {this, 0}; }
  Iter<const SliceRing, const Slice> end() const { return {this, count_}; }

 private:
  static constexpr size_t kFirstCapacity = 4;  // a power of two
  static constexpr size_t kKeepCapacity = 16;
  void grow();
  void release() noexcept;

  Slice* buf_ = nullptr;
  size_t cap_ = 0;
  size_t head_ = 0;
  size_t count_ = 0;
};

class BufferChain {
 public:
  // Allocation size used when bytes are copied in.
  static constexpr size_t kDefaultSliceSize = 16 * 1024;

  BufferChain() = default;
  BufferChain(const BufferChain&) = delete;
  BufferChain& operator=(const BufferChain&) = delete;
  BufferChain(BufferChain&& o) noexcept : slices_(std::move(o.slices_)), size_(o.size_) {
    o.size_ = 0;
  }
  BufferChain& operator=(BufferChain&& o) noexcept {
    slices_ = std::move(o.slices_);
    size_ = o.size_;
    o.slices_.clear();
    o.size_ = 0;
    return *this;
  }

  size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  size_t sliceCount() const noexcept { return slices_.size(); }
  // The memory the chain holds, not its bytes: every slice's capacity plus
  // kSliceOverhead (its ring entry and allocation header, estimated). A
  // chain of 100-byte reads in 16 KiB buffers holds 160 times its size().
  static constexpr size_t kSliceOverhead = 64;
  size_t footprint() const noexcept;
  const Slice& slice(size_t i) const { return slices_[i]; }
  Slice& slice(size_t i) { return slices_[i]; }

  void append(Slice&& s);
  void prepend(Slice&& s);
  // Copies bytes in, filling the tailroom of the last slice first.
  void append(const void* p, size_t n);
  void append(std::string_view s) { append(s.data(), s.size()); }
  void append(const std::vector<uint8_t>& v) { append(v.data(), v.size()); }
  void appendByte(uint8_t b) { append(&b, 1); }
  // Splices all of `other` onto the end; `other` is left empty.
  void moveFrom(BufferChain& other);
  // Moves the first n bytes (n <= other.size()) of `other` onto the end.
  // Whole slices move; a slice cut in two has its front part copied.
  void moveFrom(BufferChain& other, size_t n);

  // Drops n bytes (n <= size()) from the front.
  void drain(size_t n);
  void clear() noexcept {
    slices_.clear();
    size_ = 0;
  }

  // Copies up to n bytes starting at `offset` into dst; returns the count.
  size_t copyOut(size_t offset, void* dst, size_t n) const;
  uint8_t byteAt(size_t offset) const;
  std::vector<uint8_t> toVector() const;
  std::string toString() const;

  // Makes the first n bytes (n <= size()) contiguous and returns them.
  uint8_t* linearize(size_t n);

  // Tail space for reads: returns a writable region of at least `min` bytes
  // (a new slice when the last one lacks room). commit(n) then makes n of
  // them part of the data.
  uint8_t* reserve(size_t min, size_t* available);
  void commit(size_t n);

 private:
  SliceRing slices_;
  size_t size_ = 0;
};

}  // namespace vt
