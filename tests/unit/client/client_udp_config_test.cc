// ClientConfig [udp] and [dns] tables (docs/client.md "UDP", "DNS").
#include <gtest/gtest.h>

#include <string>

#include "config/client_config.h"
#include "unit/config/client_config_test_util.h"

namespace vt::config {
namespace {

using client_test::expectError;
using client_test::parse;

constexpr const char* kServerV1 = R"(
[server]
address = "198.18.0.2:443"
uuid = "a684455c-b14f-11ea-bf0d-42010aaa0003"
)";
constexpr const char* kServerV0 = R"(
[server]
address = "198.18.0.2:443"
uuid = "a684455c-b14f-11ea-bf0d-42010aaa0003"
version = 0
)";

TEST(ClientUdpConfig, Defaults) {
  auto r = parse(kServerV1);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value().udp.mode, UdpMode::kMux);
  EXPECT_EQ(r.value().udp.idle_timeout_ms, 300'000u);
  EXPECT_EQ(r.value().udp.new_session_timeout_ms, 30'000u);
  EXPECT_EQ(r.value().udp.max_sessions, 1024u);
  EXPECT_EQ(r.value().udp.max_channels, 64u);
  EXPECT_EQ(r.value().udp.queue_datagrams, 64u);
  EXPECT_FALSE(r.value().dns.hijack);
  EXPECT_FALSE(r.value().dns.resolver);
  EXPECT_EQ(r.value().dns.cache_size, 512u);
  r = parse(kServerV0);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value().udp.mode, UdpMode::kV0);
}

TEST(ClientUdpConfig, FullTables) {
  auto r = parse(std::string(kServerV1) + R"(
[udp]
mode = "classic"
idle_timeout = "30s"
new_session_timeout = "2s"
max_sessions = 10
max_channels = 3
queue_datagrams = 7
[dns]
hijack = true
resolver = "198.18.1.53:53"
cache_size = 0
)");
  ASSERT_TRUE(r.ok()) << r.error().message;
  const ClientConfig& c = r.value();
  EXPECT_EQ(c.udp.mode, UdpMode::kClassic);
  EXPECT_EQ(c.udp.idle_timeout_ms, 30'000u);
  EXPECT_EQ(c.udp.new_session_timeout_ms, 2'000u);
  EXPECT_EQ(c.udp.max_sessions, 10u);
  EXPECT_EQ(c.udp.max_channels, 3u);
  EXPECT_EQ(c.udp.queue_datagrams, 7u);
  EXPECT_TRUE(c.dns.hijack);
  ASSERT_TRUE(c.dns.resolver);
  EXPECT_EQ(c.dns.resolver->toString(), "198.18.1.53:53");
  EXPECT_EQ(c.dns.cache_size, 0u);
}

TEST(ClientUdpConfig, NewSessionTimeoutFollowsAShorterIdleTimeout) {
  auto r = parse(std::string(kServerV1) + "[udp]\nidle_timeout = \"3s\"\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value().udp.new_session_timeout_ms, 3'000u);
  r = parse(std::string(kServerV1) + "[udp]\nidle_timeout = \"3s\"\nnew_session_timeout = 3\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value().udp.new_session_timeout_ms, 3'000u);
}

TEST(ClientUdpConfig, HijackDefaultsOnWithAutoRouteAndAResolver) {
  auto r = parse(std::string(kServerV1) + "[route]\nauto_route = true\n[dns]\nresolver = \"[2001:db8:1::53]:53\"\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r.value().dns.hijack);
  r = parse(std::string(kServerV1) + "[route]\nauto_route = true\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE(r.value().dns.hijack);  // no resolver named: nothing to hijack to
  r = parse(std::string(kServerV1) + "[dns]\nresolver = \"198.18.1.53:53\"\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE(r.value().dns.hijack);
}

TEST(ClientUdpConfig, Errors) {
  const std::string v1(kServerV1);
  expectError(v1 + "[udp]\nmode = \"v0\"\n", {"c.toml:", "udp.mode", "version = 0"});
  expectError(std::string(kServerV0) + "[udp]\nmode = \"separated\"\n",
              {"udp.mode", "\"v0\""});
  expectError(v1 + "[udp]\nmode = \"fast\"\n", {"udp.mode", "\"fast\""});
  expectError(v1 + "[udp]\nmax_sessions = 0\n", {"udp.max_sessions", "1..1000000"});
  expectError(v1 + "[udp]\nidle_timeout = \"soon\"\n", {"udp.idle_timeout"});
  expectError(v1 + "[udp]\nburst = 1\n", {"burst", "unknown key"});
  expectError(v1 + "[udp]\nidle_timeout = \"20s\"\nnew_session_timeout = \"1m\"\n",
              {"c.toml:", "udp.new_session_timeout",
               "expected a duration no longer than udp.idle_timeout (20s), got 1m"});
  expectError(v1 + "[udp]\nnew_session_timeout = \"301s\"\n",
              {"udp.new_session_timeout", "udp.idle_timeout (5m), got 301s"});
  expectError(v1 + "[udp]\nnew_session_timeout = \"0ms\"\n",
              {"udp.new_session_timeout", "expected a duration > 0"});
  expectError(v1 + "[dns]\nhijack = true\n", {"dns.hijack", "dns.resolver"});
  expectError(v1 + "[dns]\nresolver = \"dns.example:53\"\n", {"c.toml:", "dns.resolver"});
  expectError(v1 + "[dns]\nresolver = \"198.18.1.53\"\n", {"dns.resolver"});
  expectError(v1 + "[dns]\ncache_size = -1\n", {"dns.cache_size"});
  expectError(v1 + "[dns]\nupstream = 1\n", {"upstream", "unknown key"});
  expectError(v1 + "udp = 1\n", {"udp"});
}

}  // namespace
}  // namespace vt::config
