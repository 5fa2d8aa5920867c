#include "ip_masquerade.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <sstream>

#include "core/log.h"

extern char** environ;

namespace vt::platform {
namespace {

constexpr const char* kForward4 = "net/ipv4/ip_forward";
constexpr const char* kForward6 = "net/ipv6/conf/all/forwarding";
constexpr size_t kMaxStateFile = 64 * 1024;

Error sysError(const std::string& what, int err) {
  return Error(Errc::kIo, what + ": " + std::strerror(err));
}

Result<std::string> readSysctl(const std::string& path) {
  const std::string full = "/proc/sys/" + path;
  int fd = ::open(full.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return sysError("open " + full, errno);
  char buf[64];
  ssize_t n = ::read(fd, buf, sizeof buf - 1);
  int err = errno;
  ::close(fd);
  if (n < 0) return sysError("read " + full, err);
  std::string v(buf, static_cast<size_t>(n));
  while (!v.empty() && (v.back() == '\n' || v.back() == ' ')) v.pop_back();
  return v;
}

Status writeSysctl(const std::string& path, const std::string& value) {
  const std::string full = "/proc/sys/" + path;
  int fd = ::open(full.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return sysError("open " + full, errno);
  ssize_t n = ::write(fd, value.data(), value.size());
  int err = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(value.size())) return sysError("write " + full, n < 0 ? err : EIO);
  return Status::okStatus();
}

Status makeParentDirs(const std::string& file) {
  for (size_t pos = 1; (pos = file.find('/', pos)) != std::string::npos; ++pos) {
    const std::string dir = file.substr(0, pos);
    if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) return sysError("mkdir " + dir, errno);
  }
  return Status::okStatus();
}

// Only what we write ourselves is accepted back from a state file.
bool validTable(const std::string& t) {
  if (t.rfind("vless_server_", 0) != 0 || t.size() > 64) return false;
  for (char c : t) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
          c == '-' || c == '.')) {
      return false;
    }
  }
  return true;
}
bool validSysctl(const std::string& p) { return p == kForward4 || p == kForward6; }

// "delete table" of a table that does not exist fails; "add" first makes it
// idempotent (both in one transaction).
std::string deleteTableScript(const std::string& table) {
  return "add table inet " + table + "\ndelete table inet " + table + "\n";
}

}  // namespace

