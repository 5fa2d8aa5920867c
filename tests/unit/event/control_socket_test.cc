// ControlSocket over a real Unix socket: one request line, one reply, the
// bounds (request size, deadline, peers), the file's mode, a stale file
// replaced and a live one refused.
#include "event/control_socket.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <vector>
#include <string>
#include <thread>

#include "event/timer.h"

namespace vt::event {
namespace {

// A peer may close before the reply is written (the server's write then
// fails with EPIPE): the programs ignore SIGPIPE, and so does this test.
class IgnoreSigpipe : public ::testing::Environment {
 public:
  void SetUp() override { std::signal(SIGPIPE, SIG_IGN); }
};
const auto* const kIgnoreSigpipe = ::testing::AddGlobalTestEnvironment(new IgnoreSigpipe);

std::string tempPath(const char* tag) {
  return "/tmp/vt-ctl-" + std::to_string(::getpid()) + "-" + tag + ".sock";
}

int connectTo(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::memcpy(sa.sun_path, path.data(), path.size());
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Sends `req` (as is), reads to EOF.
std::string ask(const std::string& path, const std::string& req) {
  int fd = connectTo(path);
  if (fd < 0) return "<connect failed>";
  if (!req.empty()) {
    (void)!::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
    ::shutdown(fd, SHUT_WR);
  }
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

// Runs the loop until `fn` (on a thread) is done.
template <typename Fn>
void runWith(Loop& loop, Fn fn) {
  std::atomic<bool> done{false};
  std::thread t([&] {
    fn();
    done = true;
  });
  Timer poll(loop);
  poll.start(1, [&] { if (done) loop.stop(); }, 5);
  loop.run();
  t.join();
}

TEST(ControlSocket, AnswersOneLineThenCloses) {
  Loop loop;
  const std::string path = tempPath("a");
  std::string seen;
  auto cs = ControlSocket::open(loop, {path, "", 5000}, [&](const std::string& line) {
    seen = line;
    return controlOk("body for " + line);
  });
  ASSERT_TRUE(cs.ok()) << cs.error().message;
  struct stat st{};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::string r1, r2, r3, r4;
  runWith(loop, [&] {
    r1 = ask(path, "stats now\r\n");
    r2 = ask(path, "no newline");        // a last line at EOF counts
    r3 = ask(path, "a\x01" "b\n");       // control characters refused
    r4 = ask(path, std::string(2000, 'x') + "\n");
  });
  EXPECT_EQ(r1, "ok\nbody for stats now\n");
  EXPECT_EQ(r2, "ok\nbody for no newline\n");
  EXPECT_EQ(r3, "error: control characters in the request\n");
  EXPECT_EQ(r4, "error: request longer than 1024 bytes\n");
  EXPECT_EQ(seen, "no newline");
  EXPECT_EQ(cs.value()->served(), 2u);
  cs.value().reset();
  EXPECT_NE(::access(path.c_str(), F_OK), 0) << "the file stays after close";
}

TEST(ControlSocket, SilentPeerDroppedAtTheDeadline) {
  Loop loop;
  const std::string path = tempPath("b");
  auto cs = ControlSocket::open(loop, {path, "", 100}, [](const std::string&) { return controlOk(""); });
  ASSERT_TRUE(cs.ok());
  std::string got = "x";
  runWith(loop, [&] { got = ask(path, ""); });  // says nothing, reads to EOF
  EXPECT_EQ(got, "");
  EXPECT_EQ(cs.value()->peers(), 0u);
}

TEST(ControlSocket, PeersAreCapped) {
  Loop loop;
  const std::string path = tempPath("c");
  auto cs = ControlSocket::open(loop, {path, "", 2000}, [](const std::string&) { return controlOk("hi"); });
  ASSERT_TRUE(cs.ok());
  std::vector<int> idle;
  std::string extra, after;
  runWith(loop, [&] {
    for (size_t i = 0; i < ControlSocket::kMaxPeers; ++i) idle.push_back(connectTo(path));
    usleep(100000);
    extra = ask(path, "x\n");  // over the cap: closed unanswered
    for (int fd : idle) ::close(fd);
    usleep(100000);
    after = ask(path, "x\n");
  });
  EXPECT_EQ(extra, "");
  EXPECT_EQ(after, "ok\nhi\n");
  EXPECT_GE(cs.value()->refused(), 1u);
}

TEST(ControlSocket, StaleFileReplacedLiveOneRefused) {
  Loop loop;
  const std::string path = tempPath("d");
  {
    // A stale socket file: bound, never listened on, closed.
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::memcpy(sa.sun_path, path.data(), path.size());
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
    ::close(fd);
  }
  auto h = [](const std::string&) { return controlOk(""); };
  auto first = ControlSocket::open(loop, {path, "", 1000}, h);
  ASSERT_TRUE(first.ok()) << first.error().message;
  auto second = ControlSocket::open(loop, {path, "", 1000}, h);
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.error().message.find("another process answers on it"), std::string::npos)
      << second.error().message;
  first.value().reset();
  // A regular file is never replaced.
  FILE* f = std::fopen(path.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fclose(f);
  auto third = ControlSocket::open(loop, {path, "", 1000}, h);
  ASSERT_FALSE(third.ok());
  EXPECT_NE(third.error().message.find("exists and is not a socket"), std::string::npos);
  ::unlink(path.c_str());
  auto rel = ControlSocket::open(loop, {"relative.sock", "", 1000}, h);
  EXPECT_FALSE(rel.ok());
  auto nogroup = ControlSocket::open(loop, {path, "no-such-group-vt", 1000}, h);
  ASSERT_FALSE(nogroup.ok());
  EXPECT_NE(nogroup.error().message.find("group \"no-such-group-vt\" does not exist"), std::string::npos);
}

TEST(ControlSocket, GroupModeAndOwner) {
  Loop loop;
  const std::string path = tempPath("e");
  auto cs = ControlSocket::open(loop, {path, "nogroup", 1000}, [](const std::string&) { return controlOk(""); });
  ASSERT_TRUE(cs.ok()) << cs.error().message;
  struct stat st{};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0660u);
}

}  // namespace
}  // namespace vt::event
