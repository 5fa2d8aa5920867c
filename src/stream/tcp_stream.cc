#include "stream/tcp_stream.h"

#include <sys/socket.h>
#include <uv.h>

#include <algorithm>
#include <cstring>
#include <utility>
#include <vector>

#include "core/log.h"

namespace vt::stream {

namespace {
// One read takes up to 64 KiB (a quarter of the syscalls of 16 KiB for bulk
// data); while the buffer budget is under pressure 16 KiB, since a buffer
// counts whole wherever it is queued, and every stream may read once more
// after the pressure starts.
constexpr size_t kReadSize = 64 * 1024;
constexpr size_t kPressureReadSize = 16 * 1024;
// A chain queued for the kernel that holds more than twice its bytes plus
// this (small pieces in big buffers) is copied into packed buffers first.
constexpr size_t kCompactSlack = 4096;
// What a write request holds besides its chain: the request, libuv's
// copy of the iovecs.
constexpr size_t kWriteReqOverhead = 256;

// `data` in packed 16 KiB buffers (same bytes, a fraction of the memory
// when it was many small pieces).
void compact(BufferChain& data) {
  BufferChain out;
  while (!data.empty()) {
    const size_t n = std::min(data.size(), BufferChain::kDefaultSliceSize);
    Slice s = Slice::allocate(n);
    data.copyOut(0, s.append(n), n);
    data.drain(n);
    out.append(std::move(s));
  }
  data = std::move(out);
}
// uv_try_write and uv_write take iovecs; more slices than this go in the
// queued write (libuv splits it).
constexpr size_t kMaxTryIov = 64;

std::string uvError(const char* what, const std::string& peer, int rc) {
  return std::string(what) + " " + peer + ": " + uv_strerror(rc);
}

std::vector<uv_buf_t> toBufs(BufferChain& chain, size_t max) {
  std::vector<uv_buf_t> bufs;
  size_t n = std::min(chain.sliceCount(), max);
  bufs.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    Slice& s = chain.slice(i);
    if (s.empty()) continue;
    bufs.push_back(uv_buf_init(reinterpret_cast<char*>(s.data()), static_cast<unsigned>(s.size())));
  }
  return bufs;
}

// Takes a stream off its budget. Detached and uncharged before the charge,
// because that charge may end pressure and notify every attached stream:
// this one, still attached with its old charge, would re-sync, and a closed
// stream (0 bytes now) would take its bytes off a second time, wrapping the
// total below zero (pressure then never ends; the peak reads 2^64 - x).
void leaveBudget(BufferBudget*& budget, size_t& charged, TcpStream* self) {
  BufferBudget* b = std::exchange(budget, nullptr);
  const size_t c = std::exchange(charged, 0);
  b->detach(self);
  b->charge(-static_cast<int64_t>(c));
}
}  // namespace

// Heap block owned by libuv from uv_close until the close callback; the
// requests inside complete (ECANCELED at worst) before that callback.
struct TcpStream::Handle {
  uv_tcp_t tcp;
  uv_connect_t connect;
  uv_shutdown_t shutdown;
  TcpStream* owner = nullptr;  // null once the stream closed or died
};

struct TcpStream::WriteReq {
  uv_write_t req;
  BufferChain data;
  Handle* h = nullptr;
  size_t bytes = 0;
  size_t memory = 0;  // what this request holds (bufferedMemory())
};

struct TcpCallbacks {
  static void freeHandle(uv_handle_t* x) { delete static_cast<TcpStream::Handle*>(x->data); }

  static void onConnect(uv_connect_t* req, int status) {
    auto* h = static_cast<TcpStream::Handle*>(req->data);
    TcpStream* self = h->owner;
    if (self == nullptr) return;
    self->connecting_ = false;
    if (status < 0) {
      self->close(CloseReason::kConnectFailed, uvError("connect", self->peerName(), status));
      return;
    }
    self->connected_ = true;
    self->maybeStartReading();
    if (!self->pending_.empty()) {
      BufferChain p = std::move(self->pending_);
      self->flush(p);
    }
    self->maybeShutdown();
    if (self->closed_ || self->callbacks_ == nullptr) return;
    self->callbacks_->onConnected();
    if (self->closed_) return;
    self->checkLowWatermark();
  }

