// ConnectionPool: idle VLESS connections to the server, kept for the next
// flow (connection reuse, TLV 0x07: docs/protocol.md 3.8, docs/client.md
// "Connection reuse").
//
// A flow whose chunked session ended cleanly both ways gives its inner
// stream (TLS over TCP, connected, nothing pending from the server) back
// through put(); the next TCP flow take()s the most recently used one and
// sends its request on it: no TCP or TLS handshake. While idle, a
// connection is watched: the server closing it, or sending anything at all
// (there is no request in flight), drops it, so a flow is never put on a
// connection already known dead. Idle connections are closed after
// `idleMs` (below the server's reuse_idle_timeout, so the client closes
// first) and at most `maxIdle` are kept (the oldest goes).
//
// Memory: an idle TLS connection keeps mbedTLS's two record buffers
// (~33 KiB) and a socket; maxIdle bounds that.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <vector>

#include "event/loop.h"
#include "event/timer.h"
#include "stream/stream.h"

namespace vt::client {

struct ConnectionPoolStats {
  uint64_t released = 0;       // put() took a connection
  uint64_t reused = 0;         // take() gave one out
  uint64_t expired = 0;        // closed after idleMs
  uint64_t overflow = 0;       // closed: maxIdle reached
  uint64_t serverClosed = 0;   // the server closed (or wrote to) an idle one
};

class ConnectionPool {
 public:
  ConnectionPool(event::Loop& loop, uint64_t idleMs, size_t maxIdle);
  ~ConnectionPool();
  ConnectionPool(const ConnectionPool&) = delete;
  ConnectionPool& operator=(const ConnectionPool&) = delete;

  void put(stream::StreamPtr connection);
  // The freshest idle connection, or null.
  stream::StreamPtr take();
  // Closes every idle connection (shutdown).
  void clear();

  size_t idle() const { return idle_.size(); }
  const ConnectionPoolStats& stats() const { return stats_; }

 private:
  struct Entry final : stream::StreamCallbacks {
    Entry(ConnectionPool& p, stream::StreamPtr s, uint64_t t)
        : pool(p), stream(std::move(s)), since(t) {}
    void onConnected() override {}
    void onData(BufferChain& data, bool end_stream) override;
    void onAboveHighWatermark() override {}
    void onBelowLowWatermark() override {}
    void onClose(stream::CloseReason reason, const std::string& detail) override;
    ConnectionPool& pool;
    stream::StreamPtr stream;
    uint64_t since;
    bool unlinked = false;  // out of idle_: callbacks are ignored
    std::list<std::unique_ptr<Entry>>::iterator it;
  };

  // Unlinks `e` and closes its stream (unless it already closed); the
  // Entry is freed on a later loop pass (we may be inside its callback).
  void drop(Entry* e, bool closeStream);
  void reapLater();
  void arm();
  void onTimer();

  event::Loop& loop_;
  uint64_t idleMs_;
  size_t maxIdle_;
  std::list<std::unique_ptr<Entry>> idle_;  // front: most recently released
  std::vector<std::unique_ptr<Entry>> dead_;
  bool reapPosted_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  event::Timer timer_;
  ConnectionPoolStats stats_;
};

}  // namespace vt::client
