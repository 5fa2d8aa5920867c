// What changed between two versions of a config file: for a reload, the
// keys a running program cannot apply without a restart.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace vt::config {

// The keys whose values differ between the TOML documents `before` and
// `after`: "key" at the top level, "table.key" inside a top-level table
// (deeper tables and arrays compared whole, named by their key): the keys
// of `after` (by name, as toml++ keeps them), then those only `before` has. Keys in `live` (the same
// spellings) are left out: the caller applies those. Errors: either
// document does not parse (kConfig).
Result<std::vector<std::string>> changedTomlKeys(std::string_view before, std::string_view after,
                                                 const std::vector<std::string>& live);

}  // namespace vt::config
