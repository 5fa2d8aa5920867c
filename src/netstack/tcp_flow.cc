#include "netstack/tcp_flow.h"

#include <algorithm>
#include <cassert>

#include "netstack/lwip_lock.h"
#include "netstack/net_stack.h"

extern "C" {
#include "lwip/pbuf.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/tcp.h"
}

namespace vt::netstack {
namespace {

constexpr size_t kU16Max = 0xFFFF;  // tcp_write / tcp_recved take u16 lengths
constexpr u8_t kPollInterval = 1000 / (2 * TCP_TMR_INTERVAL);  // 1 s in lwIP's slow ticks
// The largest segment (payload and options) built for TUN GSO: IPv4's
// 65535-byte total less 20 bytes of IP and 20 of TCP header, rounded down.
constexpr unsigned kGsoMaxSegment = 65000;

// Release hook of a Slice that adopted one pbuf of a received chain; the
// owner may drop it outside any NetStack call: lock.
void releasePbuf(void* ctx, uint8_t*) noexcept {
  LwipLockGuard lock;
  pbuf_free(static_cast<pbuf*>(ctx));
}

// Counts a trampoline's time inside the owner so that abort() from there
// makes the trampoline return ERR_ABRT.
struct CallbackScope {
  explicit CallbackScope(int& depth) noexcept : depth_(depth) { ++depth_; }
  ~CallbackScope() { --depth_; }
  int& depth_;
};

}  // namespace

// SAFETY (all trampolines): lwIP calls them on the NetStack thread with
// `arg` = the TcpFlow set by tcp_arg. detach() clears arg and callbacks
// before the flow lets go of the pcb, so `arg` is always alive here.
struct TcpFlowGlue {
  static err_t result(TcpFlow* f) noexcept {
    if (f->callbackDepth_ == 0 && f->abortedInCallback_) {
      f->abortedInCallback_ = false;
      return ERR_ABRT;
    }
    return ERR_OK;
  }

  // Owns `p` (rule: the recv callback always takes the pbuf).
  static err_t onRecv(void* arg, tcp_pcb* pcb, pbuf* p, err_t err) noexcept {
    auto* f = static_cast<TcpFlow*>(arg);
    if (f == nullptr || f->pcb_ != pcb) {  // cannot happen: detach clears arg
      if (p != nullptr) {
        tcp_recved(pcb, p->tot_len);
        pbuf_free(p);
      }
      return ERR_OK;
    }
    if (p == nullptr) {  // FIN from the app
      f->rxFin_ = true;
      BufferChain none;
      {
        CallbackScope scope(f->callbackDepth_);
        f->deliver(none, true);
      }
      if (f->abortedInCallback_) return result(f);
      f->releaseIfDone();
      return ERR_OK;
    }
    if (err != ERR_OK) {
      pbuf_free(p);
      return ERR_OK;
    }
    // Each pbuf of the chain becomes its own Slice with its own reference,
    // so the owner may keep and free them in any order; our reference on
    // the head goes last.
    BufferChain chain;
    bool push = false;
    for (pbuf* q = p; q != nullptr; q = q->next) {
      push = push || (q->flags & PBUF_FLAG_PUSH) != 0;
      if (q->len == 0) continue;
      pbuf_ref(q);
      chain.append(Slice::adopt(static_cast<uint8_t*>(q->payload), q->len, releasePbuf, q));
    }
    const size_t bytes = chain.size();
    pbuf_free(p);
    f->delivered_ += bytes;
    {
      CallbackScope scope(f->callbackDepth_);
      f->deliver(chain, false);
    }
    // A segment with PSH (the app's write ended: a request, a line), or one
    // clearly shorter than the MSS, is ACKed at once: lwIP would delay the
    // ACK to the next fast timer, and an app with Nagle on holds its next
    // small write until that ACK, a timer-paced stall for nothing on a ~0
    // RTT hop. Other (full) segments are ACKed once per input batch
    // (ack-batch.patch, ackLater). The MSS less 40 bytes of options: the
    // app's segments carry timestamps, so "full" is below pcb->mss (the
    // app's own MSS: vt_gso_mss when TUN offload raised pcb->mss).
    if (f->pcb_ == pcb) {
      const u16_t appMss = pcb->vt_gso_mss != 0 ? pcb->vt_gso_mss : pcb->mss;
      if (push || bytes + 40 < appMss) {
        tcp_set_flags(pcb, TF_ACK_NOW);
        f->unacked_ = 0;
      } else {
        f->ackLater(bytes);
      }
    }
    return result(f);
  }

