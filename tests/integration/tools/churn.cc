// churn: connection-churn load for the tun tests and the benchmark (the
// load of a browser plus short-lived UDP sockets: DNS, NTP, QUIC probes).
//
//   churn serve --port P [--bytes N] [--close server|client]
//     TCP on every address (v4+v6): reads one line, answers N bytes (1024),
//     then closes (server, the default: the HTTP/1.0 order, which leaves
//     TIME_WAIT on the proxy side) or waits for the peer to close (client).
//     UDP on the same port: echoes every datagram.
//
//   churn run --target H:P --seconds S [--workers W] [--bytes N]
//             [--udp-rate R] [--udp-wait-ms M] [--timeout-ms T] [--udp-target H:P]
//             [--eof 0|1]
//     W threads each connect, send a line, read N bytes (with --eof 1 also
//     the server's EOF), close, over and over for S seconds; a flow's time
//     runs from connect() to the last byte. Meanwhile R new UDP sockets a second
//     each send one datagram and wait M ms for the echo. Prints one line:
//       tcp_done=.. tcp_failed=.. tcp_per_s=.. p50_ms=.. p99_ms=.. max_ms=..
//       over_1s=.. over_5s=.. udp_sent=.. udp_answered=.. udp_lost=..
//       udp_max_ms=..
//     plus "fail: reason xN" lines. Exit status 0 whatever the figures (the
//     caller decides what passes).
//
// Bounded: every socket has a deadline (T, 10 s by default) and the run
// stops starting flows after S seconds.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "churn: %s: %s\n", what.c_str(), std::strerror(errno));
  std::exit(2);
}

