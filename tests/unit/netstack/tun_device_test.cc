// TunDevice against the real kernel, inside a network namespace of its own
// (forked child + unshare(CLONE_NEWNET)): needs root, and FAILS without it.
//
//   UDP socket --(198.18.0.0/24 route)--> vttest0 --> TUN fd (test reads)
//   test writes ICMP echo 198.18.0.2 -> 198.18.0.1 --> kernel --> reply on fd
#include "tun_device.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <string>

#include "packet_builder.h"

namespace vt::platform {
namespace {

using test::ParsedPacket;

// Reads packets until `match` accepts one or 3 s pass.
bool readUntil(TunDevice& tun, const std::function<bool(const ParsedPacket&)>& match,
               std::string& err) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  uint8_t buf[2048];
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd pfd{tun.fd(), POLLIN, 0};
    poll(&pfd, 1, 100);
    ssize_t n = tun.readPacket(buf, sizeof buf);
    if (n == -EAGAIN) continue;
    if (n < 0) {
      err = "readPacket: " + std::string(strerror(static_cast<int>(-n)));
      return false;
    }
    ParsedPacket p;
    if (test::parsePacket(buf, static_cast<size_t>(n), p) && match(p)) {
      if (!p.checksumsOk) err = "bad checksum in the matched packet";
      return p.checksumsOk;
    }
  }
  err = "timed out waiting for the packet";
  return false;
}

