#include "netstack/lwip_lock.h"

#include <cassert>
#include <mutex>

namespace vt::netstack {
namespace {

std::mutex gLwipMutex;
// How many times this thread holds gLwipMutex (recursion without the cost
// of a recursive mutex's owner bookkeeping).
thread_local uint32_t tDepth = 0;

}  // namespace

void LwipLock::lock() noexcept {
  if (tDepth++ == 0) gLwipMutex.lock();
}

void LwipLock::unlock() noexcept {
  assert(tDepth > 0);
  if (--tDepth == 0) gLwipMutex.unlock();
}

bool LwipLock::heldByThisThread() noexcept {
  return tDepth > 0;
}

}  // namespace vt::netstack
