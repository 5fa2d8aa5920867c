// BufferBudget: a process-wide bound on the memory queued in the sockets'
// write queues (docs/server.md, docs/client.md "Buffer budget"). Every
// TcpStream attached to it charges what it holds (bufferedMemory(): the
// buffers' capacity, not only their bytes). While
// the total is above the budget, every attached stream uses small
// watermarks (kPressureHigh/kPressureLow) instead of its own, so the layers
// above stop reading whatever feeds a queue that is not draining: the same
// per-direction backpressure as always, just earlier, and nothing dropped.
// Pressure ends when the total is back under 3/4 of the budget.
//
// One object per Server / Client (no globals); it must outlive the
// streams attached to it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <unordered_set>

namespace vt::stream {

class TcpStream;

class BufferBudget {
 public:
  static constexpr size_t kPressureHigh = 32 * 1024;
  static constexpr size_t kPressureLow = 8 * 1024;

  explicit BufferBudget(uint64_t limit_bytes) : limit_(limit_bytes) {}
  BufferBudget(const BufferBudget&) = delete;
  BufferBudget& operator=(const BufferBudget&) = delete;

  uint64_t limit() const { return limit_; }
  uint64_t used() const { return used_; }
  uint64_t peak() const { return peak_; }
  bool pressure() const { return pressure_; }
  uint64_t pressureEpisodes() const { return episodes_; }

  // For TcpStream.
  void attach(TcpStream* s) { streams_.insert(s); }
  void detach(TcpStream* s) { streams_.erase(s); }
  void charge(int64_t delta);

 private:
  uint64_t limit_;
  uint64_t used_ = 0;
  uint64_t peak_ = 0;
  uint64_t episodes_ = 0;
  bool pressure_ = false;
  bool notifying_ = false;
  std::unordered_set<TcpStream*> streams_;
};

}  // namespace vt::stream
