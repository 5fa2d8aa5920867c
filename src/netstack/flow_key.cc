#include "netstack/flow_key.h"

#include <arpa/inet.h>

namespace vt::netstack {

bool IpAddress::parse(const std::string& text, IpAddress& out) noexcept {
  IpAddress a;
  if (inet_pton(AF_INET, text.c_str(), a.bytes.data()) == 1) {
    a.family = 4;
  } else if (inet_pton(AF_INET6, text.c_str(), a.bytes.data()) == 1) {
    a.family = 6;
  } else {
    return false;
  }
  out = a;
  return true;
}

std::string IpAddress::toString() const {
  char buf[INET6_ADDRSTRLEN] = {0};
  if (family == 4) {
    inet_ntop(AF_INET, bytes.data(), buf, sizeof buf);
  } else if (family == 6) {
    inet_ntop(AF_INET6, bytes.data(), buf, sizeof buf);
  } else {
    return "none";
  }
  return buf;
}

// Appends piecewise: GCC 12 warns (-Wrestrict, falsely) on "[" + string.
static void appendEndpoint(std::string& out, const IpAddress& a, uint16_t port) {
  if (a.isV6()) out.push_back('[');
  out.append(a.toString());
  if (a.isV6()) out.push_back(']');
  out.push_back(':');
  out.append(std::to_string(port));
}

std::string FlowKey::toString() const {
  std::string out;
  appendEndpoint(out, src, srcPort);
  out.append(" -> ");
  appendEndpoint(out, dst, dstPort);
  return out;
}

std::string UdpEndpoint::toString() const {
  std::string out;
  appendEndpoint(out, addr, port);
  return out;
}

}  // namespace vt::netstack
