#include "netstack/net_stack.h"

#include <algorithm>
#include <cassert>
#include <cstring>

#include "core/log.h"
#include "netstack/lwip_lock.h"
#include "netstack/tcp_flow.h"
#include "netstack/udp_packet.h"

extern "C" {
#include "lwip/init.h"
#include "lwip/ip.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/tcp.h"
#include "vt_lwip_hooks.h"
}

namespace vt::netstack {

static_assert(NetStack::kTickMs == TCP_TMR_INTERVAL, "lwipopts.h TCP_TMR_INTERVAL");
static_assert(NetStack::kIdleIntervalMs % NetStack::kTickMs == 0, "whole ticks per idle call");

namespace {

// lwIP keeps its pcb lists, netif list and timers in C globals, shared by
// every NetStack of the process under the lwIP lock (lwip_lock.h).
bool gLwipInitialized = false;  // lwip_init() once per process; under the lock
// The NetStack whose clock and netif are installed in lwIP; under the lock.
NetStack* gServing = nullptr;
constexpr int kMaxIov = 64;

void toLwip(const IpAddress& a, ip_addr_t& out, netif* zoneNetif) noexcept {
  std::memset(&out, 0, sizeof out);
  if (a.isV4()) {
    IP_SET_TYPE_VAL(out, IPADDR_TYPE_V4);
    std::memcpy(&ip_2_ip4(&out)->addr, a.bytes.data(), 4);
  } else {
    IP_SET_TYPE_VAL(out, IPADDR_TYPE_V6);
    std::memcpy(ip_2_ip6(&out)->addr, a.bytes.data(), 16);
    ip6_addr_clear_zone(ip_2_ip6(&out));
    if (zoneNetif != nullptr) {
      ip6_addr_assign_zone(ip_2_ip6(&out), IP6_UNKNOWN, zoneNetif);
    }
  }
}

IpAddress fromLwip(const ip_addr_t& a) noexcept {
  if (IP_IS_V6_VAL(a)) return IpAddress::v6(reinterpret_cast<const uint8_t*>(ip_2_ip6(&a)->addr));
  return IpAddress::v4(reinterpret_cast<const uint8_t*>(&ip_2_ip4(&a)->addr));
}

}  // namespace

LwipEntry::LwipEntry(NetStack* stack) noexcept {
  LwipLock::lock();
  prev_ = gServing;
  if (stack == nullptr || stack == prev_) return;
  // Entering another NetStack from inside one's call (its callback) on the
  // same thread would run lwIP inside lwIP (ip_input's and tcp_input's
  // per-packet globals): not supported. Restored below all the same.
  assert(prev_ == nullptr && "NetStack/TcpFlow of another stack called from inside a callback");
  if (prev_ != nullptr) prev_->lwipTicks_ = tcp_ticks;
  tcp_ticks = stack->lwipTicks_;
  vt_tcp_current_netif = stack->netifIdx_;
  gServing = stack;
  switched_ = true;
}

LwipEntry::~LwipEntry() {
  if (switched_) {
    gServing->lwipTicks_ = tcp_ticks;
    if (prev_ != nullptr) {
      tcp_ticks = prev_->lwipTicks_;
      vt_tcp_current_netif = prev_->netifIdx_;
    } else {
      vt_tcp_current_netif = NETIF_NO_INDEX;
    }
    gServing = prev_;
  }
  LwipLock::unlock();
}

// SAFETY (all trampolines): called by lwIP on the NetStack thread only;
// `state`/`arg` is the NetStack that registered them and outlives the
// netif and listener.
struct NetStackGlue {
  static err_t netifInit(netif* n) noexcept {
    auto* self = static_cast<NetStack*>(n->state);
    n->name[0] = 'v';
    n->name[1] = 't';
    n->mtu = self->options_.mtu;
#if LWIP_ND6_ALLOW_RA_UPDATES
    n->mtu6 = self->options_.mtu;
#endif
    n->output = output4;
    n->output_ip6 = output6;
    n->flags = NETIF_FLAG_ACCEPT_ANY;
    return ERR_OK;
  }
  static err_t output4(netif* n, pbuf* p, const ip4_addr_t*) noexcept {
    static_cast<NetStack*>(n->state)->emit(p);
    return ERR_OK;
  }
  static err_t output6(netif* n, pbuf* p, const ip6_addr_t*) noexcept {
    static_cast<NetStack*>(n->state)->emit(p);
    return ERR_OK;
  }
  // The app ACKed our SYN-ACK. `pcb` is ESTABLISHED; returning ERR_ABRT
  // tells lwIP that we aborted it ourselves.
  static err_t onAccept(void* arg, tcp_pcb* pcb, err_t err) noexcept {
    auto* self = static_cast<NetStack*>(arg);
    if (self == nullptr || pcb == nullptr || err != ERR_OK) return ERR_VAL;
    if (self->flowCount_ >= self->options_.maxFlows) {
      self->stats_.synOverFlowCap++;
      tcp_abort(pcb);
      return ERR_ABRT;
    }
    FlowKey key{fromLwip(pcb->remote_ip), pcb->remote_port, fromLwip(pcb->local_ip),
                pcb->local_port};
    std::unique_ptr<TcpFlow> flow(new TcpFlow(*self, pcb, key));
    self->stats_.flowsAccepted++;
    self->acceptingPcb_ = pcb;
    self->acceptingAborted_ = false;
    self->callbacks_.onTcpAccepted(std::move(flow));
    self->acceptingPcb_ = nullptr;
    return self->acceptingAborted_ ? ERR_ABRT : ERR_OK;
  }
};

InputBuffer::~InputBuffer() {
  if (p_ != nullptr) {
    LwipLockGuard lock;
    pbuf_free(p_);
  }
}
InputBuffer::InputBuffer(InputBuffer&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
InputBuffer& InputBuffer::operator=(InputBuffer&& o) noexcept {
  if (this != &o) {
    if (p_ != nullptr) {
      LwipLockGuard lock;
      pbuf_free(p_);
    }
    p_ = std::exchange(o.p_, nullptr);
  }
  return *this;
}
uint8_t* InputBuffer::data() noexcept {
  return p_ != nullptr ? static_cast<uint8_t*>(p_->payload) : nullptr;
}
size_t InputBuffer::capacity() const noexcept {
  return p_ != nullptr ? p_->len : 0;
}

Result<std::unique_ptr<NetStack>> NetStack::create(const NetStackOptions& options,
                                                   Callbacks& callbacks) {
  if (options.mtu < 1280) {
    return Error(Errc::kInvalidArgument,
                 "netstack: mtu " + std::to_string(options.mtu) + " is below 1280 (IPv6 minimum)");
  }
  if ((options.ipv4 && !options.ipv4->isV4()) || (options.ipv6 && !options.ipv6->isV6()) ||
      options.ipv4Prefix > 32) {
    return Error(Errc::kInvalidArgument,
                 "netstack: ipv4/ipv6 option has the wrong family or prefix");
  }
  std::unique_ptr<NetStack> stack(new NetStack(options, callbacks));
  Status st = stack->start();
  if (!st.ok()) return st.error();
  return stack;
}

NetStack::NetStack(const NetStackOptions& options, Callbacks& callbacks)
    : options_(options),
      callbacks_(callbacks),
      udpWriter_(options.mtu),
      reassembler_(ReassemblyLimits{
          options.udpReassemblyMaxDatagrams == 0 ? 1 : options.udpReassemblyMaxDatagrams,
          options.udpReassemblyMaxBytes, ReassemblyLimits{}.maxFragmentsPerDatagram,
          options.udpReassemblyTimeoutMs / kTickMs}) {
  if (options_.maxPendingSyns == 0) options_.maxPendingSyns = 1;
}

Status NetStack::start() {
  LwipEntry entry(this);
  if (!gLwipInitialized) {
    lwip_init();
    gLwipInitialized = true;
  }
  netif_ = new netif{};
  netif* added = nullptr;
  if (options_.ipv4) {
    ip4_addr_t addr, mask, gw;
    std::memcpy(&addr.addr, options_.ipv4->bytes.data(), 4);
    uint32_t m = options_.ipv4Prefix == 0 ? 0 : ~uint32_t{0} << (32 - options_.ipv4Prefix);
    mask.addr = lwip_htonl(m);
    ip4_addr_set_zero(&gw);
    added = netif_add(netif_, &addr, &mask, &gw, this, NetStackGlue::netifInit, ip_input);
  } else {
    added = netif_add_noaddr(netif_, this, NetStackGlue::netifInit, ip_input);
  }
  if (added == nullptr) {
    delete netif_;
    netif_ = nullptr;
    return Error(Errc::kIo, "netstack: netif_add failed");
  }
  // From here on lwIP serves this netif (the entry installed index 0).
  netifIdx_ = netif_get_index(netif_);
  vt_tcp_current_netif = netifIdx_;
  if (options_.ipv6) {
    ip6_addr_t a;
    std::memcpy(a.addr, options_.ipv6->bytes.data(), 16);
    ip6_addr_clear_zone(&a);
    netif_ip6_addr_set(netif_, 0, &a);
    netif_ip6_addr_set_state(netif_, 0, IP6_ADDR_PREFERRED);
  }
  // Not netif_set_default: there may be several netifs, and nothing of ours
  // routes by default. Every pcb is bound to netif_ (the listener by
  // tcp_bind_netif, accepted pcbs inherit it), RSTs go through a pcb bound
  // to it, ICMP replies through the input netif, and multi-netif.patch sizes
  // the MSS by the input netif rather than ip_route's guess.
  netif_set_link_up(netif_);
  netif_set_up(netif_);

  tcp_pcb* pcb = tcp_new_ip_type(IPADDR_TYPE_ANY);
  if (pcb == nullptr) return Error(Errc::kIo, "netstack: tcp_new failed");
  tcp_bind_netif(pcb, netif_);
  if (tcp_bind(pcb, IP_ANY_TYPE, 0) != ERR_OK) {
    tcp_close(pcb);
    return Error(Errc::kIo, "netstack: tcp_bind of the catch-all listener failed");
  }
  err_t err = ERR_OK;
  listener_ = tcp_listen_with_backlog_and_err(pcb, TCP_DEFAULT_LISTEN_BACKLOG, &err);
  if (listener_ == nullptr) {
    tcp_close(pcb);
    return Error(Errc::kIo, "netstack: tcp_listen failed (lwIP err " + std::to_string(err) + ")");
  }
  tcp_arg(listener_, this);
  tcp_accept(listener_, NetStackGlue::onAccept);
  return Status::okStatus();
}

NetStack::~NetStack() {
  LwipEntry entry(this);
  destroying_ = true;  // no onOutput while tearing down
  for (Pending& pd : pending_) pbuf_free(pd.syn);
  pending_.clear();
  for (Deferred& d : deferred_) pbuf_free(d.pending.syn);
  deferred_.clear();
  reassembler_.clear();
  while (flows_ != nullptr) flows_->stackGone();  // unlinks itself
  // Whatever lwIP still holds of ours (closing, TIME_WAIT, half-open)
  // belongs to no one else. Only ours: other NetStacks' pcbs share the
  // lists. Aborting a pcb frees that pcb only and calls nothing of ours
  // (flows detached above, half-open pcbs have no error callback), so the
  // saved `next` stays valid.
  if (netifIdx_ != NETIF_NO_INDEX) {
    for (tcp_pcb** list : {&tcp_active_pcbs, &tcp_tw_pcbs}) {
      tcp_pcb* pcb = *list;
      while (pcb != nullptr) {
        tcp_pcb* next = pcb->next;
        if (pcb->netif_idx == netifIdx_) tcp_abort(pcb);
        pcb = next;
      }
    }
    assert(vt_tcp_pcb_count(netifIdx_) == 0);
  }
  if (listener_ != nullptr) tcp_close(listener_);
  if (netif_ != nullptr) {
    // netif_remove aborts the pcbs on the netif's addresses; with
    // multi-netif.patch only this netif's (none are left).
    netif_remove(netif_);
    delete netif_;
  }
}

InputBuffer NetStack::allocInput(size_t capacity) {
  if (capacity == 0 || capacity > 0xFFFF) return InputBuffer();
  LwipLockGuard lock;
  return InputBuffer(pbuf_alloc(PBUF_RAW, static_cast<u16_t>(capacity), PBUF_RAM));
}

void NetStack::input(const uint8_t* packet, size_t len) {
  InputBuffer buf = allocInput(len);
  if (!buf.valid()) {
    stats_.packetsIn++;
    stats_.malformed++;
    return;
  }
  std::memcpy(buf.data(), packet, len);
  input(std::move(buf), len);
}

void NetStack::input(InputBuffer&& buffer, size_t len) {
  pbuf* p = std::exchange(buffer.p_, nullptr);
  if (p == nullptr) return;
  LwipEntry entry(this);
  stats_.packetsIn++;
  if (depth_ > 0) {
    // From inside a callback: lwIP is mid-operation. Not supported.
    assert(!"NetStack::input called from inside a NetStack callback");
    stats_.malformed++;
    pbuf_free(p);
    return;
  }
  if (len == 0 || len > p->len) {
    stats_.malformed++;
    pbuf_free(p);
    return;
  }
  pbuf_realloc(p, static_cast<u16_t>(len));
  ++depth_;
  dispatch(p);
  --depth_;
  leave();
}

void NetStack::dispatch(pbuf* p) {
  IpPacketInfo info;
  const auto* bytes = static_cast<const uint8_t*>(p->payload);
  if (!parseIpPacket(bytes, p->len, info)) {
    stats_.malformed++;
    if (info.protocol == kIpProtoUdp && (info.version == 4 || info.version == 6)) {
      stats_.udpDropped++;  // a cut UDP header
      stats_.udpDropMalformed++;
    }
    pbuf_free(p);
    return;
  }
  if (info.totalLen < p->tot_len) pbuf_realloc(p, static_cast<u16_t>(info.totalLen));
  // The check costs a prefix scan per packet, so only when there is a set.
  if (!options_.passthrough.empty() && isPassthrough(info.dst)) {
    stats_.passthrough++;
    offerOther(bytes, info.totalLen);
    pbuf_free(p);
    return;
  }
  switch (info.kind) {
    case IpKind::kTcp: handleTcp(p, info); return;
    case IpKind::kFragment: handleFragment(p); return;
    case IpKind::kUdp: handleUdp(p, info); return;
    case IpKind::kIcmp:
    case IpKind::kOther:
      if (info.kind == IpKind::kIcmp && isOwnAddress(info.dst)) {
        inject(p);  // echo to the TUN's own address: lwIP answers
        return;
      }
      // Whether or not the owner takes it, lwIP never sees it: it has no
      // use for it (accept-any.patch would drop it anyway, never answering
      // echo for remote addresses), and keeping such packets away from
      // lwIP also keeps its IPv6 extension-header code out of reach: lwIP
      // 2.2.1 reads a Hop-by-Hop header's length byte before checking that
      // the header is there (found by fuzz_netstack_input).
      offerOther(bytes, info.totalLen);
      break;
  }
  pbuf_free(p);
}

void NetStack::offerOther(const uint8_t* bytes, size_t len) {
  stats_.otherOffered++;
  if (!callbacks_.onOtherPacket(bytes, len)) stats_.otherDropped++;
}

bool NetStack::isPassthrough(const IpAddress& dst) const noexcept {
  if (isOwnAddress(dst)) return false;  // the TUN itself stays local
  for (const IpPrefix& pfx : options_.passthrough) {
    if (pfx.v6 == dst.isV6() && pfx.contains(dst.isV6(), dst.bytes.data())) return true;
  }
  return false;
}

void NetStack::handleTcp(pbuf* p, const IpPacketInfo& info) {
  busyUntilTick_ = tick_ + kBusyMs / kTickMs;
  const uint8_t flags = info.tcpFlags;
  const FlowKey key = info.flowKey();
  const bool syn = (flags & tcpflag::kSyn) != 0 && (flags & (tcpflag::kAck | tcpflag::kRst)) == 0;
  if (syn) {
    tcp_pcb* old = findPcb(key);
    if (old != nullptr && reapForNewSyn(old)) old = nullptr;
    if (old == nullptr) {
      holdSyn(p, info, key);
      return;
    }
  }
  if ((flags & tcpflag::kRst) != 0) {
    auto it = findPending(key);
    if (it != pending_.end()) {  // the app gave up before we decided
      pbuf_free(it->syn);
      pending_.erase(it);
      stats_.synAborted++;
      pbuf_free(p);
      return;
    }
  }
  inject(p);
}

// A SYN for a 4-tuple whose old connection lwIP still remembers, although
// the app's side of it is gone: the app closed its half first (TIME_WAIT,
// LAST_ACK, CLOSING), so its kernel may reuse the port at once (it keeps no
// TIME_WAIT itself). lwIP would answer with an ACK for the old connection,
// the app a RST that TIME_WAIT ignores (RFC 1337), and the app's SYN would
// retry with backoff until 2*MSL passed: seconds of stall per reused port.
// On this host-local hop the old connection has nothing left to protect,
// so it is dropped silently (no RST) and the SYN starts a new one, as
// Linux does for a SYN to a TIME_WAIT socket (RFC 6191).
bool NetStack::reapForNewSyn(tcp_pcb* pcb) noexcept {
  if (pcb->state != TIME_WAIT && pcb->state != LAST_ACK && pcb->state != CLOSING) return false;
  if (pcb->state == TIME_WAIT) {
    stats_.timeWaitReused++;
  } else {
    stats_.closingReused++;
  }
  // Our flows detach from a pcb once both FINs passed (TcpFlow::
  // releaseIfDone), so no TcpFlow points at it; tcp_abandon without reset
  // frees it, calling no callback of ours.
  tcp_abandon(pcb, 0);
  return true;
}

void NetStack::holdSyn(pbuf* p, const IpPacketInfo& info, const FlowKey& key) {
  const uint8_t flags = info.tcpFlags;
  if (!isUnicast(key.src) || !isUnicast(key.dst)) {  // lwIP would drop it too
    stats_.synNotUnicast++;
    pbuf_free(p);
    return;
  }
  const uint32_t segLen =
      1 + static_cast<uint32_t>(info.payloadLen) + ((flags & tcpflag::kFin) != 0 ? 1 : 0);
  auto it = findPending(key);
  if (it != pending_.end() && it->seq == info.seq) {
    stats_.synRetransmitDropped++;  // the same SYN again: still deciding
    pbuf_free(p);
    return;
  }
  if (flowCount_ >= options_.maxFlows) {
    stats_.synOverFlowCap++;
    sendRst(key, info.seq, segLen);
    pbuf_free(p);
    return;
  }
  // Hold a right-sized copy: the input pbuf may be MTU-sized.
  pbuf* copy = pbuf_alloc(PBUF_RAW, p->tot_len, PBUF_RAM);
  if (copy == nullptr) {
    pbuf_free(p);
    return;
  }
  pbuf_copy(copy, p);
  pbuf_free(p);
  if (it != pending_.end()) {
    // A new SYN (another ISN) on a pending 4-tuple: the app gave up on the
    // first attempt and its kernel reused the port. Answering the old SYN
    // would make the app reset our SYN-ACK; hold the new one instead, and
    // keep the decision already under way (same destination).
    pbuf_free(it->syn);
    it->syn = copy;
    it->seq = info.seq;
    it->segLen = segLen;
    stats_.synReplaced++;
    return;
  }
  if (pending_.size() >= options_.maxPendingSyns) {
    pbuf_free(pending_.front().syn);
    pending_.pop_front();
    stats_.synEvicted++;
  }
  pending_.push_back(Pending{key, copy, info.seq, segLen, tick_});
  stats_.synHeld++;
  callbacks_.onTcpSyn(key);
}

tcp_pcb* NetStack::findPcb(const FlowKey& key) const noexcept {
  ip_addr_t src, dst;
  toLwip(key.src, src, netif_);
  toLwip(key.dst, dst, netif_);
  return vt_tcp_pcb_lookup(&src, key.srcPort, &dst, key.dstPort, netifIdx_);  // the pcb index
}

bool NetStack::isOwnAddress(const IpAddress& a) const noexcept {
  return (options_.ipv4 && *options_.ipv4 == a) || (options_.ipv6 && *options_.ipv6 == a);
}

std::list<NetStack::Pending>::iterator NetStack::findPending(const FlowKey& key) {
  for (auto it = pending_.begin(); it != pending_.end(); ++it) {
    if (it->key == key) return it;
  }
  return pending_.end();
}

bool NetStack::acceptPending(const FlowKey& key) {
  LwipEntry entry(this);
  return decide(key, true);
}
bool NetStack::rejectPending(const FlowKey& key) {
  LwipEntry entry(this);
  return decide(key, false);
}

bool NetStack::dropPending(const FlowKey& key) {
  auto it = findPending(key);
  if (it == pending_.end()) return false;
  LwipEntry entry(this);
  if (it->syn != nullptr) pbuf_free(it->syn);
  pending_.erase(it);
  return true;
}

bool NetStack::decide(const FlowKey& key, bool accept) {
  auto it = findPending(key);
  if (it == pending_.end()) return false;
  deferred_.push_back(Deferred{*it, accept});
  pending_.erase(it);
  if (depth_ == 0) leave();  // not inside input()/onTimer()/lwIP: run now
  return true;
}

void NetStack::inject(pbuf* p) {
  // ip_input owns p when it returns ERR_OK (it always does for IPv4/IPv6).
  if (ip_input(p, netif_) != ERR_OK) pbuf_free(p);
}

void NetStack::sendRst(const FlowKey& key, uint32_t seq, uint32_t segLen) {
  ip_addr_t local, remote;
  toLwip(key.dst, local, netif_);
  toLwip(key.src, remote, netif_);
  // tcp_rst without a pcb routes with ip_route, which refuses a netif
  // without an address of that family; a stand-in pcb bound to our netif
  // (all tcp_rst reads: netif index, ttl, tos, hints) avoids that.
  tcp_pcb via{};
  via.netif_idx = netif_get_index(netif_);
  via.ttl = TCP_TTL;
  // RFC 9293 3.10.7.1: in reply to a SYN, <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>.
  tcp_rst(&via, 0, seq + segLen, &local, &remote, key.dstPort, key.srcPort);
  stats_.rstSent++;
}

void NetStack::leave() {
  if (depth_ > 0 || destroying_) return;
  // sendUdp calls this without the lwIP lock; deferred work enters lwIP.
  if (!deferred_.empty()) {
    LwipEntry entry(this);
    runDeferred();
  }
  if (batchDepth_ == 0 && !ackQueue_.empty()) {
    LwipEntry entry(this);
    flushAcks();
  }
  updateTimer();
}

NetStack::InputBatch::~InputBatch() {
  if (--stack_.batchDepth_ == 0) stack_.leave();
}

void NetStack::flushAcks() noexcept {
  ++depth_;
  // tcp_output only emits packets (onOutput): no flow callback runs, so the
  // queue does not change under the loop.
  for (TcpFlow* f : ackQueue_) {
    f->ackQueued_ = false;
    f->unacked_ = 0;
    tcp_pcb* pcb = f->pcb_;
    if (pcb != nullptr && (pcb->flags & TF_ACK_DELAY) != 0) {
      tcp_set_flags(pcb, TF_ACK_NOW);
      tcp_output(pcb);
    }
  }
  ackQueue_.clear();
  --depth_;
}

void NetStack::runDeferred() {
  while (!deferred_.empty()) {
    std::vector<Deferred> batch;
    batch.swap(deferred_);
    ++depth_;
    for (Deferred& d : batch) {
      if (d.accept) {
        inject(d.pending.syn);
      } else {
        sendRst(d.pending.key, d.pending.seq, d.pending.segLen);
        pbuf_free(d.pending.syn);
      }
    }
    --depth_;
  }
}

void NetStack::onTimer() {
  LwipEntry entry(this);
  if (depth_ > 0) return;
  ++depth_;
  // One lwIP tick per kTickMs of the interval the owner runs us at. What
  // tcp_tmr() does, with its fast/slow alternation kept per stack (lwIP's
  // is one static for the process); the entry installed our tcp_ticks, and
  // multi-netif.patch makes both timers skip other netifs' pcbs.
  const uint32_t ticks = timerIntervalMs_ > kTickMs ? timerIntervalMs_ / kTickMs : 1;
  for (uint32_t i = 0; i < ticks; ++i) {
    ++tick_;
    tcp_fasttmr();
    if ((++timerParity_ & 1) != 0) tcp_slowtmr();
  }
  boundTimeWait();
  const uint64_t maxAge = options_.pendingSynTimeoutMs / kTickMs;
  while (!pending_.empty() && tick_ - pending_.front().heldAtTick > maxAge) {
    pbuf_free(pending_.front().syn);
    pending_.pop_front();
    stats_.synExpired++;
  }
  const size_t expired = reassembler_.expire(tick_);
  stats_.udpReassemblyTimeout += expired;
  udpDropReassembly(expired);
  --depth_;
  leave();
}

// Counts this stack's TIME_WAIT pcbs and drops the oldest beyond
// maxTimeWait. lwIP puts a pcb at the head of tcp_tw_pcbs when it enters
// TIME_WAIT and never reorders that list, so the later ones of ours are the
// older. Other NetStacks' pcbs in the same list are left alone.
void NetStack::boundTimeWait() noexcept {
  size_t n = 0;
  tcp_pcb* prev = nullptr;
  tcp_pcb* pcb = tcp_tw_pcbs;
  while (pcb != nullptr) {
    tcp_pcb* next = pcb->next;
    if (pcb->netif_idx == netifIdx_ && ++n > options_.maxTimeWait) {
      // Move the victim to the head so that tcp_abandon's list removal
      // finds it at once instead of scanning the list for each.
      if (prev != nullptr) {
        prev->next = next;
        pcb->next = tcp_tw_pcbs;
        tcp_tw_pcbs = pcb;
      }
      tcp_abandon(pcb, 0);
      stats_.timeWaitEvicted++;
    } else {
      prev = pcb;
    }
    pcb = next;
  }
  timeWaitCount_ = std::min(n, options_.maxTimeWait);
}

bool NetStack::timerNeeded() const noexcept {
  if (!pending_.empty() || !deferred_.empty() || !reassembler_.empty()) return true;
  if (netifIdx_ == NETIF_NO_INDEX) return false;
  LwipLockGuard lock;
  return vt_tcp_pcb_count(netifIdx_) != 0;  // our active and TIME_WAIT pcbs
}

void NetStack::updateTimer() {
  if (depth_ > 0 || destroying_) return;
  uint32_t want = 0;
  if (timerNeeded()) want = tick_ < busyUntilTick_ ? kTickMs : kIdleIntervalMs;
  if (want != timerIntervalMs_) {
    timerIntervalMs_ = want;
    callbacks_.onTimerInterval(want);
  }
}

void NetStack::emit(pbuf* p) {
  if (destroying_) return;
  busyUntilTick_ = tick_ + kBusyMs / kTickMs;  // lwIP's output is TCP only (UDP: sendUdp)
  iovec iov[kMaxIov];
  int n = 0;
  const pbuf* q = p;
  for (; q != nullptr && n < kMaxIov; q = q->next) {
    if (q->len == 0) continue;
    iov[n].iov_base = q->payload;
    iov[n].iov_len = q->len;
    ++n;
  }
  std::vector<uint8_t> flat;
  if (q != nullptr) {  // a chain longer than kMaxIov: rare, flatten it
    flat.resize(p->tot_len);
    pbuf_copy_partial(p, flat.data(), p->tot_len, 0);
    iov[0].iov_base = flat.data();
    iov[0].iov_len = flat.size();
    n = 1;
  }
  stats_.packetsOut++;
  PacketView view{iov, n, p->tot_len};
  if (gsoOutput_ && vt_tcp_out_gso_mss != 0) markGso(view);
  vt_tcp_out_gso_mss = 0;  // set again by lwIP's hook for its next TCP segment
  ++depth_;  // acceptPending etc. from onOutput are deferred
  callbacks_.onOutput(view);
  --depth_;
}

void NetStack::markGso(PacketView& v) noexcept {
  // lwIP builds the IP and TCP headers in a segment's first pbuf.
  if (v.iovCount < 1) return;
  auto* h = static_cast<uint8_t*>(v.iov[0].iov_base);
  const size_t first = v.iov[0].iov_len;
  if (first < 40) return;
  size_t ip = 0;
  bool v6 = false;
  if ((h[0] >> 4) == 4 && h[9] == 6) {
    ip = static_cast<size_t>(h[0] & 0x0f) * 4;
  } else if ((h[0] >> 4) == 6 && h[6] == 6) {
    ip = 40;
    v6 = true;
  } else {
    return;
  }
  if (first < ip + 20) return;
  const size_t tcp = static_cast<size_t>(h[ip + 12] >> 4) * 4;
  if (tcp < 20 || first < ip + tcp || v.size < ip + tcp) return;
  // The app's MSS counts the options as lwIP's does: payload per piece.
  if (vt_tcp_out_gso_mss <= tcp - 20) return;
  const size_t piece = vt_tcp_out_gso_mss - (tcp - 20);
  if (v.size - ip - tcp <= piece) return;  // fits one segment: a plain packet
  // The pseudo-header's sum, not complemented (what the kernel's own
  // CHECKSUM_PARTIAL segments carry); the segment's length is the whole.
  const size_t alen = v6 ? 16 : 4;
  InetChecksum pseudo;
  pseudo.add(h + (v6 ? 8 : 12), 2 * alen);  // source and destination
  pseudo.addBe16(6);
  pseudo.addBe16(static_cast<uint16_t>(v.size - ip));
  const uint16_t sum = static_cast<uint16_t>(~pseudo.finish());
  h[ip + 16] = static_cast<uint8_t>(sum >> 8);
  h[ip + 17] = static_cast<uint8_t>(sum & 0xff);
  v.gsoSize = static_cast<uint16_t>(piece);
  v.l4Offset = static_cast<uint8_t>(ip);
  v.headerLen = static_cast<uint8_t>(ip + tcp);
  v.v6 = v6;
}

void NetStack::linkFlow(TcpFlow* flow) noexcept {
  flow->next_ = flows_;
  if (flows_ != nullptr) flows_->prev_ = flow;
  flows_ = flow;
  ++flowCount_;
}

void NetStack::unlinkFlow(TcpFlow* flow) noexcept {
  if (flow->ackQueued_) {
    ackQueue_.erase(std::find(ackQueue_.begin(), ackQueue_.end(), flow));
    flow->ackQueued_ = false;
  }
  if (flow->prev_ != nullptr) flow->prev_->next_ = flow->next_;
  if (flow->next_ != nullptr) flow->next_->prev_ = flow->prev_;
  if (flows_ == flow) flows_ = flow->next_;
  flow->prev_ = flow->next_ = nullptr;
  --flowCount_;
  updateTimer();
}

}  // namespace vt::netstack
