// ClientConfig: the [tun]/[server]/[route]/[limits] format of docs/client.md;
// every error names file:line:col, the key and what was expected.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <thread>

#include "config/client_config.h"
#include "unit/config/client_config_test_util.h"

namespace vt::config {
namespace {

using client_test::expectError;
using client_test::parse;

constexpr const char* kMinimal = R"(
[server]
address = "198.18.0.2:443"
uuid = "a684455c-b14f-11ea-bf0d-42010aaa0003"
)";

TEST(ClientConfig, MinimalGetsDefaults) {
  auto r = parse(kMinimal);
  ASSERT_TRUE(r.ok()) << r.error().message;
  const ClientConfig& c = r.value();
  EXPECT_EQ(c.log_level, LogLevel::kInfo);
  EXPECT_EQ(c.tun.name, "vt0");
  EXPECT_EQ(c.tun.mtu, 8500u);
  EXPECT_FALSE(c.tun.ipv4);
  EXPECT_FALSE(c.tun.fd);
  EXPECT_EQ(c.server.address.host, "198.18.0.2");
  EXPECT_EQ(c.server.address.port, 443);
  EXPECT_EQ(c.server.version, 1);
  EXPECT_TRUE(c.server.tls);
  EXPECT_TRUE(c.server.session_tickets);
  EXPECT_TRUE(c.pool.reuse);
  EXPECT_EQ(c.pool.idle_timeout_ms, 30'000u);
  EXPECT_EQ(c.pool.max_idle, 32u);
  EXPECT_EQ(c.server.sni, "198.18.0.2");
  EXPECT_EQ(c.server.connect_mode, ConnectMode::kWait);
  EXPECT_EQ(c.server.fwmark, 0u);
  EXPECT_EQ(c.server.ca_file, "");
  EXPECT_FALSE(c.route.auto_route);
  EXPECT_EQ(c.limits.max_flows, 4096u);
  EXPECT_EQ(c.limits.idle_timeout_ms, 300'000u);
  EXPECT_EQ(c.limits.drain_timeout_ms, 30'000u);
  EXPECT_EQ(c.limits.connect_timeout_ms, 10'000u);
}

TEST(ClientConfig, FullExample) {
  auto r = parse(R"(
log_level = "debug"
[tun]
name = "vt1"
mtu = 9000
ipv4 = "198.18.2.1/30"
ipv6 = "2001:db8:2::1/64"
[server]
address = "vpn.example.com:8443"
uuid = "a684455cb14f11eabf0d42010aaa0003"
version = 0
tls = true
sni = "test.name"
alpn = ["h2", "http/1.1"]
ca = "ca.pem"
insecure = false
session_tickets = false
fwmark = 255
[route]
auto_route = false
[limits]
max_flows = 10
idle_timeout = "5m"
drain_timeout = 7
connect_timeout = "1500ms"
[pool]
reuse = false
idle_timeout = "10s"
max_idle = 4
)");
  ASSERT_TRUE(r.ok()) << r.error().message;
  const ClientConfig& c = r.value();
  EXPECT_EQ(c.log_level, LogLevel::kDebug);
  EXPECT_EQ(c.tun.name, "vt1");
  EXPECT_EQ(c.tun.mtu, 9000u);
  ASSERT_TRUE(c.tun.ipv4);
  EXPECT_EQ(c.tun.ipv4->address, "198.18.2.1");
  EXPECT_EQ(c.tun.ipv4->prefix, 30);
  ASSERT_TRUE(c.tun.ipv6);
  EXPECT_EQ(c.tun.ipv6->prefix, 64);
  EXPECT_TRUE(c.tun.ipv6->v6);
  EXPECT_FALSE(c.server.address.is_ip);
  EXPECT_EQ(c.server.version, 0);
  EXPECT_FALSE(c.server.session_tickets);
  EXPECT_FALSE(c.pool.reuse);
  EXPECT_EQ(c.pool.idle_timeout_ms, 10'000u);
  EXPECT_EQ(c.pool.max_idle, 4u);
  EXPECT_EQ(c.server.connect_mode, ConnectMode::kImmediate);  // v0 default
  EXPECT_EQ(c.server.sni, "test.name");
  ASSERT_EQ(c.server.alpn.size(), 2u);
  EXPECT_EQ(c.server.ca_file, "/etc/vt/ca.pem");  // relative to the config file
  EXPECT_EQ(c.server.fwmark, 255u);
  EXPECT_EQ(c.limits.max_flows, 10u);
  EXPECT_EQ(c.limits.idle_timeout_ms, 300'000u);
  EXPECT_EQ(c.limits.drain_timeout_ms, 7'000u);
  EXPECT_EQ(c.limits.connect_timeout_ms, 1'500u);
}

TEST(ClientConfig, AdoptFdAndIpv6Server) {
  auto r = parse(R"(
[tun]
fd = 3
[server]
address = "[2001:db8::2]:443"
uuid = "a684455c-b14f-11ea-bf0d-42010aaa0003"
connect_mode = "immediate"
tls = false
)");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r.value().tun.fd, 3);
  EXPECT_EQ(r.value().server.address.host, "2001:db8::2");
  EXPECT_EQ(r.value().server.sni, "2001:db8::2");
  EXPECT_EQ(r.value().server.connect_mode, ConnectMode::kImmediate);
  EXPECT_FALSE(r.value().server.tls);
}

TEST(ClientConfig, TunWorkers) {
  auto r = parse(kMinimal);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value().tun.workers, 0u);  // one per core
  r = parse(std::string("[tun]\nworkers = 3\n") + kMinimal);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value().tun.workers, 3u);
  EXPECT_EQ(effectiveWorkers(3), 3u);
  EXPECT_EQ(effectiveWorkers(64), 64u);
  uint32_t autoCount = effectiveWorkers(0);
  EXPECT_GE(autoCount, 1u);
  EXPECT_LE(autoCount, kMaxAutoWorkers);
  EXPECT_LE(autoCount, std::max(1u, std::thread::hardware_concurrency()));
  expectError(std::string("[tun]\nworkers = 65\n") + kMinimal,
              {"c.toml:2:11", "tun.workers", "0..64", "got 65"});
  expectError(std::string("[tun]\nworkers = -1\n") + kMinimal, {"tun.workers", "0..64"});
  expectError(std::string("[tun]\nworkers = \"all\"\n") + kMinimal, {"tun.workers"});
}

TEST(ClientConfig, TunOffload) {
  auto r = parse(kMinimal);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r.value().tun.offload);  // on by default
  r = parse(std::string("[tun]\noffload = false\n") + kMinimal);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE(r.value().tun.offload);
  expectError(std::string("[tun]\noffload = 1\n") + kMinimal, {"c.toml:2:", "tun.offload", "true or false"});
}

TEST(ClientConfig, MuxDatagramWindow) {
  auto r = parse(kMinimal);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value().mux.datagram_window, 1u << 20);
  EXPECT_EQ(r.value().mux.stream_window, 256u * 1024);
  r = parse(std::string(kMinimal) + "[mux]\ndatagram_window = 4194304\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value().mux.datagram_window, 4u << 20);
  expectError(std::string(kMinimal) + "[mux]\ndatagram_window = 1024\n",
              {"c.toml:6:19", "mux.datagram_window", "65536..16777216", "got 1024"});
}

TEST(ClientConfig, MuxMaxStreamWindow) {
  auto r = parse(kMinimal);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value().mux.max_stream_window, 1u << 20);
  r = parse(std::string(kMinimal) + "[mux]\nmax_stream_window = 262144\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value().mux.max_stream_window, 262144u);
  expectError(std::string(kMinimal) + "[mux]\nmax_stream_window = 100\n",
              {"c.toml:6:21", "mux.max_stream_window", "65536..16777216", "got 100"});
}

TEST(ClientConfig, WebSocket) {
  auto r = parse(kMinimal);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE(r.value().server.ws.has_value());
  // [server.ws] after [server]'s keys: a sub-table.
  r = parse(std::string(kMinimal) + R"([server.ws]
path = "/ray?ed=2048"
host = "cdn.example.com"
headers = { "User-Agent" = "Mozilla/5.0", "X-Forwarded-For" = "198.18.0.9" }
early_data = 2048
half_close = true
)");
  ASSERT_TRUE(r.ok()) << r.error().message;
  const auto& ws = *r.value().server.ws;
  EXPECT_EQ(ws.path, "/ray?ed=2048");
  EXPECT_EQ(ws.host, "cdn.example.com");
  ASSERT_EQ(ws.headers.size(), 2u);
  EXPECT_EQ(ws.early_data, 2048u);
  EXPECT_TRUE(ws.half_close);
  r = parse(std::string(kMinimal) + "[server.ws]\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value().server.ws->path, "/");
  EXPECT_EQ(r.value().server.ws->early_data, 0u);
  EXPECT_FALSE(r.value().server.ws->half_close);
  const std::string w = std::string(kMinimal) + "[server.ws]\n";
  expectError(w + "path = \"ray\"\n", {"c.toml:6:8", "server.ws.path", "start with \"/\""});
  expectError(w + "path = \"/a b\"\n", {"server.ws.path", "without spaces"});
  expectError(w + "host = \"\"\n", {"server.ws.host", "must not be empty"});
  expectError(w + "early_data = 4096\n", {"server.ws.early_data", "0..2048"});
  expectError(w + "headers = { Host = \"x\" }\n",
              {"server.ws.headers.Host", "written by the upgrade", "ws.host"});
  expectError(w + "headers = { \"Sec-WebSocket-Protocol\" = \"x\" }\n",
              {"server.ws.headers.Sec-WebSocket-Protocol", "written by the upgrade"});
  expectError(w + "headers = { \"Bad Name\" = \"x\" }\n", {"not an HTTP token"});
  expectError(w + "headers = { \"X-A\" = \"a\\r\\nb\" }\n", {"CR, LF or NUL"});
  expectError(w + "headers = { \"X-A\" = 1 }\n", {"server.ws.headers.X-A", "a string"});
  expectError(w + "paht = \"/\"\n", {"server.ws.paht", "unknown key"});
  expectError(std::string(kMinimal) + "ws = 1\n", {"server.ws", "expected a table"});
}

TEST(ClientConfig, ErrorsNameFileLineKeyAndExpectation) {
  std::string s = "[server]\naddress = \"198.18.0.2:443\"\n";
  std::string u = "uuid = \"a684455c-b14f-11ea-bf0d-42010aaa0003\"\n";
  expectError("", {"c.toml", "server", "missing", "[server]"});
  expectError(s, {"c.toml", "server.uuid", "missing", "UUID"});
  expectError(s + u + "[pool]\nmax_idle = 5000\n", {"c.toml", "pool.max_idle", "4096"});
  expectError(s + u + "[pool]\nidle_timeout = \"x\"\n", {"c.toml", "pool.idle_timeout", "duration"});
  expectError(s + u + "[pool]\nreuse = 1\n", {"c.toml", "pool.reuse"});
  expectError(s + u + "[pool]\nsize = 1\n", {"c.toml", "pool.size"});
  expectError("[server]\naddress = \"198.18.0.2:443\"\nuuid = \"0123456789abcdef0123456789abcdeZ\"\n",
              {"c.toml:3:8", "server.uuid", "expected a UUID like", "32 characters", "not shown"});
  {
    // A mistyped UUID is nearly the secret: it is never in the message.
    auto r = parseClientConfig(
        "[server]\naddress = \"198.18.0.2:443\"\nuuid = \"0123456789abcdef0123456789abcdeZ\"\n",
        "c.toml", "");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().message.find("0123456789abcdef0123456789abcdeZ"), std::string::npos)
        << r.error().message;
  }
  expectError("[server]\naddress = \"198.18.0.2\"\n" + u,
              {"c.toml:2:11", "server.address", "expected an address like"});
  expectError(s + u + "version = 2\n", {"c.toml:4:11", "server.version", "0..1", "got 2"});
  expectError(s + u + "version = 0\nconnect_mode = \"wait\"\n",
              {"c.toml:5:16", "server.connect_mode", "immediate", "version = 0"});
  expectError(s + u + "connect_mode = \"later\"\n",
              {"server.connect_mode", "\"wait\" or \"immediate\"", "later"});
  expectError(s + u + "tls = \"yes\"\n", {"c.toml:4:7", "server.tls", "true or false"});
  expectError(s + u + "fwmark = -1\n", {"server.fwmark", "0..4294967295"});
  expectError(s + u + "colour = 1\n", {"c.toml:4:1", "server.colour", "unknown key", "uuid"});
  expectError("lvl = 1\n" + s + u, {"c.toml:1:1", "lvl", "unknown key", "log_level"});
  expectError("log_level = \"loud\"\n" + s + u, {"log_level", "trace, debug", "loud"});
  expectError("[tun]\nmtu = 100\n" + s + u, {"c.toml:2:7", "tun.mtu", "576..65535", "got 100"});
  expectError("[tun]\nmtu = 70000\n" + s + u, {"tun.mtu", "576..65535"});
  expectError("[tun]\nipv4 = \"198.18.2.1\"\n" + s + u,
              {"c.toml:2:8", "tun.ipv4", "address/prefix", "198.18.2.1"});
  expectError("[tun]\nipv4 = \"198.18.2.1/33\"\n" + s + u, {"tun.ipv4", "address/prefix"});
  expectError("[tun]\nipv4 = \"2001:db8::1/64\"\n" + s + u, {"tun.ipv4", "IPv4"});
  expectError("[tun]\nipv6 = \"2001:db8::1/129\"\n" + s + u, {"tun.ipv6", "IPv6"});
  expectError("[tun]\nname = \"\"\n" + s + u, {"tun.name", "1..15"});
  expectError("[tun]\nname = \"a-very-long-interface\"\n" + s + u, {"tun.name", "1..15"});
  expectError("tun = 1\n" + s + u, {"c.toml:1:7", "tun", "expected a table"});
  expectError(s + u + "[limits]\nidle_timeout = \"soon\"\n",
              {"c.toml:5:16", "limits.idle_timeout", "duration"});
  expectError(s + u + "[limits]\nconnect_timeout = 0\n", {"limits.connect_timeout", "duration > 0"});
  expectError(s + u + "[limits]\nmax_flows = 0\n", {"limits.max_flows", "1..1000000"});
  expectError(s + u + "[limits]\nmax_conns = 5\n", {"limits.max_conns", "unknown key", "max_flows"});
  expectError(s + u + "[route]\nauto_route = 1\n",
              {"c.toml:5:14", "route.auto_route", "true or false"});
  expectError(s + u + "fwmark = 7\n[route]\nauto_route = true\nfwmark = 8\n",
              {"c.toml:7:10", "route.fwmark", "server.fwmark"});
  expectError(s + u + "[route]\ntable = 254\n", {"route.table", "main"});
  expectError(s + u + "[route]\ncapture = []\n", {"route.capture", "at least one"});
  expectError(s + u + "[route]\nbypass = [\"10.0.0.0/33\"]\n",
              {"c.toml:5:11", "route.bypass[0]", "CIDR", "10.0.0.0/33"});
  expectError(s + u + "[route]\nmetric = 1\n", {"route.metric", "unknown key", "capture"});
  expectError(s + u + "alpn = [1]\n", {"server.alpn[0]", "protocol name"});
  expectError(s + u + "ca = \"\"\n", {"server.ca", "PEM"});
  expectError("[server\n", {"c.toml:1", "TOML syntax"});
}

TEST(ClientConfig, AutoRouteSharesTheFwmark) {
  auto r = parse(std::string(kMinimal) + R"(
[route]
auto_route = true
table = 100
priority = 7000
capture = ["198.18.1.0/24", "2001:db8:1::/64"]
bypass = []
keep_lan = false
carry_ipv6 = false
state_file = "run/vt0.routes"
)");
  ASSERT_TRUE(r.ok()) << r.error().message;
  const ClientConfig& c = r.value();
  EXPECT_TRUE(c.route.auto_route);
  EXPECT_EQ(c.route.fwmark, 0x1f0u);
  EXPECT_EQ(c.server.fwmark, 0x1f0u);  // the outbound sockets carry the rule's mark
  EXPECT_EQ(c.route.table, 100u);
  EXPECT_EQ(c.route.priority, 7000u);
  ASSERT_TRUE(c.route.capture);
  ASSERT_EQ(c.route.capture->size(), 2u);
  EXPECT_TRUE((*c.route.capture)[1].v6);
  ASSERT_TRUE(c.route.bypass);
  EXPECT_TRUE(c.route.bypass->empty());
  EXPECT_FALSE(c.route.keep_lan);
  EXPECT_FALSE(c.route.carry_ipv6);
  EXPECT_EQ(c.route.state_file, "/etc/vt/run/vt0.routes");

  auto m = parse(std::string(kMinimal) + "fwmark = 99\n[route]\nauto_route = true\n");
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m.value().route.fwmark, 99u);  // taken from server.fwmark
  EXPECT_EQ(m.value().server.fwmark, 99u);
  auto off = parse(std::string(kMinimal) + "[route]\nfwmark = 5\n");
  ASSERT_TRUE(off.ok());
  EXPECT_EQ(off.value().server.fwmark, 0u);  // without auto_route nothing is marked
  EXPECT_FALSE(off.value().tun.ipv6);

  // auto_route gives an address-less TUN internal addresses of both
  // families (captured traffic needs a TUN source, or it leaks).
  ASSERT_TRUE(m.value().tun.ipv4);
  ASSERT_TRUE(m.value().tun.ipv6);
  EXPECT_EQ(m.value().tun.ipv4->toString(), kDefaultTunIpv4);
  EXPECT_EQ(m.value().tun.ipv6->toString(), kDefaultTunIpv6);
}

TEST(ClientConfig, Cidr) {
  EXPECT_TRUE(parseCidr("10.0.0.1/0"));
  EXPECT_TRUE(parseCidr("::/0"));
  EXPECT_TRUE(parseCidr("fe80::1/128"));
  EXPECT_FALSE(parseCidr("10.0.0.1/"));
  EXPECT_FALSE(parseCidr("/24"));
  EXPECT_FALSE(parseCidr("10.0.0.1/2x"));
  EXPECT_FALSE(parseCidr("10.0.0.1/1234"));
  EXPECT_FALSE(parseCidr("10.0.0/24"));
  EXPECT_FALSE(parseCidr("host/24"));
}

TEST(ClientConfig, LoadFromFileResolvesRelativeCa) {
  std::string dir = ::testing::TempDir();
  std::string path = dir + "/vt_client_config_test.toml";
  FILE* f = std::fopen(path.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::string text = std::string(kMinimal) + "ca = \"sub/ca.pem\"\n";
  std::fwrite(text.data(), 1, text.size(), f);
  std::fclose(f);
  auto r = loadClientConfig(path);
  ASSERT_TRUE(r.ok()) << r.error().message;
  std::string base = path.substr(0, path.rfind('/'));
  EXPECT_EQ(r.value().server.ca_file, base + "/sub/ca.pem");
  std::remove(path.c_str());
  auto missing = loadClientConfig(dir + "/does-not-exist.toml");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("cannot open"), std::string::npos);
}

}  // namespace
}  // namespace vt::config
