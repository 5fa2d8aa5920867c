#include "tun_device.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
// <net/if.h> before the kernel headers: they then skip their own copies.
#include <linux/if_tun.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <vector>

namespace vt::platform {
namespace {

Error sysError(const std::string& dev, const char* call, int err) {
  return Error(Errc::kIo, "tun " + (dev.empty() ? std::string("?") : dev) + ": " + call +
                              " failed: " + std::strerror(err));
}

// A netlink request: header, fixed part, then rtattrs.
class NlRequest {
 public:
  NlRequest(uint16_t type, uint16_t flags, const void* body, size_t bodyLen) {
    buf_.resize(NLMSG_SPACE(bodyLen));
    auto* h = reinterpret_cast<nlmsghdr*>(buf_.data());
    h->nlmsg_type = type;
    h->nlmsg_flags = static_cast<uint16_t>(NLM_F_REQUEST | NLM_F_ACK | flags);
    h->nlmsg_seq = 1;
    std::memcpy(NLMSG_DATA(h), body, bodyLen);
    h->nlmsg_len = static_cast<uint32_t>(NLMSG_LENGTH(bodyLen));
  }
  void addAttr(uint16_t type, const void* data, size_t len) {
    const size_t at = NLMSG_ALIGN(header()->nlmsg_len);
    buf_.resize(at + RTA_SPACE(len));
    auto* rta = reinterpret_cast<rtattr*>(buf_.data() + at);
    rta->rta_type = type;
    rta->rta_len = static_cast<uint16_t>(RTA_LENGTH(len));
    std::memcpy(RTA_DATA(rta), data, len);
    header()->nlmsg_len = static_cast<uint32_t>(at + RTA_LENGTH(len));
  }
  const uint8_t* data() { return buf_.data(); }
  size_t size() { return header()->nlmsg_len; }

