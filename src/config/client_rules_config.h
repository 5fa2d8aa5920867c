// Reads the client's routing rules ([[route.rules]], route.default_action,
// route.block_style; docs/client.md "Routing rules") into a route::RuleSet
// built once at load time and shared, read-only, by every worker.
#pragma once

#include "config/client_config.h"
#include "config/toml_reader.h"

namespace vt::config {

// Reads them from the [route] table `t`; fails through `r` naming
// route.rules[N].<key> (N from 1, as a person counts the [[route.rules]]
// blocks) and the line. Opens route.geoip_database (relative to
// `base_dir`) when a rule lists geoip: start-up I/O, never on the loop.
void readRules(TomlReader& r, const toml::table& t, const std::string& base_dir,
               ClientRulesConfig& out);

}  // namespace vt::config
