// [control] (docs/operations.md "Control socket") in the client's config:
// the keys, and errors that name the file, the key and what was expected.
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

TEST(ControlConfig, OffByDefault) {
  auto r = parse(kServer);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r.value().control.socket.empty());
  EXPECT_TRUE(r.value().control.group.empty());
}

TEST(ControlConfig, SocketRelativeToTheFileAndGroup) {
  auto r = parse(std::string(kServer) + "[control]\nsocket = \"run/ctl.sock\"\ngroup = \"adm\"\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value().control.socket, "/etc/vt/run/ctl.sock");
  EXPECT_EQ(r.value().control.group, "adm");
  r = parse(std::string(kServer) + "[control]\nsocket = \"/run/vless-tun/a.sock\"\n");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value().control.socket, "/run/vless-tun/a.sock");
}

TEST(ControlConfig, Errors) {
  expectError("control = 5\n" + std::string(kServer), {"c.toml", "control", "expected a table"});
  expectError(std::string(kServer) + "[control]\nsock = \"/x\"\n",
              {"c.toml:", "control.sock", "unknown key; expected one of: socket, group"});
  expectError(std::string(kServer) + "[control]\nsocket = 5\n", {"control.socket", "a path"});
  expectError(std::string(kServer) + "[control]\nsocket = \"\"\n", {"control.socket"});
  expectError(std::string(kServer) + "[control]\nsocket = \"/" + std::string(120, 'a') + "\"\n",
              {"control.socket", "at most 107 bytes"});
  expectError(std::string(kServer) + "[control]\ngroup = \"a b\"\n", {"control.group", "group name"});
  expectError(std::string(kServer) + "[control]\ngroup = \"\"\n", {"control.group"});
}

// Values are quoted in errors with their control characters shown, never
// sent to the terminal as they are (a NUL would also cut the message).
TEST(ConfigErrors, ControlCharactersInQuotedValuesAreEscaped) {
  auto r = parse("log_level = \"\\u001b[31mred\\u0000x\"\n" + std::string(kServer));
  ASSERT_FALSE(r.ok());
  const std::string& m = r.error().message;
  EXPECT_NE(m.find("\\x1b[31mred\\x00x"), std::string::npos) << m;
  for (unsigned char c : m) EXPECT_FALSE(c < 0x20 || c == 0x7f) << m;
}

}  // namespace
}  // namespace vt::config
