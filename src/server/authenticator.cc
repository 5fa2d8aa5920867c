#include "server/authenticator.h"

#include "core/bytes.h"

namespace vt::server {

Authenticator::Authenticator(const std::vector<config::ServerUser>& users) : users_(users) {}

const config::ServerUser* Authenticator::find(const std::array<uint8_t, 16>& uuid) const noexcept {
  // The index is selected with masks rather than a branch on the result.
  size_t found = 0;
  size_t any = 0;
  for (size_t i = 0; i < users_.size(); ++i) {
    size_t eq = constantTimeEqual(users_[i].uuid.data(), uuid.data(), uuid.size()) ? 1 : 0;
    size_t mask = 0 - eq;  // all ones when equal
    found = (found & ~mask) | (i & mask);
    any |= eq;
  }
  return any ? &users_[found] : nullptr;
}

}  // namespace vt::server
