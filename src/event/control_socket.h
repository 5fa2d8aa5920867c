// ControlSocket: the operator's endpoint of a running vless-tun or
// vless-server (docs/operations.md "Control socket"): a Unix stream socket
// where a peer sends one request line and reads one reply, then the socket
// closes. The CLI (`vless-tun status`, `vless-server status`) is its peer.
//
// The reply starts with a status line, "ok" or "error: <why>", then the
// body (stats JSON, a table, a sentence).
//
// Access is the socket file's: mode 0600 (root, the owner) or 0660 with
// the group of `group`; the parent directory must exist (systemd's
// RuntimeDirectory). A stale file left by a crash is replaced; a socket
// another process still answers on is an error.
//
// The process must ignore SIGPIPE (both programs do): a peer that closes
// before its reply is written makes that write fail with EPIPE.
//
// Every peer is bounded: a request line of at most kMaxRequest bytes,
// answered or dropped within the deadline, at most kMaxPeers at once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/log.h"
#include "event/loop.h"

struct uv_pipe_s;

namespace vt::event {

struct ControlSocketOptions {
  std::string path;
  std::string group;  // empty: 0600; else 0660 and this group
  uint64_t deadlineMs = 5000;
};

class ControlSocket {
 public:
  static constexpr size_t kMaxRequest = 1024;
  static constexpr size_t kMaxPeers = 16;

  // `line`: the request without its newline (control characters other
  // than tab refused before the handler sees it). Returns the whole reply
  // (controlOk / controlError). Runs on the loop thread.
  using Handler = std::function<std::string(const std::string& line)>;

  // Binds and listens. Errors (kIo, kConfig) name the path.
  static Result<std::unique_ptr<ControlSocket>> open(Loop& loop, const ControlSocketOptions& opts,
                                                     Handler handler);
  ~ControlSocket();  // closes the peers and the listener, removes the file
  ControlSocket(const ControlSocket&) = delete;
  ControlSocket& operator=(const ControlSocket&) = delete;

  const std::string& path() const { return opts_.path; }
  size_t peers() const { return peers_; }
  uint64_t served() const { return served_; }
  uint64_t refused() const { return refused_; }

  class Peer;  // control_socket.cc

 private:
  ControlSocket(Loop& loop, ControlSocketOptions opts, Handler handler);
  static void onConnection(uv_pipe_s* server, int status);
  void peerDone(Peer* p);

  Loop& loop_;
  ControlSocketOptions opts_;
  Handler handler_;
  uv_pipe_s* listener_ = nullptr;
  Peer* first_ = nullptr;  // intrusive list of live peers
  size_t peers_ = 0;
  uint64_t served_ = 0;
  uint64_t refused_ = 0;
  bool bound_ = false;  // the file is ours to remove
};

// Replies.
std::string controlOk(const std::string& body);
std::string controlError(const std::string& why);

// The commands of a program's control socket: `help` (the list) comes
// free, arity is checked, the rest runs `run` with the arguments.
struct ControlCommand {
  const char* name;
  size_t minArgs, maxArgs;
  const char* usage;  // "close ID           close ..." for help
  std::function<std::string(const std::vector<std::string>& args)> run;
};
std::string dispatchControl(const std::string& line, const std::vector<ControlCommand>& commands);
// `log-level [LEVEL]`: shows `current`, or sets through `set` (logged).
std::string controlLogLevel(const std::vector<std::string>& args, LogLevel current,
                            const std::function<void(LogLevel)>& set);
// A flow or connection id ("12"): false unless 1..2^64-1 in decimal.
bool parseControlId(const std::string& text, uint64_t* id);

}  // namespace vt::event
