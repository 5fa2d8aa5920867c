// MuxSession / MuxStream over real loopback TCP: a client-role session and a
// server-role session on the two ends of one connection, or one session
// against a raw TcpStream that speaks smux bytes written by hand (hostile
// input, byte-exact output).
#include "stream/mux_session.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "codec/smux.h"
#include "stream/tcp_stream.h"
#include "stream_test_util.h"

namespace vt::stream {
namespace {

using codec::SmuxCommand;
using testing::Endpoint;
using testing::pattern;
using testing::runUntil;

constexpr uint8_t kV1 = codec::kSmuxVersion1;
constexpr uint8_t kV2 = codec::kSmuxVersion2;
constexpr size_t kInitialWindow = 262144;  // smux's guess of the peer window

// Tests close connections with bytes in flight: a write to a reset socket
// must fail with EPIPE, not kill the binary (the apps ignore it too).
class IgnoreSigpipe : public ::testing::Environment {
 public:
  void SetUp() override { std::signal(SIGPIPE, SIG_IGN); }
};
const auto* const kIgnoreSigpipe = ::testing::AddGlobalTestEnvironment(new IgnoreSigpipe);

event::SocketAddress loopback(uint16_t port = 0) {
  return event::SocketAddress::ipv4(0x7f000001, port);
}

// Runs the loop for `ms`: for things that must not happen in that time.
void runFor(event::Loop& loop, uint64_t ms) {
  event::Timer t(loop);
  bool done = false;
  t.start(ms, [&] { done = true; });
  while (!done) loop.runOnce(true);
}

bool clean(CloseReason r) {
  return r == CloseReason::kRemoteClose || r == CloseReason::kLocalClose;
}

// ---- smux bytes

std::string ctl(uint8_t ver, SmuxCommand cmd, uint32_t sid) {
  BufferChain out;
  codec::encodeSmuxControl(ver, cmd, sid, out);
  return out.toString();
}
std::string syn(uint8_t ver, uint32_t sid) {
  return ctl(ver, SmuxCommand::kSyn, sid);
}
std::string fin(uint8_t ver, uint32_t sid) {
  return ctl(ver, SmuxCommand::kFin, sid);
}
std::string nop(uint8_t ver) {
  return ctl(ver, SmuxCommand::kNop, 0);
}
std::string psh(uint8_t ver, uint32_t sid, const std::string& data) {
  BufferChain d;
  d.append(data);
  BufferChain out;
  EXPECT_TRUE(codec::encodeSmuxPsh(ver, sid, d, out));
  return out.toString();
}
std::string upd(uint32_t sid, uint32_t consumed, uint32_t window) {
  BufferChain out;
  codec::encodeSmuxUpd(sid, consumed, window, out);
  return out.toString();
}
// Any header, also ones the encoders refuse to write.
std::string header(uint8_t ver, uint8_t cmd, uint16_t len, uint32_t sid) {
  std::string h(8, '\0');
  h[0] = static_cast<char>(ver);
  h[1] = static_cast<char>(cmd);
  h[2] = static_cast<char>(len & 0xff);
  h[3] = static_cast<char>(len >> 8);
  for (int i = 0; i < 4; ++i) h[4 + i] = static_cast<char>((sid >> (8 * i)) & 0xff);
  return h;
}

std::string hex(const std::string& s) {
  std::string out;
  char b[4];
  for (unsigned char c : s) {
    std::snprintf(b, sizeof b, "%02x", c);
    if (!out.empty()) out += ' ';
    out += b;
  }
  return out;
}

struct Frame {
  uint8_t ver = 0;
  SmuxCommand cmd = SmuxCommand::kNop;
  uint32_t sid = 0;
  std::string data;                   // PSH
  uint32_t consumed = 0, window = 0;  // UPD
};

// The complete frames in `bytes` (a partial one at the end is left out).
std::vector<Frame> frames(const std::string& bytes) {
  BufferChain in;
  in.append(bytes);
  std::vector<Frame> out;
  for (;;) {
    codec::SmuxDecodeResult r = codec::decodeSmuxFrame(in);
    EXPECT_NE(r.status, codec::DecodeStatus::kInvalid) << r.error;
    if (r.status != codec::DecodeStatus::kDone) break;
    Frame f;
    f.ver = r.header.version;
    f.cmd = r.header.command;
    f.sid = r.header.stream_id;
    f.consumed = r.upd_consumed;
    f.window = r.upd_window;
    if (f.cmd == SmuxCommand::kPsh) {
      f.data.resize(r.payload_size);
      in.copyOut(r.payload_offset, f.data.data(), r.payload_size);
    }
    in.drain(r.consumed);
    out.push_back(std::move(f));
  }
  return out;
}

size_t pshBytes(const std::string& bytes, uint32_t sid) {
  size_t n = 0;
  for (const Frame& f : frames(bytes)) {
    if (f.cmd == SmuxCommand::kPsh && f.sid == sid) n += f.data.size();
  }
  return n;
}

// The data of every frame in `bytes`, in order.
std::string frameData(const std::string& bytes) {
  std::string out;
  for (const Frame& f : frames(bytes)) out += f.data;
  return out;
}

// ---- the two ends

// A session owner that keeps every accepted stream with an Endpoint.
class Owner final : public MuxSession::Owner {
 public:
  // Server role, before the Endpoint attaches (and pumps its payload).
  // Return false to let the stream go (destroying it sends a FIN); move it
  // out of `s` to take it over.
  std::function<bool(std::unique_ptr<MuxStream>& s, Endpoint& ep)> setup;
  std::vector<std::unique_ptr<Endpoint>> eps;
  std::vector<std::unique_ptr<MuxStream>> streams;  // after eps: destroyed first
  int accepts = 0;
  int connected = 0;
  int closed = 0;
  CloseReason reason = CloseReason::kLocalClose;
  std::string detail;
  std::function<void()> on_closed;

  Endpoint& ep(size_t i) { return *eps.at(i); }
  MuxStream& stream(size_t i) { return *streams.at(i); }
  bool allClosed(size_t n) const {
    if (eps.size() != n) return false;
    for (const auto& e : eps) {
      if (e->closes != 1) return false;
    }
    return true;
  }
  void clear() {
    streams.clear();
    eps.clear();
  }

  void onMuxStream(std::unique_ptr<MuxStream> s) override {
    ++accepts;
    auto ep = std::make_unique<Endpoint>();
    if (setup && !setup(s, *ep)) return;
    if (!s) return;
    ep->attach(*s);
    ep->pump();
    eps.push_back(std::move(ep));
    streams.push_back(std::move(s));
  }
  void onMuxConnected() override { ++connected; }
  void onMuxClosed(CloseReason r, const std::string& d) override {
    ++closed;
    reason = r;
    detail = d;
    if (on_closed) on_closed();
  }
};

enum class End { kMux, kRaw };

// One loopback TCP connection; each end is a MuxSession (client role on the
// dialled stream, server role on the accepted one) or a raw TcpStream whose
// Endpoint records what arrives.
class Link {
 public:
  explicit Link(event::Loop& loop, MuxOptions copt = {}, MuxOptions sopt = {},
                End client_end = End::kMux, End server_end = End::kMux)
      : loop_(loop) {
    auto l = TcpListener::listen(loop, loopback(), [this, sopt, server_end](auto s) {
      if (server_tcp) return;  // one connection per link
      server_tcp = std::move(s);
      if (server_end == End::kRaw) {
        raw_server.attach(*server_tcp);
        return;
      }
      server = std::make_unique<MuxSession>(loop_, *server_tcp, MuxSession::Role::kServer, sopt,
                                            server_owner);
      if (server_initial.empty()) {
        server->start(nullptr);
      } else {
        BufferChain initial;
        initial.append(server_initial);
        server->start(&initial);
        EXPECT_TRUE(initial.empty());
      }
    });
    EXPECT_TRUE(l.ok());
    if (!l.ok()) return;
    listener = std::move(l.value());
    client_tcp = TcpStream::create(loop, loopback(listener->localAddress().port()));
    if (client_end == End::kRaw) {
      raw_client.attach(*client_tcp);
      client_tcp->connect();
      return;
    }
    client = std::make_unique<MuxSession>(loop, *client_tcp, MuxSession::Role::kClient, copt,
                                          client_owner);
    client->start(nullptr);
  }

  ~Link() {
    // Sessions first (their streams report to endpoints that still live),
    // then the streams, then the TCP streams the sessions point at, with
    // no loop iteration in between.
    server.reset();
    client.reset();
    server_owner.clear();
    client_owner.clear();
    server_tcp.reset();
    client_tcp.reset();
    listener.reset();
  }
  Link(const Link&) = delete;
  Link& operator=(const Link&) = delete;

  bool up() {
    return runUntil(loop_, [&] {
      return server_tcp != nullptr && (client ? client->connected() : raw_client.connected);
    });
  }
  // Raw ends: bytes out.
  void clientSend(const std::string& bytes, bool end = false) { send(*client_tcp, bytes, end); }
  void serverSend(const std::string& bytes, bool end = false) { send(*server_tcp, bytes, end); }

  // Server end: bytes that followed the VLESS header, for start().
  std::string server_initial;
  Owner client_owner, server_owner;
  Endpoint raw_client, raw_server;
  std::unique_ptr<TcpListener> listener;
  std::unique_ptr<TcpStream> client_tcp, server_tcp;
  std::unique_ptr<MuxSession> client, server;

