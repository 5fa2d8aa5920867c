// Blocking-socket peers for server tests: the server under test runs on its
// own loop thread; clients, the echo target and the fallback are plain
// threads with blocking sockets, so they do not depend on the code tested.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace vt::test {

// A TCP server on 127.0.0.1:0 that echoes every byte (after an optional
// banner), records what each connection sent, and on the client's EOF
// half-closes back.
class EchoPeer {
 public:
  explicit EchoPeer(std::string banner = "");
  ~EchoPeer();
  uint16_t port() const { return port_; }
  size_t connections();
  std::string received(size_t conn);
  // Waits until some connection (index >= from) has received exactly
  // `bytes`; returns its index or -1 at the deadline.
  int waitForReceived(size_t from, const std::string& bytes, int timeout_ms);

 private:
  void acceptLoop();
  void serve(int fd, size_t idx);

  std::string banner_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread acceptor_;
  std::mutex mu_;
  std::vector<std::thread> workers_;
  std::vector<std::string> received_;
};

int connectLoopback(uint16_t port);
int connectLoopback6(uint16_t port);  // [::1]
bool sendAll(int fd, const void* p, size_t n);
inline bool sendAll(int fd, const std::string& s) {
  return sendAll(fd, s.data(), s.size());
}
// Reads until `n` bytes arrived, EOF, an error or the deadline.
std::string readSome(int fd, size_t n, int timeout_ms, bool* eof = nullptr);
// Reads until EOF/error; returns false at the deadline. Bytes read go to *got.
bool waitEof(int fd, int timeout_ms, std::string* got);

}  // namespace vt::test
