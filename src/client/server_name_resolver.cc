#include "client/server_name_resolver.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <random>
#include <sstream>

#include "codec/dns.h"
#include "core/log.h"

namespace vt::client {
namespace {

constexpr uint16_t kTypeA = 1;
constexpr uint16_t kTypeAaaa = 28;

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// "vpn.example." -> wire form, lowered; empty when not a valid name.
std::string wireName(const std::string& name) {
  std::string out;
  std::string n = lower(name);
  if (!n.empty() && n.back() == '.') n.pop_back();
  if (n.empty()) return "";
  size_t start = 0;
  while (start <= n.size()) {
    size_t dot = n.find('.', start);
    if (dot == std::string::npos) dot = n.size();
    size_t len = dot - start;
    if (len == 0 || len > 63) return "";
    out.push_back(static_cast<char>(len));
    out.append(n, start, len);
    start = dot + 1;
    if (dot == n.size()) break;
  }
  out.push_back('\0');
  return out.size() > codec::kDnsMaxName ? "" : out;
}

uint16_t randomId() {
  static std::mt19937 rng{std::random_device{}()};
  return static_cast<uint16_t>(rng());
}

}  // namespace

ServerNameResolver::ServerNameResolver(event::Loop& loop, uint32_t fwmark,
                                       const std::string& hosts_path,
                                       const std::string& resolv_path)
    : loop_(loop), fwmark_(fwmark), timer_(loop) {
  // Both files are read once, here, at start-up (never from the loop).
  std::ifstream hosts(hosts_path);
  for (std::string line; std::getline(hosts, line);) {
    line = line.substr(0, line.find('#'));
    std::istringstream in(line);
    std::string ip, name;
    if (!(in >> ip)) continue;
    auto addr = event::SocketAddress::parseIp(ip, 0);
    if (!addr) continue;
    while (in >> name) hosts_.emplace_back(lower(name), *addr);
  }
  std::ifstream resolv(resolv_path);
  for (std::string line; std::getline(resolv, line);) {
    std::istringstream in(line);
    std::string key, ip;
    if (!(in >> key >> ip) || key != "nameserver") continue;
    if (auto addr = event::SocketAddress::parseIp(ip, 53); addr && servers_.size() < 3) {
      servers_.push_back(*addr);
    }
  }
}

ServerNameResolver::~ServerNameResolver() {
  *alive_ = false;
}

void ServerNameResolver::resolve(const std::string& host, uint16_t port, Callback cb) {
  cancel();
  cb_ = std::move(cb);
  host_ = lower(host);
  port_ = port;
  std::vector<event::SocketAddress> found;
  for (const auto& [name, addr] : hosts_) {
    if (name != host_ && name != host_ + ".") continue;
    event::SocketAddress a = addr;
    a.setPort(port);
    if (std::find(found.begin(), found.end(), a) == found.end()) found.push_back(a);
  }
  std::weak_ptr<bool> alive = alive_;
  auto later = [this, alive](Result<std::vector<event::SocketAddress>> r) {
    loop_.post([this, alive, r = std::move(r)]() mutable {
      if (!alive.expired()) finish(std::move(r));
    });
  };
  if (!found.empty()) {
    later(std::move(found));
    return;
  }
  if (wireName(host_).empty()) {
    later(Error(Errc::kResolve, "resolve " + host + ": not a DNS name"));
    return;
  }
  if (servers_.empty()) {
    later(Error(Errc::kResolve, "resolve " + host +
                                    ": not in /etc/hosts and no nameserver (none in /etc/resolv.conf or given)"));
    return;
  }
  auto s = event::UdpSocket::open(loop_, true);
  if (!s.ok()) {
    later(Error(Errc::kResolve, "resolve " + host + ": " + s.error().message));
    return;
  }
  socket_ = std::move(s).value();
  if (fwmark_ != 0) socket_->setMark(fwmark_);
  if (hook_) {
    int fd = socket_->fd();
    if (fd < 0 || !hook_(fd)) {
      socket_.reset();
      later(Error(Errc::kResolve, "resolve " + host + ": protect() refused the query socket"));
      return;
    }
  }
  socket_->onReceive([this](const uint8_t* p, size_t n, const event::SocketAddress& from) {
    onDatagram(p, n, from);
  });
  try_ = 0;
  lastError_ = "no answer";
  sendTry();
}

void ServerNameResolver::sendTry() {
  if (try_ >= servers_.size() * kRounds) {
    finish(Error(Errc::kResolve, "resolve " + host_ + ": " + lastError_ + " (asked " +
                                     std::to_string(servers_.size()) + " nameserver(s) from a " +
                                     "socket outside the tunnel)"));
    return;
  }
  const event::SocketAddress& server = servers_[try_ % servers_.size()];
  idA_ = randomId();
  idAaaa_ = static_cast<uint16_t>(idA_ + 1);
  gotA_ = gotAaaa_ = false;
  v4_.clear();
  v6_.clear();
  for (auto [type, id] : {std::pair{kTypeA, idA_}, std::pair{kTypeAaaa, idAaaa_}}) {
    std::vector<uint8_t> q = encodeQuery(host_, type, id);
    socket_->sendTo(server, q.data(), q.size());
  }
  timer_.start(kTryMs, [this] {
    // One family answered with addresses and the other not at all (or
    // SERVFAIL/REFUSED, which a nameserver without IPv6 upstreams gives
    // for AAAA): the addresses we have are enough.
    if ((gotA_ && !v4_.empty()) || (gotAaaa_ && !v6_.empty())) {
      finish(merged());
      return;
    }
    lastError_ = "no answer from " + servers_[try_ % servers_.size()].ipString();
    ++try_;
    sendTry();
  });
}

std::vector<event::SocketAddress> ServerNameResolver::merged() const {
  std::vector<event::SocketAddress> all;
  for (const auto* list : {&v4_, &v6_}) {
    for (event::SocketAddress a : *list) {
      a.setPort(port_);
      if (std::find(all.begin(), all.end(), a) == all.end()) all.push_back(a);
    }
  }
  return all;
}

void ServerNameResolver::onDatagram(const uint8_t* p, size_t n, const event::SocketAddress& from) {
  if (!cb_ || servers_.empty()) return;
  if (!(from == servers_[try_ % servers_.size()])) return;  // only the server asked
  std::vector<event::SocketAddress> got;
  if (!gotA_ && parseAnswer(p, n, host_, kTypeA, idA_, got)) {
    gotA_ = true;
    v4_ = std::move(got);
  } else if (!gotAaaa_ && parseAnswer(p, n, host_, kTypeAaaa, idAaaa_, got)) {
    gotAaaa_ = true;
    v6_ = std::move(got);
  } else {
    return;
  }
  if (!gotA_ || !gotAaaa_) return;
  std::vector<event::SocketAddress> all = merged();
  if (all.empty()) {
    lastError_ = "no address (" + from.ipString() + " answered with none)";
    ++try_;
    timer_.stop();
    sendTry();
    return;
  }
  finish(std::move(all));
}

void ServerNameResolver::cancel() {
  cb_ = nullptr;
  timer_.stop();
  if (socket_) {
    // We may be inside its receive callback: it goes on a later iteration.
    socket_->onReceive(nullptr);
    loop_.post([s = std::shared_ptr<event::UdpSocket>(std::move(socket_))] {});
  }
}

void ServerNameResolver::finish(Result<std::vector<event::SocketAddress>> r) {
  Callback cb = std::move(cb_);
  cancel();
  if (cb) cb(std::move(r));
}

std::vector<uint8_t> ServerNameResolver::encodeQuery(const std::string& name, uint16_t type,
                                                     uint16_t id) {
  std::string wire = wireName(name);
  std::vector<uint8_t> q;
  q.reserve(codec::kDnsHeaderSize + wire.size() + 4);
  // ID, flags RD, QDCOUNT 1, AN/NS/AR 0.
  for (uint8_t b : {static_cast<uint8_t>(id >> 8), static_cast<uint8_t>(id), uint8_t{0x01},
                    uint8_t{0}, uint8_t{0}, uint8_t{1}, uint8_t{0}, uint8_t{0}, uint8_t{0},
                    uint8_t{0}, uint8_t{0}, uint8_t{0}}) {
    q.push_back(b);
  }
  for (char c : wire) q.push_back(static_cast<uint8_t>(c));
  q.push_back(static_cast<uint8_t>(type >> 8));
  q.push_back(static_cast<uint8_t>(type));
  q.push_back(0);
  q.push_back(1);  // class IN
  return q;
}

bool ServerNameResolver::parseAnswer(const uint8_t* p, size_t n, const std::string& name,
                                     uint16_t type, uint16_t id,
                                     std::vector<event::SocketAddress>& out) {
  out.clear();
  codec::DnsMessage m;
  std::string error;
  if (!codec::parseDnsMessage(p, n, m, error)) return false;
  if (!m.isResponse() || m.id != id || m.questions.size() != 1) return false;
  if (m.questions[0].wireName != wireName(name) || m.questions[0].type != type) return false;
  // NOERROR (maybe no data) and NXDOMAIN are answers; anything else
  // (SERVFAIL, REFUSED) is not: the next nameserver gets a try.
  if (m.rcode() != codec::kDnsRcodeNoError && m.rcode() != codec::kDnsRcodeNxDomain) return false;
  for (const std::vector<uint8_t>& ip : codec::dnsAnswerAddresses(p, n, m, type)) {
    out.push_back(event::SocketAddress::fromIpBytes(ip.data(), ip.size(), 0));
  }
  return true;
}

}  // namespace vt::client
