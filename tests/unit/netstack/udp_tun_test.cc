// NetStack's UDP path against the real kernel, in a network namespace of
// its own (forked child + unshare(CLONE_NEWNET)): needs root.
//
//   app socket (198.18.0.1 / 2001:db8::1) --route--> vtudp0 --> TUN fd
//     --> NetStack::input --> onUdp --> sendUdp(from any) --> TUN fd
//     --> kernel (reassembles our fragments) --> app socket recvfrom
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "netstack/net_stack.h"
#include "netstack/tcp_flow.h"
#include "tun_device.h"

namespace vt::netstack {
namespace {

// Echoes every datagram back to the app, once from the address it was sent
// to and once from `alias` (a second remote: full cone).
class TunOwner : public NetStack::Callbacks {
 public:
  explicit TunOwner(platform::TunDevice& tun) : tun_(tun) {}
  void onOutput(const PacketView& packet) override {
    if (tun_.writePacket(packet.iov, packet.iovCount) != static_cast<ssize_t>(packet.size)) {
      ++writeErrors;
    }
  }
  void onTcpSyn(const FlowKey&) override {}
  void onTcpAccepted(std::unique_ptr<TcpFlow>) override {}
  void onTimerInterval(uint32_t) override {}
  bool onUdp(const UdpEndpoint& app, const UdpEndpoint& dst, BufferChain&& payload) override {
    if (!stack->sendUdp(dst, app, payload)) ++sendErrors;
    UdpEndpoint alias = dst;
    alias.addr.bytes[alias.addr.size() - 1] ^= 0x40;
    alias.port = static_cast<uint16_t>(dst.port + 1);
    if (!stack->sendUdp(alias, app, payload)) ++sendErrors;
    return true;
  }
  NetStack* stack = nullptr;
  int writeErrors = 0;
  int sendErrors = 0;

 private:
  platform::TunDevice& tun_;
};

std::string sockText(const sockaddr_storage& ss) {
  char buf[INET6_ADDRSTRLEN] = {0};
  uint16_t port = 0;
  if (ss.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &a->sin_addr, buf, sizeof buf);
    port = ntohs(a->sin_port);
  } else {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof buf);
    port = ntohs(a->sin6_port);
  }
  return std::string(buf) + ":" + std::to_string(port);
}

// Moves packets TUN -> NetStack until `app` has a datagram or 3 s pass.
bool pumpUntilReadable(platform::TunDevice& tun, NetStack& stack, int app) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd pfd[2] = {{tun.fd(), POLLIN, 0}, {app, POLLIN, 0}};
    poll(pfd, 2, 100);
    if ((pfd[1].revents & POLLIN) != 0) return true;
    for (;;) {
      InputBuffer b = stack.allocInput(2048);
      const ssize_t n = tun.readPacket(b.data(), b.capacity());
      if (n <= 0) break;
      stack.input(std::move(b), static_cast<size_t>(n));
    }
  }
  return false;
}

std::string echoFamily(platform::TunDevice& tun, NetStack& stack, bool v6, int count) {
  int s = socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (!v6) {
    int off = IP_PMTUDISC_DONT;  // let the kernel fragment big datagrams
    setsockopt(s, IPPROTO_IP, IP_MTU_DISCOVER, &off, sizeof off);
  }
  sockaddr_storage to{};
  socklen_t toLen = 0;
  if (v6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&to);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(7000);
    inet_pton(AF_INET6, "2001:db8::77", &a->sin6_addr);
    toLen = sizeof *a;
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&to);
    a->sin_family = AF_INET;
    a->sin_port = htons(7000);
    inet_pton(AF_INET, "198.18.0.77", &a->sin_addr);
    toLen = sizeof *a;
  }
  const std::string first = v6 ? "2001:db8::77:7000" : "198.18.0.77:7000";
  const std::string second = v6 ? "2001:db8::37:7001" : "198.18.0.13:7001";
  std::mt19937 rng(v6 ? 6 : 4);
  std::vector<uint8_t> rx(70000);
  const size_t max = v6 ? kMaxUdpPayloadV6 : kMaxUdpPayloadV4;
  for (int i = 0; i < count; ++i) {
    size_t size = rng() % (v6 ? 1453 : 1473);
    if (i % 10 == 9) size = 1500 + rng() % 20000;  // fragmented both ways
    if (i == count - 1) size = max;
    std::vector<uint8_t> msg(size);
    for (auto& b : msg) b = static_cast<uint8_t>(rng());
    if (sendto(s, msg.data(), msg.size(), 0, reinterpret_cast<sockaddr*>(&to), toLen) !=
        static_cast<ssize_t>(msg.size())) {
      close(s);
      return "sendto size " + std::to_string(size) + ": " + strerror(errno);
    }
    for (const std::string& expectFrom : {first, second}) {
      if (!pumpUntilReadable(tun, stack, s)) {
        close(s);
        return "no echo for datagram " + std::to_string(i) + " size " + std::to_string(size);
      }
      sockaddr_storage from{};
      socklen_t fromLen = sizeof from;
      const ssize_t n =
          recvfrom(s, rx.data(), rx.size(), 0, reinterpret_cast<sockaddr*>(&from), &fromLen);
      if (n != static_cast<ssize_t>(size) ||
          (size != 0 && std::memcmp(rx.data(), msg.data(), size) != 0)) {
        close(s);
        return "echo " + std::to_string(i) + " differs: got " + std::to_string(n) + " of " +
               std::to_string(size);
      }
      if (sockText(from) != expectFrom) {
        close(s);
        return "echo from " + sockText(from) + ", expected " + expectFrom;
      }
    }
  }
  close(s);
  return "";
}

std::string runInNamespace() {
  if (unshare(CLONE_NEWNET) != 0) {
    return std::string("unshare(CLONE_NEWNET) failed (the test needs root): ") + strerror(errno);
  }
  platform::TunConfig cfg;
  cfg.name = "vtudp0";
  cfg.mtu = 1500;
  cfg.ipv4 = "198.18.0.1";
  cfg.ipv4Prefix = 24;
  cfg.ipv6 = "2001:db8::1";
  cfg.ipv6Prefix = 64;
  auto created = platform::TunDevice::create(cfg);
  if (!created.ok()) return "create: " + created.error().toString();
  platform::TunDevice& tun = *created.value();
  TunOwner owner(tun);
  NetStackOptions opt;
  opt.mtu = 1500;
  IpAddress::parse("198.18.0.1", opt.ipv4.emplace());
  IpAddress::parse("2001:db8::1", opt.ipv6.emplace());
  auto stack = NetStack::create(opt, owner);
  if (!stack.ok()) return "netstack: " + stack.error().toString();
  owner.stack = stack.value().get();
  for (bool v6 : {false, true}) {
    std::string err = echoFamily(tun, *stack.value(), v6, 300);
    if (!err.empty()) return (v6 ? "IPv6: " : "IPv4: ") + err;
  }
  const NetStackStats& st = stack.value()->stats();
  if (owner.writeErrors != 0 || owner.sendErrors != 0) return "write/send errors";
  if (st.udpIn != 600 || st.udpOut != 1200) {
    return "counts: in " + std::to_string(st.udpIn) + " out " + std::to_string(st.udpOut);
  }
  if (st.udpReassembled == 0 || st.udpOutFragments == 0) return "no fragments exercised";
  return "";
}

TEST(UdpTunTest, EchoThroughARealTunInOwnNetns) {
  int pipefd[2];
  ASSERT_EQ(pipe(pipefd), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(pipefd[0]);
    alarm(60);
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
}  // namespace vt::netstack
