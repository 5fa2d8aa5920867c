// Server: the listeners of vless-server and the table of live sessions.
// No globals: a test can run two servers on one loop.
//
// Lifetime: stop() closes the listeners and every session; sessions finish
// asynchronously (each waits for its streams' onClose). Destroy the Server
// only after activeSessions() + closingSessions() reached 0, or after the
// loop has stopped for good.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "config/server_config.h"
#include "core/error.h"
#include "event/loop.h"
#include "event/socket_address.h"
#include "server/authenticator.h"
#include "server/egress_policy.h"
#include "event/log_summary.h"
#include "event/resolver_pool.h"
#include "event/timer.h"
#include "server/udp_nat.h"
#include "stream/buffer_budget.h"
#include "stream/rate_limit.h"

namespace vt::tls {
class TlsContext;
}
namespace vt::stream {
class MuxStream;
class TcpListener;
class TcpStream;
}  // namespace vt::stream

namespace vt::server {

class ServerSession;
class IpExit;

// Bytes and datagrams a session carried (docs/server.md "Stats"). Up:
// client -> target; down: target -> client. UDP payload bytes count in
// bytes_* too; IP sessions count their packets' bytes.
struct TrafficCounters {
  uint64_t bytes_up = 0;
  uint64_t bytes_down = 0;
  uint64_t udp_datagrams_up = 0;
  uint64_t udp_datagrams_down = 0;
  void add(const TrafficCounters& o) {
    bytes_up += o.bytes_up;
    bytes_down += o.bytes_down;
    udp_datagrams_up += o.udp_datagrams_up;
    udp_datagrams_down += o.udp_datagrams_down;
  }
};

// What a user has done since the server started (kept across reloads,
// also for a user a reload removed). `closed`: sessions (and reused
// flows) that ended; the live ones' bytes are summed when asked
// (server_stats.h).
struct UserCounters {
  uint64_t connections = 0;  // authenticated connections opened (not Mux streams)
  uint64_t mux_streams = 0;  // Mux streams opened
  TrafficCounters closed;
};

struct TotalCounters {
  uint64_t accepted = 0;     // connections past admission (any outcome)
  uint64_t connections = 0;  // authenticated connections opened (not Mux streams)
  uint64_t mux_streams = 0;  // Mux streams opened
  uint64_t fallbacks = 0;    // connections handed to the fallback
  TrafficCounters closed;    // of ended sessions; Mux connections' framing not counted
};

class Server {
 public:
  // Builds the TLS context (when cfg.tls is set) from the cert/key files.
  static Result<std::unique_ptr<Server>> create(event::Loop& loop, const config::ServerConfig& cfg);
  Server(event::Loop& loop, const config::ServerConfig& cfg, std::shared_ptr<tls::TlsContext> tls);
  // The listeners' TLS context (null for plain listeners).
  const tls::TlsContext* tlsContext() const { return tls_.get(); }
  // TLS counters over every context since start (a reload builds a new one).
  bool tlsEnabled() const { return tls_ != nullptr; }
  uint64_t tlsHandshakes() const;
  uint64_t tlsTicketsAccepted() const;
  // The [tls] context of `cfg` (its cert and key files read now); null
  // without [tls].
  static Result<std::shared_ptr<tls::TlsContext>> buildTls(const config::ServerConfig& cfg);
  // SIGHUP: the certificate and key again (renewed in place or at new
  // paths, new ALPN or ticket settings) for connections from now on; live
  // ones keep theirs. Without [tls] before or after: a restart (an error).
  // On an error the running context stays.
  Status reloadTls(const config::ServerConfig& fresh);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds every `listen` address; fails if any cannot be bound.
  Status start();
  // Closes the listeners and all sessions. Idempotent.
  void stop();

  // Bound addresses (port 0 in the config becomes the real port).
  std::vector<event::SocketAddress> localAddresses() const;
  size_t activeSessions() const { return active_; }
  size_t sessionCount() const { return sessions_.size(); }

