// GeoIp: the country of an address, from a MaxMind DB file (GeoLite2-Country,
// GeoIP2-Country, or any database whose records carry country.iso_code),
// for the `geoip` routing-rule condition.
//
// This is the one part of route/ that does I/O: it maps a file. RuleSet
// stays pure; the client asks GeoIp for Query::country when
// RuleSet::usesGeoip() says a rule needs it, and only then.
//
// Thread safety: after open() the database (a read-only mmap and the
// MMDB_s that describes it) is never written, and libmaxminddb lookups
// only read it, so country() may be called from any number of threads at
// once. The error counter is atomic for the same reason.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/error.h"
#include "route/rule_set.h"

struct MMDB_s;  // libmaxminddb's handle; its header stays out of ours

namespace vt::route {

class GeoIp {
 public:
  // Maps the database (MMDB_MODE_MMAP: pages are shared with the page
  // cache, not read into the heap). Errors are Errc::kConfig naming the
  // path: `geoip database "/x.mmdb": <why>`.
  static Result<std::unique_ptr<GeoIp>> open(const std::string& path);

  ~GeoIp();
  GeoIp(const GeoIp&) = delete;
  GeoIp& operator=(const GeoIp&) = delete;

  // The ISO 3166-1 alpha-2 code of `ip`'s country, upper-case, written to
  // `buf` (NUL-terminated) and returned as a view of it; "" when the
  // database has no record for the address or the record has no country.
  // country.iso_code is used, else registered_country.iso_code (where an
  // address block is registered: set for anycast and satellite ranges that
  // have no physical country). IPv4-mapped IPv6 addresses are looked up as
  // IPv4. Allocation-free and never throws; a record the database cannot
  // decode (a corrupt file) also reads "" and is counted in lookupErrors().
  std::string_view country(const IpAddress& ip, char (&buf)[3]) const;

  // One line for the log: `"GeoLite2-Country" 1234567 nodes, IPv6, built
  // 2026-11-30`.
  std::string describe() const;

  uint64_t lookupErrors() const { return lookup_errors_.load(std::memory_order_relaxed); }

 private:
  GeoIp();

  // Heap-held so its address stays fixed: lookup results point back at it.
  std::unique_ptr<MMDB_s> db_;
  bool open_ = false;
  mutable std::atomic<uint64_t> lookup_errors_{0};
};

}  // namespace vt::route
