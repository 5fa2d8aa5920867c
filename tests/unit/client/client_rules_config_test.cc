// [[route.rules]] in the client config (docs/client.md "Routing rules"):
// the rules reach a RuleSet that decides as written, and every mistake is
// reported with the file, line, route.rules[N].<key> and what was expected.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "config/client_config.h"
#include "route/geoip.h"
#include "route/rule_set.h"

namespace vt::config {
namespace {

constexpr const char* kBase = R"(
[server]
address = "198.18.0.2:443"
uuid = "a684455c-b14f-11ea-bf0d-42010aaa0003"
)";

Result<ClientConfig> parse(const std::string& route) {
  return parseClientConfig(std::string(kBase) + route, "c.toml", "/etc/vt");
}

void expectError(const std::string& route, std::initializer_list<std::string> pieces) {
  auto r = parse(route);
  ASSERT_FALSE(r.ok()) << route;
  EXPECT_EQ(r.error().code, Errc::kConfig);
  for (const auto& p : pieces) {
    EXPECT_NE(r.error().message.find(p), std::string::npos)
        << "missing '" << p << "' in: " << r.error().message;
  }
}

route::Decision decide(const ClientConfig& c, const char* ip, uint16_t port,
                       route::Network net = route::Network::kTcp) {
  route::Query q;
  q.ip = route::IpAddress::parse(ip);
  q.port = port;
  q.network = net;
  return c.route.rules.set->match(q);
}

TEST(ClientRulesConfig, NoRulesNoRuleSet) {
  auto r = parse("");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value().route.rules.set, nullptr);
  r = parse("[route]\ndefault_action = \"proxy\"\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value().route.rules.set, nullptr);  // nothing to decide: no lookups
}

TEST(ClientRulesConfig, RulesDecideInOrder) {
  auto r = parse(R"(
[route]
default_action = "direct"
[[route.rules]]
ip_cidr = ["198.18.1.0/24", "2001:db8:1::/64"]
port = [443, "8000-8100"]
action = "proxy"
[[route.rules]]
ip_cidr = "198.18.0.0/16"
network = "udp"
action = "block"
block_style = "drop"
[[route.rules]]
port = 25
action = "block"
)");
  ASSERT_TRUE(r.ok()) << r.error().message;
  const ClientConfig& c = r.value();
  ASSERT_NE(c.route.rules.set, nullptr);
  EXPECT_EQ(c.route.rules.count, 3u);
  EXPECT_EQ(c.route.rules.default_action, "direct");
  EXPECT_EQ(decide(c, "198.18.1.9", 443).action, route::Action::kProxy);
  EXPECT_EQ(decide(c, "198.18.1.9", 8050).rule, 0u);
  EXPECT_EQ(decide(c, "2001:db8:1::5", 443).action, route::Action::kProxy);
  auto d = decide(c, "198.18.1.9", 53, route::Network::kUdp);
  EXPECT_EQ(d.action, route::Action::kBlock);
  EXPECT_EQ(d.block_style, route::BlockStyle::kDrop);
  EXPECT_EQ(decide(c, "198.18.1.9", 53).action, route::Action::kDirect);  // TCP: the default
  d = decide(c, "203.0.113.1", 25);
  EXPECT_EQ(d.action, route::Action::kBlock);
  EXPECT_EQ(d.block_style, route::BlockStyle::kReset);
  EXPECT_FALSE(decide(c, "203.0.113.1", 80).matchedRule());
}

TEST(ClientRulesConfig, DomainKindsAndDefaultBlockStyle) {
  auto r = parse(R"(
[route]
block_style = "drop"
[[route.rules]]
domain = ["ads.example"]
domain_suffix = ["tracker.example"]
domain_keyword = "doubleclick"
domain_regex = ['^ad[0-9]+\.']
action = "block"
)");
  ASSERT_TRUE(r.ok()) << r.error().message;
  route::Query q;
  q.domain = "x.tracker.example";
  EXPECT_EQ(r.value().route.rules.set->match(q).action, route::Action::kBlock);
  q.domain = "ad42.example";
  EXPECT_EQ(r.value().route.rules.set->match(q).action, route::Action::kBlock);
  q.domain = "example";
  EXPECT_EQ(r.value().route.rules.set->match(q).action, route::Action::kProxy);
}

TEST(ClientRulesConfig, ErrorsNameTheRuleKeyAndLine) {
  expectError("[route]\n[[route.rules]]\nip_cidr = \"10.0.0.1/8\"\naction = \"direct\"\n",
              {"c.toml:", "route.rules[1]", "ip_cidr", "10.0.0.1/8"});
  expectError(
      "[route]\n[[route.rules]]\nport = 1\naction = \"direct\"\n[[route.rules]]\nport = 70000\n"
      "action = \"direct\"\n",
      {"c.toml:10:", "route.rules[2].port", "0..65535", "70000"});
  expectError("[route]\n[[route.rules]]\nport = \"90-80\"\naction = \"proxy\"\n",
              {"route.rules[1]", "port entry \"90-80\""});
  expectError("[route]\n[[route.rules]]\nip_cidr = \"10.0.0.0/8\"\n",
              {"c.toml:6:", "route.rules[1].action", "missing", "\"proxy\", \"direct\" or \"block\""});
  expectError("[route]\n[[route.rules]]\nip_cidr = \"10.0.0.0/8\"\naction = \"reject\"\n",
              {"route.rules[1]", "action \"reject\""});
  expectError("[route]\n[[route.rules]]\nip_cidr = \"10.0.0.0/8\"\naction = \"proxy\"\n"
              "block_style = \"drop\"\n",
              {"route.rules[1].block_style", "only for action = \"block\""});
  expectError("[route]\n[[route.rules]]\naction = \"proxy\"\n",
              {"route.rules[1]", "no match conditions"});
  expectError("[route]\n[[route.rules]]\nnetwork = \"icmp\"\naction = \"block\"\n",
              {"route.rules[1]", "network entry \"icmp\"", "tcp or udp"});
  expectError("[route]\n[[route.rules]]\ndomain = []\naction = \"block\"\n",
              {"route.rules[1].domain", "empty array"});
  expectError("[route]\n[[route.rules]]\ndomain = [1]\naction = \"block\"\n",
              {"route.rules[1].domain", "a string or an array of strings", "an integer"});
  expectError("[route]\n[[route.rules]]\ndomain_regex = \"a[b\"\naction = \"block\"\n",
              {"route.rules[1]", "domain_regex entry \"a[b\""});
  expectError("[route]\n[[route.rules]]\ndomian = \"x\"\naction = \"block\"\n",
              {"route.rules[1].domian", "unknown key"});
  expectError("[route]\nrules = 5\n", {"route.rules", "[[route.rules]]"});
  expectError("[route]\ndefault_action = \"drop\"\n",
              {"c.toml:6:", "route.default_action", "\"proxy\", \"direct\" or \"block\"", "\"drop\""});
  expectError("[route]\nblock_style = \"silent\"\n",
              {"route.block_style", "\"reset\" or \"drop\"", "\"silent\""});
}

TEST(ClientRulesConfig, GeoipRulesOpenTheDatabase) {
  const std::string dir = testing::TempDir();
  const std::string db = "vt-rules-" + std::to_string(getpid()) + ".mmdb";
  const std::string cmd = std::string("python3 \"") + VT_SOURCE_DIR +
                          "/tests/integration/tools/mmdb_write.py\" \"" + dir + db +
                          "\" 198.18.1.0/24=ZZ 2001:db8:1::/48=ZZ 198.18.3.0/24=YY";
  int rc = std::system(cmd.c_str());
  ASSERT_TRUE(rc != -1 && WIFEXITED(rc) && WEXITSTATUS(rc) == 0) << cmd;
  // Relative to the config file's directory.
  auto r = parseClientConfig(std::string(kBase) + "[route]\ngeoip_database = \"" + db +
                                 "\"\n[[route.rules]]\ngeoip = [\"zz\"]\naction = \"direct\"\n",
                             "c.toml", dir);
  std::remove((dir + db).c_str());  // mapped: the open database outlives the name
  ASSERT_TRUE(r.ok()) << r.error().message;
  const ClientConfig& c = r.value();
  ASSERT_NE(c.route.rules.geoip, nullptr);
  EXPECT_NE(c.route.rules.geoip_path.find(db), std::string::npos);
  EXPECT_EQ(c.route.rules.geoip_path.rfind(dir.substr(0, dir.size() - 1), 0), 0u);
  char buf[3];
  route::Query q;
  q.ip = route::IpAddress::parse("198.18.1.7");
  q.country = c.route.rules.geoip->country(*q.ip, buf);
  EXPECT_EQ(q.country, "ZZ");
  EXPECT_EQ(c.route.rules.set->match(q).action, route::Action::kDirect);
  q.ip = route::IpAddress::parse("198.18.3.7");
  q.country = c.route.rules.geoip->country(*q.ip, buf);
  EXPECT_EQ(c.route.rules.set->match(q).action, route::Action::kProxy);

  expectError("[route]\n[[route.rules]]\nport = 1\naction = \"direct\"\n[[route.rules]]\n"
              "geoip = \"ZZ\"\naction = \"direct\"\n",
              {"c.toml:9:", "route.rules[2].geoip", "needs route.geoip_database"});
  expectError("[route]\ngeoip_database = \"/nonexistent/x.mmdb\"\n[[route.rules]]\ngeoip = \"ZZ\"\n"
              "action = \"direct\"\n",
              {"c.toml:6:", "route.geoip_database", "/nonexistent/x.mmdb"});
  expectError("[route]\n[[route.rules]]\ngeoip = \"ZZZ\"\naction = \"direct\"\n",
              {"route.rules[1]", "geoip entry \"ZZZ\"", "two-letter"});
}

TEST(ClientRulesConfig, DirectResolverNeedsTheTunnelOne) {
  auto r = parse("[dns]\nhijack = true\nresolver = \"198.18.1.53:53\"\n"
                 "direct_resolver = \"198.18.6.53:53\"\n[route]\ndial_by_name = true\n"
                 "want_ip_ttl = \"5m\"\n[[route.rules]]\ndomain_suffix = \"lan\"\naction = \"direct\"\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_TRUE(r.value().dns.direct_resolver);
  EXPECT_EQ(r.value().dns.direct_resolver->port, 53);
  EXPECT_TRUE(r.value().route.rules.dial_by_name);
  EXPECT_EQ(r.value().route.rules.want_ip_ttl_ms, 300'000u);
  expectError("[dns]\ndirect_resolver = \"198.18.6.53:53\"\n",
              {"c.toml:6:", "dns.direct_resolver", "needs dns.resolver"});
  expectError("[dns]\nresolver = \"198.18.1.53:53\"\ndirect_resolver = \"dns.lan:53\"\n",
              {"dns.direct_resolver", "an IP address and port", "dns.lan:53"});
  expectError("[route]\nwant_ip_ttl = \"soon\"\n", {"route.want_ip_ttl", "duration"});
  expectError("[route]\ndirect_interface = \"a/b\"\n", {"route.direct_interface", "interface name"});
  expectError("[tun]\nname = \"vt0\"\n[route]\ndirect_interface = \"vt0\"\n",
              {"route.direct_interface", "not the TUN"});
  expectError("[route]\ndial_by_name = 1\n", {"route.dial_by_name", "true or false"});
}

}  // namespace
}  // namespace vt::config
