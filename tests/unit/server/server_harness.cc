#include "unit/server/server_harness.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <future>

namespace vt::server::testing {

using test::connectLoopback;
using test::readSome;
using test::sendAll;

const codec::Uuid kAlice = {0xa6, 0x84, 0x45, 0x5c, 0xb1, 0x4f, 0x11, 0xea,
                            0xbf, 0x0d, 0x42, 0x01, 0x0a, 0xaa, 0x00, 0x03};
const codec::Uuid kBob = {0xb6, 0x84, 0x45, 0x5c, 0xb1, 0x4f, 0x11, 0xea,
                          0xbf, 0x0d, 0x42, 0x01, 0x0a, 0xaa, 0x00, 0x04};
const codec::Uuid kStranger = {0xc6, 0x84, 0x45, 0x5c, 0xb1, 0x4f, 0x11, 0xea,
                               0xbf, 0x0d, 0x42, 0x01, 0x0a, 0xaa, 0x00, 0x05};
const std::string kBanner = "FB\n";

config::ServerConfig baseConfig() {
  config::ServerConfig cfg;
  cfg.log_level = LogLevel::kWarn;
  cfg.listen = {config::HostPort{"127.0.0.1", 0, true}};
  cfg.users = {config::ServerUser{"alice", kAlice}, config::ServerUser{"bob", kBob}};
  cfg.handshake_timeout_ms = 200;
  cfg.idle_timeout_ms = 10'000;
  // The peers of these tests live on loopback, which the product refuses by
  // default; server_egress_test.cc checks the defaults (and
  // tests/integration/egress_test.sh end to end, in namespaces).
  cfg.egress.allow = {*IpPrefix::parse("127.0.0.0/8"), *IpPrefix::parse("::1")};
  return cfg;
}

config::HostPort loopbackPort(uint16_t port) {
  return config::HostPort{"127.0.0.1", port, true};
}

Harness::Harness(const config::ServerConfig& cfg, std::shared_ptr<tls::TlsContext> tls) {
  std::signal(SIGPIPE, SIG_IGN);
  setLogLevel(cfg.log_level);
  loop_ = std::make_unique<event::Loop>();
  server_ = std::make_unique<Server>(*loop_, cfg, std::move(tls));
  Status st = server_->start();
  EXPECT_TRUE(st.ok()) << st.error().message;
  if (st.ok()) port_ = server_->localAddresses().at(0).port();
  // The loop thread polls for the stop request: Loop is not thread-safe.
  poll_ = std::make_unique<event::Timer>(*loop_);
  poll_->start(
      5,
      [this] {
        sessions_ = server_->sessionCount();
        udp_sessions_ = server_->udpNat().size();
        egress_denied_ = server_->egressDenied();
        std::vector<std::function<void()>> calls;
        {
          std::lock_guard<std::mutex> lock(calls_mu_);
          calls.swap(calls_);
        }
        for (auto& fn : calls) fn();
        {
          std::lock_guard<std::mutex> lock(udp_mu_);
          udp_stats_ = server_->udpNat().stats();
        }
        if (!stop_) return;
        server_->stop();
        if (server_->sessionCount() == 0) {
          poll_->stop();
          loop_->stop();
        }
      },
      5);
  thread_ = std::thread([this] { loop_->run(); });
}

Harness::~Harness() {
  stop_ = true;
  thread_.join();
  poll_.reset();
  server_.reset();
  loop_.reset();
}

void Harness::call(const std::function<void(Server&)>& fn) {
  std::promise<void> done;
  {
    std::lock_guard<std::mutex> lock(calls_mu_);
    calls_.push_back([&] {
      fn(*server_);
      done.set_value();
    });
  }
  done.get_future().wait();
}

UdpNatStats Harness::udpStats() const {
  std::lock_guard<std::mutex> lock(udp_mu_);
  return udp_stats_;
}

bool Harness::waitUdpStats(const std::function<bool(const UdpNatStats&)>& pred,
                           int timeout_ms) const {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!pred(udpStats())) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

std::string encoded(const codec::Request& r) {
  BufferChain b;
  codec::encodeRequest(r, b);
  return b.toString();
}

std::string request(uint8_t version, const codec::Uuid& uuid, const codec::Address& target,
                    bool want_ip) {
  codec::Request r;
  r.version = version;
  r.uuid = uuid;
  r.command = codec::Command::kTcp;
  r.target = target;
  r.want_ip = want_ip;
  return encoded(r);
}

codec::Address echoAt(uint16_t port) {
  return codec::Address::ipv4(0x7f000001, port);
}

std::string v0Response() {
  BufferChain b;
  codec::encodeV0Response(b);
  return b.toString();
}

// Sends `req` + "hello", expects `prefix` + "hello" back, then one more
// round trip on the same connection.
void roundTrip(uint16_t server_port, const std::string& req, const std::string& prefix,
               bool trickle) {
  int fd = connectLoopback(server_port);
  ASSERT_GE(fd, 0);
  std::string first = req + "hello";
  if (trickle) {
    for (char c : first) {
      ASSERT_TRUE(sendAll(fd, &c, 1));
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  } else {
    ASSERT_TRUE(sendAll(fd, first));
  }
  EXPECT_EQ(readSome(fd, prefix.size() + 5, 3000), prefix + "hello");
  ASSERT_TRUE(sendAll(fd, std::string("world")));
  EXPECT_EQ(readSome(fd, 5, 3000), "world");
  ::close(fd);
}

}  // namespace vt::server::testing