Status runNft(const std::string& nft, const std::string& script) {
  int in[2], err[2];
  if (pipe2(in, O_CLOEXEC) != 0) return sysError("pipe", errno);
  if (pipe2(err, O_CLOEXEC) != 0) {
    int e = errno;
    ::close(in[0]);
    ::close(in[1]);
    return sysError("pipe", e);
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  posix_spawn_file_actions_adddup2(&fa, err[1], 2);
  posix_spawn_file_actions_adddup2(&fa, err[1], 1);
  const char* argv[] = {nft.c_str(), "-f", "-", nullptr};
  pid_t pid = 0;
  int rc = posix_spawnp(&pid, nft.c_str(), &fa, nullptr, const_cast<char* const*>(argv), environ);
  posix_spawn_file_actions_destroy(&fa);
  ::close(in[0]);
  ::close(err[1]);
  if (rc != 0) {
    ::close(in[1]);
    ::close(err[0]);
    return Error(Errc::kIo, "cannot run " + nft + " (the nftables command line tool): " +
                                std::strerror(rc) + "; install nftables or set ip.masquerade = false");
  }
  // The script is small (far below a pipe's capacity): write, then read.
  // SIGPIPE is ignored by vless-server; a failed write shows in nft's status.
  size_t off = 0;
  while (off < script.size()) {
    ssize_t n = ::write(in[1], script.data() + off, script.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
  ::close(in[1]);
  std::string out;
  char buf[1024];
  for (;;) {
    ssize_t n = ::read(err[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (out.size() < 4096) out.append(buf, static_cast<size_t>(n));
  }
  ::close(err[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return Status::okStatus();
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  std::string how = WIFEXITED(status) ? "exit status " + std::to_string(WEXITSTATUS(status))
                                      : "killed by signal " + std::to_string(WTERMSIG(status));
  return Error(Errc::kIo, nft + " -f - failed (" + how + "): " + out);
}

IpMasquerade::IpMasquerade(MasqueradeOptions o) : o_(std::move(o)) {
  state_file_ = o_.stateFile.empty() ? "/run/vless-server/" + o_.tunName + ".ip" : o_.stateFile;
}

IpMasquerade::~IpMasquerade() {
  if (Status st = restore(); !st.ok()) VT_ERROR("ip masquerade: %s", st.error().message.c_str());
}

std::string IpMasquerade::ruleset() const {
  const std::string t = tableName();
  const std::string dev = "\"" + o_.tunName + "\"";
  std::string s = "table inet " + t + " {\n";
  s += "  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n";
  s += "    ip saddr " + o_.pool4 + " oifname != " + dev + " masquerade\n";
  if (!o_.pool6.empty()) s += "    ip6 saddr " + o_.pool6 + " oifname != " + dev + " masquerade\n";
  s += "  }\n";
  s += "  chain forward {\n    type filter hook forward priority filter; policy accept;\n";
  s += "    ip saddr " + o_.pool4 + " accept\n    ip daddr " + o_.pool4 + " accept\n";
  if (!o_.pool6.empty()) {
    s += "    ip6 saddr " + o_.pool6 + " accept\n    ip6 daddr " + o_.pool6 + " accept\n";
  }
  s += "  }\n}\n";
  return s;
}

Status IpMasquerade::saveState() const {
  std::string text = "# vless-server ip exit state: undone on stop or by the next start\n";
  if (table_) text += "nft_table " + tableName() + "\n";
  for (const Sysctl& s : sysctls_) text += "sysctl " + s.path + " " + s.old + "\n";
  const std::string tmp = state_file_ + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return sysError("ip masquerade: open " + tmp, errno);
  size_t off = 0;
  Status st;
  while (off < text.size()) {
    ssize_t n = ::write(fd, text.data() + off, text.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      st = sysError("write " + tmp, errno);
      break;
    }
    off += static_cast<size_t>(n);
  }
  if (st.ok() && fsync(fd) != 0) st = sysError("fsync " + tmp, errno);
  ::close(fd);
  if (st.ok() && rename(tmp.c_str(), state_file_.c_str()) != 0) st = sysError("rename " + tmp, errno);
  if (!st.ok()) {
    unlink(tmp.c_str());
    return Error(Errc::kIo, "ip masquerade: state file: " + st.error().message);
  }
  const size_t slash = state_file_.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : state_file_.substr(0, slash + 1);
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    ::close(dfd);
  }
  return Status::okStatus();
}

Status IpMasquerade::apply() {
  if (applied_) {
    if (Status st = restore(); !st.ok()) return st;
  }
  if (Status st = recover(state_file_, o_.nft); !st.ok()) {
    return Error(st.error().code, "ip masquerade: leftovers of an earlier run (" + state_file_ +
                                      ") could not be removed: " + st.error().message);
  }
  if (Status st = makeParentDirs(state_file_); !st.ok()) return st;
  applied_ = true;
  auto fail = [this](Status st) {
    Status undo = restore();
    if (!undo.ok()) VT_ERROR("ip masquerade: rollback: %s", undo.error().message.c_str());
    return st;
  };
  std::vector<const char*> paths = {kForward4};
  if (!o_.pool6.empty()) paths.push_back(kForward6);
  for (const char* p : paths) {
    Result<std::string> old = readSysctl(p);
    if (!old.ok()) return fail(old.error());
    if (old.value() == "1") continue;  // nothing to change, nothing to undo
    sysctls_.push_back(Sysctl{p, old.value()});
    if (Status st = saveState(); !st.ok()) return fail(st);
    if (Status st = writeSysctl(p, "1"); !st.ok()) return fail(st);
  }
  table_ = true;
  if (Status st = saveState(); !st.ok()) return fail(st);
  // A leftover of ours without a state file goes first (same transaction).
  if (Status st = runNft(o_.nft, deleteTableScript(tableName()) + ruleset()); !st.ok()) {
    return fail(Error(st.error().code, "ip masquerade: " + st.error().message));
  }
  VT_INFO("ip masquerade: table inet %s installed, forwarding on (%zu sysctls changed; state %s)",
          tableName().c_str(), sysctls_.size(), state_file_.c_str());
  return Status::okStatus();
}

Status IpMasquerade::restore() {
  if (!applied_) return Status::okStatus();
  Status first;
  if (table_) {
    Status st = runNft(o_.nft, deleteTableScript(tableName()));
    if (st.ok()) {
      table_ = false;
    } else {
      first = st;
    }
  }
  // In reverse order of writing.
  while (!sysctls_.empty()) {
    Status st = writeSysctl(sysctls_.back().path, sysctls_.back().old);
    if (!st.ok()) {
      if (first.ok()) first = st;
      break;
    }
    sysctls_.pop_back();
  }
  if (!table_ && sysctls_.empty()) {
    applied_ = false;
    if (unlink(state_file_.c_str()) != 0 && errno != ENOENT && first.ok()) {
      first = sysError("unlink " + state_file_, errno);
    }
  } else if (Status st = saveState(); !st.ok()) {
    VT_ERROR("%s", st.error().message.c_str());
  }
  return first;
}

Status IpMasquerade::recover(const std::string& stateFile, const std::string& nft) {
  int fd = ::open(stateFile.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::okStatus();
    return sysError("open " + stateFile, errno);
  }
  std::string text;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0 && text.size() < kMaxStateFile) {
    text.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  std::istringstream in(text);
  std::string line;
  std::vector<std::pair<std::string, std::string>> sysctls;
  Status first;
  size_t undone = 0;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream ls(line);
    std::string kind, a, b;
    ls >> kind >> a >> b;
    if (kind == "nft_table" && validTable(a)) {
      Status st = runNft(nft, deleteTableScript(a));
      if (!st.ok() && first.ok()) first = st;
      if (st.ok()) ++undone;
    } else if (kind == "sysctl" && validSysctl(a) && (b == "0" || b == "1" || b == "2")) {
      sysctls.emplace_back(a, b);
    } else {
      VT_WARN("ip masquerade: %s: ignored line \"%s\"", stateFile.c_str(), line.c_str());
    }
  }
  for (auto it = sysctls.rbegin(); it != sysctls.rend(); ++it) {
    Status st = writeSysctl(it->first, it->second);
    if (!st.ok() && first.ok()) first = st;
    if (st.ok()) ++undone;
  }
  if (!first.ok()) return first;
  unlink(stateFile.c_str());
  VT_WARN("ip masquerade: removed what an earlier run left (%s: %zu entries)", stateFile.c_str(),
          undone);
  return Status::okStatus();
}

}  // namespace vt::platform
