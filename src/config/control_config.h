// Reads [control] (ControlConfig, config_util.h) for both config loaders.
// Internal to src/config (it brings toml++ in).
#pragma once

#include "config/config_util.h"
#include "config/toml_reader.h"

namespace vt::config {

void readControl(TomlReader& r, const toml::node& n, const std::string& base_dir, ControlConfig& c);

}  // namespace vt::config
