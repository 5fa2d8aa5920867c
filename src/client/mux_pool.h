// MuxPool: the client's VLESS v1 Mux connections (CMD 3, smux +
// SimpleSocks; docs/client.md "Mux", docs/protocol.md 3.6).
//
//   TcpSession --open(CMD 1 target)--> MuxPool --> MuxStream on a MuxSession
//   UdpChannel --open(CMD 3 target)--/               over Vless[Tls[Tcp]] CMD 3
//
// A new stream goes on the busiest live connection that is below
// max_streams (so a few flows share one connection, and a new connection
// opens only past the cap); a connection that is closing, dead or failed
// takes none. A connection lost (server closed it, TLS error, no frame for
// dead_after) resets only its own streams; the next flow opens a new one.
// A connection without streams is closed after idle_timeout, unless it is
// one of the `warm` connections kept ready: refill() keeps that many
// connections with room (below 3/4 of max_streams) dialled in the
// background (at start, when the busiest one fills up, when one is lost),
// so a new flow does not wait for a TCP and TLS handshake. After a failed
// dial the next background dial waits kRetryMs.
//
// Memory: a connection is one TLS connection (~49 KiB of mbedTLS record
// buffers and a socket) shared by up to max_streams flows; an idle stream
// is a MuxStream (~250 bytes) and its map entry.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <string>

#include "codec/simple_socks.h"
#include "config/client_config.h"
#include "event/loop.h"
#include "event/timer.h"
#include "stream/mux_session.h"
#include "stream/stream.h"

namespace vt::client {

class Client;

struct MuxPoolStats {
  uint64_t connectionsOpened = 0;
  uint64_t connectionsLost = 0;    // closed by the server, an error or dead_after
  uint64_t dialsFailed = 0;        // of those: ended before the server sent a frame
  uint64_t connectionsIdled = 0;   // closed by us after idle_timeout
  uint64_t streamsOpened = 0;
  uint64_t maxConnections = 0;     // most connections at once
  uint64_t maxStreams = 0;         // most streams at once (all connections)
  uint64_t warmDials = 0;          // connections dialled ahead of need
  // smux frames sent and the connection writes that carried them, of the
  // connections closed so far (framesSent()/connectionWrites() add the
  // live ones): frames per write shows the batching of a loop pass.
  uint64_t framesOut = 0;
  uint64_t innerWrites = 0;
  uint64_t windowGrowths = 0;  // a stream's receive window doubled (MuxOptions)
};

class MuxPool {
 public:
  MuxPool(Client& client, const config::ClientMuxConfig& cfg);
  ~MuxPool();
  MuxPool(const MuxPool&) = delete;
  MuxPool& operator=(const MuxPool&) = delete;

  // A stream whose first bytes are the SimpleSocks header `h`; connect()
  // sends it. `waitAnswer`: onConnected only once the server said the
  // target connected (VER 2 only; with VER 1 it is ignored). Null while the
  // server address is unknown.
  std::unique_ptr<stream::MuxStream> open(const codec::SimpleSocksHeader& h, bool waitAnswer);
  // Closes every connection (their streams are reset). Idempotent.
  void clear();
  // Closes the connections that carry no stream (the warm one): after a
  // network change they may be dead. Refills when the address is known.
  void dropIdle();
  // Dials in the background until `warm` connections have room (no-op
  // while the server address is unknown, after clear(), or within kRetryMs
  // of a failed dial).
  void refill();
  static constexpr uint64_t kRetryMs = 5'000;

  size_t connections() const { return conns_.size(); }
  size_t streams() const;
  const MuxPoolStats& stats() const { return stats_; }
  uint64_t framesSent() const;
  uint64_t connectionWrites() const;
  uint64_t windowGrowths() const;

 private:
  struct Conn final : event::DeferredDeletable, stream::MuxSession::Owner {
    Conn(MuxPool& p, uint64_t i) : pool(p), id(i) {}
    void onMuxConnected() override;
    void onMuxClosed(stream::CloseReason reason, const std::string& detail) override;
    MuxPool& pool;
    uint64_t id;
    uint64_t openedMs = 0;
    stream::StreamPtr inner;                   // Vless[Tls[Tcp]] CMD 3
    std::unique_ptr<stream::MuxSession> mux;   // after inner: destroyed first
    bool closedByUs = false;
    std::list<std::unique_ptr<Conn>>::iterator it;
  };
  // Closes `c` (ours), and unlists it now if its close did not.
  void closeConn(Conn& c, const char* why);

  Conn* pick();
  Conn* dial();
  bool usable(const Conn& c) const;
  // Connections that can take streams with room to spare.
  size_t spare() const;
  void onConnClosed(Conn& c, stream::CloseReason reason, const std::string& detail);
  void onTimer();

  Client& client_;
  config::ClientMuxConfig cfg_;
  std::list<std::unique_ptr<Conn>> conns_;
  event::Timer timer_;
  uint64_t nextId_ = 0;  // Client::takeId
  uint64_t lastFailMs_ = 0;
  bool hadFailure_ = false;
  MuxPoolStats stats_;
  bool cleared_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace vt::client
