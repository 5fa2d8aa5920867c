// At least 100 hostile handshakes: each gets the fallback (verbatim) or a
// silent close, and the server keeps serving.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <random>
#include <set>
#include <thread>

#include "unit/server/server_harness.h"

namespace vt::server {
namespace {

using namespace testing;  // NOLINT(google-build-using-namespace): test helpers
using test::connectLoopback;
using test::EchoPeer;
using test::readSome;
using test::sendAll;
using test::waitEof;

// ---- hostile handshakes ---------------------------------------------------

std::vector<std::string> hostileCorpus(uint16_t echo_port) {
  std::vector<std::string> out;
  std::set<std::string> seen;
  auto add = [&](const std::string& s) {
    if (!s.empty() && seen.insert(s).second) out.push_back(s);
  };
  codec::Request padded;
  padded.version = 1;
  padded.uuid = kAlice;
  padded.target = codec::Address::fromDomain("example.com", 443);
  padded.padding = std::vector<uint8_t>(20, 0x55);
  BufferChain pb;
  codec::encodeRequest(padded, pb);
  // Valid headers cut short: the server waits, then times out.
  for (const std::string& full :
       {request(0, kAlice, echoAt(echo_port)),
        request(1, kAlice, codec::Address::fromDomain("example.com", 443)), pb.toString()}) {
    for (size_t n = 1; n < full.size(); ++n) add(full.substr(0, n));
  }
  // Random bytes of varied lengths, fixed seed.
  std::mt19937 rng(20240601);
  for (size_t len : {1,  2,   3,   7,   16,  17,   18,   19,   20,   21,   25,   31,
                     64, 100, 255, 256, 512, 1000, 1301, 1302, 1303, 1500, 2048, 4000}) {
    std::string s(len, '\0');
    for (auto& c : s) c = static_cast<char>(rng());
    add(s);
    s[0] = static_cast<char>(rng() & 1);  // a plausible version byte
    add(s);
  }
  std::string v1 = request(1, kAlice, echoAt(echo_port));  // 01 UUID 00 01 PORT 01 IP
  auto with = [&](size_t at, uint8_t b) {
    std::string s = v1;
    s[at] = static_cast<char>(b);
    return s + "tail";
  };
  std::string uuid(reinterpret_cast<const char*>(kAlice.data()), 16);
  add(with(0, 2));  // bad version
  add(with(0, 0xff));
  add(with(21, 0));  // bad ATYP
  add(with(21, 4));
  add(with(21, 0xff));
  add(with(17, 3));  // ADDON 0x03
  add(with(17, 0xff));
  add(with(18, 4));  // CMD 0x04
  add(with(18, 0));
  add(with(18, 0x7f));
  // CMD 2 (UDP) is served: bad framing after it closes the channel, see
  // server_udp_test.cc.
  // CMD 3 (Mux) is served: bad smux input closes the connection (the user
  // is proven, so no fallback), see server_mux_test.cc.
  add(std::string("\x01", 1) + uuid + std::string("\x00\x05", 2) + "tail");     // IP: not yet
  add(with(19, 0).substr(0, 20) + std::string("\x00\x01\x7f\x00\x00\x01", 6));  // port 0
  add(std::string("\x01", 1) + uuid + std::string("\x00\x01\x01\xbb\x02\x00", 6) +
      "tail");  // empty domain
  add(std::string("\x01", 1) + uuid +
      std::string("\x02\x01\x85\x00\x01\x01\xbb\x01\x7f\x00\x00\x01", 12));  // critical TLV
  add(std::string("\x01", 1) + uuid + std::string("\x02\x01\x06\x05", 4) +
      "xxxxx");                                                         // want_ip with LEN 5
  add(std::string("\x00", 1) + uuid + std::string("\x05\x01\x02", 3));  // v0 addons cut
  {
    // Oversized: a TLV list far over the cap, padding after padding.
    std::string s = std::string("\x01", 1) + uuid + std::string("\x02\xff", 2);
    for (int i = 0; i < 255; ++i) s += std::string("\x05\xff", 2) + std::string(255, 'p');
    add(s);
  }
  add(request(1, kStranger, echoAt(echo_port)) + "unknown user");
  add(request(0, kStranger, codec::Address::fromDomain("example.com", 80)));
  add("GET / HTTP/1.1\r\nHost: probe\r\n\r\n");
  add(std::string("\x16\x03\x01\x00\xc8\x01\x00\x00\xc4\x03\x03", 11));  // a ClientHello start
  add("SSH-2.0-OpenSSH_9.2\r\n");
  add(std::string(3000, '\0'));
  return out;
}

// Sends every case concurrently (so the handshake timeouts overlap), then
// checks each: with a fallback, the fallback got exactly the bytes and the
// client got them echoed after the banner; without, EOF and no byte.
void runCorpus(const std::vector<std::string>& corpus, uint16_t server_port, EchoPeer* fallback) {
  const size_t kBatch = 50;
  for (size_t base = 0; base < corpus.size(); base += kBatch) {
    size_t end = std::min(corpus.size(), base + kBatch);
    size_t fb_from = fallback != nullptr ? fallback->connections() : 0;
    std::vector<int> fds;
    for (size_t i = base; i < end; ++i) {
      int fd = connectLoopback(server_port);
      ASSERT_GE(fd, 0);
      sendAll(fd, corpus[i]);  // may fail once the server has closed: fine
      fds.push_back(fd);
    }
    for (size_t i = base; i < end; ++i) {
      int fd = fds[i - base];
      const std::string& sent = corpus[i];
      if (fallback != nullptr) {
        EXPECT_EQ(readSome(fd, kBanner.size() + sent.size(), 5000), kBanner + sent)
            << "case " << i << " len " << sent.size();
      } else {
        std::string got;
        EXPECT_TRUE(waitEof(fd, 5000, &got)) << "case " << i;
        EXPECT_EQ(got.size(), 0u) << "case " << i;
      }
      ::close(fd);
    }
    if (fallback != nullptr) {
      std::multiset<std::string> want(corpus.begin() + static_cast<long>(base),
                                      corpus.begin() + static_cast<long>(end));
      std::multiset<std::string> got;
      for (size_t c = fb_from; c < fallback->connections(); ++c) got.insert(fallback->received(c));
      EXPECT_TRUE(want == got) << "fallback saw " << got.size() << " of " << want.size();
    }
  }
}

TEST(Server, HostileHandshakeCorpus) {
  EchoPeer echo;
  EchoPeer fallback(kBanner);
  config::ServerConfig with_fb = baseConfig();
  with_fb.fallback = loopbackPort(fallback.port());
  Harness hf(with_fb);
  Harness hs(baseConfig());
  std::vector<std::string> corpus = hostileCorpus(echo.port());
  ASSERT_GE(corpus.size(), 100u);
  runCorpus(corpus, hs.port(), nullptr);
  runCorpus(corpus, hf.port(), &fallback);
  EXPECT_EQ(echo.connections(), 0u);
  // Both still serve.
  roundTrip(hs.port(), request(1, kAlice, echoAt(echo.port())), "", false);
  roundTrip(hf.port(), request(0, kBob, echoAt(echo.port())), v0Response(), false);
}

}  // namespace
}  // namespace vt::server
