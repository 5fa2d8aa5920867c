#include "engine/route_options.h"

namespace vt::engine {

platform::RouteOptions routeOptions(const config::ClientConfig& cfg, const std::string& tun_name,
                                    int ifindex) {
  platform::RouteOptions o;
  o.tunName = tun_name;
  o.tunIfindex = ifindex;
  o.fwmark = cfg.route.fwmark;
  o.table = cfg.route.table;
  o.priority = cfg.route.priority;
  if (cfg.route.capture) {
    o.captureV4.clear();
    o.captureV6.clear();
    for (const auto& c : *cfg.route.capture) (c.v6 ? o.captureV6 : o.captureV4).push_back(c.toString());
  }
  if (cfg.route.bypass) {
    o.bypass.clear();
    for (const auto& c : *cfg.route.bypass) o.bypass.push_back(c.toString());
  }
  o.keepLan = cfg.route.keep_lan;
  o.stateFile = cfg.route.state_file;
  if (cfg.route.gateway) {
    o.gatewayInterfaces = cfg.route.gateway->interfaces;
    o.gatewayIpv6 = cfg.route.gateway->ipv6;
  }
  return o;
}

}  // namespace vt::engine
