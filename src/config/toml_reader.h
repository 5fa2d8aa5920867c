// Internal to src/config (includes toml++): walks a parsed TOML table and
// records the first error as "file:line:col: key: expectation". Parsing
// throws only inside toml::parse; walking nodes does not throw.
#pragma once

#include <toml++/toml.h>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

#include "config/config_util.h"
#include "core/error.h"

namespace vt::config {

class TomlReader {
 public:
  explicit TomlReader(std::string source) : source_(std::move(source)) {}

  bool failed() const { return error_.has_value(); }
  Error takeError() { return Error(Errc::kConfig, std::move(*error_)); }

  void fail(const toml::source_region* where, const std::string& key, const std::string& what) {
    if (error_) return;  // the first error is the useful one
    std::string msg = source_;
    if (where != nullptr && where->begin.line != 0) {
      msg += ":" + std::to_string(where->begin.line) + ":" + std::to_string(where->begin.column);
    }
    msg += ": ";
    if (!key.empty()) msg += printable(key) + ": ";
    msg += printable(what);
    error_ = std::move(msg);
  }
  // Messages quote what the file says: control characters (a NUL, an
  // escape sequence meant for the terminal) are shown as \xNN, never
  // printed as they are.
  static std::string printable(const std::string& s) {
    std::string out;
    out.reserve(s.size());
    for (unsigned char c : s) {
      if (c < 0x20 || c == 0x7f) {
        static constexpr char kHex[] = "0123456789abcdef";
        out += "\\x";
        out += kHex[c >> 4];
        out += kHex[c & 15];
      } else {
        out += static_cast<char>(c);
      }
    }
    return out;
  }
  void fail(const toml::node& n, const std::string& key, const std::string& what) {
    fail(&n.source(), key, what);
  }

  // Parses the whole text; false (with the error recorded) on a syntax
  // error. The only place toml++ may throw.
  bool parse(std::string_view text, toml::table& root) {
    try {
      root = toml::parse(text, source_);
      return true;
    } catch (const toml::parse_error& e) {
      fail(&e.source(), "", std::string("TOML syntax: ") + std::string(e.description()));
      return false;
    }
  }

  // Rejects keys not in `allowed`, so that typos do not pass silently.
  void checkKeys(const toml::table& t, const std::string& prefix,
                 std::initializer_list<std::string_view> allowed) {
    for (const auto& [k, v] : t) {
      bool known = false;
      for (auto a : allowed) known = known || k.str() == a;
      if (known) continue;
      std::string list;
      for (auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
      fail(&k.source(), join(prefix, std::string(k.str())), "unknown key; expected one of: " + list);
    }
  }

  static std::string join(const std::string& prefix, const std::string& key) {
    return prefix.empty() ? key : prefix + "." + key;
  }

  static std::string typeName(const toml::node& n) {
    switch (n.type()) {
      case toml::node_type::table: return "a table";
      case toml::node_type::array: return "an array";
      case toml::node_type::string: return "a string";
      case toml::node_type::integer: return "an integer";
      case toml::node_type::floating_point: return "a float";
      case toml::node_type::boolean: return "a boolean";
      default: return "a date/time";
    }
  }

  const std::string* str(const toml::node& n, const std::string& key, const std::string& expect) {
    if (const auto* v = n.as_string()) return &v->get();
    fail(n, key, "expected " + expect + ", got " + typeName(n));
    return nullptr;
  }

  std::optional<bool> boolean(const toml::node& n, const std::string& key) {
    if (const auto* v = n.as_boolean()) return v->get();
    fail(n, key, "expected true or false, got " + typeName(n));
    return std::nullopt;
  }

  std::optional<int64_t> integer(const toml::node& n, const std::string& key, int64_t lo,
                                 int64_t hi) {
    const auto* v = n.as_integer();
    if (v == nullptr || v->get() < lo || v->get() > hi) {
      fail(n, key,
           "expected an integer in " + std::to_string(lo) + ".." + std::to_string(hi) +
               (v == nullptr ? ", got " + typeName(n) : ", got " + std::to_string(v->get())));
      return std::nullopt;
    }
    return v->get();
  }

  const toml::array* array(const toml::node& n, const std::string& key, const std::string& of) {
    if (const auto* a = n.as_array()) return a;
    fail(n, key, "expected an array of " + of + ", got " + typeName(n));
    return nullptr;
  }

  // "500ms", "10s", "5m", "1h" or an integer of seconds; > 0.
  std::optional<uint64_t> duration(const toml::node& n, const std::string& key) {
    std::optional<uint64_t> ms;
    if (const auto* i = n.as_integer()) {
      if (i->get() > 0 && i->get() < 100'000'000) ms = static_cast<uint64_t>(i->get()) * 1000;
    } else if (const auto* s = n.as_string()) {
      ms = parseDurationMs(s->get());
    }
    if (!ms || *ms == 0) {
      fail(n, key,
           "expected a duration > 0 such as \"500ms\", \"10s\", \"5m\", \"1h\" or an integer of "
           "seconds");
      return std::nullopt;
    }
    return ms;
  }

 private:
  std::string source_;
  std::optional<std::string> error_;
};

// The [mux] keys both ends share: `mux.keepalive`, `mux.dead_after` (longer
// than keepalive), `mux.stream_window`, `mux.max_stream_window` and
// `mux.datagram_window`. Fails through `r`.
inline void readMuxLiveness(TomlReader& r, const toml::table& t, uint64_t& keepalive_ms,
                            uint64_t& dead_ms, uint32_t& stream_window,
                            uint32_t& max_stream_window, uint32_t& datagram_window) {
  if (const toml::node* n = t.get("keepalive")) {
    auto ms = r.duration(*n, "mux.keepalive");
    if (!ms) return;
    keepalive_ms = *ms;
  }
  if (const toml::node* n = t.get("dead_after")) {
    auto ms = r.duration(*n, "mux.dead_after");
    if (!ms) return;
    dead_ms = *ms;
  }
  if (dead_ms <= keepalive_ms) {
    const toml::node* at = t.get("dead_after") ? t.get("dead_after") : t.get("keepalive");
    r.fail(at != nullptr ? &at->source() : nullptr, "mux.dead_after",
           "expected a duration longer than mux.keepalive (" + formatDurationMs(keepalive_ms) +
               "), got " + formatDurationMs(dead_ms));
    return;
  }
  if (const toml::node* n = t.get("stream_window")) {
    auto v = r.integer(*n, "mux.stream_window", 65536, 16 << 20);
    if (!v) return;
    stream_window = static_cast<uint32_t>(*v);
  }
  if (const toml::node* n = t.get("max_stream_window")) {
    auto v = r.integer(*n, "mux.max_stream_window", 65536, 16 << 20);
    if (!v) return;
    max_stream_window = static_cast<uint32_t>(*v);
  }
  if (const toml::node* n = t.get("datagram_window")) {
    auto v = r.integer(*n, "mux.datagram_window", 65536, 16 << 20);
    if (!v) return;
    datagram_window = static_cast<uint32_t>(*v);
  }
}

}  // namespace vt::config
