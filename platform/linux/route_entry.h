// RouteEntry: one policy rule or one route that RouteManager installs, in a
// form that can be (a) sent to the kernel over rtnetlink, (b) written to and
// read back from the state file, and (c) named in an error message.
//
// State file line grammar (one entry per line, '#' starts a comment):
//
//   rule  <4|6> pref <n> [not] [from <cidr>] [to <cidr>] [fwmark <hex>]
//         lookup <table> [suppress_prefixlength <n>]
//   route <4|6> <cidr> (dev <ifindex> [src <addr>] | unreachable) table <table>
//
// The file is local and root-owned, but it is still parsed strictly: an
// unknown token or an out-of-range number rejects the line.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/error.h"

namespace vt::platform {

struct Cidr {
  int family = 0;  // AF_INET or AF_INET6
  uint8_t addr[16] = {};
  uint8_t prefix = 0;

  bool operator==(const Cidr& o) const;
  std::string toString() const;  // "10.0.0.0/8", "::/0"
};

// Parses "a.b.c.d/n", "x::y/n" or a bare address (full-length prefix).
// Host bits must be zero unless allowHostBits (a host address with its
// prefix, as used for `from` rules).
Result<Cidr> parseCidr(std::string_view text, bool allowHostBits = false);

struct RouteEntry {
  enum class Kind { kRule, kRoute };
  Kind kind = Kind::kRule;
  int family = 0;  // AF_INET or AF_INET6

  // Rules.
  uint32_t priority = 0;
  bool invert = false;  // "not"
  bool hasFrom = false;
  Cidr from;
  bool hasTo = false;
  Cidr to;
  bool hasFwmark = false;
  uint32_t fwmark = 0;
  int suppressPrefixlen = -1;  // -1: not set

  // Routes.
  Cidr dst;
  bool unreachable = false;
  int oif = 0;
  bool hasSrc = false;
  Cidr src;  // full-length prefix

  uint32_t table = 0;

  bool operator==(const RouteEntry& o) const;

  // For messages: "rule pref 9002 not fwmark 0x1f0 lookup 2022 (IPv6)".
  std::string describe() const;
  // One state file line (no newline).
  std::string toStateLine() const;
  static Result<RouteEntry> parseStateLine(std::string_view line);
};

class NetlinkSocket;

// Adds (NLM_F_CREATE | NLM_F_EXCL) or deletes the entry; returns 0 or errno.
int addEntry(NetlinkSocket& nl, const RouteEntry& e);
int deleteEntry(NetlinkSocket& nl, const RouteEntry& e);
// Overwrites an existing route with the same key (NLM_F_REPLACE).
int replaceRoute(NetlinkSocket& nl, const RouteEntry& e);

}  // namespace vt::platform
