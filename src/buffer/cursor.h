// Cursor: reads across the slices of a chain without flattening it. Decoders
// parse through a Cursor and only consume (drain) the chain once a whole unit
// has parsed, so a NeedMore result leaves the input untouched.
#pragma once

#include <cstddef>
#include <cstdint>

#include "buffer/buffer_chain.h"

namespace vt {

class Cursor {
 public:
  explicit Cursor(const BufferChain& chain, size_t offset = 0) noexcept
      : chain_(chain), pos_(offset) {}

  size_t position() const noexcept { return pos_; }
  size_t remaining() const noexcept { return chain_.size() > pos_ ? chain_.size() - pos_ : 0; }
  bool has(size_t n) const noexcept { return remaining() >= n; }

  // Each read returns false, and moves nothing, when too few bytes remain.
  bool readU8(uint8_t& v) noexcept;
  bool readBe16(uint16_t& v) noexcept;
  bool readLe16(uint16_t& v) noexcept;
  bool readLe32(uint32_t& v) noexcept;
  bool readBytes(void* dst, size_t n) noexcept;
  bool skip(size_t n) noexcept;

 private:
  const BufferChain& chain_;
  size_t pos_;
};

}  // namespace vt
