#include "event/control_socket.h"

#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "core/log.h"
#include "event/timer.h"
#include "event/uv_handle.h"

namespace vt::event {

namespace {

std::string errnoText(int e) { return std::strerror(e); }

// Whether something answers on the socket file at `path` (a live
// instance): a connect() that succeeds. ECONNREFUSED: a stale file.
bool someoneListens(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::memcpy(sa.sun_path, path.data(), path.size());
  const bool up = ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
  ::close(fd);
  return up;
}

struct WriteReq {
  uv_write_t req;
  std::string bytes;
};

}  // namespace

std::string controlOk(const std::string& body) {
  std::string out = "ok\n";
  out += body;
  if (!body.empty() && body.back() != '\n') out += '\n';
  return out;
}

std::string controlError(const std::string& why) { return "error: " + why + "\n"; }

std::string dispatchControl(const std::string& line, const std::vector<ControlCommand>& commands) {
  std::vector<std::string> w;
  for (size_t i = 0; i < line.size();) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    size_t j = i;
    while (j < line.size() && line[j] != ' ' && line[j] != '\t') ++j;
    if (j > i) w.push_back(line.substr(i, j - i));
    i = j;
  }
  if (w.empty()) return controlError("empty request; `help` lists the commands");
  if (w[0] == "help") {
    std::string out;
    for (const ControlCommand& c : commands) out += std::string(c.usage) + "\n";
    return controlOk(out);
  }
  for (const ControlCommand& c : commands) {
    if (w[0] != c.name) continue;
    std::vector<std::string> args(w.begin() + 1, w.end());
    if (args.size() < c.minArgs || args.size() > c.maxArgs) {
      return controlError(w[0] + ": wrong number of arguments; usage: " + c.usage);
    }
    return c.run(args);
  }
  return controlError("unknown command \"" + w[0] + "\"; `help` lists the commands");
}

std::string controlLogLevel(const std::vector<std::string>& args, LogLevel current,
                            const std::function<void(LogLevel)>& set) {
  if (args.empty()) return controlOk(logLevelConfigName(current));
  LogLevel want;
  if (!parseLogLevel(args[0], want)) {
    return controlError("log-level: expected one of trace, debug, info, warn, error, off, got \"" +
                        args[0] + "\"");
  }
  // WARN: on record at any level but error and off.
  VT_WARN("control: log level %s -> %s", logLevelConfigName(current), logLevelConfigName(want));
  set(want);
  return controlOk(std::string("log level ") + logLevelConfigName(current) + " -> " +
                   logLevelConfigName(want));
}

bool parseControlId(const std::string& text, uint64_t* id) {
  if (text.empty() || text.size() > 20) return false;
  uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    const uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  if (v == 0) return false;
  *id = v;
  return true;
}

class ControlSocket::Peer {
 public:
  Peer(ControlSocket& owner) : owner_(owner), pipe_(new uv_pipe_t), timer_(owner.loop_) {
    uv_pipe_init(owner.loop_.raw(), pipe_, 0);
    pipe_->data = this;
  }
  ~Peer() { closeAndFree(pipe_); }
  Peer(const Peer&) = delete;
  Peer& operator=(const Peer&) = delete;

  uv_pipe_t* pipe() { return pipe_; }
  Peer* next = nullptr;
  Peer* prev = nullptr;

  void start() {
    timer_.start(owner_.opts_.deadlineMs, [this] { owner_.peerDone(this); });
    uv_read_start(reinterpret_cast<uv_stream_t*>(pipe_), &Peer::onAlloc, &Peer::onRead);
  }

 private:
  static void onAlloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
    auto* self = static_cast<Peer*>(h->data);
    buf->base = self->readBuf_;
    buf->len = sizeof self->readBuf_;
  }

  static void onRead(uv_stream_t* s, ssize_t n, const uv_buf_t*) {
    auto* self = static_cast<Peer*>(s->data);
    if (self == nullptr || n == 0) return;
    if (n < 0) {
      // EOF before a whole line (or an error): nothing to answer.
      if (self->line_.empty() || n != UV_EOF) {
        self->owner_.peerDone(self);
      } else {
        self->answer();  // a last line without '\n' still counts
      }
      return;
    }
    const char* p = self->readBuf_;
    const char* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(n)));
    const size_t take = nl != nullptr ? static_cast<size_t>(nl - p) : static_cast<size_t>(n);
    if (self->line_.size() + take > kMaxRequest) {
      self->reply(controlError("request longer than " + std::to_string(kMaxRequest) + " bytes"));
      return;
    }
    self->line_.append(p, take);
    if (nl != nullptr) self->answer();
  }

  void answer() {
    uv_read_stop(reinterpret_cast<uv_stream_t*>(pipe_));
    if (!line_.empty() && line_.back() == '\r') line_.pop_back();
    for (unsigned char c : line_) {
      if (c < 0x20 && c != '\t') {
        reply(controlError("control characters in the request"));
        return;
      }
    }
    ++owner_.served_;
    reply(owner_.handler_(line_));
  }

  void reply(std::string bytes) {
    uv_read_stop(reinterpret_cast<uv_stream_t*>(pipe_));
    auto* w = new WriteReq;
    w->bytes = std::move(bytes);
    uv_buf_t b = uv_buf_init(w->bytes.data(), static_cast<unsigned>(w->bytes.size()));
    int rc = uv_write(&w->req, reinterpret_cast<uv_stream_t*>(pipe_), &b, 1, &Peer::onWritten);
    if (rc != 0) {
      delete w;
      owner_.peerDone(this);
    }
  }

  static void onWritten(uv_write_t* req, int) {
    auto* w = reinterpret_cast<WriteReq*>(req);
    auto* self = static_cast<Peer*>(req->handle->data);
    delete w;
    // Closed after the reply: the peer reads to EOF.
    if (self != nullptr) self->owner_.peerDone(self);
  }

  ControlSocket& owner_;
  uv_pipe_t* pipe_;
  Timer timer_;
  std::string line_;
  char readBuf_[512];
};

