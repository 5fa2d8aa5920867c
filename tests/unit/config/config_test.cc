// Server config loader: a full valid file, and every kind of error naming
// the file, the key and what was expected.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "config/server_config.h"

namespace vt::config {
namespace {

const char* kFull = R"(
log_level = "debug"
listen = ["0.0.0.0:443", "[::]:443"]
versions = [0, 1]
fallback = "127.0.0.1:8080"
handshake_timeout = "500ms"
idle_timeout = 300
max_connections = 100
[tls]
cert = "cert.pem"
key = "/abs/key.pem"
alpn = ["h2", "http/1.1"]
[[users]]
name = "alice"
uuid = "a684455c-b14f-11ea-bf0d-42010aaa0003"
[[users]]
uuid = "b684455cb14f11eabf0d42010aaa0003"
)";

const char* kMinimal = R"(
listen = "127.0.0.1:1"
[[users]]
uuid = "a684455c-b14f-11ea-bf0d-42010aaa0003"
)";

std::string parseError(const std::string& text) {
  auto r = parseServerConfig(text, "srv.toml", "/etc/v");
  EXPECT_FALSE(r.ok()) << text;
  if (r.ok()) return "";
  EXPECT_EQ(r.error().code, Errc::kConfig);
  EXPECT_EQ(r.error().message.rfind("srv.toml", 0), 0u) << r.error().message;
  return r.error().message;
}

TEST(ServerConfig, FullValid) {
  auto r = parseServerConfig(kFull, "srv.toml", "/etc/v");
  ASSERT_TRUE(r.ok()) << r.error().message;
  const ServerConfig& c = r.value();
  EXPECT_EQ(c.log_level, LogLevel::kDebug);
  ASSERT_EQ(c.listen.size(), 2u);
  EXPECT_EQ(c.listen[0].host, "0.0.0.0");
  EXPECT_EQ(c.listen[0].port, 443);
  EXPECT_EQ(c.listen[1].host, "::");
  EXPECT_EQ(c.listen[1].toString(), "[::]:443");
  EXPECT_TRUE(c.accept_v0);
  EXPECT_TRUE(c.accept_v1);
  ASSERT_TRUE(c.fallback.has_value());
  EXPECT_EQ(c.fallback->toString(), "127.0.0.1:8080");
  EXPECT_EQ(c.handshake_timeout_ms, 500u);
  EXPECT_EQ(c.idle_timeout_ms, 300'000u);
  EXPECT_EQ(c.max_connections, 100u);
  ASSERT_TRUE(c.tls.has_value());
  EXPECT_EQ(c.tls->cert_file, "/etc/v/cert.pem");
  EXPECT_EQ(c.tls->key_file, "/abs/key.pem");
  EXPECT_EQ(c.tls->alpn, (std::vector<std::string>{"h2", "http/1.1"}));
  ASSERT_EQ(c.users.size(), 2u);
  EXPECT_EQ(c.users[0].name, "alice");
  EXPECT_EQ(uuidText(c.users[0].uuid), "a684455c-b14f-11ea-bf0d-42010aaa0003");
  EXPECT_EQ(c.users[1].name, "user1");
  EXPECT_EQ(uuidText(c.users[1].uuid), "b684455c-b14f-11ea-bf0d-42010aaa0003");
}

TEST(ServerConfig, MinimalDefaults) {
  auto r = parseServerConfig(kMinimal, "srv.toml", "");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE(r.value().tls.has_value());
  EXPECT_FALSE(r.value().fallback.has_value());
  EXPECT_EQ(r.value().handshake_timeout_ms, 10'000u);
  EXPECT_TRUE(r.value().accept_v0 && r.value().accept_v1);
}

TEST(ServerConfig, MuxDatagramWindow) {
  auto r = parseServerConfig(kMinimal, "srv.toml", "");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value().mux.datagram_window, 1u << 20);
  r = parseServerConfig(std::string(kMinimal) + "[mux]\ndatagram_window = 65536\n", "srv.toml", "");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value().mux.datagram_window, 65536u);
  std::string e = parseError(std::string(kMinimal) + "[mux]\ndatagram_window = 20000000\n");
  EXPECT_NE(e.find("mux.datagram_window"), std::string::npos) << e;
  EXPECT_NE(e.find("65536..16777216"), std::string::npos) << e;
}

