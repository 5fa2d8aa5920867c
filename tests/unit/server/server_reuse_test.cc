// Connection reuse (TLV 0x07, docs/protocol.md 3.8) on the server: a raw
// client (blocking socket, plain TCP; the TLS case is in server_tls_test.cc)
// speaks chunks both ways and sends the next request on the same connection.
// Topology in server_harness.h.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <random>
#include <thread>

#include "codec/length_frame.h"
#include "server/server_stats.h"
#include "unit/server/server_harness.h"

namespace vt::server {
namespace {

using namespace testing;  // NOLINT(google-build-using-namespace): test helpers
using test::connectLoopback;
using test::EchoPeer;
using test::readSome;
using test::sendAll;
using test::waitEof;

const std::string kEnd("\x00\x00", 2);

std::string reuseRequest(const codec::Uuid& uuid, const codec::Address& target,
                         bool want_ip = false) {
  codec::Request r;
  r.version = 1;
  r.uuid = uuid;
  r.command = codec::Command::kTcp;
  r.target = target;
  r.want_ip = want_ip;
  r.reuse = true;
  return encoded(r);
}

// `data` as data chunks (no end chunk).
std::string chunks(const std::string& data) {
  BufferChain in;
  in.append(data);
  BufferChain out;
  codec::encodeReuseChunks(in, out);
  return out.toString();
}

// One whole flow up: request, the payload as chunks, the end chunk.
std::string flow(const codec::Address& target, const std::string& payload) {
  return reuseRequest(kAlice, target) + chunks(payload) + kEnd;
}

// Reads the server's chunks up to and including its end chunk; returns
// their payload. *ended: the end chunk came (false: EOF or the deadline).
std::string readFlow(int fd, bool* ended, int timeout_ms = 3000) {
  *ended = false;
  std::string payload;
  for (;;) {
    std::string len = readSome(fd, 2, timeout_ms);
    if (len.size() < 2) return payload;
    size_t n = (static_cast<uint8_t>(len[0]) << 8) | static_cast<uint8_t>(len[1]);
    if (n == 0) {
      *ended = true;
      return payload;
    }
    std::string body = readSome(fd, n, timeout_ms);
    payload += body;
    if (body.size() < n) return payload;
  }
}

// Nothing at all from the server for a while (between flows it owes us
// nothing: no byte may follow its end chunk before our next request).
bool quiet(int fd, int ms = 100) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, ms) == 0;
}

uint16_t deadPort() {
  EchoPeer gone;
  return gone.port();
}

// A target that speaks first and ends its direction at once ("bye" then
// FIN), then records what it reads until the client's FIN. One connection
// at a time, which is all a reused client connection makes.
class ByePeer {
 public:
  ByePeer() {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(listen_fd_, 16);
    socklen_t len = sizeof a;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { run(); });
  }
  ~ByePeer() {
    stop_ = true;
    thread_.join();
    ::close(listen_fd_);
  }
  uint16_t port() const { return port_; }
  // What the last connection read, once its client finished (else "").
  std::string finished() {
    std::lock_guard<std::mutex> lock(mu_);
    return finished_;
  }

 private:
  void run() {
    while (!stop_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      int fd = ::accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) continue;
      sendAll(fd, std::string("bye"));
      ::shutdown(fd, SHUT_WR);
      std::string got;
      while (!stop_) {
        pollfd q{fd, POLLIN, 0};
        if (::poll(&q, 1, 20) <= 0) continue;
        char buf[4096];
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        got.append(buf, static_cast<size_t>(n));
      }
      ::close(fd);
      std::lock_guard<std::mutex> lock(mu_);
      finished_ = got;
    }
  }

  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::string finished_;
};

