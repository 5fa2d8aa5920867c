// The client config's [route] keys as the RouteManager's options (Linux
// auto_route and gateway mode).
#pragma once

#include <string>

#include "config/client_config.h"
#include "route_manager.h"

namespace vt::engine {

platform::RouteOptions routeOptions(const config::ClientConfig& cfg, const std::string& tun_name,
                                    int ifindex);

}  // namespace vt::engine