  static void onWrite(uv_write_t* req, int status) {
    auto* w = static_cast<TcpStream::WriteReq*>(req->data);
    TcpStream* self = w->h->owner;
    size_t bytes = w->bytes;
    size_t memory = w->memory;
    delete w;
    if (self == nullptr) return;
    self->inflight_ -= bytes;
    self->inflight_memory_ -= memory;
    if (status < 0) {
      self->close(CloseReason::kReset, uvError("write", self->peerName(), status));
      return;
    }
    self->bytes_sent_ += bytes;
    self->checkLowWatermark();
  }

  static void onShutdown(uv_shutdown_t* req, int status) {
    auto* h = static_cast<TcpStream::Handle*>(req->data);
    TcpStream* self = h->owner;
    if (self == nullptr) return;
    if (status < 0) {
      self->close(CloseReason::kReset, uvError("shutdown", self->peerName(), status));
      return;
    }
    self->shutdown_done_ = true;
    self->maybeFinish(CloseReason::kLocalClose);
  }

  static void onAlloc(uv_handle_t* handle, size_t, uv_buf_t* buf) {
    auto* h = static_cast<TcpStream::Handle*>(handle->data);
    if (h == nullptr || h->owner == nullptr) {
      *buf = uv_buf_init(nullptr, 0);  // libuv reports UV_ENOBUFS, ignored below
      return;
    }
    TcpStream* self = h->owner;
    Slice& slab = self->read_slab_;
    if (!slab.valid()) {
      const bool tight = self->budget_ != nullptr && self->budget_->pressure();
      slab = Slice::allocate(tight ? kPressureReadSize : kReadSize);
    }
    *buf = uv_buf_init(reinterpret_cast<char*>(slab.tail()), static_cast<unsigned>(slab.tailroom()));
  }

  static void onRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t*) {
    auto* h = static_cast<TcpStream::Handle*>(stream->data);
    TcpStream* self = h == nullptr ? nullptr : h->owner;
    if (self == nullptr) return;
    // A read of at least half its buffer keeps it; a shorter one is copied.
    if (nread > 0 && static_cast<size_t>(nread) >= self->read_slab_.capacity() / 2) {
      // Zero copy: the buffer itself goes on (at most half of it unused).
      self->read_slab_.append(static_cast<size_t>(nread));
      self->read_buf_.append(std::move(self->read_slab_));
      self->read_slab_ = Slice();
    } else {
      // A short read is copied out (packed behind earlier bytes, or in a
      // buffer its size): a 16 KiB buffer queued for every 100-byte read
      // held 160 times what it carried (a slow reader fed small segments
      // held 25 MiB a stream). The buffer is let go until the next read,
      // so an idle connection holds none.
      if (nread > 0) self->read_buf_.append(self->read_slab_.tail(), static_cast<size_t>(nread));
      self->read_slab_ = Slice();
    }
    if (nread == 0) return;
    if (nread > 0) {
      self->bytes_received_ += static_cast<uint64_t>(nread);
      if (self->limit_) self->onReadLimit(static_cast<size_t>(nread));  // may pause reading
      if (self->callbacks_ != nullptr) self->callbacks_->onData(self->read_buf_, false);
      return;
    }
    if (nread == UV_EOF) {
      self->read_eof_ = true;
      self->stopReading();
      if (self->callbacks_ != nullptr) self->callbacks_->onData(self->read_buf_, true);
      if (self->closed_) return;
      self->maybeFinish(CloseReason::kRemoteClose);
      return;
    }
    self->close(CloseReason::kReset, uvError("read", self->peerName(), static_cast<int>(nread)));
  }
};

TcpStream::TcpStream(event::Loop& loop, Watermarks wm) : loop_(loop), wm_(wm) {}

std::unique_ptr<TcpStream> TcpStream::create(event::Loop& loop, const event::SocketAddress& peer,
                                             Watermarks wm) {
  std::unique_ptr<TcpStream> s(new TcpStream(loop, wm));
  s->peer_ = peer;
  auto* h = new Handle;
  // _ex creates the socket now, so options such as SO_MARK can be set
  // before connect().
  int rc = uv_tcp_init_ex(loop.raw(), &h->tcp, static_cast<unsigned>(peer.family()));
  if (rc != 0) {
    delete h;
    s->init_error_ = uvError("socket for", peer.toString(), rc);
    return s;
  }
  h->tcp.data = h;
  h->connect.data = h;
  h->shutdown.data = h;
  h->owner = s.get();
  s->h_ = h;
  return s;
}

