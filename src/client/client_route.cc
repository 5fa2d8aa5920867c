// Client: the routing rules' side (docs/client.md "Routing rules"): the
// decision for a destination and the sockets of direct flows.
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "client/client.h"
#include "client/dialled_ips.h"
#include "client/dns_names.h"
#include "core/log.h"
#include "event/udp_socket.h"
#include "stream/tcp_stream.h"

namespace vt::client {

route::Decision Client::routeFor(const netstack::IpAddress& ip, uint16_t port,
                                 route::Network network, std::string_view name,
                                 std::string* known) const {
  if (rules_ == nullptr) return {};
  route::Query q;
  if (ip.isV4()) {
    q.ip = route::IpAddress::v4(ip.bytes.data());
  } else if (ip.isV6()) {
    q.ip = route::IpAddress::v6Bytes(ip.bytes.data());
  }
  q.port = port;
  q.network = network;
  std::optional<std::string> learnt;
  if (name.empty() && dnsNames_ != nullptr) {
    const netstack::IpAddress a = netstack::unmapV4(ip);
    learnt = dnsNames_->nameOf(a.isV6(), a.bytes.data(), loop_.now());
    if (learnt) {
      name = *learnt;
      if (known != nullptr) *known = *learnt;
    }
  }
  q.domain = name;
  char country[3] = {};
  if (geoip_ != nullptr && q.ip) {
    // want_ip: a name the server dialled before is judged by the address
    // it reached, not by the one our DNS answer gave the app.
    std::optional<route::IpAddress> dialled;
    if (dialledIps_ != nullptr && !name.empty()) dialled = dialledIps_->lookup(name, loop_.now());
    q.country = geoip_->country(dialled ? *dialled : *q.ip, country);
  }
  return rules_->match(q);
}

namespace {

// route.direct_interface: SO_BINDTODEVICE (needs CAP_NET_RAW before Linux
// 5.7, root here); false and a WARN when the kernel refuses.
bool bindToInterface(int fd, const std::string& name) {
#ifdef SO_BINDTODEVICE
  if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, name.c_str(),
                           static_cast<socklen_t>(name.size())) == 0) {
    return fd >= 0;
  }
  VT_WARN("route.direct_interface %s: SO_BINDTODEVICE: %s", name.c_str(), strerror(errno));
  return false;
#else
  (void)fd;
  (void)name;
  return false;
#endif
}

}  // namespace

stream::StreamPtr Client::makeDirect(const netstack::FlowKey& key) {
  const netstack::IpAddress ip = netstack::unmapV4(key.dst);
  const auto dst = event::SocketAddress::fromIpBytes(ip.bytes.data(), ip.size(), key.dstPort);
  auto tcp = stream::TcpStream::create(loop_, dst);
  // The mark and protect() keep it out of the TUN, as a server connection.
  if (cfg_.server.fwmark != 0) tcp->setMark(cfg_.server.fwmark);
  const std::string& dev = cfg_.route.rules.direct_interface;
  if (!dev.empty() && !bindToInterface(tcp->fd(), dev)) {
    tcp->refuse("cannot bind to route.direct_interface " + dev);
  }
  if (hooks_.protect) {
    int fd = tcp->fd();
    if (fd >= 0 && !hooks_.protect(fd)) tcp->refuse("protect() refused the socket");
  }
  tcp->setNoDelay(true);
  tcp->setBufferBudget(&budget_);
  return tcp;
}

std::unique_ptr<event::UdpSocket> Client::makeDirectUdp() {
  auto sock = event::UdpSocket::open(loop_);
  if (!sock) {
    VT_WARN("udp: cannot open a direct socket: %s", sock.error().message.c_str());
    return nullptr;
  }
  std::unique_ptr<event::UdpSocket> s = std::move(sock).value();
  if (cfg_.server.fwmark != 0 && !s->setMark(cfg_.server.fwmark)) return nullptr;
  const std::string& dev = cfg_.route.rules.direct_interface;
  if (!dev.empty() && !bindToInterface(s->fd(), dev)) return nullptr;
  if (hooks_.protect && (s->fd() < 0 || !hooks_.protect(s->fd()))) {
    VT_WARN("udp: protect() refused a direct socket");
    return nullptr;
  }
  return s;
}

void Client::noteDialled(const std::string& name, const codec::Address& ip) {
  if (dialledIps_ == nullptr || !ip.isIp()) return;
  const route::IpAddress a = ip.type == codec::Address::Type::kIpv4
                                 ? route::IpAddress::v4(ip.ip.data())
                                 : route::IpAddress::v6Bytes(ip.ip.data());
  dialledIps_->note(name, a, loop_.now());
}

}  // namespace vt::client
