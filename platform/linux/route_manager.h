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
//
// Gateway mode (gatewayInterfaces not empty; needs keepLan): per family
//   P+1  iif <lan> lookup T                    added before the bypass rules
//                                              of the same priority, so the
//                                              LAN's traffic to bypassed
//                                              ranges is tunnelled too
// and, after every rule is in place, the sysctls: net.ipv4.ip_forward = 1,
// net.ipv6.conf.all.forwarding = 1 (gatewayIpv6), the TUN's rp_filter = 2;
// the old values go into the state file, and restore()/recover() put them
// back (first, before the rules go).
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
#include <string_view>
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
  // Gateway mode (docs/routing.md "Gateway mode"): traffic forwarded from
  // these interfaces (the LANs) goes into the TUN, and forwarding is on
  // while applied. Empty: off.
  std::vector<std::string> gatewayInterfaces;
  bool gatewayIpv6 = true;  // IPv6 too (iif rules and IPv6 forwarding)
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
  // The host's addresses changed (network change): the rules that name
  // them (bypassInbound's `from <address>`) follow. New rules go in before
  // the old ones go, each written to the state file first; the rest is
  // untouched. No-op when not applied. Returns how many rules changed.
  Result<size_t> refresh();
  // Undoes the entries listed in a state file left by an unclean exit and
  // deletes the file. A missing file is success.
  static Status recover(const std::string& stateFile);

  bool applied() const noexcept { return !steps_.empty(); }
  const std::string& stateFile() const noexcept { return stateFile_; }
  const std::vector<RouteEntry>& entries() const noexcept { return entries_; }
  // Tests: forget the entries without removing them (simulates a crash).
  void abandonForTest() noexcept {
    steps_.clear();
    entries_.clear();
  }

  // One change apply() makes, in order: a rule or route (RouteEntry), a
  // gateway `iif` rule, or a sysctl. State file lines:
  //   <RouteEntry line>                     (route_entry.h)
  //   iifrule <4|6> pref <n> iif <name> lookup <table>
  //   sysctl <path under /proc/sys> <old value> <new value>
  struct Step {
    enum class Kind { kEntry, kIifRule, kSysctl };
    Kind kind = Kind::kEntry;
    RouteEntry entry;  // kEntry
    int family = 0;    // kIifRule
    uint32_t priority = 0;
    std::string iif;
    uint32_t table = 0;
    std::string path, old, value;  // kSysctl

    std::string describe() const;
    std::string toStateLine() const;
    static Result<Step> parseStateLine(std::string_view line);
  };

 private:
  Result<std::vector<Step>> plan() const;
  Result<std::vector<Step>> planSysctls() const;
  Status saveState() const;
  void syncEntries();

  RouteOptions options_;
  std::string stateFile_;
  std::vector<Step> steps_;          // installed (or about to be), in order
  std::vector<RouteEntry> entries_;  // the RouteEntry steps, for entries()
};

// SO_MARK on a raw fd (needs CAP_NET_ADMIN). On failure fills *err if given.
bool setSocketMark(int fd, uint32_t mark, Error* err);

}  // namespace vt::platform
