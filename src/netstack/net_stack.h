// NetStack: the lwIP instance behind the TUN. It owns the netif, one
// catch-all TCP listener (IPv4+IPv6, every address and port, thanks to
// accept-any.patch) and tracks every TcpFlow it handed out.
//
// Drive each NetStack from one thread (its loop):
//   - each packet read from the TUN: allocInput() + read() into it + input()
//     (zero copy: the bytes land in a pbuf), or input(ptr, len) (copies);
//   - onTimer() every N ms, N from the last onTimerInterval(N) (0: no
//     timer; N is kTickMs while TCP is busy, kIdleIntervalMs otherwise,
//     and 0 when lwIP has no pcbs and nothing is pending);
//   - Callbacks::onOutput() hands out each packet for the TUN.
//
// UDP goes beside lwIP (see docs/netstack.md): input() hands each valid
// datagram from the app to Callbacks::onUdp (IPv4 fragments and IPv6
// Fragment headers are reassembled first, bounded), and sendUdp() writes a
// datagram to the app from any address and port (full cone), fragmented
// when larger than the MTU.
//
// SYN gating: a SYN for a 4-tuple lwIP does not know is held here, not
// answered. The owner hears onTcpSyn(key) and later calls acceptPending()
// (lwIP then answers SYN-ACK; onTcpAccepted follows once the app ACKs) or
// rejectPending() (the app gets a RST: "connection refused"). So the app
// never sees a fake handshake for a destination that turns out dead.
//
// Several NetStacks may exist in one process (one per client core, each
// with its own TUN and loop thread). lwIP keeps its state in C globals, so
// every method of NetStack, TcpFlow and InputBuffer takes a process-wide
// lock itself (lwip_lock.h; recursive, so callbacks may call back in), and
// each NetStack's pcbs are bound to its own netif: lwIP's timers, its pcb
// lookup and the destructor touch only that NetStack's connections, and
// its callbacks run on its own thread only (docs/netstack.md, "Several
// NetStacks in one process"). TcpFlows may outlive the NetStack (they are
// then dead: no callbacks, no I/O).
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <optional>
#include <vector>

#include "core/error.h"
#include "core/ip_prefix.h"
#include "netstack/flow_key.h"
#include "netstack/ip_packet.h"
#include "netstack/udp_packet.h"
#include "netstack/udp_reassembly.h"

struct pbuf;
struct netif;
struct tcp_pcb;

namespace vt::netstack {

class TcpFlow;

// One outgoing IP packet as an iovec array over lwIP's pbuf chain: no
// copy. Valid only during the onOutput() call; write it with writev.
struct PacketView {
  const iovec* iov = nullptr;
  int iovCount = 0;
  size_t size = 0;
  // With NetStack::setGsoOutput: a TCP segment longer than the app takes,
  // for the TUN to cut into pieces of gsoSize payload bytes (GSO;
  // docs/netstack.md "TUN offload"). Its checksum field then holds the
  // pseudo-header's sum only, which the kernel completes. 0: a plain packet.
  uint16_t gsoSize = 0;
  uint8_t l4Offset = 0;   // the IP header's length (where TCP starts)
  uint8_t headerLen = 0;  // IP + TCP header bytes
  bool v6 = false;
};

// A pbuf to read one packet into. Move-only; frees the pbuf unless it was
// handed to NetStack::input().
class InputBuffer {
 public:
  InputBuffer() = default;
  ~InputBuffer();
  InputBuffer(InputBuffer&& o) noexcept;
  InputBuffer& operator=(InputBuffer&& o) noexcept;
  InputBuffer(const InputBuffer&) = delete;
  InputBuffer& operator=(const InputBuffer&) = delete;

  bool valid() const noexcept { return p_ != nullptr; }
  uint8_t* data() noexcept;
  size_t capacity() const noexcept;

