#include "netns_world.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>

namespace vt::test {

std::string run(const std::string& cmd, int* status) {
  std::string out;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (p == nullptr) {
    if (status) *status = -1;
    return "popen failed";
  }
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int rc = pclose(p);
  if (status) *status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  return out;
}

NsGuard::NsGuard(int nsFd) {
  saved_ = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  ok_ = saved_ >= 0 && setns(nsFd, CLONE_NEWNET) == 0;
}

NsGuard::~NsGuard() {
  if (saved_ >= 0) {
    if (setns(saved_, CLONE_NEWNET) != 0) abort();  // never continue in a test namespace
    close(saved_);
  }
}

std::unique_ptr<NetNs> NetNs::create(std::string* err) {
  int saved = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (saved < 0) {
    *err = std::string("open own netns: ") + strerror(errno);
    return nullptr;
  }
  if (unshare(CLONE_NEWNET) != 0) {
    *err = std::string("unshare(CLONE_NEWNET): ") + strerror(errno);
    close(saved);
    return nullptr;
  }
  int fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (setns(saved, CLONE_NEWNET) != 0) abort();
  close(saved);
  if (fd < 0) {
    *err = std::string("open new netns: ") + strerror(errno);
    return nullptr;
  }
  return std::unique_ptr<NetNs>(new NetNs(fd));
}

NetNs::~NetNs() {
  close(fd_);
}

std::string NetNs::path() const {
  return "/proc/" + std::to_string(getpid()) + "/fd/" + std::to_string(fd_);
}

std::string NetNs::run(const std::string& cmd, int* status) const {
  NsGuard g(fd_);
  if (!g.ok()) {
    if (status) *status = -1;
    return "setns failed";
  }
  return test::run(cmd, status);
}

int NetNs::socketIn(int family, int type) const {
  NsGuard g(fd_);
  return g.ok() ? socket(family, type | SOCK_CLOEXEC, 0) : -1;
}

std::string World::build() {
  std::string err;
  if (geteuid() != 0) return "route tests need root (network namespaces, rtnetlink)";
  host = NetNs::create(&err);
  if (host) gw = NetNs::create(&err);
  if (gw) lan = NetNs::create(&err);
  if (!lan) return "namespace creation failed: " + err;
  inHost = std::make_unique<NsGuard>(host->fd());
  if (!inHost->ok()) return "setns into the host namespace failed";

  const char* hostCmds[] = {
      "ip link set lo up",
      "ip addr add 198.18.1.1/24 dev h0",
      "ip -6 addr add 2001:db8:1::1/64 dev h0 nodad",
      "ip link set h0 up",
      "ip route add default via 198.18.1.2",
      "ip -6 route add default via 2001:db8:1::2",
      "ip addr add 198.18.5.1/24 dev h1",
      "ip -6 addr add 2001:db8:5::1/64 dev h1 nodad",
      "ip link set h1 up",
  };
  const char* gwCmds[] = {
      "ip link set lo up",
      "ip addr add 198.18.200.1/32 dev lo",
      "ip -6 addr add 2001:db8:200::1/128 dev lo",
      "ip addr add 198.18.1.2/24 dev g0",
      "ip -6 addr add 2001:db8:1::2/64 dev g0 nodad",
      "ip link set g0 up",
  };
  const char* lanCmds[] = {
      "ip link set lo up",
      "ip addr add 198.18.5.2/24 dev l0",
      "ip -6 addr add 2001:db8:5::2/64 dev l0 nodad",
      "ip link set l0 up",
  };
  // No duplicate address detection: addresses (and their routes) appear at
  // once instead of a second later, in the middle of a before/after diff.
  const char* noDad =
      "echo 0 > /proc/sys/net/ipv6/conf/all/accept_dad && "
      "echo 0 > /proc/sys/net/ipv6/conf/default/accept_dad";
  int st = 0;
  std::string out = run(noDad, &st);
  if (st == 0) out = gw->run(noDad, &st);
  if (st == 0) out = lan->run(noDad, &st);
  if (st != 0) return "sysctl accept_dad: " + out;
  out = run("ip link add h0 type veth peer name g0 netns " + gw->path(), &st);
  if (st != 0) return "veth h0/g0: " + out;
  out = run("ip link add h1 type veth peer name l0 netns " + lan->path(), &st);
  if (st != 0) return "veth h1/l0: " + out;
  for (const char* c : gwCmds) {
    out = gw->run(c, &st);
    if (st != 0) return std::string("gw: ") + c + ": " + out;
  }
  for (const char* c : lanCmds) {
    out = lan->run(c, &st);
    if (st != 0) return std::string("lan: ") + c + ": " + out;
  }
  for (const char* c : hostCmds) {
    out = run(c, &st);
    if (st != 0) return std::string("host: ") + c + ": " + out;
  }
  platform::TunConfig tc;
  tc.name = "vt-tun0";
  tc.ipv4 = "198.18.0.1";
  tc.ipv4Prefix = 30;
  tc.ipv6 = "2001:db8:ff::1";
  tc.ipv6Prefix = 64;
  auto t = platform::TunDevice::create(tc);
  if (!t.ok()) return "TUN: " + t.error().toString();
  tun = std::move(t).value();

  // Carrier comes up asynchronously and brings IPv6 routes with it: wait
  // until the host's tables stop changing.
  std::string last;
  int stable = 0;
  for (int i = 0; i < 200 && stable < 5; ++i) {
    std::string now = run("ip -6 route show table all; ip route show table all; ip -br link");
    const bool up = now.find("h0@if") != std::string::npos &&
                    now.find("multicast ff00::/8 dev h0 ") != std::string::npos &&
                    now.find("multicast ff00::/8 dev h1 ") != std::string::npos &&
                    now.find("fe80::/64 dev h0 ") != std::string::npos &&
                    now.find("fe80::/64 dev h1 ") != std::string::npos;
    stable = (up && now == last) ? stable + 1 : 0;
    last = now;
    usleep(20 * 1000);
  }
  if (stable < 5) return "interfaces did not settle:\n" + last;

  char dir[] = "/tmp/vt-route-test-XXXXXX";
  if (mkdtemp(dir) == nullptr) return "mkdtemp failed";
  stateFile = std::string(dir) + "/run/vt-tun0.routes";  // run/ made by apply()
  return "";
}

World::~World() {
  tun.reset();
  inHost.reset();
  if (!stateFile.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(std::filesystem::path(stateFile).parent_path().parent_path(), ec);
  }
}

sockaddr_storage makeAddr(const std::string& ip, uint16_t port, socklen_t* len) {
  sockaddr_storage ss{};
  auto* a4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* a6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (inet_pton(AF_INET, ip.c_str(), &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    a4->sin_port = htons(port);
    *len = sizeof *a4;
  } else {
    inet_pton(AF_INET6, ip.c_str(), &a6->sin6_addr);
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(port);
    *len = sizeof *a6;
  }
  return ss;
}

int tcpListener(int fd, const std::string& ip, uint16_t port) {
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  socklen_t len;
  sockaddr_storage a = makeAddr(ip, port, &len);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), len) != 0 || listen(fd, 4) != 0) return -1;
  return fd;
}

