// JSON output for the stats documents (the client's stats JSON, the
// control endpoints' answers): a string escaper and an object writer that
// appends to a std::string. Output only; nothing here parses JSON.
#pragma once

#include <cstdint>
#include <string>

namespace vt {

// "a\"b" -> "\"a\\\"b\"" (quotes, backslashes and control characters
// escaped; other bytes as they are).
std::string jsonString(const std::string& s);

// Writes '{' now and '}' when destroyed; members in call order.
//   std::string out; { JsonObject o(out); o.num("a", 1); o.key("b"); out += "[]"; }
class JsonObject {
 public:
  explicit JsonObject(std::string& out) : out_(out) { out_ += '{'; }
  ~JsonObject() { out_ += '}'; }
  JsonObject(const JsonObject&) = delete;
  JsonObject& operator=(const JsonObject&) = delete;
  // `k` is written as it is: a literal of ours, never input.
  void key(const char* k) {
    if (!first_) out_ += ',';
    first_ = false;
    out_ += '"';
    out_ += k;
    out_ += "\":";
  }
  void num(const char* k, uint64_t v) {
    key(k);
    out_ += std::to_string(v);
  }
  void str(const char* k, const std::string& v) {
    key(k);
    out_ += jsonString(v);
  }
  void boolean(const char* k, bool v) {
    key(k);
    out_ += v ? "true" : "false";
  }

 private:
  std::string& out_;
  bool first_ = true;
};

}  // namespace vt
