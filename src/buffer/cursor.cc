#include "buffer/cursor.h"

#include "core/bytes.h"

namespace vt {

bool Cursor::readBytes(void* dst, size_t n) noexcept {
  if (!has(n)) return false;
  chain_.copyOut(pos_, dst, n);
  pos_ += n;
  return true;
}

bool Cursor::readU8(uint8_t& v) noexcept { return readBytes(&v, 1); }

bool Cursor::readBe16(uint16_t& v) noexcept {
  uint8_t b[2];
  if (!readBytes(b, 2)) return false;
  v = loadBe16(b);
  return true;
}

bool Cursor::readLe16(uint16_t& v) noexcept {
  uint8_t b[2];
  if (!readBytes(b, 2)) return false;
  v = loadLe16(b);
  return true;
}

bool Cursor::readLe32(uint32_t& v) noexcept {
  uint8_t b[4];
  if (!readBytes(b, 4)) return false;
  v = loadLe32(b);
  return true;
}

bool Cursor::skip(size_t n) noexcept {
  if (!has(n)) return false;
  pos_ += n;
  return true;
}

}  // namespace vt
