// A minimal blocking rtnetlink client: build one request (header, fixed
// part, attributes), send it, wait for the kernel's ACK. Used for the few
// configuration calls the platform layer makes (rules, routes); nothing on
// the data plane goes through here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/error.h"

namespace vt::platform {

// One rtnetlink request with NLM_F_REQUEST | NLM_F_ACK set.
class NetlinkRequest {
 public:
  NetlinkRequest(uint16_t type, uint16_t flags, const void* body, size_t bodyLen);

  void addAttr(uint16_t type, const void* data, size_t len);
  void addU32(uint16_t type, uint32_t value) { addAttr(type, &value, sizeof value); }

  const uint8_t* data() const noexcept { return buf_.data(); }
  size_t size() const noexcept;
  void setSeq(uint32_t seq) noexcept;
  uint32_t seq() const noexcept;

 private:
  std::vector<uint8_t> buf_;
};

// Owns a NETLINK_ROUTE socket bound to the caller's network namespace (the
// one current when open() ran).
class NetlinkSocket {
 public:
  static Result<NetlinkSocket> open();

  NetlinkSocket(NetlinkSocket&& other) noexcept : fd_(other.fd_), seq_(other.seq_) {
    other.fd_ = -1;
  }
  NetlinkSocket& operator=(NetlinkSocket&&) = delete;
  NetlinkSocket(const NetlinkSocket&) = delete;
  NetlinkSocket& operator=(const NetlinkSocket&) = delete;
  ~NetlinkSocket();

  // Sends `req` and waits for its ACK. Returns 0 or a positive errno (the
  // kernel's answer, or the local send/recv failure).
  int transact(NetlinkRequest& req) noexcept;

 private:
  explicit NetlinkSocket(int fd) noexcept : fd_(fd) {}
  int fd_;
  uint32_t seq_ = 0;
};

}  // namespace vt::platform
