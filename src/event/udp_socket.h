// UdpSocket: one unconnected UDP socket over uv_udp, bound to the
// unspecified address with port 0. It prefers one dual-stack IPv6 socket
// (IPV6_V6ONLY off) so that one socket, hence one mapped port, reaches both
// IPv4 and IPv6 remotes; on a host without IPv6 it is IPv4 only.
//
// Sending never blocks and never queues without bound. What is sent in one
// loop pass is copied into a batch and handed to the kernel at the end of
// the pass (or when the batch is full): on Linux with one sendmmsg, and a
// run of datagrams to one destination whose sizes allow it (all equal but
// the last, which may be shorter) as one UDP GSO message (UDP_SEGMENT), so
// the kernel routes and queues the run once. What the kernel will not take
// (its buffer full) goes to libuv's send queue, in order; the batch and
// that queue together are capped at `max_queued_bytes`, past which a
// datagram is dropped and counted (UDP may lose packets, but we say how
// many).
//
// Lifetime: like Timer, safe to destroy at any time except from inside its
// own receive callback (defer that with Loop::deferredDelete): the uv
// handle and queued sends are freed by libuv callbacks, not by us.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "buffer/buffer_chain.h"
#include "core/error.h"
#include "event/loop.h"
#include "event/socket_address.h"

struct uv_udp_s;

namespace vt::event {

class UdpSocket {
 public:
  // `data` is valid only during the call. Sources are IPv4 when the peer
  // is IPv4 (IPv4-mapped IPv6 sources are turned back into IPv4).
  using RecvCallback = std::function<void(const uint8_t* data, size_t n, const SocketAddress& from)>;

  static constexpr size_t kDefaultMaxQueuedBytes = 1024 * 1024;
  // Largest datagram we can receive whole (anything bigger is truncated by
  // the kernel and dropped here, counted).
  static constexpr size_t kRecvBufferSize = 65536;

  // `allow_ipv6` false forces an IPv4-only socket (tests, IPv4-only hosts).
  // The kernel receive buffer each socket asks for (see udp_socket.cc).
  static constexpr size_t kReceiveBufferBytes = 2 << 20;
  static Result<std::unique_ptr<UdpSocket>> open(Loop& loop, bool allow_ipv6 = true,
                                                 size_t max_queued_bytes = kDefaultMaxQueuedBytes);
  ~UdpSocket();
  UdpSocket(const UdpSocket&) = delete;
  UdpSocket& operator=(const UdpSocket&) = delete;

  // SO_MARK (Linux, needs CAP_NET_ADMIN): the policy routing of auto_route
  // keeps marked sockets out of the tunnel. False (and a WARN) when refused.
  bool setMark(uint32_t fwmark);
  // The socket (-1 if none): for an embedder's protect() hook.
  int fd() const;
  // Starts receiving (an empty callback stops).
  void onReceive(RecvCallback cb);
  // False when the datagram was dropped (queue over its cap, no route,
  // IPv6 destination on an IPv4 socket, closed); every drop is counted.
  bool sendTo(const SocketAddress& to, const uint8_t* p, size_t n);
  // Same; `payload` is drained whatever happens.
  bool sendTo(const SocketAddress& to, BufferChain& payload);

  // The bound address ("[::]:40000" or "0.0.0.0:40000").
  SocketAddress localAddress() const;
  uint16_t port() const { return localAddress().port(); }
  bool dualStack() const { return dual_stack_; }
  // Whether `to` is reachable from this socket's family.
  bool canSendTo(const SocketAddress& to) const;

  // Hands the batch of this pass to the kernel now (also done at the end
  // of every pass and on destruction).
  void flush();

  size_t queuedBytes() const { return queued_bytes_; }
  uint64_t sendDrops() const { return send_drops_; }
  uint64_t recvDrops() const { return recv_drops_; }
  // Datagrams handed to the kernel, and the system calls that did it: how
  // much the batching saves (tests, the server's NAT line).
  uint64_t datagramsSent() const { return datagrams_sent_; }
  uint64_t sendCalls() const { return send_calls_; }

  // A batch holds at most this many datagrams or bytes before it is sent.
  static constexpr size_t kMaxBatchDatagrams = 64;
  static constexpr size_t kMaxBatchBytes = 128 * 1024;

 private:
  struct Impl;  // the libuv trampolines, in the .cc
  friend struct Impl;
  UdpSocket(Loop& loop, size_t max_queued_bytes);

  struct Pending {
    SocketAddress dst;
    uint32_t offset = 0;
    uint32_t size = 0;
  };
  // Sends one datagram now: uv_udp_try_send, else a copy on libuv's queue.
  void sendOne(const SocketAddress& dst, const uint8_t* p, size_t n);
  // Sends batch_[from, to) one by one through sendOne.
  void sendEach(size_t from, size_t to);

  Loop& loop_;
  std::vector<uint8_t> batch_bytes_;
  std::vector<Pending> batch_;
  bool flush_posted_ = false;
  // GSO is used for segments up to this size (0: never). A run the kernel
  // refuses (EINVAL: a segment over the route's MTU, which alone would have
  // been fragmented) is sent datagram by datagram and the limit lowered.
  size_t gso_max_segment_ = 65535;
  uint64_t datagrams_sent_ = 0;
  uint64_t send_calls_ = 0;
  uv_udp_s* handle_ = nullptr;  // heap; freed in its close callback
  bool dual_stack_ = false;
  size_t max_queued_bytes_;
  size_t queued_bytes_ = 0;
  uint64_t send_drops_ = 0;
  uint64_t recv_drops_ = 0;
  RecvCallback recv_cb_;
  bool receiving_ = false;
  // Shared with in-flight sends so that their callbacks can tell whether
  // we are still alive and give back the queued bytes.
  std::shared_ptr<UdpSocket*> self_;
};

}  // namespace vt::event