 private:
  static void send(TcpStream& t, const std::string& bytes, bool end) {
    BufferChain c;
    c.append(bytes);
    t.write(c, end);
  }
  event::Loop& loop_;
};

// A client stream and the Endpoint it reports to.
struct Opened {
  Endpoint ep;
  std::unique_ptr<MuxStream> s;  // after ep: destroyed first
};

// Opens, connects and starts pumping `payload` (end: FIN after it).
std::unique_ptr<Opened> open(MuxSession& mux, std::string payload = {}, bool end = true,
                             bool wait = false) {
  auto o = std::make_unique<Opened>();
  o->s = mux.openStream(wait);
  EXPECT_NE(o->s, nullptr);
  if (!o->s) return o;
  o->ep.payload = std::move(payload);
  o->ep.end = end;
  o->ep.attach(*o->s);
  o->s->connect();
  o->ep.pump();
  return o;
}

void write(Stream& s, const std::string& bytes, bool end = false) {
  BufferChain c;
  c.append(bytes);
  s.write(c, end);
  EXPECT_TRUE(c.empty());
}

// Server setups.
bool echo(std::unique_ptr<MuxStream>&, Endpoint& ep) {
  ep.on_data = [&ep](BufferChain& d, bool end) {
    ep.received += d.toString();
    ep.stream->write(d, end);
  };
  return true;
}
// Records; ends our direction after the peer's (after the payload, if any).
void finishOnEof(Endpoint& ep) {
  ep.on_data = [&ep](BufferChain& d, bool end) {
    ep.received += d.toString();
    d.clear();
    if (end && ep.payload.empty()) {
      BufferChain none;
      ep.stream->write(none, true);
    }
  };
}
bool finishing(std::unique_ptr<MuxStream>&, Endpoint& ep) {
  finishOnEof(ep);
  return true;
}

// One echo round trip on a fresh stream of `link` (its server echoes).
void expectWorks(event::Loop& loop, Link& link, uint32_t seed) {
  ASSERT_NE(link.client, nullptr);
  ASSERT_FALSE(link.client->closed());
  auto c = open(*link.client, pattern(96 * 1024, seed));
  ASSERT_TRUE(runUntil(loop, [&] { return c->ep.closes == 1; }));
  EXPECT_TRUE(c->ep.received == c->ep.payload) << c->ep.received.size();
  EXPECT_EQ(c->ep.reason, CloseReason::kRemoteClose);
}

// ================================================================ sessions

TEST(MuxSession, OneStreamMegabytesEachWayWithHalfClose) {
  event::Loop loop;
  const std::string up = pattern(3 << 20, 1);
  const std::string down = pattern(3 << 20, 2);
  Link link(loop);
  link.server_owner.setup = [&](auto&, Endpoint& ep) {
    ep.payload = down;
    return true;
  };
  ASSERT_TRUE(link.up());
  EXPECT_EQ(link.client_owner.connected, 1);
  EXPECT_EQ(link.client->version(), kV2);
  uint64_t idle_before = link.client->idleSinceMs();

  auto c = open(*link.client, up);
  EXPECT_EQ(c->s->id(), 3u);
  EXPECT_EQ(c->s->peerName(), link.client->peerName() + "#3");
  EXPECT_EQ(link.client->streamCount(), 1u);
  EXPECT_EQ(link.client->idleSinceMs(), 0u);
  ASSERT_TRUE(runUntil(
      loop, [&] { return c->ep.closes == 1 && link.server_owner.allClosed(1); }, 20000));
  Endpoint& s = link.server_owner.ep(0);
  EXPECT_TRUE(c->ep.connected);
  EXPECT_TRUE(c->ep.eof);
  EXPECT_TRUE(s.eof);
  EXPECT_TRUE(c->ep.received == down) << c->ep.received.size();
  EXPECT_TRUE(s.received == up) << s.received.size();
  EXPECT_TRUE(clean(c->ep.reason)) << closeReasonName(c->ep.reason);
  EXPECT_TRUE(clean(s.reason)) << closeReasonName(s.reason);
  EXPECT_EQ(c->ep.after_close_events, 0);
  EXPECT_EQ(s.after_close_events, 0);
  EXPECT_EQ(link.server_owner.stream(0).id(), 3u);
  EXPECT_EQ(c->s->peerName(), "-#3");  // it has left the session

  EXPECT_EQ(link.client->streamCount(), 0u);
  EXPECT_EQ(link.server->streamCount(), 0u);
  EXPECT_GE(link.client->idleSinceMs(), idle_before);
  EXPECT_GT(link.client->idleSinceMs(), 0u);
  EXPECT_EQ(link.client->heldBytes(), 0u);
  EXPECT_EQ(link.server->heldBytes(), 0u);
  EXPECT_EQ(link.client->stats().streamsOpened, 1u);
  EXPECT_EQ(link.server->stats().streamsOpened, 1u);
  EXPECT_EQ(link.client->stats().bytesOut, up.size());
  EXPECT_EQ(link.client->stats().bytesIn, down.size());
  EXPECT_EQ(link.server->stats().bytesIn, up.size());
  EXPECT_EQ(link.server->stats().bytesOut, down.size());
  // (unknownFrames may count UPDs that crossed the peer's FIN: harmless.)
  EXPECT_FALSE(link.client->closed());
  EXPECT_FALSE(link.server->closed());
  EXPECT_EQ(link.server_owner.closed, 0);
}

TEST(MuxSession, HalfCloseThenLateReply) {
  event::Loop loop;
  Link link(loop);
  event::Timer later(loop);
  // The server answers 50 ms after our direction ended.
  link.server_owner.setup = [&](auto&, Endpoint& ep) {
    ep.on_data = [&](BufferChain& d, bool end) {
      ep.received += d.toString();
      d.clear();
      if (end) {
        later.start(50, [&] {
          BufferChain reply;
          reply.append("got " + ep.received);
          ep.stream->write(reply, true);
        });
      }
    };
    return true;
  };
  ASSERT_TRUE(link.up());
  auto c = open(*link.client, "ping");
  ASSERT_TRUE(runUntil(
      loop, [&] { return !link.server_owner.eps.empty() && link.server_owner.ep(0).eof; }));
  // Half-closed: both streams still live.
  EXPECT_EQ(c->ep.closes, 0);
  EXPECT_EQ(link.server_owner.ep(0).closes, 0);
  EXPECT_EQ(link.client->streamCount(), 1u);
  EXPECT_EQ(link.server->streamCount(), 1u);
  ASSERT_TRUE(runUntil(loop, [&] { return c->ep.closes == 1 && link.server_owner.allClosed(1); }));
  EXPECT_EQ(c->ep.received, "got ping");
  EXPECT_TRUE(c->ep.eof);
  EXPECT_TRUE(clean(c->ep.reason));
  EXPECT_TRUE(clean(link.server_owner.ep(0).reason));
  EXPECT_EQ(link.client->streamCount(), 0u);
  EXPECT_EQ(link.server->streamCount(), 0u);
}

TEST(MuxSession, EmptyStreamBothWays) {
  event::Loop loop;
  Link link(loop);
  link.server_owner.setup = finishing;
  ASSERT_TRUE(link.up());
  auto c = open(*link.client);
  write(*c->s, "", true);  // FIN only
  ASSERT_TRUE(runUntil(loop, [&] { return c->ep.closes == 1 && link.server_owner.allClosed(1); }));
  EXPECT_TRUE(c->ep.received.empty());
  EXPECT_TRUE(c->ep.eof);
  EXPECT_TRUE(link.server_owner.ep(0).eof);
  EXPECT_EQ(link.client->stats().bytesOut, 0u);
  EXPECT_EQ(link.server->streamCount(), 0u);
}

TEST(MuxSession, TwoHundredConcurrentStreams) {
  event::Loop loop;
  constexpr int kStreams = 200;
  Link link(loop);
  size_t peak = 0;
  link.server_owner.setup = [&](auto& s, Endpoint& ep) {
    peak = std::max(peak, link.server->streamCount());
    return echo(s, ep);
  };
  ASSERT_TRUE(link.up());
  std::vector<std::unique_ptr<Opened>> cs;
  for (int i = 0; i < kStreams; ++i) {
    cs.push_back(open(*link.client, pattern(1 + (i * 7919) % 40000, 100 + i), false));
  }
  // Every stream is open at once, and each gets its own bytes back.
  ASSERT_TRUE(runUntil(
      loop,
      [&] {
        for (auto& c : cs) {
          if (c->ep.received.size() != c->ep.payload.size()) return false;
        }
        return true;
      },
      20000));
  EXPECT_EQ(link.client->streamCount(), size_t{kStreams});
  EXPECT_EQ(link.server->streamCount(), size_t{kStreams});
  EXPECT_EQ(peak, size_t{kStreams});
  for (int i = 0; i < kStreams; ++i) {
    EXPECT_EQ(cs[i]->s->id(), 3u + 2u * i);
    EXPECT_TRUE(cs[i]->ep.received == cs[i]->ep.payload) << i;
  }
  for (auto& c : cs) write(*c->s, "", true);
  ASSERT_TRUE(runUntil(
      loop,
      [&] {
        for (auto& c : cs) {
          if (c->ep.closes != 1) return false;
        }
        return link.server_owner.allClosed(kStreams);
      },
      20000));
  for (int i = 0; i < kStreams; ++i) {
    EXPECT_TRUE(cs[i]->ep.eof) << i;
    EXPECT_TRUE(clean(cs[i]->ep.reason)) << i;
    EXPECT_EQ(cs[i]->ep.after_close_events, 0) << i;
  }
  EXPECT_EQ(link.client->streamCount(), 0u);
  EXPECT_EQ(link.server->streamCount(), 0u);
  EXPECT_EQ(link.server->stats().streamsOpened, size_t{kStreams});
  EXPECT_EQ(link.server->stats().streamsRefused, 0u);
  EXPECT_EQ(link.server->stats().unknownFrames, 0u);
}

// VER 2: a stream whose user stops reading holds one window; the peer
// stops sending on it, and only on it.
TEST(MuxSession, Ver2SlowReaderHoldsOnlyItsOwnStream) {
  event::Loop loop;
  Link link(loop);
  const std::string a_up = pattern(2 << 20, 11);
  const std::string b_up = pattern(4 << 20, 12);
  const std::string b_down = pattern(4 << 20, 13);
  link.server_owner.setup = [&](auto& s, Endpoint& ep) {
    if (s->id() == 3) {
      s->readDisable(true);
    } else {
      ep.payload = b_down;
    }
    finishOnEof(ep);
    return true;
  };
  ASSERT_TRUE(link.up());
  auto a = open(*link.client, a_up);
  auto b = open(*link.client, b_up);
  ASSERT_TRUE(runUntil(
      loop,
      [&] {
        return b->ep.closes == 1 && link.server_owner.eps.size() == 2 &&
               link.server_owner.ep(1).closes == 1 &&
               link.server_owner.stream(0).heldBytes() == kInitialWindow;
      },
      20000));
  EXPECT_TRUE(b->ep.received == b_down);
  EXPECT_TRUE(link.server_owner.ep(1).received == b_up);
  EXPECT_TRUE(clean(b->ep.reason));

  // A: one window held on the server, the rest waits in the client stream.
  MuxStream& sa = link.server_owner.stream(0);
  EXPECT_TRUE(link.server_owner.ep(0).received.empty());
  EXPECT_EQ(link.server->heldBytes(), kInitialWindow);
  EXPECT_GT(a->s->bufferedBytes(), 0u);
  EXPECT_GE(a->ep.above, 1);
  EXPECT_EQ(a->ep.closes, 0);
  runFor(loop, 100);
  EXPECT_EQ(sa.heldBytes(), kInitialWindow);
  EXPECT_FALSE(link.server->closed());

  sa.readDisable(false);
  ASSERT_TRUE(runUntil(
      loop, [&] { return a->ep.closes == 1 && link.server_owner.allClosed(2); }, 20000));
  EXPECT_TRUE(link.server_owner.ep(0).received == a_up);
  EXPECT_TRUE(a->ep.sentAll());
  EXPECT_TRUE(clean(a->ep.reason));
  // The writer was held back by its own stream's watermarks, and let go.
  EXPECT_EQ(a->ep.above, a->ep.below);
  EXPECT_LE(a->ep.buffered_at_below, MuxOptions{}.stream_wm.low);
  EXPECT_EQ(link.server->heldBytes(), 0u);
  EXPECT_EQ(link.client->streamCount(), 0u);
  EXPECT_EQ(link.server->streamCount(), 0u);
}

// A window above smux's initial guess (256 KiB) must still be reported
// before the peer has that much in flight, or the stream stalls.
TEST(MuxSession, Ver2WindowLargerThanTheInitialGuess) {
  event::Loop loop;
  MuxOptions sopt;
  sopt.stream_window = 1 << 20;
  Link link(loop, {}, sopt);
  link.server_owner.setup = finishing;
  ASSERT_TRUE(link.up());
  const std::string up = pattern(3 << 20, 14);
  auto c = open(*link.client, up);
  ASSERT_TRUE(runUntil(
      loop, [&] { return c->ep.closes == 1 && link.server_owner.allClosed(1); }, 8000))
      << "server got "
      << (link.server_owner.eps.empty() ? 0 : link.server_owner.ep(0).received.size());
  EXPECT_TRUE(link.server_owner.ep(0).received == up);
}

// VER 1 has no windows: bytes held for a reader that stopped pause the
// whole session, which waits (longer than dead_ms, too) and then resumes.
TEST(MuxSession, Ver1HeldBytesPauseTheSessionAndResume) {
  event::Loop loop;
  MuxOptions copt;
  copt.version = kV1;
  copt.keepalive_ms = 50;
  copt.dead_ms = 500;
  MuxOptions sopt;
  sopt.v1_receive_buffer = 256 * 1024;
  sopt.keepalive_ms = 50;
  sopt.dead_ms = 500;
  Link link(loop, copt, sopt);
  link.server_owner.setup = [&](auto& s, Endpoint& ep) {
    if (s->id() == 3) s->readDisable(true);
    finishOnEof(ep);
    return true;
  };
  ASSERT_TRUE(link.up());
  const std::string a_up = pattern(2 << 20, 21);
  const std::string b_up = pattern(2 << 20, 22);
  // Both streams are accepted before any data: once paused, the session
  // would not see B's SYN either.
  auto a = open(*link.client);
  auto b = open(*link.client);
  ASSERT_TRUE(runUntil(loop, [&] { return link.server_owner.eps.size() == 2; }));
  a->ep.payload = a_up;
  a->ep.pump();
  b->ep.payload = b_up;
  b->ep.pump();
  ASSERT_TRUE(runUntil(loop, [&] { return link.server->stats().v1Pauses >= 1; }));
  EXPECT_EQ(link.server->version(), kV1);
  EXPECT_GT(link.server->heldBytes(), sopt.v1_receive_buffer);
  ASSERT_EQ(link.server_owner.eps.size(), 2u);
  size_t b_got = link.server_owner.ep(1).received.size();
  EXPECT_LT(b_got, b_up.size());

  // Paused for longer than dead_ms: the whole session waits, nothing dies.
  runFor(loop, 1100);
  EXPECT_FALSE(link.server->closed()) << link.server_owner.detail;
  EXPECT_FALSE(link.client->closed()) << link.client_owner.detail;
  EXPECT_EQ(link.server_owner.ep(1).received.size(), b_got);
  EXPECT_EQ(b->ep.closes, 0);

  link.server_owner.stream(0).readDisable(false);
  ASSERT_TRUE(runUntil(
      loop,
      [&] { return a->ep.closes == 1 && b->ep.closes == 1 && link.server_owner.allClosed(2); },
      20000));
  EXPECT_TRUE(link.server_owner.ep(0).received == a_up);
  EXPECT_TRUE(link.server_owner.ep(1).received == b_up);
  EXPECT_TRUE(clean(a->ep.reason));
  EXPECT_TRUE(clean(b->ep.reason));
  EXPECT_GE(link.server->stats().v1Pauses, 1u);
  EXPECT_EQ(link.server->heldBytes(), 0u);
  EXPECT_FALSE(link.server->closed());
}

// VER 2: stalled streams each hold their window; past v2_receive_buffer in
// all the session stops reading (a hostile client cannot make the server
// hold max_streams windows), then resumes once the readers take it.
TEST(MuxSession, Ver2SessionBoundOverAllWindows) {
  event::Loop loop;
  MuxOptions sopt;
  sopt.v2_receive_buffer = 600 * 1024;  // a bit over 2 full windows
  Link link(loop, {}, sopt);
  link.server_owner.setup = [&](auto& s, Endpoint& ep) {
    s->readDisable(true);
    finishOnEof(ep);
    return true;
  };
  ASSERT_TRUE(link.up());
  std::vector<std::unique_ptr<Opened>> cs;
  std::vector<std::string> ups;
  for (int i = 0; i < 4; ++i) {
    ups.push_back(pattern(1 << 20, 40 + i));
    cs.push_back(open(*link.client));
  }
  ASSERT_TRUE(runUntil(loop, [&] { return link.server_owner.eps.size() == 4; }));
  for (int i = 0; i < 4; ++i) {
    cs[i]->ep.payload = ups[i];
    cs[i]->ep.pump();
  }
  ASSERT_TRUE(runUntil(loop, [&] { return link.server->stats().v1Pauses >= 1; }));
  runFor(loop, 100);
  // Paused: at most the bound plus the frames of one read.
  EXPECT_LE(link.server->heldBytes(), sopt.v2_receive_buffer + 256 * 1024);
  EXPECT_FALSE(link.server->closed()) << link.server_owner.detail;
  for (int i = 0; i < 4; ++i) link.server_owner.stream(i).readDisable(false);
  ASSERT_TRUE(runUntil(
      loop,
      [&] {
        for (auto& c : cs) {
          if (c->ep.closes != 1) return false;
        }
        return link.server_owner.allClosed(4);
      },
      20000));
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(link.server_owner.ep(i).received == ups[i]) << i;
  EXPECT_EQ(link.server->heldBytes(), 0u);
  EXPECT_FALSE(link.server->closed());
}

// ================================================================ open answer

TEST(MuxSession, WaitModeConnectsOnTheServersEmptyPsh) {
  event::Loop loop;
  Link link(loop);
  link.server_owner.setup = echo;
  ASSERT_TRUE(link.up());
  auto c = std::make_unique<Opened>();
  int connects = 0;
  c->ep.on_connected = [&] { ++connects; };
  c->s = link.client->openStream(true);
  ASSERT_NE(c->s, nullptr);
  c->ep.attach(*c->s);
  c->s->connect();
  EXPECT_FALSE(c->s->answered());
  ASSERT_TRUE(runUntil(loop, [&] { return link.server_owner.eps.size() == 1; }));
  runFor(loop, 50);
  EXPECT_EQ(connects, 0);
  EXPECT_FALSE(c->s->answered());

  write(link.server_owner.stream(0), "");  // the answer: PSH LEN 0
  ASSERT_TRUE(runUntil(loop, [&] { return connects == 1; }));
  EXPECT_TRUE(c->s->answered());
  EXPECT_TRUE(c->ep.received.empty());

  c->ep.payload = "ping";
  c->ep.pump();
  ASSERT_TRUE(runUntil(loop, [&] { return c->ep.closes == 1; }));
  EXPECT_EQ(c->ep.received, "ping");
  EXPECT_EQ(connects, 1);
  EXPECT_TRUE(clean(c->ep.reason));

  // Without wait_answer, onConnected follows connect() on its own.
  link.server_owner.setup = [](auto&, Endpoint&) { return true; };  // silent
  auto n = open(*link.client, "", false, false);
  EXPECT_FALSE(n->ep.connected);  // never synchronously
  ASSERT_TRUE(runUntil(loop, [&] { return n->ep.connected; }));
}

TEST(MuxSession, WaitModeFinBeforeTheAnswerIsConnectFailed) {
  event::Loop loop;
  Link link(loop);
  ASSERT_TRUE(link.up());
  // The server's target failed: it closes the stream before answering.
  auto c = open(*link.client, "hello", false, true);
  ASSERT_TRUE(runUntil(loop, [&] { return link.server_owner.eps.size() == 1; }));
  link.server_owner.stream(0).close(CloseReason::kConnectFailed);
  ASSERT_TRUE(runUntil(loop, [&] { return c->ep.closes == 1; }));
  EXPECT_EQ(c->ep.reason, CloseReason::kConnectFailed);
  EXPECT_FALSE(c->ep.connected);
  EXPECT_FALSE(c->s->answered());
  EXPECT_EQ(link.client->streamCount(), 0u);

  // Same when the owner lets the stream go at once (destroying sends FIN).
  link.server_owner.setup = [](auto&, Endpoint&) { return false; };
  auto d = open(*link.client, "", false, true);
  ASSERT_TRUE(runUntil(loop, [&] { return d->ep.closes == 1; }));
  EXPECT_EQ(d->ep.reason, CloseReason::kConnectFailed);
  EXPECT_EQ(link.server_owner.accepts, 2);
  EXPECT_EQ(link.server->streamCount(), 0u);
  EXPECT_EQ(link.client->streamCount(), 0u);
  EXPECT_FALSE(link.client->closed());
  EXPECT_FALSE(link.server->closed());
}

// ================================================================ caps

TEST(MuxSession, MaxStreamsRefusesExtraSynsWithFin) {
  event::Loop loop;
  MuxOptions sopt;
  sopt.max_streams = 3;
  Link link(loop, {}, sopt);
  link.server_owner.setup = echo;
  ASSERT_TRUE(link.up());
  std::vector<std::unique_ptr<Opened>> cs;
  for (int i = 0; i < 5; ++i) cs.push_back(open(*link.client, "x" + std::to_string(i), false));
  ASSERT_TRUE(runUntil(loop, [&] {
    return cs[0]->ep.received == "x0" && cs[1]->ep.received == "x1" && cs[2]->ep.received == "x2" &&
           cs[3]->ep.eof && cs[4]->ep.eof;
  }));
  const MuxStats& st = link.server->stats();
  EXPECT_EQ(st.streamsOpened, 3u);
  EXPECT_EQ(st.streamsRefused, 2u);
  EXPECT_GE(st.unknownFrames, 2u);  // the refused streams' PSH
  EXPECT_EQ(link.server->streamCount(), 3u);
  EXPECT_TRUE(cs[3]->ep.received.empty());
  EXPECT_FALSE(cs[0]->ep.eof);
  // A refused stream ends like one the peer finished: we end ours.
  write(*cs[3]->s, "", true);
  cs[4]->s->close(CloseReason::kLocalClose);
  ASSERT_TRUE(runUntil(loop, [&] { return cs[3]->ep.closes == 1; }));
  EXPECT_EQ(cs[4]->ep.closes, 1);
  EXPECT_EQ(link.client->streamCount(), 3u);

  // In wait mode the refusal is a failed connect.
  auto w = open(*link.client, "", false, true);
  ASSERT_TRUE(runUntil(loop, [&] { return w->ep.closes == 1; }));
  EXPECT_EQ(w->ep.reason, CloseReason::kConnectFailed);
  EXPECT_EQ(st.streamsRefused, 3u);

  // The accepted ones never noticed.
  write(*cs[0]->s, "more");
  ASSERT_TRUE(runUntil(loop, [&] { return cs[0]->ep.received == "x0more"; }));
  EXPECT_EQ(cs[0]->ep.closes, 0);

  // A finished stream frees its slot.
  write(*cs[0]->s, "", true);
  ASSERT_TRUE(runUntil(loop, [&] { return cs[0]->ep.closes == 1; }));
  ASSERT_TRUE(runUntil(loop, [&] { return link.server->streamCount() == 2; }));
  auto n = open(*link.client, "new", false);
  ASSERT_TRUE(runUntil(loop, [&] { return n->ep.received == "new"; }));
  EXPECT_EQ(st.streamsOpened, 4u);
  EXPECT_EQ(st.streamsRefused, 3u);
  EXPECT_FALSE(link.server->closed());
}

TEST(MuxSession, GoAwayStopsNewStreamsOnly) {
  event::Loop loop;
  Link link(loop);
  link.server_owner.setup = echo;
  ASSERT_TRUE(link.up());
  auto a = open(*link.client, "a", false);
  ASSERT_TRUE(runUntil(loop, [&] { return a->ep.received == "a"; }));

  // Server side: new SYNs are refused, the live stream goes on.
  link.server->goAway();
  EXPECT_TRUE(link.server->dying());
  auto b = open(*link.client, "b", false);
  ASSERT_TRUE(runUntil(loop, [&] { return b->ep.eof; }));
  EXPECT_EQ(link.server->stats().streamsRefused, 1u);
  write(*a->s, "a");
  ASSERT_TRUE(runUntil(loop, [&] { return a->ep.received == "aa"; }));

  // Client side: no new streams at all.
  link.client->goAway();
  EXPECT_EQ(link.client->openStream(false), nullptr);
  write(*a->s, "a", true);
  ASSERT_TRUE(runUntil(loop, [&] { return a->ep.closes == 1; }));
  EXPECT_EQ(a->ep.received, "aaa");
  EXPECT_TRUE(clean(a->ep.reason));
  EXPECT_FALSE(link.client->closed());
}

// ================================================================ start

TEST(MuxSession, StreamsOpenedBeforeTheConnectionIsUp) {
  event::Loop loop;
  Link link(loop);
  link.server_owner.setup = echo;
  // Before any loop iteration: the TCP connection is not up yet.
  EXPECT_FALSE(link.client->connected());
  const std::string big = pattern(1 << 20, 8);
  auto a = open(*link.client, "small");
  auto b = open(*link.client, big);  // more than the inner stream's high watermark
  ASSERT_TRUE(runUntil(loop, [&] { return a->ep.closes == 1 && b->ep.closes == 1; }));
  EXPECT_EQ(link.client_owner.connected, 1);
  EXPECT_EQ(a->ep.received, "small");
  EXPECT_TRUE(b->ep.received == big);
  EXPECT_TRUE(clean(a->ep.reason));
  EXPECT_TRUE(clean(b->ep.reason));
}

TEST(MuxSession, ConnectFailureResetsTheStreams) {
  event::Loop loop;
  uint16_t port;
  {
    auto l = TcpListener::listen(loop, loopback(), [](auto) {});
    ASSERT_TRUE(l.ok());
    port = l.value()->localAddress().port();
  }
  auto tcp = TcpStream::create(loop, loopback(port));
  Owner owner;
  auto mux =
      std::make_unique<MuxSession>(loop, *tcp, MuxSession::Role::kClient, MuxOptions{}, owner);
  mux->start(nullptr);
  auto c = open(*mux, "data", false);
  auto w = open(*mux, "data", false, true);
  ASSERT_TRUE(runUntil(loop, [&] { return owner.closed == 1; }));
  EXPECT_EQ(owner.reason, CloseReason::kConnectFailed);
  EXPECT_EQ(owner.connected, 0);
  EXPECT_EQ(c->ep.closes, 1);
  EXPECT_EQ(c->ep.reason, CloseReason::kReset);
  EXPECT_EQ(w->ep.closes, 1);
  EXPECT_EQ(w->ep.reason, CloseReason::kReset);
  EXPECT_FALSE(w->ep.connected);
  EXPECT_TRUE(mux->closed());
  EXPECT_EQ(mux->openStream(false), nullptr);
  EXPECT_EQ(mux->streamCount(), 0u);
  c.reset();
  w.reset();
  mux.reset();
}

// The server's start() takes the bytes that came with the VLESS header,
// including a frame cut in two.
TEST(MuxSession, ServerStartsWithTheBytesAfterTheHeader) {
  event::Loop loop;
  Link link(loop, {}, {}, End::kRaw);
  const std::string rest = psh(kV2, 3, "-late");
  link.server_initial = syn(kV2, 3) + psh(kV2, 3, "early") + rest.substr(0, 5);
  ASSERT_TRUE(link.up());
  ASSERT_TRUE(runUntil(loop, [&] { return link.server_owner.eps.size() == 1; }));
  EXPECT_EQ(link.server_owner.ep(0).received, "early");
  EXPECT_EQ(link.server->openStream(false), nullptr);  // servers open none
  link.clientSend(rest.substr(5));
  ASSERT_TRUE(runUntil(loop, [&] { return link.server_owner.ep(0).received == "early-late"; }));
  EXPECT_EQ(link.server->version(), kV2);
  EXPECT_EQ(link.server->stats().framesIn, 3u);
  EXPECT_EQ(link.server->stats().bytesIn, 10u);
}

// ================================================================ keepalive

TEST(MuxSession, KeepaliveKeepsAnIdleSessionUp) {
  event::Loop loop;
  // dead_ms has slack over keepalive_ms: both sessions share one loop, and
  // a loop stalled past dead_ms (a loaded CI box) runs its timers before it
  // reads the NOPs already waiting in the socket.
  MuxOptions o;
  o.keepalive_ms = 50;
  o.dead_ms = 500;
  Link link(loop, o, o);
  link.server_owner.setup = echo;
  ASSERT_TRUE(link.up());
  auto c = open(*link.client, "a", false);
  ASSERT_TRUE(runUntil(loop, [&] { return c->ep.received == "a"; }));
  uint64_t cin = link.client->stats().framesIn;
  uint64_t sin = link.server->stats().framesIn;
  runFor(loop, 1100);  // over twice dead_ms without a byte from the users
  EXPECT_FALSE(link.client->closed()) << link.client_owner.detail;
  EXPECT_FALSE(link.server->closed()) << link.server_owner.detail;
  EXPECT_GE(link.client->stats().framesIn, cin + 5);  // NOPs
  EXPECT_GE(link.server->stats().framesIn, sin + 5);
  EXPECT_LT(loop.now() - link.client->lastReceiveMs(), o.dead_ms);
  write(*c->s, "b");
  ASSERT_TRUE(runUntil(loop, [&] { return c->ep.received == "ab"; }));
  EXPECT_EQ(c->ep.closes, 0);
}

TEST(MuxSession, SilentPeerTimesOut) {
  event::Loop loop;
  MuxOptions sopt;
  sopt.keepalive_ms = 50;
  sopt.dead_ms = 200;
  Link link(loop, {}, sopt, End::kRaw);
  ASSERT_TRUE(link.up());
  link.clientSend(syn(kV2, 3));  // then nothing
  ASSERT_TRUE(runUntil(loop, [&] { return link.server_owner.eps.size() == 1; }));
  uint64_t t0 = loop.now();
  ASSERT_TRUE(runUntil(
      loop, [&] { return link.server_owner.closed == 1; }, 3000));
  EXPECT_GE(loop.now() - t0, 150u);
  EXPECT_EQ(link.server_owner.reason, CloseReason::kTimeout);
  EXPECT_EQ(link.server_owner.ep(0).closes, 1);
  EXPECT_EQ(link.server_owner.ep(0).reason, CloseReason::kTimeout);
  EXPECT_TRUE(link.server->closed());
  EXPECT_EQ(link.server->streamCount(), 0u);
  // It kept sending NOPs (VER 2, stream 0) while it waited.
  std::vector<Frame> got = frames(link.raw_client.received);
  EXPECT_GE(got.size(), 2u);
  for (const Frame& f : got) {
    EXPECT_EQ(f.ver, kV2);
    EXPECT_EQ(f.cmd, SmuxCommand::kNop);
    EXPECT_EQ(f.sid, 0u);
  }
  ASSERT_TRUE(runUntil(loop, [&] { return link.raw_client.eof || link.raw_client.closes > 0; }));
}

// The server takes VER from the peer's first frame; before it, it sends
// nothing (a NOP of a guessed VER would kill a VER 1 peer).
TEST(MuxSession, ServerSendsNoNopBeforeThePeersFirstFrame) {
  event::Loop loop;
  MuxOptions sopt;
  sopt.keepalive_ms = 30;
  sopt.dead_ms = 1000;
  Link link(loop, {}, sopt, End::kRaw);
  ASSERT_TRUE(link.up());
  runFor(loop, 150);
  EXPECT_TRUE(link.raw_client.received.empty()) << hex(link.raw_client.received);
  link.clientSend(nop(kV1));
  runFor(loop, 150);
  EXPECT_EQ(link.server->version(), kV1);
  std::vector<Frame> got = frames(link.raw_client.received);
  EXPECT_GE(got.size(), 2u);
  for (const Frame& f : got) {
    EXPECT_EQ(f.ver, kV1);
    EXPECT_EQ(f.cmd, SmuxCommand::kNop);
  }
  EXPECT_FALSE(link.server->closed());
}

// ================================================================ closing

enum class Kill { kClientSessionClose, kClientTcpClose, kServerSessionClose, kClientDestroyed };

void closeMidTransfer(Kill kill) {
  event::Loop loop;
  const std::string big = pattern(4 << 20, 7);  // far from done when the session goes
  Link one(loop);
  Link two(loop);
  one.server_owner.setup = [&](auto&, Endpoint& ep) {
    ep.payload = big;
    finishOnEof(ep);
    return true;
  };
  two.server_owner.setup = echo;
  ASSERT_TRUE(one.up());
  ASSERT_TRUE(two.up());
  std::vector<std::unique_ptr<Opened>> cs;
  for (int i = 0; i < 4; ++i) cs.push_back(open(*one.client, big));
  auto other = open(*two.client, pattern(2 << 20, 49));
  ASSERT_TRUE(runUntil(loop, [&] {
    if (one.server_owner.eps.size() != 4) return false;
    for (int i = 0; i < 4; ++i) {
      if (cs[i]->ep.received.size() < 256 * 1024) return false;
      if (one.server_owner.ep(i).received.size() < 256 * 1024) return false;
    }
    return true;
  }));
  for (auto& c : cs) ASSERT_EQ(c->ep.closes, 0);

  switch (kill) {
    case Kill::kClientSessionClose: one.client->close(CloseReason::kLocalClose, "test"); break;
    case Kill::kClientTcpClose: one.client_tcp->close(CloseReason::kLocalClose); break;
    case Kill::kServerSessionClose: one.server->close(CloseReason::kLocalClose, "test"); break;
    case Kill::kClientDestroyed:
      one.client.reset();
      one.client_tcp.reset();
      break;
  }
  bool client_side = kill != Kill::kServerSessionClose;
  if (client_side) {
    // At once, from the call itself.
    for (auto& c : cs) {
      EXPECT_EQ(c->ep.closes, 1);
      EXPECT_EQ(c->ep.reason, CloseReason::kReset) << closeReasonName(c->ep.reason);
    }
    if (one.client) {
      EXPECT_TRUE(one.client->closed());
      EXPECT_EQ(one.client_owner.closed, 1);
      EXPECT_EQ(one.client->streamCount(), 0u);
      EXPECT_EQ(one.client->openStream(false), nullptr);
      one.client->close(CloseReason::kReset, "again");  // idempotent
      EXPECT_EQ(one.client_owner.closed, 1);
    }
  } else {
    for (int i = 0; i < 4; ++i) {
      EXPECT_EQ(one.server_owner.ep(i).closes, 1);
      EXPECT_EQ(one.server_owner.ep(i).reason, CloseReason::kReset);
    }
    EXPECT_EQ(one.server_owner.closed, 1);
  }
  // The other end follows promptly, also not cleanly.
  ASSERT_TRUE(runUntil(
      loop,
      [&] {
        for (auto& c : cs) {
          if (c->ep.closes != 1) return false;
        }
        return one.server_owner.allClosed(4) && one.server_owner.closed == 1 &&
               (one.client == nullptr || one.client_owner.closed == 1);
      },
      3000));
  for (int i = 0; i < 4; ++i) {
    EXPECT_FALSE(clean(one.server_owner.ep(i).reason)) << i;
    EXPECT_FALSE(clean(cs[i]->ep.reason)) << i;
    EXPECT_EQ(one.server_owner.ep(i).after_close_events, 0);
    EXPECT_EQ(cs[i]->ep.after_close_events, 0);
    EXPECT_LT(cs[i]->ep.received.size(), big.size());
  }
  EXPECT_EQ(one.server->streamCount(), 0u);
  // The session next door is untouched.
  ASSERT_TRUE(runUntil(
      loop, [&] { return other->ep.closes == 1; }, 10000));
  EXPECT_TRUE(other->ep.received == other->ep.payload);
  EXPECT_TRUE(clean(other->ep.reason));
  EXPECT_FALSE(two.client->closed());
  EXPECT_FALSE(two.server->closed());
  EXPECT_EQ(two.client_owner.closed, 0);
  expectWorks(loop, two, 50);
}

TEST(MuxSession, ClientSessionCloseMidTransfer) {
  closeMidTransfer(Kill::kClientSessionClose);
}
TEST(MuxSession, ClientTcpCloseMidTransfer) {
  closeMidTransfer(Kill::kClientTcpClose);
}
TEST(MuxSession, ServerSessionCloseMidTransfer) {
  closeMidTransfer(Kill::kServerSessionClose);
}
TEST(MuxSession, ClientSessionDestroyedMidTransfer) {
  closeMidTransfer(Kill::kClientDestroyed);
}

// Stream callbacks that close things: the session from inside the PSH it
// is processing, other streams (and the session again) from inside the
// session's own close, streams handed to deferred delete from onClose.
class Reentrant final : public StreamCallbacks {
 public:
  std::function<void()> on_data, on_close;
  int closes = 0;
  int after_close_events = 0;
  CloseReason reason = CloseReason::kLocalClose;
  void onData(BufferChain& d, bool) override {
    if (closes) ++after_close_events;
    d.clear();
    if (on_data) on_data();
  }
  void onClose(CloseReason r, const std::string&) override {
    ++closes;
    reason = r;
    if (on_close) on_close();
  }
};

TEST(MuxSession, CallbacksMayCloseTheSessionAndOtherStreams) {
  event::Loop loop;
  Link link(loop);
  constexpr int kN = 4;
  // Server: stream 7 closes the whole session on its first bytes.
  std::vector<std::unique_ptr<Reentrant>> srv(kN);
  int bombs = 0;
  link.server_owner.setup = [&](auto& s, Endpoint&) {
    size_t i = (s->id() - 3) / 2;
    srv.at(i) = std::make_unique<Reentrant>();
    if (s->id() == 7) {
      srv[i]->on_data = [&] {
        ++bombs;
        link.server->close(CloseReason::kLocalClose, "from a stream callback");
      };
    }
    // Each server stream's onClose also closes its neighbour.
    srv[i]->on_close = [&, i] {
      if (i + 1 < srv.size() && srv[i + 1])
        link.server_owner.streams.at(i + 1)->close(CloseReason::kLocalClose);
    };
    s->setCallbacks(*srv[i]);
    link.server_owner.streams.push_back(std::move(s));
    return true;
  };
  ASSERT_TRUE(link.up());
  // Client: the first stream to hear of the end closes every other one,
  // closes the session again and hands its peers to deferred delete.
  std::vector<std::unique_ptr<MuxStream>> cs;
  std::vector<std::unique_ptr<Reentrant>> cb;
  for (int i = 0; i < kN; ++i) {
    cs.push_back(link.client->openStream(false));
    cb.push_back(std::make_unique<Reentrant>());
    cs[i]->setCallbacks(*cb[i]);
    cs[i]->connect();
  }
  int chain = 0;
  for (int i = 0; i < kN; ++i) {
    cb[i]->on_close = [&, i] {
      if (chain++ > 0) return;
      link.client->close(CloseReason::kReset, "again");
      for (int j = 0; j < kN; ++j) {
        if (j == i) continue;
        cs[j]->close(CloseReason::kLocalClose);
        loop.deferredDelete(std::move(cs[j]));
      }
    };
  }
  ASSERT_TRUE(runUntil(loop, [&] { return link.server_owner.streams.size() == kN; }));
  write(*cs[0], pattern(100000, 1));
  write(*cs[2], "boom");  // stream 7
  write(*cs[3], pattern(100000, 2));
  ASSERT_TRUE(runUntil(loop, [&] { return link.server_owner.closed == 1; }));
  EXPECT_EQ(bombs, 1);
  EXPECT_EQ(link.server_owner.reason, CloseReason::kLocalClose);
  for (auto& r : srv) {
    ASSERT_NE(r, nullptr);
    EXPECT_EQ(r->closes, 1);
    EXPECT_EQ(r->after_close_events, 0);
  }
  ASSERT_TRUE(runUntil(loop, [&] { return link.client_owner.closed == 1; }));
  EXPECT_TRUE(link.client->closed());
  for (auto& r : cb) {
    EXPECT_EQ(r->closes, 1);
    EXPECT_EQ(r->after_close_events, 0);
  }
  EXPECT_EQ(link.client->streamCount(), 0u);
  EXPECT_EQ(link.server->streamCount(), 0u);
  // Late calls on what is left are ignored.
  for (auto& s : cs) {
    if (!s) continue;
    write(*s, "late", true);
    s->readDisable(true);
    s->readDisable(false);
    s->connect();
  }
  runFor(loop, 10);
}

TEST(MuxSession, DestroyingAStreamSendsFinAndLeaves) {
  event::Loop loop;
  Link link(loop);
  link.server_owner.setup = echo;
  ASSERT_TRUE(link.up());
  auto c = open(*link.client, "hi", false);
  ASSERT_TRUE(runUntil(loop, [&] { return c->ep.received == "hi"; }));
  c->s.reset();  // no close(): the destructor sends the FIN, no callbacks
  EXPECT_EQ(c->ep.closes, 0);
  EXPECT_EQ(link.client->streamCount(), 0u);
  ASSERT_TRUE(runUntil(loop, [&] { return link.server_owner.allClosed(1); }));
  // The echo ended too; its FIN meets a stream that is gone.
  EXPECT_TRUE(link.server_owner.ep(0).eof);
  ASSERT_TRUE(runUntil(loop, [&] { return link.client->stats().unknownFrames == 1; }));
  EXPECT_EQ(link.server->streamCount(), 0u);
  // A stream that never sent its SYN leaves silently.
  uint64_t out = link.client->stats().framesOut;
  auto never = link.client->openStream(false);
  EXPECT_EQ(link.client->streamCount(), 1u);
  never.reset();
  EXPECT_EQ(link.client->streamCount(), 0u);
  EXPECT_EQ(link.client->stats().framesOut, out);
  expectWorks(loop, link, 3);
}

// A stream the client abandons (closes while the server still sends: its
// FIN only ends the client's direction) is ended at the server when the
// server's next data meets it: a second FIN, read there as a reset.
TEST(MuxSession, AbandonedStreamIsEndedAtThePeer) {
  event::Loop loop;
  Link link(loop);
  link.server_owner.setup = [](std::unique_ptr<MuxStream>&, Endpoint& ep) {
    ep.on_data = [&ep](BufferChain& d, bool) { d.clear(); };
    // Much more than a window: the server keeps sending.
    ep.payload = std::string(4 << 20, 'x');
    ep.end = false;
    return true;
  };
  ASSERT_TRUE(link.up());
  auto c = open(*link.client, "get", false);
  ASSERT_TRUE(runUntil(loop, [&] { return c->ep.received.size() >= 64 * 1024; }));
  c->s->close(CloseReason::kLocalClose, "the app reset");
  ASSERT_TRUE(runUntil(loop, [&] { return link.server_owner.allClosed(1); }));
  EXPECT_EQ(link.server_owner.ep(0).reason, CloseReason::kReset);
  EXPECT_EQ(link.server_owner.ep(0).detail, "the peer abandoned the stream");
  EXPECT_EQ(link.client->stats().abandonedFins, 1u);
  EXPECT_EQ(link.server->stats().peerAbandoned, 1u);
  ASSERT_TRUE(runUntil(loop, [&] { return link.server->streamCount() == 0; }));
  link.server_owner.setup = echo;  // the session carries on
  expectWorks(loop, link, 3);
}

// The other way: the server abandons a stream the client still writes on.
TEST(MuxSession, StreamAbandonedByTheServerIsEndedAtTheClient) {
  event::Loop loop;
  Link link(loop);
  link.server_owner.setup = [](std::unique_ptr<MuxStream>&, Endpoint& ep) {
    ep.on_data = [&ep](BufferChain& d, bool) {
      ep.received += d.toString();
      d.clear();
    };
    return true;
  };
  ASSERT_TRUE(link.up());
  auto c = open(*link.client, std::string(4 << 20, 'y'), false);
  ASSERT_TRUE(runUntil(loop, [&] {
    return !link.server_owner.eps.empty() && link.server_owner.ep(0).received.size() >= 64 * 1024;
  }));
  link.server_owner.stream(0).close(CloseReason::kReset, "target reset");
  ASSERT_TRUE(runUntil(loop, [&] { return c->ep.closes == 1; }));
  EXPECT_EQ(c->ep.reason, CloseReason::kReset);
  EXPECT_EQ(c->ep.detail, "the peer abandoned the stream");
  EXPECT_EQ(link.server->stats().abandonedFins, 1u);
  EXPECT_EQ(link.client->stats().peerAbandoned, 1u);
  link.server_owner.setup = echo;  // the session carries on
  expectWorks(loop, link, 3);
}

// ================================================================ hostile input

struct HostileCase {
  const char* name = "";
  std::string bytes;
  bool end = false;                 // the peer ends its direction after them
  std::optional<CloseReason> dies;  // nullopt: the session stays up
  const char* detail = "";          // in the close detail
  int accepted = 0;                 // streams the session accepted
  std::string first_received;       // by the first accepted stream
  uint64_t unknown = 0;             // stats().unknownFrames
};

HostileCase hcase(const char* name, std::string bytes, bool end, std::optional<CloseReason> dies,
                  const char* detail = "", int accepted = 0, std::string first_received = {},
                  uint64_t unknown = 0) {
  HostileCase c;
  c.name = name;
  c.bytes = std::move(bytes);
  c.end = end;
  c.dies = dies;
  c.detail = detail;
  c.accepted = accepted;
  c.first_received = std::move(first_received);
  c.unknown = unknown;
  return c;
}

std::vector<HostileCase> hostileCases() {
  std::string big(65535, 'q');
  std::vector<HostileCase> v;
  v.push_back(
      hcase("bad_version_3", header(3, 0, 0, 3), false, CloseReason::kProtocolError, "version"));
  v.push_back(
      hcase("bad_version_0", header(0, 3, 0, 0), false, CloseReason::kProtocolError, "version"));
  v.push_back(hcase("version_changes_2_to_1", syn(kV2, 3) + psh(kV2, 3, "a") + nop(kV1), false,
                    CloseReason::kProtocolError, "version changed", 1, "a"));
  v.push_back(hcase("version_changes_1_to_2", syn(kV1, 3) + psh(kV1, 3, "a") + syn(kV2, 5), false,
                    CloseReason::kProtocolError, "version changed", 1, "a"));
  v.push_back(hcase("upd_in_ver_1", syn(kV1, 3) + header(1, 4, 8, 3) + std::string(8, '\0'), false,
                    CloseReason::kProtocolError, "command", 1));
  v.push_back(
      hcase("bad_command_v2", header(2, 5, 0, 3), false, CloseReason::kProtocolError, "command"));
  v.push_back(hcase("syn_even_id", syn(kV2, 4), false, CloseReason::kProtocolError, "even"));
  v.push_back(hcase("syn_id_0", syn(kV2, 0), false, CloseReason::kProtocolError, "even"));
  v.push_back(
      hcase("syn_with_len", header(2, 0, 1, 3) + "a", false, CloseReason::kProtocolError, "LEN"));
  v.push_back(hcase("fin_with_len", syn(kV2, 3) + header(2, 1, 4, 3) + "abcd", false,
                    CloseReason::kProtocolError, "LEN", 1));
  v.push_back(
      hcase("nop_with_len", header(2, 3, 2, 0) + "ab", false, CloseReason::kProtocolError, "LEN"));
  v.push_back(hcase("upd_len_4", syn(kV2, 3) + header(2, 4, 4, 3) + "abcd", false,
                    CloseReason::kProtocolError, "LEN", 1));
  v.push_back(hcase("eof_in_header", syn(kV2, 3) + psh(kV2, 3, "ab").substr(0, 5), true,
                    CloseReason::kProtocolError, "inside a frame", 1));
  v.push_back(hcase("eof_in_payload", syn(kV2, 3) + header(2, 2, 100, 3) + "0123456789", true,
                    CloseReason::kProtocolError, "inside a frame", 1));
  v.push_back(hcase("eof_at_frame_boundary", syn(kV2, 3) + psh(kV2, 3, "a"), true,
                    CloseReason::kRemoteClose, "", 1, "a"));
  v.push_back(hcase("eof_before_any_frame", "", true, CloseReason::kRemoteClose));
  v.push_back(
      hcase("frames_for_unknown_streams",
            psh(kV2, 5, "zz") + fin(kV2, 7) + upd(9, 0, 65536) + syn(kV2, 3) + psh(kV2, 3, "ok"),
            false, std::nullopt, "", 1, "ok", 3));
  v.push_back(hcase("repeated_syn", syn(kV2, 3) + syn(kV2, 3) + psh(kV2, 3, "x"), false,
                    std::nullopt, "", 1, "x"));
  v.push_back(hcase("psh_65535", syn(kV2, 3) + header(2, 2, 65535, 3) + big, false, std::nullopt,
                    "", 1, big));
  v.push_back(hcase("data_after_fin",
                    syn(kV2, 3) + psh(kV2, 3, "a") + fin(kV2, 3) + psh(kV2, 3, "b") + fin(kV2, 3),
                    false, std::nullopt, "", 1, "a"));
  v.push_back(hcase("nop_any_stream_v1",
                    nop(kV1) + ctl(kV1, SmuxCommand::kNop, 77) + syn(kV1, 3) + psh(kV1, 3, "v1"),
                    false, std::nullopt, "", 1, "v1"));
  v.push_back(
      hcase("upd_hostile_values",
            syn(kV2, 3) + upd(3, 0xffffffffu, 0) + upd(3, 5, 0xffffffffu) + psh(kV2, 3, "u"), false,
            std::nullopt, "", 1, "u"));
  return v;
}

class MuxHostile : public ::testing::TestWithParam<std::tuple<size_t, bool>> {};

// One hostile peer on a server-role session, next to a healthy pair on the
// same loop; `split` sends the bytes in small pieces.
TEST_P(MuxHostile, OnlyThatSessionIsAffected) {
  const auto [index, split] = GetParam();
  const HostileCase hc = hostileCases().at(index);
  SCOPED_TRACE(hc.name);
  event::Loop loop;
  Link healthy(loop);
  healthy.server_owner.setup = echo;
  Link bad(loop, {}, {}, End::kRaw);
  ASSERT_TRUE(healthy.up());
  ASSERT_TRUE(bad.up());
  auto live = open(*healthy.client, pattern(64 * 1024, 1), false);

  if (!split) {
    bad.clientSend(hc.bytes, hc.end);
  } else {
    bad.client_tcp->setNoDelay(true);
    size_t step = std::max<size_t>(1, hc.bytes.size() / 48);
    for (size_t i = 0; i < hc.bytes.size(); i += step) {
      bad.clientSend(hc.bytes.substr(i, step));
      loop.runOnce(false);
    }
    if (hc.end) bad.clientSend("", true);
  }
  if (hc.dies) {
    ASSERT_TRUE(runUntil(
        loop, [&] { return bad.server_owner.closed == 1; }, 3000));
    EXPECT_EQ(bad.server_owner.reason, *hc.dies)
        << closeReasonName(bad.server_owner.reason) << " " << bad.server_owner.detail;
    EXPECT_NE(bad.server_owner.detail.find(hc.detail), std::string::npos)
        << bad.server_owner.detail;
    EXPECT_TRUE(bad.server->closed());
    EXPECT_EQ(bad.server->streamCount(), 0u);
    EXPECT_EQ(bad.server->heldBytes(), 0u);
    for (auto& ep : bad.server_owner.eps) {
      EXPECT_EQ(ep->closes, 1);
      EXPECT_EQ(ep->reason, CloseReason::kReset);
    }
    ASSERT_TRUE(runUntil(loop, [&] { return bad.raw_client.eof || bad.raw_client.closes > 0; }));
  } else {
    runFor(loop, 60);
    EXPECT_FALSE(bad.server->closed()) << bad.server_owner.detail;
  }
  EXPECT_EQ(bad.server_owner.accepts, hc.accepted);
  if (hc.accepted > 0 && !bad.server_owner.eps.empty()) {
    EXPECT_TRUE(bad.server_owner.ep(0).received == hc.first_received)
        << bad.server_owner.ep(0).received.size();
  }
  EXPECT_EQ(bad.server->stats().unknownFrames, hc.unknown);
  if (!hc.dies) {
    // Still up: a new stream works.
    bad.clientSend(syn(bad.server->version(), 101) + psh(bad.server->version(), 101, "alive"));
    ASSERT_TRUE(runUntil(loop, [&] {
      return !bad.server_owner.eps.empty() && bad.server_owner.eps.back()->received == "alive";
    }));
  }

  // The healthy pair never noticed.
  ASSERT_TRUE(runUntil(loop, [&] { return live->ep.received == live->ep.payload; }));
  EXPECT_EQ(live->ep.closes, 0);
  EXPECT_FALSE(healthy.client->closed());
  EXPECT_FALSE(healthy.server->closed());
  expectWorks(loop, healthy, 2);
}

INSTANTIATE_TEST_SUITE_P(Cases, MuxHostile,
                         ::testing::Combine(::testing::Range<size_t>(0, hostileCases().size()),
                                            ::testing::Bool()),
                         [](const auto& info) {
                           return std::string(hostileCases().at(std::get<0>(info.param)).name) +
                                  (std::get<1>(info.param) ? "_split" : "_whole");
                         });

// A peer that sends past the VER 2 window of a stream that is not read.
TEST(MuxSessionHostile, PshPastTheWindowOfAStoppedReader) {
  event::Loop loop;
  Link healthy(loop);
  healthy.server_owner.setup = echo;
  Link bad(loop, {}, {}, End::kRaw);
  bad.server_owner.setup = [](auto& s, Endpoint&) {
    s->readDisable(true);
    return true;
  };
  ASSERT_TRUE(healthy.up());
  ASSERT_TRUE(bad.up());
  std::string all = syn(kV2, 3);
  for (size_t sent = 0; sent < kInitialWindow; sent += codec::kSmuxMaxPshData) {
    all += psh(kV2, 3, pattern(codec::kSmuxMaxPshData, static_cast<uint32_t>(sent)));
  }
  bad.clientSend(all);
  // Exactly the window: allowed.
  ASSERT_TRUE(runUntil(loop, [&] {
    return bad.server_owner.streams.size() == 1 &&
           bad.server_owner.stream(0).heldBytes() == kInitialWindow;
  }));
  runFor(loop, 50);
  EXPECT_FALSE(bad.server->closed());
  EXPECT_EQ(bad.server->heldBytes(), kInitialWindow);
  // One byte more: hostile.
  bad.clientSend(psh(kV2, 3, "x"));
  ASSERT_TRUE(runUntil(loop, [&] { return bad.server_owner.closed == 1; }));
  EXPECT_EQ(bad.server_owner.reason, CloseReason::kProtocolError);
  EXPECT_NE(bad.server_owner.detail.find("window"), std::string::npos) << bad.server_owner.detail;
  EXPECT_EQ(bad.server_owner.ep(0).closes, 1);
  EXPECT_EQ(bad.server_owner.ep(0).reason, CloseReason::kReset);
  EXPECT_TRUE(bad.server_owner.ep(0).received.empty());
  EXPECT_EQ(bad.server->heldBytes(), 0u);
  EXPECT_EQ(bad.server->streamCount(), 0u);
  expectWorks(loop, healthy, 4);
}

// A user that leaves bytes in onData(..., end_stream) must not be offered
// them again and again within the same delivery.
class Hoarder final : public StreamCallbacks {
 public:
  int calls = 0;
  int ends = 0;
  int closes = 0;
  bool take = false;
  std::string got;
  void onData(BufferChain& d, bool end) override {
    ++calls;
    if (end) ++ends;
    if (take || calls > 50) {  // > 50: the test has failed; do not spin forever
      got += d.toString();
      d.clear();
    }
  }
  void onClose(CloseReason, const std::string&) override { ++closes; }
};

TEST(MuxSessionHostile, UnreadBytesWithEndStreamDoNotSpin) {
  event::Loop loop;
  Link bad(loop, {}, {}, End::kRaw);
  Hoarder h;
  std::unique_ptr<MuxStream> taken;
  bad.server_owner.setup = [&](auto& s, Endpoint&) {
    taken = std::move(s);
    taken->setCallbacks(h);
    return true;
  };
  ASSERT_TRUE(bad.up());
  bad.clientSend(syn(kV2, 3) + psh(kV2, 3, "abc") + fin(kV2, 3));
  ASSERT_TRUE(runUntil(loop, [&] { return h.ends > 0; }));
  runFor(loop, 30);
  // Offered on the PSH, then once more with end_stream on the FIN; the
  // old code offered them again and again inside that second delivery.
  EXPECT_LE(h.calls, 2);
  EXPECT_EQ(h.ends, 1);
  EXPECT_EQ(taken->heldBytes(), 3u);
  // Offered again when the user asks (reading re-enabled).
  h.take = true;
  taken->readDisable(true);
  taken->readDisable(false);
  EXPECT_EQ(h.got, "abc");
  EXPECT_EQ(taken->heldBytes(), 0u);
  BufferChain none;
  taken->write(none, true);
  ASSERT_TRUE(runUntil(loop, [&] { return h.closes == 1; }));
  EXPECT_EQ(bad.server->streamCount(), 0u);
  EXPECT_FALSE(bad.server->closed());
}

// A client-role session against a hostile server.
TEST(MuxSessionHostile, ClientRefusesServerStreamsAndForeignVersions) {
  event::Loop loop;
  Link link(loop, {}, {}, End::kMux, End::kRaw);
  ASSERT_TRUE(link.up());
  auto c = open(*link.client, "", false);
  ASSERT_TRUE(runUntil(loop, [&] { return link.raw_server.received.size() >= 8; }));
  link.raw_server.received.clear();
  // A SYN from the server: answered with FIN, counted, ignored.
  link.serverSend(syn(kV2, 2) + psh(kV2, 2, "nope") + psh(kV2, 3, "yes"));
  ASSERT_TRUE(runUntil(loop, [&] { return c->ep.received == "yes"; }));
  ASSERT_TRUE(runUntil(loop, [&] { return link.raw_server.received.size() >= 8; }));
  EXPECT_EQ(hex(link.raw_server.received), "02 01 00 00 02 00 00 00");
  EXPECT_EQ(link.client->stats().unknownFrames, 2u);
  EXPECT_EQ(link.client->streamCount(), 1u);
  EXPECT_FALSE(link.client->closed());
  // A VER 1 frame to a VER 2 client: the session dies, its stream resets.
  link.serverSend(nop(kV1));
  ASSERT_TRUE(runUntil(loop, [&] { return link.client_owner.closed == 1; }));
  EXPECT_EQ(link.client_owner.reason, CloseReason::kProtocolError);
  EXPECT_EQ(c->ep.closes, 1);
  EXPECT_EQ(c->ep.reason, CloseReason::kReset);
}

// ================================================================ wire bytes

TEST(MuxSessionWire, ClientBytesForOpenWriteFinVer2) {
  event::Loop loop;
  Link link(loop, {}, {}, End::kMux, End::kRaw);
  ASSERT_TRUE(link.up());
  Endpoint ep;
  auto s = link.client->openStream(false);
  ep.attach(*s);
  s->connect();
  write(*s, "hi");
  write(*s, "", true);
  ASSERT_TRUE(runUntil(loop, [&] { return link.raw_server.received.size() >= 26; }));
  runFor(loop, 20);
  EXPECT_EQ(hex(link.raw_server.received),
            "02 00 00 00 03 00 00 00 "
            "02 02 02 00 03 00 00 00 68 69 "
            "02 01 00 00 03 00 00 00");
  EXPECT_EQ(link.client->stats().framesOut, 3u);
  EXPECT_EQ(link.client->stats().bytesOut, 2u);
  // The peer's FIN completes the stream.
  link.serverSend(fin(kV2, 3));
  ASSERT_TRUE(runUntil(loop, [&] { return ep.closes == 1; }));
  EXPECT_TRUE(ep.eof);
  EXPECT_TRUE(clean(ep.reason));
  EXPECT_EQ(link.client->streamCount(), 0u);

  // The next stream is 5; closing it sends its FIN.
  link.raw_server.received.clear();
  Endpoint ep5;
  auto s5 = link.client->openStream(false);
  ep5.attach(*s5);
  s5->connect();
  s5->close(CloseReason::kLocalClose);
  EXPECT_EQ(ep5.closes, 1);
  ASSERT_TRUE(runUntil(loop, [&] { return link.raw_server.received.size() >= 16; }));
  EXPECT_EQ(hex(link.raw_server.received), "02 00 00 00 05 00 00 00 02 01 00 00 05 00 00 00");
}

TEST(MuxSessionWire, ClientBytesVer1AndWaitModeAnswer) {
  event::Loop loop;
  MuxOptions copt;
  copt.version = kV1;
  Link link(loop, copt, {}, End::kMux, End::kRaw);
  ASSERT_TRUE(link.up());
  Endpoint ep;
  auto s = link.client->openStream(true);
  ep.attach(*s);
  write(*s, "hi", true);  // before connect: after the SYN, in one go
  s->connect();
  ASSERT_TRUE(runUntil(loop, [&] { return link.raw_server.received.size() >= 26; }));
  EXPECT_EQ(hex(link.raw_server.received),
            "01 00 00 00 03 00 00 00 "
            "01 02 02 00 03 00 00 00 68 69 "
            "01 01 00 00 03 00 00 00");
  EXPECT_EQ(link.client->stats().framesOut, 3u);  // PSH and FIN went in one turn
  runFor(loop, 30);
  EXPECT_FALSE(ep.connected);
  link.serverSend(psh(kV1, 3, "") + psh(kV1, 3, "ok") + fin(kV1, 3));
  ASSERT_TRUE(runUntil(loop, [&] { return ep.closes == 1; }));
  EXPECT_TRUE(ep.connected);
  EXPECT_EQ(ep.received, "ok");
  EXPECT_TRUE(clean(ep.reason));
}

TEST(MuxSessionWire, ServerAnswersWithEmptyPshAndSendsUpdAtHalfWindow) {
  event::Loop loop;
  MuxOptions sopt;
  sopt.stream_window = 65536;
  sopt.max_stream_window = 65536;  // fixed: no growth in the bytes below
  Link link(loop, {}, sopt, End::kRaw);
  ASSERT_TRUE(link.up());
  link.clientSend(syn(kV2, 3) + psh(kV2, 3, pattern(32767, 1)));
  ASSERT_TRUE(runUntil(loop, [&] {
    return !link.server_owner.eps.empty() && link.server_owner.ep(0).received.size() == 32767;
  }));
  runFor(loop, 30);
  EXPECT_EQ(hex(link.raw_client.received), "");
  // The answer of a wait-mode open: PSH LEN 0.
  write(link.server_owner.stream(0), "");
  ASSERT_TRUE(runUntil(loop, [&] { return link.raw_client.received.size() >= 8; }));
  EXPECT_EQ(hex(link.raw_client.received), "02 02 00 00 03 00 00 00");
  link.raw_client.received.clear();
  // Half the window consumed: UPD consumed 32768, window 65536.
  link.clientSend(psh(kV2, 3, "z"));
  ASSERT_TRUE(runUntil(loop, [&] { return link.raw_client.received.size() >= 16; }));
  EXPECT_EQ(hex(link.raw_client.received), "02 04 08 00 03 00 00 00 00 80 00 00 00 00 01 00");
  link.clientSend(psh(kV2, 3, pattern(32768, 2)));
  ASSERT_TRUE(runUntil(loop, [&] { return link.raw_client.received.size() >= 32; }));
  EXPECT_EQ(hex(link.raw_client.received.substr(16)),
            "02 04 08 00 03 00 00 00 00 00 01 00 00 00 01 00");
  EXPECT_EQ(link.server->stats().bytesIn, 65536u);
}

// Our sender keeps to the peer's window: the initial guess, then UPDs.
TEST(MuxSessionWire, SenderKeepsToThePeersWindow) {
  event::Loop loop;
  Link link(loop, {}, {}, End::kMux, End::kRaw);
  ASSERT_TRUE(link.up());
  const std::string up = pattern(1 << 20, 6);
  auto c = open(*link.client, up);
  ASSERT_TRUE(
      runUntil(loop, [&] { return pshBytes(link.raw_server.received, 3) == kInitialWindow; }));
  runFor(loop, 50);
  EXPECT_EQ(pshBytes(link.raw_server.received, 3), kInitialWindow);
  for (const Frame& f : frames(link.raw_server.received)) {
    EXPECT_LE(f.data.size(), codec::kSmuxMaxPshData);
  }
  link.serverSend(upd(3, kInitialWindow, 65536));
  ASSERT_TRUE(runUntil(
      loop, [&] { return pshBytes(link.raw_server.received, 3) == kInitialWindow + 65536; }));
  runFor(loop, 50);
  EXPECT_EQ(pshBytes(link.raw_server.received, 3), kInitialWindow + 65536);
  link.serverSend(upd(3, kInitialWindow + 65536, 4 << 20));
  ASSERT_TRUE(runUntil(loop, [&] {
    std::vector<Frame> f = frames(link.raw_server.received);
    return !f.empty() && f.back().cmd == SmuxCommand::kFin;
  }));
  EXPECT_TRUE(frameData(link.raw_server.received) == up);
}

// A client stream of `link` (not yet connected) with `ep` attached.
std::unique_ptr<MuxStream> openAttached(Link& link, Endpoint& ep) {
  auto s = link.client->openStream(false);
  ep.attach(*s);
  return s;
}

// What streams write in one loop pass reaches the inner stream as one
// write (one TLS record, one syscall), not one per frame: 100 small writes
// (under the 64 KiB at which a pass writes early), 100 PSH frames, one inner
// write.
TEST(MuxSessionWire, OnePassOfWritesIsOneInnerWrite) {
  event::Loop loop;
  Link link(loop, {}, {}, End::kMux, End::kRaw);
  ASSERT_TRUE(link.up());
  Endpoint ep;
  auto s = openAttached(link, ep);
  s->connect();
  ASSERT_TRUE(runUntil(loop, [&] { return link.raw_server.received.size() >= 8; }));
  const uint64_t frames0 = link.client->stats().framesOut;
  const uint64_t writes0 = link.client->stats().innerWrites;
  std::string want;
  for (int i = 0; i < 100; ++i) {
    std::string d = pattern(500, static_cast<uint8_t>(i));  // 100 frames stay under kFlushBytes
    write(*s, d);
    want += d;
  }
  EXPECT_EQ(link.client->stats().innerWrites, writes0);  // nothing yet: at the end of the pass
  ASSERT_TRUE(runUntil(loop, [&] { return pshBytes(link.raw_server.received, 3) == want.size(); }));
  EXPECT_EQ(link.client->stats().framesOut - frames0, 100u);
  EXPECT_EQ(link.client->stats().innerWrites - writes0, 1u);
  EXPECT_TRUE(frameData(link.raw_server.received) == want);
}

// A datagram stream's wider receive window: announced with the SYN by the
// opener (SYN, UPD, then the data, in one write), by an UPD at once by the
// acceptor; the peer may then fill it; it never shrinks.
TEST(MuxSessionWire, DatagramStreamWindowIsAnnounced) {
  event::Loop loop;
  Link link(loop, {}, {}, End::kMux, End::kRaw);
  ASSERT_TRUE(link.up());
  Endpoint ep;
  auto s = openAttached(link, ep);
  s->setReceiveWindow(1 << 20);
  s->setReceiveWindow(65536);  // never lower
  EXPECT_EQ(s->receiveWindow(), 1u << 20);
  write(*s, "hi");
  s->connect();
  ASSERT_TRUE(runUntil(loop, [&] { return link.raw_server.received.size() >= 34; }));
  EXPECT_EQ(hex(link.raw_server.received),
            "02 00 00 00 03 00 00 00 "
            "02 04 08 00 03 00 00 00 00 00 00 00 00 00 10 00 "
            "02 02 02 00 03 00 00 00 68 69");
  // The server fills the whole 1 MiB: no "past its window".
  const std::string big = pattern(1 << 20, 3);
  std::string frames_in;
  for (size_t at = 0; at < big.size(); at += 32768) frames_in += psh(kV2, 3, big.substr(at, 32768));
  link.serverSend(frames_in);
  ASSERT_TRUE(runUntil(loop, [&] { return ep.received.size() == big.size(); }));
  EXPECT_FALSE(link.client->closed());
  EXPECT_TRUE(ep.received == big);
}

TEST(MuxSessionWire, AcceptedStreamWidensItsWindowWithAnUpd) {
  event::Loop loop;
  Link link(loop, {}, {}, End::kRaw);
  ASSERT_TRUE(link.up());
  link.clientSend(syn(kV2, 3) + psh(kV2, 3, "x"));
  ASSERT_TRUE(runUntil(loop, [&] { return !link.server_owner.eps.empty(); }));
  runFor(loop, 20);
  link.raw_client.received.clear();
  MuxStream& ms = link.server_owner.stream(0);
  ms.setReceiveWindow(1 << 20);
  ASSERT_TRUE(runUntil(loop, [&] { return link.raw_client.received.size() >= 16; }));
  EXPECT_EQ(hex(link.raw_client.received), "02 04 08 00 03 00 00 00 01 00 00 00 00 00 10 00");
}

// Window growth: a reader that takes a whole window within 100 ms (here:
// in one loop pass) and holds nothing has its window doubled at once, up
// to max_stream_window; a window that took longer does not grow.
TEST(MuxSessionWire, FastReaderGrowsItsWindow) {
  event::Loop loop;
  MuxOptions sopt;
  sopt.stream_window = 65536;
  sopt.max_stream_window = 262144;
  Link link(loop, {}, sopt, End::kRaw);
  ASSERT_TRUE(link.up());
  // A whole window in one write: an UPD at half of it, then the growth.
  link.clientSend(syn(kV2, 3) + psh(kV2, 3, pattern(32768, 1)) + psh(kV2, 3, pattern(32768, 2)));
  ASSERT_TRUE(runUntil(loop, [&] { return link.raw_client.received.size() >= 32; }));
  EXPECT_EQ(hex(link.raw_client.received), hex(upd(3, 32768, 65536) + upd(3, 65536, 131072)));
  EXPECT_EQ(link.server->stats().windowGrowths, 1u);
  EXPECT_EQ(link.server_owner.stream(0).receiveWindow(), 131072u);
  // The next window, 131072 bytes, after 110 ms: UPDs at each half, no
  // growth.
  runFor(loop, 110);
  link.raw_client.received.clear();
  std::string slow;
  for (int i = 0; i < 4; ++i) slow += psh(kV2, 3, pattern(32768, 3 + i));
  link.clientSend(slow);
  ASSERT_TRUE(runUntil(loop, [&] { return link.raw_client.received.size() >= 32; }));
  EXPECT_EQ(hex(link.raw_client.received),
            hex(upd(3, 131072, 131072) + upd(3, 196608, 131072)));
  EXPECT_EQ(link.server->stats().windowGrowths, 1u);
  // Fast again (four windows' worth in one write; a raw sender past the
  // window is let be while nothing is held): one more doubling, and no
  // more past the cap.
  std::string burst;
  for (int i = 0; i < 16; ++i) burst += psh(kV2, 3, pattern(32768, 10 + i));
  link.clientSend(burst);
  ASSERT_TRUE(runUntil(loop, [&] { return link.server_owner.ep(0).received.size() == 720896; }));
  runFor(loop, 10);
  EXPECT_EQ(link.server_owner.stream(0).receiveWindow(), 262144u);
  EXPECT_EQ(link.server->stats().windowGrowths, 2u);
}

// A stream through real sockets grows its window while its reader keeps
// up (8 MiB, the cap at 1 MiB); one whose reader stopped does not.
TEST(MuxSession, Ver2WindowGrowsForAFastReaderOnly) {
  event::Loop loop;
  MuxOptions sopt;
  sopt.max_stream_window = 1 << 20;
  Link link(loop, {}, sopt);
  link.server_owner.setup = [&](auto& s, Endpoint& ep) {
    if (s->id() == 5) s->readDisable(true);
    finishOnEof(ep);
    return true;
  };
  ASSERT_TRUE(link.up());
  const std::string up = pattern(8 << 20, 21);
  auto fast = open(*link.client, up);
  auto stopped = open(*link.client, pattern(1 << 20, 22));
  ASSERT_TRUE(runUntil(
      loop,
      [&] {
        return link.server_owner.eps.size() == 2 && link.server_owner.ep(0).closes == 1 &&
               link.server_owner.stream(1).heldBytes() == kInitialWindow;
      },
      20000));
  EXPECT_TRUE(link.server_owner.ep(0).received == up);
  EXPECT_GE(link.server->stats().windowGrowths, 1u);
  EXPECT_EQ(link.server_owner.stream(1).receiveWindow(), MuxOptions{}.stream_window);
  runFor(loop, 50);
  EXPECT_EQ(link.server_owner.stream(1).heldBytes(), kInitialWindow);
}

}  // namespace
}  // namespace vt::stream
