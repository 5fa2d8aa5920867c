// ClientConfig [route.gateway] table (docs/client.md, docs/routing.md
// "Gateway mode"): the keys, their defaults, and errors that name the file,
// the key and what was expected.
#include <gtest/gtest.h>

#include <string>

#include "config/client_config.h"
#include "unit/config/client_config_test_util.h"

namespace vt::config {
namespace {

using client_test::expectError;
using client_test::parse;

constexpr const char* kServer = R"(
[server]
address = "198.18.0.2:443"
uuid = "a684455c-b14f-11ea-bf0d-42010aaa0003"
)";

TEST(ClientGatewayConfig, OffByDefault) {
  auto r = parse(std::string(kServer) + "[route]\nauto_route = true\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE(r.value().route.gateway);
}

TEST(ClientGatewayConfig, InterfacesAndDefaults) {
  auto r = parse(std::string(kServer) +
                 "[route]\nauto_route = true\n[route.gateway]\ninterfaces = [\"lan0\", \"br-lan\"]\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  const auto& g = r.value().route.gateway;
  ASSERT_TRUE(g);
  ASSERT_EQ(g->interfaces.size(), 2u);
  EXPECT_EQ(g->interfaces[0], "lan0");
  EXPECT_EQ(g->interfaces[1], "br-lan");
  EXPECT_TRUE(g->ipv6);
  // The inline form and ipv6 = false.
  r = parse(std::string(kServer) +
            "[route]\nauto_route = true\ngateway = { interfaces = [\"lan0\"], ipv6 = false }\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_TRUE(r.value().route.gateway);
  EXPECT_FALSE(r.value().route.gateway->ipv6);
}

TEST(ClientGatewayConfig, ErrorsNameFileLineKeyAndExpectation) {
  const std::string s = std::string(kServer) + "[route]\nauto_route = true\n";  // 6 lines
  expectError(std::string(kServer) + "[route]\n[route.gateway]\ninterfaces = [\"lan0\"]\n",
              {"c.toml:6:1", "route.gateway", "route.auto_route = true"});
  expectError(s + "keep_lan = false\n[route.gateway]\ninterfaces = [\"lan0\"]\n",
              {"route.gateway", "route.keep_lan = true"});
  expectError(s + "[route.gateway]\n", {"c.toml:7:1", "route.gateway.interfaces", "missing"});
  expectError(s + "[route.gateway]\ninterfaces = []\n",
              {"c.toml:8:14", "route.gateway.interfaces", "at least one"});
  expectError(s + "[route.gateway]\ninterfaces = \"lan0\"\n",
              {"route.gateway.interfaces", "expected an array", "got a string"});
  expectError(s + "[route.gateway]\ninterfaces = [\"lan0\", 3]\n",
              {"c.toml:8:23", "route.gateway.interfaces[1]", "interface name", "got an integer"});
  expectError(s + "[route.gateway]\ninterfaces = [\"a-very-long-interface\"]\n",
              {"route.gateway.interfaces[0]", "1..15", "a-very-long-interface"});
  expectError(s + "[route.gateway]\ninterfaces = [\"lo\"]\n",
              {"route.gateway.interfaces[0]", "not lo"});
  expectError(s + "[route.gateway]\ninterfaces = [\"lan0\", \"lan0\"]\n",
              {"route.gateway.interfaces[1]", "once", "lan0"});
  expectError("[tun]\nname = \"vt7\"\n" + s + "[route.gateway]\ninterfaces = [\"vt7\"]\n",
              {"c.toml:10:14", "route.gateway.interfaces", "not the TUN", "vt7"});
  expectError(s + "[route.gateway]\ninterfaces = [\"lan0\"]\nipv6 = \"yes\"\n",
              {"c.toml:9:8", "route.gateway.ipv6", "true or false"});
  expectError(s + "[route.gateway]\ninterfaces = [\"lan0\"]\nlans = 1\n",
              {"c.toml:9:1", "route.gateway.lans", "unknown key", "interfaces, ipv6"});
  expectError(s + "gateway = true\n", {"c.toml:7:11", "route.gateway", "expected a table"});
}

}  // namespace
}  // namespace vt::config