TEST(ServerConfig, MuxMaxStreamWindow) {
  auto r = parseServerConfig(kMinimal, "srv.toml", "");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value().mux.max_stream_window, 1u << 20);
  r = parseServerConfig(std::string(kMinimal) + "[mux]\nmax_stream_window = 262144\n", "srv.toml", "");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value().mux.max_stream_window, 262144u);
  std::string e = parseError(std::string(kMinimal) + "[mux]\nmax_stream_window = 1\n");
  EXPECT_NE(e.find("mux.max_stream_window"), std::string::npos) << e;
}

TEST(ServerConfig, WebSocket) {
  auto r = parseServerConfig(kMinimal, "srv.toml", "");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE(r.value().ws.has_value());
  r = parseServerConfig(std::string(kMinimal) + "[ws]\npath = \"/ray\"\nhost = \"cdn.example.com\"\n",
                        "srv.toml", "");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value().ws->path, "/ray");
  EXPECT_EQ(r.value().ws->host, "cdn.example.com");
  std::string e = parseError(std::string(kMinimal) + "[ws]\n");
  EXPECT_NE(e.find("ws.path"), std::string::npos) << e;
  EXPECT_NE(e.find("missing"), std::string::npos) << e;
  e = parseError(std::string(kMinimal) + "[ws]\npath = \"/ray?ed=2048\"\n");
  EXPECT_NE(e.find("the query is not compared"), std::string::npos) << e;
  e = parseError(std::string(kMinimal) + "[ws]\npath = \"ray\"\n");
  EXPECT_NE(e.find("start with"), std::string::npos) << e;
  e = parseError(std::string(kMinimal) + "[ws]\npath = \"/\"\nport = 1\n");
  EXPECT_NE(e.find("ws.port"), std::string::npos) << e;
}

TEST(ServerConfig, LoadFileResolvesRelativePaths) {
  std::string dir = ::testing::TempDir();
  std::string path = dir + "/vt_config_test.toml";
  {
    std::ofstream f(path);
    f << kFull;
  }
  auto r = loadServerConfig(path);
  ASSERT_TRUE(r.ok()) << r.error().message;
  std::string expect_dir = path.substr(0, path.rfind('/'));
  EXPECT_EQ(r.value().tls->cert_file, expect_dir + "/cert.pem");
  std::remove(path.c_str());

  auto missing = loadServerConfig(dir + "/does-not-exist.toml");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("does-not-exist.toml"), std::string::npos);
}

TEST(ServerConfig, MissingUsers) {
  std::string m = parseError("listen = [\"127.0.0.1:1\"]\n");
  EXPECT_NE(m.find("users"), std::string::npos) << m;
  EXPECT_NE(m.find("at least one [[users]]"), std::string::npos) << m;
}

TEST(ServerConfig, BadUuidNamesIndexAndExample) {
  std::string m =
      parseError(std::string(kMinimal) + "[[users]]\nuuid = \"nope\"\n[[users]]\nuuid = \"x\"\n");
  EXPECT_NE(m.find("users[1].uuid"), std::string::npos) << m;
  EXPECT_NE(m.find("expected a UUID like a684455c-b14f-11ea-bf0d-42010aaa0003"), std::string::npos)
      << m;
  EXPECT_NE(m.find("srv.toml:6:"), std::string::npos) << m;  // line:column of the value
  EXPECT_NE(m.find("4 characters that are not one (not shown: a secret)"), std::string::npos) << m;
  EXPECT_EQ(m.find("nope"), std::string::npos) << m;  // the secret is not echoed
}

