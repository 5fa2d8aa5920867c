// The process-wide lock around lwIP (internal to src/netstack).
//
// lwIP keeps its state in C globals (pcb lists, tcp_ticks, the netif list,
// the input packet being processed, our pcb index), and a process may run
// several NetStacks, each driven from its own loop thread (one per client
// core). Every entry into lwIP therefore holds one process-wide lock:
// NetStack's and TcpFlow's public methods and destructors, InputBuffer, and
// the release hooks of Slices that adopted pbufs take it themselves, so
// callers never do. It is recursive per thread: lwIP calls our callbacks
// with it held, and session code may call TcpFlow/NetStack methods from
// there. Uncontended it costs one thread-local increment plus one atomic
// exchange and one store (a futex only when another thread holds it).
//
// Rule for owners: never wait for another NetStack's thread from inside a
// NetStack or TcpFlow callback (that thread may be waiting for this lock).
// Cross-thread entries stay uv_async_send only (docs/architecture.md).
#pragma once

#include <cstdint>

namespace vt::netstack {

class NetStack;

class LwipLock {
 public:
  static void lock() noexcept;
  static void unlock() noexcept;
  static bool heldByThisThread() noexcept;
};

// Holds the lock for a scope, without touching which NetStack lwIP serves:
// for pbuf allocation and release, which use no per-stack state.
class LwipLockGuard {
 public:
  LwipLockGuard() noexcept { LwipLock::lock(); }
  ~LwipLockGuard() { LwipLock::unlock(); }
  LwipLockGuard(const LwipLockGuard&) = delete;
  LwipLockGuard& operator=(const LwipLockGuard&) = delete;
};

// Holds the lock and makes `stack` the NetStack lwIP serves for the scope:
// its netif is the one lwIP's timers and pcb evictions may touch
// (vt_tcp_current_netif, multi-netif.patch) and its TCP clock is in
// tcp_ticks. Restores the previous one on exit (an entry into another
// NetStack nested on the same thread). `stack` null: lock only (a TcpFlow
// whose NetStack is gone touches no lwIP state).
class LwipEntry {
 public:
  explicit LwipEntry(NetStack* stack) noexcept;
  ~LwipEntry();
  LwipEntry(const LwipEntry&) = delete;
  LwipEntry& operator=(const LwipEntry&) = delete;

 private:
  NetStack* prev_ = nullptr;
  bool switched_ = false;
};

}  // namespace vt::netstack