std::unique_ptr<TcpStream> TcpStream::accept(event::Loop& loop, uv_stream_s* server) {
  std::unique_ptr<TcpStream> s(new TcpStream(loop, Watermarks{}));
  auto* h = new Handle;
  uv_tcp_init(loop.raw(), &h->tcp);
  h->tcp.data = h;
  h->connect.data = h;
  h->shutdown.data = h;
  if (uv_accept(server, reinterpret_cast<uv_stream_t*>(&h->tcp)) != 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(&h->tcp), TcpCallbacks::freeHandle);
    return nullptr;
  }
  h->owner = s.get();
  s->h_ = h;
  s->connected_ = true;
  sockaddr_storage ss{};
  int len = sizeof ss;
  if (uv_tcp_getpeername(&h->tcp, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
    s->peer_ = event::SocketAddress::fromSockaddr(reinterpret_cast<sockaddr*>(&ss));
  }
  return s;
}

TcpStream::~TcpStream() {
  callbacks_ = nullptr;
  if (set_ != nullptr) set_->set_.erase(this);
  if (budget_ != nullptr) leaveBudget(budget_, charged_, this);
  if (h_ != nullptr) {
    h_->owner = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(&h_->tcp), TcpCallbacks::freeHandle);
    h_ = nullptr;
  }
}

void TcpStream::setCallbacks(StreamCallbacks& cb) {
  callbacks_ = &cb;
  maybeStartReading();
}

void TcpStream::connect() {
  if (closed_ || connecting_ || connected_) return;
  connecting_ = true;
  if (h_ == nullptr || refused_) {
    failLater(CloseReason::kConnectFailed, init_error_);
    return;
  }
  int rc = uv_tcp_connect(&h_->connect, &h_->tcp, peer_.sa(), TcpCallbacks::onConnect);
  if (rc != 0) failLater(CloseReason::kConnectFailed, uvError("connect", peerName(), rc));
}

void TcpStream::failLater(CloseReason reason, std::string detail) {
  std::weak_ptr<bool> alive = alive_;
  loop_.post([this, alive, reason, detail = std::move(detail)] {
    if (alive.expired()) return;
    close(reason, detail);
  });
}

void TcpStream::write(BufferChain& data, bool end_stream) {
  if (closed_ || write_end_) {
    data.clear();  // nowhere to go; the caller learns via onClose
    return;
  }
  write_end_ = end_stream;
  if (!connected_) {
    pending_.moveFrom(data);
  } else {
    flush(data);
    maybeShutdown();
  }
  checkHighWatermark();
}

void BufferBudget::charge(int64_t delta) {
  used_ = static_cast<uint64_t>(static_cast<int64_t>(used_) + delta);
  if (used_ > peak_) peak_ = used_;
  bool want = pressure_ ? used_ > limit_ / 4 * 3 : used_ > limit_;
  if (want == pressure_ || notifying_) return;
  pressure_ = want;
  if (want) ++episodes_;
  // A stream may close (and detach) from a watermark callback: walk a copy.
  notifying_ = true;
  std::vector<TcpStream*> all(streams_.begin(), streams_.end());
  for (TcpStream* s : all) {
    if (streams_.count(s) != 0) s->onBudgetPressure();
  }
  notifying_ = false;
}

void TcpStream::setBufferBudget(BufferBudget* budget) {
  if (budget_ != nullptr) leaveBudget(budget_, charged_, this);
  budget_ = budget;
  if (budget_ != nullptr) {
    budget_->attach(this);
    syncBudget();
  }
}

void TcpStream::syncBudget() {
  if (budget_ == nullptr) return;
  const size_t now = closed_ ? 0 : bufferedMemory();
  if (now == charged_) return;
  const int64_t delta = static_cast<int64_t>(now) - static_cast<int64_t>(charged_);
  charged_ = now;
  budget_->charge(delta);
}

void TcpStream::onBudgetPressure() {
  checkHighWatermark();
  checkLowWatermark();
}

size_t TcpStream::highMark() const {
  if (budget_ != nullptr && budget_->pressure()) {
    return std::min(wm_.high, BufferBudget::kPressureHigh);
  }
  return wm_.high;
}