double msSince(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

bool parseTarget(const std::string& t, sockaddr_storage& ss, socklen_t& len) {
  auto colon = t.rfind(':');
  if (colon == std::string::npos) return false;
  std::string host = t.substr(0, colon);
  int port = std::atoi(t.c_str() + colon + 1);
  if (!host.empty() && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  std::memset(&ss, 0, sizeof ss);
  auto* s4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* s6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (inet_pton(AF_INET, host.c_str(), &s4->sin_addr) == 1) {
    s4->sin_family = AF_INET;
    s4->sin_port = htons(static_cast<uint16_t>(port));
    len = sizeof *s4;
    return true;
  }
  if (inet_pton(AF_INET6, host.c_str(), &s6->sin6_addr) == 1) {
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(static_cast<uint16_t>(port));
    len = sizeof *s6;
    return true;
  }
  return false;
}

// ---- serve ----------------------------------------------------------------

struct Conn {
  std::string line;
  bool answered = false;
};

void setNonBlocking(int fd) {
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

int serve(int port, size_t bytes, bool serverCloses) {
  int lfd = socket(AF_INET6, SOCK_STREAM, 0);
  int ufd = socket(AF_INET6, SOCK_DGRAM, 0);
  if (lfd < 0 || ufd < 0) die("socket");
  int one = 1, zero = 0;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(lfd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
  setsockopt(ufd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_port = htons(static_cast<uint16_t>(port));
  a.sin6_addr = in6addr_any;
  if (bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) die("bind tcp");
  if (bind(ufd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) die("bind udp");
  if (listen(lfd, 4096) != 0) die("listen");
  setNonBlocking(lfd);
  setNonBlocking(ufd);
  int ep = epoll_create1(0);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = lfd;
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  ev.data.fd = ufd;
  epoll_ctl(ep, EPOLL_CTL_ADD, ufd, &ev);
  std::string answer(bytes, 'x');
  if (!answer.empty()) answer.back() = '\n';
  std::map<int, Conn> conns;
  std::vector<char> buf(65536);
  epoll_event evs[256];
  for (;;) {
    int n = epoll_wait(ep, evs, 256, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) die("epoll_wait");
    for (int i = 0; i < n; ++i) {
      int fd = evs[i].data.fd;
      if (fd == lfd) {
        for (;;) {
          int c = accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK);
          if (c < 0) break;
          ev.events = EPOLLIN;
          ev.data.fd = c;
          epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
          conns[c] = Conn{};
        }
      } else if (fd == ufd) {
        for (;;) {
          sockaddr_storage from{};
          socklen_t fl = sizeof from;
          ssize_t r = recvfrom(ufd, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&from), &fl);
          if (r < 0) break;
          sendto(ufd, buf.data(), static_cast<size_t>(r), 0, reinterpret_cast<sockaddr*>(&from), fl);
        }
      } else {
        Conn& c = conns[fd];
        bool done = false;
        for (;;) {
          ssize_t r = read(fd, buf.data(), buf.size());
          if (r > 0) {
            if (!c.answered) {
              c.line.append(buf.data(), static_cast<size_t>(r));
              if (c.line.find('\n') != std::string::npos) {
                c.answered = true;
                // 1 KiB fits any socket buffer: one non-blocking write.
                if (write(fd, answer.data(), answer.size()) != static_cast<ssize_t>(answer.size()) ||
                    serverCloses) {
                  done = true;
                  break;
                }
              }
            }
            continue;
          }
          if (r == 0 || (errno != EAGAIN && errno != EINTR)) done = true;
          break;
        }
        if (done) {
          close(fd);  // also leaves the epoll set
          conns.erase(fd);
        }
      }
    }
  }
}

// ---- run ------------------------------------------------------------------

struct Shared {
  std::mutex mu;
  std::vector<double> times;  // ms per completed flow
  std::map<std::string, uint64_t> failures;
  std::atomic<bool> stop{false};
};

// Waits for `events` on fd until `deadline`; false on timeout.
bool waitFd(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd, events, 0};
    int r = poll(&p, 1, static_cast<int>(left));
    if (r > 0) return true;
    if (r < 0 && errno != EINTR) return false;
  }
}

// One flow; "" on success, else the failure reason.
std::string oneFlow(const sockaddr_storage& dst, socklen_t dlen, size_t bytes, int timeoutMs,
                    uint64_t seq, bool waitEof) {
  auto deadline = Clock::now() + std::chrono::milliseconds(timeoutMs);
  int fd = socket(dst.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (fd < 0) return "socket";
  std::string reason;
  auto fail = [&](const char* r) {
    reason = r;
    return reason;
  };
  do {
    if (connect(fd, reinterpret_cast<const sockaddr*>(&dst), dlen) != 0 && errno != EINPROGRESS) {
      fail(errno == ECONNREFUSED ? "connect refused" : "connect error");
      break;
    }
    if (!waitFd(fd, POLLOUT, deadline)) {
      fail("connect timeout");
      break;
    }
    int err = 0;
    socklen_t el = sizeof err;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
    if (err != 0) {
      fail(err == ECONNREFUSED ? "connect refused" : err == ECONNRESET ? "connect reset" : "connect error");
      break;
    }
    char line[64];
    int ll = std::snprintf(line, sizeof line, "req %llu\n", static_cast<unsigned long long>(seq));
    if (write(fd, line, static_cast<size_t>(ll)) != ll) {
      fail("write");
      break;
    }
    size_t got = 0;
    char buf[4096];
    bool eof = false;
    while (!eof && (waitEof || got < bytes)) {
      if (!waitFd(fd, POLLIN, deadline)) {
        fail(got < bytes ? "read timeout" : "eof timeout");
        break;
      }
      ssize_t r = read(fd, buf, sizeof buf);
      if (r > 0) {
        got += static_cast<size_t>(r);
        if (got > bytes) {
          fail("too many bytes");
          break;
        }
      } else if (r == 0) {
        eof = true;
      } else if (errno != EAGAIN && errno != EINTR) {
        fail(errno == ECONNRESET ? "read reset" : "read error");
        break;
      }
    }
    if (reason.empty() && got != bytes) fail("short answer");
  } while (false);
  close(fd);
  return reason;
}

int run(const std::string& target, const std::string& udpTarget, int seconds, int workers,
        size_t bytes, int udpRate, int udpWaitMs, int timeoutMs, bool waitEof) {
  sockaddr_storage dst{}, udst{};
  socklen_t dlen = 0, udlen = 0;
  if (!parseTarget(target, dst, dlen)) {
    std::fprintf(stderr, "churn: bad --target %s\n", target.c_str());
    return 2;
  }
  if (!parseTarget(udpTarget.empty() ? target : udpTarget, udst, udlen)) {
    std::fprintf(stderr, "churn: bad --udp-target\n");
    return 2;
  }
  Shared sh;
  std::atomic<uint64_t> seq{0};
  auto start = Clock::now();
  auto end = start + std::chrono::seconds(seconds);
  std::vector<std::thread> threads;
  for (int w = 0; w < workers; ++w) {
    threads.emplace_back([&] {
      std::vector<double> mine;
      std::map<std::string, uint64_t> fails;
      while (Clock::now() < end) {
        auto t0 = Clock::now();
        std::string r = oneFlow(dst, dlen, bytes, timeoutMs, seq++, waitEof);
        if (r.empty()) {
          mine.push_back(msSince(t0));
        } else {
          fails[r]++;
        }
      }
      std::lock_guard<std::mutex> lock(sh.mu);
      sh.times.insert(sh.times.end(), mine.begin(), mine.end());
      for (auto& [k, v] : fails) sh.failures[k] += v;
    });
  }
  // UDP: a new socket every 1/udpRate s, one datagram each.
  uint64_t udpSent = 0, udpAnswered = 0, udpLost = 0;
  double udpMax = 0;
  if (udpRate > 0) {
    struct Pending {
      int fd;
      Clock::time_point sent;
      std::string payload;
    };
    std::vector<Pending> pend;
    auto next = start;
    const auto every = std::chrono::microseconds(1000000 / udpRate);
    uint64_t useq = 0;
    while (Clock::now() < end || !pend.empty()) {
      auto now = Clock::now();
      if (now >= next && now < end) {
        int fd = socket(udst.ss_family, SOCK_DGRAM | SOCK_NONBLOCK, 0);
        if (fd >= 0 && connect(fd, reinterpret_cast<const sockaddr*>(&udst), udlen) == 0) {
          char p[64];
          int pl = std::snprintf(p, sizeof p, "udp %llu", static_cast<unsigned long long>(useq++));
          if (send(fd, p, static_cast<size_t>(pl), 0) == pl) {
            pend.push_back(Pending{fd, now, std::string(p, static_cast<size_t>(pl))});
            udpSent++;
          } else {
            close(fd);
            sh.failures["udp send"]++;
          }
        } else if (fd >= 0) {
          close(fd);
        }
        next += every;
        continue;
      }
      std::vector<pollfd> pfds;
      for (auto& p : pend) pfds.push_back(pollfd{p.fd, POLLIN, 0});
      int waitMs = 50;
      if (now < end) {
        waitMs = static_cast<int>(std::max<int64_t>(
            0, std::chrono::duration_cast<std::chrono::milliseconds>(next - now).count()));
      }
      poll(pfds.data(), pfds.size(), waitMs);
      now = Clock::now();
      std::vector<Pending> keep;
      for (size_t i = 0; i < pend.size(); ++i) {
        auto& p = pend[i];
        bool done = false;
        if (pfds[i].revents != 0) {
          char b[128];
          ssize_t r = recv(p.fd, b, sizeof b, 0);
          if (r >= 0 && std::string(b, static_cast<size_t>(r)) == p.payload) {
            udpAnswered++;
            udpMax = std::max(udpMax, msSince(p.sent));
            done = true;
          }
        }
        if (!done && now - p.sent > std::chrono::milliseconds(udpWaitMs)) {
          udpLost++;
          done = true;
        }
        if (done) {
          close(p.fd);
        } else {
          keep.push_back(p);
        }
      }
      pend.swap(keep);
    }
  }
  for (auto& t : threads) t.join();
  double secs = std::chrono::duration<double>(Clock::now() - start).count();
  auto& v = sh.times;
  std::sort(v.begin(), v.end());
  auto pct = [&](double q) { return v.empty() ? 0.0 : v[std::min(v.size() - 1, static_cast<size_t>(q * v.size()))]; };
  uint64_t failed = 0;
  for (auto& [k, n] : sh.failures) failed += n;
  size_t over1 = static_cast<size_t>(v.end() - std::upper_bound(v.begin(), v.end(), 1000.0));
  size_t over5 = static_cast<size_t>(v.end() - std::upper_bound(v.begin(), v.end(), 5000.0));
  std::printf(
      "tcp_done=%zu tcp_failed=%llu tcp_per_s=%.0f p50_ms=%.2f p99_ms=%.2f max_ms=%.1f over_1s=%zu "
      "over_5s=%zu udp_sent=%llu udp_answered=%llu udp_lost=%llu udp_max_ms=%.1f\n",
      v.size(), static_cast<unsigned long long>(failed), static_cast<double>(v.size()) / secs, pct(0.5),
      pct(0.99), v.empty() ? 0.0 : v.back(), over1, over5, static_cast<unsigned long long>(udpSent),
      static_cast<unsigned long long>(udpAnswered), static_cast<unsigned long long>(udpLost), udpMax);
  for (auto& [k, n] : sh.failures) std::printf("fail: %s x%llu\n", k.c_str(), static_cast<unsigned long long>(n));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: churn serve --port P | churn run --target H:P --seconds S ...\n");
    return 2;
  }
  std::string mode = argv[1];
  std::map<std::string, std::string> opt;
  for (int i = 2; i + 1 < argc; i += 2) {
    if (std::strncmp(argv[i], "--", 2) != 0) {
      std::fprintf(stderr, "churn: unexpected argument %s\n", argv[i]);
      return 2;
    }
    opt[argv[i] + 2] = argv[i + 1];
  }
  auto num = [&](const char* k, long dflt) { return opt.count(k) ? std::atol(opt[k].c_str()) : dflt; };
  signal(SIGPIPE, SIG_IGN);
  if (mode == "serve") {
    return serve(static_cast<int>(num("port", 7100)), static_cast<size_t>(num("bytes", 1024)),
                 opt.count("close") == 0 || opt["close"] == "server");
  }
  if (mode == "run") {
    if (!opt.count("target") || !opt.count("seconds")) {
      std::fprintf(stderr, "churn run: --target and --seconds are required\n");
      return 2;
    }
    return run(opt["target"], opt.count("udp-target") ? opt["udp-target"] : "",
               static_cast<int>(num("seconds", 10)), static_cast<int>(num("workers", 32)),
               static_cast<size_t>(num("bytes", 1024)), static_cast<int>(num("udp-rate", 0)),
               static_cast<int>(num("udp-wait-ms", 1000)), static_cast<int>(num("timeout-ms", 10000)),
               num("eof", 0) != 0);
  }
  std::fprintf(stderr, "churn: unknown mode %s\n", mode.c_str());
  return 2;
}
