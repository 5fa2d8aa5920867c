// IpLeaseTable: the address pools of the IP exit (CMD 5) and who holds
// what. Pure bookkeeping (the caller passes the time), so that the caps and
// the grace time are tested without a TUN.
//
//   pool4 198.18.240.0/24: .0 network, .1 the server (gateway), .2 .. .254
//   leased, .255 broadcast. pool6 2001:db8:ffff::/64: ::1 the server,
//   ::2 .. leased (the last address too: IPv6 has no broadcast).
//
// A session is opened (caps: max_sessions in total, max_sessions_per_user),
// then leases one address per family on its first packet of that family.
// When the session closes its addresses rest for `grace_ms` before another
// session may get them, so that late replies to the old session never reach
// a new one. Allocation walks forward from where the last one stopped, so a
// freed address is the last to be handed out again.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>

#include "codec/ip_nat.h"
#include "core/error.h"
#include "core/ip_prefix.h"

namespace vt::server {

class IpLeaseTable {
 public:
  struct Options {
    IpPrefix pool4;
    std::optional<IpPrefix> pool6;
    uint32_t max_sessions = 1024;
    uint32_t max_sessions_per_user = 8;
    uint64_t grace_ms = 30'000;
  };
  struct Stats {
    uint64_t sessions = 0;          // opened
    uint64_t refused_total = 0;     // at max_sessions
    uint64_t refused_per_user = 0;  // at max_sessions_per_user
    uint64_t leases = 0;            // addresses handed out
    uint64_t exhausted = 0;         // no free address in a pool
  };

  explicit IpLeaseTable(Options o);

  // The server's own address on the TUN (the pool's first host).
  const codec::IpAddressBytes& gateway(bool v6) const { return v6 ? gw6_ : gw4_; }
  bool hasPool(bool v6) const { return !v6 || opt_.pool6.has_value(); }
  // `a` (4 bytes when !v6) lies in that family's pool.
  bool inPool(bool v6, const uint8_t* a) const;

  // A new session id (> 0), or an error (Errc::kLimit) naming the cap.
  // `user` must outlive the session (a config name).
  Result<uint64_t> open(const std::string& user);
  // The session's address of that family, leased on first call; nullopt
  // when the family has no pool or the pool is exhausted (counted).
  std::optional<codec::IpAddressBytes> lease(uint64_t id, bool v6, uint64_t now_ms);
  // Ends the session: its addresses rest for grace_ms from now_ms.
  void close(uint64_t id, uint64_t now_ms);
  // The live session holding `a` (v6 false: its first 4 bytes), or 0.
  uint64_t owner(bool v6, const codec::IpAddressBytes& a) const;

  size_t sessions() const { return sessions_.size(); }
  size_t userSessions(const std::string& user) const;
  // Addresses leased or resting, per family.
  size_t held(bool v6) const { return (v6 ? held6_ : held4_).size(); }
  const Stats& stats() const { return stats_; }

  // "198.18.240.2" / "2001:db8::2"
  static std::string text(bool v6, const codec::IpAddressBytes& a);

 private:
  struct Session {
    std::string user;
    std::optional<codec::IpAddressBytes> a4, a6;
  };
  struct Held {
    uint64_t session = 0;   // 0: resting
    uint64_t free_at = 0;   // when resting: usable again from then
  };
  // Host offsets in the pool; IPv6 pools are /64 or longer, so 64 bits hold
  // any offset.
  codec::IpAddressBytes address(bool v6, uint64_t offset) const;
  void purge(bool v6, uint64_t now_ms);

  Options opt_;
  codec::IpAddressBytes gw4_{}, gw6_{};
  uint64_t first_ = 2;                  // first leasable host offset
  uint64_t last4_ = 0, last6_ = 0;      // last leasable host offset
  uint64_t next4_ = 2, next6_ = 2;      // where the next search starts
  std::map<codec::IpAddressBytes, Held> held4_, held6_;
  // Resting addresses in the order they rest (the grace is one constant,
  // so also in the order they free up): purged as they expire.
  std::deque<std::pair<uint64_t, codec::IpAddressBytes>> resting4_, resting6_;
  std::unordered_map<uint64_t, Session> sessions_;
  std::unordered_map<std::string, size_t> per_user_;
  uint64_t next_id_ = 1;
  Stats stats_;
};

}  // namespace vt::server