 private:
  friend class NetStack;
  explicit InputBuffer(pbuf* p) noexcept : p_(p) {}
  pbuf* p_ = nullptr;
};

struct NetStackOptions {
  uint16_t mtu = 1500;  // of the TUN; MSS = mtu - 40 (IPv4) / - 60 (IPv6)
  // The TUN's own addresses. lwIP answers ICMP echo for these only.
  std::optional<IpAddress> ipv4;
  uint8_t ipv4Prefix = 24;
  std::optional<IpAddress> ipv6;
  size_t maxFlows = 4096;                // accepted, not yet destroyed TcpFlows
  size_t maxPendingSyns = 256;           // held SYNs; the oldest is dropped beyond
  uint32_t pendingSynTimeoutMs = 30000;  // undecided SYNs are dropped after
  // Connections lwIP keeps in TIME_WAIT (2*TCP_MSL = 2 s each, lwipopts.h);
  // beyond this the oldest are dropped at the next timer tick.
  size_t maxTimeWait = 4096;
  // UDP fragment reassembly: partial datagrams held, bytes held (packet
  // sizes), and how long a partial datagram may wait for its last piece.
  size_t udpReassemblyMaxDatagrams = 64;
  size_t udpReassemblyMaxBytes = 1024 * 1024;
  uint32_t udpReassemblyTimeoutMs = 5000;
  // Raw passthrough (the client's ip.passthrough): every valid packet whose
  // destination is in one of these prefixes (and is not the TUN's own
  // address) goes to Callbacks::onOtherPacket whatever its protocol (TCP,
  // UDP and fragments included), before TCP/UDP handling; lwIP never sees
  // it. Empty (the default): no per-packet check at all. Counted in
  // NetStackStats::passthrough.
  std::vector<IpPrefix> passthrough;
};

struct NetStackStats {
  uint64_t packetsIn = 0;
  uint64_t packetsOut = 0;
  uint64_t malformed = 0;     // header did not parse: dropped
  uint64_t fragments = 0;     // non-UDP IP fragments: dropped (no reassembly)
  uint64_t otherDropped = 0;  // not TCP/UDP, not for us (or passthrough), nobody took it
  uint64_t otherOffered = 0;  // packets offered to onOtherPacket (passthrough included)
  uint64_t passthrough = 0;   // of those: destination in options.passthrough
  uint64_t synHeld = 0;       // onTcpSyn calls
  uint64_t synRetransmitDropped = 0;
  uint64_t synEvicted = 0;      // over maxPendingSyns
  uint64_t synExpired = 0;      // pendingSynTimeoutMs passed
  uint64_t synOverFlowCap = 0;  // answered RST: maxFlows reached
  uint64_t synAborted = 0;      // the app sent RST while pending
  uint64_t synReplaced = 0;     // a new ISN on a pending 4-tuple took the old SYN's place
  // A SYN reused the 4-tuple of a connection lwIP still remembered: the
  // old pcb was dropped and the SYN started a new connection.
  uint64_t timeWaitReused = 0;  // ... in TIME_WAIT
  uint64_t closingReused = 0;   // ... in LAST_ACK or CLOSING
  uint64_t timeWaitEvicted = 0;  // dropped over maxTimeWait
  uint64_t synNotUnicast = 0;   // SYN from/to broadcast, multicast, any
  uint64_t rstSent = 0;         // by rejectPending or the flow cap
  uint64_t flowsAccepted = 0;
  // UDP from the app. udpDropped is the sum of the udpDrop* reasons.
  uint64_t udpIn = 0;  // datagrams onUdp took
  uint64_t udpDropped = 0;
  uint64_t udpDropMalformed = 0;   // cut header, bad UDP length, bad fragment
  uint64_t udpDropBadAddress = 0;  // app source not unicast, port 0
  uint64_t udpDropNoOwner = 0;     // onUdp returned false
  uint64_t udpDropReassembly = 0;  // partial datagram evicted (limits), expired or invalid
  uint64_t udpFragmentsIn = 0;
  uint64_t udpReassembled = 0;
  uint64_t udpReassemblyOverflow = 0;  // of udpDropReassembly: evicted for room
  uint64_t udpReassemblyTimeout = 0;   // of udpDropReassembly: expired
  // UDP to the app (sendUdp).
  uint64_t udpOut = 0;
  uint64_t udpOutFragments = 0;  // IP packets that were fragments
  uint64_t udpOutTooBig = 0;     // refused: payload over 65507 / 65527
  uint64_t udpOutRefused = 0;    // family mismatch, port 0, or stack going away
};

class NetStack {
 public:
  // lwIP's timer tick (TCP_TMR_INTERVAL): retransmission timeouts, delayed
  // ACKs and every lwIP time count in these (its "slow" tick is two).
  static constexpr uint32_t kTickMs = 50;
  // While no TCP segment went in or out for kBusyMs, the owner's timer
  // runs this rarely and each onTimer() runs the ticks it skipped: the same
  // lwIP time, a fifth of the wake-ups (a phone with idle connections).
  static constexpr uint32_t kIdleIntervalMs = 250;
  static constexpr uint32_t kBusyMs = 2000;

