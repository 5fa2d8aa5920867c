// The C API called the way other people's code may call it: NULLs, bad
// TOML, fds that are not TUNs, calls in the wrong order, stop before and
// during run, bounded packet input. Linked against libvless_tun.so only.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "vless_tun.h"

namespace {

const char kConfig[] =
    "log_level = \"info\"\n"
    "[server]\n"
    "address = \"127.0.0.1:1\"\n"
    "uuid = \"b831381d-6324-4d53-ad4f-8cda48b30811\"\n"
    "tls = false\n";

void noPackets(void*, const uint8_t* const*, const size_t*, size_t) {}

struct Created {
  vless_tun* t = nullptr;
  int code = 0;
  std::string err;
};

Created create(vless_tun_options o) {
  Created c;
  char err[512];
  std::memset(err, 'x', sizeof err);
  c.t = vless_tun_create(&o, &c.code, err, sizeof err);
  c.err = err;  // always NUL-terminated
  return c;
}

vless_tun_options callbackOptions(const char* config = kConfig) {
  vless_tun_options o;
  vless_tun_options_init(&o);
  o.config = config;
  o.config_len = std::strlen(config);
  o.packet_out = noPackets;
  return o;
}

TEST(CApi, NullAndUninitialisedOptions) {
  vless_tun_options_init(nullptr);  // no crash
  int code = 0;
  char err[64];
  EXPECT_EQ(vless_tun_create(nullptr, &code, err, sizeof err), nullptr);
  EXPECT_EQ(code, VLESS_TUN_EINVAL);
  EXPECT_STREQ(err, "options is NULL");
  EXPECT_EQ(vless_tun_create(nullptr, nullptr, nullptr, 0), nullptr);  // no out-params: fine

  vless_tun_options o;
  std::memset(&o, 0, sizeof o);
  Created c = create(o);
  EXPECT_EQ(c.t, nullptr);
  EXPECT_EQ(c.code, VLESS_TUN_EINVAL);
  EXPECT_NE(c.err.find("vless_tun_options_init"), std::string::npos) << c.err;

  char tiny[8];
  EXPECT_EQ(vless_tun_create(nullptr, &code, tiny, sizeof tiny), nullptr);
  EXPECT_EQ(std::strlen(tiny), 7u);  // truncated, terminated
}

TEST(CApi, EveryCallTakesNull) {
  EXPECT_EQ(vless_tun_run(nullptr), VLESS_TUN_EINVAL);
  EXPECT_EQ(vless_tun_stop(nullptr), VLESS_TUN_EINVAL);
  EXPECT_EQ(vless_tun_destroy(nullptr), VLESS_TUN_OK);
  EXPECT_EQ(vless_tun_input_packets(nullptr, nullptr, nullptr, 0), VLESS_TUN_EINVAL);
  EXPECT_EQ(vless_tun_network_changed(nullptr, nullptr), VLESS_TUN_EINVAL);
  EXPECT_EQ(vless_tun_stats_json(nullptr), nullptr);
  char buf[32];
  EXPECT_EQ(vless_tun_last_error(nullptr, buf, sizeof buf), 0u);
  vless_tun_free(nullptr);
  for (int code = -12; code <= 3; ++code) EXPECT_NE(vless_tun_strerror(code), nullptr);
  EXPECT_NE(std::string(vless_tun_version()).find("vless-tun"), std::string::npos);
}

TEST(CApi, BadConfigNamesTheKey) {
  vless_tun_options o = callbackOptions("[server]\naddress = \"127.0.0.1:1\"\nuuid = \"nope\"\n");
  o.config_name = "profile.toml";
  Created c = create(o);
  EXPECT_EQ(c.t, nullptr);
  EXPECT_EQ(c.code, VLESS_TUN_ECONFIG);
  EXPECT_NE(c.err.find("profile.toml"), std::string::npos) << c.err;
  EXPECT_NE(c.err.find("server.uuid"), std::string::npos) << c.err;

  Created broken = create(callbackOptions("[server\n"));
  EXPECT_EQ(broken.code, VLESS_TUN_ECONFIG);
  EXPECT_NE(broken.err.find("config"), std::string::npos) << broken.err;

  vless_tun_options empty = callbackOptions();
  empty.config_len = 0;
  EXPECT_EQ(create(empty).code, VLESS_TUN_EINVAL);
  vless_tun_options null = callbackOptions();
  null.config = nullptr;
  EXPECT_EQ(create(null).code, VLESS_TUN_EINVAL);
}

TEST(CApi, BadOptions) {
  vless_tun_options o = callbackOptions();
  o.packet_out = nullptr;
  Created c = create(o);
  EXPECT_EQ(c.code, VLESS_TUN_EINVAL);
  EXPECT_NE(c.err.find("packet_out"), std::string::npos) << c.err;

  o = callbackOptions();
  o.tun_fd = -7;
  EXPECT_EQ(create(o).code, VLESS_TUN_EINVAL);
  o = callbackOptions();
  o.log_level = 9;
  EXPECT_EQ(create(o).code, VLESS_TUN_EINVAL);
  o = callbackOptions();
  o.flags = 0x80;
  EXPECT_EQ(create(o).code, VLESS_TUN_EINVAL);
  o = callbackOptions();
  o.dns_servers = "192.0.2.1, bogus";
  c = create(o);
  EXPECT_EQ(c.code, VLESS_TUN_EINVAL);
  EXPECT_NE(c.err.find("bogus"), std::string::npos) << c.err;
  o = callbackOptions();
  o.dns_servers = "192.0.2.1, 2001:db8::53";
  c = create(o);
  ASSERT_NE(c.t, nullptr) << c.err;
  EXPECT_EQ(vless_tun_destroy(c.t), VLESS_TUN_OK);
}

TEST(CApi, FdsThatAreNotTuns) {
  auto tryFd = [](int fd) {
    vless_tun_options o = callbackOptions();
    o.tun_fd = fd;
    return create(o);
  };
  Created closed = tryFd(987654);
  EXPECT_EQ(closed.code, VLESS_TUN_ETUN);
  EXPECT_NE(closed.err.find("not an open fd"), std::string::npos) << closed.err;

  int pipefd[2];
  ASSERT_EQ(pipe(pipefd), 0);
  Created p = tryFd(pipefd[0]);
  EXPECT_EQ(p.code, VLESS_TUN_ETUN);
  EXPECT_NE(p.err.find("not a TUN"), std::string::npos) << p.err;
  close(pipefd[0]);
  close(pipefd[1]);

  int devnull = open("/dev/null", O_RDWR);
  ASSERT_GE(devnull, 0);
  Created n = tryFd(devnull);  // a character device, but not a TUN
  EXPECT_EQ(n.code, VLESS_TUN_ETUN);
  EXPECT_NE(n.err.find("not a TUN"), std::string::npos) << n.err;
  close(devnull);

  int s = socket(AF_INET, SOCK_DGRAM, 0);
  EXPECT_EQ(tryFd(s).code, VLESS_TUN_ETUN);
  close(s);
}

TEST(CApi, StopBeforeRunReturnsAtOnceAndRunIsOnce) {
  Created c = create(callbackOptions());
  ASSERT_NE(c.t, nullptr) << c.err;
  char* s = vless_tun_stats_json(c.t);
  ASSERT_NE(s, nullptr);
  EXPECT_NE(std::string(s).find("\"state\":\"created\""), std::string::npos) << s;
  vless_tun_free(s);
  EXPECT_EQ(vless_tun_stop(c.t), VLESS_TUN_OK);
  EXPECT_EQ(vless_tun_stop(c.t), VLESS_TUN_OK);
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(vless_tun_run(c.t), VLESS_TUN_OK);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  EXPECT_EQ(vless_tun_run(c.t), VLESS_TUN_ESTATE);
  const uint8_t pkt[20] = {0x45};
  const uint8_t* pp = pkt;
  size_t len = sizeof pkt;
  EXPECT_EQ(vless_tun_input_packets(c.t, &pp, &len, 1), VLESS_TUN_ESTOPPED);
  EXPECT_EQ(vless_tun_network_changed(c.t, "wlan0"), VLESS_TUN_OK);  // harmless when stopped
  s = vless_tun_stats_json(c.t);
  ASSERT_NE(s, nullptr);
  EXPECT_NE(std::string(s).find("\"state\":\"stopped\""), std::string::npos) << s;
  vless_tun_free(s);
  EXPECT_EQ(vless_tun_destroy(c.t), VLESS_TUN_OK);
}

TEST(CApi, InputIsBoundedAndChecked) {
  vless_tun_options o = callbackOptions();
  o.input_queue_packets = 4;
  Created c = create(o);
  ASSERT_NE(c.t, nullptr) << c.err;
  std::vector<uint8_t> pkt(40, 0);
  pkt[0] = 0x45;
  std::vector<const uint8_t*> ptrs(6, pkt.data());
  std::vector<size_t> lens(6, pkt.size());
  // Before run the packets wait in the queue: 4 fit, then EAGAIN.
  EXPECT_EQ(vless_tun_input_packets(c.t, ptrs.data(), lens.data(), 6), 4);
  EXPECT_EQ(vless_tun_input_packets(c.t, ptrs.data(), lens.data(), 1), VLESS_TUN_EAGAIN);
  EXPECT_EQ(vless_tun_input_packets(c.t, ptrs.data(), lens.data(), 0), 0);
  EXPECT_EQ(vless_tun_input_packets(c.t, nullptr, lens.data(), 1), VLESS_TUN_EINVAL);
  EXPECT_EQ(vless_tun_input_packets(c.t, ptrs.data(), nullptr, 1), VLESS_TUN_EINVAL);
  size_t zero = 0, huge = 70000;
  EXPECT_EQ(vless_tun_input_packets(c.t, ptrs.data(), &zero, 1), VLESS_TUN_EINVAL);
  EXPECT_EQ(vless_tun_input_packets(c.t, ptrs.data(), &huge, 1), VLESS_TUN_EINVAL);
  const uint8_t* nullPacket = nullptr;
  EXPECT_EQ(vless_tun_input_packets(c.t, &nullPacket, lens.data(), 1), VLESS_TUN_EINVAL);
  EXPECT_EQ(vless_tun_destroy(c.t), VLESS_TUN_OK);  // queued packets freed
}

struct LogCapture {
  std::mutex mu;
  std::vector<std::pair<int, std::string>> lines;
};

void captureLog(void* ctx, int level, const char* msg) {
  auto* cap = static_cast<LogCapture*>(ctx);
  std::lock_guard<std::mutex> lk(cap->mu);
  cap->lines.emplace_back(level, msg);
}

TEST(CApi, RunStopFromAnotherThreadWithLogCallback) {
  LogCapture cap;
  vless_tun_options o = callbackOptions();
  o.log = captureLog;
  o.ctx = &cap;
  o.log_level = VLESS_TUN_LOG_INFO;
  Created c = create(o);
  ASSERT_NE(c.t, nullptr) << c.err;
  std::atomic<int> rc{1};
  std::thread runner([&] { rc = vless_tun_run(c.t); });
  // Running: the stats say so (asked from this thread, answered by the core's).
  bool running = false;
  for (int i = 0; i < 100 && !running; ++i) {
    char* s = vless_tun_stats_json(c.t);
    running = s != nullptr && std::string(s).find("\"tcp\"") != std::string::npos;
    vless_tun_free(s);
    if (!running) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(running);
  EXPECT_EQ(vless_tun_destroy(c.t), VLESS_TUN_ESTATE);  // refused while running
  EXPECT_EQ(vless_tun_network_changed(c.t, nullptr), VLESS_TUN_OK);
  std::thread stopper([&] { vless_tun_stop(c.t); });
  stopper.join();
  runner.join();
  EXPECT_EQ(rc.load(), VLESS_TUN_OK);
  EXPECT_EQ(vless_tun_destroy(c.t), VLESS_TUN_OK);
  std::lock_guard<std::mutex> lk(cap.mu);
  bool started = false, debug = false;
  for (const auto& [level, line] : cap.lines) {
    if (line.find("vless-tun started: tun callbacks") != std::string::npos) started = level == VLESS_TUN_LOG_INFO;
    if (level < VLESS_TUN_LOG_INFO) debug = true;
  }
  EXPECT_TRUE(started);
  EXPECT_FALSE(debug);  // filtered in the core
}

TEST(CApi, StopRacingStartManyTimes) {
  for (int i = 0; i < 20; ++i) {
    Created c = create(callbackOptions());
    ASSERT_NE(c.t, nullptr) << c.err;
    std::atomic<int> rc{1};
    std::thread runner([&] { rc = vless_tun_run(c.t); });
    if (i % 2 == 1) std::this_thread::sleep_for(std::chrono::milliseconds(i));
    vless_tun_stop(c.t);
    runner.join();
    EXPECT_EQ(rc.load(), VLESS_TUN_OK);
    EXPECT_EQ(vless_tun_destroy(c.t), VLESS_TUN_OK);
  }
}

TEST(CApi, TwoCoresRunSideBySide) {
  Created a = create(callbackOptions());
  Created b = create(callbackOptions());
  ASSERT_NE(a.t, nullptr);
  ASSERT_NE(b.t, nullptr);
  std::atomic<int> ra{1}, rb{1};
  std::thread ta([&] { ra = vless_tun_run(a.t); });
  std::thread tb([&] { rb = vless_tun_run(b.t); });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  char* s = vless_tun_stats_json(b.t);
  ASSERT_NE(s, nullptr);
  EXPECT_NE(std::string(s).find("\"state\":\"running\""), std::string::npos) << s;
  vless_tun_free(s);
  vless_tun_stop(a.t);
  ta.join();
  s = vless_tun_stats_json(b.t);  // b goes on after a stopped
  EXPECT_NE(std::string(s).find("\"state\":\"running\""), std::string::npos) << s;
  vless_tun_free(s);
  vless_tun_stop(b.t);
  tb.join();
  EXPECT_EQ(ra.load(), VLESS_TUN_OK);
  EXPECT_EQ(rb.load(), VLESS_TUN_OK);
  vless_tun_destroy(a.t);
  vless_tun_destroy(b.t);
}

}  // namespace
