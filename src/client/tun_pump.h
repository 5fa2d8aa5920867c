// TunPump: the one place that moves packets between a TUN fd and the
// NetStack. Reads go straight into NetStack input pbufs (no copy), at most
// kBatch packets per wakeup so the loop stays fair; writes gather lwIP's
// pbuf chain with writev. A write the kernel refuses (EAGAIN: its queue is
// full) is copied into a small bounded backlog, written in order once the
// fd is writable again (later packets queue behind it, so order holds);
// only beyond the backlog's bound is a packet dropped and counted. Without
// it a lost SYN-ACK, RST or last data segment waited for the app's or
// lwIP's retransmission timer (1 s and up).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "client/packet_sink.h"
#include "core/error.h"
#include "event/fd_watcher.h"
#include "event/loop.h"
#include "netstack/net_stack.h"

namespace vt::client {

struct TunPumpStats {
  uint64_t packetsIn = 0;
  uint64_t bytesIn = 0;
  uint64_t packetsOut = 0;
  uint64_t bytesOut = 0;
  uint64_t writeDropped = 0;  // backlog full, or a write error
  uint64_t writeQueued = 0;   // EAGAIN (or behind one): went through the backlog
  uint64_t readDropped = 0;   // no input buffer (lwIP memory short)
  uint64_t readErrors = 0;
};

class TunPump final : public PacketSink {
 public:
  static constexpr int kBatch = 64;
  // Bound of the EAGAIN backlog (packets are copied in).
  static constexpr size_t kMaxBacklogBytes = 256 * 1024;
  static constexpr size_t kMaxBacklogPackets = 1024;

  // `fd` is non-blocking and stays owned by the caller (TunDevice);
  // `mtu` bounds one packet.
  TunPump(event::Loop& loop, int fd, netstack::NetStack& stack, size_t mtu);
  ~TunPump();
  TunPump(const TunPump&) = delete;
  TunPump& operator=(const TunPump&) = delete;

  Status start();
  void stop();
  // A read error other than EAGAIN/EINTR (the device went away): reading
  // stops and `cb` runs once, so the owner can shut down instead of spin.
  void onFatalError(std::function<void(const std::string&)> cb) { onFatal_ = std::move(cb); }
  void writePacket(const netstack::PacketView& packet) override;
  const TunPumpStats& stats() const { return stats_; }

 private:
  void onReadable();
  void queue(const netstack::PacketView& packet);
  void flush();

  int fd_;
  netstack::NetStack& stack_;
  size_t mtu_;
  event::FdWatcher watcher_;
  TunPumpStats stats_;
  std::function<void(const std::string&)> onFatal_;
  bool errorLogged_ = false;
  std::deque<std::vector<uint8_t>> backlog_;
  size_t backlogBytes_ = 0;
};

}  // namespace vt::client
