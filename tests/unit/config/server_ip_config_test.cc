// [ip] of the server config (IP sessions, CMD 5): defaults, a full table,
// and errors naming the file, the key and what was expected.
#include <gtest/gtest.h>

#include <string>

#include "config/server_config.h"

namespace vt::config {
namespace {

const std::string kBase = "listen = \"127.0.0.1:1\"\n";
const std::string kUsers = "[[users]]\nuuid = \"a684455c-b14f-11ea-bf0d-42010aaa0003\"\n";

Result<ServerConfig> parseIp(const std::string& ip_lines) {
  return parseServerConfig(kBase + "[ip]\n" + ip_lines + kUsers, "srv.toml", "/etc/v");
}

std::string ipError(const std::string& ip_lines) {
  auto r = parseIp(ip_lines);
  EXPECT_FALSE(r.ok()) << ip_lines;
  if (r.ok()) return "";
  EXPECT_EQ(r.error().code, Errc::kConfig);
  EXPECT_EQ(r.error().message.rfind("srv.toml:", 0), 0u) << r.error().message;
  return r.error().message;
}

TEST(ServerIpConfig, Defaults) {
  auto r = parseServerConfig(kBase + kUsers, "srv.toml", "");
  ASSERT_TRUE(r.ok()) << r.error().message;
  const ServerIpConfig& ip = r.value().ip;
  EXPECT_FALSE(ip.enabled);
  EXPECT_EQ(ip.tun_name, "vlessip0");
  EXPECT_EQ(ip.pool4.toString(), "198.18.240.0/24");
  EXPECT_FALSE(ip.pool6.has_value());
  EXPECT_TRUE(ip.masquerade);
  EXPECT_EQ(ip.mtu, 1500u);
  EXPECT_EQ(ip.max_sessions, 1024u);
  EXPECT_EQ(ip.max_sessions_per_user, 8u);
  EXPECT_EQ(ip.lease_grace_ms, 30'000u);
  EXPECT_EQ(ip.queue_packets, 256u);
  EXPECT_TRUE(ip.state_file.empty());
}

TEST(ServerIpConfig, Full) {
  auto r = parseIp(
      "enabled = true\ntun_name = \"ipx0\"\npool4 = \"198.18.128.0/20\"\n"
      "pool6 = \"2001:db8:f0::/64\"\nmasquerade = false\nmtu = 1400\nmax_sessions = 100\n"
      "max_sessions_per_user = 2\nlease_grace = \"5s\"\nqueue_packets = 64\n"
      "state_file = \"run/ip.state\"\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  const ServerIpConfig& ip = r.value().ip;
  EXPECT_TRUE(ip.enabled);
  EXPECT_EQ(ip.tun_name, "ipx0");
  EXPECT_EQ(ip.pool4.toString(), "198.18.128.0/20");
  ASSERT_TRUE(ip.pool6.has_value());
  EXPECT_EQ(ip.pool6->toString(), "2001:db8:f0::/64");
  EXPECT_FALSE(ip.masquerade);
  EXPECT_EQ(ip.mtu, 1400u);
  EXPECT_EQ(ip.max_sessions, 100u);
  EXPECT_EQ(ip.max_sessions_per_user, 2u);
  EXPECT_EQ(ip.lease_grace_ms, 5000u);
  EXPECT_EQ(ip.queue_packets, 64u);
  EXPECT_EQ(ip.state_file, "/etc/v/run/ip.state");
}

TEST(ServerIpConfig, Errors) {
  struct Case {
    std::string lines, key, expect;
  };
  const Case cases[] = {
      {"enabled = 1\n", "ip.enabled", "expected true or false"},
      {"pool4 = \"198.18.240.1/24\"\n", "ip.pool4", "no host bits"},
      {"pool4 = \"198.18.240.0/31\"\n", "ip.pool4", "/8../30"},
      {"pool4 = \"2001:db8::/64\"\n", "ip.pool4", "IPv4 CIDR"},
      {"pool4 = \"198.18.240.0\"\n", "ip.pool4", "IPv4 CIDR"},
      {"pool6 = \"2001:db8::/48\"\n", "ip.pool6", "/64../120"},
      {"pool6 = \"2001:db8::/124\"\n", "ip.pool6", "/64../120"},
      {"pool6 = \"198.18.0.0/24\"\n", "ip.pool6", "IPv6 CIDR"},
      {"tun_name = \"a-name-that-is-too-long\"\n", "ip.tun_name", "1..15 characters"},
      {"tun_name = \"bad/name\"\n", "ip.tun_name", "1..15 characters"},
      {"tun_name = \"\"\n", "ip.tun_name", "1..15 characters"},
      {"mtu = 1000\n", "ip.mtu", "1280..65535"},
      {"max_sessions = 0\n", "ip.max_sessions", "1..1000000"},
      {"max_sessions_per_user = 0\n", "ip.max_sessions_per_user", "1..1000000"},
      {"queue_packets = 0\n", "ip.queue_packets", "1..65536"},
      {"lease_grace = \"soon\"\n", "ip.lease_grace", ""},
      {"masquerade = \"yes\"\n", "ip.masquerade", "expected true or false"},
      {"colour = 1\n", "ip.colour", "unknown key"},
  };
  for (const Case& c : cases) {
    std::string e = ipError(c.lines);
    EXPECT_NE(e.find(c.key + ": "), std::string::npos) << c.lines << " -> " << e;
    EXPECT_NE(e.find(c.expect), std::string::npos) << c.lines << " -> " << e;
  }
  auto r = parseServerConfig(kBase + "ip = 3\n" + kUsers, "srv.toml", "");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("ip: expected a table"), std::string::npos) << r.error().message;
}

}  // namespace
}  // namespace vt::config
