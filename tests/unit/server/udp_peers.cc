#include "unit/server/udp_peers.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

#include "codec/length_frame.h"
#include "codec/udp_packet.h"
#include "unit/server/test_peers.h"

namespace vt::server::testing {
namespace {

int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string sourceName(const sockaddr_storage& ss) {
  char ip[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET) {
    const auto* s4 = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof ip);
    return std::string(ip) + ":" + std::to_string(ntohs(s4->sin_port));
  }
  const auto* s6 = reinterpret_cast<const sockaddr_in6*>(&ss);
  inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof ip);
  return "[" + std::string(ip) + "]:" + std::to_string(ntohs(s6->sin6_port));
}

}  // namespace

UdpReflector::UdpReflector(std::string tag, bool also_v6) : tag_(std::move(tag)) {
  for (int attempt = 0; attempt < 20; ++attempt) {
    fd4_ = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd4_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd4_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    if (!also_v6) break;
    fd6_ = ::socket(AF_INET6, SOCK_DGRAM, 0);
    sockaddr_in6 b{};
    b.sin6_family = AF_INET6;
    b.sin6_addr = in6addr_loopback;
    b.sin6_port = htons(port_);
    if (fd6_ >= 0 && ::bind(fd6_, reinterpret_cast<sockaddr*>(&b), sizeof b) == 0) break;
    if (fd6_ >= 0) ::close(fd6_);
    fd6_ = -1;
    if (attempt == 19) break;  // IPv4 only, then
    ::close(fd4_);             // that port is taken on ::1; try another
  }
  int big = 1 << 20;
  ::setsockopt(fd4_, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
  thread_ = std::thread([this] { run(); });
}

UdpReflector::~UdpReflector() {
  stop_ = true;
  thread_.join();
  ::close(fd4_);
  if (fd6_ >= 0) ::close(fd6_);
}

void UdpReflector::run() {
  std::vector<char> buf(70000);
  while (!stop_) {
    pollfd p[2] = {{fd4_, POLLIN, 0}, {fd6_, POLLIN, 0}};
    if (::poll(p, fd6_ >= 0 ? 2 : 1, 20) <= 0) continue;
    for (int i = 0; i < 2; ++i) {
      if ((p[i].revents & POLLIN) == 0) continue;
      sockaddr_storage from{};
      socklen_t len = sizeof from;
      ssize_t n = ::recvfrom(p[i].fd, buf.data(), buf.size(), 0,
                             reinterpret_cast<sockaddr*>(&from), &len);
      if (n < 0) continue;
      {
        std::lock_guard<std::mutex> lock(mu_);
        sources_.push_back(sourceName(from));
      }
      std::string reply = tag_ + std::string(buf.data(), static_cast<size_t>(n));
      ::sendto(p[i].fd, reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&from), len);
    }
  }
}

std::vector<std::string> UdpReflector::sources() {
  std::lock_guard<std::mutex> lock(mu_);
  return sources_;
}

std::vector<uint16_t> UdpReflector::sourcePorts() {
  std::vector<uint16_t> out;
  for (const std::string& s : sources()) {
    out.push_back(static_cast<uint16_t>(std::stoi(s.substr(s.rfind(':') + 1))));
  }
  return out;
}

size_t UdpReflector::received() {
  std::lock_guard<std::mutex> lock(mu_);
  return sources_.size();
}

bool UdpReflector::waitReceived(size_t n, int timeout_ms) {
  int64_t deadline = nowMs() + timeout_ms;
  while (received() < n) {
    if (nowMs() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

UdpProbe::UdpProbe() {
  fd_ = ::socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
  port_ = ntohs(a.sin_port);
}

UdpProbe::~UdpProbe() { ::close(fd_); }

bool UdpProbe::sendTo(uint16_t port, const std::string& data) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  return ::sendto(fd_, data.data(), data.size(), 0, reinterpret_cast<sockaddr*>(&a), sizeof a) ==
         static_cast<ssize_t>(data.size());
}

std::optional<std::string> UdpProbe::recv(int timeout_ms) {
  pollfd p{fd_, POLLIN, 0};
  if (::poll(&p, 1, timeout_ms) <= 0) return std::nullopt;
  char buf[70000];
  ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
  if (n < 0) return std::nullopt;
  return std::string(buf, static_cast<size_t>(n));
}

codec::Request udpRequest(uint8_t version, const codec::Uuid& uuid, const codec::Address& target,
                          bool multi, std::optional<uint64_t> session) {
  codec::Request r;
  r.version = version;
  r.uuid = uuid;
  r.command = codec::Command::kUdp;
  r.target = target;
  r.udp_multi = multi;
  r.udp_session = session;
  return r;
}

std::string lengthPacket(const std::string& payload) {
  BufferChain out;
  codec::encodeLengthPacket(reinterpret_cast<const uint8_t*>(payload.data()), payload.size(), out);
  return out.toString();
}

std::string classicPacket(const codec::Address& to, const std::string& payload) {
  BufferChain p;
  p.append(payload);
  BufferChain out;
  codec::encodeClassicUdpPacket(to, p, out);
  return out.toString();
}

bool PacketReader::fill(int timeout_ms) {
  pollfd p{fd_, POLLIN, 0};
  if (::poll(&p, 1, timeout_ms) <= 0) return false;
  char buf[65536];
  ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
  if (n <= 0) {
    eof_ = true;
    return false;
  }
  buf_.append(buf, static_cast<size_t>(n));
  return true;
}

std::optional<Datagram> PacketReader::next(int timeout_ms) {
  int64_t deadline = nowMs() + timeout_ms;
  while (true) {
    codec::PacketDecodeResult r;
    switch (framing_) {
      case Framing::kLength: r = codec::decodeLengthPacket(buf_); break;
      case Framing::kClassic: r = codec::decodeClassicUdpPacket(buf_); break;
      case Framing::kMultiDown: r = codec::decodeMultiUdpDown(buf_); break;
    }
    if (r.status == codec::DecodeStatus::kInvalid) return std::nullopt;
    if (r.status == codec::DecodeStatus::kDone) {
      BufferChain payload;
      codec::takePacket(buf_, r, payload);
      return Datagram{r.address, payload.toString()};
    }
    int64_t left = deadline - nowMs();
    if (left <= 0 || eof_) return std::nullopt;
    fill(static_cast<int>(left));
  }
}

std::string PacketReader::raw(size_t n, int timeout_ms) {
  int64_t deadline = nowMs() + timeout_ms;
  while (buf_.size() < n && !eof_) {
    int64_t left = deadline - nowMs();
    if (left <= 0) break;
    fill(static_cast<int>(left));
  }
  n = std::min(n, buf_.size());
  std::string out = buf_.toString().substr(0, n);
  buf_.drain(n);
  return out;
}

int openChannel(uint16_t server_port, const codec::Request& req, const std::string& first) {
  int fd = test::connectLoopback(server_port);
  if (fd < 0) return -1;
  BufferChain head;
  codec::encodeRequest(req, head);
  if (!test::sendAll(fd, head.toString() + first)) {
    ::close(fd);
    return -1;
  }
  return fd;
}

}  // namespace vt::server::testing
