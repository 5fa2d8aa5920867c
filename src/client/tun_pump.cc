#include "client/tun_pump.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/log.h"

namespace vt::client {

TunPump::TunPump(event::Loop& loop, int fd, netstack::NetStack& stack, size_t mtu)
    : fd_(fd), stack_(stack), mtu_(mtu < 576 ? 576 : mtu), watcher_(loop, fd) {}

TunPump::~TunPump() { watcher_.stop(); }

Status TunPump::start() {
  if (!watcher_.ok()) {
    return Error(Errc::kIo, "tun: cannot poll fd " + std::to_string(fd_) + ": error " +
                                std::to_string(watcher_.initStatus()));
  }
  watcher_.onReadable([this] { onReadable(); });
  return Status();
}

void TunPump::stop() { watcher_.stop(); }

void TunPump::onReadable() {
  for (int i = 0; i < kBatch; ++i) {
    netstack::InputBuffer buf = stack_.allocInput(mtu_);
    uint8_t scratch[1];  // lwIP out of memory: drain the packet anyway
    uint8_t* dst = buf.valid() ? buf.data() : scratch;
    size_t cap = buf.valid() ? mtu_ : sizeof(scratch);
    ssize_t n = ::read(fd_, dst, cap);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      ++stats_.readErrors;
      std::string why = std::string("tun: read failed: ") + std::strerror(errno);
      VT_ERROR("%s", why.c_str());
      watcher_.stop();  // level-triggered: would fire again at once
      if (auto cb = std::move(onFatal_)) cb(why);
      return;
    }
    if (n == 0) return;
    if (!buf.valid()) {
      ++stats_.readDropped;
      continue;
    }
    ++stats_.packetsIn;
    stats_.bytesIn += static_cast<uint64_t>(n);
    stack_.input(std::move(buf), static_cast<size_t>(n));
  }
  // More may be queued: the level-triggered watcher calls again next pass.
}

void TunPump::writePacket(const netstack::PacketView& packet) {
  if (!backlog_.empty()) {
    queue(packet);  // behind what waits: order holds
    return;
  }
  for (;;) {
    ssize_t n = ::writev(fd_, packet.iov, packet.iovCount);
    if (n >= 0) {
      ++stats_.packetsOut;
      stats_.bytesOut += static_cast<uint64_t>(n);
      return;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      queue(packet);
      return;
    }
    ++stats_.writeDropped;
    if (!errorLogged_) {
      errorLogged_ = true;
      VT_ERROR("tun: write failed: %s", std::strerror(errno));
    }
    return;
  }
}

void TunPump::queue(const netstack::PacketView& packet) {
  if (backlogBytes_ + packet.size > kMaxBacklogBytes || backlog_.size() >= kMaxBacklogPackets) {
    ++stats_.writeDropped;
    return;
  }
  std::vector<uint8_t> copy(packet.size);
  size_t off = 0;
  for (int i = 0; i < packet.iovCount; ++i) {
    std::memcpy(copy.data() + off, packet.iov[i].iov_base, packet.iov[i].iov_len);
    off += packet.iov[i].iov_len;
  }
  backlogBytes_ += copy.size();
  backlog_.push_back(std::move(copy));
  ++stats_.writeQueued;
  if (backlog_.size() == 1) watcher_.onWritable([this] { flush(); });
}

void TunPump::flush() {
  while (!backlog_.empty()) {
    const std::vector<uint8_t>& p = backlog_.front();
    ssize_t n = ::write(fd_, p.data(), p.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;  // still full
    if (n >= 0) {
      ++stats_.packetsOut;
      stats_.bytesOut += static_cast<uint64_t>(n);
    } else {
      ++stats_.writeDropped;
    }
    backlogBytes_ -= p.size();
    backlog_.pop_front();
  }
  watcher_.onWritable(nullptr);
}

}  // namespace vt::client
