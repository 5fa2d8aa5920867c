// NetworkMonitor: tells the client core that the network under the tunnel
// changed (Linux rtnetlink: links, addresses, routes), so that it can drop
// the server connections that can no longer work and re-dial. It only says
// "something changed"; what is usable now is read with usableAddresses().
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/error.h"

namespace vt::platform {

class NetworkMonitor {
 public:
  // A non-blocking NETLINK_ROUTE socket subscribed to link, IPv4/IPv6
  // address and route changes. Changes of `ignoreIfindex` (the TUN) and of
  // routing table `ignoreTable` (auto_route's own) do not count.
  static Result<std::unique_ptr<NetworkMonitor>> open(int ignoreIfindex, uint32_t ignoreTable);
  ~NetworkMonitor();
  NetworkMonitor(const NetworkMonitor&) = delete;
  NetworkMonitor& operator=(const NetworkMonitor&) = delete;

  int fd() const noexcept { return fd_; }
  // Reads every pending message; true if one of them was a change that
  // counts. Malformed messages are skipped (the kernel is trusted, but the
  // parser still checks every length).
  // `why` (if given) gets the first change that counted ("address removed
  // on ifindex 2").
  bool drain(std::string* why = nullptr);
  // Pure parser (tests, fuzzing): does this buffer of netlink messages
  // hold a change that counts?
  static bool countsAsChange(const uint8_t* buf, size_t len, int ignoreIfindex,
                             uint32_t ignoreTable, std::string* why = nullptr);

 private:
  NetworkMonitor(int fd, int ignoreIfindex, uint32_t ignoreTable) noexcept
      : fd_(fd), ignoreIfindex_(ignoreIfindex), ignoreTable_(ignoreTable) {}
  int fd_;
  int ignoreIfindex_;
  uint32_t ignoreTable_;
};

// The addresses (as text, "198.18.0.1", "2001:db8::1") of every interface
// that is up and running, except `ignoreIfindex`.
std::vector<std::string> usableAddresses(int ignoreIfindex);

}  // namespace vt::platform
