// vless-server's v1 Mux (CMD 3): smux VER 1 (trojan-go / verysimple peers,
// built from the reference's byte vectors) and VER 2, SimpleSocks TCP and
// UDP streams, caps, and hostile mux input. The client side is raw bytes
// on a socket, so every byte the server sends is checked.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "codec/simple_socks.h"
#include "codec/smux.h"
#include "codec/trojan_udp.h"
#include "server/server_stats.h"
#include "unit/server/server_harness.h"
#include "unit/server/udp_peers.h"

namespace vt::server {
namespace {

using namespace vt::server::testing;
using test::connectLoopback;
using test::EchoPeer;
using test::readSome;
using test::sendAll;
using test::waitEof;

std::string hexBytes(const std::string& h) {
  std::string out;
  for (size_t i = 0; i + 1 < h.size();) {
    if (h[i] == ' ' || h[i] == '|') {
      ++i;
      continue;
    }
    out.push_back(static_cast<char>(std::stoi(h.substr(i, 2), nullptr, 16)));
    i += 2;
  }
  return out;
}

std::string muxHeader(const codec::Uuid& uuid = kAlice) {
  codec::Request r;
  r.version = 1;
  r.uuid = uuid;
  r.command = codec::Command::kMux;
  return encoded(r);
}

std::string control(uint8_t ver, codec::SmuxCommand cmd, uint32_t sid) {
  BufferChain b;
  codec::encodeSmuxControl(ver, cmd, sid, b);
  return b.toString();
}

std::string psh(uint8_t ver, uint32_t sid, const std::string& data) {
  BufferChain d, b;
  d.append(data);
  EXPECT_TRUE(codec::encodeSmuxPsh(ver, sid, d, b));
  return b.toString();
}

std::string socks(codec::SimpleSocksCommand cmd, const codec::Address& a) {
  BufferChain b;
  codec::encodeSimpleSocks({cmd, a}, b);
  return b.toString();
}

std::string trojan(const codec::Address& a, const std::string& payload) {
  BufferChain p, b;
  p.append(payload);
  EXPECT_TRUE(codec::encodeTrojanUdpPacket(a, p, b));
  return b.toString();
}

config::ServerConfig muxConfig() {
  config::ServerConfig cfg = baseConfig();
  cfg.handshake_timeout_ms = 2000;
  return cfg;
}

// The reference's VER 1 exchange (trojan-go / verysimple): SYN, then a PSH
// whose data is the SimpleSocks CONNECT and the first payload.
TEST(ServerMux, Ver1StreamAsTrojanGoSendsIt) {
  EchoPeer echo;
  Harness h(muxConfig());
  int fd = connectLoopback(h.port());
  ASSERT_GE(fd, 0);
  // SimpleSocks CONNECT 127.0.0.1:<echo>, then "GET".
  std::string ss = socks(codec::SimpleSocksCommand::kTcp, echoAt(echo.port()));
  ASSERT_EQ(ss.substr(0, 6), hexBytes("01 01 7f 00 00 01"));
  ASSERT_TRUE(sendAll(fd, muxHeader() + hexBytes("01 00 00 00 03 00 00 00") +
                              psh(1, 3, ss + "GET")));
  // The answer (PSH LEN 0 once the target connected), then the echo.
  EXPECT_EQ(readSome(fd, 8, 3000), hexBytes("01 02 00 00 03 00 00 00"));
  EXPECT_EQ(readSome(fd, 11, 3000), hexBytes("01 02 03 00 03 00 00 00") + "GET");
  // A second stream, id 5, on the same connection.
  ASSERT_TRUE(sendAll(fd, control(1, codec::SmuxCommand::kSyn, 5) + psh(1, 5, ss + "two")));
  EXPECT_EQ(readSome(fd, 8, 3000), hexBytes("01 02 00 00 05 00 00 00"));
  EXPECT_EQ(readSome(fd, 11, 3000), hexBytes("01 02 03 00 05 00 00 00") + "two");
  // FIN on 3: the echo target closes, the server's FIN follows; 5 lives on.
  ASSERT_TRUE(sendAll(fd, hexBytes("01 01 00 00 03 00 00 00")));
  EXPECT_EQ(readSome(fd, 8, 3000), hexBytes("01 01 00 00 03 00 00 00"));
  ASSERT_TRUE(sendAll(fd, psh(1, 5, "more")));
  EXPECT_EQ(readSome(fd, 12, 3000), hexBytes("01 02 04 00 05 00 00 00") + "more");
  ::close(fd);
}

TEST(ServerMux, Ver2WindowUpdatesAndClosedPort) {
  EchoPeer echo;
  Harness h(muxConfig());
  int fd = connectLoopback(h.port());
  ASSERT_GE(fd, 0);
  // A port nothing listens on: bind one, close it.
  uint16_t closed_port;
  {
    EchoPeer gone;
    closed_port = gone.port();
  }
  std::string ok = socks(codec::SimpleSocksCommand::kTcp, echoAt(echo.port()));
  std::string refused = socks(codec::SimpleSocksCommand::kTcp, echoAt(closed_port));
  ASSERT_TRUE(sendAll(fd, muxHeader() + control(2, codec::SmuxCommand::kSyn, 3) +
                              psh(2, 3, refused) + control(2, codec::SmuxCommand::kSyn, 5) +
                              psh(2, 5, ok)));
  // Stream 3's dial fails: its FIN, no PSH before it. Stream 5 answers.
  std::string got = readSome(fd, 16, 3000);
  EXPECT_TRUE(got == hexBytes("02 01 00 00 03 00 00 00 02 02 00 00 05 00 00 00") ||
              got == hexBytes("02 02 00 00 05 00 00 00 02 01 00 00 03 00 00 00"))
      << got.size() << " bytes";
  // 200 KiB through stream 5: the server consumes past half its window
  // (128 KiB) and says so with an UPD before the echo is complete.
  std::string big(200 * 1024, 'x');
  std::string frames;
  for (size_t off = 0; off < big.size(); off += 32768) {
    frames += psh(2, 5, big.substr(off, 32768));
  }
  ASSERT_TRUE(sendAll(fd, frames));
  size_t echoed = 0;
  bool upd = false;
  while (echoed < big.size()) {
    std::string hdr = readSome(fd, 8, 3000);
    ASSERT_EQ(hdr.size(), 8u);
    ASSERT_EQ(hdr[0], 2);
    size_t len = static_cast<uint8_t>(hdr[2]) | (static_cast<uint8_t>(hdr[3]) << 8);
    std::string body = readSome(fd, len, 3000);
    ASSERT_EQ(body.size(), len);
    if (hdr[1] == 4) {
      ASSERT_EQ(len, 8u);
      upd = true;
      uint32_t window = static_cast<uint8_t>(body[4]) | (static_cast<uint8_t>(body[5]) << 8) |
                        (static_cast<uint8_t>(body[6]) << 16) |
                        (static_cast<uint32_t>(static_cast<uint8_t>(body[7])) << 24);
      EXPECT_EQ(window, 256u * 1024);
      continue;
    }
    ASSERT_EQ(hdr[1], 2);
    echoed += len;
  }
  EXPECT_TRUE(upd);
  ::close(fd);
}

// One UDP stream is one server socket: every remote sees the same port
// (EIM) and every datagram comes back labelled with its real source (EIF).
TEST(ServerMux, UdpStreamIsFullCone) {
  UdpReflector a("A:"), b("B:");
  Harness h(muxConfig());
  int fd = connectLoopback(h.port());
  ASSERT_GE(fd, 0);
  codec::Address placeholder = codec::Address::fromDomain("UDP_CONN", 0);  // trojan-go's
  std::string head = socks(codec::SimpleSocksCommand::kUdp, placeholder);
  ASSERT_TRUE(sendAll(fd, muxHeader() + control(2, codec::SmuxCommand::kSyn, 3) +
                              psh(2, 3, head + trojan(echoAt(a.port()), "one")) +
                              psh(2, 3, trojan(echoAt(b.port()), "two"))));
  std::string want_a = trojan(echoAt(a.port()), "A:one");
  std::string want_b = trojan(echoAt(b.port()), "B:two");
  // First the stream's wider receive window (mux.datagram_window, 1 MiB):
  // UPD consumed 0, window 0x00100000, as soon as the header said UDP.
  EXPECT_EQ(readSome(fd, 16, 3000), hexBytes("02 04 08 00 03 00 00 00 00 00 00 00 00 00 10 00"));
  std::string got = readSome(fd, 16 + want_a.size() + want_b.size(), 3000);
  EXPECT_TRUE(got == psh(2, 3, want_a) + psh(2, 3, want_b) ||
              got == psh(2, 3, want_b) + psh(2, 3, want_a));
  ASSERT_EQ(a.sourcePorts().size(), 1u);
  ASSERT_EQ(b.sourcePorts().size(), 1u);
  EXPECT_EQ(a.sourcePorts()[0], b.sourcePorts()[0]);
  // A stranger reaches the stream through that port.
  UdpProbe c;
  ASSERT_TRUE(c.sendTo(a.sourcePorts()[0], "from C"));
  std::string want_c = psh(2, 3, trojan(echoAt(c.port()), "from C"));
  EXPECT_EQ(readSome(fd, want_c.size(), 3000), want_c);
  ::close(fd);
}

// Past mux.max_streams a SYN gets a FIN at once; the streams already open
// keep working.
TEST(ServerMux, StreamCapRefusesWithFin) {
  EchoPeer echo;
  config::ServerConfig cfg = muxConfig();
  cfg.mux.max_streams = 2;
  Harness h(cfg);
  int fd = connectLoopback(h.port());
  ASSERT_GE(fd, 0);
  std::string ss = socks(codec::SimpleSocksCommand::kTcp, echoAt(echo.port()));
  ASSERT_TRUE(sendAll(fd, muxHeader() + control(2, codec::SmuxCommand::kSyn, 3) + psh(2, 3, ss) +
                              control(2, codec::SmuxCommand::kSyn, 5) + psh(2, 5, ss)));
  std::string answers = readSome(fd, 16, 3000);
  EXPECT_EQ(answers.size(), 16u);
  // 50 more SYNs (a flood past the cap): 50 FINs, nothing else.
  std::string flood;
  for (uint32_t sid = 7; sid < 7 + 100; sid += 2) flood += control(2, codec::SmuxCommand::kSyn, sid);
  ASSERT_TRUE(sendAll(fd, flood));
  std::string fins = readSome(fd, 50 * 8, 3000);
  ASSERT_EQ(fins.size(), 400u);
  for (uint32_t i = 0; i < 50; ++i) {
    EXPECT_EQ(fins.substr(i * 8, 8), control(2, codec::SmuxCommand::kFin, 7 + 2 * i));
  }
  ASSERT_TRUE(sendAll(fd, psh(2, 3, "still")));
  EXPECT_EQ(readSome(fd, 13, 3000), psh(2, 3, "still"));
  ::close(fd);
}

TEST(ServerMux, PerUserStreamCap) {
  EchoPeer echo;
  config::ServerConfig cfg = muxConfig();
  cfg.mux.max_streams_per_user = 1;
  Harness h(cfg);
  int fd1 = connectLoopback(h.port());
  int fd2 = connectLoopback(h.port());
  ASSERT_GE(fd1, 0);
  ASSERT_GE(fd2, 0);
  std::string ss = socks(codec::SimpleSocksCommand::kTcp, echoAt(echo.port()));
  ASSERT_TRUE(sendAll(fd1, muxHeader() + control(2, codec::SmuxCommand::kSyn, 3) + psh(2, 3, ss)));
  EXPECT_EQ(readSome(fd1, 8, 3000), psh(2, 3, ""));
  // alice's second stream, on another connection: refused with a FIN.
  ASSERT_TRUE(sendAll(fd2, muxHeader() + control(2, codec::SmuxCommand::kSyn, 3) + psh(2, 3, ss)));
  EXPECT_EQ(readSome(fd2, 8, 3000), control(2, codec::SmuxCommand::kFin, 3));
  // bob is not alice.
  int fd3 = connectLoopback(h.port());
  ASSERT_TRUE(
      sendAll(fd3, muxHeader(kBob) + control(2, codec::SmuxCommand::kSyn, 3) + psh(2, 3, ss)));
  EXPECT_EQ(readSome(fd3, 8, 3000), psh(2, 3, ""));
  ::close(fd1);
  ::close(fd2);
  ::close(fd3);
}

// Hostile mux input loses its own connection and nothing else: a healthy
// mux connection next to it keeps echoing.
TEST(ServerMux, HostileInputClosesOnlyItsConnection) {
  EchoPeer echo;
  Harness h(muxConfig());
  std::string ss = socks(codec::SimpleSocksCommand::kTcp, echoAt(echo.port()));
  int good = connectLoopback(h.port());
  ASSERT_TRUE(sendAll(good, muxHeader() + control(2, codec::SmuxCommand::kSyn, 3) + psh(2, 3, ss)));
  EXPECT_EQ(readSome(good, 8, 3000), psh(2, 3, ""));

  const std::string syn3 = control(2, codec::SmuxCommand::kSyn, 3);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"bad VER", hexBytes("03 00 00 00 03 00 00 00")},
      {"VER change", syn3 + control(1, codec::SmuxCommand::kNop, 0)},
      {"UPD in VER 1", hexBytes("01 04 08 00 03 00 00 00 00 00 00 00 00 00 01 00")},
      {"even stream id", control(2, codec::SmuxCommand::kSyn, 4)},
      {"SYN with LEN", hexBytes("02 00 01 00 03 00 00 00 aa")},
      {"bad command", hexBytes("02 09 00 00 03 00 00 00")},
      {"ends inside a frame", hexBytes("02 02 10 00 03 00 00 00 aa bb")},
      {"bad SimpleSocks then garbage",
       syn3 + psh(2, 3, hexBytes("09 01 7f 00 00 01 00 50")) + "garbage!"},
  };
  for (const auto& [name, bytes] : cases) {
    int fd = connectLoopback(h.port());
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(sendAll(fd, muxHeader() + bytes));
    if (name == "ends inside a frame") ::shutdown(fd, SHUT_WR);
    std::string got;
    EXPECT_TRUE(waitEof(fd, 3000, &got)) << name;
    // A bad SimpleSocks header ends its stream (FIN); the connection then
    // dies on the garbage. Otherwise not a byte.
    if (name == "bad SimpleSocks then garbage") {
      EXPECT_EQ(got, control(2, codec::SmuxCommand::kFin, 3)) << name;
    } else {
      EXPECT_EQ(got, "") << name;
    }
    ::close(fd);
  }
  // Frames for streams that do not exist are ignored; the connection lives.
  int fd = connectLoopback(h.port());
  ASSERT_TRUE(sendAll(fd, muxHeader() + psh(2, 99, "who?") + control(2, codec::SmuxCommand::kFin, 77) +
                              hexBytes("02 04 08 00 55 00 00 00 00 00 00 00 00 00 01 00") + syn3 +
                              psh(2, 3, ss + "hi")));
  EXPECT_EQ(readSome(fd, 8, 3000), psh(2, 3, ""));
  EXPECT_EQ(readSome(fd, 10, 3000), psh(2, 3, "hi"));
  ::close(fd);

