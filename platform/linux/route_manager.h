// RouteManager: Linux "auto_route". Makes a TUN device carry all traffic of
// the host (or network namespace), or only configured CIDRs, with policy
// routing over rtnetlink, while the tunnel's own sockets (SO_MARK = fwmark)
// keep using the real interface; and puts everything back afterwards.
//
// Per family (priorities relative to `priority`, P):
//
//   P    lookup main suppress_prefixlength 0   keepLan: the host's specific
//                                              routes (LAN, Docker) still win
//   P+1  to <bypass cidr> lookup main          private ranges never tunnelled
//   P+1  from <host address> lookup main       bypassInbound: replies of
//                                              services on real addresses
//   P+2  not fwmark M lookup T                 everything else -> table T
//   table T: <capture cidr> dev tun src <tun address>
//            (IPv6 always: an `unreachable ::/0` here would not stop a leak,
//            because the kernel then picks a real source address, which the
//            inbound rules send out the real interface; the client refuses
//            IPv6 inside the TUN instead when it must not be carried)
//
// Every rule and route is written to the state file (fsync'd) before it is
// added, so that recover() can undo a crashed run. See docs/routing.md.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/error.h"
#include "route_entry.h"

namespace vt::platform {

struct RouteOptions {
  std::string tunName;  // required (names the default state file)
  int tunIfindex = 0;   // 0: looked up from tunName
  uint32_t fwmark = 0x1f0;
  uint32_t table = 2022;
  uint32_t priority = 9000;  // uses priority .. priority + 2
  std::vector<std::string> captureV4 = {"0.0.0.0/0"};
  std::vector<std::string> captureV6 = {"::/0"};
  // Destinations that always use the main table; either family; may be empty.
  std::vector<std::string> bypass = {"10.0.0.0/8",     "172.16.0.0/12", "192.168.0.0/16",
                                     "169.254.0.0/16", "100.64.0.0/10", "fc00::/7",
                                     "fe80::/10"};
  bool keepLan = true;        // the suppress_prefixlength 0 rule
  bool bypassInbound = true;  // `from <host address> lookup main` rules
  std::string stateFile;      // empty: /run/vless-tun/<tunName>.routes
};

class RouteManager {
 public:
  explicit RouteManager(RouteOptions options);
  ~RouteManager();  // restore(); errors are logged
  RouteManager(const RouteManager&) = delete;
  RouteManager& operator=(const RouteManager&) = delete;

  // Installs the rules and routes. A leftover state file (crashed earlier
  // run) is recovered first; if this object already applied, it restores
  // first. On failure everything added so far is removed again.
  Status apply();
  // Removes exactly what apply() added, then the state file. Idempotent:
  // an entry already gone counts as removed.
  Status restore();
  // Undoes the entries listed in a state file left by an unclean exit and
  // deletes the file. A missing file is success.
  static Status recover(const std::string& stateFile);

  bool applied() const noexcept { return !entries_.empty(); }
  const std::string& stateFile() const noexcept { return stateFile_; }
  const std::vector<RouteEntry>& entries() const noexcept { return entries_; }
  // Tests: forget the entries without removing them (simulates a crash).
  void abandonForTest() noexcept { entries_.clear(); }

 private:
  Result<std::vector<RouteEntry>> plan() const;
  Status saveState() const;

  RouteOptions options_;
  std::string stateFile_;
  std::vector<RouteEntry> entries_;  // installed (or about to be), in order
};

// SO_MARK on a raw fd (needs CAP_NET_ADMIN). On failure fills *err if given.
bool setSocketMark(int fd, uint32_t mark, Error* err);

}  // namespace vt::platform
