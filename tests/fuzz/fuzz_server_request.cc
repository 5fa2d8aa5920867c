// The server's request path: a real ServerSession of a real Server (plain,
// no TLS; one user, VLESS v0 and v1 accepted) reads a client connection
// whose bytes are the fuzz input. Everything behind the request runs for
// real: authentication, TCP dials and the relay (v0 response, want_ip
// prefix, reuse chunks, half-close, backpressure), UDP channels (v0,
// classic, udp_multi with the NAT table), v1 Mux (smux, SimpleSocks, a
// session per stream), the fallback. Checks: no crash, no sanitizer
// report, no leak; an input whose first request does not authenticate
// gets no byte back and causes no dial, no datagram and no name lookup
// (unless a fallback is configured); a v0 TCP/UDP answer starts with the
// response header; a client reset closes the session; after each input
// the loop holds exactly the harness's own handles (no fd growth).
//
// The client side is an in-process Stream (the session is driven the way
// Server::onAccept drives it: constructed on the accepted stream, then
// start(false)), so chunking, EOF, resets and a slow reader are exact and
// no client socket is needed. The Server is made per input and never
// start()ed (no listener). The one difference from the accept path: our
// session is not in the Server's table, so Server::activeSessions() counts
// it out (it is read only for the max_connections check of Mux streams,
// which then allows one stream more than a real connection would).
//
// KEEPING TRAFFIC ON LOOPBACK. The server dials whatever the input names
// (today's egress policy refuses loopback/private ranges, which is product
// behaviour; the harness does not rely on it). This file defines connect,
// bind, sendto, sendmsg, sendmmsg, syscall (libuv 1.44 sends its queued
// datagrams with syscall(SYS_sendmmsg)), getaddrinfo and freeaddrinfo; the
// executable's definitions win over libc's (and over ASan's weak
// interceptors) for our code and for libuv.so, and LLVMFuzzerInitialize
// checks through libuv that they are the ones called (else it aborts):
//   - connect() of a TCP socket to any IPv4/IPv6 address is rewritten to
//     one of the harness's own listeners on 127.0.0.1 chosen by the
//     requested port (port % 8: 0 = refused at once with ECONNREFUSED,
//     no syscall; 1 echo, 2 banner then echo, 3 close at once, 4 banner
//     and half-close, 5 never read, 6 sink then answer, 7 flood); a UDP
//     connect() goes to the harness's echo socket;
//   - every UDP datagram (sendto, sendmsg, sendmmsg with an address, also
//     through syscall()) goes to the harness's UDP echo socket on
//     127.0.0.1, whatever address it named; only the echo socket itself
//     sends elsewhere (its answers, to the server's loopback sockets);
//   - bind() to a wildcard address binds loopback instead, so no socket
//     of this process listens on a real interface;
//   - getaddrinfo() never asks a resolver: names get a fixed answer from
//     documentation ranges (or an error), picked by a hash of the name.
// So no packet leaves the host and nothing reaches any other local
// service: every connection and datagram ends at a socket of this
// process. uv_getaddrinfo is wrapped (-Wl,--wrap) only to know when a
// lookup is still in flight.
//
// Input: [0] flags, [1..3] cut points, then the client's bytes.
//   [0] bits 0-1: fallback: none, 127.0.0.1:8081 (echo),
//       fallback.test:8082 (resolved; banner), 127.0.0.1:8083 (closes);
//       bits 2-3: the client reads at once (writes never queue) / half of
//       what is queued per pump round / nothing (backpressure) / at once;
//       bit 4: the client ends its direction (FIN) after its last chunk;
//       bit 5: the client resets after its last chunk (wins over bit 4);
//       bit 6: every timeout 1-2 ms, and the harness sleeps 1.2 ms
//       before each pump so that they fire (slow: a few ms per input);
//       bit 7: tight caps (max_connections 3, mux.max_streams 2,
//       mux.max_streams_per_user 2, udp.max_sessions 2, 1 per user).
//   [1..3] each non-zero byte b cuts the bytes at len * b / 256: up to
//   four chunks, the loop pumped after each.
// Seeds (corpus/fuzz_server_request): v0 and v1 requests for user
// a684455c-b14f-11ea-bf0d-42010aaa0003, targets in 203.0.113.0/24.
#include <arpa/inet.h>
#include <dlfcn.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdarg>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "codec/vless.h"
#include "config/server_config.h"
#include "core/log.h"
#include "event/loop.h"
#include "event/socket_address.h"
#include "fuzz_util.h"
#include "server/server.h"
#include "server/server_session.h"
#include "stream/tcp_stream.h"

