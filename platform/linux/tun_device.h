// TunDevice: a Linux TUN interface (IFF_TUN | IFF_NO_PI: each read/write is
// one bare IPv4/IPv6 packet). Either created and configured here (MTU,
// addresses, link up, over rtnetlink; no `ip` subprocess) or adopted from
// an fd someone else opened (Android VpnService, a supervisor): then dup'ed,
// so the caller keeps its own copy.
//
// The fd is non-blocking and close-on-exec; the owner polls it (libuv
// fd watcher) and calls readPacket until it returns -EAGAIN.
#pragma once

#include <sys/types.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"

namespace vt::platform {

struct TunConfig {
  std::string name;  // empty: the kernel picks ("tun%d")
  uint32_t mtu = 1500;
  std::string ipv4;  // e.g. "198.18.0.1"; empty: none
  uint8_t ipv4Prefix = 24;
  std::string ipv6;  // e.g. "2001:db8::1"; empty: none
  uint8_t ipv6Prefix = 64;
  bool up = true;
  // Queues (IFF_MULTI_QUEUE when more than one): one fd each; the kernel
  // spreads the packets it sends over them by a hash of the flow and keeps
  // a flow on the queue its answers were last written to.
  uint32_t queues = 1;
  // TCP segmentation offload from the kernel (docs/netstack.md "TUN
  // offload"): IFF_VNET_HDR, and TUNSETOFFLOAD with TUN_F_CSUM, TUN_F_TSO4
  // and TUN_F_TSO6. Every read and write then starts with a 10-byte
  // struct virtio_net_hdr (kVnetHeaderBytes), and a read may be one TCP
  // segment of up to 64 KiB (the app's TSO) whose checksum the kernel left
  // partial. Off: one plain packet per read and write.
  bool offload = false;
};

// sizeof(struct virtio_net_hdr), which TUNSETVNETHDRSZ sets (the default).
constexpr size_t kVnetHeaderBytes = 10;

class TunDevice {
 public:
  // Creates the interface and applies `config`.
  static Result<std::unique_ptr<TunDevice>> create(const TunConfig& config);
  // Uses an already open TUN fd (dup'ed; the caller still owns `fd`).
  static Result<std::unique_ptr<TunDevice>> adopt(int fd);

  ~TunDevice();
  TunDevice(const TunDevice&) = delete;
  TunDevice& operator=(const TunDevice&) = delete;

  int fd() const noexcept { return fd_; }
  // Queue i's fd (0: fd()); the device owns them all.
  size_t queues() const noexcept { return 1 + extraFds_.size(); }
  int queueFd(size_t i) const noexcept { return i == 0 ? fd_ : extraFds_[i - 1]; }
  const std::string& name() const noexcept { return name_; }  // empty if unknown
  int ifindex() const noexcept { return ifindex_; }
  // Reads and writes carry a virtio_net_hdr (TunConfig::offload took).
  bool vnetHeader() const noexcept { return vnetHeader_; }

  // Without a vnet header only (the server's IP exit).
  // One packet into buf; returns its length, or -errno (-EAGAIN: none
  // queued; -EMSGSIZE never happens: a too-long packet is truncated).
  ssize_t readPacket(uint8_t* buf, size_t cap) noexcept;
  // One packet gathered from iov; returns bytes written or -errno
  // (-EAGAIN: the kernel queue is full; drop, TCP retransmits).
  ssize_t writePacket(const iovec* iov, int iovCount) noexcept;

 private:
  TunDevice(int fd, std::string name, int ifindex) noexcept
      : fd_(fd), name_(std::move(name)), ifindex_(ifindex) {}
  int fd_;
  std::string name_;
  int ifindex_;
  std::vector<int> extraFds_;  // queues 1..n-1
  bool vnetHeader_ = false;
};

// rtnetlink configuration of an existing interface; exposed for tests and
// for adopting a TUN that still needs addresses.
Status configureInterface(int ifindex, const std::string& nameForErrors, const TunConfig& config);

}  // namespace vt::platform
