#include "buffer/buffer_chain.h"

#include <algorithm>
#include <cassert>
#include <cstring>

namespace vt {

void SliceRing::grow() {
  const size_t cap = cap_ == 0 ? kFirstCapacity : cap_ * 2;
  auto* nb = static_cast<Slice*>(::operator new(cap * sizeof(Slice)));
  for (size_t i = 0; i < count_; ++i) {
    Slice& old = (*this)[i];
    new (&nb[i]) Slice(std::move(old));
    old.~Slice();
  }
  ::operator delete(buf_);
  buf_ = nb;
  cap_ = cap;
  head_ = 0;
}

void SliceRing::release() noexcept {
  while (count_ > 0) pop_front();
  ::operator delete(buf_);
  buf_ = nullptr;
  cap_ = head_ = 0;
}

void BufferChain::append(Slice&& s) {
  if (s.empty()) return;
  size_ += s.size();
  slices_.push_back(std::move(s));
}

void BufferChain::prepend(Slice&& s) {
  if (s.empty()) return;
  size_ += s.size();
  slices_.push_front(std::move(s));
}

void BufferChain::append(const void* p, size_t n) {
  auto* src = static_cast<const uint8_t*>(p);
  while (n > 0) {
    if (slices_.empty() || slices_.back().tailroom() == 0) {
      slices_.push_back(Slice::allocate(std::max(n, size_t{256}) < kDefaultSliceSize
                                            ? std::max(n, size_t{256})
                                            : std::min(n, kDefaultSliceSize)));
    }
    Slice& last = slices_.back();
    size_t take = std::min(n, last.tailroom());
    std::memcpy(last.append(take), src, take);
    src += take;
    n -= take;
    size_ += take;
  }
}

size_t BufferChain::footprint() const noexcept {
  size_t n = 0;
  for (const Slice& s : slices_) n += s.capacity() + kSliceOverhead;
  return n;
}

void BufferChain::moveFrom(BufferChain& other) {
  if (&other == this) return;
  for (auto& s : other.slices_) {
    size_ += s.size();
    slices_.push_back(std::move(s));
  }
  other.slices_.clear();
  other.size_ = 0;
}

void BufferChain::moveFrom(BufferChain& other, size_t n) {
  assert(n <= other.size_);
  while (n > 0) {
    Slice& front = other.slices_.front();
    if (front.size() <= n) {
      n -= front.size();
      other.size_ -= front.size();
      size_ += front.size();
      slices_.push_back(std::move(front));
      other.slices_.pop_front();
    } else {
      append(front.data(), n);
      front.trimFront(n);
      other.size_ -= n;
      n = 0;
    }
  }
}

void BufferChain::drain(size_t n) {
  assert(n <= size_);
  size_ -= n;
  while (n > 0) {
    Slice& front = slices_.front();
    if (front.size() <= n) {
      n -= front.size();
      slices_.pop_front();
    } else {
      front.trimFront(n);
      n = 0;
    }
  }
  // Drop empty trailing slices left by reserve() so empty() chains hold nothing.
  if (size_ == 0) slices_.clear();
}

size_t BufferChain::copyOut(size_t offset, void* dst, size_t n) const {
  auto* out = static_cast<uint8_t*>(dst);
  size_t copied = 0;
  for (const auto& s : slices_) {
    if (n == 0) break;
    if (offset >= s.size()) {
      offset -= s.size();
      continue;
    }
    size_t take = std::min(n, s.size() - offset);
    std::memcpy(out + copied, s.data() + offset, take);
    copied += take;
    n -= take;
    offset = 0;
  }
  return copied;
}

uint8_t BufferChain::byteAt(size_t offset) const {
  for (const auto& s : slices_) {
    if (offset < s.size()) return s.data()[offset];
    offset -= s.size();
  }
  assert(false && "byteAt past end");
  return 0;
}

std::vector<uint8_t> BufferChain::toVector() const {
  std::vector<uint8_t> v(size_);
  copyOut(0, v.data(), size_);
  return v;
}

std::string BufferChain::toString() const {
  std::string v(size_, '\0');
  copyOut(0, v.data(), size_);
  return v;
}

uint8_t* BufferChain::linearize(size_t n) {
  assert(n <= size_);
  if (n == 0) return slices_.empty() ? nullptr : slices_.front().data();
  if (slices_.front().size() >= n) return slices_.front().data();
  Slice merged = Slice::allocate(n);
  copyOut(0, merged.append(n), n);
  // Remove the first n bytes and put the merged slice in their place.
  size_t keep = size_;
  drain(n);
  slices_.push_front(std::move(merged));
  size_ = keep;
  return slices_.front().data();
}

uint8_t* BufferChain::reserve(size_t min, size_t* available) {
  if (slices_.empty() || slices_.back().tailroom() < min) {
    slices_.push_back(Slice::allocate(std::max(min, kDefaultSliceSize)));
  }
  Slice& last = slices_.back();
  if (available) *available = last.tailroom();
  return last.tail();
}

void BufferChain::commit(size_t n) {
  assert(!slices_.empty() && slices_.back().tailroom() >= n);
  slices_.back().append(n);
  size_ += n;
}

}  // namespace vt
