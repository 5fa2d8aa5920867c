// RateLimit: a bandwidth limit in bytes per second, one token bucket per
// direction, shared (shared_ptr) by every TcpStream it is attached to, so
// that all of one user's connections draw from the same budget
// (docs/server.md "Rate limit").
//
// The bucket holds at most 100 ms of rate (16 KiB at least): a short burst
// passes at once, and over seconds the rate is the limit within a few per
// cent. Reads may overdraw it (the bytes are already in); the reader then
// pauses until the debt is paid. Writes never overdraw: what the bucket
// cannot pay waits in the stream's queue (counted in its bufferedBytes, so
// the layers above see their watermarks and stop producing).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace vt::stream {

class TokenBucket {
 public:
  explicit TokenBucket(uint64_t bytes_per_s)
      : rate_(static_cast<double>(bytes_per_s)),
        burst_(std::max(rate_ / 10.0, 16384.0)),
        tokens_(burst_) {}

  uint64_t rate() const { return static_cast<uint64_t>(rate_); }
  // A new rate from now on (a config reload): the burst follows, the
  // balance stays (capped to the new burst).
  void setRate(uint64_t bytes_per_s) {
    rate_ = static_cast<double>(bytes_per_s);
    burst_ = std::max(rate_ / 10.0, 16384.0);
    tokens_ = std::min(tokens_, burst_);
  }

  // The balance after refilling up to `now_ms` (negative: debt).
  double balance(uint64_t now_ms) {
    if (now_ms > last_ms_) {
      tokens_ = std::min(burst_, tokens_ + rate_ * static_cast<double>(now_ms - last_ms_) / 1000.0);
      last_ms_ = now_ms;
    }
    return tokens_;
  }
  void take(uint64_t now_ms, size_t n) {
    balance(now_ms);
    tokens_ -= static_cast<double>(n);
    taken_ += n;
  }
  // Milliseconds until the balance reaches `want` (at most the burst); >= 1.
  uint64_t msUntil(uint64_t now_ms, double want) {
    want = std::min(want, burst_);
    double missing = want - balance(now_ms);
    if (missing <= 0) return 1;
    return std::max<uint64_t>(1, static_cast<uint64_t>(missing * 1000.0 / rate_) + 1);
  }
  uint64_t taken() const { return taken_; }

 private:
  double rate_;
  double burst_;
  double tokens_;
  uint64_t last_ms_ = 0;
  uint64_t taken_ = 0;
};

struct RateLimit {
  explicit RateLimit(uint64_t bytes_per_s) : in(bytes_per_s), out(bytes_per_s) {}
  void setRate(uint64_t bytes_per_s) {
    in.setRate(bytes_per_s);
    out.setRate(bytes_per_s);
  }
  TokenBucket in;   // bytes read from the peer
  TokenBucket out;  // bytes written to the peer
  uint64_t read_pauses = 0;   // times a reader paused for debt
  uint64_t write_waits = 0;   // times bytes waited for tokens
};

}  // namespace vt::stream
