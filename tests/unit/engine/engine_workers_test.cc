// The engine with several workers (tun.workers) on a real multi-queue TUN,
// end to end through an in-process vless-server. Needs root (network
// namespaces, a TUN): fails, never skips, without it. Also the test the
// TSan build runs (scripts/tsan.sh): the workers, their inboxes, the
// stats parking, the shared DNS cache and lwIP's lock under real traffic.
//
//   ns app: vtw0 198.18.61.1/30 (TUN, N queues), 198.18.62.0/24 -> vtw0,
//           a0 198.18.60.1/30 --veth-- s0 198.18.60.2/30 :ns srv
//   ns srv: vless-server (plain, v1, mux) on 198.18.60.2; on lo
//           198.18.62.2: a TCP echo and 64 UDP ports that answer with the
//           sender's address as they saw it.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "config/client_config.h"
#include "engine/engine.h"
#include "engine/worker.h"
#include "unit/platform/netns_world.h"
#include "unit/server/server_harness.h"

namespace vt {
namespace {

using namespace std::chrono_literals;

constexpr const char* kTarget = "198.18.62.2";
constexpr uint16_t kEchoPort = 7000;
constexpr uint16_t kUdpBase = 7100;
constexpr int kUdpPorts = 64;
constexpr int kTcpFlows = 24;
constexpr size_t kTcpBytes = 256 * 1024;

sockaddr_in v4(const char* ip, uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  inet_pton(AF_INET, ip, &a.sin_addr);
  return a;
}

// The srv side's peers, on their own thread until stopped.
class Peers {
 public:
  explicit Peers(const test::NetNs& ns) {
    listen_ = ns.socketIn(AF_INET, SOCK_STREAM);
    int one = 1;
    setsockopt(listen_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a = v4(kTarget, kEchoPort);
    ok_ = listen_ >= 0 && bind(listen_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
          listen(listen_, 128) == 0;
    for (int i = 0; i < kUdpPorts && ok_; ++i) {
      int fd = ns.socketIn(AF_INET, SOCK_DGRAM);
      sockaddr_in u = v4(kTarget, static_cast<uint16_t>(kUdpBase + i));
      ok_ = fd >= 0 && bind(fd, reinterpret_cast<sockaddr*>(&u), sizeof u) == 0;
      udp_.push_back(fd);
    }
    if (ok_) thread_ = std::thread([this] { loop(); });
  }
  ~Peers() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    for (std::thread& t : echoes_) t.join();
    for (int fd : udp_) close(fd);
    if (listen_ >= 0) close(listen_);
  }
  bool ok() const { return ok_; }

 private:
  void loop() {
    std::vector<pollfd> fds;
    fds.push_back({listen_, POLLIN, 0});
    for (int fd : udp_) fds.push_back({fd, POLLIN, 0});
    while (!stop_) {
      if (poll(fds.data(), fds.size(), 50) <= 0) continue;
      if (fds[0].revents & POLLIN) {
        int c = accept4(listen_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c >= 0) echoes_.emplace_back([this, c] { echo(c); });
      }
      for (size_t i = 1; i < fds.size(); ++i) {
        if (!(fds[i].revents & POLLIN)) continue;
        char buf[2048];
        sockaddr_in from{};
        socklen_t fl = sizeof from;
        ssize_t n = recvfrom(fds[i].fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &fl);
        if (n < 0) continue;
        char ip[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &from.sin_addr, ip, sizeof ip);
        std::string seen = std::string(ip) + ":" + std::to_string(ntohs(from.sin_port));
        sendto(fds[i].fd, seen.data(), seen.size(), 0, reinterpret_cast<sockaddr*>(&from), fl);
      }
    }
  }
  void echo(int fd) {
    timeval tv{1, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[16384];
    while (!stop_) {
      ssize_t n = recv(fd, buf, sizeof buf, 0);
      if (n == 0) break;
      if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) continue;
        break;
      }
      if (send(fd, buf, static_cast<size_t>(n), MSG_NOSIGNAL) != n) break;
    }
    close(fd);
  }

