// The server's stats over a real loop: counters that move with a real
// connection's bytes, the operator's close, the Prometheus text, and the
// metrics listener over a real socket.
//
//   client --v1 request + bytes--> Server (plain, 127.0.0.1) --TCP--> EchoPeer
//   scraper --HTTP--> MetricsListener (127.0.0.1:0, same loop)
#include "server/server_stats.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "server/metrics_listener.h"
#include "server/server_session.h"
#include "unit/server/server_harness.h"

namespace vt::server {
namespace {

using namespace testing;  // NOLINT(google-build-using-namespace): test helpers
using test::connectLoopback;
using test::EchoPeer;
using test::readSome;
using test::sendAll;
using test::waitEof;

bool waitFor(const std::function<bool()>& pred, int timeout_ms = 3000) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

std::string prometheus(Harness& h) {
  std::string out;
  h.call([&](Server& s) { out = serverPrometheus(s); });
  return out;
}

std::string statsJson(Harness& h, size_t max_listed = 1000) {
  std::string out;
  h.call([&](Server& s) { out = serverStatsJson(s, max_listed); });
  return out;
}

// The value of the sample `series` (name and labels as printed), or -1.
long long sample(const std::string& text, const std::string& series) {
  size_t at = 0;
  while ((at = text.find(series + " ", at)) != std::string::npos) {
    if (at == 0 || text[at - 1] == '\n') return std::stoll(text.substr(at + series.size() + 1));
    at += series.size();
  }
  return -1;
}

// A live relay: request + "hello" through to the echo and back.
int openRelay(uint16_t port, uint16_t echo_port) {
  int fd = connectLoopback(port);
  EXPECT_GE(fd, 0);
  EXPECT_TRUE(sendAll(fd, request(1, kAlice, echoAt(echo_port)) + "hello"));
  EXPECT_EQ(readSome(fd, 5, 3000), "hello");
  return fd;
}

TEST(ServerStats, CountersMoveWithALiveConnectionAndStayAfterClose) {
  EchoPeer echo;
  Harness h(baseConfig());
  int fd = openRelay(h.port(), echo.port());
  ASSERT_TRUE(sendAll(fd, std::string("world!")));
  ASSERT_EQ(readSome(fd, 6, 3000), "world!");

  // Live: the bytes of the open connection are in the sums.
  std::string prom = prometheus(h);
  EXPECT_EQ(sample(prom, "vless_server_user_bytes_total{user=\"alice\",direction=\"up\"}"), 11);
  EXPECT_EQ(sample(prom, "vless_server_user_bytes_total{user=\"alice\",direction=\"down\"}"), 11);
  EXPECT_EQ(sample(prom, "vless_server_bytes_total{direction=\"up\"}"), 11);
  EXPECT_EQ(sample(prom, "vless_server_user_connections_live{user=\"alice\"}"), 1);
  EXPECT_EQ(sample(prom, "vless_server_user_connections_total{user=\"alice\"}"), 1);
  EXPECT_EQ(sample(prom, "vless_server_user_connections_live{user=\"bob\"}"), 0);
  EXPECT_EQ(sample(prom, "vless_server_connections_live"), 1);
  EXPECT_EQ(sample(prom, "vless_server_sessions_live{kind=\"tcp\"}"), 1);
  EXPECT_EQ(sample(prom, "vless_server_connections_accepted_total"), 1);
  EXPECT_NE(prom.find("# TYPE vless_server_bytes_total counter\n"), std::string::npos);
  EXPECT_NE(prom.find("# HELP vless_server_udp_nat_sessions "), std::string::npos);
  EXPECT_GE(sample(prom, "vless_server_uptime_seconds"), 0);
  EXPECT_EQ(sample(prom, "vless_server_tls_handshakes_total"), 0);
  EXPECT_EQ(sample(prom, "vless_server_admission_refused_total{limit=\"max_connections\"}"), 0);

  std::string json = statsJson(h);
  EXPECT_EQ(json.front(), '{');
  EXPECT_EQ(json.back(), '}');
  EXPECT_NE(json.find("\"name\":\"alice\",\"configured\":true,\"connections_live\":1,"
                      "\"mux_streams_live\":0,\"connections\":1,\"mux_streams\":0,"
                      "\"bytes_up\":11,\"bytes_down\":11"),
            std::string::npos)
      << json;
  EXPECT_NE(json.find("\"user\":\"alice\""), std::string::npos);
  EXPECT_NE(json.find("\"target\":\"127.0.0.1:" + std::to_string(echo.port()) +
                      "\",\"kind\":\"tcp\",\"state\":\"relay\",\"up\":11,\"down\":11"),
            std::string::npos)
      << json;
  EXPECT_NE(json.find("\"connections_truncated\":false"), std::string::npos);
  EXPECT_NE(statsJson(h, 0).find("\"connections\":[],\"connections_truncated\":true"),
            std::string::npos);
  // A user's UUID is a secret: never in any output.
  std::string table;
  h.call([&](Server& s) { table = serverStatusTable(s); });
  for (const std::string* text : {&prom, &json, &table}) {
    EXPECT_EQ(text->find("a684455c"), std::string::npos);
    EXPECT_EQ(text->find("A684455C"), std::string::npos);
  }
  EXPECT_NE(table.find("USER"), std::string::npos) << table;
  EXPECT_NE(table.find("ID  USER   KIND  PEER"), std::string::npos) << table;
  EXPECT_NE(table.find("11 B"), std::string::npos) << table;

  // Closed: the bytes stay, the connection is no longer live.
  ::close(fd);
  ASSERT_TRUE(waitFor([&] { return h.sessions() == 0; }));
  prom = prometheus(h);
  EXPECT_EQ(sample(prom, "vless_server_user_bytes_total{user=\"alice\",direction=\"up\"}"), 11);
  EXPECT_EQ(sample(prom, "vless_server_user_bytes_total{user=\"alice\",direction=\"down\"}"), 11);
  EXPECT_EQ(sample(prom, "vless_server_user_connections_live{user=\"alice\"}"), 0);
  EXPECT_EQ(sample(prom, "vless_server_connections_live"), 0);
  EXPECT_EQ(sample(prom, "vless_server_user_connections_total{user=\"alice\"}"), 1);

  // A second connection adds to the first's.
  fd = openRelay(h.port(), echo.port());
  prom = prometheus(h);
  EXPECT_EQ(sample(prom, "vless_server_user_bytes_total{user=\"alice\",direction=\"up\"}"), 16);
  EXPECT_EQ(sample(prom, "vless_server_user_connections_total{user=\"alice\"}"), 2);
  ::close(fd);
}

TEST(ServerStats, CountersSurviveAReloadThatRemovesTheUser) {
  EchoPeer echo;
  Harness h(baseConfig());
  int fd = openRelay(h.port(), echo.port());
  config::ServerConfig fresh = baseConfig();
  fresh.users.erase(fresh.users.begin());  // alice goes
  h.call([&](Server& s) { s.reload(fresh); });
  std::string got;
  EXPECT_TRUE(waitEof(fd, 3000, &got));
  ::close(fd);
  ASSERT_TRUE(waitFor([&] { return h.sessions() == 0; }));
  std::string json = statsJson(h);
  EXPECT_NE(json.find("\"name\":\"alice\",\"configured\":false,\"connections_live\":0,"
                      "\"mux_streams_live\":0,\"connections\":1,\"mux_streams\":0,"
                      "\"bytes_up\":5,\"bytes_down\":5"),
            std::string::npos)
      << json;
}

TEST(ServerStats, FallbackAndHandshakeSessionsAreCounted) {
  EchoPeer fallback(kBanner);
  config::ServerConfig cfg = baseConfig();
  cfg.fallback = loopbackPort(fallback.port());
  cfg.handshake_timeout_ms = 5000;
  Harness h(cfg);
  int idle = connectLoopback(h.port());  // no byte: still in its handshake
  int probe = connectLoopback(h.port());
  ASSERT_TRUE(sendAll(probe, std::string("GET / HTTP/1.1\r\n\r\n")));
  EXPECT_EQ(readSome(probe, kBanner.size(), 3000), kBanner);
  ASSERT_TRUE(waitFor([&] { return h.sessions() == 2; }));
  std::string prom = prometheus(h);
  EXPECT_EQ(sample(prom, "vless_server_fallbacks_total"), 1);
  EXPECT_EQ(sample(prom, "vless_server_sessions_live{kind=\"fallback\"}"), 1);
  EXPECT_EQ(sample(prom, "vless_server_sessions_live{kind=\"handshake\"}"), 1);
  EXPECT_EQ(sample(prom, "vless_server_connections_total"), 0);
  EXPECT_EQ(sample(prom, "vless_server_connections_accepted_total"), 2);
  ::close(idle);
  ::close(probe);
}

TEST(ServerStats, CloseConnectionIsTheOperatorsClose) {
  EchoPeer echo;
  Harness h(baseConfig());
  int fd = openRelay(h.port(), echo.port());
  uint64_t id = 0;
  std::string peer;
  h.call([&](Server& s) {
    s.forEachSession([&](const ServerSession& session) {
      ServerSession::Info i = session.info(s.loop().now());
      id = i.id;
      peer = i.peer;
      EXPECT_STREQ(i.user, "alice");
      EXPECT_EQ(i.kind, ServerSession::Kind::kTcp);
      EXPECT_EQ(i.up, 5u);
      EXPECT_EQ(i.mux_parent, 0u);
    });
  });
  ASSERT_NE(id, 0u);
  bool closed = false;
  std::string what;
  h.call([&](Server& s) { closed = s.closeConnection(id, &what); });
  EXPECT_TRUE(closed);
  EXPECT_EQ(what, "connection " + std::to_string(id) + " alice " + peer +
                      " -> 127.0.0.1:" + std::to_string(echo.port()));
  std::string got;
  EXPECT_TRUE(waitEof(fd, 3000, &got));
  ::close(fd);
  // Gone now (closing counts as gone), and an unknown id is refused.
  h.call([&](Server& s) {
    EXPECT_FALSE(s.closeConnection(id, &what));
    EXPECT_FALSE(s.closeConnection(123456, nullptr));
  });
  ASSERT_TRUE(waitFor([&] { return h.sessions() == 0; }));
  std::string prom = prometheus(h);
  EXPECT_EQ(sample(prom, "vless_server_user_bytes_total{user=\"alice\",direction=\"up\"}"), 5);
}

TEST(ServerStats, UserLabelIsEscaped) {
  EXPECT_EQ(prometheusLabelValue("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
  EXPECT_EQ(prometheusLabelValue("plain"), "plain");
  config::ServerConfig cfg = baseConfig();
  cfg.users[1].name = "we\"ird\\na\nme";
  Harness h(cfg);
  std::string prom = prometheus(h);
  EXPECT_EQ(sample(prom, "vless_server_user_connections_live{user=\"we\\\"ird\\\\na\\nme\"}"), 0)
      << prom;
  // No raw newline inside a sample line: every line is a comment or a sample.
  size_t start = 0;
  while (start < prom.size()) {
    size_t end = prom.find('\n', start);
    ASSERT_NE(end, std::string::npos);
    std::string line = prom.substr(start, end - start);
    EXPECT_TRUE(line.rfind("vless_server_", 0) == 0 || line.rfind("# HELP vless_server_", 0) == 0 ||
                line.rfind("# TYPE vless_server_", 0) == 0)
        << line;
    start = end + 1;
  }
  std::string json = statsJson(h);
  EXPECT_NE(json.find("\"name\":\"we\\\"ird\\\\na\\nme\""), std::string::npos) << json;
  // The table for people shows a control character as '?'.
  std::string table;
  h.call([&](Server& s) { table = serverStatusTable(s); });
  EXPECT_NE(table.find("\nwe\"ird\\na?me  "), std::string::npos) << table;
}

TEST(ServerStats, StatusTableSortsByBytesAndCuts) {
  EchoPeer echo;
  Harness h(baseConfig());
  int small = openRelay(h.port(), echo.port());
  int big = openRelay(h.port(), echo.port());
  std::string blob(3000, 'x');
  ASSERT_TRUE(sendAll(big, blob));
  ASSERT_EQ(readSome(big, blob.size(), 3000).size(), blob.size());
  std::string table;
  h.call([&](Server& s) { table = serverStatusTable(s, 1); });
  EXPECT_NE(table.find("2.9 KiB"), std::string::npos) << table;
  EXPECT_NE(table.find("... and 1 more\n"), std::string::npos) << table;
  EXPECT_NE(table.find("2 connections live"), std::string::npos) << table;
  ::close(small);
  ::close(big);
}

// --- The metrics listener ---

// One raw HTTP exchange: sends `req`, reads until the server closes.
std::string httpExchange(uint16_t port, const std::string& req, int timeout_ms = 3000) {
  int fd = connectLoopback(port);
  EXPECT_GE(fd, 0);
  sendAll(fd, req);
  std::string got;
  EXPECT_TRUE(waitEof(fd, timeout_ms, &got)) << req;
  ::close(fd);
  return got;
}

class MetricsOnHarness {
 public:
  MetricsOnHarness(Harness& h, MetricsListener::Options opts) : h_(h) {
    h_.call([&](Server& s) {
      auto r = MetricsListener::start(
          s.loop(), *event::SocketAddress::parseIp("127.0.0.1", 0),
          [&s] { return serverPrometheus(s); }, opts);
      ASSERT_TRUE(r.ok()) << r.error().message;
      m_ = std::move(r).value();
      port_ = m_->localAddress().port();
    });
  }
  ~MetricsOnHarness() {
    h_.call([&](Server&) { m_.reset(); });
  }
  uint16_t port() const { return port_; }
  MetricsListener::Stats stats() {
    MetricsListener::Stats st;
    h_.call([&](Server&) { st = m_->stats(); });
    return st;
  }
  size_t connections() {
    size_t n = 0;
    h_.call([&](Server&) { n = m_->connections(); });
    return n;
  }

 private:
  Harness& h_;
  std::unique_ptr<MetricsListener> m_;
  uint16_t port_ = 0;
};

TEST(MetricsListener, ServesMetricsAndRefusesTheRest) {
  EchoPeer echo;
  Harness h(baseConfig());
  MetricsOnHarness m(h, {});
  int fd = openRelay(h.port(), echo.port());

  std::string r = httpExchange(m.port(), "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_EQ(r.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << r;
  EXPECT_NE(r.find("\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"),
            std::string::npos);
  EXPECT_NE(r.find("\r\nConnection: close\r\n"), std::string::npos);
  const size_t body_at = r.find("\r\n\r\n") + 4;
  const std::string body = r.substr(body_at);
  EXPECT_NE(r.find("\r\nContent-Length: " + std::to_string(body.size()) + "\r\n"),
            std::string::npos);
  EXPECT_EQ(sample(body, "vless_server_user_bytes_total{user=\"alice\",direction=\"up\"}"), 5);
  // A query string is ignored; HTTP/1.0 is fine.
  EXPECT_EQ(httpExchange(m.port(), "GET /metrics?x=1 HTTP/1.0\r\n\r\n").rfind("HTTP/1.1 200", 0),
            0u);

  EXPECT_EQ(httpExchange(m.port(), "GET / HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 404 ", 0), 0u);
  EXPECT_EQ(httpExchange(m.port(), "GET /metricsx HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 404 ", 0), 0u);
  std::string post = httpExchange(m.port(), "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(post.rfind("HTTP/1.1 405 ", 0), 0u) << post;
  EXPECT_NE(post.find("\r\nAllow: GET\r\n"), std::string::npos);
  for (const std::string& bad :
       {std::string("\x16\x03\x01\x02\x00\r\n\r\n", 9), std::string("GET\r\n\r\n"),
        std::string("GET /metrics\r\n\r\n"), std::string("GET  /metrics HTTP/1.1\r\n\r\n"),
        std::string("get /metrics HTTP/1.1\r\n\r\n"), std::string("GET /metrics SPDY/3\r\n\r\n")}) {
    EXPECT_EQ(httpExchange(m.port(), bad).rfind("HTTP/1.1 400 ", 0), 0u) << bad;
  }
  // A head that ends with the connection: 400 too.
  {
    int c = connectLoopback(m.port());
    ASSERT_TRUE(sendAll(c, std::string("GET /metrics HTTP/1.1\r\n")));
    ::shutdown(c, SHUT_WR);
    std::string got;
    EXPECT_TRUE(waitEof(c, 3000, &got));
    EXPECT_EQ(got.rfind("HTTP/1.1 400 ", 0), 0u) << got;
    ::close(c);
  }
  MetricsListener::Stats st = m.stats();
  EXPECT_EQ(st.requests, 2u);
  EXPECT_EQ(st.errors, 10u);
  ::close(fd);
}

TEST(MetricsListener, OversizeHeadIsRefused) {
  Harness h(baseConfig());
  MetricsOnHarness m(h, {});
  int fd = connectLoopback(m.port());
  std::string head = "GET /metrics HTTP/1.1\r\nX-Pad: " + std::string(9000, 'a');
  ASSERT_TRUE(sendAll(fd, head));  // and never ends it
  std::string got;
  EXPECT_TRUE(waitEof(fd, 3000, &got));
  EXPECT_EQ(got.rfind("HTTP/1.1 431 ", 0), 0u) << got.substr(0, 100);
  ::close(fd);
  ASSERT_TRUE(waitFor([&] { return m.connections() == 0; }));
}

TEST(MetricsListener, SilentClientIsDroppedAtTheDeadline) {
  Harness h(baseConfig());
  MetricsListener::Options o;
  o.deadline_ms = 150;
  MetricsOnHarness m(h, o);
  auto t0 = std::chrono::steady_clock::now();
  int fd = connectLoopback(m.port());
  ASSERT_TRUE(sendAll(fd, std::string("GET /metr")));  // and nothing more
  std::string got;
  EXPECT_TRUE(waitEof(fd, 3000, &got));
  auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  EXPECT_GE(ms, 100);
  EXPECT_EQ(got, "");
  ::close(fd);
  // A client that reads the answer but never closes is dropped too.
  fd = connectLoopback(m.port());
  ASSERT_TRUE(sendAll(fd, std::string("GET /metrics HTTP/1.1\r\n\r\n")));
  got.clear();
  EXPECT_TRUE(waitEof(fd, 3000, &got));  // our FIN after the answer
  EXPECT_EQ(got.rfind("HTTP/1.1 200", 0), 0u);
  ASSERT_TRUE(waitFor([&] { return m.connections() == 0; }));
  ::close(fd);
  EXPECT_GE(m.stats().timeouts, 2u);
}

TEST(MetricsListener, ConnectionCap) {
  Harness h(baseConfig());
  MetricsListener::Options o;
  o.max_connections = 3;
  MetricsOnHarness m(h, o);
  std::vector<int> idle;
  for (int i = 0; i < 3; ++i) idle.push_back(connectLoopback(m.port()));
  ASSERT_TRUE(waitFor([&] { return m.connections() == 3; }));
  int extra = connectLoopback(m.port());
  ASSERT_GE(extra, 0);
  std::string got;
  EXPECT_TRUE(waitEof(extra, 3000, &got));
  EXPECT_EQ(got, "");
  ::close(extra);
  EXPECT_EQ(m.stats().refused, 1u);
  // A slot frees when one of them goes; then a scrape works again.
  ::close(idle.back());
  idle.pop_back();
  ASSERT_TRUE(waitFor([&] { return m.connections() == 2; }));
  EXPECT_EQ(httpExchange(m.port(), "GET /metrics HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 200", 0), 0u);
  for (int fd : idle) ::close(fd);
}

}  // namespace
}  // namespace vt::server
