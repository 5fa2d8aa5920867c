#include "event/udp_socket.h"

#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/socket.h>

#include <algorithm>

#include <cerrno>
#include <cstring>

#include "core/log.h"
#include "event/uv_handle.h"

namespace vt::event {

namespace {
// UDP GSO: at most 64 segments (UDP_MAX_SEGMENTS of older kernels) and one
// IP datagram's worth of payload per message.
constexpr size_t kMaxGsoSegments = 64;
constexpr size_t kMaxGsoBytes = 65000;
}  // namespace

// A queued send: owns a copy of the datagram until libuv is done with it.
struct UdpSocket::Impl {
  struct SendReq {
    uv_udp_send_t req;
    std::unique_ptr<uint8_t[]> bytes;
    size_t size = 0;
    std::shared_ptr<UdpSocket*> owner;
  };

  // Receiving: libuv reads up to kRecvBatch datagrams per recvmmsg, each
  // into its own 64 KiB chunk of one buffer. The datagrams are valid only
  // during their callbacks, all made before the next read on this thread,
  // so every socket of a thread shares one buffer (touched only as far as
  // datagrams fill it) instead of each holding its own.
  static constexpr size_t kRecvBatch = 20;  // libuv reads at most 20 per call
  static uint8_t* threadRecvBuffer() {
    thread_local std::unique_ptr<uint8_t[]> buffer(new uint8_t[kRecvBatch * kRecvBufferSize]);
    return buffer.get();
  }

  static void onAlloc(uv_handle_t* h, size_t /*suggested*/, uv_buf_t* buf) {
    auto* self = static_cast<UdpSocket*>(h->data);
    if (self == nullptr) {
      *buf = uv_buf_init(nullptr, 0);
      return;
    }
    *buf = uv_buf_init(reinterpret_cast<char*>(threadRecvBuffer()),
                       static_cast<unsigned>(kRecvBatch * kRecvBufferSize));
  }

  static void onRecv(uv_udp_t* h, ssize_t nread, const uv_buf_t* buf, const sockaddr* addr,
                     unsigned flags) {
    auto* self = static_cast<UdpSocket*>(h->data);
    if (self == nullptr || addr == nullptr) return;  // addr null: nothing more to read
    if (nread < 0 || (flags & UV_UDP_PARTIAL) != 0) {
      ++self->recv_drops_;
      return;
    }
    SocketAddress from = normalize(SocketAddress::fromSockaddr(addr));
    // Zero-length datagrams are real datagrams and are delivered.
    RecvCallback cb = self->recv_cb_;  // the callback may replace recv_cb_
    if (cb) cb(reinterpret_cast<const uint8_t*>(buf->base), static_cast<size_t>(nread), from);
  }

  static void onSent(uv_udp_send_t* req, int /*status*/) {
    std::unique_ptr<SendReq> r(reinterpret_cast<SendReq*>(req));
    UdpSocket* self = *r->owner;
    if (self != nullptr) self->queued_bytes_ -= r->size;
  }

  static SocketAddress normalize(const SocketAddress& a) {
    if (a.family() != AF_INET6) return a;
    const auto* s6 = reinterpret_cast<const sockaddr_in6*>(a.sa());
    if (!IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) return a;
    uint32_t v4 = 0;
    std::memcpy(&v4, s6->sin6_addr.s6_addr + 12, 4);
    return SocketAddress::ipv4(ntohl(v4), a.port());
  }

  // Returns a new bound handle, or null with `rc` set.
  static uv_udp_t* bindSocket(uv_loop_t* loop, bool v6, int& rc) {
    auto* h = new uv_udp_t;
    rc = uv_udp_init_ex(loop, h, (v6 ? AF_INET6 : AF_INET) | UV_UDP_RECVMMSG);
    if (rc != 0) {
      delete h;  // never initialised: nothing for uv_close
      return nullptr;
    }
    rc = bindInitialised(h, v6);
    if (rc != 0) {
      h->data = nullptr;
      closeAndFree(h);
      return nullptr;
    }
    return h;
  }

