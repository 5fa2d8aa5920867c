#include "config/config_diff.h"

#include <toml++/toml.h>

#include <algorithm>

namespace vt::config {

namespace {

void diffTable(const toml::table* a, const toml::table* b, const std::string& prefix, int depth,
               const std::vector<std::string>& live, std::vector<std::string>& out) {
  auto name = [&](std::string_view k) { return prefix.empty() ? std::string(k) : prefix + "." + std::string(k); };
  auto add = [&](const std::string& key) {
    if (std::find(live.begin(), live.end(), key) == live.end() &&
        std::find(out.begin(), out.end(), key) == out.end()) {
      out.push_back(key);
    }
  };
  auto visit = [&](std::string_view k, const toml::node* x, const toml::node* y) {
    const std::string key = name(k);
    if (x == nullptr || y == nullptr) {
      add(key);
      return;
    }
    const toml::table* tx = x->as_table();
    const toml::table* ty = y->as_table();
    if (depth == 0 && tx != nullptr && ty != nullptr) {
      diffTable(tx, ty, key, depth + 1, live, out);
      return;
    }
    if (toml::node_view<const toml::node>(x) != toml::node_view<const toml::node>(y)) add(key);
  };
  if (b != nullptr) {
    for (const auto& [k, v] : *b) visit(k.str(), a != nullptr ? a->get(k.str()) : nullptr, &v);
  }
  if (a != nullptr) {
    for (const auto& [k, v] : *a) {
      if (b == nullptr || b->get(k.str()) == nullptr) visit(k.str(), &v, nullptr);
    }
  }
}

}  // namespace

Result<std::vector<std::string>> changedTomlKeys(std::string_view before, std::string_view after,
                                                 const std::vector<std::string>& live) {
  toml::table a, b;
  try {
    a = toml::parse(before);
    b = toml::parse(after);
  } catch (const toml::parse_error& e) {
    return Error(Errc::kConfig, std::string("TOML syntax: ") + std::string(e.description()));
  }
  std::vector<std::string> out;
  diffTable(&a, &b, "", 0, live, out);
  return out;
}

}  // namespace vt::config
