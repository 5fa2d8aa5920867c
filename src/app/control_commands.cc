#include "control_commands.h"

#include <dirent.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <algorithm>
#include <vector>

namespace vt::app {

namespace {

constexpr size_t kMaxReply = 64 << 20;

uint64_t nowMs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
}

void usage(FILE* out, const char* program) {
  std::fprintf(out,
               "usage: %s status [-s SOCKET] [--json]   the live state (--json: everything)\n"
               "       %s close [-s SOCKET] ID          close a flow or connection by id\n"
               "       %s log-level [-s SOCKET] [LEVEL] show or set the log level\n"
               "SOCKET: a path, or an instance name (the socket in the runtime directory)\n",
               program, program, program);
}

// The sockets in `dir` (*.sock), sorted.
std::vector<std::string> socketsIn(const char* dir) {
  std::vector<std::string> out;
  DIR* d = opendir(dir);
  if (d == nullptr) return out;
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n.size() > 5 && n.compare(n.size() - 5, 5, ".sock") == 0) out.push_back(std::string(dir) + "/" + n);
  }
  closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

bool isControlCommand(const char* arg) {
  const std::string a = arg;
  return a == "status" || a == "close" || a == "log-level";
}

bool controlRequest(const std::string& path, const std::string& line, std::string* reply,
                    std::string* error, int timeoutMs) {
  sockaddr_un sa{};
  if (path.size() >= sizeof sa.sun_path) {
    *error = path + ": too long for a Unix socket path";
    return false;
  }
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *error = std::string("socket: ") + std::strerror(errno);
    return false;
  }
  sa.sun_family = AF_UNIX;
  std::memcpy(sa.sun_path, path.data(), path.size());
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    const int e = errno;
    *error = path + ": " + std::strerror(e);
    if (e == ENOENT || e == ECONNREFUSED) {
      *error += " (is the program running with a control socket there? --control PATH or "
                "[control] socket in its config)";
    } else if (e == EACCES) {
      *error += " (root or the socket's group only)";
    }
    ::close(fd);
    return false;
  }
  std::string req = line + "\n";
  size_t off = 0;
  while (off < req.size()) {
    ssize_t n = ::send(fd, req.data() + off, req.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      *error = path + ": send: " + std::strerror(errno);
      ::close(fd);
      return false;
    }
    off += static_cast<size_t>(n);
  }
  const uint64_t deadline = nowMs() + static_cast<uint64_t>(timeoutMs);
  reply->clear();
  char buf[16384];
  for (;;) {
    const uint64_t now = nowMs();
    if (now >= deadline) {
      *error = path + ": no answer within " + std::to_string(timeoutMs / 1000) + " s";
      ::close(fd);
      return false;
    }
    pollfd p{fd, POLLIN, 0};
    int pr = ::poll(&p, 1, static_cast<int>(deadline - now));
    if (pr < 0 && errno == EINTR) continue;
    if (pr <= 0) continue;  // the deadline check above ends it
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      *error = path + ": recv: " + std::strerror(errno);
      ::close(fd);
      return false;
    }
    if (n == 0) break;
    if (reply->size() + static_cast<size_t>(n) > kMaxReply) {
      *error = path + ": reply larger than " + std::to_string(kMaxReply >> 20) + " MiB";
      ::close(fd);
      return false;
    }
    reply->append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  if (reply->empty()) {
    *error = path + ": closed without an answer (busy: too many control clients at once?)";
    return false;
  }
  return true;
}

int controlCommand(int argc, char** argv, const ControlTarget& target) {
  const std::string cmd = argv[0];
  std::string socket = target.defaultSocket;
  bool json = false;
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if ((a == "-s" || a == "--socket") && i + 1 < argc) {
      socket = argv[++i];
      if (socket.find('/') == std::string::npos) {
        socket = std::string(target.runtimeDir) + "/" + socket + ".sock";
      }
    } else if (a == "--json" && cmd == "status") {
      json = true;
    } else if (a == "-h" || a == "--help") {
      usage(stdout, target.program);
      return 0;
    } else if (!a.empty() && a[0] == '-' && !(cmd == "close" && a.size() > 1 && a[1] >= '0' && a[1] <= '9')) {
      std::fprintf(stderr, "%s %s: unknown option '%s'\n", target.program, cmd.c_str(), a.c_str());
      usage(stderr, target.program);
      return 2;
    } else {
      args.push_back(a);
    }
  }
  std::string line;
  if (cmd == "status" && args.empty()) {
    line = json ? "stats" : "status";
  } else if (cmd == "close" && args.size() == 1) {
    line = "close " + args[0];
  } else if (cmd == "log-level" && args.size() <= 1) {
    line = args.empty() ? "log-level" : "log-level " + args[0];
  } else {
    usage(stderr, target.program);
    return 2;
  }
  if (socket.empty()) {
    std::vector<std::string> found = socketsIn(target.runtimeDir);
    if (found.size() != 1) {
      std::fprintf(stderr, "%s %s: %s; name one with -s NAME or -s PATH\n", target.program,
                   cmd.c_str(),
                   found.empty() ? (std::string("no control socket in ") + target.runtimeDir).c_str()
                                 : (std::to_string(found.size()) + " control sockets in " +
                                    target.runtimeDir).c_str());
      for (const std::string& f : found) std::fprintf(stderr, "  %s\n", f.c_str());
      return 1;
    }
    socket = found[0];
  }
  std::string reply, error;
  if (!controlRequest(socket, line, &reply, &error)) {
    std::fprintf(stderr, "%s %s: %s\n", target.program, cmd.c_str(), error.c_str());
    return 1;
  }
  if (reply.compare(0, 3, "ok\n") == 0) {
    std::fwrite(reply.data() + 3, 1, reply.size() - 3, stdout);
    return 0;
  }
  if (reply.compare(0, 7, "error: ") == 0) reply.erase(0, 7);
  std::fprintf(stderr, "%s %s: %s", target.program, cmd.c_str(), reply.c_str());
  if (reply.back() != '\n') std::fputc('\n', stderr);
  return 1;
}

}  // namespace vt::app