TEST(ServerConfig, DuplicateUuid) {
  std::string m = parseError(std::string(kMinimal) +
                             "[[users]]\nuuid = \"A684455C-B14F-11EA-BF0D-42010AAA0003\"\n");
  EXPECT_NE(m.find("users[1].uuid"), std::string::npos) << m;
  EXPECT_NE(m.find("unique"), std::string::npos) << m;
}

TEST(ServerConfig, BadDuration) {
  for (const char* v :
       {"\"10\"", "\"-1s\"", "\"1.5s\"", "\"10 s\"", "\"0s\"", "0", "-3", "\"5d\"", "true"}) {
    std::string m = parseError(std::string("handshake_timeout = ") + v + "\n" + kMinimal);
    EXPECT_NE(m.find("srv.toml:1:"), std::string::npos) << m;
    EXPECT_NE(m.find("handshake_timeout: expected a duration"), std::string::npos) << m;
  }
  std::string m = parseError(std::string("idle_timeout = \"never\"\n") + kMinimal);
  EXPECT_NE(m.find("idle_timeout: expected a duration"), std::string::npos) << m;
}

TEST(ServerConfig, ReuseIdleTimeout) {
  auto r = parseServerConfig(kMinimal, "srv.toml", "/etc/v");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value().reuse_idle_timeout_ms, 60'000u);
  r = parseServerConfig(std::string("reuse_idle_timeout = \"5s\"\n") + kMinimal, "srv.toml",
                        "/etc/v");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value().reuse_idle_timeout_ms, 5'000u);
  std::string m = parseError(std::string("reuse_idle_timeout = \"soon\"\n") + kMinimal);
  EXPECT_NE(m.find("reuse_idle_timeout: expected a duration"), std::string::npos) << m;
}

TEST(ServerConfig, SessionTickets) {
  const std::string tls = "[tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\n";
  auto r = parseServerConfig(std::string(kMinimal) + tls, "srv.toml", "/etc/v");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r.value().tls->session_tickets);
  EXPECT_EQ(r.value().tls->ticket_lifetime_ms, 3'600'000u);
  r = parseServerConfig(std::string(kMinimal) + tls +
                            "session_tickets = false\nticket_lifetime = \"2h\"\n",
                        "srv.toml", "/etc/v");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE(r.value().tls->session_tickets);
  EXPECT_EQ(r.value().tls->ticket_lifetime_ms, 7'200'000u);
  std::string m = parseError(std::string(kMinimal) + tls + "ticket_lifetime = \"8d\"\n");
  EXPECT_NE(m.find("tls.ticket_lifetime: expected a duration"), std::string::npos) << m;
  for (const char* v : {"\"500ms\"", "\"169h\""}) {
    m = parseError(std::string(kMinimal) + tls + "ticket_lifetime = " + v + "\n");
    EXPECT_NE(m.find("tls.ticket_lifetime: expected a duration from 1s to 7 days"),
              std::string::npos)
        << m;
  }
  m = parseError(std::string(kMinimal) + tls + "session_tickets = \"yes\"\n");
  EXPECT_NE(m.find("tls.session_tickets: expected"), std::string::npos) << m;
}

TEST(ServerConfig, UnknownKeys) {
  std::string m = parseError(std::string("handshake_timout = \"1s\"\n") + kMinimal);
  EXPECT_NE(m.find("srv.toml:1:1: handshake_timout: unknown key"), std::string::npos) << m;
  m = parseError(std::string(kMinimal) + "[tls]\ncert = \"a\"\nkey = \"b\"\nalpm = []\n");
  EXPECT_NE(m.find("tls.alpm: unknown key"), std::string::npos) << m;
  m = parseError(std::string(kMinimal) + "nmae = \"bob\"\n");
  EXPECT_NE(m.find("users[0].nmae: unknown key"), std::string::npos) << m;
}

