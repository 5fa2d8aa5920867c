// [metrics] of the server config: off by default, a good address, and
// errors naming the file, the key and what was expected.
#include <gtest/gtest.h>

#include <string>

#include "config/server_config.h"

namespace vt::config {
namespace {

const std::string kBase = "listen = \"127.0.0.1:1\"\n";
const std::string kUsers = "[[users]]\nuuid = \"a684455c-b14f-11ea-bf0d-42010aaa0003\"\n";

Result<ServerConfig> parseMetrics(const std::string& lines) {
  return parseServerConfig(kBase + "[metrics]\n" + lines + kUsers, "srv.toml", "/etc/v");
}

TEST(ServerMetricsConfig, OffByDefault) {
  auto r = parseServerConfig(kBase + kUsers, "srv.toml", "");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE(r.value().metrics.listen.has_value());
}

TEST(ServerMetricsConfig, Listen) {
  auto r = parseMetrics("listen = \"127.0.0.1:9105\"\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_TRUE(r.value().metrics.listen.has_value());
  EXPECT_EQ(r.value().metrics.listen->host, "127.0.0.1");
  EXPECT_EQ(r.value().metrics.listen->port, 9105);
  auto v6 = parseMetrics("listen = \"[::1]:9105\"\n");
  ASSERT_TRUE(v6.ok()) << v6.error().message;
  EXPECT_EQ(v6.value().metrics.listen->toString(), "[::1]:9105");
}

TEST(ServerMetricsConfig, Errors) {
  struct Case {
    std::string lines, key, expect;
  };
  const Case cases[] = {
      {"listen = \"localhost:9105\"\n", "metrics.listen", "IP literal and port 1..65535"},
      {"listen = \"127.0.0.1\"\n", "metrics.listen", "an address like \"127.0.0.1:9105\""},
      {"listen = \"127.0.0.1:0\"\n", "metrics.listen", "got \"127.0.0.1:0\""},
      {"listen = 9105\n", "metrics.listen", "an address like"},
      {"", "metrics.listen", "missing"},
      {"listen = \"127.0.0.1:9105\"\npath = \"/m\"\n", "metrics.path", "unknown key"},
  };
  for (const Case& c : cases) {
    auto r = parseMetrics(c.lines);
    ASSERT_FALSE(r.ok()) << c.lines;
    const std::string& e = r.error().message;
    EXPECT_EQ(r.error().code, Errc::kConfig);
    EXPECT_EQ(e.rfind("srv.toml:", 0), 0u) << e;
    EXPECT_NE(e.find(c.key + ": "), std::string::npos) << c.lines << " -> " << e;
    EXPECT_NE(e.find(c.expect), std::string::npos) << c.lines << " -> " << e;
  }
  auto r = parseServerConfig(kBase + "metrics = \"127.0.0.1:9105\"\n" + kUsers, "srv.toml", "");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("metrics: expected a table"), std::string::npos)
      << r.error().message;
}

}  // namespace
}  // namespace vt::config