 private:
  nlmsghdr* header() { return reinterpret_cast<nlmsghdr*>(buf_.data()); }
  std::vector<uint8_t> buf_;
};

// Sends one request and waits for its ACK; returns 0 or an errno.
int nlTransact(int sock, NlRequest& req) {
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (sendto(sock, req.data(), req.size(), 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel) <
      0) {
    return errno;
  }
  alignas(nlmsghdr) uint8_t reply[8192];
  for (;;) {
    ssize_t n = recv(sock, reply, sizeof reply, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    size_t left = static_cast<size_t>(n);
    for (auto* h = reinterpret_cast<nlmsghdr*>(reply); NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
      if (h->nlmsg_type == NLMSG_ERROR) {
        if (h->nlmsg_len < NLMSG_LENGTH(sizeof(nlmsgerr))) return EPROTO;
        const auto* e = static_cast<const nlmsgerr*>(NLMSG_DATA(h));
        return -e->error;  // 0 is the ACK
      }
    }
  }
}

}  // namespace

constexpr uint32_t kTunQueueLength = 4096;

Status configureInterface(int ifindex, const std::string& dev, const TunConfig& config) {
  int sock = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (sock < 0) return sysError(dev, "socket(NETLINK_ROUTE)", errno);
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{sock};

  auto addAddress = [&](int family, const std::string& text, uint8_t prefix) -> Status {
    uint8_t addr[16];
    if (inet_pton(family, text.c_str(), addr) != 1) {
      return Error(Errc::kInvalidArgument, "tun " + dev + ": bad address \"" + text + "\"");
    }
    const uint8_t maxPrefix = family == AF_INET ? 32 : 128;
    if (prefix > maxPrefix) {
      return Error(Errc::kInvalidArgument,
                   "tun " + dev + ": prefix /" + std::to_string(prefix) + " too long for " + text);
    }
    const size_t len = family == AF_INET ? 4 : 16;
    ifaddrmsg ifa{};
    ifa.ifa_family = static_cast<uint8_t>(family);
    ifa.ifa_prefixlen = prefix;
    ifa.ifa_index = static_cast<uint32_t>(ifindex);
    // No duplicate address detection on a point-to-point TUN: the address
    // is usable at once instead of "tentative" for a second or two.
    ifa.ifa_flags = family == AF_INET6 ? IFA_F_NODAD : 0;
    NlRequest req(RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE, &ifa, sizeof ifa);
    req.addAttr(IFA_LOCAL, addr, len);
    req.addAttr(IFA_ADDRESS, addr, len);
    int err = nlTransact(sock, req);
    if (err != 0)
      return sysError(dev, family == AF_INET ? "RTM_NEWADDR (IPv4)" : "RTM_NEWADDR (IPv6)", err);
    return Status::okStatus();
  };

  // MTU first, then addresses (IPv6 needs MTU >= 1280 to stay enabled),
  // then link up.
  {
    ifinfomsg ifi{};
    ifi.ifi_family = AF_UNSPEC;
    ifi.ifi_index = ifindex;
    NlRequest req(RTM_NEWLINK, 0, &ifi, sizeof ifi);
    uint32_t mtu = config.mtu;
    req.addAttr(IFLA_MTU, &mtu, sizeof mtu);
    // The queue between the kernel and our reads (the default 500 drops a
    // burst of an app's datagrams to many peers before we see them; each
    // slot is a pointer, so 4096 cost 32 KiB).
    uint32_t txqlen = kTunQueueLength;
    req.addAttr(IFLA_TXQLEN, &txqlen, sizeof txqlen);
    int err = nlTransact(sock, req);
    if (err != 0) return sysError(dev, "RTM_NEWLINK (mtu)", err);
  }
  if (!config.ipv4.empty()) {
    Status st = addAddress(AF_INET, config.ipv4, config.ipv4Prefix);
    if (!st.ok()) return st;
  }
  if (!config.ipv6.empty()) {
    Status st = addAddress(AF_INET6, config.ipv6, config.ipv6Prefix);
    if (!st.ok()) return st;
  }
  if (config.up) {
    ifinfomsg ifi{};
    ifi.ifi_family = AF_UNSPEC;
    ifi.ifi_index = ifindex;
    ifi.ifi_flags = IFF_UP;
    ifi.ifi_change = IFF_UP;
    NlRequest req(RTM_NEWLINK, 0, &ifi, sizeof ifi);
    int err = nlTransact(sock, req);
    if (err != 0) return sysError(dev, "RTM_NEWLINK (up)", err);
  }
  return Status::okStatus();
}

Result<std::unique_ptr<TunDevice>> TunDevice::create(const TunConfig& config) {
  if (config.name.size() >= IFNAMSIZ) {
    return Error(Errc::kInvalidArgument, "tun " + config.name + ": name longer than " +
                                             std::to_string(IFNAMSIZ - 1) + " characters");
  }
  if (config.queues == 0 || config.queues > 256) {
    return Error(Errc::kInvalidArgument, "tun " + config.name + ": " +
                                             std::to_string(config.queues) +
                                             " queues (expected 1..256)");
  }
  const short flags = IFF_TUN | IFF_NO_PI | (config.queues > 1 ? IFF_MULTI_QUEUE : 0) |
                      (config.offload ? IFF_VNET_HDR : 0);
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return sysError(config.name, "open(/dev/net/tun)", errno);
  ifreq ifr{};
  ifr.ifr_flags = flags;
  std::memcpy(ifr.ifr_name, config.name.data(), config.name.size());
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    int err = errno;
    ::close(fd);
    return sysError(config.name, "ioctl(TUNSETIFF)", err);
  }
  std::string name(ifr.ifr_name, strnlen(ifr.ifr_name, IFNAMSIZ));
  int index = static_cast<int>(if_nametoindex(name.c_str()));
  if (index == 0) {
    int err = errno;
    ::close(fd);
    return sysError(name, "if_nametoindex", err);
  }
  std::unique_ptr<TunDevice> dev(new TunDevice(fd, name, index));
  if (config.offload) {
    // The header size is per device and 10 by default; set it all the same
    // so a kernel default never decides our framing. The offloads are per
    // device too (every queue gets them).
    int hdr = static_cast<int>(kVnetHeaderBytes);
    if (ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0) return sysError(name, "ioctl(TUNSETVNETHDRSZ)", errno);
    unsigned long offloads = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6;
    if (ioctl(fd, TUNSETOFFLOAD, offloads) < 0) {
      return sysError(name, "ioctl(TUNSETOFFLOAD) (set tun.offload = false on this kernel)", errno);
    }
    dev->vnetHeader_ = true;
  }
  // The other queues attach to the interface by its (now known) name.
  for (uint32_t q = 1; q < config.queues; ++q) {
    int qfd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (qfd < 0) return sysError(name, ("open(/dev/net/tun) for queue " + std::to_string(q)).c_str(), errno);
    ifreq qr{};
    qr.ifr_flags = flags;
    std::memcpy(qr.ifr_name, name.data(), name.size());
    if (ioctl(qfd, TUNSETIFF, &qr) < 0) {
      int err = errno;
      ::close(qfd);
      return sysError(name, ("ioctl(TUNSETIFF) for queue " + std::to_string(q)).c_str(), err);
    }
    dev->extraFds_.push_back(qfd);
  }
  Status st = configureInterface(index, name, config);
  if (!st.ok()) return st.error();
  return dev;
}

Result<std::unique_ptr<TunDevice>> TunDevice::adopt(int fd) {
  int own = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (own < 0) return sysError("fd " + std::to_string(fd), "fcntl(F_DUPFD_CLOEXEC)", errno);
  int flags = fcntl(own, F_GETFL);
  if (flags < 0 || fcntl(own, F_SETFL, flags | O_NONBLOCK) < 0) {
    int err = errno;
    ::close(own);
    return sysError("fd " + std::to_string(fd), "fcntl(O_NONBLOCK)", err);
  }
  // The name is a nicety for logs: an fd from a sandbox may not answer.
  std::string name;
  int index = 0;
  ifreq ifr{};
  if (ioctl(own, TUNGETIFF, &ifr) == 0) {
    name.assign(ifr.ifr_name, strnlen(ifr.ifr_name, IFNAMSIZ));
    index = static_cast<int>(if_nametoindex(name.c_str()));
  }
  return std::unique_ptr<TunDevice>(new TunDevice(own, name, index));
}

TunDevice::~TunDevice() {
  for (int q : extraFds_) ::close(q);
  if (fd_ >= 0) ::close(fd_);
}

ssize_t TunDevice::readPacket(uint8_t* buf, size_t cap) noexcept {
  for (;;) {
    ssize_t n = ::read(fd_, buf, cap);
    if (n >= 0) return n;
    if (errno != EINTR) return -errno;
  }
}

ssize_t TunDevice::writePacket(const iovec* iov, int iovCount) noexcept {
  for (;;) {
    ssize_t n = ::writev(fd_, iov, iovCount);
    if (n >= 0) return n;
    if (errno != EINTR) return -errno;
  }
}

}  // namespace vt::platform