  // For sessions.
  event::Loop& loop() { return loop_; }
  const config::ServerConfig& config() const { return cfg_; }
  const Authenticator& auth() const { return auth_; }
  UdpNatTable& udpNat() { return udp_nat_; }
  // The IP exit (CMD 5); null unless [ip] enabled = true and started.
  IpExit* ipExit() { return ip_exit_.get(); }
  // Name lookups, shared fairly between users (key: the user's name).
  event::ResolverPool& resolvers() { return resolvers_; }
  // Every socket's write queue counts here (docs/server.md "Buffer budget").
  stream::BufferBudget& bufferBudget() { return budget_; }
  // The thread pool's size libuv uses (UV_THREADPOOL_SIZE, else 4).
  static size_t threadPoolSize();
  // nullptr when a user may reach `a`; else why not. Counted when refused.
  const char* checkEgress(const event::SocketAddress& a) {
    const char* why = egress_.check(a);
    if (why != nullptr) ++egress_denied_;
    return why;
  }
  uint64_t egressDenied() const { return egress_denied_; }
  void onSessionClosing() { --active_; }

  // Admission (docs/server.md "Admission"). A connection is admitted in
  // onAccept against max_connections and its source's caps before any TLS
  // state exists; its session reports when it leaves the handshake phase
  // (authenticated, handed to the fallback, or closed) and when it closes.
  // "198.18.0.1" or "2001:db8:0:1::/64": what the per-source caps count.
  static std::string sourceKey(const event::SocketAddress& a);
  void onHandshakeDone(const std::string& source);
  void onSourceClosed(const std::string& source);
  // An authenticated connection (not a Mux stream) of `user`: false at
  // max_connections_per_user (`why` says so).
  bool admitUser(const char* user, std::string* why);
  void onUserConnectionDone(const char* user);
  struct AdmissionStats {
    uint64_t max_connections = 0;     // refused at max_connections
    uint64_t source_connections = 0;  // ... at max_connections_per_source
    uint64_t source_handshakes = 0;   // ... at max_handshakes_per_source
    uint64_t user_connections = 0;    // closed at max_connections_per_user
  };
  const AdmissionStats& admissionStats() const { return refused_; }
  // SIGHUP (docs/server.md "Reload"): the users of `fresh` (added, removed,
  // a new UUID or rate limit) and its admission limits take effect now.
  // The connections of a user who is gone or has a new UUID are closed;
  // every other connection carries on (a changed rate applies to its live
  // connections at once). What only a restart applies is named by the
  // caller (config::changedTomlKeys). Returns a summary.
  std::string reload(const config::ServerConfig& fresh);
  // A user's name as a pointer that lives as long as the Server: the key
  // of the per-user counters, stable across reloads.
  const char* userKey(const std::string& name);
  // The user's rate limit, shared by all its connections; null when the
  // user has none (docs/server.md "Rate limit").
  std::shared_ptr<stream::RateLimit> rateLimit(const config::ServerUser* user);
  // "alice 8000000 B/s: in 1234 B (5 read pauses), out 5678 B (9 waits)", one per limited user.
  std::vector<std::string> rateLimitSummary() const;
  size_t sourceConnections(const std::string& source) const {
    auto it = sources_.find(source);
    return it == sources_.end() ? 0 : it->second.connections;
  }
  void onSessionDone(ServerSession* s);
  // Mux: a stream the client opened on connection `parent`, run as a
  // session of its own; false (the stream is closed) at a cap, which
  // `why` names. `user` is the connection's user (config name).
  bool startMuxStream(std::unique_ptr<stream::MuxStream> s, const char* user, uint64_t parent,
                      std::string* why);
  void onMuxStreamDone(const char* user);
  size_t userStreams(const char* user) const {
    auto it = user_streams_.find(user);
    return it == user_streams_.end() ? 0 : it->second;
  }
  // Live authenticated connections of `user` (a userKey), Mux streams not
  // counted.
  size_t userConnections(const char* user) const {
    auto it = user_conns_.find(user);
    return it == user_conns_.end() ? 0 : it->second;
  }

