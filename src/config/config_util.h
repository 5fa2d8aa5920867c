// Value parsers shared by the config loaders: durations, UUIDs, host:port.
// Pure functions over strings so that they can be tested without TOML.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.h"

namespace vt::config {

using UuidBytes = std::array<uint8_t, 16>;

// "a684455c-b14f-11ea-bf0d-42010aaa0003": 36 characters with dashes at the
// canonical places, or 32 hex digits.
std::optional<UuidBytes> parseUuidText(std::string_view text);
std::string uuidText(const UuidBytes& u);

// "500ms", "10s", "5m", "1h" -> milliseconds. No sign, no fractions.
std::optional<uint64_t> parseDurationMs(std::string_view text);
// A bandwidth in bytes per second: "500KB/s", "8MB/s", "1.5MiB/s",
// "100Mbit/s" ("/s" optional; KB/MB/GB are powers of 1000, KiB/MiB/GiB of
// 1024, kbit/Mbit/Gbit bits). At least 1 KB/s, at most 100 GB/s.
std::optional<uint64_t> parseRateBytesPerS(std::string_view text);
// A size in bytes: "64MiB", "1GB", "512KiB" (KB/MB/GB powers of 1000,
// KiB/MiB/GiB of 1024). At least 64 KiB, at most 1 TiB.
std::optional<uint64_t> parseSizeBytes(std::string_view text);
// The other way, for messages: the largest unit that divides exactly
// (300000 -> "5m", 1500 -> "1500ms").
std::string formatDurationMs(uint64_t ms);

// "host:port" where host is an IPv4 literal, a bracketed IPv6 literal
// ("[::1]:443") or, if allow_domain, a DNS name. Port 1..65535.
struct HostPort {
  std::string host;  // without brackets
  uint16_t port = 0;
  bool is_ip = false;
  std::string toString() const;  // brackets IPv6 again
};
std::optional<HostPort> parseHostPort(std::string_view text, bool allow_domain);

// [control] (both programs; docs/operations.md "Control socket"): the
// operator's Unix socket. Empty socket: none (the --control flag can set
// one). group: empty, mode 0600; else 0660 with that group.
struct ControlConfig {
  std::string socket;
  std::string group;
};

// A path from a config file: relative ones are relative to the file's
// directory `base_dir`; absolute and empty ones stay as they are.
std::string resolvePath(const std::string& base_dir, const std::string& p);

// The whole config file, read at start-up (before the loop runs), and the
// directory its relative paths are relative to.
Result<std::string> readConfigFile(const std::string& path);
std::string configDir(const std::string& path);

// WebSocket settings, checked where they are read (the codec would refuse
// them at the first connection): empty when fine, else what is wrong.
// A path: origin-form ("/" first), printable ASCII without spaces.
std::string wsPathProblem(std::string_view path);
// A Host value: printable ASCII without spaces, not empty.
std::string wsHostProblem(std::string_view host);
// An extra request header: a token name that is not one the upgrade writes
// itself (Host, Upgrade, Connection, Sec-WebSocket-*), and a value without
// CR, LF or NUL.
std::string wsHeaderProblem(std::string_view name, std::string_view value);

}  // namespace vt::config
