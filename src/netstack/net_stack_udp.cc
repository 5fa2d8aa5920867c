// NetStack's UDP half, beside lwIP: datagrams from the app to onUdp
// (reassembling fragments), and sendUdp() to the app from any source.
// Why not lwIP's udp.c: see docs/netstack.md.
#include <cstring>

#include "netstack/lwip_lock.h"
#include "netstack/net_stack.h"

extern "C" {
#include "lwip/pbuf.h"
}

namespace vt::netstack {
namespace {

// Below this a payload is copied and the input buffer freed at once: an
// MTU-sized buffer should not stay pinned behind a 40-byte DNS query.
constexpr size_t kCopyBelow = 256;
// What a held fragment costs beyond its packet bytes (pbuf, bookkeeping).
constexpr size_t kFragmentOverhead = 64;
constexpr uint8_t kProtoTcp = 6;

// The owner may drop a payload outside any NetStack call: lock.
void releasePbuf(void* ctx, uint8_t* /*data*/) noexcept {
  LwipLockGuard lock;
  pbuf_free(static_cast<pbuf*>(ctx));
}

// Bytes [off, off+len) of the single-pbuf packet `p` as a Slice. Takes `p`.
Slice takeBytes(pbuf* p, size_t off, size_t len) {
  auto* base = static_cast<uint8_t*>(p->payload);
  if (len < kCopyBelow) {
    Slice s = len == 0 ? Slice() : Slice::copyOf(base + off, len);
    pbuf_free(p);
    return s;
  }
  Slice s = Slice::adopt(base, off + len, releasePbuf, p);
  s.trimFront(off);
  return s;
}

}  // namespace

void NetStack::handleUdp(pbuf* p, const IpPacketInfo& info) {
  const auto* bytes = static_cast<const uint8_t*>(p->payload);
  UdpHeaderInfo h;
  // No checksum check: the app's kernel built the datagram a moment ago,
  // and the far end's transport (TLS) protects it from here on.
  if (!parseUdpHeader(bytes + info.ipHeaderLen, info.totalLen - info.ipHeaderLen, h)) {
    stats_.udpDropped++;
    stats_.udpDropMalformed++;
    pbuf_free(p);
    return;
  }
  const UdpEndpoint app{info.src, h.srcPort};
  const UdpEndpoint dst{info.dst, h.dstPort};
  if (!isUnicast(app.addr) || app.port == 0 || dst.port == 0) {
    stats_.udpDropped++;
    stats_.udpDropBadAddress++;
    pbuf_free(p);
    return;
  }
  BufferChain payload;
  payload.append(takeBytes(p, info.ipHeaderLen + kUdpHeaderLen, h.payloadLen));
  deliverUdp(app, dst, std::move(payload));
}

void NetStack::handleFragment(pbuf* p) {
  FragmentInfo f;
  const bool ok = parseFragment(static_cast<const uint8_t*>(p->payload), p->len, f);
  if (f.protocol != kIpProtoUdp) {  // only UDP is reassembled
    stats_.fragments++;
    // Fragments of protocols the netstack does not terminate (a large
    // ping) are the owner's like their whole packets (the far end
    // reassembles them); TCP fragments stay dropped.
    if (ok && f.protocol != kProtoTcp) offerOther(static_cast<const uint8_t*>(p->payload), p->len);
    pbuf_free(p);
    return;
  }
  stats_.udpFragmentsIn++;
  if (!ok) {
    stats_.udpDropped++;
    stats_.udpDropMalformed++;
    pbuf_free(p);
    return;
  }
  const size_t cost = f.dataOffset + f.dataLen + kFragmentOverhead;
  BufferChain seg;
  size_t evicted = 0;
  const auto outcome =
      reassembler_.add(f, takeBytes(p, f.dataOffset, f.dataLen), cost, tick_, seg, &evicted);
  stats_.udpReassemblyOverflow += evicted;
  udpDropReassembly(evicted);
  switch (outcome) {
    case FragmentReassembler::Outcome::kHeld:
    case FragmentReassembler::Outcome::kDuplicate: return;
    case FragmentReassembler::Outcome::kOverflow:
      stats_.udpReassemblyOverflow++;
      udpDropReassembly(1);
      return;
    case FragmentReassembler::Outcome::kInvalid:
    case FragmentReassembler::Outcome::kTooMany: udpDropReassembly(1); return;
    case FragmentReassembler::Outcome::kComplete: break;
  }
  stats_.udpReassembled++;
  UdpHeaderInfo h;
  const uint8_t* hdr = seg.size() >= kUdpHeaderLen ? seg.linearize(kUdpHeaderLen) : nullptr;
  // parseUdpHeader reads 8 bytes; the length check is against the whole
  // chain. The kernel never pads a fragmented datagram: lengths must agree.
  if (hdr == nullptr || !parseUdpHeader(hdr, seg.size(), h) ||
      h.payloadLen + kUdpHeaderLen != seg.size()) {
    stats_.udpDropped++;
    stats_.udpDropMalformed++;
    return;
  }
  const UdpEndpoint app{f.src, h.srcPort};
  const UdpEndpoint dst{f.dst, h.dstPort};
  if (!isUnicast(app.addr) || app.port == 0 || dst.port == 0) {
    stats_.udpDropped++;
    stats_.udpDropBadAddress++;
    return;
  }
  seg.drain(kUdpHeaderLen);
  deliverUdp(app, dst, std::move(seg));
}

void NetStack::deliverUdp(const UdpEndpoint& app, const UdpEndpoint& dst, BufferChain&& payload) {
  if (callbacks_.onUdp(app, dst, std::move(payload))) {
    stats_.udpIn++;
  } else {
    stats_.udpDropped++;
    stats_.udpDropNoOwner++;
  }
}

void NetStack::udpDropReassembly(size_t n) noexcept {
  stats_.udpDropped += n;
  stats_.udpDropReassembly += n;
}

bool NetStack::sendUdp(const UdpEndpoint& from, const UdpEndpoint& to, const BufferChain& payload) {
  if (destroying_) {
    stats_.udpOutRefused++;
    return false;
  }
  ++depth_;  // acceptPending etc. from onOutput are deferred
  const auto result = udpWriter_.write(from, to, payload, emitUdp, this);
  --depth_;
  stats_.udpOutFragments = udpWriter_.fragmentsWritten();
  bool ok = false;
  switch (result) {
    case UdpPacketWriter::Result::kOk:
      stats_.udpOut++;
      ok = true;
      break;
    case UdpPacketWriter::Result::kTooBig: stats_.udpOutTooBig++; break;
    case UdpPacketWriter::Result::kFamilyMismatch:
    case UdpPacketWriter::Result::kBadAddress: stats_.udpOutRefused++; break;
  }
  if (depth_ == 0) leave();
  return ok;
}

void NetStack::emitUdp(void* ctx, const iovec* iov, int count, size_t size) {
  auto* self = static_cast<NetStack*>(ctx);
  self->stats_.packetsOut++;
  self->callbacks_.onOutput(PacketView{iov, count, size});
}

}  // namespace vt::netstack
