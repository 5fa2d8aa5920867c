// The client config tests' shared helpers: parse a document as c.toml in
// /etc/vt, and expect an error (Errc::kConfig) containing every piece.
#pragma once

#include <gtest/gtest.h>

#include <initializer_list>
#include <string>

#include "config/client_config.h"

namespace vt::config::client_test {

inline Result<ClientConfig> parse(const std::string& text) {
  return parseClientConfig(text, "c.toml", "/etc/vt");
}

inline void expectError(const std::string& text, std::initializer_list<std::string> pieces) {
  auto r = parse(text);
  ASSERT_FALSE(r.ok()) << text;
  EXPECT_EQ(r.error().code, Errc::kConfig);
  for (const auto& p : pieces) {
    EXPECT_NE(r.error().message.find(p), std::string::npos)
        << "missing '" << p << "' in: " << r.error().message;
  }
}

}  // namespace vt::config::client_test