namespace {

bool waitFd(int fd, short events, int timeoutMs) {
  pollfd p{fd, events, 0};
  return poll(&p, 1, timeoutMs) == 1;
}

bool readExactly(int fd, size_t n, std::string* out) {
  out->clear();
  while (out->size() < n) {
    if (!waitFd(fd, POLLIN, 3000)) return false;
    char buf[256];
    ssize_t r = recv(fd, buf, std::min(sizeof buf, n - out->size()), MSG_DONTWAIT);
    if (r <= 0) return false;
    out->append(buf, static_cast<size_t>(r));
  }
  return true;
}

}  // namespace

bool tcpExchange(int clientFd, const std::string& serverIp, uint16_t port, int listenFd,
                 std::string* err) {
  socklen_t len;
  sockaddr_storage a = makeAddr(serverIp, port, &len);
  fcntl(clientFd, F_SETFL, O_NONBLOCK);
  if (connect(clientFd, reinterpret_cast<sockaddr*>(&a), len) != 0 && errno != EINPROGRESS) {
    *err = std::string("connect: ") + strerror(errno);
    return false;
  }
  if (!waitFd(clientFd, POLLOUT, 3000)) {
    *err = "connect timed out";
    return false;
  }
  int soErr = 0;
  socklen_t el = sizeof soErr;
  getsockopt(clientFd, SOL_SOCKET, SO_ERROR, &soErr, &el);
  if (soErr != 0) {
    *err = std::string("connect: ") + strerror(soErr);
    return false;
  }
  if (!waitFd(listenFd, POLLIN, 3000)) {
    *err = "accept timed out";
    return false;
  }
  int conn = accept4(listenFd, nullptr, nullptr, SOCK_CLOEXEC);
  if (conn < 0) {
    *err = std::string("accept: ") + strerror(errno);
    return false;
  }
  std::string got;
  bool ok = send(clientFd, "ping", 4, MSG_NOSIGNAL) == 4 && readExactly(conn, 4, &got) &&
            got == "ping" && send(conn, "pong", 4, MSG_NOSIGNAL) == 4 &&
            readExactly(clientFd, 4, &got) && got == "pong";
  if (!ok) *err = "request/response failed";
  close(conn);
  return ok;
}

bool udpSend(int fd, const std::string& ip, uint16_t port, const std::string& payload) {
  socklen_t len;
  sockaddr_storage a = makeAddr(ip, port, &len);
  return sendto(fd, payload.data(), payload.size(), 0, reinterpret_cast<sockaddr*>(&a), len) ==
         static_cast<ssize_t>(payload.size());
}

bool waitForPayload(int fd, const std::string& payload, int timeoutMs, bool isTun) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs);
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0 || !waitFd(fd, POLLIN, static_cast<int>(left))) return false;
    uint8_t buf[2048];
    ssize_t n = isTun ? read(fd, buf, sizeof buf) : recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n <= 0) continue;
    // A TUN also carries the kernel's own IPv6 chatter (MLD, RS): skip it.
    if (memmem(buf, static_cast<size_t>(n), payload.data(), payload.size()) != nullptr) {
      return true;
    }
  }
}

}  // namespace vt::test
