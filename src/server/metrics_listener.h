// MetricsListener: a minimal HTTP/1.x server on the Server's loop for a
// Prometheus scraper ([metrics] in the config, docs/server.md "Metrics").
//
//   GET /metrics  -> 200, the body from the callback
//                    (Content-Type: text/plain; version=0.0.4; charset=utf-8)
//   GET /other    -> 404        other method -> 405 (Allow: GET)
//   not HTTP      -> 400        head past max_head_bytes -> 431
//
// One request per connection (Connection: close): the answer is written,
// our direction ends, and the connection closes once the client has read
// it and closed. Every byte is hostile: the request head is bounded, each
// connection has a deadline from accept (not reset by bytes), and at most
// max_connections are open at once (more are closed at accept).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/error.h"
#include "event/loop.h"
#include "event/socket_address.h"

namespace vt::stream {
class TcpListener;
class TcpStream;
}  // namespace vt::stream

namespace vt::server {

// A whole request head (through the blank line), classified: what the
// listener answers (exposed for the fuzzer).
enum class MetricsRequest { kMetrics, kNotFound, kNotGet, kBad };
MetricsRequest classifyMetricsRequest(std::string_view head);

class MetricsListener {
 public:
  using BodyFn = std::function<std::string()>;
  struct Options {
    uint64_t deadline_ms = 5000;   // a connection is closed this long after accept
    size_t max_connections = 64;   // open at once; more are closed at accept
    size_t max_head_bytes = 8192;  // request line + headers
  };
  struct Stats {
    uint64_t requests = 0;  // answered with 200
    uint64_t errors = 0;    // answered 400, 404, 405 or 431
    uint64_t refused = 0;   // closed at accept (max_connections)
    uint64_t timeouts = 0;  // closed at the deadline
  };

  // Binds `addr` (port 0: any) and logs where it serves; `body` runs on the
  // loop thread for each GET /metrics.
  static Result<std::unique_ptr<MetricsListener>> start(event::Loop& loop,
                                                        const event::SocketAddress& addr,
                                                        BodyFn body, Options opts);
  static Result<std::unique_ptr<MetricsListener>> start(event::Loop& loop,
                                                        const event::SocketAddress& addr,
                                                        BodyFn body) {
    return start(loop, addr, std::move(body), Options{});
  }
  // Closes the listener and every connection (silently). Not from inside
  // the body callback.
  ~MetricsListener();
  MetricsListener(const MetricsListener&) = delete;
  MetricsListener& operator=(const MetricsListener&) = delete;

  event::SocketAddress localAddress() const;
  size_t connections() const { return conns_.size(); }
  const Stats& stats() const { return stats_; }

 private:
  class Conn;
  MetricsListener(event::Loop& loop, BodyFn body, Options opts);
  void onAccept(std::unique_ptr<stream::TcpStream> tcp);
  void onConnClosed(Conn* c);

  event::Loop& loop_;
  BodyFn body_;
  Options opts_;
  Stats stats_;
  std::unique_ptr<stream::TcpListener> listener_;
  std::unordered_map<Conn*, std::unique_ptr<Conn>> conns_;
};

}  // namespace vt::server
