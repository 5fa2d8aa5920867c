#include "route/geoip.h"

#include <maxminddb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <ctime>

namespace vt::route {

namespace {

// Lookup paths for MMDB_aget_value: NULL-terminated and static, so a lookup
// allocates nothing (MMDB_get_value's varargs form mallocs a path array).
const char* const kCountryPath[] = {"country", "iso_code", nullptr};
const char* const kRegisteredPath[] = {"registered_country", "iso_code", nullptr};

bool isAsciiLetter(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

}  // namespace

GeoIp::GeoIp() : db_(std::make_unique<MMDB_s>()) {}

GeoIp::~GeoIp() {
  if (open_) MMDB_close(db_.get());
}

Result<std::unique_ptr<GeoIp>> GeoIp::open(const std::string& path) {
  std::unique_ptr<GeoIp> g(new GeoIp());
  errno = 0;
  int status = MMDB_open(path.c_str(), MMDB_MODE_MMAP, g->db_.get());
  if (status != MMDB_SUCCESS) {
    // A file that cannot be opened or read says only "error opening the
    // file"; errno says why (missing, permissions).
    std::string why = MMDB_strerror(status);
    if ((status == MMDB_FILE_OPEN_ERROR || status == MMDB_IO_ERROR) && errno != 0)
      why += std::string(" (") + std::strerror(errno) + ")";
    return Error(Errc::kConfig, "geoip database \"" + path + "\": " + why);
  }
  g->open_ = true;
  return g;
}

std::string_view GeoIp::country(const IpAddress& ip, char (&buf)[3]) const {
  buf[0] = '\0';
  const IpAddress a = ip.unmapped();
  // A sockaddr is what libmaxminddb takes without parsing text; for IPv4 in
  // an IPv6 database it starts at the ::/96 subtree itself.
  sockaddr_in in4{};
  sockaddr_in6 in6{};
  const sockaddr* sa;
  if (a.v6) {
    in6.sin6_family = AF_INET6;
    std::memcpy(&in6.sin6_addr, a.bytes.data(), 16);
    sa = reinterpret_cast<const sockaddr*>(&in6);
  } else {
    in4.sin_family = AF_INET;
    std::memcpy(&in4.sin_addr, a.bytes.data(), 4);
    sa = reinterpret_cast<const sockaddr*>(&in4);
  }
  int err = MMDB_SUCCESS;
  MMDB_lookup_result_s res = MMDB_lookup_sockaddr(db_.get(), sa, &err);
  if (err != MMDB_SUCCESS) {
    // An IPv6 address in an IPv4-only database simply has no country.
    if (err != MMDB_IPV6_LOOKUP_IN_IPV4_DATABASE_ERROR)
      lookup_errors_.fetch_add(1, std::memory_order_relaxed);
    return {};
  }
  if (!res.found_entry) return {};

  for (const char* const* path : {kCountryPath, kRegisteredPath}) {
    MMDB_entry_data_s data{};
    int st = MMDB_aget_value(&res.entry, &data, path);
    if (st != MMDB_SUCCESS) {
      // The path not matching the record's shape is a database of another
      // kind (ASN, say), not a broken one.
      if (st != MMDB_LOOKUP_PATH_DOES_NOT_MATCH_DATA_ERROR)
        lookup_errors_.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    if (!data.has_data || data.type != MMDB_DATA_TYPE_UTF8_STRING || data.data_size != 2) continue;
    const char* s = data.utf8_string;
    if (!isAsciiLetter(s[0]) || !isAsciiLetter(s[1])) continue;
    buf[0] = static_cast<char>(s[0] & ~0x20);  // ASCII upper case
    buf[1] = static_cast<char>(s[1] & ~0x20);
    buf[2] = '\0';
    return std::string_view(buf, 2);
  }
  return {};
}

std::string GeoIp::describe() const {
  const MMDB_metadata_s& m = db_->metadata;
  std::string out = "\"";
  out += m.database_type != nullptr ? m.database_type : "?";
  out += "\" " + std::to_string(m.node_count) + " nodes, IPv" + std::to_string(m.ip_version);
  std::time_t t = static_cast<std::time_t>(m.build_epoch);
  std::tm tm{};
  char date[16];
  if (gmtime_r(&t, &tm) != nullptr && std::strftime(date, sizeof date, "%Y-%m-%d", &tm) > 0) {
    out += ", built ";
    out += date;
  }
  return out;
}

}  // namespace vt::route
