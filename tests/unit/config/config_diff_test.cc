// changedTomlKeys: what a reload reports as needing a restart.
#include "config/config_diff.h"

#include <gtest/gtest.h>

namespace vt::config {
namespace {

using Keys = std::vector<std::string>;

Keys diff(const char* a, const char* b, const Keys& live = {}) {
  auto r = changedTomlKeys(a, b, live);
  EXPECT_TRUE(r.ok()) << r.error().message;
  return r.ok() ? r.value() : Keys{"<error>"};
}

TEST(ConfigDiff, SameDocumentsNothing) {
  const char* doc = "log_level = \"info\"\n[tun]\nmtu = 1500\n[[route.rules]]\nip_cidr = [\"198.18.0.0/15\"]\naction = \"direct\"\n";
  EXPECT_EQ(diff(doc, doc), Keys{});
  // Formatting, comments and key order do not count.
  EXPECT_EQ(diff("[tun]\nmtu = 1500\nname = \"vt0\"\n", "# c\n[tun]\nname = 'vt0'\nmtu   = 1500\n"), Keys{});
}

TEST(ConfigDiff, KeysInTopLevelTablesOneByOne) {
  EXPECT_EQ(diff("[tun]\nmtu = 1500\nname = \"vt0\"\n[server]\naddress = \"a:1\"\n",
                 "[tun]\nmtu = 9000\nname = \"vt0\"\n[server]\naddress = \"b:1\"\n"),
            (Keys{"server.address", "tun.mtu"}));
  // Added and removed keys and tables.
  EXPECT_EQ(diff("[tun]\nmtu = 1500\n", "[tun]\nname = \"x\"\n[dns]\nhijack = true\n"),
            (Keys{"dns", "tun.name", "tun.mtu"}));
}

TEST(ConfigDiff, DeeperTablesAndArraysWhole) {
  const char* a = "[route]\nauto_route = true\n[[route.rules]]\nport = [80]\naction = \"block\"\n";
  const char* b = "[route]\nauto_route = true\n[[route.rules]]\nport = [443]\naction = \"block\"\n";
  EXPECT_EQ(diff(a, b), Keys{"route.rules"});
  EXPECT_EQ(diff(a, b, {"route.rules"}), Keys{});
  EXPECT_EQ(diff("[route.gateway]\ninterfaces = [\"a\"]\n", "[route.gateway]\ninterfaces = [\"b\"]\n"),
            Keys{"route.gateway"});
  EXPECT_EQ(diff("log_level = \"info\"\n", "log_level = \"debug\"\n", {"log_level"}), Keys{});
}

TEST(ConfigDiff, SyntaxErrorIsAnError) {
  auto r = changedTomlKeys("a = 1\n", "a = \n", {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kConfig);
}

}  // namespace
}  // namespace vt::config