  class Callbacks {
   public:
    // One packet for the TUN; see PacketView for the lifetime. Must not
    // call back into NetStack (acceptPending etc. are deferred if it does).
    virtual void onOutput(const PacketView& packet) = 0;
    // A new connection attempt; answer with acceptPending/rejectPending,
    // now (even from inside this call) or later.
    virtual void onTcpSyn(const FlowKey& key) = 0;
    // The handshake completed. Call flow->setCallbacks() before returning;
    // never destroy a flow from inside a NetStack or TcpFlow callback.
    virtual void onTcpAccepted(std::unique_ptr<TcpFlow> flow) = 0;
    // Call onTimer() every `intervalMs` from now on (restart the periodic
    // timer with this period); 0: stop calling it.
    virtual void onTimerInterval(uint32_t intervalMs) = 0;
    // Raw packets for the owner (bytes valid during the call; return true
    // if taken, else NetStack drops and counts it as otherDropped):
    //   - protocols other than TCP and UDP (ICMP, ICMPv6, GRE, IPv6 with
    //     extension headers before the upper layer, ...) not addressed to
    //     the TUN itself (ICMP echo to the TUN's own address is answered by
    //     lwIP), and fragments of such packets;
    //   - every packet to NetStackOptions::passthrough, whatever its
    //     protocol. Must not call back into NetStack.
    virtual bool onOtherPacket(const uint8_t* /*packet*/, size_t /*len*/) { return false; }
    // A UDP datagram from the app's socket `app` to `dst` (any address,
    // the TUN's own included). Return false to drop it (counted as
    // udpDropNoOwner). `payload` may hold adopted input buffers: release it
    // soon. sendUdp() may be called from inside.
    virtual bool onUdp(const UdpEndpoint& /*app*/, const UdpEndpoint& /*dst*/,
                       BufferChain&& /*payload*/) {
      return false;
    }

   protected:
    ~Callbacks() = default;
  };

  static Result<std::unique_ptr<NetStack>> create(const NetStackOptions& options,
                                                  Callbacks& callbacks);
  ~NetStack();
  NetStack(const NetStack&) = delete;
  NetStack& operator=(const NetStack&) = delete;

  // A buffer for one packet of up to `capacity` bytes (<= 65535), or an
  // invalid one if memory is short.
  InputBuffer allocInput(size_t capacity);
  // One IP packet of `len` bytes (<= capacity) in `buffer`.
  void input(InputBuffer&& buffer, size_t len);
  // One IP packet, copied.
  void input(const uint8_t* packet, size_t len);

  // Packets handed to input() while one of these lives are a batch: the
  // ACKs lwIP owes the apps for full data segments go out once, when the
  // batch ends (or once a flow has a quarter of the window unacknowledged),
  // instead of one for every second segment. Without a batch each input()
  // is its own. TunPump reads a batch per wakeup.
  class InputBatch {
   public:
    explicit InputBatch(NetStack& stack) noexcept : stack_(stack) { ++stack_.batchDepth_; }
    ~InputBatch();
    InputBatch(const InputBatch&) = delete;
    InputBatch& operator=(const InputBatch&) = delete;

   private:
    NetStack& stack_;
  };

  // Both return false if the key is not pending (never was, answered,
  // evicted, expired, or the app gave up). Safe from inside callbacks:
  // then the work happens when the outermost input()/onTimer() returns.
  bool acceptPending(const FlowKey& key);
  bool rejectPending(const FlowKey& key);
  // Forgets the SYN without an answer (a routing rule's block_style =
  // "drop"): the app's retransmissions arrive as new onTcpSyn calls.
  bool dropPending(const FlowKey& key);

  void onTimer();

  // One UDP datagram to the app `to`, from any `from` (same family; an
  // IPv4-mapped `from` with an IPv4 `to` is unmapped). Written to onOutput
  // at once, as one packet or several IP fragments (header iovec + the
  // payload's slices, no copy); `payload` is not modified. False if
  // refused: payload over kMaxUdpPayloadV4/V6, families differ, port 0.
  bool sendUdp(const UdpEndpoint& from, const UdpEndpoint& to, const BufferChain& payload);

  bool timerNeeded() const noexcept;
  size_t flowCount() const noexcept { return flowCount_; }
  size_t pendingCount() const noexcept { return pending_.size(); }
  // TIME_WAIT pcbs at the last timer tick.
  size_t timeWaitCount() const noexcept { return timeWaitCount_; }
  const NetStackStats& stats() const noexcept { return stats_; }
  const NetStackOptions& options() const noexcept { return options_; }
  // The packets this stack writes go to a TUN with offload (IFF_VNET_HDR):
  // TCP flows accepted from now on send segments of up to ~64 KiB, marked
  // for GSO in their PacketView, instead of one per app MSS.
  void setGsoOutput(bool on) noexcept { gsoOutput_ = on; }
  bool gsoOutput() const noexcept { return gsoOutput_; }

