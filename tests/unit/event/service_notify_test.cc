// notifyServiceManager: the datagram systemd's Type=notify waits for, to a
// socket path or an abstract name; nothing without $NOTIFY_SOCKET.
#include <gtest/gtest.h>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string>

#include "event/service_notify.h"

namespace vt::event {
namespace {

// A bound datagram socket at `name` ("/path" or "@abstract").
int listenAt(const std::string& name) {
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::memcpy(a.sun_path, name.data(), name.size());
  if (name[0] == '@') a.sun_path[0] = '\0';
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a),
                   static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size())),
            0);
  return fd;
}

std::string receive(int fd) {
  char buf[256];
  ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

TEST(ServiceNotify, PathAndAbstractSockets) {
  const std::string path = testing::TempDir() + "vt-notify-" + std::to_string(getpid());
  ::unlink(path.c_str());
  int fd = listenAt(path);
  ::setenv("NOTIFY_SOCKET", path.c_str(), 1);
  EXPECT_TRUE(notifyServiceManager("READY=1\nSTATUS=listening"));
  EXPECT_EQ(receive(fd), "READY=1\nSTATUS=listening");
  ::close(fd);
  ::unlink(path.c_str());

  const std::string abstract = "@vt-notify-" + std::to_string(getpid());
  fd = listenAt(abstract);
  ::setenv("NOTIFY_SOCKET", abstract.c_str(), 1);
  EXPECT_TRUE(notifyServiceManager("STOPPING=1"));
  EXPECT_EQ(receive(fd), "STOPPING=1");
  ::close(fd);

  ::setenv("NOTIFY_SOCKET", "relative/name", 1);
  EXPECT_FALSE(notifyServiceManager("READY=1"));
  ::unsetenv("NOTIFY_SOCKET");
  EXPECT_FALSE(notifyServiceManager("READY=1"));  // not run by systemd: nothing
}

}  // namespace
}  // namespace vt::event
