// TcpFlow: one TCP connection from an app, terminated in lwIP. Handed to
// the owner by NetStack::Callbacks::onTcpAccepted.
//
// Memory per flow: this object (~200 B) + lwIP's tcp_pcb (280 B, heap;
// x86-64, our lwipopts.h) ~ 0.5 KiB with malloc overhead.
// In flight, at most TCP_WND (256 KiB) bytes the owner was given but did not
// consume() yet (the app's own pbufs, adopted, never copied) and at most
// TCP_SND_BUF (256 KiB) bytes copied by write() until the app ACKs them.
// An idle flow holds no buffers.
//
// Bridge rules (docs/architecture.md): heap only, never copied or moved
// (lwIP holds `this`); lwIP calls static noexcept trampolines; the pcb is
// forgotten first in the error callback (lwIP already freed it); callbacks
// are detached before tcp_close/tcp_abort; the owner never destroys a flow
// from inside one of its callbacks (defer the delete to the loop); no
// callback after close()/abort(). All on the NetStack's thread; each method
// takes the process-wide lwIP lock itself (lwip_lock.h), recursively, so
// calling them from inside any NetStack or TcpFlow callback is fine.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "buffer/buffer_chain.h"
#include "netstack/flow_key.h"

struct tcp_pcb;

namespace vt::netstack {

class NetStack;

class TcpFlow {
 public:
  enum class CloseReason {
    kReset,    // the app sent RST
    kAborted,  // lwIP gave up (retransmissions, keepalive, memory)
    kClosed,   // lwIP closed the pcb after both FINs
  };
  static const char* closeReasonName(CloseReason r) noexcept;

  class Callbacks {
   public:
    // Bytes from the app: Slices adopt lwIP's pbufs (no copy); take what
    // you keep with moveFrom (the rest is dropped when this returns), and
    // call consumed() once the bytes are accepted further on. endStream:
    // the app sent FIN (no more data; `data` is empty then).
    virtual void onData(BufferChain& data, bool endStream) = 0;
    // writeSpace() grew after a write() came short or writeSpace() was 0.
    virtual void onWritable() = 0;
    // The connection is gone (the pcb is freed); no more callbacks.
    virtual void onClosed(CloseReason reason) = 0;

   protected:
    ~Callbacks() = default;
  };

  ~TcpFlow();
  TcpFlow(const TcpFlow&) = delete;
  TcpFlow& operator=(const TcpFlow&) = delete;
  TcpFlow(TcpFlow&&) = delete;
  TcpFlow& operator=(TcpFlow&&) = delete;

  const FlowKey& key() const noexcept { return key_; }

  // Until set, received data and FIN are held here and handed over
  // (synchronously) by setCallbacks.
  void setCallbacks(Callbacks* callbacks);

  // True while the pcb exists and neither close() nor abort() was called.
  bool isOpen() const noexcept { return pcb_ != nullptr; }
  bool remoteFinished() const noexcept { return rxFin_; }  // the app sent FIN
  bool writeShut() const noexcept { return txShut_; }

  // Bytes write() would take now (0 when closed or shut).
  size_t writeSpace() const noexcept;
  // Sends at most writeSpace() bytes from the front of `data` (copied into
  // lwIP) and drains them from `data`; returns the count.
  size_t write(BufferChain& data);
  // The owner accepted n more of the delivered bytes: reopens the window.
  void consumed(size_t n) noexcept;
  size_t unconsumed() const noexcept { return static_cast<size_t>(delivered_ - consumed_); }

  // FIN to the app; receiving continues. Once both sides sent FIN the flow
  // lets go of the pcb (lwIP finishes the close alone) and isOpen() turns
  // false without onClosed.
  void shutdownWrite() noexcept;
  // Graceful close (FIN); lwIP resets instead if delivered bytes were not
  // consumed. No callbacks afterwards.
  void close() noexcept;
  // RST to the app. No callbacks afterwards.
  void abort() noexcept;

  uint64_t bytesIn() const noexcept { return delivered_; }
  uint64_t bytesOut() const noexcept { return written_; }

 private:
  friend class NetStack;
  friend struct TcpFlowGlue;   // lwIP trampolines, in tcp_flow.cc
  friend struct NetStackGlue;  // creates flows in the accept callback

  TcpFlow(NetStack& stack, tcp_pcb* pcb, const FlowKey& key);
  void attach() noexcept;
  void detach() noexcept;  // clears the lwIP callbacks and forgets the pcb
  void abortPcb() noexcept;
  void releaseIfDone() noexcept;
  void deliver(BufferChain& data, bool endStream);
  void stackGone() noexcept;
  // `n` bytes of full segments arrived: their ACK waits for the end of the
  // input batch (NetStack::InputBatch), or goes with the segment once a
  // quarter of the window is unacknowledged.
  void ackLater(size_t n) noexcept;

  NetStack* stack_;
  tcp_pcb* pcb_;
  FlowKey key_;
  Callbacks* callbacks_ = nullptr;
  TcpFlow* prev_ = nullptr;  // NetStack's intrusive list
  TcpFlow* next_ = nullptr;
  // Received before setCallbacks; allocated only then (a BufferChain is
  // ~40 B even empty; it was ~0.6 KiB while it sat on std::deque).
  std::unique_ptr<BufferChain> held_;
  bool heldFin_ = false;
  bool rxFin_ = false;
  bool txShut_ = false;
  mutable bool writeBlocked_ = false;
  bool heldClosed_ = false;  // onClosed still owed to the first setCallbacks
  CloseReason heldReason_ = CloseReason::kAborted;
  int callbackDepth_ = 0;           // >0: inside a trampoline for this pcb
  bool abortedInCallback_ = false;  // trampoline must return ERR_ABRT
  bool ackQueued_ = false;  // in the stack's ackQueue_
  uint32_t unacked_ = 0;    // bytes whose ACK waits (ackLater)
  uint64_t delivered_ = 0;
  uint64_t consumed_ = 0;
  uint64_t written_ = 0;
};

}  // namespace vt::netstack
