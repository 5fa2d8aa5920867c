// ClientConfig [ip] table (docs/client.md "IP passthrough (CmdIP)").
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

TEST(ClientIpConfig, DefaultsFollowTheVersion) {
  auto r = parse(kServerV1);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r.value().ip.enabled);
  EXPECT_TRUE(r.value().ip.passthrough.empty());
  EXPECT_EQ(r.value().ip.queue_packets, 256u);
  EXPECT_EQ(r.value().ip.queue_bytes, 256u * 1024);
  r = parse(kServerV0);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE(r.value().ip.enabled) << "no CmdIP with v0";
  // An [ip] table without `enabled` on v0: still off, not an error.
  r = parse(std::string(kServerV0) + "[ip]\nqueue_packets = 8\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE(r.value().ip.enabled);
  r = parse(std::string(kServerV0) + "[ip]\nenabled = false\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE(r.value().ip.enabled);
}

TEST(ClientIpConfig, FullTable) {
  auto r = parse(std::string(kServerV1) + R"(
[ip]
enabled = true
passthrough = ["198.19.0.0/16", "2001:db8:5::/48", "198.18.7.7/32"]
queue_packets = 16
queue_bytes = "128KiB"
)");
  ASSERT_TRUE(r.ok()) << r.error().message;
  const ClientIpConfig& ip = r.value().ip;
  EXPECT_TRUE(ip.enabled);
  ASSERT_EQ(ip.passthrough.size(), 3u);
  EXPECT_EQ(ip.passthrough[0].toString(), "198.19.0.0/16");
  EXPECT_TRUE(ip.passthrough[1].v6);
  EXPECT_EQ(ip.passthrough[1].prefix, 48);
  EXPECT_EQ(ip.queue_packets, 16u);
  EXPECT_EQ(ip.queue_bytes, 128u * 1024);
  r = parse(std::string(kServerV1) + "[ip]\nqueue_bytes = 100000\nenabled = false\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value().ip.queue_bytes, 100000u);
  EXPECT_FALSE(r.value().ip.enabled);
}

TEST(ClientIpConfig, EnabledWithVersion0IsAnError) {
  expectError(std::string(kServerV0) + "[ip]\nenabled = true\n",
              {"c.toml:", "ip.enabled", "CmdIP needs VLESS v1", "server.version = 0"});
  expectError(std::string(kServerV0) + "[ip]\npassthrough = [\"198.19.0.0/16\"]\n",
              {"c.toml:", "ip.passthrough", "CmdIP needs VLESS v1"});
}

TEST(ClientIpConfig, EveryErrorNamesItsKey) {
  const std::string v1(kServerV1);
  expectError(v1 + "[ip]\nenabled = 1\n", {"c.toml:", "ip.enabled", "true or false"});
  expectError("ip = 3\n" + v1, {"c.toml:", "ip", "expected a table [ip]"});
  expectError(v1 + "[ip]\nbogus = 1\n", {"c.toml:", "ip.bogus", "unknown key", "passthrough"});
  expectError(v1 + "[ip]\npassthrough = \"198.19.0.0/16\"\n", {"c.toml:", "ip.passthrough", "CIDRs"});
  expectError(v1 + "[ip]\npassthrough = [\"198.19.0.0\"]\n",
              {"c.toml:", "ip.passthrough[0]", "expected a CIDR"});
  expectError(v1 + "[ip]\npassthrough = [\"198.19.0.0/16\", \"2001:db8::/129\"]\n",
              {"ip.passthrough[1]", "2001:db8::/129"});
  expectError(v1 + "[ip]\npassthrough = [\"198.19.0.1/16\"]\n",
              {"ip.passthrough[0]", "without host bits", "198.19.0.1/16"});
  expectError(v1 + "[ip]\nenabled = false\npassthrough = [\"198.19.0.0/16\"]\n",
              {"ip.passthrough", "ip.enabled = false"});
  expectError(v1 + "[ip]\nqueue_packets = 0\n", {"c.toml:", "ip.queue_packets", "1..65536"});
  expectError(v1 + "[ip]\nqueue_packets = \"many\"\n", {"ip.queue_packets", "integer"});
  expectError(v1 + "[ip]\nqueue_bytes = 100\n", {"c.toml:", "ip.queue_bytes", "256KiB"});
  expectError(v1 + "[ip]\nqueue_bytes = \"lots\"\n", {"ip.queue_bytes", "a size"});
  expectError(v1 + "[ip]\nqueue_bytes = \"2GiB\"\n", {"ip.queue_bytes"});
}

}  // namespace
}  // namespace vt::config
