// The maps the workers of one engine share for routing (tun.workers > 1):
// DnsNames (address -> name, taught by any worker's DNS answers) and
// DialledIps (name -> the server's want_ip answer). Four threads teach and
// ask at once; under scripts/tsan.sh this is the race check, elsewhere a
// consistency check (every answer read back is one that was taught).
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "client/dialled_ips.h"
#include "client/dns_names.h"

namespace vt::client {
namespace {

// A NOERROR response: one question (name) and one A answer (ip), TTL 300.
std::vector<uint8_t> answer(const std::string& name, const uint8_t ip[4]) {
  std::vector<uint8_t> m = {0x12, 0x34, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0};
  size_t start = 0;
  while (start <= name.size()) {
    size_t dot = name.find('.', start);
    if (dot == std::string::npos) dot = name.size();
    m.push_back(static_cast<uint8_t>(dot - start));
    m.insert(m.end(), name.begin() + static_cast<long>(start), name.begin() + static_cast<long>(dot));
    start = dot + 1;
  }
  m.insert(m.end(), {0, 0, 1, 0, 1});                       // root, A, IN
  m.insert(m.end(), {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 1, 0x2c, 0, 4});  // ptr, A, IN, 300, len 4
  m.insert(m.end(), ip, ip + 4);
  return m;
}

TEST(SharedRoutingMaps, WorkersTeachAndAskAtOnce) {
  DnsNames names(64);  // smaller than what is taught: eviction races too
  DialledIps dialled(64, 60'000);
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i) {
        const int k = (i * 7 + t) % 200;
        const uint8_t ip[4] = {198, 18, static_cast<uint8_t>(k / 100), static_cast<uint8_t>(k % 100)};
        const std::string name = "n" + std::to_string(k) + ".test";
        auto msg = answer(name, ip);
        names.learn(msg.data(), msg.size(), 1000);
        if (auto got = names.nameOf(false, ip, 1001); got && *got != name) ++wrong;
        route::IpAddress a = route::IpAddress::v4(ip);
        dialled.note(name, a, 1000);
        if (auto got = dialled.lookup(name, 1001); got && got->bytes != a.bytes) ++wrong;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_LE(names.size(), 64u);
  EXPECT_LE(dialled.size(), 64u);
  EXPECT_GT(names.stats().hits, 0u);
}

}  // namespace
}  // namespace vt::client
