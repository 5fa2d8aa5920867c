// Shared by the libFuzzer targets: the input as one slice and as many
// slices cut where the input itself says, and a check that aborts (so the
// fuzzer records a crash) with a message.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "buffer/buffer_chain.h"
#include "codec/length_frame.h"

namespace vt::fuzz {

inline void check(bool ok, const char* what, const std::string& detail = "") {
  if (!ok) {
    std::fprintf(stderr, "fuzz invariant failed: %s %s\n", what, detail.c_str());
    std::abort();
  }
}

inline BufferChain wholeChain(const uint8_t* data, size_t size) {
  BufferChain c;
  if (size) c.append(Slice::copyOf(data, size));
  return c;
}

// Slices of 1..8 bytes whose lengths come from the input bytes, so that
// the fuzzer explores the cut points together with the content.
inline BufferChain slicedChain(const uint8_t* data, size_t size) {
  BufferChain c;
  size_t pos = 0;
  uint32_t h = 2166136261u ^ static_cast<uint32_t>(size);
  while (pos < size) {
    h = (h ^ data[pos]) * 16777619u;
    size_t n = 1 + (h >> 7) % 8;
    if (n > size - pos) n = size - pos;
    c.append(Slice::copyOf(data + pos, n));
    pos += n;
  }
  return c;
}

inline const char* statusName(codec::DecodeStatus s) {
  return s == codec::DecodeStatus::kDone ? "done" : s == codec::DecodeStatus::kInvalid ? "invalid" : "need";
}

// Common invariants of a packet result against its input.
inline void checkPacket(const codec::PacketDecodeResult& r, size_t size) {
  if (r.status == codec::DecodeStatus::kDone) {
    check(r.consumed <= size, "consumed <= size");
    check(r.payload_offset + r.payload_size <= r.consumed, "payload inside unit");
    check(r.payload_size <= codec::kMaxPacketPayload, "payload <= 65535");
  } else if (r.status == codec::DecodeStatus::kInvalid) {
    check(!r.error.empty(), "invalid has a message");
  }
}

inline std::string payloadOf(const BufferChain& in, const codec::PacketDecodeResult& r) {
  std::string p(r.payload_size, '\0');
  in.copyOut(r.payload_offset, p.data(), p.size());
  return p;
}

inline std::string summarizePacket(const BufferChain& in, const codec::PacketDecodeResult& r) {
  std::string s = statusName(r.status);
  if (r.status != codec::DecodeStatus::kDone) return s;
  return s + " " + std::to_string(r.consumed) + " " + std::to_string(r.payload_offset) + " " +
         (r.address ? r.address->toString() : "-") + " " + payloadOf(in, r);
}

// Every input must give the same answer whole and sliced; returns it.
template <typename Decode>
std::string checkSplitsAgree(const uint8_t* data, size_t size, Decode&& summarize) {
  BufferChain whole = wholeChain(data, size);
  BufferChain sliced = slicedChain(data, size);
  std::string a = summarize(whole);
  std::string b = summarize(sliced);
  check(a == b, "whole and sliced differ", a + " / " + b);
  return a;
}

}  // namespace vt::fuzz