  static int bindInitialised(uv_udp_t* h, bool v6) {
    SocketAddress any;
    if (v6) {
      uv_os_fd_t fd;
      if (uv_fileno(reinterpret_cast<uv_handle_t*>(h), &fd) == 0) {
        int off = 0;
        // Dual stack whatever the host's bindv6only default says.
        if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off) != 0) return UV_EINVAL;
      }
      uint8_t zero[16] = {};
      any = SocketAddress::ipv6(zero, 0);
    } else {
      any = SocketAddress::ipv4(0, 0);
    }
    int rc = uv_udp_bind(h, any.sa(), 0);
    if (rc == 0) growReceiveBuffer(h);
    return rc;
  }

  // Replies from many peers arrive in bursts (a P2P app's socket, a NAT
  // session shared by many remotes); the default receive buffer (~208 KiB
  // of skb truesize, a few hundred small datagrams) drops them before the
  // loop reads. The kernel charges only what is queued, so a larger limit
  // costs nothing while the socket keeps up. SO_RCVBUFFORCE passes
  // rmem_max with CAP_NET_ADMIN; without it SO_RCVBUF gives what the host
  // allows.
  static void growReceiveBuffer(uv_udp_t* h) {
    uv_os_fd_t fd;
    if (uv_fileno(reinterpret_cast<uv_handle_t*>(h), &fd) != 0) return;
    int want = static_cast<int>(UdpSocket::kReceiveBufferBytes);
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &want, sizeof want) != 0) {
      setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &want, sizeof want);
    }
  }
};

UdpSocket::UdpSocket(Loop& loop, size_t max_queued_bytes)
    : loop_(loop),
      max_queued_bytes_(max_queued_bytes),
      self_(std::make_shared<UdpSocket*>(this)) {}

Result<std::unique_ptr<UdpSocket>> UdpSocket::open(Loop& loop, bool allow_ipv6,
                                                   size_t max_queued_bytes) {
  std::unique_ptr<UdpSocket> s(new UdpSocket(loop, max_queued_bytes));
  int rc = 0;
  if (allow_ipv6) {
    s->handle_ = Impl::bindSocket(loop.raw(), true, rc);
    s->dual_stack_ = s->handle_ != nullptr;
  }
  // No IPv6 on this host: IPv4 only.
  if (s->handle_ == nullptr) s->handle_ = Impl::bindSocket(loop.raw(), false, rc);
  if (s->handle_ == nullptr) return Error(Errc::kIo, std::string("udp socket: ") + uv_strerror(rc));
  s->handle_->data = s.get();
  return s;
}

UdpSocket::~UdpSocket() {
  if (handle_ != nullptr) flush();  // what this pass sent still leaves
  *self_ = nullptr;  // in-flight sends no longer report to us
  if (handle_ != nullptr) {
    uv_udp_recv_stop(handle_);
    closeAndFree(handle_);
  }
}

void UdpSocket::onReceive(RecvCallback cb) {
  recv_cb_ = std::move(cb);
  if (recv_cb_ && !receiving_) {
    receiving_ = uv_udp_recv_start(handle_, &Impl::onAlloc, &Impl::onRecv) == 0;
  } else if (!recv_cb_ && receiving_) {
    uv_udp_recv_stop(handle_);
    receiving_ = false;
  }
}

bool UdpSocket::canSendTo(const SocketAddress& to) const {
  if (to.family() == AF_INET) return true;
  if (to.family() != AF_INET6) return false;
  if (dual_stack_) return true;
  const auto* s6 = reinterpret_cast<const sockaddr_in6*>(to.sa());
  return IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr);
}