size_t TcpStream::lowMark() const {
  if (budget_ != nullptr && budget_->pressure()) {
    return std::min(wm_.low, BufferBudget::kPressureLow);
  }
  return wm_.low;
}

void TcpStream::setRateLimit(std::shared_ptr<RateLimit> limit) {
  limit_ = std::move(limit);
  if (limit_ && !read_limit_timer_) {
    read_limit_timer_ = std::make_unique<event::Timer>(loop_);
    write_limit_timer_ = std::make_unique<event::Timer>(loop_);
  }
  if (!limit_) {
    if (read_throttled_) {
      read_throttled_ = false;
      read_limit_timer_->stop();
      maybeStartReading();
    }
    if (!throttled_out_.empty()) {
      write_limit_timer_->stop();
      flushNow(throttled_out_);
      maybeShutdown();
    }
  }
}

void TcpStream::onReadLimit(size_t n) {
  // The bytes are in already: charge them, and if that overdrew the
  // bucket, read nothing more until the debt is paid.
  const uint64_t now = loop_.now();
  limit_->in.take(now, n);
  if (read_throttled_ || limit_->in.balance(now) >= 0) return;
  read_throttled_ = true;
  ++limit_->read_pauses;
  stopReading();
  read_limit_timer_->start(limit_->in.msUntil(now, 0), [this] {
    read_throttled_ = false;
    maybeStartReading();
  });
}

void TcpStream::flush(BufferChain& data) {
  if (data.empty() || h_ == nullptr) return;
  if (!limit_) {
    flushNow(data);
    return;
  }
  if (!throttled_out_.empty()) {  // keep the order
    throttled_out_.moveFrom(data);
    return;
  }
  throttled_out_.moveFrom(data);
  releaseThrottled();
}

void TcpStream::releaseThrottled() {
  if (h_ == nullptr || closed_) return;
  const uint64_t now = loop_.now();
  const double bal = limit_->out.balance(now);
  size_t allow = bal > 0 ? static_cast<size_t>(bal) : 0;
  allow = std::min(allow, throttled_out_.size());
  if (allow > 0) {
    BufferChain head;
    head.moveFrom(throttled_out_, allow);
    limit_->out.take(now, allow);
    flushNow(head);
  }
  if (throttled_out_.empty()) {
    maybeShutdown();
    checkLowWatermark();
    return;
  }
  ++limit_->write_waits;
  const double want = std::min<double>(static_cast<double>(throttled_out_.size()), 16384.0);
  write_limit_timer_->start(limit_->out.msUntil(now, want), [this] { releaseThrottled(); });
}

void TcpStream::flushNow(BufferChain& data) {
  if (data.empty() || h_ == nullptr) return;
  auto* stream = reinterpret_cast<uv_stream_t*>(&h_->tcp);
  // Try the kernel directly only when nothing is queued, to keep order.
  if (inflight_ == 0) {
    std::vector<uv_buf_t> bufs = toBufs(data, kMaxTryIov);
    int n =
        bufs.empty() ? 0 : uv_try_write(stream, bufs.data(), static_cast<unsigned>(bufs.size()));
    if (n > 0) {
      data.drain(static_cast<size_t>(n));
      bytes_sent_ += static_cast<uint64_t>(n);
    }
    // n < 0 (EAGAIN or a real error): uv_write below reports real errors
    // through its callback, i.e. asynchronously.
  }
  if (data.empty()) return;
  // It waits in memory from here on: not in many small pieces.
  if (data.footprint() > 2 * data.size() + kCompactSlack) compact(data);
  auto* w = new WriteReq;
  w->req.data = w;
  w->h = h_;
  w->data.moveFrom(data);
  w->bytes = w->data.size();
  std::vector<uv_buf_t> bufs = toBufs(w->data, SIZE_MAX);
  w->memory = w->data.footprint() + kWriteReqOverhead + bufs.size() * sizeof(uv_buf_t);
  inflight_ += w->bytes;
  inflight_memory_ += w->memory;
  int rc = uv_write(&w->req, stream, bufs.data(), static_cast<unsigned>(bufs.size()),
                    TcpCallbacks::onWrite);
  if (rc != 0) {
    inflight_ -= w->bytes;
    inflight_memory_ -= w->memory;
    delete w;
    failLater(CloseReason::kReset, uvError("write", peerName(), rc));
  }
}

