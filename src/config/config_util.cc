#include "config/config_util.h"

#include <fstream>
#include <sstream>

#include <arpa/inet.h>

#include <cctype>

#include "core/bytes.h"

namespace vt::config {
namespace {

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool isDnsName(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  size_t label = 0;
  for (char c : s) {
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
      continue;
    }
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_')) return false;
    if (++label > 63) return false;
  }
  return label > 0 || s.size() > 1;  // allows one trailing dot
}

}  // namespace

std::optional<UuidBytes> parseUuidText(std::string_view text) {
  bool dashed = text.size() == 36;
  if (!dashed && text.size() != 32) return std::nullopt;
  UuidBytes out{};
  size_t n = 0;
  int hi = -1;
  for (size_t i = 0; i < text.size(); ++i) {
    if (dashed && (i == 8 || i == 13 || i == 18 || i == 23)) {
      if (text[i] != '-') return std::nullopt;
      continue;
    }
    int v = hexValue(text[i]);
    if (v < 0) return std::nullopt;
    if (hi < 0) {
      hi = v;
    } else {
      out[n++] = static_cast<uint8_t>((hi << 4) | v);
      hi = -1;
    }
  }
  if (n != 16) return std::nullopt;
  return out;
}

std::string uuidText(const UuidBytes& u) {
  static const char kHex[] = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < u.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) s.push_back('-');
    s.push_back(kHex[u[i] >> 4]);
    s.push_back(kHex[u[i] & 15]);
  }
  return s;
}

std::optional<uint64_t> parseDurationMs(std::string_view text) {
  size_t i = 0;
  uint64_t v = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
    if (v > 1'000'000'000ULL) return std::nullopt;  // absurd, and keeps * below safe
    v = v * 10 + static_cast<uint64_t>(text[i] - '0');
    ++i;
  }
  if (i == 0) return std::nullopt;
  std::string_view unit = text.substr(i);
  if (unit == "ms") return v;
  if (unit == "s") return v * 1000;
  if (unit == "m") return v * 60'000;
  if (unit == "h") return v * 3'600'000;
  return std::nullopt;
}

std::optional<uint64_t> parseRateBytesPerS(std::string_view text) {
  if (text.size() > 2 && text.substr(text.size() - 2) == "/s") text.remove_suffix(2);
  size_t i = 0;
  uint64_t whole = 0, frac = 0, frac_div = 1;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
    if (whole > 1'000'000'000ULL) return std::nullopt;
    whole = whole * 10 + static_cast<uint64_t>(text[i++] - '0');
  }
  if (i == 0) return std::nullopt;
  if (i < text.size() && text[i] == '.') {
    size_t start = ++i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9' && frac_div < 1'000'000) {
      frac = frac * 10 + static_cast<uint64_t>(text[i++] - '0');
      frac_div *= 10;
    }
    if (i == start) return std::nullopt;
  }
  struct Unit {
    std::string_view name;
    uint64_t mul;  // bits per unit when `bits`, else bytes
    bool bits;
  };
  static constexpr Unit kUnits[] = {
      {"B", 1, false},          {"KB", 1000, false},        {"MB", 1000'000, false},
      {"GB", 1000'000'000, false}, {"KiB", 1024, false},   {"MiB", 1024 * 1024, false},
      {"GiB", 1024ULL * 1024 * 1024, false}, {"kbit", 1000, true}, {"Mbit", 1000'000, true},
      {"Gbit", 1000'000'000, true},
  };
  std::string_view unit = text.substr(i);
  for (const Unit& u : kUnits) {
    if (unit != u.name) continue;
    // whole.frac * mul, then bits -> bytes.
    const long double v = (static_cast<long double>(whole) +
                           static_cast<long double>(frac) / static_cast<long double>(frac_div)) *
                          static_cast<long double>(u.mul) / (u.bits ? 8.0L : 1.0L);
    if (v < 1000.0L || v > 100e9L) return std::nullopt;
    return static_cast<uint64_t>(v);
  }
  return std::nullopt;
}

std::optional<uint64_t> parseSizeBytes(std::string_view text) {
  // The rate parser reads the same numbers and units; a size has no "/s"
  // and no bit units.
  if (text.size() > 2 && text.substr(text.size() - 2) == "/s") return std::nullopt;
  if (text.find("bit") != std::string_view::npos) return std::nullopt;
  size_t i = 0;
  uint64_t whole = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
    if (whole > 1'000'000'000'000ULL) return std::nullopt;
    whole = whole * 10 + static_cast<uint64_t>(text[i++] - '0');
  }
  if (i == 0) return std::nullopt;
  std::string_view unit = text.substr(i);
  uint64_t mul = 0;
  if (unit == "B") mul = 1;
  if (unit == "KB") mul = 1000;
  if (unit == "MB") mul = 1000'000;
  if (unit == "GB") mul = 1000'000'000;
  if (unit == "KiB") mul = 1024;
  if (unit == "MiB") mul = 1024 * 1024;
  if (unit == "GiB") mul = 1024ULL * 1024 * 1024;
  if (mul == 0 || whole > (1ULL << 40) / mul) return std::nullopt;
  uint64_t v = whole * mul;
  if (v < 64 * 1024 || v > (1ULL << 40)) return std::nullopt;
  return v;
}