TEST(ServerConfig, BadListen) {
  for (const char* v :
       {"\"0.0.0.0\"", "\"::1:443\"", "\"1.2.3.4:0\"", "\"1.2.3.4:70000\"", "\"example.com:443\"",
        "\"[::1]443\"", "\"300.1.1.1:1\"", "\"1.2.3.4:x\""}) {
    std::string m = parseError(std::string("listen = [") + v +
                               "]\n[[users]]\nuuid = \"a684455c-b14f-11ea-bf0d-42010aaa0003\"\n");
    EXPECT_NE(m.find("listen[0]: expected an address like"), std::string::npos) << v << " -> " << m;
  }
  std::string m =
      parseError("listen = []\n[[users]]\nuuid = \"a684455c-b14f-11ea-bf0d-42010aaa0003\"\n");
  EXPECT_NE(m.find("listen: expected at least one"), std::string::npos) << m;
  m = parseError("[[users]]\nuuid = \"a684455c-b14f-11ea-bf0d-42010aaa0003\"\n");
  EXPECT_NE(m.find("listen: missing"), std::string::npos) << m;
}

TEST(ServerConfig, BadVersions) {
  std::string m = parseError(std::string("versions = [0, 2]\n") + kMinimal);
  EXPECT_NE(m.find("versions[1]: expected an integer in 0..1, got 2"), std::string::npos) << m;
  m = parseError(std::string("versions = []\n") + kMinimal);
  EXPECT_NE(m.find("versions: expected a non-empty array"), std::string::npos) << m;
  m = parseError(std::string("versions = 1\n") + kMinimal);
  EXPECT_NE(m.find("versions: expected an array"), std::string::npos) << m;
  auto r = parseServerConfig(std::string("versions = [1]\n") + kMinimal, "srv.toml", "");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r.value().accept_v0);
  EXPECT_TRUE(r.value().accept_v1);
}

TEST(ServerConfig, WrongTypes) {
  std::string m = parseError(std::string("max_connections = \"10\"\n") + kMinimal);
  EXPECT_NE(m.find("max_connections: expected an integer in 1..10000000, got a string"),
            std::string::npos)
      << m;
  m = parseError(std::string("max_connections = 0\n") + kMinimal);
  EXPECT_NE(m.find("max_connections: expected an integer"), std::string::npos) << m;
  m = parseError(std::string("log_level = \"loud\"\n") + kMinimal);
  EXPECT_NE(m.find("log_level: expected one of"), std::string::npos) << m;
  m = parseError(std::string("fallback = 8080\n") + kMinimal);
  EXPECT_NE(m.find("fallback: expected an address"), std::string::npos) << m;
  m = parseError(std::string("tls = \"yes\"\n") + kMinimal);
  EXPECT_NE(m.find("tls: expected a table"), std::string::npos) << m;
  m = parseError(std::string(kMinimal) + "[tls]\ncert = \"a\"\n");
  EXPECT_NE(m.find("tls.key: missing"), std::string::npos) << m;
  m = parseError(std::string(kMinimal) + "[tls]\ncert = \"a\"\nkey = 3\n");
  EXPECT_NE(m.find("tls.key: expected the path of a PEM file, got an integer"), std::string::npos)
      << m;
  m = parseError("listen = \"127.0.0.1:1\"\nusers = \"alice\"\n");
  EXPECT_NE(m.find("users: expected at least one"), std::string::npos) << m;
  m = parseError("listen = \"127.0.0.1:1\"\n[[users]]\nname = \"x\"\n");
  EXPECT_NE(m.find("users[0].uuid: missing"), std::string::npos) << m;
}

TEST(ServerConfig, SyntaxErrorHasPosition) {
  std::string m = parseError("listen = [\"127.0.0.1:1\"\n[[users]]\n");
  EXPECT_NE(m.find("TOML syntax"), std::string::npos) << m;
  EXPECT_NE(m.find("srv.toml:"), std::string::npos) << m;
}

