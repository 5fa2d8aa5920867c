#include "netlink.h"

#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstring>
#include <string>

namespace vt::platform {

NetlinkRequest::NetlinkRequest(uint16_t type, uint16_t flags, const void* body, size_t bodyLen) {
  buf_.resize(NLMSG_SPACE(bodyLen));
  nlmsghdr h{};
  h.nlmsg_type = type;
  h.nlmsg_flags = static_cast<uint16_t>(NLM_F_REQUEST | NLM_F_ACK | flags);
  h.nlmsg_len = static_cast<uint32_t>(NLMSG_LENGTH(bodyLen));
  std::memcpy(buf_.data(), &h, sizeof h);
  std::memcpy(buf_.data() + NLMSG_HDRLEN, body, bodyLen);
}

void NetlinkRequest::addAttr(uint16_t type, const void* data, size_t len) {
  const size_t at = NLMSG_ALIGN(size());
  buf_.resize(at + RTA_SPACE(len));
  rtattr rta{};
  rta.rta_type = type;
  rta.rta_len = static_cast<uint16_t>(RTA_LENGTH(len));
  std::memcpy(buf_.data() + at, &rta, sizeof rta);
  std::memcpy(buf_.data() + at + RTA_LENGTH(0), data, len);
  const uint32_t total = static_cast<uint32_t>(at + RTA_LENGTH(len));
  std::memcpy(buf_.data() + offsetof(nlmsghdr, nlmsg_len), &total, sizeof total);
}

size_t NetlinkRequest::size() const noexcept {
  uint32_t len;
  std::memcpy(&len, buf_.data() + offsetof(nlmsghdr, nlmsg_len), sizeof len);
  return len;
}

void NetlinkRequest::setSeq(uint32_t seq) noexcept {
  std::memcpy(buf_.data() + offsetof(nlmsghdr, nlmsg_seq), &seq, sizeof seq);
}

uint32_t NetlinkRequest::seq() const noexcept {
  uint32_t seq;
  std::memcpy(&seq, buf_.data() + offsetof(nlmsghdr, nlmsg_seq), sizeof seq);
  return seq;
}

Result<NetlinkSocket> NetlinkSocket::open() {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) {
    return Error(Errc::kIo, std::string("socket(NETLINK_ROUTE) failed: ") + std::strerror(errno));
  }
  // A kernel that never answers must not hang start-up or shutdown.
  timeval tv{};
  tv.tv_sec = 5;
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_nl local{};
  local.nl_family = AF_NETLINK;
  if (bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local) < 0) {
    int err = errno;
    ::close(fd);
    return Error(Errc::kIo, std::string("bind(NETLINK_ROUTE) failed: ") + std::strerror(err));
  }
  return NetlinkSocket(fd);
}

NetlinkSocket::~NetlinkSocket() {
  if (fd_ >= 0) ::close(fd_);
}

int NetlinkSocket::transact(NetlinkRequest& req) noexcept {
  req.setSeq(++seq_);
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  for (;;) {
    if (sendto(fd_, req.data(), req.size(), 0, reinterpret_cast<sockaddr*>(&kernel),
               sizeof kernel) >= 0) {
      break;
    }
    if (errno != EINTR) return errno;
  }
  alignas(nlmsghdr) uint8_t reply[8192];
  for (;;) {
    ssize_t n = recv(fd_, reply, sizeof reply, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;  // EAGAIN here means the 5 s receive timeout expired
    }
    size_t left = static_cast<size_t>(n);
    for (auto* h = reinterpret_cast<nlmsghdr*>(reply); NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
      // Answers to earlier requests that timed out are skipped by seq.
      if (h->nlmsg_seq != req.seq() || h->nlmsg_type != NLMSG_ERROR) continue;
      if (h->nlmsg_len < NLMSG_LENGTH(sizeof(nlmsgerr))) return EPROTO;
      nlmsgerr e;
      std::memcpy(&e, NLMSG_DATA(h), sizeof e);
      return -e.error;  // 0 is the ACK
    }
  }
}

}  // namespace vt::platform