std::string formatDurationMs(uint64_t ms) {
  if (ms != 0 && ms % 3'600'000 == 0) return std::to_string(ms / 3'600'000) + "h";
  if (ms != 0 && ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
  if (ms != 0 && ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

std::string HostPort::toString() const {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

std::optional<HostPort> parseHostPort(std::string_view text, bool allow_domain) {
  // inet_pton stops at a NUL: "198.18.0.2\0x" would pass as an address.
  for (char c : text) {
    if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f) {
      return std::nullopt;
    }
  }
  HostPort hp;
  std::string_view port_text;
  if (!text.empty() && text[0] == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return std::nullopt;
    }
    hp.host = std::string(text.substr(1, close - 1));
    port_text = text.substr(close + 2);
    in6_addr a6;
    if (inet_pton(AF_INET6, hp.host.c_str(), &a6) != 1) return std::nullopt;
    hp.is_ip = true;
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos || colon == 0) return std::nullopt;
    hp.host = std::string(text.substr(0, colon));
    port_text = text.substr(colon + 1);
    if (hp.host.find(':') != std::string::npos) return std::nullopt;  // IPv6 needs brackets
    in_addr a4;
    if (inet_pton(AF_INET, hp.host.c_str(), &a4) == 1) {
      hp.is_ip = true;
    } else if (!allow_domain || !isDnsName(hp.host)) {
      return std::nullopt;
    } else {
      // All-digit-and-dot names that failed inet_pton are typos of an IPv4.
      bool numeric = true;
      for (char c : hp.host) numeric = numeric && (c == '.' || (c >= '0' && c <= '9'));
      if (numeric) return std::nullopt;
    }
  }
  if (port_text.empty() || port_text.size() > 5) return std::nullopt;
  uint32_t port = 0;
  for (char c : port_text) {
    if (c < '0' || c > '9') return std::nullopt;
    port = port * 10 + static_cast<uint32_t>(c - '0');
  }
  if (port == 0 || port > 65535) return std::nullopt;
  hp.port = static_cast<uint16_t>(port);
  return hp;
}

std::string resolvePath(const std::string& base_dir, const std::string& p) {
  if (p.empty() || p[0] == '/' || base_dir.empty()) return p;
  return base_dir + "/" + p;
}

Result<std::string> readConfigFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error(Errc::kConfig, path + ": cannot open the config file");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return Error(Errc::kConfig, path + ": cannot read the config file");
  return ss.str();
}

std::string configDir(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return path.substr(0, slash == 0 ? 1 : slash);
}

namespace {
bool printableNoSpace(std::string_view s) {
  for (char c : s) {
    if (c <= 0x20 || c >= 0x7f) return false;
  }
  return true;
}
bool iequals(std::string_view a, std::string_view b) { return asciiIEquals(a, b); }
}  // namespace

std::string wsPathProblem(std::string_view path) {
  if (path.empty() || path[0] != '/') return "a path must start with \"/\"";
  if (!printableNoSpace(path)) return "a path is printable ASCII without spaces";
  return {};
}

std::string wsHostProblem(std::string_view host) {
  if (host.empty()) return "a host must not be empty";
  if (!printableNoSpace(host)) return "a host is printable ASCII without spaces";
  return {};
}

std::string wsHeaderProblem(std::string_view name, std::string_view value) {
  static constexpr std::string_view kTokenExtra = "!#$%&'*+-.^_`|~";
  if (name.empty()) return "a header name must not be empty";
  for (char c : name) {
    bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              kTokenExtra.find(c) != std::string_view::npos;
    if (!ok) return "header name \"" + std::string(name) + "\" is not an HTTP token";
  }
  if (iequals(name, "host") || iequals(name, "upgrade") || iequals(name, "connection") ||
      (name.size() >= 14 && iequals(name.substr(0, 14), "sec-websocket-"))) {
    return "header \"" + std::string(name) + "\" is written by the upgrade itself" +
           (iequals(name, "host") ? " (set ws.host instead)" : "");
  }
  for (char c : value) {
    if (c == '\r' || c == '\n' || c == '\0') {
      return "the value of header \"" + std::string(name) + "\" holds CR, LF or NUL";
    }
  }
  return {};
}

}  // namespace vt::config
