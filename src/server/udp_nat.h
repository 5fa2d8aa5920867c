// The server's full-cone UDP NAT (docs/server.md, "UDP").
//
//   UdpNatTable  (owned by the Server; no globals)
//     key (user UUID, udp_session id) --> UdpNatSession
//                                          one unconnected UdpSocket
//                                          channels attached (UdpChannel*)
//                                          most recently active channel
//                                          last packet time, assured or not
//     LRU lists (whole table, and per user), unassured and assured apart
//
// A packet from remote B goes down B's own channel (the channel whose orig
// address is B) marked "own", else down the most recently active channel
// marked "foreign" (FLAG 1 + B in the separated-channel framing), else it
// is dropped and counted. Every remote sees the one socket's port
// (endpoint-independent mapping) and any remote may send to it
// (endpoint-independent filtering).
//
// Two lifetimes, like kernel NATs (Linux conntrack's unreplied/assured UDP
// timeouts): a session is "assured" once a remote has answered and the
// client then sent again (more than one exchange). Until then it expires
// `new_session_timeout` after its last packet either way (or its last
// channel opening), channels or not (they are ended; the client sees their
// connections end and opens new ones on its next datagram). Once assured
// it expires `session_timeout` after its last packet once no channel is
// attached, so a client that reopens a channel in time keeps its mapping;
// while channels are attached it stays, the channels' own idle timeout
// bounding that.
//
// At max_sessions_per_user (max_sessions) a new session evicts the user's
// (the table's) least recently active session, an unassured one if there
// is any (as conntrack's early drop spares assured flows); its channels
// are ended the same way. Evictions are counted (stats()) and logged at
// most once per kEvictionLogMs.
//
// Channels without udp_session (and v0 / classic connections) use a private
// UdpNatSession that is not in the table and not counted against the caps.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "codec/vless.h"
#include "config/server_config.h"
#include "core/error.h"
#include "core/tiered_lru.h"
#include "event/log_summary.h"
#include "event/loop.h"
#include "event/timer.h"
#include "event/udp_socket.h"
#include "stream/stream.h"

namespace vt::server {

class UdpChannel;
class UdpNatSession;
class UdpNatTable;

// Table sessions in LRU order; eviction takes an unassured one while there
// is any.
using UdpNatLru = TieredLru<UdpNatSession>;
struct UdpNatUser {
  size_t count = 0;
  UdpNatLru lru;
};

class UdpNatSession : public event::DeferredDeletable {
 public:
  UdpNatSession(event::Loop& loop, std::unique_ptr<event::UdpSocket> socket, std::string name);
  ~UdpNatSession() override;
  UdpNatSession(const UdpNatSession&) = delete;
  UdpNatSession& operator=(const UdpNatSession&) = delete;

  event::UdpSocket& socket() { return *socket_; }
  const std::string& name() const { return name_; }

  // The channel becomes the most recently active one.
  void attach(UdpChannel* c);
  void detach(UdpChannel* c);
  // A packet went out through channel `c` to `to`.
  void onSent(UdpChannel* c, const event::SocketAddress& to, size_t bytes);
  size_t channelCount() const { return channels_.size(); }
  uint64_t lastActiveMs() const { return last_active_ms_; }
  // A remote answered and the client sent again after that.
  bool assured() const { return assured_; }
  // Ends every attached channel cleanly (its client sees the connection
  // end); they detach on the way.
  void endChannels(stream::CloseReason reason, const std::string& why);
  // For the expiry log line.
  std::string stats() const;

 private:
  friend class UdpNatTable;

  void onReceive(const uint8_t* data, size_t n, const event::SocketAddress& from);
  void noteRemote(const event::SocketAddress& a);

  // Remotes sent to or heard from, for the expiry log; bounded, and
  // filtering does not depend on it (any remote may send: full cone).
  static constexpr size_t kMaxKnownRemotes = 4096;

