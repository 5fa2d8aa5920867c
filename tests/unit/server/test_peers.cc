#include "unit/server/test_peers.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

namespace vt::test {
namespace {

int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

EchoPeer::EchoPeer(std::string banner) : banner_(std::move(banner)) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::listen(listen_fd_, 512);
  socklen_t len = sizeof a;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
  port_ = ntohs(a.sin_port);
  acceptor_ = std::thread([this] { acceptLoop(); });
}

EchoPeer::~EchoPeer() {
  stop_ = true;
  acceptor_.join();
  ::close(listen_fd_);
  std::vector<std::thread> w;
  {
    std::lock_guard<std::mutex> lock(mu_);
    w.swap(workers_);
  }
  for (auto& t : w) t.join();
}

size_t EchoPeer::connections() {
  std::lock_guard<std::mutex> lock(mu_);
  return received_.size();
}

std::string EchoPeer::received(size_t conn) {
  std::lock_guard<std::mutex> lock(mu_);
  return conn < received_.size() ? received_[conn] : std::string();
}

int EchoPeer::waitForReceived(size_t from, const std::string& bytes, int timeout_ms) {
  int64_t deadline = nowMs() + timeout_ms;
  while (nowMs() < deadline) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (size_t i = from; i < received_.size(); ++i) {
        if (received_[i] == bytes) return static_cast<int>(i);
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return -1;
}

void EchoPeer::acceptLoop() {
  while (!stop_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 20) <= 0) continue;
    int fd = ::accept(listen_fd_, nullptr, nullptr);
    if (fd < 0) continue;
    std::lock_guard<std::mutex> lock(mu_);
    size_t idx = received_.size();
    received_.emplace_back();
    workers_.emplace_back([this, fd, idx] { serve(fd, idx); });
  }
}

void EchoPeer::serve(int fd, size_t idx) {
  if (!banner_.empty()) sendAll(fd, banner_);
  char buf[16384];
  while (!stop_) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 20) <= 0) continue;
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
      if (n == 0) ::shutdown(fd, SHUT_WR);  // echo the half-close
      break;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      received_[idx].append(buf, static_cast<size_t>(n));
    }
    if (!sendAll(fd, buf, static_cast<size_t>(n))) break;
  }
  // Linger a little so a half-closed peer can still read what we sent.
  for (int i = 0; i < 100 && !stop_; ++i) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 20) > 0) {
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
    }
  }
  ::close(fd);
}

int connectLoopback(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

int connectLoopback6(uint16_t port) {
  int fd = ::socket(AF_INET6, SOCK_STREAM, 0);
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_addr = in6addr_loopback;
  a.sin6_port = htons(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

bool sendAll(int fd, const void* p, size_t n) {
  const char* c = static_cast<const char*>(p);
  while (n > 0) {
    ssize_t w = ::send(fd, c, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    c += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

std::string readSome(int fd, size_t n, int timeout_ms, bool* eof) {
  std::string out;
  if (eof != nullptr) *eof = false;
  int64_t deadline = nowMs() + timeout_ms;
  char buf[16384];
  while (out.size() < n) {
    int64_t left = deadline - nowMs();
    if (left <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    ssize_t r = ::recv(fd, buf, std::min(sizeof buf, n - out.size()), 0);
    if (r <= 0) {
      if (eof != nullptr) *eof = true;
      break;
    }
    out.append(buf, static_cast<size_t>(r));
  }
  return out;
}

bool waitEof(int fd, int timeout_ms, std::string* got) {
  int64_t deadline = nowMs() + timeout_ms;
  char buf[16384];
  while (true) {
    int64_t left = deadline - nowMs();
    if (left <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    ssize_t r = ::recv(fd, buf, sizeof buf, 0);
    if (r <= 0) return true;
    if (got != nullptr) got->append(buf, static_cast<size_t>(r));
  }
}

}  // namespace vt::test
