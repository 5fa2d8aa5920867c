#include "network_monitor.h"

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <ifaddrs.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace vt::platform {

Result<std::unique_ptr<NetworkMonitor>> NetworkMonitor::open(int ignoreIfindex,
                                                             uint32_t ignoreTable) {
  int fd = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE);
  if (fd < 0) return Error(Errc::kIo, std::string("netlink monitor: socket: ") + std::strerror(errno));
  sockaddr_nl sa{};
  sa.nl_family = AF_NETLINK;
  sa.nl_groups = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR | RTMGRP_IPV4_ROUTE |
                 RTMGRP_IPV6_ROUTE;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    int err = errno;
    ::close(fd);
    return Error(Errc::kIo, std::string("netlink monitor: bind: ") + std::strerror(err));
  }
  return std::unique_ptr<NetworkMonitor>(new NetworkMonitor(fd, ignoreIfindex, ignoreTable));
}

NetworkMonitor::~NetworkMonitor() {
  if (fd_ >= 0) ::close(fd_);
}

bool NetworkMonitor::countsAsChange(const uint8_t* buf, size_t len, int ignoreIfindex,
                                    uint32_t ignoreTable, std::string* why) {
  bool counts = false;
  auto note = [&](const char* what, int ifindex) {
    if (!counts && why != nullptr) *why = std::string(what) + " on ifindex " + std::to_string(ifindex);
    counts = true;
  };
  size_t off = 0;
  while (len - off >= sizeof(nlmsghdr)) {
    nlmsghdr h;
    std::memcpy(&h, buf + off, sizeof h);
    if (h.nlmsg_len < sizeof(nlmsghdr) || h.nlmsg_len > len - off) break;
    const uint8_t* body = buf + off + NLMSG_HDRLEN;
    size_t bodyLen = h.nlmsg_len > NLMSG_HDRLEN ? h.nlmsg_len - NLMSG_HDRLEN : 0;
    switch (h.nlmsg_type) {
      case RTM_NEWLINK:
      case RTM_DELLINK:
        if (bodyLen >= sizeof(ifinfomsg)) {
          ifinfomsg m;
          std::memcpy(&m, body, sizeof m);
          if (m.ifi_index != ignoreIfindex) {
            note(h.nlmsg_type == RTM_NEWLINK ? "link changed" : "link removed", m.ifi_index);
          }
        }
        break;
      case RTM_NEWADDR:
      case RTM_DELADDR:
        if (bodyLen >= sizeof(ifaddrmsg)) {
          ifaddrmsg m;
          std::memcpy(&m, body, sizeof m);
          // Link-local addresses (IPv6 fe80::, appearing with every link)
          // never carry a server connection.
          if (static_cast<int>(m.ifa_index) != ignoreIfindex && m.ifa_scope != RT_SCOPE_LINK &&
              m.ifa_scope != RT_SCOPE_HOST) {
            note(h.nlmsg_type == RTM_NEWADDR ? "address added" : "address removed",
                 static_cast<int>(m.ifa_index));
          }
        }
        break;
      case RTM_NEWROUTE:
      case RTM_DELROUTE:
        if (bodyLen >= sizeof(rtmsg)) {
          rtmsg m;
          std::memcpy(&m, body, sizeof m);
          uint32_t table = m.rtm_table;
          int oif = 0;
          // RTA_TABLE carries tables over 255.
          size_t a = NLMSG_ALIGN(sizeof(rtmsg));
          while (a + sizeof(rtattr) <= bodyLen) {
            rtattr ra;
            std::memcpy(&ra, body + a, sizeof ra);
            if (ra.rta_len < sizeof(rtattr) || ra.rta_len > bodyLen - a) break;
            if (ra.rta_type == RTA_TABLE && ra.rta_len >= RTA_LENGTH(4)) {
              std::memcpy(&table, body + a + RTA_LENGTH(0), 4);
            } else if (ra.rta_type == RTA_OIF && ra.rta_len >= RTA_LENGTH(4)) {
              std::memcpy(&oif, body + a + RTA_LENGTH(0), 4);
            }
            a += RTA_ALIGN(ra.rta_len);
          }
          // Only the routes that decide where the outer connections go:
          // not our own table, not local/broadcast bookkeeping.
          if (table != ignoreTable && table != RT_TABLE_LOCAL && m.rtm_type == RTN_UNICAST &&
              (oif == 0 || oif != ignoreIfindex)) {
            note(h.nlmsg_type == RTM_NEWROUTE ? "route added" : "route removed", oif);
          }
        }
        break;
      default:
        break;
    }
    size_t step = NLMSG_ALIGN(h.nlmsg_len);
    if (step == 0 || step > len - off) break;
    off += step;
  }
  return counts;
}

bool NetworkMonitor::drain(std::string* why) {
  bool counts = false;
  alignas(nlmsghdr) uint8_t buf[16384];
  for (int i = 0; i < 256; ++i) {  // bounded: the rest on the next wakeup
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      // ENOBUFS: the kernel dropped messages for us: something changed.
      if (errno == ENOBUFS) {
        if (!counts && why != nullptr) *why = "rtnetlink overflow (messages lost)";
        counts = true;
      }
      break;
    }
    if (n == 0) break;
    if (countsAsChange(buf, static_cast<size_t>(n), ignoreIfindex_, ignoreTable_,
                       counts ? nullptr : why)) {
      counts = true;
    }
  }
  return counts;
}

std::vector<std::string> usableAddresses(int ignoreIfindex) {
  std::vector<std::string> out;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return out;
  for (ifaddrs* a = list; a != nullptr; a = a->ifa_next) {
    if (a->ifa_addr == nullptr) continue;
    if ((a->ifa_flags & IFF_UP) == 0 || (a->ifa_flags & IFF_RUNNING) == 0) continue;
    if (ignoreIfindex > 0 && static_cast<int>(if_nametoindex(a->ifa_name)) == ignoreIfindex) continue;
    char text[INET6_ADDRSTRLEN] = {0};
    if (a->ifa_addr->sa_family == AF_INET) {
      inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(a->ifa_addr)->sin_addr, text, sizeof text);
    } else if (a->ifa_addr->sa_family == AF_INET6) {
      inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(a->ifa_addr)->sin6_addr, text, sizeof text);
    } else {
      continue;
    }
    out.emplace_back(text);
  }
  freeifaddrs(list);
  return out;
}

}  // namespace vt::platform
