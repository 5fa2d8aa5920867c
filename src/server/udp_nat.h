// The server's full-cone UDP NAT (docs/server.md, "UDP").
//
//   UdpNatTable  (owned by the Server; no globals)
//     key (user UUID, udp_session id) --> UdpNatSession
//                                          one unconnected UdpSocket
//                                          channels attached (UdpChannel*)
//                                          most recently active channel
//                                          last packet time
//
// A packet from remote B goes down B's own channel (the channel whose orig
// address is B) marked "own", else down the most recently active channel
// marked "foreign" (FLAG 1 + B in the separated-channel framing), else it
// is dropped and counted. Every remote sees the one socket's port
// (endpoint-independent mapping) and any remote may send to it
// (endpoint-independent filtering).
//
// A session outlives its channels: it expires `session_timeout` after its
// last packet either way once no channel is attached, so a client that
// reopens a channel in time keeps its mapping. While channels are attached
// the session stays; the channels' own idle timeout bounds that.
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
#include "event/loop.h"
#include "event/timer.h"
#include "event/udp_socket.h"

namespace vt::server {

class UdpChannel;

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
  // For the expiry log line.
  std::string stats() const;

 private:
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
};

class UdpNatTable {
 public:
  UdpNatTable(event::Loop& loop, const config::ServerUdpConfig& cfg);
  ~UdpNatTable();
  UdpNatTable(const UdpNatTable&) = delete;
  UdpNatTable& operator=(const UdpNatTable&) = delete;

  // The session of (user, id), created when new. Errc::kLimit when a new
  // session would pass max_sessions or max_sessions_per_user; Errc::kIo
  // when no socket could be opened.
  Result<UdpNatSession*> acquire(const codec::Uuid& user, const std::string& user_name,
                                 uint64_t session_id);
  // A session of its own for one channel, outside the table.
  Result<std::unique_ptr<UdpNatSession>> openPrivate(const std::string& name);

  size_t size() const { return sessions_.size(); }
  size_t sessionsOf(const codec::Uuid& user) const;
  // Removes every session now (server stop).
  void clear();

 private:
  using Key = std::pair<codec::Uuid, uint64_t>;
  void sweep();
  void armSweep();

  event::Loop& loop_;
  config::ServerUdpConfig cfg_;
  std::map<Key, std::unique_ptr<UdpNatSession>> sessions_;
  std::map<codec::Uuid, size_t> per_user_;
  event::Timer sweep_timer_;
};

}  // namespace vt::server
