// ResolverPool: name resolution shared fairly between keys (vless-server:
// users), so that one key's slow names cannot hold every thread of libuv's
// pool and stall everyone else's lookups (docs/server.md "Name
// resolution").
//
//   - at most `max_in_flight` getaddrinfo calls at once (the thread pool's
//     size), and at most `per_key_in_flight` of them for one key;
//   - a key's further lookups wait in its own queue (at most
//     `per_key_queued`; beyond that they fail at once, "resolver busy");
//     when a thread frees, the next waiting key in round-robin order goes;
//   - every lookup has a deadline: a caller gets "timed out" then, whether
//     its lookup was still waiting or running. A running getaddrinfo cannot
//     be interrupted, so its thread, and its key's slot, stay taken until
//     it returns: a key with slow names only ever slows itself.
//
// PooledLookup is one caller's handle (like event::Resolver): its callback
// never runs after cancel() or after it is destroyed.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/error.h"
#include "event/loop.h"
#include "event/socket_address.h"
#include "event/timer.h"

namespace vt::event {

class PooledLookup;

class ResolverPool {
 public:
  struct Options {
    size_t max_in_flight = 16;
    size_t per_key_in_flight = 4;
    size_t per_key_queued = 256;
  };
  struct Stats {
    uint64_t lookups = 0;
    uint64_t queued = 0;     // had to wait for a slot
    uint64_t busy = 0;       // refused: the key's queue was full
    uint64_t timeouts = 0;   // the caller gave up at its deadline
    uint64_t late = 0;       // getaddrinfo returned after its caller gave up
  };

  ResolverPool(Loop& loop, Options opts);
  ~ResolverPool();
  ResolverPool(const ResolverPool&) = delete;
  ResolverPool& operator=(const ResolverPool&) = delete;

  const Stats& stats() const { return stats_; }
  size_t inFlight() const { return in_flight_; }
  size_t inFlight(const std::string& key) const;
  const Options& options() const { return opts_; }

 private:
  friend class PooledLookup;
  struct Job;
  struct Key {
    size_t in_flight = 0;
    std::deque<Job*> queued;
  };

  void submit(Job* job);
  void start(Job* job);
  void remove(Job* job);  // a queued job whose caller gave up
  void finished(Job* job);
  void pump();
  static void onDone(void* req, int status, void* res);

  Loop& loop_;
  Options opts_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  std::unordered_map<std::string, Key> keys_;
  std::deque<std::string> ready_;  // keys with queued jobs, round-robin
  size_t in_flight_ = 0;
  Stats stats_;
};

class PooledLookup {
 public:
  using Callback = std::function<void(Result<std::vector<SocketAddress>>)>;

  explicit PooledLookup(ResolverPool& pool);
  ~PooledLookup();
  PooledLookup(const PooledLookup&) = delete;
  PooledLookup& operator=(const PooledLookup&) = delete;

  // One lookup at a time (a new one cancels the previous); the callback
  // always runs on a later loop iteration, addresses in the resolver's
  // order, duplicates removed, port set.
  void resolve(const std::string& key, const std::string& host, uint16_t port,
               uint64_t timeout_ms, Callback cb);
  void cancel();
  bool pending() const { return job_ != nullptr; }

 private:
  friend class ResolverPool;
  void deliver(Result<std::vector<SocketAddress>> r);

  ResolverPool& pool_;
  ResolverPool::Job* job_ = nullptr;
  Callback cb_;
  Timer deadline_;
};

}  // namespace vt::event