  ASSERT_TRUE(sendAll(good, psh(2, 3, "alive")));
  EXPECT_EQ(readSome(good, 13, 3000), psh(2, 3, "alive"));
  ::close(good);
}

// A peer that sends past the VER 2 window of a stream whose target does
// not read is cut off; the process keeps serving.
TEST(ServerMux, WindowOverrunClosesTheConnection) {
  // A target that accepts and never reads.
  int lfd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(lfd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  ASSERT_EQ(::listen(lfd, 4), 0);
  int rcv = 4096;
  ::setsockopt(lfd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
  socklen_t sl = sizeof sa;
  ::getsockname(lfd, reinterpret_cast<sockaddr*>(&sa), &sl);
  uint16_t port = ntohs(sa.sin_port);

  Harness h(muxConfig());
  int fd = connectLoopback(h.port());
  ASSERT_GE(fd, 0);
  std::string ss = socks(codec::SimpleSocksCommand::kTcp, echoAt(port));
  ASSERT_TRUE(sendAll(fd, muxHeader() + control(2, codec::SmuxCommand::kSyn, 3) + psh(2, 3, ss)));
  EXPECT_EQ(readSome(fd, 8, 3000), psh(2, 3, ""));
  // Far past 256 KiB of window plus what the target's socket and the
  // server's write queue take: the server must give up on us.
  std::string chunk = psh(2, 3, std::string(32768, 'z'));
  bool cut = false;
  for (int i = 0; i < 400 && !cut; ++i) cut = !sendAll(fd, chunk);
  std::string got;
  EXPECT_TRUE(cut || waitEof(fd, 5000, &got));
  ::close(fd);
  ::close(lfd);
  // Still serving.
  EchoPeer echo;
  roundTrip(h.port(), request(1, kAlice, echoAt(echo.port())), "", false);
}

// Stats: each stream counts as a Mux stream of its user and carries its
// payload bytes; the carrying connection's own bytes are not added again.
TEST(ServerMux, StatsCountStreamsNotTheCarrier) {
  EchoPeer echo;
  Harness h(muxConfig());
  int fd = connectLoopback(h.port());
  ASSERT_GE(fd, 0);
  std::string ss = socks(codec::SimpleSocksCommand::kTcp, echoAt(echo.port()));
  ASSERT_TRUE(sendAll(fd, muxHeader() + hexBytes("01 00 00 00 03 00 00 00") +
                              psh(1, 3, ss + "GET")));
  EXPECT_EQ(readSome(fd, 8, 3000), hexBytes("01 02 00 00 03 00 00 00"));
  EXPECT_EQ(readSome(fd, 11, 3000), hexBytes("01 02 03 00 03 00 00 00") + "GET");
  std::string prom, json;
  h.call([&](Server& s) {
    prom = serverPrometheus(s);
    json = serverStatsJson(s);
  });
  auto has = [&](const std::string& line) {
    return prom.find("\n" + line + "\n") != std::string::npos;
  };
  EXPECT_TRUE(has("vless_server_user_mux_streams_total{user=\"alice\"} 1")) << prom;
  EXPECT_TRUE(has("vless_server_user_mux_streams_live{user=\"alice\"} 1"));
  EXPECT_TRUE(has("vless_server_user_connections_total{user=\"alice\"} 1"));
  EXPECT_TRUE(has("vless_server_mux_streams_live 1"));
  EXPECT_TRUE(has("vless_server_connections_live 1"));
  EXPECT_TRUE(has("vless_server_sessions_live{kind=\"mux\"} 1"));
  EXPECT_TRUE(has("vless_server_sessions_live{kind=\"tcp\"} 1"));
  EXPECT_TRUE(has("vless_server_user_bytes_total{user=\"alice\",direction=\"up\"} 3"));
  EXPECT_TRUE(has("vless_server_user_bytes_total{user=\"alice\",direction=\"down\"} 3"));
  EXPECT_NE(json.find("\"kind\":\"mux\",\"state\":\"mux\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"mux_parent\":1,\"mux_stream\":\"3\""), std::string::npos) << json;
  ::close(fd);
  for (int i = 0; i < 1500 && h.sessions() != 0; ++i) usleep(2000);
  ASSERT_EQ(h.sessions(), 0u);
  h.call([&](Server& s) { prom = serverPrometheus(s); });
  EXPECT_TRUE(has("vless_server_user_bytes_total{user=\"alice\",direction=\"up\"} 3")) << prom;
  EXPECT_TRUE(has("vless_server_user_mux_streams_live{user=\"alice\"} 0"));
}

}  // namespace
}  // namespace vt::server