  int listen_ = -1;
  std::vector<int> udp_;
  bool ok_ = false;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::vector<std::thread> echoes_;
};

// One TCP flow from ns app: kTcpBytes through the echo, compared.
std::string tcpRoundTrip(const test::NetNs& app, int seed) {
  int fd = app.socketIn(AF_INET, SOCK_STREAM);
  if (fd < 0) return "socket failed";
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in a = v4(kTarget, kEchoPort);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    std::string e = std::string("connect: ") + strerror(errno);
    close(fd);
    return e;
  }
  std::vector<uint8_t> out(kTcpBytes), in;
  for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<uint8_t>(i * 7 + seed);
  in.reserve(out.size());
  size_t sent = 0;
  std::string err;
  while (in.size() < out.size() && err.empty()) {
    if (sent < out.size()) {
      ssize_t n = send(fd, out.data() + sent, std::min<size_t>(16384, out.size() - sent),
                       MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) sent += static_cast<size_t>(n);
    }
    uint8_t buf[16384];
    ssize_t n = recv(fd, buf, sizeof buf, sent < out.size() ? MSG_DONTWAIT : 0);
    if (n > 0) {
      in.insert(in.end(), buf, buf + n);
    } else if (n == 0) {
      err = "closed after " + std::to_string(in.size()) + " bytes";
    } else if (errno != EAGAIN && errno != EINTR) {
      err = std::string("recv: ") + strerror(errno) + " after " + std::to_string(in.size());
    } else if (sent == out.size()) {
      err = "timed out after " + std::to_string(in.size()) + " bytes";
    } else {
      std::this_thread::sleep_for(1ms);
    }
  }
  close(fd);
  if (!err.empty()) return err;
  return in == out ? "" : "echoed bytes differ";
}

// The home of an app endpoint's UDP session: the first claim wins, every
// later claim (from any worker) gets that home, a release by another
// worker changes nothing, and after the home's release the next claimant
// becomes the home.
TEST(UdpHomes, FirstClaimWinsUntilItsSessionCloses) {
  engine::UdpHomes homes;
  netstack::UdpEndpoint a, b;
  ASSERT_TRUE(netstack::IpAddress::parse("198.18.61.1", a.addr));
  b.addr = a.addr;
  a.port = 4000;
  b.port = 4001;
  EXPECT_EQ(homes.claim(a, 1), 1u);
  EXPECT_EQ(homes.claim(a, 0), 1u);
  EXPECT_EQ(homes.claim(b, 0), 0u);
  homes.release(a, 0);  // not its home: no effect
  EXPECT_EQ(homes.claim(a, 2), 1u);
  homes.release(a, 1);
  EXPECT_EQ(homes.claim(a, 2), 2u);
  homes.release(a, 2);
  homes.release(b, 0);
  EXPECT_EQ(homes.size(), 0u);
}

// Four threads claiming the same endpoints at once agree on each one's home
// (TSan runs this too: scripts/tsan.sh).
TEST(UdpHomes, ConcurrentClaimsAgree) {
  engine::UdpHomes homes;
  netstack::IpAddress app;
  ASSERT_TRUE(netstack::IpAddress::parse("198.18.61.1", app));
  constexpr int kThreads = 4, kEndpoints = 2000;
  std::vector<std::vector<size_t>> got(kThreads, std::vector<size_t>(kEndpoints));
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int e = 0; e < kEndpoints; ++e) {
        netstack::UdpEndpoint ep{app, static_cast<uint16_t>(1000 + e)};
        got[t][e] = homes.claim(ep, static_cast<size_t>(t));
      }
    });
  }
  for (std::thread& th : threads) th.join();
  for (int e = 0; e < kEndpoints; ++e) {
    for (int t = 1; t < kThreads; ++t) EXPECT_EQ(got[t][e], got[0][e]) << "endpoint " << e;
  }
  EXPECT_EQ(homes.size(), static_cast<size_t>(kEndpoints));
}

class EngineWorkers : public ::testing::TestWithParam<std::tuple<uint32_t, bool>> {};