TEST(ServerReuse, TwoFlowsOnOneConnectionOneLogLineEach) {
  EchoPeer echo;
  ::testing::internal::CaptureStderr();
  {
    config::ServerConfig cfg = baseConfig();
    cfg.log_level = LogLevel::kInfo;
    Harness h(cfg);
    int fd = connectLoopback(h.port());
    ASSERT_GE(fd, 0);
    // Two chunks up; the echo sees the payload, then our end as its EOF.
    ASSERT_TRUE(sendAll(
        fd, reuseRequest(kAlice, echoAt(echo.port())) + chunks("hel") + chunks("lo") + kEnd));
    bool ended = false;
    EXPECT_EQ(readFlow(fd, &ended), "hello");
    EXPECT_TRUE(ended);
    EXPECT_TRUE(quiet(fd));
    EXPECT_EQ(echo.received(0), "hello");

    ASSERT_TRUE(sendAll(fd, flow(echoAt(echo.port()), "again")));
    EXPECT_EQ(readFlow(fd, &ended), "again");
    EXPECT_TRUE(ended);
    EXPECT_TRUE(quiet(fd));
    EXPECT_EQ(echo.connections(), 2u);  // a new target connection per flow
    EXPECT_EQ(echo.received(1), "again");
    EXPECT_EQ(h.sessions(), 1u);  // ... and one client connection
    ::close(fd);
  }  // the harness waits for the session to end
  std::string err = ::testing::internal::GetCapturedStderr();
  const std::string target = "target=127.0.0.1:" + std::to_string(echo.port());
  std::vector<std::string> lines;
  for (size_t at = err.find(target); at != std::string::npos; at = err.find(target, at + 1)) {
    lines.push_back(err.substr(at, err.find('\n', at) - at));
  }
  ASSERT_EQ(lines.size(), 2u) << err;
  EXPECT_NE(lines[0].find("up=5 down=5"), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find("close=done flow=1"), std::string::npos) << lines[0];
  EXPECT_NE(lines[1].find("close=done flow=2"), std::string::npos) << lines[1];
}

// Every byte of two flows (header, chunk lengths, payload, end chunks) in
// a write of its own: the server parses at any split.
TEST(ServerReuse, FlowsSentOneByteAtATime) {
  EchoPeer echo;
  Harness h(baseConfig());
  int fd = connectLoopback(h.port());
  ASSERT_GE(fd, 0);
  for (const char* payload : {"split", "again, split"}) {
    const std::string up = reuseRequest(kAlice, echoAt(echo.port())) + chunks(payload) +
                           chunks("!") + kEnd;
    for (char c : up) ASSERT_TRUE(sendAll(fd, std::string(1, c)));
    bool ended = false;
    EXPECT_EQ(readFlow(fd, &ended), std::string(payload) + "!");
    EXPECT_TRUE(ended);
    EXPECT_TRUE(quiet(fd));  // also lets the harness sample the session count
  }
  EXPECT_EQ(echo.connections(), 2u);
  EXPECT_EQ(h.sessions(), 1u);
  ::close(fd);
}

TEST(ServerReuse, PipelinedSecondRequest) {
  // The second flow follows the first one's end chunk in the same write,
  // before the first flow has finished: the server keeps it for later.
  EchoPeer echo;
  Harness h(baseConfig());
  int fd = connectLoopback(h.port());
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(sendAll(fd, flow(echoAt(echo.port()), "one") + flow(echoAt(echo.port()), "two")));
  bool ended = false;
  EXPECT_EQ(readFlow(fd, &ended), "one");
  EXPECT_TRUE(ended);
  EXPECT_EQ(readFlow(fd, &ended), "two");
  EXPECT_TRUE(ended);
  EXPECT_TRUE(quiet(fd));
  EXPECT_EQ(echo.received(0), "one");
  EXPECT_EQ(echo.received(1), "two");
  // A third, sent once the connection is idle; then an empty one (the end
  // chunk right behind the header).
  ASSERT_TRUE(sendAll(fd, flow(echoAt(echo.port()), "three")));
  EXPECT_EQ(readFlow(fd, &ended), "three");
  EXPECT_TRUE(ended);
  ASSERT_TRUE(sendAll(fd, flow(echoAt(echo.port()), "")));
  EXPECT_EQ(readFlow(fd, &ended), "");
  EXPECT_TRUE(ended);
  EXPECT_EQ(echo.connections(), 4u);
  ::close(fd);
}

TEST(ServerReuse, WantIpPrefixComesBeforeTheChunks) {
  EchoPeer echo;
  Harness h(baseConfig());
  int fd = connectLoopback(h.port());
  ASSERT_GE(fd, 0);
  const std::string prefix("\x01\x01\x7f\x00\x00\x01", 6);
  for (std::string payload : {"first", "second"}) {
    ASSERT_TRUE(
        sendAll(fd, reuseRequest(kAlice, echoAt(echo.port()), true) + chunks(payload) + kEnd));
    // Raw, not chunked: the prefix is not a chunk of the flow.
    EXPECT_EQ(readSome(fd, prefix.size(), 3000), prefix);
    bool ended = false;
    EXPECT_EQ(readFlow(fd, &ended), payload);
    EXPECT_TRUE(ended);
  }
  EXPECT_TRUE(quiet(fd));
  ::close(fd);
}