void TcpStream::maybeShutdown() {
  if (!write_end_ || shutdown_sent_ || !connected_ || h_ == nullptr || !throttled_out_.empty()) {
    return;
  }
  shutdown_sent_ = true;
  // libuv runs the shutdown after every queued write has completed.
  int rc = uv_shutdown(&h_->shutdown, reinterpret_cast<uv_stream_t*>(&h_->tcp),
                       TcpCallbacks::onShutdown);
  if (rc != 0) failLater(CloseReason::kReset, uvError("shutdown", peerName(), rc));
}

void TcpStream::readDisable(bool disable) {
  if (closed_) return;
  if (disable) {
    if (read_disable_count_++ == 0) stopReading();
    return;
  }
  if (read_disable_count_ == 0) return;  // unbalanced enable: ignore
  if (--read_disable_count_ == 0) maybeStartReading();
}

void TcpStream::maybeStartReading() {
  if (h_ == nullptr || !connected_ || callbacks_ == nullptr || read_eof_ || reading_ ||
      read_disable_count_ > 0 || read_throttled_) {
    return;
  }
  int rc = uv_read_start(reinterpret_cast<uv_stream_t*>(&h_->tcp), TcpCallbacks::onAlloc,
                         TcpCallbacks::onRead);
  if (rc != 0) {
    failLater(CloseReason::kReset, uvError("read", peerName(), rc));
    return;
  }
  reading_ = true;
}

void TcpStream::stopReading() {
  if (!reading_ || h_ == nullptr) return;
  uv_read_stop(reinterpret_cast<uv_stream_t*>(&h_->tcp));
  reading_ = false;
}

void TcpStream::maybeFinish(CloseReason reason) {
  if (read_eof_ && shutdown_done_) close(reason, "both directions finished");
}

void TcpStream::checkHighWatermark() {
  syncBudget();
  if (closed_ || above_high_ || bufferedMemory() <= highMark()) return;
  above_high_ = true;
  if (callbacks_ != nullptr) callbacks_->onAboveHighWatermark();
}

void TcpStream::checkLowWatermark() {
  syncBudget();
  if (closed_ || !above_high_ || bufferedMemory() > lowMark()) return;
  above_high_ = false;
  if (callbacks_ != nullptr) callbacks_->onBelowLowWatermark();
}

void TcpStream::close(CloseReason reason) {
  close(reason, "");
}

void TcpStream::close(CloseReason reason, const std::string& detail) {
  if (closed_) return;
  closed_ = true;
  if (set_ != nullptr) set_->set_.erase(this);
  if (h_ != nullptr) {
    h_->owner = nullptr;
    // Queued writes are cancelled: close() is abortive; a graceful end is
    // write(..., true) and waiting for the peer.
    uv_close(reinterpret_cast<uv_handle_t*>(&h_->tcp), TcpCallbacks::freeHandle);
    h_ = nullptr;
  }
  reading_ = false;
  pending_.clear();
  throttled_out_.clear();
  read_slab_ = Slice();
  if (budget_ != nullptr) leaveBudget(budget_, charged_, this);
  if (read_limit_timer_) {
    read_limit_timer_->stop();
    write_limit_timer_->stop();
  }
  StreamCallbacks* cb = std::exchange(callbacks_, nullptr);
  VT_DEBUG("tcp %s closed: %s %s (up %llu down %llu)", peerName().c_str(), closeReasonName(reason),
           detail.c_str(), static_cast<unsigned long long>(bytes_sent_),
           static_cast<unsigned long long>(bytes_received_));
  if (cb != nullptr) cb->onClose(reason, detail);
}

size_t TcpStream::bufferedBytes() const {
  // libuv's own count of the queued bytes not yet taken by the kernel: it
  // shrinks with every partial write, where inflight_ shrinks only when a
  // whole write request completes (a 512 KiB request to a slow reader
  // would look stalled for seconds; the drain after both FINs reads this).
  const size_t queued =
      h_ == nullptr ? 0
                    : std::min(inflight_, uv_stream_get_write_queue_size(
                                              reinterpret_cast<const uv_stream_t*>(&h_->tcp)));
  return pending_.size() + queued + throttled_out_.size();
}

size_t TcpStream::bufferedMemory() const {
  // A request's memory is held until it completes, whatever part of it
  // the kernel already took; not below the bytes (bufferedBytes()).
  const size_t memory = (closed_ ? 0 : inflight_memory_) + pending_.footprint() +
                        throttled_out_.footprint();
  return std::max(memory, bufferedBytes());
}

