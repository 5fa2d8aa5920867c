// IpMasquerade: the kernel state vless-server's IP exit (CMD 5) needs when
// `ip.masquerade = true`, installed at start-up and removed on stop:
//
//   sysctl net.ipv4.ip_forward = 1                (old value recorded)
//   sysctl net.ipv6.conf.all.forwarding = 1       (with a pool6)
//   table inet vless_server_<tun> {               (`nft -f -`)
//     chain postrouting { type nat hook postrouting priority srcnat;
//       ip saddr <pool4> oifname != "<tun>" masquerade
//       ip6 saddr <pool6> oifname != "<tun>" masquerade }
//     chain forward { type filter hook forward priority filter;
//       ip saddr <pool4> accept; ip daddr <pool4> accept; (and ip6) }
//   }
//
// Before anything changes, the state file (fsync'd, then renamed into
// place) lists what will be undone: the table's name and each sysctl's old
// value. apply() first undoes what a crashed earlier run left (its state
// file), so the sysctls it restores are the values from before that run.
// The table is ours by name: a leftover without a state file is deleted
// too. Blocking (a subprocess): start-up and stop only.
#pragma once

#include <string>
#include <vector>

#include "core/error.h"

namespace vt::platform {

struct MasqueradeOptions {
  std::string tunName;  // required
  std::string pool4;    // CIDR text; required
  std::string pool6;    // CIDR text; empty: none
  std::string stateFile;  // empty: /run/vless-server/<tunName>.ip
  std::string nft = "nft";  // the nft binary (PATH lookup)
};

class IpMasquerade {
 public:
  explicit IpMasquerade(MasqueradeOptions o);
  ~IpMasquerade();  // restore(); errors are logged
  IpMasquerade(const IpMasquerade&) = delete;
  IpMasquerade& operator=(const IpMasquerade&) = delete;

  // Recovers leftovers, then records and installs. On failure what was
  // installed so far is removed again.
  Status apply();
  // Removes what apply() installed, then the state file. Idempotent.
  Status restore();
  // Undoes what a state file lists and deletes it; a missing file is
  // success. `nft`: the binary to run.
  static Status recover(const std::string& stateFile, const std::string& nft = "nft");

  bool applied() const noexcept { return applied_; }
  const std::string& stateFile() const noexcept { return state_file_; }
  std::string tableName() const { return "vless_server_" + o_.tunName; }
  // The ruleset text apply() feeds to `nft -f -` (for tests and logs).
  std::string ruleset() const;

 private:
  struct Sysctl {
    std::string path;   // under /proc/sys
    std::string old;    // value before we wrote
  };
  Status saveState() const;

  MasqueradeOptions o_;
  std::string state_file_;
  bool applied_ = false;
  bool table_ = false;
  std::vector<Sysctl> sysctls_;  // written by us, in order
};

// Runs `nft -f -` with `script` on stdin; the error carries nft's stderr.
Status runNft(const std::string& nft, const std::string& script);

}  // namespace vt::platform
