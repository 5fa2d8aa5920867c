// The client config's [server] table (internal to vt_config).
#pragma once

#include "config/client_config.h"
#include "config/toml_reader.h"

namespace vt::config {
// Reads [server] (and [server.ws]) into `s`; a missing table fails through `r`.
void readServer(TomlReader& r, const toml::table* t, ClientServerConfig& s);
}  // namespace vt::config