TEST(ServerReuse, TargetEndsFirstThenTheClient) {
  // The target's end chunk comes while the client still sends; nothing
  // follows it, and the flow ends (connection reusable) with the client's.
  ByePeer bye;
  EchoPeer echo;
  Harness h(baseConfig());
  int fd = connectLoopback(h.port());
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(sendAll(fd, reuseRequest(kAlice, echoAt(bye.port())) + chunks("a")));
  bool ended = false;
  EXPECT_EQ(readFlow(fd, &ended), "bye");
  EXPECT_TRUE(ended);
  ASSERT_TRUE(sendAll(fd, chunks("late")));
  EXPECT_TRUE(quiet(fd));
  ASSERT_TRUE(sendAll(fd, kEnd));
  for (int i = 0; i < 300 && bye.finished().empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(bye.finished(), "alate");
  EXPECT_TRUE(quiet(fd));
  ASSERT_TRUE(sendAll(fd, flow(echoAt(echo.port()), "next")));
  EXPECT_EQ(readFlow(fd, &ended), "next");
  EXPECT_TRUE(ended);
  ::close(fd);
}

TEST(ServerReuse, LargeFlowIsSplitIntoChunks) {
  EchoPeer echo;
  Harness h(baseConfig());
  int fd = connectLoopback(h.port());
  ASSERT_GE(fd, 0);
  std::string data(1024 * 1024 + 17, '\0');
  std::mt19937 rng(11);
  for (auto& c : data) c = static_cast<char>(rng());
  // chunks() cuts at 65535; the server re-chunks what the echo returns in
  // whatever reads it gets, each LEN 1..65535.
  std::thread writer([&] { sendAll(fd, flow(echoAt(echo.port()), data)); });
  bool ended = false;
  std::string got = readFlow(fd, &ended, 10000);
  writer.join();
  EXPECT_TRUE(ended);
  EXPECT_EQ(got.size(), data.size());
  EXPECT_TRUE(got == data);
  ASSERT_TRUE(sendAll(fd, flow(echoAt(echo.port()), "small")));
  EXPECT_EQ(readFlow(fd, &ended), "small");
  EXPECT_TRUE(ended);
  ::close(fd);
}

TEST(ServerReuse, BadSecondRequestClosesWithoutFallback) {
  // The connection proved its user with the first request: what follows
  // a flow is never handed to the fallback (it would read VLESS bytes).
  EchoPeer echo;
  EchoPeer fallback(kBanner);
  config::ServerConfig cfg = baseConfig();
  cfg.fallback = loopbackPort(fallback.port());
  Harness h(cfg);
  for (const std::string& second :
       {std::string("GET / HTTP/1.1\r\nHost: example\r\n\r\n"),
        reuseRequest(kStranger, echoAt(echo.port())) + chunks("x") + kEnd}) {
    int fd = connectLoopback(h.port());
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(sendAll(fd, flow(echoAt(echo.port()), "ok")));
    bool ended = false;
    EXPECT_EQ(readFlow(fd, &ended), "ok");
    EXPECT_TRUE(ended);
    ASSERT_TRUE(sendAll(fd, second));
    std::string got;
    EXPECT_TRUE(waitEof(fd, 3000, &got));
    EXPECT_EQ(got, "");
    ::close(fd);
  }
  EXPECT_EQ(fallback.connections(), 0u);
  EXPECT_EQ(echo.connections(), 2u);
  // A bad first request still goes to the fallback.
  int fd = connectLoopback(h.port());
  ASSERT_TRUE(sendAll(fd, std::string("GET /")));
  EXPECT_EQ(readSome(fd, kBanner.size() + 5, 3000), kBanner + "GET /");
  ::close(fd);
}

TEST(ServerReuse, IdleReusedConnectionClosedAfterReuseIdleTimeout) {
  EchoPeer echo;
  config::ServerConfig cfg = baseConfig();
  cfg.handshake_timeout_ms = 5000;  // not the one that applies between flows
  cfg.reuse_idle_timeout_ms = 200;
  Harness h(cfg);
  int fd = connectLoopback(h.port());
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(sendAll(fd, flow(echoAt(echo.port()), "x")));
  bool ended = false;
  EXPECT_EQ(readFlow(fd, &ended), "x");
  EXPECT_TRUE(ended);
  auto t0 = std::chrono::steady_clock::now();
  std::string got;
  EXPECT_TRUE(waitEof(fd, 2000, &got));
  auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  EXPECT_GE(ms, 150);
  EXPECT_LT(ms, 1500);
  EXPECT_EQ(got, "");
  ::close(fd);
}

TEST(ServerReuse, ClientEndingItsDirectionMidFlowEndsTheConnection) {
  EchoPeer echo;
  Harness h(baseConfig());
  {
    // After whole chunks, no end chunk: the target gets them and our EOF;
    // its answer and end chunk come back, then the connection closes.
    int fd = connectLoopback(h.port());
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(sendAll(fd, reuseRequest(kAlice, echoAt(echo.port())) + chunks("abc")));
    ASSERT_EQ(::shutdown(fd, SHUT_WR), 0);
    std::string got;
    EXPECT_TRUE(waitEof(fd, 3000, &got));
    EXPECT_EQ(got, chunks("abc") + kEnd);
    EXPECT_EQ(echo.received(0), "abc");
    ::close(fd);
  }
  {
    // In the middle of a chunk: the cut chunk never reaches the target.
    int fd = connectLoopback(h.port());
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(sendAll(fd, reuseRequest(kAlice, echoAt(echo.port())) + chunks("ok") +
                                std::string("\x00\x05", 2) + "ab"));
    ASSERT_EQ(::shutdown(fd, SHUT_WR), 0);
    std::string got;
    EXPECT_TRUE(waitEof(fd, 3000, &got));
    EXPECT_EQ(got, chunks("ok") + kEnd);
    EXPECT_EQ(echo.received(1), "ok");
    ::close(fd);
  }
}

TEST(ServerReuse, DialFailureOnAReusedConnectionCloses) {
  EchoPeer echo;
  uint16_t dead = deadPort();
  Harness h(baseConfig());
  int fd = connectLoopback(h.port());
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(sendAll(fd, flow(echoAt(echo.port()), "up")));
  bool ended = false;
  EXPECT_EQ(readFlow(fd, &ended), "up");
  EXPECT_TRUE(ended);
  ASSERT_TRUE(sendAll(fd, flow(echoAt(dead), "lost")));
  std::string got;
  EXPECT_TRUE(waitEof(fd, 3000, &got));
  EXPECT_EQ(got, "");  // like a first request: EOF without a byte
  ::close(fd);
}

// Stats: every finished flow of a reused connection adds its bytes; the
// connection counts once.
TEST(ServerReuse, StatsAddEveryFlow) {
  EchoPeer echo;
  Harness h(baseConfig());
  int fd = connectLoopback(h.port());
  ASSERT_GE(fd, 0);
  bool ended = false;
  ASSERT_TRUE(sendAll(fd, flow(echoAt(echo.port()), "hello")));
  EXPECT_EQ(readFlow(fd, &ended), "hello");
  ASSERT_TRUE(sendAll(fd, flow(echoAt(echo.port()), "again!")));
  EXPECT_EQ(readFlow(fd, &ended), "again!");
  EXPECT_TRUE(quiet(fd));
  std::string prom, json;
  auto has = [&](const std::string& line) {
    return prom.find("\n" + line + "\n") != std::string::npos;
  };
  h.call([&](Server& s) {
    prom = serverPrometheus(s);
    json = serverStatsJson(s);
  });
  EXPECT_TRUE(has("vless_server_user_bytes_total{user=\"alice\",direction=\"up\"} 11")) << prom;
  EXPECT_TRUE(has("vless_server_user_bytes_total{user=\"alice\",direction=\"down\"} 11"));
  EXPECT_TRUE(has("vless_server_user_connections_total{user=\"alice\"} 1"));
  EXPECT_TRUE(has("vless_server_user_connections_live{user=\"alice\"} 1"));
  EXPECT_NE(json.find("\"kind\":\"tcp\",\"state\":\"reuse_idle\",\"up\":0,\"down\":0"),
            std::string::npos)
      << json;
  ::close(fd);
  for (int i = 0; i < 1500 && h.sessions() != 0; ++i) usleep(2000);
  ASSERT_EQ(h.sessions(), 0u);
  h.call([&](Server& s) { prom = serverPrometheus(s); });
  EXPECT_TRUE(has("vless_server_user_bytes_total{user=\"alice\",direction=\"up\"} 11")) << prom;
}

}  // namespace
}  // namespace vt::server