std::string TcpStream::peerName() const {
  return peer_.toString();
}

void TcpStream::setNoDelay(bool enable) {
  if (h_ != nullptr) uv_tcp_nodelay(&h_->tcp, enable ? 1 : 0);
}

void TcpStream::setKeepAlive(bool enable, unsigned delay_s) {
  if (h_ != nullptr) uv_tcp_keepalive(&h_->tcp, enable ? 1 : 0, delay_s);
}

int TcpStream::fd() const {
  uv_os_fd_t fd;
  if (h_ == nullptr || uv_fileno(reinterpret_cast<const uv_handle_t*>(&h_->tcp), &fd) != 0) return -1;
  return fd;
}

void TcpStream::joinSet(std::shared_ptr<TcpStreamSet> set) {
  if (set_ != nullptr) set_->set_.erase(this);
  set_ = std::move(set);
  if (set_ != nullptr && !closed_) set_->set_.insert(this);
}

void TcpStream::refuse(std::string why) {
  refused_ = true;
  init_error_ = std::move(why);
}

bool TcpStream::setMark(uint32_t fwmark) {
#ifdef SO_MARK
  int fd = this->fd();
  if (fd < 0) return false;
  if (setsockopt(fd, SOL_SOCKET, SO_MARK, &fwmark, sizeof fwmark) != 0) {
    VT_WARN("SO_MARK %u on %s: %s", fwmark, peerName().c_str(), strerror(errno));
    return false;
  }
  return true;
#else
  (void)fwmark;
  return false;
#endif
}

event::SocketAddress TcpStream::localAddress() const {
  sockaddr_storage ss{};
  int len = sizeof ss;
  if (h_ == nullptr || uv_tcp_getsockname(&h_->tcp, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    return {};
  }
  return event::SocketAddress::fromSockaddr(reinterpret_cast<sockaddr*>(&ss));
}

// ---- TcpListener

Result<std::unique_ptr<TcpListener>> TcpListener::listen(event::Loop& loop,
                                                         const event::SocketAddress& addr,
                                                         AcceptCallback on_accept, int backlog) {
  std::unique_ptr<TcpListener> l(new TcpListener(loop, std::move(on_accept)));
  auto* t = new uv_tcp_t;
  int rc = uv_tcp_init_ex(loop.raw(), t, static_cast<unsigned>(addr.family()));
  if (rc != 0) {
    delete t;
    return Error(Errc::kIo, uvError("socket for", addr.toString(), rc));
  }
  t->data = l.get();
  l->handle_ = t;
  // IPv6 listeners are IPv6 only, so that "0.0.0.0:443" and "[::]:443" can
  // both be bound (Linux defaults to dual-stack, which would collide).
  rc = uv_tcp_bind(t, addr.sa(), addr.family() == AF_INET6 ? UV_TCP_IPV6ONLY : 0);
  if (rc == 0)
    rc = uv_listen(reinterpret_cast<uv_stream_t*>(t), backlog, &TcpListener::onConnection);
  if (rc != 0) return Error(Errc::kIo, uvError("listen", addr.toString(), rc));
  return l;
}

TcpListener::~TcpListener() {
  if (handle_ == nullptr) return;
  handle_->data = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(handle_),
           [](uv_handle_t* x) { delete reinterpret_cast<uv_tcp_t*>(x); });
}

void TcpListener::onConnection(uv_stream_s* server, int status) {
  auto* self = static_cast<TcpListener*>(server->data);
  if (self == nullptr) return;
  if (status < 0) {
    // EMFILE and friends: keep listening; the kernel keeps the backlog.
    VT_WARN("accept: %s", uv_strerror(status));
    return;
  }
  auto s = TcpStream::accept(self->loop_, server);
  if (!s) return;
  // A copy: the callback may destroy the listener.
  AcceptCallback cb = self->on_accept_;
  cb(std::move(s));
}

event::SocketAddress TcpListener::localAddress() const {
  sockaddr_storage ss{};
  int len = sizeof ss;
  if (handle_ == nullptr ||
      uv_tcp_getsockname(handle_, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    return {};
  }
  return event::SocketAddress::fromSockaddr(reinterpret_cast<sockaddr*>(&ss));
}

}  // namespace vt::stream