  event::Loop& loop_;
  std::unique_ptr<event::UdpSocket> socket_;
  std::string name_;  // "alice/0x0102030405060708" or "private"
  std::vector<UdpChannel*> channels_;
  UdpChannel* recent_ = nullptr;
  std::unordered_set<uint64_t> remotes_;  // hashes of ip:port
  uint64_t created_ms_;
  uint64_t last_active_ms_;
  uint64_t channels_seen_ = 0;
  uint64_t pkts_in_ = 0;
  uint64_t pkts_out_ = 0;
  uint64_t bytes_in_ = 0;
  uint64_t bytes_out_ = 0;
  uint64_t drops_no_channel_ = 0;
  bool replied_ = false;  // a remote has sent
  bool assured_ = false;  // ... and the client sent after that

  // Table sessions only (null/unset for private ones).
  UdpNatTable* table_ = nullptr;
  std::pair<codec::Uuid, uint64_t> key_{};
  std::string user_name_;
  UdpNatUser* user_ = nullptr;  // the table's per-user entry
  UdpNatLru::Handle all_it_{};
  UdpNatLru::Handle user_it_{};
};

// Counters of the table, for the stop summary and tests.
struct UdpNatStats {
  uint64_t created = 0;                        // table sessions opened
  uint64_t expired = 0;                        // removed by a timeout
  uint64_t expired_new = 0;                    // of those: unassured (udp.new_session_timeout)
  uint64_t evicted_max_sessions_per_user = 0;  // made room for a user's new session
  uint64_t evicted_max_sessions = 0;           // made room in the whole table
};

class UdpNatTable {
 public:
  UdpNatTable(event::Loop& loop, const config::ServerUdpConfig& cfg);
  ~UdpNatTable();
  UdpNatTable(const UdpNatTable&) = delete;
  UdpNatTable& operator=(const UdpNatTable&) = delete;

  static constexpr uint64_t kEvictionLogMs = 10'000;

  // The session of (user, id), created when new; at a cap the least
  // recently active session (unassured first) of the user / the table is
  // evicted to make room. Errc::kIo when no socket could be opened.
  Result<UdpNatSession*> acquire(const codec::Uuid& user, const std::string& user_name,
                                 uint64_t session_id);
  // A session of its own for one channel, outside the table.
  Result<std::unique_ptr<UdpNatSession>> openPrivate(const std::string& name);

  size_t size() const { return sessions_.size(); }
  size_t sessionsOf(const codec::Uuid& user) const;
  const UdpNatStats& stats() const { return stats_; }
  // Removes every session now (server stop); logs evictions not yet logged.
  void clear();

 private:
  friend class UdpNatSession;
  using Key = std::pair<codec::Uuid, uint64_t>;
  enum class Cap { kPerUser, kTotal };

  // A packet went through `s` (which may just have become assured).
  void onActivity(UdpNatSession& s, bool became_assured);
  void evict(UdpNatSession& victim, Cap cap);
  // Ends its channels, unlinks it and deletes it (deferred).
  void remove(UdpNatSession& s, stream::CloseReason reason, const std::string& why);
  void noteEviction(Cap cap, const std::string& user_name);
  void writeEvictions();
  uint64_t newTimeoutMs() const;
  void sweep();
  void armSweep();

  event::Loop& loop_;
  config::ServerUdpConfig cfg_;
  std::map<Key, std::unique_ptr<UdpNatSession>> sessions_;
  std::map<codec::Uuid, UdpNatUser> users_;  // node addresses are stable
  UdpNatLru all_;
  UdpNatStats stats_;
  event::Timer sweep_timer_;
  // Evictions not logged yet (one line per cap at most every kEvictionLogMs).
  uint64_t unlogged_user_cap_ = 0;
  uint64_t unlogged_total_cap_ = 0;
  std::string unlogged_user_;  // the user of the first unlogged per-user eviction
  bool unlogged_other_users_ = false;
  event::LogSummary eviction_log_;
};

}  // namespace vt::server
