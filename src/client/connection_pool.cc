#include "client/connection_pool.h"

#include "core/log.h"

namespace vt::client {

ConnectionPool::ConnectionPool(event::Loop& loop, uint64_t idleMs, size_t maxIdle)
    : loop_(loop), idleMs_(idleMs), maxIdle_(maxIdle), timer_(loop) {}

ConnectionPool::~ConnectionPool() {
  *alive_ = false;
  clear();
}

void ConnectionPool::put(stream::StreamPtr connection) {
  if (connection == nullptr) return;
  if (maxIdle_ == 0) {
    connection->close(stream::CloseReason::kLocalClose);
    return;
  }
  while (idle_.size() >= maxIdle_) {
    stats_.overflow++;
    drop(idle_.back().get(), true);
  }
  auto e = std::make_unique<Entry>(*this, std::move(connection), loop_.now());
  Entry* raw = e.get();
  idle_.push_front(std::move(e));
  raw->it = idle_.begin();
  raw->stream->setCallbacks(*raw);
  stats_.released++;
  arm();
}

stream::StreamPtr ConnectionPool::take() {
  if (idle_.empty()) return nullptr;
  std::unique_ptr<Entry> e = std::move(idle_.front());
  idle_.pop_front();
  stream::StreamPtr s = std::move(e->stream);
  stats_.reused++;
  // The caller sets its own callbacks at once; until then (and while the
  // entry waits to be freed) the entry ignores the stream.
  e->unlinked = true;
  dead_.push_back(std::move(e));
  reapLater();
  return s;
}

void ConnectionPool::clear() {
  timer_.stop();
  while (!idle_.empty()) drop(idle_.front().get(), true);
  dead_.clear();
}

void ConnectionPool::Entry::onData(BufferChain& data, bool end_stream) {
  // Nothing may come between two flows; whatever it is (or the end), the
  // connection is not fit for the next flow.
  data.clear();
  if (unlinked) return;
  pool.stats_.serverClosed++;
  VT_DEBUG("pool: idle connection to %s: server %s; dropped", stream->peerName().c_str(),
           end_stream ? "closed it" : "sent bytes");
  pool.drop(this, true);
}

void ConnectionPool::Entry::onClose(stream::CloseReason reason, const std::string& detail) {
  if (unlinked) return;
  pool.stats_.serverClosed++;
  VT_DEBUG("pool: idle connection closed: %s %s", stream::closeReasonName(reason), detail.c_str());
  pool.drop(this, false);
}

void ConnectionPool::drop(Entry* e, bool closeStream) {
  if (e->unlinked) return;
  e->unlinked = true;
  dead_.push_back(std::move(*e->it));  // freed on a later pass: we may be in its callback
  idle_.erase(e->it);
  // The close reports back into e->onClose, which sees `unlinked`.
  if (closeStream && e->stream != nullptr) e->stream->close(stream::CloseReason::kLocalClose);
  reapLater();
}

void ConnectionPool::reapLater() {
  if (reapPosted_) return;
  reapPosted_ = true;
  std::weak_ptr<bool> alive = alive_;
  loop_.post([this, alive] {
    auto a = alive.lock();
    if (!a || !*a) return;
    reapPosted_ = false;
    dead_.clear();
  });
}

void ConnectionPool::arm() {
  if (idle_.empty()) {
    timer_.stop();
    return;
  }
  const uint64_t oldest = idle_.back()->since;
  const uint64_t now = loop_.now();
  timer_.start(oldest + idleMs_ > now ? oldest + idleMs_ - now : 0, [this] { onTimer(); });
}

void ConnectionPool::onTimer() {
  const uint64_t now = loop_.now();
  while (!idle_.empty() && now - idle_.back()->since >= idleMs_) {
    stats_.expired++;
    drop(idle_.back().get(), true);
  }
  arm();
}

}  // namespace vt::client
