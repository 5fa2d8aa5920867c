// Test world for routing tests: network namespaces created with
// unshare(CLONE_NEWNET) and held only by fds, so they vanish with the test
// process even if it crashes (nothing named is left in /run/netns).
//
//   gw ns: 198.18.200.1, 2001:db8:200::1 on lo ("the internet")
//     g0 198.18.1.2/24 2001:db8:1::2/64
//      |
//     h0 198.18.1.1/24 2001:db8:1::1/64 (real uplink, default route)
//   host ns (the test thread): vt-tun0 198.18.0.1/30 2001:db8:ff::1/64
//     h1 198.18.5.1/24 2001:db8:5::1/64 (directly connected LAN)
//      |
//     l0 198.18.5.2/24 2001:db8:5::2/64
//   lan ns
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <memory>
#include <string>

#include "tun_device.h"

namespace vt::test {

// Runs a shell command in the calling thread's namespace; returns stdout
// and stderr together, exit status in *status.
std::string run(const std::string& cmd, int* status = nullptr);

class NetNs {
 public:
  // A fresh namespace; the calling thread stays where it was.
  static std::unique_ptr<NetNs> create(std::string* err);
  ~NetNs();
  int fd() const { return fd_; }
  std::string path() const;  // /proc/<pid>/fd/<fd>, for `ip link ... netns`
  // Runs `cmd` inside this namespace.
  std::string run(const std::string& cmd, int* status = nullptr) const;
  // socket() inside this namespace (sockets keep their namespace).
  int socketIn(int family, int type) const;

 private:
  explicit NetNs(int fd) : fd_(fd) {}
  int fd_;
};

// Switches the calling thread into a namespace until destroyed.
class NsGuard {
 public:
  explicit NsGuard(int nsFd);
  ~NsGuard();
  bool ok() const { return ok_; }

 private:
  int saved_;
  bool ok_ = false;
};

struct World {
  std::unique_ptr<NetNs> host, gw, lan;
  std::unique_ptr<NsGuard> inHost;  // the test thread lives in `host`
  std::unique_ptr<platform::TunDevice> tun;
  std::string stateFile;

  // Builds everything; returns "" or what failed.
  std::string build();
  ~World();
};

// Socket helpers; return -1 / false on failure or after timeoutMs.
sockaddr_storage makeAddr(const std::string& ip, uint16_t port, socklen_t* len);
bool tcpExchange(int clientFd, const std::string& serverIp, uint16_t port, int listenFd,
                 std::string* err);
int tcpListener(int fd, const std::string& ip, uint16_t port);
bool udpSend(int fd, const std::string& ip, uint16_t port, const std::string& payload);
bool waitForPayload(int fd, const std::string& payload, int timeoutMs, bool isTun);

}  // namespace vt::test
