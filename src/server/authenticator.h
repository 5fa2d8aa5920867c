// Authenticator: finds the user for a request UUID in constant time. Every
// configured user is compared, with no early exit, so that the response
// time does not tell a prober how many bytes of a UUID were right or where
// in the list a user sits.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "config/server_config.h"

namespace vt::server {

class Authenticator {
 public:
  explicit Authenticator(const std::vector<config::ServerUser>& users);

  // nullptr when no user has this UUID.
  const config::ServerUser* find(const std::array<uint8_t, 16>& uuid) const noexcept;

 private:
  std::vector<config::ServerUser> users_;
};

}  // namespace vt::server
