// TunPump: the one place that moves packets between a TUN fd and the
// NetStack. Reads go into an MTU-sized (with TUN offload: 64 KiB) NetStack
// input pbuf, handed on as it is when the packet fills more than half of it,
// else copied into a pbuf of the packet's size (the big one is kept for the
// next read); at most
// kBatch packets per wakeup so the loop stays fair; writes gather lwIP's
// pbuf chain with writev. With TUN offload, what one loop pass writes is
// gathered per flow into GSO packets (WriteCoalescer: consecutive TCP
// segments, or UDP datagrams) and written at the end of the pass, or before
// anything else that is written, so order holds. A write the kernel refuses (EAGAIN: its queue is
// full) is copied into a bounded backlog, written in order once the fd is
// writable again (later packets queue behind it, so order holds). Without
// it a lost SYN-ACK, RST or last data segment waited for the app's or
// lwIP's retransmission timer (1 s and up).
//
// The backlog is one FIFO with two budgets. Data (every packet that is not
// a control packet, pure ACKs included: lwIP or the app recovers them)
// takes kMaxBacklogBytes / kMaxBacklogPackets; beyond that it is dropped
// and counted. Control packets (TCP with SYN, FIN or RST and no payload;
// at most 120 bytes, headers only) never take data room: they have their
// own room of kMaxControlPackets (at most ~0.6 MiB with allocation
// overhead), so a burst of thousands of RSTs (a mass reset at stop, or many
// refused flows) survives a full TUN queue while data is bounded as
// before. Only beyond that room is a control packet dropped (counted apart).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "client/packet_sink.h"
#include "client/write_coalescer.h"
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
  uint64_t writeDropped = 0;    // backlog full, or a write error (control ones included)
  uint64_t writeQueued = 0;     // EAGAIN (or behind one): went through the backlog
  uint64_t controlQueued = 0;   // of writeQueued: SYN/FIN/RST without payload
  uint64_t controlDropped = 0;  // of writeDropped: control room full, or a write error
  uint64_t readDropped = 0;     // no input buffer (lwIP memory short)
  uint64_t readErrors = 0;
  // With the vnet header (TUN offload): reads that were one TCP segment of
  // several MSS (the app's TSO), and reads dropped for a header we do not
  // take (a GSO type other than TCP, a checksum offset out of the packet).
  uint64_t gsoIn = 0;
  uint64_t offloadDropped = 0;
  uint64_t gsoOut = 0;  // of packetsOut: segments the kernel takes as GSO
  // TCP segments and UDP datagrams toward the app that left gathered in
  // GSO packets (each such packet also counts once in packetsOut and gsoOut).
  uint64_t tcpGathered = 0;
  uint64_t udpGathered = 0;
};

class TunPump final : public PacketSink {
 public:
  static constexpr int kBatch = 64;
  // Bound of the EAGAIN backlog's data (packets are copied in).
  static constexpr size_t kMaxBacklogBytes = 256 * 1024;
  static constexpr size_t kMaxBacklogPackets = 1024;
  // A write gathers at most this many pieces directly (with the vnet
  // header in front); a longer chain goes through the backlog's copy.
  static constexpr int kMaxWriteIov = 64;
  // The control packets' own room in the same backlog. A control packet is
  // headers only: IPv4 60 + TCP 60 bytes at most (lwIP's are 40..80).
  static constexpr size_t kMaxControlPackets = 4096;
  static constexpr size_t kMaxControlPacketBytes = 120;

  // True for a TCP segment (IPv4, or IPv6 with TCP as the first next
  // header) without payload that carries SYN, FIN or RST. Reads the
  // headers across the iovecs.
  static bool isControlPacket(const netstack::PacketView& packet);
  // Completes a checksum the kernel left partial (VIRTIO_NET_HDR_F_NEEDS_CSUM):
  // the 16-bit field at start + offset holds the pseudo-header's sum (or 0);
  // the one's complement sum from `start` to the end goes there. False if
  // the field is not inside the packet.
  static bool completeChecksum(uint8_t* packet, size_t len, size_t start, size_t offset);
  // The virtio_net_hdr for a packet NetStack emitted: zero, or for a GSO
  // segment (PacketView::gsoSize) NEEDS_CSUM at the TCP checksum with
  // gso_type TCPV4/TCPV6, hdr_len and gso_size.
  static void vnetHeaderFor(const netstack::PacketView& packet, uint8_t* out);

  // The virtio_net_hdr before each packet when the TUN has IFF_VNET_HDR.
  static constexpr size_t kVnetHeaderBytes = 10;
  // The largest packet a read brings with offload: an IP packet's limit.
  static constexpr size_t kMaxOffloadPacket = 65535;

  // `fd` is non-blocking and stays owned by the caller (TunDevice);
  // `mtu` bounds one packet. `vnetHeader`: the fd was opened with
  // IFF_VNET_HDR and TUN offload (platform::TunConfig::offload): reads take
  // the header off (and up to 64 KiB TSO segments), writes put one on
  // (zero, or GSO for a segment NetStack marked: NetStack::setGsoOutput). The netstack does not check TCP or UDP checksums, so a segment whose
  // checksum the kernel left partial goes in as it is; any other protocol's
  // partial checksum is completed here, as such packets may leave raw.
  TunPump(event::Loop& loop, int fd, netstack::NetStack& stack, size_t mtu,
          bool vnetHeader = false);
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
  // The vnet header of a read of `len` packet bytes at `packet`: false to
  // drop it (counted). Counts GSO reads, completes a partial checksum.
  bool takeVnetHeader(const uint8_t* hdr, uint8_t* packet, size_t len);
  // Writes one packet (behind the backlog if there is one), with
  // `vnetHeader` when given, else vnetHeaderFor(). 0 when written or
  // queued; else the errno, the packet dropped and counted, except EINVAL
  // for a UDP GSO packet, which the caller cuts into datagrams.
  int writeOne(const netstack::PacketView& packet, const uint8_t* vnetHeader);
  // Writes the run gathered in this loop pass.
  void flushRun();
  void queue(const netstack::PacketView& packet, const uint8_t* vnetHeader);
  void flush();

  event::Loop& loop_;

  int fd_;
  netstack::NetStack& stack_;
  size_t mtu_;
  bool vnet_;
  size_t readCap_;  // mtu_, or kMaxOffloadPacket with the vnet header
  netstack::InputBuffer spare_;  // the MTU-sized read buffer, kept while packets are small
  event::FdWatcher watcher_;
  TunPumpStats stats_;
  std::function<void(const std::string&)> onFatal_;
  bool errorLogged_ = false;
  struct Queued {
    std::vector<uint8_t> bytes;
    std::array<uint8_t, kVnetHeaderBytes> vnet{};  // written ahead with the vnet header
    bool control = false;
  };
  std::deque<Queued> backlog_;
  size_t backlogBytes_ = 0;    // data entries only
  size_t backlogPackets_ = 0;  // data entries only
  size_t controlPackets_ = 0;  // control entries
  // With the vnet header: what this loop pass writes toward the app, one
  // GSO packet per run, written at the end of the pass.
  WriteCoalescer run_;
  bool udpRunsOk_ = true;  // false once the kernel refused UDP GSO
  bool runPosted_ = false;
  std::shared_ptr<TunPump*> self_ = std::make_shared<TunPump*>(this);
};

}  // namespace vt::client