bool UdpSocket::sendTo(const SocketAddress& to, const uint8_t* p, size_t n) {
  if (!canSendTo(to) || to.port() == 0) {
    ++send_drops_;
    return false;
  }
  // A dual-stack socket reaches IPv4 through IPv4-mapped addresses; an
  // IPv4 socket needs a mapped destination turned back into IPv4.
  SocketAddress dst = Impl::normalize(to);
  // The largest UDP payload of the family: refused here, not at the flush.
  size_t max_payload = dst.family() == AF_INET ? 65507 : 65527;
  if (n > max_payload) {
    ++send_drops_;
    return false;
  }
  if (dual_stack_ && dst.family() == AF_INET) {
    const auto* s4 = reinterpret_cast<const sockaddr_in*>(dst.sa());
    uint8_t mapped[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    std::memcpy(mapped + 12, &s4->sin_addr.s_addr, 4);
    dst = SocketAddress::ipv6(mapped, to.port());
  }
  if (queued_bytes_ + n > max_queued_bytes_) {
    ++send_drops_;
    return false;
  }
  if (batch_.size() >= kMaxBatchDatagrams || batch_bytes_.size() + n > kMaxBatchBytes) flush();
  if (batch_bytes_.capacity() == 0) batch_bytes_.reserve(std::min(kMaxBatchBytes, n * 16));
  Pending d;
  d.dst = dst;
  d.offset = static_cast<uint32_t>(batch_bytes_.size());
  d.size = static_cast<uint32_t>(n);
  batch_bytes_.insert(batch_bytes_.end(), p, p + n);
  batch_.push_back(d);
  queued_bytes_ += n;
  if (!flush_posted_) {
    flush_posted_ = true;
    loop_.post([token = self_] {
      if (*token != nullptr) (*token)->flush();
    });
  }
  return true;
}

void UdpSocket::sendOne(const SocketAddress& dst, const uint8_t* p, size_t n) {
  uv_buf_t buf = uv_buf_init(const_cast<char*>(reinterpret_cast<const char*>(p)),
                             static_cast<unsigned>(n));
  int rc = uv_udp_try_send(handle_, &buf, 1, dst.sa());
  if (rc >= 0) {
    ++datagrams_sent_;
    ++send_calls_;
    return;
  }
  if (rc != UV_EAGAIN && rc != UV_ENOSYS) {
    ++send_drops_;  // no route, too big, ...: UDP's answer is to drop
    return;
  }
  if (queued_bytes_ + n > max_queued_bytes_) {
    ++send_drops_;
    return;
  }
  auto req = std::make_unique<Impl::SendReq>();
  req->bytes.reset(new uint8_t[n == 0 ? 1 : n]);
  if (n != 0) std::memcpy(req->bytes.get(), p, n);
  req->size = n;
  req->owner = self_;
  buf = uv_buf_init(reinterpret_cast<char*>(req->bytes.get()), static_cast<unsigned>(n));
  rc = uv_udp_send(&req->req, handle_, &buf, 1, dst.sa(), &Impl::onSent);
  if (rc != 0) {
    ++send_drops_;
    return;
  }
  ++datagrams_sent_;  // libuv sends it (or counts nothing more if it fails)
  queued_bytes_ += n;
  req.release();  // freed in onSent
}

void UdpSocket::sendEach(size_t from, size_t to) {
  for (size_t i = from; i < to; ++i) {
    sendOne(batch_[i].dst, batch_bytes_.data() + batch_[i].offset, batch_[i].size);
  }
}

void UdpSocket::flush() {
  flush_posted_ = false;
  if (batch_.empty()) return;
  size_t total = batch_bytes_.size();
  queued_bytes_ -= total;  // sendOne counts again what libuv queues
  // Behind datagrams libuv still queues, everything waits its turn there.
  bool handled = false;
#if defined(__linux__) && defined(UDP_SEGMENT)
  if (uv_udp_get_send_queue_count(handle_) == 0) {
    // Messages: a run for GSO, or one datagram.
    struct Msg {
      size_t first = 0;
      size_t end = 0;
      uint16_t segment = 0;  // 0: no GSO
    };
    constexpr size_t kCmsgSpace = CMSG_SPACE(sizeof(uint16_t));
    Msg msgs[kMaxBatchDatagrams];
    mmsghdr hdrs[kMaxBatchDatagrams];
    iovec iovs[kMaxBatchDatagrams];
    alignas(cmsghdr) uint8_t cmsgs[kMaxBatchDatagrams][kCmsgSpace];
    size_t count = 0;
    for (size_t i = 0; i < batch_.size();) {
      const Pending& head = batch_[i];
      size_t j = i + 1;
      size_t bytes = head.size;
      if (head.size > 0 && head.size <= gso_max_segment_) {
        while (j < batch_.size() && j - i < kMaxGsoSegments && batch_[j].size > 0 &&
               batch_[j].size <= head.size && bytes + batch_[j].size <= kMaxGsoBytes &&
               batch_[j].dst == head.dst) {
          bytes += batch_[j].size;
          ++j;
          if (batch_[j - 1].size < head.size) break;  // only the last may be shorter
        }
      }
      Msg& m = msgs[count];
      m.first = i;
      m.end = j;
      m.segment = j - i > 1 ? static_cast<uint16_t>(head.size) : 0;
      iovs[count].iov_base = batch_bytes_.data() + head.offset;
      iovs[count].iov_len = bytes;
      mmsghdr& h = hdrs[count];
      std::memset(&h, 0, sizeof h);
      h.msg_hdr.msg_name = const_cast<sockaddr*>(head.dst.sa());
      h.msg_hdr.msg_namelen = head.dst.len();
      h.msg_hdr.msg_iov = &iovs[count];
      h.msg_hdr.msg_iovlen = 1;
      if (m.segment != 0) {
        h.msg_hdr.msg_control = cmsgs[count];
        h.msg_hdr.msg_controllen = kCmsgSpace;
        cmsghdr* c = CMSG_FIRSTHDR(&h.msg_hdr);
        c->cmsg_level = SOL_UDP;
        c->cmsg_type = UDP_SEGMENT;
        c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
        std::memcpy(CMSG_DATA(c), &m.segment, sizeof m.segment);
      }
      ++count;
      i = j;
    }
    int fd = this->fd();
    size_t done = 0;
    while (done < count) {
      int r = sendmmsg(fd, hdrs + done, static_cast<unsigned>(count - done), MSG_DONTWAIT);
      ++send_calls_;
      if (r > 0) {
        for (size_t k = done; k < done + static_cast<size_t>(r); ++k) {
          datagrams_sent_ += msgs[k].end - msgs[k].first;
        }
        done += static_cast<size_t>(r);
        continue;
      }
      int err = r == 0 ? EAGAIN : errno;
      if (err == EINTR) continue;
      if (err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS) {
        break;  // the kernel's buffer is full: the rest goes to libuv's queue
      }
      // The first message was refused. A GSO run the kernel will not
      // segment goes datagram by datagram; anything else is dropped.
      const Msg& m = msgs[done];
      if (m.segment != 0 && (err == EINVAL || err == EIO || err == ENOPROTOOPT)) {
        gso_max_segment_ = err == EINVAL ? m.segment - 1u : 0;
        sendEach(m.first, m.end);
      } else {
        send_drops_ += m.end - m.first;
      }
      ++done;
    }
    if (done < count) sendEach(msgs[done].first, batch_.size());
    handled = true;
  }
#endif
  if (!handled) sendEach(0, batch_.size());
  batch_.clear();
  batch_bytes_.clear();
  // A busy socket keeps its batch buffer; an idle one gives it back.
  if (total < 4096) batch_bytes_.shrink_to_fit();
}

bool UdpSocket::sendTo(const SocketAddress& to, BufferChain& payload) {
  size_t n = payload.size();
  const uint8_t* p = n == 0 ? nullptr : payload.linearize(n);
  static const uint8_t kEmpty = 0;
  bool ok = sendTo(to, p == nullptr ? &kEmpty : p, n);
  payload.clear();
  return ok;
}

SocketAddress UdpSocket::localAddress() const {
  sockaddr_storage ss{};
  int len = sizeof ss;
  if (uv_udp_getsockname(handle_, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return {};
  return SocketAddress::fromSockaddr(reinterpret_cast<const sockaddr*>(&ss));
}

int UdpSocket::fd() const {
  uv_os_fd_t fd;
  if (handle_ == nullptr || uv_fileno(reinterpret_cast<const uv_handle_t*>(handle_), &fd) != 0) {
    return -1;
  }
  return fd;
}

bool UdpSocket::setMark(uint32_t fwmark) {
#ifdef SO_MARK
  int fd = this->fd();
  if (fd < 0) return false;
  if (setsockopt(fd, SOL_SOCKET, SO_MARK, &fwmark, sizeof fwmark) != 0) {
    VT_WARN("SO_MARK %u on a UDP socket: %s", fwmark, strerror(errno));
    return false;
  }
  return true;
#else
  (void)fwmark;
  return false;
#endif
}

}  // namespace vt::event