using namespace vt;
using fuzz::check;

// ---- the egress guard (see the header comment)

namespace guard {

constexpr int kModes = 8;                // connect: requested port % 8 picks the peer
std::atomic<uint16_t> tcp_port[kModes];  // our listeners (0: refused)
std::atomic<uint16_t> udp_echo_port{0};
std::atomic<int> udp_echo_fd{-1};
// Counted per input (reset by the harness); any thread may bump them.
std::atomic<uint64_t> tcp_connects{0}, udp_connects{0}, datagrams{0}, lookups{0}, binds{0};

// 127.0.0.1:port in the socket's family (IPv4-mapped on IPv6 sockets).
socklen_t loopback(int family, uint16_t port, sockaddr_storage& out) {
  std::memset(&out, 0, sizeof out);
  if (family == AF_INET6) {
    auto* s6 = reinterpret_cast<sockaddr_in6*>(&out);
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(port);
    s6->sin6_addr.s6_addr[10] = 0xff;
    s6->sin6_addr.s6_addr[11] = 0xff;
    s6->sin6_addr.s6_addr[12] = 127;
    s6->sin6_addr.s6_addr[15] = 1;
    return sizeof(sockaddr_in6);
  }
  auto* s4 = reinterpret_cast<sockaddr_in*>(&out);
  s4->sin_family = AF_INET;
  s4->sin_port = htons(port);
  s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return sizeof(sockaddr_in);
}

bool inet(const void* sa) {
  if (sa == nullptr) return false;
  sa_family_t f = static_cast<const sockaddr*>(sa)->sa_family;
  return f == AF_INET || f == AF_INET6;
}

uint16_t portOf(const sockaddr* sa) {
  return sa->sa_family == AF_INET6 ? ntohs(reinterpret_cast<const sockaddr_in6*>(sa)->sin6_port)
                                   : ntohs(reinterpret_cast<const sockaddr_in*>(sa)->sin_port);
}

int socketType(int fd) {
  int type = 0;
  socklen_t len = sizeof type;
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0) return -1;
  return type;
}

// libc's syscall(): our own raw calls go through it, never through ours.
using SyscallFn = long (*)(long, ...);
SyscallFn realSyscall() {
  static SyscallFn fn = reinterpret_cast<SyscallFn>(dlsym(RTLD_NEXT, "syscall"));
  if (fn == nullptr) std::abort();
  return fn;
}

// Where a datagram from `fd` to `dst` really goes.
bool redirectDatagram(int fd, const void* dst, sockaddr_storage& out, socklen_t& len) {
  if (!inet(dst) || fd == udp_echo_fd.load()) return false;
  ++datagrams;
  len = loopback(static_cast<const sockaddr*>(dst)->sa_family, udp_echo_port.load(), out);
  return true;
}

}  // namespace guard

extern "C" int connect(int fd, const sockaddr* sa, socklen_t len) {
  if (!guard::inet(sa)) return static_cast<int>(guard::realSyscall()(SYS_connect, fd, sa, len));
  sockaddr_storage to;
  socklen_t to_len;
  if (guard::socketType(fd) == SOCK_DGRAM) {
    ++guard::udp_connects;
    to_len = guard::loopback(sa->sa_family, guard::udp_echo_port.load(), to);
  } else {
    ++guard::tcp_connects;
    uint16_t port = guard::tcp_port[guard::portOf(sa) % guard::kModes].load();
    if (port == 0) {
      errno = ECONNREFUSED;  // libuv reports it in the connect callback
      return -1;
    }
    to_len = guard::loopback(sa->sa_family, port, to);
    // Closes with RST, so that tens of thousands of dials a minute leave
    // no TIME_WAIT behind. The server's graceful end is shutdown() (a FIN,
    // unaffected); its close() is abortive by design anyway.
    linger lg{1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  }
  return static_cast<int>(
      guard::realSyscall()(SYS_connect, fd, reinterpret_cast<sockaddr*>(&to), to_len));
}

extern "C" int bind(int fd, const sockaddr* sa, socklen_t len) {
  sockaddr_storage to;
  if (sa != nullptr && sa->sa_family == AF_INET &&
      reinterpret_cast<const sockaddr_in*>(sa)->sin_addr.s_addr == htonl(INADDR_ANY)) {
    ++guard::binds;
    len = guard::loopback(AF_INET, guard::portOf(sa), to);
    sa = reinterpret_cast<sockaddr*>(&to);
  } else if (sa != nullptr && sa->sa_family == AF_INET6 &&
             IN6_IS_ADDR_UNSPECIFIED(&reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr)) {
    ++guard::binds;
    int v6only = 0;
    socklen_t ol = sizeof v6only;
    getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &ol);
    len = guard::loopback(AF_INET6, guard::portOf(sa), to);
    if (v6only) {  // ::1 instead of ::ffff:127.0.0.1
      auto* s6 = reinterpret_cast<sockaddr_in6*>(&to);
      std::memset(&s6->sin6_addr, 0, sizeof s6->sin6_addr);
      s6->sin6_addr.s6_addr[15] = 1;
    }
    sa = reinterpret_cast<sockaddr*>(&to);
  }
  return static_cast<int>(guard::realSyscall()(SYS_bind, fd, sa, len));
}