  static err_t onSent(void* arg, tcp_pcb*, u16_t) noexcept { return writable(arg); }
  static err_t onPoll(void* arg, tcp_pcb*) noexcept { return writable(arg); }

  static err_t writable(void* arg) noexcept {
    auto* f = static_cast<TcpFlow*>(arg);
    if (f == nullptr || f->pcb_ == nullptr) return ERR_OK;
    if (f->writeBlocked_ && f->callbacks_ != nullptr && f->writeSpace() > 0) {
      f->writeBlocked_ = false;
      CallbackScope scope(f->callbackDepth_);
      f->callbacks_->onWritable();
    }
    return result(f);
  }

  // lwIP already freed the pcb: forget it first, then tell the owner.
  static void onErr(void* arg, err_t err) noexcept {
    auto* f = static_cast<TcpFlow*>(arg);
    if (f == nullptr) return;
    f->pcb_ = nullptr;
    TcpFlow::CloseReason reason = err == ERR_RST    ? TcpFlow::CloseReason::kReset
                                  : err == ERR_CLSD ? TcpFlow::CloseReason::kClosed
                                                    : TcpFlow::CloseReason::kAborted;
    if (f->callbacks_ == nullptr) {
      f->heldClosed_ = true;
      f->heldReason_ = reason;
      return;
    }
    CallbackScope scope(f->callbackDepth_);
    f->callbacks_->onClosed(reason);
  }
};

const char* TcpFlow::closeReasonName(CloseReason r) noexcept {
  switch (r) {
    case CloseReason::kReset: return "reset by app";
    case CloseReason::kAborted: return "aborted by stack";
    case CloseReason::kClosed: return "closed";
  }
  return "?";
}

TcpFlow::TcpFlow(NetStack& stack, tcp_pcb* pcb, const FlowKey& key)
    : stack_(&stack), pcb_(pcb), key_(key) {
  stack_->linkFlow(this);
  attach();
}

TcpFlow::~TcpFlow() {
  // Deleting from inside our own callback would leave lwIP and the
  // trampoline with a dangling `this` (bridge rule: defer the delete).
  assert(callbackDepth_ == 0);
  LwipEntry entry(stack_);
  if (pcb_ != nullptr) abortPcb();  // not closed cleanly: the app sees RST
  if (stack_ != nullptr) stack_->unlinkFlow(this);
}

void TcpFlow::attach() noexcept {
  tcp_arg(pcb_, this);
  tcp_recv(pcb_, TcpFlowGlue::onRecv);
  tcp_sent(pcb_, TcpFlowGlue::onSent);
  tcp_err(pcb_, TcpFlowGlue::onErr);
  tcp_poll(pcb_, TcpFlowGlue::onPoll, kPollInterval);
  // A relay writes what the upstream delivered as soon as it arrives;
  // Nagle would hold a small tail until the app's (delayed) ACK. write()
  // already batches one call's bytes with TCP_WRITE_FLAG_MORE.
  tcp_nagle_disable(pcb_);
  tcp_set_flags(pcb_, TF_VT_ACK_BATCH);
  // TUN offload (docs/netstack.md "TUN offload"): segments of up to ~64 KiB,
  // a whole multiple of what the app takes, which the kernel delivers as
  // one (or cuts into pcb->mss pieces where it forwards them). The window,
  // cwnd and tcp_write's snd_wnd_max / 2 bound still hold.
  if (stack_ != nullptr && stack_->gsoOutput() && pcb_->vt_gso_mss == 0 && pcb_->mss >= 536) {
    const unsigned pieces = kGsoMaxSegment / pcb_->mss;
    if (pieces >= 2) {
      pcb_->vt_gso_mss = pcb_->mss;
      pcb_->mss = static_cast<u16_t>(pieces * pcb_->mss);
    }
  }
}

void TcpFlow::ackLater(size_t n) noexcept {
  // The window the app can use: TCP_WND with window scaling, else 64 KiB.
  const uint32_t window = (pcb_->flags & TF_WND_SCALE) != 0 ? TCP_WND : 0xFFFF;
  unacked_ += static_cast<uint32_t>(std::min<size_t>(n, window));
  if (unacked_ >= window / 4) {
    // The app must not wait for our batch to end with its window closing:
    // the ACK goes out at the end of this segment's processing (tcp_input).
    tcp_set_flags(pcb_, TF_ACK_NOW);
    unacked_ = 0;
    return;
  }
  if (!ackQueued_ && stack_ != nullptr) {
    ackQueued_ = true;
    stack_->ackQueue_.push_back(this);
  }
}

void TcpFlow::detach() noexcept {
  if (pcb_ == nullptr) return;
  tcp_arg(pcb_, nullptr);
  tcp_recv(pcb_, nullptr);
  tcp_sent(pcb_, nullptr);
  tcp_err(pcb_, nullptr);
  tcp_poll(pcb_, nullptr, 0);
  pcb_ = nullptr;
}

void TcpFlow::abortPcb() noexcept {
  tcp_pcb* pcb = pcb_;
  detach();
  // tcp_abort's RST carries SND.NXT. The app takes a RST at once only at
  // exactly its RCV.NXT (RFC 5961); one elsewhere in its window earns a
  // challenge ACK, which Linux sends at most every 500 ms per socket and
  // which our listener answers with a RST at the ACK number, and at a
  // closed window (the app stopped reading) any other RST is dropped
  // silently: the app would hang until it reads again. RCV.NXT is SND.UNA
  // or the end of one of the unacked segments (the TUN delivers whole
  // segments in order; a zero-window probe moves SND.NXT one byte past
  // it), so a RST goes at each of those too, up to kMaxResets: the exact
  // one resets the app; those below its RCV.NXT are dropped, those above
  // are in its window at most.
  if (pcb->state == ESTABLISHED || pcb->state == CLOSE_WAIT || pcb->state == FIN_WAIT_1 ||
      pcb->state == FIN_WAIT_2 || pcb->state == CLOSING || pcb->state == LAST_ACK) {
    constexpr int kMaxResets = 32;
    int sent = 0;
    const u32_t own = pcb->snd_nxt;  // tcp_abort's own RST
    auto rst = [&](u32_t seq) {
      if (seq == own || sent >= kMaxResets || TCP_SEQ_GT(seq, pcb->snd_nxt)) return;
      tcp_rst(pcb, seq, pcb->rcv_nxt, &pcb->local_ip, &pcb->remote_ip, pcb->local_port,
              pcb->remote_port);
      ++sent;
    };
    rst(pcb->lastack);
    for (tcp_seg* seg = pcb->unacked; seg != nullptr; seg = seg->next) {
      rst(lwip_ntohl(seg->tcphdr->seqno) + TCP_TCPLEN(seg));
    }
  }
  tcp_abort(pcb);
  if (callbackDepth_ > 0) abortedInCallback_ = true;
  if (stack_ != nullptr) {
    if (stack_->acceptingPcb_ == pcb) stack_->acceptingAborted_ = true;
    stack_->updateTimer();
  }
}

void TcpFlow::releaseIfDone() noexcept {
  // Both FINs sent: lwIP completes LAST_ACK / TIME_WAIT on its own and
  // frees the pcb silently (TIME_WAIT pcbs get no error callback), so we
  // must not keep a pointer to it.
  if (pcb_ != nullptr && rxFin_ && txShut_) detach();
}

void TcpFlow::stackGone() noexcept {
  if (pcb_ != nullptr) {
    tcp_pcb* pcb = pcb_;
    detach();
    tcp_abort(pcb);
  }
  NetStack* stack = stack_;
  stack_ = nullptr;
  stack->unlinkFlow(this);
}

void TcpFlow::setCallbacks(Callbacks* callbacks) {
  callbacks_ = callbacks;
  if (callbacks_ == nullptr) return;
  if (held_ != nullptr || heldFin_) {
    bool fin = std::exchange(heldFin_, false);
    std::unique_ptr<BufferChain> held = std::move(held_);
    BufferChain none;
    callbacks_->onData(held != nullptr ? *held : none, fin);
  }
  if (heldClosed_ && callbacks_ != nullptr) {
    heldClosed_ = false;
    callbacks_->onClosed(heldReason_);
  }
}

void TcpFlow::deliver(BufferChain& data, bool endStream) {
  if (callbacks_ == nullptr) {
    if (held_ == nullptr) held_ = std::make_unique<BufferChain>();
    held_->moveFrom(data);
    heldFin_ = heldFin_ || endStream;
    return;
  }
  callbacks_->onData(data, endStream);
}

size_t TcpFlow::writeSpace() const noexcept {
  if (pcb_ == nullptr || txShut_) return 0;
  LwipEntry entry(stack_);
  size_t space = pcb_->snd_buf;  // tcp_sndbuf() clamps to 0xFFFF
  if (tcp_sndqueuelen(pcb_) >= TCP_SND_QUEUELEN) space = 0;
  if (space == 0) writeBlocked_ = true;
  return space;
}

size_t TcpFlow::write(BufferChain& data) {
  if (pcb_ == nullptr || txShut_ || data.empty()) return 0;
  LwipEntry entry(stack_);  // tcp_output reads tcp_ticks (RTT sample)
  const size_t budget = std::min(data.size(), static_cast<size_t>(pcb_->snd_buf));
  size_t done = 0;
  bool full = false;
  for (size_t i = 0; i < data.sliceCount() && done < budget && !full; ++i) {
    const Slice& s = data.slice(i);
    size_t off = 0;
    while (off < s.size() && done < budget) {
      const size_t n = std::min({s.size() - off, budget - done, kU16Max});
      const u8_t flags = TCP_WRITE_FLAG_COPY | (done + n < budget ? TCP_WRITE_FLAG_MORE : 0);
      if (tcp_write(pcb_, s.data() + off, static_cast<u16_t>(n), flags) != ERR_OK) {
        full = true;  // ERR_MEM: queue full; resume on onWritable
        break;
      }
      off += n;
      done += n;
    }
  }
  if (done > 0) {
    tcp_output(pcb_);
    data.drain(done);
    written_ += done;
  }
  if (!data.empty()) writeBlocked_ = true;
  return done;
}

void TcpFlow::consumed(size_t n) noexcept {
  n = std::min(n, unconsumed());
  consumed_ += n;
  if (pcb_ == nullptr || n == 0) return;
  LwipEntry entry(stack_);
  while (pcb_ != nullptr && n > 0) {
    const size_t chunk = std::min(n, kU16Max);
    tcp_recved(pcb_, static_cast<u16_t>(chunk));
    n -= chunk;
  }
}

void TcpFlow::shutdownWrite() noexcept {
  if (pcb_ == nullptr || txShut_) return;
  LwipEntry entry(stack_);
  txShut_ = true;
  // On ERR_MEM for the FIN lwIP marks the pcb and retries from tcp_tmr.
  if (tcp_shutdown(pcb_, 0, 1) != ERR_OK) {
    abortPcb();
    return;
  }
  releaseIfDone();
}

void TcpFlow::close() noexcept {
  if (pcb_ == nullptr) return;
  LwipEntry entry(stack_);
  tcp_pcb* pcb = pcb_;
  detach();
  if (tcp_close(pcb) != ERR_OK) {
    pcb_ = pcb;  // tcp_close could not queue the FIN: reset instead
    abortPcb();
    return;
  }
  if (stack_ != nullptr) stack_->updateTimer();
}

void TcpFlow::abort() noexcept {
  if (pcb_ == nullptr) return;
  LwipEntry entry(stack_);
  abortPcb();
}

}  // namespace vt::netstack
