#include "event/resolver_pool.h"

#include "event/resolver.h"

#include <uv.h>

#include <algorithm>

namespace vt::event {

struct ResolverPool::Job {
  uv_getaddrinfo_t req{};
  ResolverPool* pool;
  std::shared_ptr<bool> pool_alive;
  PooledLookup* owner;  // null once the caller gave up
  std::string key;
  std::string host;
  uint16_t port;
  bool started = false;
};

ResolverPool::ResolverPool(Loop& loop, Options opts) : loop_(loop), opts_(opts) {
  opts_.max_in_flight = std::max<size_t>(opts_.max_in_flight, 1);
  opts_.per_key_in_flight = std::clamp<size_t>(opts_.per_key_in_flight, 1, opts_.max_in_flight);
}

ResolverPool::~ResolverPool() {
  *alive_ = false;
  // Waiting jobs never started: free them (their callers are gone or will
  // find their job_ cleared). Running ones free themselves in onDone.
  for (auto& [name, k] : keys_) {
    for (Job* j : k.queued) {
      if (j->owner != nullptr) j->owner->job_ = nullptr;
      delete j;
    }
  }
}

size_t ResolverPool::inFlight(const std::string& key) const {
  auto it = keys_.find(key);
  return it == keys_.end() ? 0 : it->second.in_flight;
}

void ResolverPool::submit(Job* job) {
  ++stats_.lookups;
  Key& k = keys_[job->key];
  if (k.in_flight < opts_.per_key_in_flight && in_flight_ < opts_.max_in_flight &&
      k.queued.empty()) {
    start(job);
    return;
  }
  if (k.queued.size() >= opts_.per_key_queued) {
    ++stats_.busy;
    PooledLookup* owner = job->owner;
    std::string msg = "resolve " + job->host + ": resolver busy (" +
                      std::to_string(opts_.per_key_queued) + " lookups of this key waiting)";
    if (k.in_flight == 0 && k.queued.empty()) keys_.erase(job->key);
    delete job;
    // Reported on a later iteration, like every outcome (the owner may
    // still cancel: that stops its timer).
    owner->job_ = nullptr;
    owner->deadline_.start(0, [owner, msg] { owner->deliver(Error(Errc::kResolve, msg)); });
    return;
  }
  ++stats_.queued;
  if (k.queued.empty()) ready_.push_back(job->key);
  k.queued.push_back(job);
}

void ResolverPool::start(Job* job) {
  Key& k = keys_[job->key];
  ++k.in_flight;
  ++in_flight_;
  job->started = true;
  job->req.data = job;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  int rc = uv_getaddrinfo(
      loop_.raw(), &job->req,
      [](uv_getaddrinfo_t* req, int status, addrinfo* res) { onDone(req, status, res); },
      job->host.c_str(), nullptr, &hints);
  if (rc != 0) {
    // Reported like a failed lookup, on a later iteration.
    --k.in_flight;
    --in_flight_;
    job->started = false;
    std::string msg = "resolve " + job->host + ": " + uv_strerror(rc);
    PooledLookup* owner = job->owner;
    if (k.in_flight == 0 && k.queued.empty()) keys_.erase(job->key);
    delete job;
    if (owner != nullptr) {
      owner->job_ = nullptr;
      owner->deadline_.start(0, [owner, msg] { owner->deliver(Error(Errc::kResolve, msg)); });
    }
  }
}

void ResolverPool::remove(Job* job) {
  auto it = keys_.find(job->key);
  if (it == keys_.end()) return;
  auto& q = it->second.queued;
  q.erase(std::remove(q.begin(), q.end(), job), q.end());
  if (q.empty()) ready_.erase(std::remove(ready_.begin(), ready_.end(), job->key), ready_.end());
  if (it->second.in_flight == 0 && q.empty()) keys_.erase(it);
  delete job;
}

void ResolverPool::onDone(void* r, int status, void* res_v) {
  auto* req = static_cast<uv_getaddrinfo_t*>(r);
  auto* res = static_cast<addrinfo*>(res_v);
  auto* job = static_cast<Job*>(req->data);
  Result<std::vector<SocketAddress>> result = Error(Errc::kResolve, "");
  if (status != 0) {
    result = Error(Errc::kResolve, "resolve " + job->host + ": " + uv_strerror(status));
  } else {
    result = addressesFromAddrinfo(res, job->host, job->port);
  }
  if (res != nullptr) uv_freeaddrinfo(res);
  if (!*job->pool_alive) {  // the pool is gone (shutdown)
    delete job;
    return;
  }
  ResolverPool* pool = job->pool;
  PooledLookup* owner = job->owner;
  if (owner == nullptr) ++pool->stats_.late;
  pool->finished(job);  // deletes job, frees the slot
  if (owner != nullptr) {
    owner->job_ = nullptr;
    owner->deadline_.stop();
    owner->deliver(std::move(result));
  }
  // Whatever deliver() did, the pool is still alive (it outlives the loop's
  // callbacks by contract), so the freed slot can go to the next key.
  pool->pump();
}

void ResolverPool::finished(Job* job) {
  auto it = keys_.find(job->key);
  if (it != keys_.end()) {
    --it->second.in_flight;
    if (it->second.in_flight == 0 && it->second.queued.empty()) keys_.erase(it);
  }
  --in_flight_;
  delete job;
}

void ResolverPool::pump() {
  size_t turns = ready_.size();
  while (in_flight_ < opts_.max_in_flight && !ready_.empty() && turns > 0) {
    std::string name = ready_.front();
    ready_.pop_front();
    auto it = keys_.find(name);
    if (it == keys_.end() || it->second.queued.empty()) {
      turns = ready_.size();
      continue;
    }
    Key& k = it->second;
    if (k.in_flight >= opts_.per_key_in_flight) {
      ready_.push_back(name);  // its turn comes when one of its own finishes
      --turns;
      continue;
    }
    Job* job = k.queued.front();
    k.queued.pop_front();
    if (!k.queued.empty()) ready_.push_back(name);
    start(job);
    turns = ready_.size();
  }
}

PooledLookup::PooledLookup(ResolverPool& pool) : pool_(pool), deadline_(pool.loop_) {}

PooledLookup::~PooledLookup() {
  cancel();
}

void PooledLookup::resolve(const std::string& key, const std::string& host, uint16_t port,
                           uint64_t timeout_ms, Callback cb) {
  cancel();
  cb_ = std::move(cb);
  auto* job = new ResolverPool::Job{};
  job->pool = &pool_;
  job->pool_alive = pool_.alive_;
  job->owner = this;
  job->key = key;
  job->host = host;
  job->port = port;
  job_ = job;
  deadline_.start(timeout_ms, [this, host, timeout_ms] {
    Callback cb = std::move(cb_);
    ++pool_.stats_.timeouts;
    cancel();
    if (cb) {
      cb(Error(Errc::kResolve, "resolve " + host + ": timed out after " +
                                   std::to_string(timeout_ms) + " ms"));
    }
  });
  pool_.submit(job);
}

void PooledLookup::cancel() {
  deadline_.stop();
  cb_ = nullptr;
  ResolverPool::Job* job = job_;
  job_ = nullptr;
  if (job == nullptr) return;
  if (job->started) {
    job->owner = nullptr;  // its thread runs on; onDone frees the slot
  } else {
    pool_.remove(job);
  }
}

void PooledLookup::deliver(Result<std::vector<SocketAddress>> r) {
  Callback cb = std::move(cb_);
  cb_ = nullptr;
  deadline_.stop();
  if (cb) cb(std::move(r));
}

}  // namespace vt::event