 private:
  friend class TcpFlow;
  friend class LwipEntry;  // installs lwipTicks_ / netifIdx_ into lwIP
  struct Pending {
    FlowKey key;
    pbuf* syn = nullptr;  // a copy of the SYN packet
    uint32_t seq = 0;
    uint32_t segLen = 0;  // SYN + payload, for the RST's ack number
    uint64_t heldAtTick = 0;
  };
  struct Deferred {
    Pending pending;
    bool accept = false;
  };

  NetStack(const NetStackOptions& options, Callbacks& callbacks);
  Status start();
  void dispatch(pbuf* p);
  void handleTcp(pbuf* p, const IpPacketInfo& info);
  void holdSyn(pbuf* p, const IpPacketInfo& info, const FlowKey& key);
  tcp_pcb* findPcb(const FlowKey& key) const noexcept;
  bool reapForNewSyn(tcp_pcb* pcb) noexcept;
  void boundTimeWait() noexcept;
  bool isOwnAddress(const IpAddress& a) const noexcept;
  bool isPassthrough(const IpAddress& dst) const noexcept;
  // Offers a raw packet to onOtherPacket; counts what nobody took.
  void offerOther(const uint8_t* bytes, size_t len);
  std::list<Pending>::iterator findPending(const FlowKey& key);
  bool decide(const FlowKey& key, bool accept);
  void inject(pbuf* p);
  void sendRst(const FlowKey& key, uint32_t seq, uint32_t segLen);
  void leave();  // end of an outermost entry: run deferred work, ACKs, timer state
  void flushAcks() noexcept;  // the ACKs the queued flows owe (lwIP entered)
  void runDeferred();
  void updateTimer();
  void emit(pbuf* p);
  // A TCP segment longer than its pcb's vt_gso_mss allows per piece: fills
  // the view's GSO fields and puts the pseudo-header sum in its checksum.
  void markGso(PacketView& v) noexcept;
  // UDP (net_stack_udp.cc).
  void handleUdp(pbuf* p, const IpPacketInfo& info);
  void handleFragment(pbuf* p);
  void deliverUdp(const UdpEndpoint& app, const UdpEndpoint& dst, BufferChain&& payload);
  void udpDropReassembly(size_t n) noexcept;
  static void emitUdp(void* ctx, const iovec* iov, int count, size_t size);
  void linkFlow(TcpFlow* flow) noexcept;
  void unlinkFlow(TcpFlow* flow) noexcept;

  // lwIP trampolines (static noexcept, in net_stack.cc).
  friend struct NetStackGlue;

  NetStackOptions options_;
  Callbacks& callbacks_;
  netif* netif_ = nullptr;
  uint8_t netifIdx_ = 0;  // lwIP's index of netif_ (0: none yet)
  // This NetStack's lwIP TCP clock (tcp_ticks, in slow ticks): lwIP has one
  // global, LwipEntry swaps ours in and out, so each stack's clock advances
  // with its own timer only.
  uint32_t lwipTicks_ = 0;
  uint8_t timerParity_ = 0;  // tcp_tmr's fast/slow alternation, per stack
  tcp_pcb* listener_ = nullptr;
  std::list<Pending> pending_;
  std::vector<Deferred> deferred_;
  TcpFlow* flows_ = nullptr;  // intrusive list of live flows
  size_t flowCount_ = 0;
  int depth_ = 0;  // >0: inside input()/onTimer()/lwIP
  int batchDepth_ = 0;  // live InputBatch objects
  std::vector<TcpFlow*> ackQueue_;  // flows owing a batched ACK (TcpFlow::ackLater)
  uint32_t timerIntervalMs_ = 0;  // what the owner was last told
  uint64_t busyUntilTick_ = 0;     // kBusyMs after the last TCP segment in or out
  bool destroying_ = false;
  bool gsoOutput_ = false;
  tcp_pcb* acceptingPcb_ = nullptr;  // set during onTcpAccepted
  bool acceptingAborted_ = false;
  uint64_t tick_ = 0;
  size_t timeWaitCount_ = 0;
  NetStackStats stats_;
  UdpPacketWriter udpWriter_;
  FragmentReassembler reassembler_;
};

}  // namespace vt::netstack