TEST_P(EngineWorkers, TcpFlowsAndFullConeUdpAcrossWorkers) {
  const uint32_t workers = std::get<0>(GetParam());
  const bool offload = std::get<1>(GetParam());
  ASSERT_EQ(geteuid(), 0u) << "this test needs root (network namespaces, a TUN)";
  std::string err;
  auto app = test::NetNs::create(&err);
  auto srv = app ? test::NetNs::create(&err) : nullptr;
  ASSERT_TRUE(app && srv) << err;
  int st = 0;
  for (const std::string& c :
       {std::string("ip link set lo up"),
        "ip link add a0 type veth peer name s0 netns " + srv->path(),
        std::string("ip addr add 198.18.60.1/30 dev a0"), std::string("ip link set a0 up")}) {
    std::string out = app->run(c, &st);
    ASSERT_EQ(st, 0) << c << ": " << out;
  }
  for (const char* c : {"ip link set lo up", "ip addr add 198.18.62.2/32 dev lo",
                        "ip addr add 198.18.60.2/30 dev s0", "ip link set s0 up"}) {
    std::string out = srv->run(c, &st);
    ASSERT_EQ(st, 0) << c << ": " << out;
  }

  Peers peers(*srv);
  ASSERT_TRUE(peers.ok()) << "peers in ns srv: " << strerror(errno);
  config::ServerConfig scfg = server::testing::baseConfig();
  scfg.listen = {config::HostPort{"198.18.60.2", 0, true}};
  scfg.egress.allow = {*IpPrefix::parse("198.18.62.0/24")};
  // The harness's 200 ms (for its own timeout tests) also covers a mux
  // stream's header and dial: under TSan, 24 flows at once outlast it.
  scfg.handshake_timeout_ms = 10'000;
  std::unique_ptr<server::testing::Harness> server;
  {
    test::NsGuard in(srv->fd());  // the server's socket and loop thread live there
    ASSERT_TRUE(in.ok());
    server = std::make_unique<server::testing::Harness>(scfg);
  }

  std::string toml = "log_level = \"warn\"\n[tun]\nname = \"vtw0\"\nmtu = 1500\n"
                     "ipv4 = \"198.18.61.1/30\"\nworkers = " + std::to_string(workers) +
                     "\noffload = " + (offload ? "true" : "false") +
                     "\n[server]\naddress = \"198.18.60.2:" + std::to_string(server->port()) +
                     "\"\nuuid = \"a684455c-b14f-11ea-bf0d-42010aaa0003\"\nversion = 1\n"
                     "tls = false\n";
  auto cfg = config::parseClientConfig(toml, "workers.toml", "/");
  ASSERT_TRUE(cfg.ok()) << cfg.error().message;
  engine::EngineOptions opts;
  opts.cfg = cfg.value();
  opts.mode = engine::TunMode::kCreate;
  auto created = engine::Engine::create(std::move(opts));
  ASSERT_TRUE(created.ok()) << created.error().message;
  std::unique_ptr<engine::Engine> eng = std::move(created).value();
  std::atomic<int> result{-1};
  std::thread runner([&] {
    test::NsGuard in(app->fd());  // the TUN, the workers' threads and sockets: ns app
    result = in.ok() ? static_cast<int>(eng->run()) : 100;
  });
  struct Stopper {
    engine::Engine& e;
    std::thread& t;
    ~Stopper() {
      e.stop();
      if (t.joinable()) t.join();
    }
  } stopper{*eng, runner};
  bool up = false;
  for (int i = 0; i < 200 && !up; ++i) {
    std::this_thread::sleep_for(20ms);
    up = eng->running() && app->run("ip link show vtw0", &st).find("UP") != std::string::npos;
  }
  ASSERT_TRUE(up) << "the TUN did not come up: " << eng->lastError();
  std::string out = app->run("ip route add 198.18.62.0/24 dev vtw0", &st);
  ASSERT_EQ(st, 0) << out;
  out = app->run("ip -d link show vtw0", &st);
  if (workers > 1) {
    EXPECT_NE(out.find("multi_queue"), std::string::npos) << out;
  }
  EXPECT_NE(out.find(offload ? "vnet_hdr on" : "vnet_hdr off"), std::string::npos) << out;

  // TCP: flows on every worker at once, each echoed intact.
  std::vector<std::string> errors(kTcpFlows);
  {
    std::vector<std::thread> flows;
    for (int i = 0; i < kTcpFlows; ++i) {
      flows.emplace_back([&, i] { errors[i] = tcpRoundTrip(*app, i); });
    }
    // Stats while the flows run: the other workers hold still and go on.
    for (int i = 0; i < 5; ++i) {
      EXPECT_NE(eng->statsJson().find("\"workers\":" + std::to_string(workers)), std::string::npos);
      std::this_thread::sleep_for(10ms);
    }
    for (std::thread& t : flows) t.join();
  }
  for (int i = 0; i < kTcpFlows; ++i) EXPECT_EQ(errors[i], "") << "flow " << i;

  // Load on the hand-over path: 4 app sockets, each to the 64 remotes 4
  // times back to back, so several workers push into one home's inbox
  // while it drains (what TSan needs to see). Answers are not awaited.
  {
    std::vector<int> burst;
    for (int s = 0; s < 4; ++s) {
      int b = app->socketIn(AF_INET, SOCK_DGRAM);
      ASSERT_GE(b, 0);
      burst.push_back(b);
    }
    for (int round = 0; round < 4; ++round) {
      for (int i = 0; i < kUdpPorts; ++i) {
        sockaddr_in to = v4(kTarget, static_cast<uint16_t>(kUdpBase + i));
        for (int b : burst) sendto(b, "burst", 5, 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
      }
    }
    std::this_thread::sleep_for(200ms);
    for (int b : burst) close(b);
  }

  // UDP: one app socket to 64 remote ports. The kernel spreads the 64
  // 5-tuples over the queues; the session still lives on one worker, so
  // every remote sees the same source address and port (full cone).
  int u = app->socketIn(AF_INET, SOCK_DGRAM);
  ASSERT_GE(u, 0);
  sockaddr_in local = v4("198.18.61.1", 0);
  ASSERT_EQ(bind(u, reinterpret_cast<sockaddr*>(&local), sizeof local), 0);
  std::set<int> answered;
  std::set<std::string> seen;
  for (int round = 0; round < 20 && static_cast<int>(answered.size()) < kUdpPorts; ++round) {
    for (int i = 0; i < kUdpPorts; ++i) {
      if (answered.count(kUdpBase + i)) continue;
      sockaddr_in to = v4(kTarget, static_cast<uint16_t>(kUdpBase + i));
      sendto(u, "x", 1, 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
    }
    pollfd p{u, POLLIN, 0};
    while (poll(&p, 1, 200) > 0) {
      char buf[128];
      sockaddr_in from{};
      socklen_t fl = sizeof from;
      ssize_t n = recvfrom(u, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &fl);
      if (n <= 0) break;
      answered.insert(ntohs(from.sin_port));
      seen.insert(std::string(buf, static_cast<size_t>(n)));
    }
  }
  close(u);
  EXPECT_EQ(static_cast<int>(answered.size()), kUdpPorts);
  EXPECT_EQ(seen.size(), 1u) << "remotes saw several sources: not full cone";

  std::string stats = eng->statsJson();
  // The burst's 4 sessions and this one (none idles out within the test).
  EXPECT_NE(stats.find("\"sessions\":5,"), std::string::npos) << "5 UDP sessions: " << stats;
  if (workers > 1) {
    // 64 5-tuples never all land on the session's home queue.
    EXPECT_EQ(stats.find("\"handed_over\":0,"), std::string::npos) << stats;
  }
  EXPECT_NE(stats.find("\"hand_over_drops\":0"), std::string::npos) << stats;
  // TUN offload: the app's 256 KiB sends came (partly) as TSO segments of
  // several MSS, each taken whole; without it, never.
  EXPECT_NE(stats.find("\"offload_dropped\":0"), std::string::npos) << stats;
  EXPECT_EQ(stats.find("\"gso_in\":0,") == std::string::npos, offload) << stats;
  // lwIP's own GSO segments are off in the engine (docs/netstack.md "TUN
  // offload"): a GSO write is a run of TCP segments or UDP datagrams the
  // pump gathered, so with offload the 6 MiB of downloads left in some.
  auto number = [&stats](const std::string& key) {
    size_t at = stats.find("\"" + key + "\":");
    return at == std::string::npos ? -1L : std::stol(stats.substr(at + key.size() + 3));
  };
  if (offload) {
    EXPECT_GT(number("gso_out"), 0) << stats;
    EXPECT_GT(number("tcp_gathered"), 0) << stats;
    EXPECT_GE(number("tcp_gathered") + number("udp_gathered"), 2 * number("gso_out")) << stats;
  } else {
    EXPECT_EQ(number("gso_out"), 0) << stats;
  }

  eng->stop();
  runner.join();
  EXPECT_EQ(result.load(), static_cast<int>(engine::RunResult::kStopped)) << eng->lastError();
  stats = eng->statsJson();
  EXPECT_NE(stats.find("\"state\":\"stopped\""), std::string::npos) << stats;
}

// (workers, tun.offload): every worker count with offload (the default),
// and the plain TUN once more with two workers.
INSTANTIATE_TEST_SUITE_P(Workers, EngineWorkers,
                         ::testing::Values(std::make_tuple(1u, true), std::make_tuple(2u, true),
                                           std::make_tuple(4u, true), std::make_tuple(2u, false)),
                         [](const auto& info) {
                           return std::to_string(std::get<0>(info.param)) +
                                  (std::get<1>(info.param) ? "" : "_no_offload");
                         });

}  // namespace
}  // namespace vt