extern "C" ssize_t sendto(int fd, const void* buf, size_t n, int flags, const sockaddr* dst,
                          socklen_t len) {
  sockaddr_storage to;
  if (guard::redirectDatagram(fd, dst, to, len)) dst = reinterpret_cast<sockaddr*>(&to);
  return guard::realSyscall()(SYS_sendto, fd, buf, n, flags, dst, len);
}

extern "C" ssize_t sendmsg(int fd, const msghdr* msg, int flags) {
  msghdr m = *msg;
  sockaddr_storage to;
  socklen_t len;
  if (guard::redirectDatagram(fd, m.msg_name, to, len)) {
    m.msg_name = &to;
    m.msg_namelen = len;
  }
  return guard::realSyscall()(SYS_sendmsg, fd, &m, flags);
}

extern "C" int sendmmsg(int fd, mmsghdr* vec, unsigned int n, int flags) {
  std::vector<mmsghdr> v(vec, vec + n);
  std::vector<sockaddr_storage> to(n);
  for (unsigned i = 0; i < n; ++i) {
    socklen_t len;
    if (guard::redirectDatagram(fd, v[i].msg_hdr.msg_name, to[i], len)) {
      v[i].msg_hdr.msg_name = &to[i];
      v[i].msg_hdr.msg_namelen = len;
    }
  }
  int r = static_cast<int>(guard::realSyscall()(SYS_sendmmsg, fd, v.data(), n, flags));
  for (int i = 0; i < r; ++i) vec[i].msg_len = v[static_cast<size_t>(i)].msg_len;
  return r;
}

