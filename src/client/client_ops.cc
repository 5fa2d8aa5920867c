// Client: the operator's actions on live flows (the control socket's
// `close ID`, engine/engine_control.cc).
#include "client/client.h"
#include "client/tcp_session.h"
#include "client/udp_session.h"

namespace vt::client {

std::string Client::describeFlow(uint64_t id) const {
  for (const TcpSession* s : lru_) {
    if (s->id() != id) continue;
    std::string d = "tcp flow " + std::to_string(id) + " " +
                    netstack::UdpEndpoint{s->key().src, s->key().srcPort}.toString() + " -> " +
                    netstack::UdpEndpoint{s->key().dst, s->key().dstPort}.toString();
    if (!s->name().empty()) d += " (" + s->name() + ")";
    return d;
  }
  for (const auto& [app, s] : udpSessions_) {
    if (s->id() == id) return "udp session " + std::to_string(id) + " " + app.toString();
  }
  return {};
}

bool Client::closeFlow(uint64_t id) {
  for (TcpSession* s : lru_) {
    if (s->id() != id) continue;
    // A reset: the app learns at once that its connection is gone.
    s->close("closed_by_operator", true);
    return true;
  }
  for (const auto& [app, s] : udpSessions_) {
    if (s->id() != id) continue;
    s->close("closed_by_operator");
    return true;
  }
  return false;
}

}  // namespace vt::client

namespace vt::client {

bool Client::rulesReplaceable(const config::ClientRulesConfig& r) const {
  const bool had = rules_ != nullptr, has = r.set != nullptr;
  if (had != has) return false;
  if (!has) return true;
  return rules_->usesDomains() == r.set->usesDomains() && (geoip_ != nullptr) == (r.geoip != nullptr);
}

void Client::setRules(const config::ClientRulesConfig& r) {
  rules_ = r.set;
  geoip_ = r.geoip;
  config::ClientRulesConfig& mine = cfg_.route.rules;
  mine.set = r.set;
  mine.count = r.count;
  mine.default_action = r.default_action;
  mine.geoip = r.geoip;
  mine.geoip_path = r.geoip_path;
}

}  // namespace vt::client