ControlSocket::ControlSocket(Loop& loop, ControlSocketOptions opts, Handler handler)
    : loop_(loop), opts_(std::move(opts)), handler_(std::move(handler)) {}

Result<std::unique_ptr<ControlSocket>> ControlSocket::open(Loop& loop,
                                                           const ControlSocketOptions& opts,
                                                           Handler handler) {
  const std::string& path = opts.path;
  auto fail = [&](Errc code, const std::string& why) -> Error {
    return Error(code, "control socket " + path + ": " + why);
  };
  if (path.empty() || path[0] != '/') return fail(Errc::kConfig, "expected an absolute path");
  if (path.size() >= sizeof(sockaddr_un{}.sun_path)) {
    return fail(Errc::kConfig, "longer than " + std::to_string(sizeof(sockaddr_un{}.sun_path) - 1) +
                                   " bytes, the most a Unix socket path can have");
  }
  gid_t gid = static_cast<gid_t>(-1);
  if (!opts.group.empty()) {
    // Start-up only: the group database may be NSS, a blocking lookup.
    group gr{};
    group* found = nullptr;
    std::vector<char> buf(16384);
    int rc = getgrnam_r(opts.group.c_str(), &gr, buf.data(), buf.size(), &found);
    if (rc != 0 || found == nullptr) {
      return fail(Errc::kConfig, "group \"" + opts.group + "\" does not exist");
    }
    gid = gr.gr_gid;
  }
  struct stat st{};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return fail(Errc::kIo, "exists and is not a socket; not replaced");
    if (someoneListens(path)) {
      return fail(Errc::kIo, "another process answers on it (is this instance already running?)");
    }
    ::unlink(path.c_str());  // stale, from a process that did not stop cleanly
  }
  std::unique_ptr<ControlSocket> cs(new ControlSocket(loop, opts, std::move(handler)));
  cs->listener_ = new uv_pipe_t;
  uv_pipe_init(loop.raw(), cs->listener_, 0);
  cs->listener_->data = cs.get();
  // No peer can connect before listen(): the mode is set in between.
  int rc = uv_pipe_bind(cs->listener_, path.c_str());
  if (rc != 0) return fail(Errc::kIo, std::string("bind: ") + uv_strerror(rc));
  cs->bound_ = true;
  const mode_t mode = opts.group.empty() ? 0600 : 0660;
  if (::chmod(path.c_str(), mode) != 0) return fail(Errc::kIo, "chmod: " + errnoText(errno));
  if (gid != static_cast<gid_t>(-1) && ::chown(path.c_str(), static_cast<uid_t>(-1), gid) != 0) {
    return fail(Errc::kIo, "chown to group " + opts.group + ": " + errnoText(errno));
  }
  rc = uv_listen(reinterpret_cast<uv_stream_t*>(cs->listener_), 8,
                 [](uv_stream_t* s, int status) {
                   onConnection(reinterpret_cast<uv_pipe_t*>(s), status);
                 });
  if (rc != 0) return fail(Errc::kIo, std::string("listen: ") + uv_strerror(rc));
  VT_INFO("control: listening on %s (mode %04o%s%s)", path.c_str(), static_cast<unsigned>(mode),
          opts.group.empty() ? "" : ", group ", opts.group.c_str());
  return cs;
}

ControlSocket::~ControlSocket() {
  while (first_ != nullptr) peerDone(first_);
  if (listener_ != nullptr) closeAndFree(listener_);
  if (bound_) ::unlink(opts_.path.c_str());
}

void ControlSocket::onConnection(uv_pipe_s* server, int status) {
  auto* self = static_cast<ControlSocket*>(server->data);
  if (self == nullptr || status != 0) return;
  auto* p = new Peer(*self);
  if (uv_accept(reinterpret_cast<uv_stream_t*>(server), reinterpret_cast<uv_stream_t*>(p->pipe())) !=
      0) {
    delete p;
    return;
  }
  if (self->peers_ >= kMaxPeers) {
    ++self->refused_;
    delete p;  // closed unanswered: the CLI says the endpoint is busy
    return;
  }
  p->next = self->first_;
  if (self->first_ != nullptr) self->first_->prev = p;
  self->first_ = p;
  ++self->peers_;
  p->start();
}

void ControlSocket::peerDone(Peer* p) {
  if (p->prev != nullptr) p->prev->next = p->next;
  if (p->next != nullptr) p->next->prev = p->prev;
  if (first_ == p) first_ = p->next;
  --peers_;
  delete p;
}

}  // namespace vt::event