// The socket calls made through syscall() go through the guards above;
// everything else passes (six arguments is the most any syscall takes).
extern "C" long syscall(long nr, ...) {
  va_list ap;
  va_start(ap, nr);
  long a[6];
  for (long& x : a) x = va_arg(ap, long);
  va_end(ap);
  int fd = static_cast<int>(a[0]);
  switch (nr) {
    case SYS_connect:
      return connect(fd, reinterpret_cast<const sockaddr*>(a[1]), static_cast<socklen_t>(a[2]));
    case SYS_bind:
      return bind(fd, reinterpret_cast<const sockaddr*>(a[1]), static_cast<socklen_t>(a[2]));
    case SYS_sendto:
      return sendto(fd, reinterpret_cast<const void*>(a[1]), static_cast<size_t>(a[2]),
                    static_cast<int>(a[3]), reinterpret_cast<const sockaddr*>(a[4]),
                    static_cast<socklen_t>(a[5]));
    case SYS_sendmsg:
      return sendmsg(fd, reinterpret_cast<const msghdr*>(a[1]), static_cast<int>(a[2]));
    case SYS_sendmmsg:
      return sendmmsg(fd, reinterpret_cast<mmsghdr*>(a[1]), static_cast<unsigned>(a[2]),
                      static_cast<int>(a[3]));
    default: return guard::realSyscall()(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
  }
}

// Answers from a hash of the name, never from the network. Each node is
// one malloc block (node + address), freed by our freeaddrinfo.
extern "C" int getaddrinfo(const char* node, const char* service, const addrinfo* hints,
                           addrinfo** res) {
  ++guard::lookups;
  *res = nullptr;
  if (node == nullptr) return EAI_NONAME;
  uint16_t port = service != nullptr ? static_cast<uint16_t>(std::atoi(service)) : 0;
  int family = hints != nullptr ? hints->ai_family : AF_UNSPEC;
  std::vector<event::SocketAddress> addrs;
  if (auto lit = event::SocketAddress::parseIp(node, port)) {
    addrs.push_back(*lit);
  } else if (hints != nullptr && (hints->ai_flags & AI_NUMERICHOST)) {
    return EAI_NONAME;
  } else {
    uint32_t h = 2166136261u;
    for (const char* p = node; *p; ++p) h = (h ^ static_cast<uint8_t>(*p)) * 16777619u;
    if (std::strcmp(node, "fallback.test") == 0) h = 2;
    const uint8_t v6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    switch (h % 6) {
      case 0: return EAI_NONAME;
      case 1: return EAI_AGAIN;
      case 2: addrs.push_back(event::SocketAddress::ipv4(0xcb007150, port)); break;  // 203.0.113.80
      case 3:  // two addresses: the first is tried, then the next
        addrs.push_back(event::SocketAddress::ipv4(0xc6336401, port));  // 198.51.100.1
        addrs.push_back(event::SocketAddress::ipv4(0xcb007151, port));  // 203.0.113.81
        break;
      case 4:
        addrs.push_back(event::SocketAddress::ipv6(v6, port));          // 2001:db8::1
        addrs.push_back(event::SocketAddress::ipv4(0xc0000202, port));  // 192.0.2.2
        break;
      default: addrs.push_back(event::SocketAddress::ipv4(0x7f000001, port)); break;  // egress test
    }
  }
  addrinfo** tail = res;
  for (const auto& a : addrs) {
    if (family != AF_UNSPEC && family != a.family()) continue;
    auto* block =
        static_cast<uint8_t*>(std::calloc(1, sizeof(addrinfo) + sizeof(sockaddr_storage)));
    if (block == nullptr) break;
    auto* ai = reinterpret_cast<addrinfo*>(block);
    ai->ai_family = a.family();
    ai->ai_socktype = hints != nullptr && hints->ai_socktype ? hints->ai_socktype : SOCK_STREAM;
    ai->ai_protocol = ai->ai_socktype == SOCK_DGRAM ? IPPROTO_UDP : IPPROTO_TCP;
    ai->ai_addrlen = a.family() == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
    ai->ai_addr = reinterpret_cast<sockaddr*>(block + sizeof(addrinfo));
    std::memcpy(ai->ai_addr, a.sa(), ai->ai_addrlen);
    *tail = ai;
    tail = &ai->ai_next;
  }
  return *res == nullptr ? EAI_NONAME : 0;
}

extern "C" void freeaddrinfo(addrinfo* ai) {
  while (ai != nullptr) {
    addrinfo* next = ai->ai_next;
    std::free(ai);  // one block per node, ai_canonname always null
    ai = next;
  }
}

// uv_getaddrinfo, wrapped to count the lookups in flight.
extern "C" int __real_uv_getaddrinfo(uv_loop_t*, uv_getaddrinfo_t*, uv_getaddrinfo_cb, const char*,
                                     const char*, const addrinfo*);
namespace {
std::unordered_map<uv_getaddrinfo_t*, uv_getaddrinfo_cb>& lookupCallbacks() {
  static auto* m = new std::unordered_map<uv_getaddrinfo_t*, uv_getaddrinfo_cb>;
  return *m;
}
size_t lookups_in_flight = 0;
uint64_t harness_events = 0;  // anything the harness can see happen

void lookupDone(uv_getaddrinfo_t* req, int status, addrinfo* res) {
  auto it = lookupCallbacks().find(req);
  check(it != lookupCallbacks().end(), "a lookup the wrapper did not start");
  uv_getaddrinfo_cb cb = it->second;
  lookupCallbacks().erase(it);
  --lookups_in_flight;
  ++harness_events;
  cb(req, status, res);
}
}  // namespace

extern "C" int __wrap_uv_getaddrinfo(uv_loop_t* loop, uv_getaddrinfo_t* req, uv_getaddrinfo_cb cb,
                                     const char* node, const char* service, const addrinfo* hints) {
  if (cb == nullptr) return __real_uv_getaddrinfo(loop, req, cb, node, service, hints);
  int rc = __real_uv_getaddrinfo(loop, req, lookupDone, node, service, hints);
  if (rc == 0) {
    lookupCallbacks()[req] = cb;
    ++lookups_in_flight;
  }
  return rc;
}

namespace {

const codec::Uuid kUser = {0xa6, 0x84, 0x45, 0x5c, 0xb1, 0x4f, 0x11, 0xea,
                           0xbf, 0x0d, 0x42, 0x01, 0x0a, 0xaa, 0x00, 0x03};

event::Loop& loop() {
  static event::Loop* l = new event::Loop;  // shared by all inputs
  return *l;
}

size_t liveHandles() {
  size_t n = 0;
  uv_walk(
      loop().raw(),
      [](uv_handle_t* h, void* arg) {
        if (!uv_is_closing(h)) ++*static_cast<size_t*>(arg);
      },
      &n);
  return n;
}

// ---- the client: the accepted connection, modelled on TcpStream

struct ClientLog {
  uint64_t written = 0;  // bytes the server wrote to the client
  std::string head;      // the first bytes of it
  bool alive = false;    // the stream object exists
  int closes = 0;
};

class FakeClient final : public stream::Stream, public event::DeferredDeletable {
 public:
  explicit FakeClient(ClientLog& log) : log_(log) { log_.alive = true; }
  ~FakeClient() override { log_.alive = false; }

  void setCallbacks(stream::StreamCallbacks& cb) override { cb_ = &cb; }
  void connect() override { check(false, "the server connects its accepted stream"); }
  void write(BufferChain& data, bool end_stream) override {
    if (closed_ || write_end_) {  // as TcpStream: dropped, onClose tells
      data.clear();
      return;
    }
    size_t n = data.size();
    if (log_.head.size() < 64 && n > 0) {
      std::string s = data.toString();
      log_.head += s.substr(0, 64 - log_.head.size());
    }
    log_.written += n;
    if (read_mode_ != 0) queued_ += n;  // a fast reader: the kernel took it all
    data.clear();
    write_end_ = end_stream;
    ++harness_events;
    if (!above_ && queued_ > wm_.high) {
      above_ = true;
      if (cb_ != nullptr) cb_->onAboveHighWatermark();
    }
  }
  void readDisable(bool disable) override {
    if (closed_) return;
    if (disable) {
      ++disabled_;
    } else if (disabled_ > 0) {
      --disabled_;  // reads resume on the next pump, as uv_read_start
    }
  }
  void close(stream::CloseReason reason) override {
    if (closed_) return;
    closed_ = true;
    pending_.clear();
    ++log_.closes;
    ++harness_events;
    stream::StreamCallbacks* cb = std::exchange(cb_, nullptr);
    if (cb != nullptr) cb->onClose(reason, "");
  }
  size_t bufferedBytes() const override { return queued_; }
  std::string peerName() const override { return "192.0.2.10:40000"; }

  // Harness side.
  bool closed() const { return closed_; }
  void feed(const uint8_t* p, size_t n) {
    if (!closed_ && !eof_pending_ && n > 0) pending_.append(p, n);
  }
  void finish() { eof_pending_ = true; }
  void reset() { close(stream::CloseReason::kReset); }
  // What a socket read would hand over: up to 16 KiB per onData.
  void deliver() {
    while (!closed_ && cb_ != nullptr && disabled_ == 0 && !read_eof_ &&
           (!pending_.empty() || eof_pending_)) {
      ++harness_events;
      if (!pending_.empty()) {
        read_buf_.moveFrom(pending_, std::min<size_t>(pending_.size(), 16 * 1024));
        cb_->onData(read_buf_, false);
        continue;
      }
      read_eof_ = true;
      cb_->onData(read_buf_, true);
      if (closed_) return;
      maybeFinish(stream::CloseReason::kRemoteClose);
    }
  }
  // 0: a fast reader (writes never queue, as when uv_try_write takes
  // everything), 1: reads half of what is queued per pump, 2: never reads.
  void setReadMode(int mode) { read_mode_ = mode; }
  // The client reads (once per pump round); a queued shutdown completes
  // once nothing is queued, as TcpStream's uv_shutdown callback.
  void read() {
    if (closed_) return;
    if (queued_ != 0 && read_mode_ != 2) {
      queued_ = read_mode_ == 1 ? queued_ / 2 : 0;
      ++harness_events;
    }
    if (above_ && queued_ <= wm_.low) {
      above_ = false;
      if (cb_ != nullptr) cb_->onBelowLowWatermark();
    }
    if (!closed_ && write_end_ && queued_ == 0 && !shutdown_done_) {
      shutdown_done_ = true;
      ++harness_events;
      maybeFinish(stream::CloseReason::kLocalClose);
    }
  }

 private:
  void maybeFinish(stream::CloseReason reason) {
    if (read_eof_ && shutdown_done_) close(reason);
  }

  ClientLog& log_;
  stream::StreamCallbacks* cb_ = nullptr;
  stream::Watermarks wm_;
  BufferChain pending_;   // sent by the client, not read yet
  BufferChain read_buf_;  // handed to onData (what is left stays)
  size_t queued_ = 0;     // written by the server, not read by the client
  int read_mode_ = 0;
  int disabled_ = 0;
  bool eof_pending_ = false;
  bool read_eof_ = false;
  bool write_end_ = false;
  bool shutdown_done_ = false;
  bool above_ = false;
  bool closed_ = false;
};

// ---- the targets: in-process listeners on 127.0.0.1, one per behaviour

enum Mode { kRefused, kEcho, kBanner, kCloseNow, kBannerEnd, kHold, kSink, kFlood };
constexpr size_t kFloodBytes = 768 * 1024;  // above the client's high watermark

class Peer final : public stream::StreamCallbacks {
 public:
  Peer(std::unique_ptr<stream::TcpStream> s, Mode m) : s_(std::move(s)), mode_(m) {}
  void start() {
    s_->setCallbacks(*this);
    ++harness_events;
    switch (mode_) {
      case kBanner: say("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi", false); break;
      case kCloseNow: s_->close(stream::CloseReason::kLocalClose); break;
      case kBannerEnd: say("220 ready\r\n", true); break;
      case kHold: s_->readDisable(true); break;
      case kFlood: {
        std::string big(kFloodBytes, 'f');
        say(big, true);
        break;
      }
      default: break;
    }
  }
  void onData(BufferChain& data, bool end_stream) override {
    ++harness_events;
    if (mode_ == kEcho || mode_ == kBanner) {
      s_->write(data, end_stream);
      return;
    }
    data.clear();
    if (end_stream && mode_ == kSink) say("bye\n", true);
  }
  void onClose(stream::CloseReason, const std::string&) override {
    ++harness_events;
    closed_ = true;
  }
  void shut() {
    if (!closed_) s_->close(stream::CloseReason::kLocalClose);
  }

 private:
  void say(const std::string& text, bool end) {
    BufferChain b;
    b.append(text);
    s_->write(b, end);
  }
  std::unique_ptr<stream::TcpStream> s_;
  Mode mode_;
  bool closed_ = false;
};

struct Targets {
  std::vector<std::unique_ptr<stream::TcpListener>> listeners;
  std::vector<std::unique_ptr<Peer>> peers;  // this input's connections
  uv_udp_t* echo = nullptr;
  size_t echoed = 0;  // datagrams answered this input (capped)
};

Targets& targets() {
  static auto* t = new Targets;
  return *t;
}

void onEchoAlloc(uv_handle_t*, size_t, uv_buf_t* buf) {
  static char mem[65536];
  *buf = uv_buf_init(mem, sizeof mem);
}

void onEchoRecv(uv_udp_t* h, ssize_t n, const uv_buf_t* buf, const sockaddr* from, unsigned) {
  if (n < 0 || from == nullptr) return;
  ++harness_events;
  if (targets().echoed++ >= 256) return;
  uv_buf_t out = uv_buf_init(buf->base, static_cast<unsigned>(n));
  uv_udp_try_send(h, &out, 1, from);  // to the server's socket, as sent
}

size_t baseline_handles = 0;

void setUp() {
  std::signal(SIGPIPE, SIG_IGN);
  setLogLevel(std::getenv("VT_FUZZ_LOG") != nullptr ? LogLevel::kDebug : LogLevel::kOff);
  Targets& t = targets();
  auto lo = *event::SocketAddress::parseIp("127.0.0.1", 0);
  for (int m = 1; m < guard::kModes; ++m) {
    auto l = stream::TcpListener::listen(loop(), lo, [m](std::unique_ptr<stream::TcpStream> s) {
      auto p = std::make_unique<Peer>(std::move(s), static_cast<Mode>(m));
      Peer* raw = p.get();
      targets().peers.push_back(std::move(p));
      raw->start();
    });
    check(l.ok(), "target listener", l.ok() ? "" : l.error().message);
    guard::tcp_port[m] = l.value()->localAddress().port();
    t.listeners.push_back(std::move(l).value());
  }
  t.echo = new uv_udp_t;
  check(uv_udp_init(loop().raw(), t.echo) == 0, "echo socket");
  check(uv_udp_bind(t.echo, lo.sa(), 0) == 0, "echo bind");
  sockaddr_storage ss{};
  int len = sizeof ss;
  uv_udp_getsockname(t.echo, reinterpret_cast<sockaddr*>(&ss), &len);
  guard::udp_echo_port =
      event::SocketAddress::fromSockaddr(reinterpret_cast<sockaddr*>(&ss)).port();
  uv_os_fd_t fd;
  uv_fileno(reinterpret_cast<uv_handle_t*>(t.echo), &fd);
  guard::udp_echo_fd = fd;
  uv_udp_recv_start(t.echo, onEchoAlloc, onEchoRecv);

  // The guard must be what libuv calls: try each path once.
  guard::tcp_connects = guard::datagrams = guard::lookups = guard::binds = 0;
  {
    auto probe = stream::TcpStream::create(loop(), event::SocketAddress::ipv4(0xc0000201, 8));
    probe->connect();  // 192.0.2.1:8 -> refused by the guard
    uv_udp_t u;
    uv_udp_init(loop().raw(), &u);
    char byte = 0;
    uv_buf_t b = uv_buf_init(&byte, 1);
    auto dst = event::SocketAddress::ipv4(0xc0000201, 9);
    uv_udp_try_send(&u, &b, 1, dst.sa());  // binds 0.0.0.0 first, then sendmsg
    uv_udp_send_t send;                    // the queued path: syscall(SYS_sendmmsg) in libuv 1.44
    bool sent = false;
    send.data = &sent;
    uv_udp_send(&send, &u, &b, 1, dst.sa(),
                [](uv_udp_send_t* r, int) { *static_cast<bool*>(r->data) = true; });
    for (int i = 0; i < 100 && !sent; ++i) loop().runOnce(false);
    check(sent, "the probe datagram was not sent");
    uv_close(reinterpret_cast<uv_handle_t*>(&u), nullptr);
    uv_getaddrinfo_t req;
    addrinfo* res = nullptr;
    if (uv_getaddrinfo(loop().raw(), &req, nullptr, "probe.test", nullptr, nullptr) == 0) {
      res = req.addrinfo;
    }
    uv_freeaddrinfo(res);
    probe.reset();
    for (int i = 0; i < 8; ++i) loop().runOnce(false);
  }
  check(
      guard::tcp_connects == 1 && guard::datagrams == 2 && guard::binds == 1 && guard::lookups == 1,
      "egress guard not in effect (connect/sendmsg/bind/getaddrinfo not interposed)");
  baseline_handles = liveHandles();
}

// ---- one input

struct Flags {
  int fallback;
  int read_mode;
  bool eof, reset, short_timers, tight;
};

config::ServerConfig makeConfig(const Flags& f) {
  config::ServerConfig cfg;
  cfg.log_level = LogLevel::kOff;
  cfg.listen = {config::HostPort{"127.0.0.1", 0, true}};  // never started
  cfg.users = {config::ServerUser{"fuzz", kUser}};
  switch (f.fallback) {
    case 1: cfg.fallback = config::HostPort{"127.0.0.1", 8081, true}; break;
    case 2: cfg.fallback = config::HostPort{"fallback.test", 8082, false}; break;
    case 3: cfg.fallback = config::HostPort{"127.0.0.1", 8083, true}; break;
    default: break;
  }
  if (f.short_timers) {
    cfg.handshake_timeout_ms = 1;
    cfg.idle_timeout_ms = 2;
    cfg.reuse_idle_timeout_ms = 1;
    cfg.mux.keepalive_ms = 1;
    cfg.mux.dead_ms = 2;
    cfg.udp.session_timeout_ms = 2;
    cfg.udp.new_session_timeout_ms = 1;
    cfg.udp.channel_idle_timeout_ms = 2;
  }
  if (f.tight) {
    cfg.max_connections = 3;
    cfg.mux.max_streams = 2;
    cfg.mux.max_streams_per_user = 2;
    cfg.udp.max_sessions = 2;
    cfg.udp.max_sessions_per_user = 1;
  }
  return cfg;
}

// Runs the loop until nothing visible happened for a few rounds (lookups
// in flight keep it going), at most ~64 rounds plus lookup waits.
void pump(FakeClient* c, const ClientLog& log) {
  int quiet = 0;
  for (int round = 0; round < 64 && quiet < 4; ++round) {
    uint64_t before = harness_events;
    if (log.alive) {
      c->deliver();
      c->read();
    }
    loop().runOnce(false);
    for (int w = 0; lookups_in_flight > 0 && w < 2000; ++w) {  // <= ~40 ms
      usleep(20);
      loop().runOnce(false);
    }
    quiet = harness_events == before ? quiet + 1 : 0;
  }
}

void settle(size_t max_rounds) {
  for (size_t i = 0; i < max_rounds; ++i) {
    loop().runOnce(false);
    if (lookups_in_flight > 0) {
      usleep(20);
      continue;
    }
    if (loop().pendingDeletes() == 0 && liveHandles() == baseline_handles) return;
  }
}

void runOne(const uint8_t* data, size_t size) {
  if (size < 4) return;
  Flags f{data[0] & 3,           (data[0] >> 2) & 3,    (data[0] & 0x10) != 0,
          (data[0] & 0x20) != 0, (data[0] & 0x40) != 0, (data[0] & 0x80) != 0};
  if (f.read_mode == 3) f.read_mode = 0;
  const uint8_t* body = data + 4;
  size_t len = size - 4;
  std::vector<size_t> cuts = {0, len};
  for (int i = 1; i <= 3; ++i) {
    if (data[i] != 0) cuts.push_back(len * data[i] / 256);
  }
  std::sort(cuts.begin(), cuts.end());

  // What the first request says, decoded on its own.
  bool authenticated = false;
  bool v0_answer = false;
  {
    BufferChain all;
    if (len) all.append(body, len);
    codec::Request req;
    codec::RequestDecodeResult r = codec::decodeRequest(all, req);
    authenticated = r.status == codec::DecodeStatus::kDone && req.uuid == kUser;
    v0_answer = authenticated && req.version == 0 &&
                (req.command == codec::Command::kTcp || req.command == codec::Command::kUdp);
  }

  guard::tcp_connects = guard::udp_connects = guard::datagrams = guard::lookups = 0;
  targets().echoed = 0;
  config::ServerConfig cfg = makeConfig(f);
  auto server = std::make_unique<server::Server>(loop(), cfg, nullptr);
  ClientLog log;
  auto client_owner = std::make_unique<FakeClient>(log);
  FakeClient* client = client_owner.get();
  client->setReadMode(f.read_mode);
  // As Server::onAccept: the session on the accepted stream, then start.
  auto session =
      std::make_unique<server::ServerSession>(*server, client, std::move(client_owner), 1);
  session->start(false);

  for (size_t i = 0; i + 1 < cuts.size(); ++i) {
    if (log.alive) client->feed(body + cuts[i], cuts[i + 1] - cuts[i]);
    if (f.short_timers) usleep(1200);
    pump(client, log);
  }
  if (log.alive && !client->closed() && (f.eof || f.reset)) {
    if (f.reset) {
      client->reset();
    } else {
      client->finish();
    }
    if (f.short_timers) usleep(1200);
    pump(client, log);
  }

  if (!authenticated && f.fallback == 0) {
    check(log.written == 0, "bytes written to a client that did not authenticate");
    check(guard::tcp_connects == 0 && guard::udp_connects == 0 && guard::datagrams == 0 &&
              guard::lookups == 0,
          "egress for a client that did not authenticate");
  }
  if (v0_answer && f.fallback == 0 && log.written > 0) {
    check(log.head.size() >= 2 && log.head[0] == 0 && log.head[1] == 0,
          "a v0 answer without its response header");
  }

  // Teardown: the client goes away; a session still alive after that is
  // closed as Server::stop() does.
  if (log.alive && !client->closed()) {
    client->reset();
    check(session->closing(), "the session survived its client's reset");
  }
  if (!session->closing()) session->close(stream::CloseReason::kLocalClose, "fuzz teardown");
  check(log.closes <= 1, "onClose more than once");
  for (int i = 0; i < 64 && (server->sessionCount() != 0 || loop().pendingDeletes() != 0); ++i) {
    loop().runOnce(false);
  }
  session.reset();
  server.reset();
  check(!log.alive, "the client stream outlived its session");
  for (auto& p : targets().peers) p->shut();
  targets().peers.clear();
  settle(4096);
  check(lookups_in_flight == 0, "a lookup still in flight after the run");
  check(loop().pendingDeletes() == 0, "deferred deletes left after the run");
  check(liveHandles() == baseline_handles, "handles (sockets, timers) left after the run",
        std::to_string(liveHandles()) + " vs " + std::to_string(baseline_handles));
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  setUp();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  runOne(data, size);
  return 0;
}
