// BufferChain: a move-only FIFO of Slices, the unit in which bytes travel
// between layers. Appending a Slice or another chain moves memory without
// copying; write(BufferChain&) APIs drain their argument.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "buffer/slice.h"

namespace vt {

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
  // kSliceOverhead (its deque entry and allocation header, estimated). A
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
  std::deque<Slice> slices_;
  size_t size_ = 0;
};

}  // namespace vt