TEST(ServerConfig, UdpTable) {
  auto d = parseServerConfig(kMinimal, "srv.toml", "");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d.value().udp.session_timeout_ms, 300'000u);
  EXPECT_EQ(d.value().udp.new_session_timeout_ms, 30'000u);
  EXPECT_EQ(d.value().udp.channel_idle_timeout_ms, 300'000u);
  EXPECT_EQ(d.value().udp.max_sessions, 4096u);
  EXPECT_EQ(d.value().udp.max_sessions_per_user, 256u);
  auto r = parseServerConfig(std::string(kMinimal) +
                                 "[udp]\nsession_timeout = \"2m\"\nchannel_idle_timeout = 30\n"
                                 "max_sessions = 10\nmax_sessions_per_user = 2\n",
                             "srv.toml", "");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value().udp.session_timeout_ms, 120'000u);
  EXPECT_EQ(r.value().udp.channel_idle_timeout_ms, 30'000u);
  EXPECT_EQ(r.value().udp.max_sessions, 10u);
  EXPECT_EQ(r.value().udp.max_sessions_per_user, 2u);

  std::string m = parseError(std::string(kMinimal) + "[udp]\nsesion_timeout = 3\n");
  EXPECT_NE(m.find("udp.sesion_timeout: unknown key"), std::string::npos) << m;
  m = parseError(std::string(kMinimal) + "[udp]\nsession_timeout = \"0s\"\n");
  EXPECT_NE(m.find("udp.session_timeout: expected a duration"), std::string::npos) << m;
  m = parseError(std::string(kMinimal) + "[udp]\nmax_sessions = 0\n");
  EXPECT_NE(m.find("udp.max_sessions: expected an integer in 1..1000000"), std::string::npos) << m;
  m = parseError(std::string(kMinimal) + "[udp]\nmax_sessions_per_user = \"3\"\n");
  EXPECT_NE(m.find("udp.max_sessions_per_user: expected an integer"), std::string::npos) << m;
  m = parseError(std::string("udp = 5\n") + kMinimal);
  EXPECT_NE(m.find("udp: expected a table"), std::string::npos) << m;
}

TEST(ServerConfig, EgressTable) {
  auto d = parseServerConfig(kMinimal, "srv.toml", "");
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(d.value().egress.allow.empty());
  EXPECT_TRUE(d.value().egress.deny.empty());
  auto r = parseServerConfig(std::string(kMinimal) +
                                 "[egress]\nallow = [\"10.0.0.0/8\", \"::1\"]\n"
                                 "deny = [\"203.0.113.0/24\"]\n",
                             "srv.toml", "");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r.value().egress.allow.size(), 2u);
  EXPECT_EQ(r.value().egress.allow[0].toString(), "10.0.0.0/8");
  EXPECT_EQ(r.value().egress.allow[1].toString(), "::1/128");
  ASSERT_EQ(r.value().egress.deny.size(), 1u);
  EXPECT_EQ(r.value().egress.deny[0].toString(), "203.0.113.0/24");

  std::string m = parseError(std::string(kMinimal) + "[egress]\nallow = [\"10.0.0.1/8\"]\n");
  EXPECT_NE(m.find("srv.toml:6:10:"), std::string::npos) << m;
  EXPECT_NE(m.find("egress.allow[0]: expected an IP address or a CIDR prefix with no host bits "
                   "set"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("got \"10.0.0.1/8\""), std::string::npos) << m;
  m = parseError(std::string(kMinimal) + "[egress]\ndeny = \"10.0.0.0/8\"\n");
  EXPECT_NE(m.find("egress.deny: expected an array of CIDR prefixes"), std::string::npos) << m;
  m = parseError(std::string(kMinimal) + "[egress]\ndeny = [\"ok.example\", 3]\n");
  EXPECT_NE(m.find("egress.deny[0]"), std::string::npos) << m;
  m = parseError(std::string(kMinimal) + "[egress]\nallows = []\n");
  EXPECT_NE(m.find("egress.allows: unknown key"), std::string::npos) << m;
}

TEST(ServerConfig, AdmissionAndDrain) {
  auto d = parseServerConfig(kMinimal, "srv.toml", "");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d.value().max_connections_per_source, 1024u);
  EXPECT_EQ(d.value().max_handshakes_per_source, 128u);
  EXPECT_EQ(d.value().max_connections_per_user, 4096u);
  EXPECT_EQ(d.value().drain_timeout_ms, 30'000u);
  auto r = parseServerConfig("max_connections_per_source = 7\nmax_handshakes_per_source = 3\n"
                             "max_connections_per_user = 9\ndrain_timeout = \"2s\"\n" +
                                 std::string(kMinimal),
                             "srv.toml", "");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value().max_connections_per_source, 7u);
  EXPECT_EQ(r.value().max_handshakes_per_source, 3u);
  EXPECT_EQ(r.value().max_connections_per_user, 9u);
  EXPECT_EQ(r.value().drain_timeout_ms, 2'000u);
  std::string m = parseError("max_handshakes_per_source = 0\n" + std::string(kMinimal));
  EXPECT_NE(m.find("srv.toml:1:29: max_handshakes_per_source: expected an integer in 1..10000000"),
            std::string::npos)
      << m;
  m = parseError("drain_timeout = \"soon\"\n" + std::string(kMinimal));
  EXPECT_NE(m.find("drain_timeout: expected a duration"), std::string::npos) << m;
}

TEST(ServerConfig, UserRateLimit) {
  auto r = parseServerConfig("listen = \"127.0.0.1:1\"\n[[users]]\n"
                             "uuid = \"a684455c-b14f-11ea-bf0d-42010aaa0003\"\n"
                             "rate_limit = \"8MB/s\"\n[[users]]\n"
                             "uuid = \"b684455c-b14f-11ea-bf0d-42010aaa0003\"\n",
                             "srv.toml", "");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value().users[0].rate_limit_bytes_per_s, 8'000'000u);
  EXPECT_EQ(r.value().users[1].rate_limit_bytes_per_s, 0u);
  std::string m = parseError(std::string(kMinimal) + "rate_limit = \"fast\"\n");
  EXPECT_NE(m.find("srv.toml:5:14: users[0].rate_limit: expected a bandwidth such as \"8MB/s\""),
            std::string::npos)
      << m;
  m = parseError(std::string(kMinimal) + "rate_limit = 8000000\n");
  EXPECT_NE(m.find("users[0].rate_limit: expected a bandwidth"), std::string::npos) << m;
}

TEST(ServerConfig, BufferBudget) {
  auto d = parseServerConfig(kMinimal, "srv.toml", "");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d.value().buffer_budget_bytes, 256u << 20);
  auto r = parseServerConfig("buffer_budget = \"64MiB\"\n" + std::string(kMinimal), "srv.toml", "");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value().buffer_budget_bytes, 64u << 20);
  std::string m = parseError("buffer_budget = \"12KB\"\n" + std::string(kMinimal));
  EXPECT_NE(m.find("srv.toml:1:17: buffer_budget: expected a size such as \"256MiB\""),
            std::string::npos)
      << m;
  EXPECT_EQ(parseSizeBytes("1GB"), 1'000'000'000u);
  EXPECT_EQ(parseSizeBytes("512KiB"), 524'288u);
  EXPECT_EQ(parseSizeBytes("65536B"), 65'536u);
  for (const char* bad : {"", "64", "64MiB/s", "8Mbit", "2TiB", "64mib", "1.5GB", "63KiB"}) {
    EXPECT_FALSE(parseSizeBytes(bad)) << bad;
  }
}

TEST(ConfigUtil, Rates) {
  EXPECT_EQ(parseRateBytesPerS("8MB/s"), 8'000'000u);
  EXPECT_EQ(parseRateBytesPerS("8MB"), 8'000'000u);
  EXPECT_EQ(parseRateBytesPerS("512KiB/s"), 524'288u);
  EXPECT_EQ(parseRateBytesPerS("1.5MiB/s"), 1'572'864u);
  EXPECT_EQ(parseRateBytesPerS("100Mbit/s"), 12'500'000u);
  EXPECT_EQ(parseRateBytesPerS("1GB/s"), 1'000'000'000u);
  EXPECT_EQ(parseRateBytesPerS("1000B/s"), 1000u);
  for (const char* bad : {"", "MB/s", "8", "8mb/s", "8 MB/s", "-8MB/s", "999B/s", "101GB/s",
                          "8MB/h", "1.MB/s", "8MBs"}) {
    EXPECT_FALSE(parseRateBytesPerS(bad)) << bad;
  }
}

TEST(ServerConfig, UdpNewSessionTimeout) {
  auto parse = [](const std::string& udp) {
    return parseServerConfig(std::string(kMinimal) + "[udp]\n" + udp, "srv.toml", "");
  };
  auto r = parse("new_session_timeout = \"500ms\"\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value().udp.new_session_timeout_ms, 500u);
  EXPECT_EQ(r.value().udp.session_timeout_ms, 300'000u);
  r = parse("session_timeout = \"1m\"\nnew_session_timeout = 60\n");  // equal is fine
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value().udp.new_session_timeout_ms, 60'000u);
  // Unset, it follows a session_timeout shorter than its 30 s.
  r = parse("session_timeout = \"10s\"\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value().udp.new_session_timeout_ms, 10'000u);

  std::string m = parseError(std::string(kMinimal) +
                             "[udp]\nsession_timeout = \"1m\"\nnew_session_timeout = \"90s\"\n");
  EXPECT_NE(m.find("srv.toml:"), std::string::npos) << m;
  EXPECT_NE(m.find("udp.new_session_timeout: expected a duration no longer than "
                   "udp.session_timeout (1m), got 90s"),
            std::string::npos)
      << m;
  m = parseError(std::string(kMinimal) + "[udp]\nnew_session_timeout = \"6m\"\n");
  EXPECT_NE(m.find("udp.new_session_timeout: expected a duration no longer than "
                   "udp.session_timeout (5m), got 6m"),
            std::string::npos)
      << m;
  m = parseError(std::string(kMinimal) + "[udp]\nnew_session_timeout = 0\n");
  EXPECT_NE(m.find("udp.new_session_timeout: expected a duration > 0"), std::string::npos) << m;
}

TEST(ConfigUtil, FormatDuration) {
  EXPECT_EQ(formatDurationMs(1500), "1500ms");
  EXPECT_EQ(formatDurationMs(30'000), "30s");
  EXPECT_EQ(formatDurationMs(300'000), "5m");
  EXPECT_EQ(formatDurationMs(7'200'000), "2h");
  EXPECT_EQ(formatDurationMs(0), "0ms");
}

TEST(ConfigUtil, Values) {
  EXPECT_EQ(parseDurationMs("500ms"), 500u);
  EXPECT_EQ(parseDurationMs("10s"), 10'000u);
  EXPECT_EQ(parseDurationMs("5m"), 300'000u);
  EXPECT_EQ(parseDurationMs("1h"), 3'600'000u);
  EXPECT_FALSE(parseDurationMs("s").has_value());
  EXPECT_FALSE(parseDurationMs("99999999999999999999s").has_value());
  auto hp = parseHostPort("web.internal:80", true);
  ASSERT_TRUE(hp.has_value());
  EXPECT_FALSE(hp->is_ip);
  EXPECT_FALSE(parseHostPort("web.internal:80", false).has_value());
  EXPECT_FALSE(parseHostPort("1.2.3:80", true).has_value());
  // A NUL (TOML's \u0000) ends inet_pton's reading, not ours.
  EXPECT_FALSE(parseHostPort(std::string_view("198.18.0.2\0x:443", 16), true).has_value());
  EXPECT_FALSE(parseHostPort(std::string_view("[2001:db8::2\0]:443", 18), true).has_value());
  EXPECT_FALSE(parseHostPort("web .internal:80", true).has_value());
  EXPECT_FALSE(parseUuidText("a684455c-b14f-11ea-bf0d-42010aaa000").has_value());
  EXPECT_FALSE(parseUuidText("a684455cXb14f-11ea-bf0d-42010aaa0003").has_value());
}

}  // namespace
}  // namespace vt::config
