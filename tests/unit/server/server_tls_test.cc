// vless-server behind TLS (test certificates in tests/data/tls).
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <random>
#include <set>
#include <thread>

#include "codec/length_frame.h"
#include "unit/server/server_harness.h"

namespace vt::server {
namespace {

using namespace testing;  // NOLINT(google-build-using-namespace): test helpers
using test::connectLoopback;
using test::EchoPeer;
using test::readSome;
using test::sendAll;
using test::waitEof;

// ---- TLS --------------------------------------------------------------------

// A TLS client over a blocking socket, driving our own engine.
class TlsClient {
 public:
  TlsClient(int fd, std::shared_ptr<tls::TlsContext> ctx)
      : fd_(fd), eng_(tls::TlsEngine::create(std::move(ctx))) {}
  bool handshake() {
    for (int i = 0; i < 200; ++i) {
      tls::TlsEngine::Status st = eng_->handshake();
      flush();
      if (st == tls::TlsEngine::Status::kFailed) return false;
      if (eng_->handshakeDone()) return true;
      if (!pull(3000)) return false;
    }
    return false;
  }
  void send(const std::string& s) {
    BufferChain b;
    b.append(s);
    for (int i = 0; i < 100 && !b.empty(); ++i) {
      eng_->writePlain(b);
      flush();
    }
  }
  std::string read(size_t n) {
    std::string plain;
    for (int i = 0; i < 200 && plain.size() < n; ++i) {
      BufferChain out;
      tls::TlsEngine::Status st = eng_->readPlain(out);
      plain += out.toString();
      flush();
      if (plain.size() >= n || st == tls::TlsEngine::Status::kClosed ||
          st == tls::TlsEngine::Status::kFailed) {
        break;
      }
      if (!pull(3000)) break;
    }
    return plain;
  }

 private:
  void flush() {
    BufferChain c;
    eng_->takeCiphertext(c);
    if (!c.empty()) sendAll(fd_, c.toString());
  }
  bool pull(int timeout_ms) {
    bool eof = false;
    std::string s = readSome(fd_, 1, timeout_ms, &eof);
    if (s.empty()) return false;
    // Take whatever else is already there.
    std::string more = readSome(fd_, 65536, 5);
    BufferChain b;
    b.append(s + more);
    eng_->pushCiphertext(b);
    return true;
  }

  int fd_;
  std::unique_ptr<tls::TlsEngine> eng_;
};

std::shared_ptr<tls::TlsContext> tlsContext(tls::Role role) {
  tls::TlsOptions o;
  o.role = role;
  o.alpn = {"http/1.1"};
  if (role == tls::Role::kServer) {
    o.cert_file = VT_TEST_DATA_DIR "/tls/server.pem";
    o.key_file = VT_TEST_DATA_DIR "/tls/server.key";
  } else {
    o.server_name = "localhost";
    o.ca_file = VT_TEST_DATA_DIR "/tls/ca.pem";
  }
  auto r = tls::TlsContext::create(o);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? std::move(r).value() : nullptr;
}

TEST(Server, TlsRoundTripAndFallback) {
  EchoPeer echo;
  EchoPeer fallback(kBanner);
  config::ServerConfig cfg = baseConfig();
  // Nothing here waits for the handshake timeout; 200 ms (the harness's
  // default) was once too short for a TLS handshake under ASan on a loaded
  // machine.
  cfg.handshake_timeout_ms = 5000;
  cfg.fallback = loopbackPort(fallback.port());
  auto server_ctx = tlsContext(tls::Role::kServer);
  auto client_ctx = tlsContext(tls::Role::kClient);
  ASSERT_TRUE(server_ctx && client_ctx);
  Harness h(cfg, server_ctx);
  {
    int fd = connectLoopback(h.port());
    TlsClient c(fd, client_ctx);
    ASSERT_TRUE(c.handshake());
    c.send(request(0, kAlice, echoAt(echo.port())) + "over tls");
    EXPECT_EQ(c.read(2 + 8), v0Response() + "over tls");
    ::close(fd);
  }
  {
    // A bad request inside TLS goes to the fallback as plaintext.
    int fd = connectLoopback(h.port());
    TlsClient c(fd, client_ctx);
    ASSERT_TRUE(c.handshake());
    std::string bytes = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
    c.send(bytes);
    EXPECT_GE(fallback.waitForReceived(0, bytes, 3000), 0);
    EXPECT_EQ(c.read(kBanner.size() + bytes.size()), kBanner + bytes);
    ::close(fd);
  }
  {
    // Plain bytes to the TLS port: a TLS failure, closed, server lives on.
    int fd = connectLoopback(h.port());
    sendAll(fd, std::string("GET / HTTP/1.0\r\n\r\n"));
    EXPECT_TRUE(waitEof(fd, 3000, nullptr));
    ::close(fd);
  }
}

TEST(Server, TlsReuseTwoFlowsOnOneConnection) {
  // Connection reuse (TLV 0x07) inside TLS: chunks both ways, the end
  // chunks, then the next request in the same TLS session. More cases over
  // plain TCP in server_reuse_test.cc.
  EchoPeer echo;
  config::ServerConfig cfg = baseConfig();
  cfg.handshake_timeout_ms = 5000;  // an ASan TLS handshake under load is slow
  auto server_ctx = tlsContext(tls::Role::kServer);
  auto client_ctx = tlsContext(tls::Role::kClient);
  ASSERT_TRUE(server_ctx && client_ctx);
  Harness h(cfg, server_ctx);
  int fd = connectLoopback(h.port());
  TlsClient c(fd, client_ctx);
  ASSERT_TRUE(c.handshake());
  for (std::string payload : {"first flow", "second flow"}) {
    codec::Request r;
    r.version = 1;
    r.uuid = kAlice;
    r.target = echoAt(echo.port());
    r.reuse = true;
    BufferChain up;
    codec::encodeRequest(r, up);
    BufferChain data;
    data.append(payload);
    codec::encodeReuseChunks(data, up);
    codec::encodeReuseEnd(up);
    c.send(up.toString());
    std::string want = std::string("\x00", 1) + static_cast<char>(payload.size()) + payload +
                       std::string("\x00\x00", 2);
    EXPECT_EQ(c.read(want.size()), want);
  }
  EXPECT_EQ(echo.connections(), 2u);
  EXPECT_EQ(h.sessions(), 1u);
  ::close(fd);
}

}  // namespace
}  // namespace vt::server