// The body run in the child, in a fresh netns; returns "" or what failed.
std::string runInNamespace() {
  if (unshare(CLONE_NEWNET) != 0) {
    return std::string("unshare(CLONE_NEWNET) failed (the test needs root): ") + strerror(errno);
  }
  TunConfig cfg;
  cfg.name = "vttest0";
  cfg.mtu = 1500;
  cfg.ipv4 = "198.18.0.1";
  cfg.ipv4Prefix = 24;
  cfg.ipv6 = "2001:db8::1";
  cfg.ipv6Prefix = 64;
  auto created = TunDevice::create(cfg);
  if (!created.ok()) return "create: " + created.error().toString();
  TunDevice& tun = *created.value();
  if (tun.name() != "vttest0" || tun.ifindex() <= 0) return "name/ifindex wrong";
  if ((fcntl(tun.fd(), F_GETFL) & O_NONBLOCK) == 0) return "fd not O_NONBLOCK";
  if ((fcntl(tun.fd(), F_GETFD) & FD_CLOEXEC) == 0) return "fd not O_CLOEXEC";

  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "vttest0", IFNAMSIZ - 1);
  if (ioctl(s, SIOCGIFMTU, &ifr) != 0 || ifr.ifr_mtu != 1500) return "MTU is not 1500";
  if (ioctl(s, SIOCGIFFLAGS, &ifr) != 0 || (ifr.ifr_flags & IFF_UP) == 0) return "link not up";

  // Kernel -> TUN: a UDP datagram routed into the TUN.
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(9);
  inet_pton(AF_INET, "198.18.0.2", &to.sin_addr);
  const char msg[] = "hello tun";
  if (sendto(s, msg, sizeof msg - 1, 0, reinterpret_cast<sockaddr*>(&to), sizeof to) < 0) {
    return std::string("sendto 198.18.0.2:9: ") + strerror(errno);
  }
  close(s);
  std::string err;
  if (!readUntil(
          tun,
          [&](const ParsedPacket& p) {
            return p.version == 4 && p.protocol == 17 && p.dst == "198.18.0.2" && p.dstPort == 9 &&
                   p.src == "198.18.0.1" && std::string(p.payload.begin(), p.payload.end()) == msg;
          },
          err)) {
    return "UDP/IPv4 from the kernel: " + err;
  }

  int s6 = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in6 to6{};
  to6.sin6_family = AF_INET6;
  to6.sin6_port = htons(9);
  inet_pton(AF_INET6, "2001:db8::2", &to6.sin6_addr);
  if (sendto(s6, msg, sizeof msg - 1, 0, reinterpret_cast<sockaddr*>(&to6), sizeof to6) < 0) {
    return std::string("sendto [2001:db8::2]:9: ") + strerror(errno);
  }
  close(s6);
  if (!readUntil(
          tun,
          [&](const ParsedPacket& p) {
            return p.version == 6 && p.protocol == 17 && p.dst == "2001:db8::2" && p.dstPort == 9 &&
                   p.src == "2001:db8::1";
          },
          err)) {
    return "UDP/IPv6 from the kernel: " + err;
  }

  // TUN -> kernel: an echo request, gathered from two iovecs.
  auto echo = test::buildEcho("198.18.0.2", "198.18.0.1", 0x77, 1);
  iovec iov[2] = {{echo.data(), 20}, {echo.data() + 20, echo.size() - 20}};
  ssize_t w = tun.writePacket(iov, 2);
  if (w != static_cast<ssize_t>(echo.size())) return "writePacket: " + std::to_string(w);
  if (!readUntil(
          tun,
          [&](const ParsedPacket& p) {
            return p.version == 4 && p.protocol == 1 && p.icmpType == 0 && p.src == "198.18.0.1" &&
                   p.dst == "198.18.0.2";
          },
          err)) {
    return "ICMP echo reply from the kernel: " + err;
  }

  // Drained: -EAGAIN, not a block (IPv6 may still emit a stray packet).
  uint8_t buf[2048];
  ssize_t r = 0;
  for (int i = 0; i < 100 && r != -EAGAIN; ++i) r = tun.readPacket(buf, sizeof buf);
  if (r != -EAGAIN) return "readPacket on an empty queue did not return -EAGAIN";

  // Adopting an fd: dup'ed, non-blocking, named.
  int raw = fcntl(tun.fd(), F_DUPFD_CLOEXEC, 0);
  fcntl(raw, F_SETFL, fcntl(raw, F_GETFL) & ~O_NONBLOCK);
  auto adopted = TunDevice::adopt(raw);
  if (!adopted.ok()) return "adopt: " + adopted.error().toString();
  if (adopted.value()->fd() == raw) return "adopt did not dup";
  if ((fcntl(adopted.value()->fd(), F_GETFL) & O_NONBLOCK) == 0) return "adopted fd blocking";
  if (adopted.value()->name() != "vttest0") return "adopted name " + adopted.value()->name();
  close(raw);

  // Errors name the device and the failing call.
  TunConfig bad = cfg;
  bad.name = "vttest1";
  bad.ipv4 = "198.18.0.300";
  auto failed = TunDevice::create(bad);
  if (failed.ok()) return "a bad address was accepted";
  if (failed.error().message.find("vttest1") == std::string::npos) {
    return "error does not name the device: " + failed.error().message;
  }
  TunConfig longName = cfg;
  longName.name = "this-name-is-too-long";
  auto tooLong = TunDevice::create(longName);
  if (tooLong.ok() || tooLong.error().code != Errc::kInvalidArgument) return "long name accepted";
  return "";
}

TEST(TunDeviceTest, CreateConfigureReadWriteInOwnNetns) {
  int pipefd[2];
  ASSERT_EQ(pipe(pipefd), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(pipefd[0]);
    alarm(30);
    std::string err = runInNamespace();
    if (!err.empty() && write(pipefd[1], err.data(), err.size()) < 0) _exit(3);
    _exit(err.empty() ? 0 : 1);
  }
  close(pipefd[1]);
  std::string err;
  char buf[512];
  for (ssize_t n; (n = read(pipefd[0], buf, sizeof buf)) > 0;)
    err.append(buf, static_cast<size_t>(n));
  close(pipefd[0]);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << "child died: signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 0) << err;
  EXPECT_EQ(err, "");
}

}  // namespace
}  // namespace vt::platform