  // Stats (server_stats.h). Counters of ended traffic; one add per event,
  // the live sessions' share is summed by whoever asks.
  const TotalCounters& totalCounters() const { return totals_; }
  // Every userKey seen (the configured users, and users a reload removed).
  const std::unordered_map<const char*, UserCounters>& userCounters() const { return user_stats_; }
  // A session (or a reused connection's flow) ended having carried `t`;
  // `carrier`: a Mux connection, whose streams count their own bytes.
  void onTrafficDone(const char* user, bool carrier, const TrafficCounters& t);
  void onFallback() { ++totals_.fallbacks; }
  // loop().now() when the Server was made.
  uint64_t startedMs() const { return started_ms_; }
  // Calls `fn` for every session not closing yet (in no particular order).
  // `fn` must not close sessions.
  void forEachSession(const std::function<void(const ServerSession&)>& fn) const;
  // The operator's close of the live session `id` (the "conn #ID" of the
  // log lines; a Mux connection takes its streams along). False when
  // there is none; else *what (if not null) describes it in one line:
  // "connection 12 alice 198.18.0.1:40000 -> example.test:443".
  bool closeConnection(uint64_t id, std::string* what);

 private:
  void onAccept(std::unique_ptr<stream::TcpStream> tcp);
  void refreshOwnAddresses();
  void noteRefused(uint64_t& counter, const event::SocketAddress& peer, const char* why);
  void writeRefusedSummary();

  struct SourceCount {
    uint32_t connections = 0;
    uint32_t handshakes = 0;  // TLS handshake or request header not done yet
  };

  event::Loop& loop_;
  config::ServerConfig cfg_;
  Authenticator auth_;
  EgressPolicy egress_;
  uint64_t egress_denied_ = 0;
  event::Timer own_addr_timer_;  // re-reads the interfaces' addresses
  std::shared_ptr<tls::TlsContext> tls_;
  uint64_t tls_handshakes_before_ = 0;  // of the contexts reloadTls replaced
  uint64_t tls_tickets_before_ = 0;
  std::vector<std::unique_ptr<stream::TcpListener>> listeners_;
  stream::BufferBudget budget_;    // before sessions_: their sockets charge it
  event::ResolverPool resolvers_;  // before sessions_: their lookups point into it
  UdpNatTable udp_nat_;  // before sessions_: their channels point into it
  std::unique_ptr<IpExit> ip_exit_;  // before sessions_: their IP sessions point into it
  std::unordered_map<ServerSession*, std::unique_ptr<ServerSession>> sessions_;
  std::unordered_map<const char*, size_t> user_streams_;  // live mux streams per user
  std::unordered_map<const char*, size_t> user_conns_;    // authenticated connections per user
  std::unordered_map<std::string, SourceCount> sources_;  // by sourceKey()
  std::unordered_map<const char*, std::shared_ptr<stream::RateLimit>> rate_limits_;  // by userKey
  std::deque<std::string> user_names_;  // userKey's strings: never moved or freed
  std::unordered_map<std::string, const char*> user_keys_;
  std::unordered_map<const char*, UserCounters> user_stats_;  // by userKey
  TotalCounters totals_;
  uint64_t started_ms_ = 0;
  AdmissionStats refused_;
  AdmissionStats refused_logged_;  // as of the last summary line
  std::string last_refused_;       // "198.18.0.1:4000 (max_handshakes_per_source 128)"
  event::LogSummary refused_log_;
  size_t active_ = 0;  // sessions not yet closing; checked against max_connections
  uint64_t next_id_ = 1;
  bool stopped_ = false;
};

}  // namespace vt::server
