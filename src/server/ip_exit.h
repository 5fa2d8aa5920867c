// IpExit: the server side of IP sessions (CMD 5): the server's own TUN
// device, the address pools (IpLeaseTable) and, with ip.masquerade, the
// kernel's forwarding and NAT (platform IpMasquerade). Owned by the Server;
// one per server, on the server's loop.
//
//   IpSession --up(packet, source rewritten)--> TUN --> kernel routes (and
//   masquerades) it; kernel --reply to a pool address--> TUN --> IpExit
//   reads it (fd watcher), finds the session holding the destination and
//   hands the packet over; no session: dropped and counted.
//
// The TUN carries the pools' first addresses (the gateway) with the pools'
// prefix lengths, so the kernel routes the pools to it. The device goes
// with the process, its routes with it; what masquerade installs is in a
// state file and undone on stop, or by the next start after a crash.
#pragma once

#include <sys/types.h>
#include <sys/uio.h>

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "config/server_config.h"
#include "core/error.h"
#include "event/fd_watcher.h"
#include "event/loop.h"
#include "server/ip_lease_table.h"
#include "server/ip_session.h"

namespace vt::platform {
class TunDevice;
class IpMasquerade;
}  // namespace vt::platform

namespace vt::server {

class IpExit {
 public:
  struct Stats {
    uint64_t sessions = 0;  // started
    uint64_t refused = 0;   // at ip.max_sessions or ip.max_sessions_per_user
    IpCounters totals;      // every session's, the exit's own drops included
  };

  IpExit(event::Loop& loop, const config::ServerIpConfig& cfg);
  ~IpExit();
  IpExit(const IpExit&) = delete;
  IpExit& operator=(const IpExit&) = delete;

  // Creates the TUN, installs masquerade when configured. Blocking.
  Status start();
  // Closes the TUN and removes what masquerade installed. Sessions must
  // have shut down first. Idempotent.
  void stop();

  // Sessions. attach: a lease-table id, or Errc::kLimit naming the cap.
  Result<uint64_t> attach(IpSession* s, const std::string& user);
  void detach(uint64_t id, const IpCounters& c);
  IpLeaseTable& leases() { return leases_; }
  // The server's own addresses on the TUN.
  bool isGateway(bool v6, const uint8_t* a) const;
  // One packet into the TUN: bytes written, or -errno (-EAGAIN: full).
  ssize_t send(const uint8_t* p, size_t n);
  // A packet-sized scratch buffer, for one packet at a time on this loop.
  uint8_t* scratch() { return scratch_.data(); }
  void countDrop(IpDrop d) { ++stats_.totals.drops[static_cast<size_t>(d)]; }
  IpCounters& totals() { return stats_.totals; }

  const config::ServerIpConfig& config() const { return cfg_; }
  const std::string& tunName() const { return tun_name_; }
  const Stats& stats() const { return stats_; }
  // "ip: 3 sessions (0 refused), up 10 packets 840 B, down ..., drops ..."
  std::string summary() const;

 private:
  void onReadable();

  event::Loop& loop_;
  config::ServerIpConfig cfg_;
  IpLeaseTable leases_;
  std::unique_ptr<platform::TunDevice> tun_;
  std::unique_ptr<event::FdWatcher> watcher_;
  std::unique_ptr<platform::IpMasquerade> masq_;
  std::unordered_map<uint64_t, IpSession*> sessions_;
  std::vector<uint8_t> scratch_;  // client -> TUN, one packet at a time
  std::vector<uint8_t> rbuf_;     // TUN -> client
  std::string tun_name_;
  Stats stats_;
};

}  // namespace vt::server
