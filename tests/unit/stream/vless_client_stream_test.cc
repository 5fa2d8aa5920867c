#include "stream/vless_client_stream.h"

#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "codec/length_frame.h"
#include "config/server_config.h"
#include "event/timer.h"
#include "server/server.h"
#include "stream/tcp_stream.h"
#include "stream/tls_stream.h"
#include "stream_test_util.h"

namespace vt::stream {
namespace {

using testing::Endpoint;
using testing::pattern;
using testing::runUntil;

event::SocketAddress loopback(uint16_t port = 0) {
  return event::SocketAddress::ipv4(0x7f000001, port);
}

enum class Reply { kV0Header, kV0HeaderSplit, kWantIp, kNone, kCloseAfterHeader, kBadV0Header };

// A tiny VLESS server: parses the request with codec::decodeRequest, answers
// as told, then echoes (mirroring end_stream).
class VlessServer : public StreamCallbacks {
 public:
  VlessServer(event::Loop& loop, Reply reply, uint64_t reply_delay_ms = 0,
              std::shared_ptr<tls::TlsContext> tls = nullptr)
      : loop_(loop), reply_(reply), delay_(reply_delay_ms), timer_(loop) {
    auto l = TcpListener::listen(loop, loopback(), [this, tls](std::unique_ptr<TcpStream> s) {
      if (tls) {
        auto t = TlsStream::create(std::move(s), tls);
        t->setCallbacks(*this);
        t->startServer();
        stream_ = std::move(t);
        return;
      }
      stream_ = std::move(s);
      stream_->setCallbacks(*this);
    });
    EXPECT_TRUE(l.ok());
    listener_ = std::move(l.value());
  }
  uint16_t port() const { return listener_->localAddress().port(); }

  void onData(BufferChain& data, bool end_stream) override {
    ++reads;
    if (!parsed) {
      if (reads == 1) first_read = data.toString();
      in_.moveFrom(data);
      auto r = codec::decodeRequest(in_, request);
      ASSERT_NE(r.status, codec::DecodeStatus::kInvalid) << r.error;
      if (r.status == codec::DecodeStatus::kNeedMore) return;
      parsed = true;
      header_len = r.consumed;
      in_.drain(r.consumed);
      if (delay_ > 0) {
        timer_.start(delay_, [this] { answer(); });
      } else {
        answer();
      }
    } else {
      in_.moveFrom(data);
    }
    received_end = received_end || end_stream;
    echo();
  }
  void onClose(CloseReason, const std::string&) override { closed = true; }

  codec::Request request;
  bool parsed = false;
  bool answered = false;
  bool closed = false;
  bool received_end = false;
  int reads = 0;
  size_t header_len = 0;
  std::string first_read;
  std::string echoed;

 private:
  void answer() {
    BufferChain out;
    switch (reply_) {
      case Reply::kV0Header: codec::encodeV0Response(out); break;
      case Reply::kV0HeaderSplit: {
        // One byte now, the rest (and the echo) later: the client must wait.
        BufferChain whole;
        codec::encodeV0Response(whole);
        BufferChain first;
        first.moveFrom(whole, 1);
        stream_->write(first, false);
        rest_ = std::move(whole);
        split_timer_ = std::make_unique<event::Timer>(loop_);
        split_timer_->start(20, [this] {
          answered = true;
          stream_->write(rest_, false);
          echo();
        });
        return;
      }
      case Reply::kWantIp:
        codec::encodeWantIpPrefix(codec::Address::ipv4(0x7f000001, 0), out);
        break;
      case Reply::kNone: break;
      case Reply::kCloseAfterHeader: stream_->close(CloseReason::kLocalClose); return;
      case Reply::kBadV0Header: out.append("\x07garbage"); break;
    }
    answered = true;
    stream_->write(out, false);
    echo();
  }
  void echo() {
    if (!answered || stream_ == nullptr) return;
    echoed += in_.toString();
    bool end = received_end && !sent_end_;
    if (in_.empty() && !end) return;
    sent_end_ = sent_end_ || end;
    stream_->write(in_, end);
  }

  event::Loop& loop_;
  Reply reply_;
  uint64_t delay_;
  BufferChain rest_;
  std::unique_ptr<event::Timer> split_timer_;
  event::Timer timer_;
  std::unique_ptr<TcpListener> listener_;
  StreamPtr stream_;
  BufferChain in_;
  bool sent_end_ = false;
};

codec::Request makeRequest(uint8_t version, bool want_ip = false) {
  codec::Request r;
  r.version = version;
  EXPECT_TRUE(codec::parseUuid("a684455c-b14f-11ea-bf0d-42010aaa0003", r.uuid));
  r.command = codec::Command::kTcp;
  r.target = codec::Address::fromDomain("example.com", 443);
  r.want_ip = want_ip;
  return r;
}

std::unique_ptr<VlessClientStream> dial(event::Loop& loop, uint16_t port, codec::Request req) {
  return VlessClientStream::create(TcpStream::create(loop, loopback(port)), std::move(req));
}

size_t headerSize(const codec::Request& req) {
  BufferChain h;
  codec::encodeRequest(req, h);
  return h.size();
}

TEST(VlessClientStream, V0HeaderMergedWithFirstWriteAndEcho) {
  event::Loop loop;
  VlessServer server(loop, Reply::kV0Header);
  codec::Request req = makeRequest(0);
  auto client = dial(loop, server.port(), req);
  Endpoint c;
  c.attach(*client);
  client->connect();
  c.payload = "GET / HTTP/1.1\r\n\r\n";
  c.end = false;
  c.pump();  // before connect completes
  ASSERT_TRUE(runUntil(loop, [&] { return c.received == c.payload; }));
  EXPECT_TRUE(c.connected);
  EXPECT_EQ(server.request.version, 0);
  ASSERT_TRUE(server.request.target.has_value());
  EXPECT_EQ(server.request.target->toString(), "example.com:443");
  EXPECT_EQ(server.request.uuid, req.uuid);
  // Header and first payload in one read: one write on our side.
  EXPECT_EQ(server.first_read.size(), headerSize(req) + c.payload.size());
  EXPECT_EQ(server.first_read.substr(server.header_len), c.payload);
  EXPECT_FALSE(client->dialledIp().has_value());

  BufferChain end;
  client->write(end, true);
  ASSERT_TRUE(runUntil(loop, [&] { return c.closes == 1; }));
  EXPECT_TRUE(c.eof);
}

TEST(VlessClientStream, V1WritesFromOnConnectedAreMerged) {
  event::Loop loop;
  VlessServer server(loop, Reply::kNone);
  codec::Request req = makeRequest(1);
  auto client = dial(loop, server.port(), req);
  Endpoint c;
  c.attach(*client);
  c.payload = "first bytes";
  c.end = false;
  Endpoint* cp = &c;
  c.on_connected = [cp] { cp->pump(); };
  client->connect();
  ASSERT_TRUE(runUntil(loop, [&] { return c.received == c.payload; }));
  EXPECT_EQ(server.request.version, 1);
  EXPECT_EQ(server.first_read.size(), headerSize(req) + c.payload.size());
}

TEST(VlessClientStream, V1HeaderAloneWhenNothingWritten) {
  event::Loop loop;
  VlessServer server(loop, Reply::kNone);
  codec::Request req = makeRequest(1);
  auto client = dial(loop, server.port(), req);
  Endpoint c;
  c.attach(*client);
  client->connect();
  ASSERT_TRUE(runUntil(loop, [&] { return server.parsed; }));
  EXPECT_EQ(server.first_read.size(), headerSize(req));
  BufferChain later;
  later.append("later");
  client->write(later, false);
  ASSERT_TRUE(runUntil(loop, [&] { return c.received == "later"; }));
}

TEST(VlessClientStream, V1WantIpConnectsOnPrefix) {
  event::Loop loop;
  VlessServer server(loop, Reply::kWantIp, /*reply_delay_ms=*/50);
  codec::Request req = makeRequest(1, /*want_ip=*/true);
  auto client = dial(loop, server.port(), req);
  Endpoint c;
  c.attach(*client);
  client->connect();  // header goes out at connect, even with no payload
  ASSERT_TRUE(runUntil(loop, [&] { return server.parsed; }));
  EXPECT_TRUE(server.request.want_ip);
  EXPECT_FALSE(c.connected);  // the TCP is up but the server has not dialled yet
  ASSERT_TRUE(runUntil(loop, [&] { return c.connected; }));
  ASSERT_TRUE(client->dialledIp().has_value());
  EXPECT_EQ(client->dialledIp()->hostString(), "127.0.0.1");
  c.payload = pattern(1 << 20, 5);
  c.pump();
  ASSERT_TRUE(runUntil(
      loop, [&] { return c.closes == 1; }, 30000));
  EXPECT_TRUE(c.eof);
  EXPECT_TRUE(c.received == c.payload) << c.received.size();
}

TEST(VlessClientStream, V1WantIpCloseBeforePrefixIsDialFailure) {
  event::Loop loop;
  VlessServer server(loop, Reply::kCloseAfterHeader);
  auto client = dial(loop, server.port(), makeRequest(1, true));
  Endpoint c;
  c.attach(*client);
  client->connect();
  c.payload = "x";
  c.end = false;
  c.pump();
  ASSERT_TRUE(runUntil(loop, [&] { return c.closes == 1; }));
  EXPECT_EQ(c.reason, CloseReason::kConnectFailed) << closeReasonName(c.reason) << " " << c.detail;
  EXPECT_FALSE(c.connected);
}

TEST(VlessClientStream, V0BadResponseIsProtocolError) {
  event::Loop loop;
  VlessServer server(loop, Reply::kBadV0Header);
  auto client = dial(loop, server.port(), makeRequest(0));
  Endpoint c;
  c.attach(*client);
  client->connect();
  c.payload = "x";
  c.end = false;
  c.pump();
  ASSERT_TRUE(runUntil(loop, [&] { return c.closes == 1; }));
  EXPECT_EQ(c.reason, CloseReason::kProtocolError);
  EXPECT_TRUE(c.received.empty());
}

TEST(VlessClientStream, V0ResponseHeaderInPieces) {
  event::Loop loop;
  VlessServer server(loop, Reply::kV0HeaderSplit);
  auto client = dial(loop, server.port(), makeRequest(0));
  Endpoint c;
  c.attach(*client);
  client->connect();
  c.payload = "abc";
  c.end = false;
  c.pump();
  ASSERT_TRUE(runUntil(loop, [&] { return c.received == "abc"; }));
  EXPECT_EQ(c.closes, 0);
}

TEST(VlessClientStream, V0OverTlsHalfClose) {
  event::Loop loop;
  const std::string dir = VT_TEST_DATA_DIR "/tls/";
  tls::TlsOptions so;
  so.role = tls::Role::kServer;
  so.cert_file = dir + "server.pem";
  so.key_file = dir + "server.key";
  auto sctx = tls::TlsContext::create(so);
  ASSERT_TRUE(sctx.ok()) << sctx.error().toString();
  tls::TlsOptions co;
  co.server_name = "localhost";
  co.ca_file = dir + "ca.pem";
  auto cctx = tls::TlsContext::create(co);
  ASSERT_TRUE(cctx.ok()) << cctx.error().toString();

  VlessServer server(loop, Reply::kV0Header, 0, sctx.value());
  codec::Request req = makeRequest(0);
  auto client = VlessClientStream::create(
      TlsStream::create(TcpStream::create(loop, loopback(server.port())), cctx.value()), req);
  Endpoint c;
  c.attach(*client);
  client->connect();
  c.payload = pattern(2 << 20, 9);
  c.pump();  // the first 64 KiB chunk rides with the header
  ASSERT_TRUE(runUntil(
      loop, [&] { return c.closes == 1; }, 30000))
      << "got " << c.received.size() << " eof " << c.eof;
  EXPECT_TRUE(c.eof);
  EXPECT_TRUE(server.received_end);
  EXPECT_TRUE(c.received == c.payload) << c.received.size();
  // The header and the first payload bytes are contiguous in the first
  // decrypted read (one TLS record carries the header and its follower).
  ASSERT_GT(server.first_read.size(), headerSize(req));
  EXPECT_EQ(server.first_read.substr(server.header_len),
            c.payload.substr(0, server.first_read.size() - server.header_len));
}

// ---- connection reuse (TLV 0x07) against the real vless-server ----------

// The test's TLS contexts (certificates in tests/data/tls).
std::shared_ptr<tls::TlsContext> tlsContext(tls::Role role) {
  const std::string dir = VT_TEST_DATA_DIR "/tls/";
  tls::TlsOptions o;
  o.role = role;
  if (role == tls::Role::kServer) {
    o.cert_file = dir + "server.pem";
    o.key_file = dir + "server.key";
  } else {
    o.server_name = "localhost";
    o.ca_file = dir + "ca.pem";
  }
  auto r = tls::TlsContext::create(o);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().toString());
  return r.ok() ? std::move(r).value() : nullptr;
}

// vless-server (user makeRequest's UUID) and an echo target (mirrors
// end_stream) on the test's loop.
class ReuseWorld {
 public:
  ReuseWorld(event::Loop& loop, std::shared_ptr<tls::TlsContext> tls) : loop_(loop) {
    config::ServerConfig cfg;
    cfg.log_level = LogLevel::kWarn;
    cfg.listen = {config::HostPort{"127.0.0.1", 0, true}};
    cfg.users = {config::ServerUser{"alice", makeRequest(1).uuid}};
    // The targets are on loopback, which the server refuses by default.
    cfg.egress.allow = {*IpPrefix::parse("127.0.0.0/8"), *IpPrefix::parse("::1")};
    server_ = std::make_unique<server::Server>(loop, cfg, std::move(tls));
    EXPECT_TRUE(server_->start().ok());
    auto l = TcpListener::listen(loop, loopback(), [this](std::unique_ptr<TcpStream> s) {
      auto e = std::make_unique<Echo>();
      e->s = std::move(s);
      e->s->setCallbacks(*e);
      echoes_.push_back(std::move(e));
    });
    EXPECT_TRUE(l.ok());
    echo_listener_ = std::move(l.value());
  }
  ~ReuseWorld() {
    server_->stop();
    runUntil(loop_, [this] { return server_->sessionCount() == 0; });
    echoes_.clear();
  }
  server::Server& server() { return *server_; }
  uint16_t serverPort() const { return server_->localAddresses().at(0).port(); }
  size_t echoConnections() const { return echoes_.size(); }
  // A TCP request to the echo, chunked.
  codec::Request request(bool want_ip = false) const {
    codec::Request r = makeRequest(1, want_ip);
    r.target = codec::Address::ipv4(0x7f000001, echo_listener_->localAddress().port());
    r.reuse = true;
    return r;
  }

 private:
  struct Echo final : StreamCallbacks {
    std::unique_ptr<TcpStream> s;
    void onData(BufferChain& data, bool end_stream) override { s->write(data, end_stream); }
    void onClose(CloseReason, const std::string&) override {}
  };
  event::Loop& loop_;
  std::unique_ptr<server::Server> server_;
  std::unique_ptr<TcpListener> echo_listener_;
  std::vector<std::unique_ptr<Echo>> echoes_;
};

// Holds a released connection the way the pool does: nothing may arrive
// while it is idle.
struct Idle final : StreamCallbacks {
  StreamPtr stream;
  int events = 0;
  void onData(BufferChain& data, bool) override {
    ++events;
    data.clear();
  }
  void onClose(CloseReason, const std::string&) override { ++events; }
  VlessClientStream::ReleaseFn release() {
    return [this](StreamPtr s) {
      stream = std::move(s);
      stream->setCallbacks(*this);
    };
  }
};

TEST(VlessClientStream, ReuseReleasesTheConnectionToTheNextFlow) {
  event::Loop loop;
  auto sctx = tlsContext(tls::Role::kServer);
  auto cctx = tlsContext(tls::Role::kClient);
  ASSERT_TRUE(sctx && cctx);
  ReuseWorld world(loop, sctx);
  Idle idle;
  auto first = VlessClientStream::create(
      TlsStream::create(TcpStream::create(loop, loopback(world.serverPort())), cctx),
      world.request());
  first->setRelease(idle.release());
  Endpoint c;
  c.attach(*first);
  first->connect();
  c.payload = pattern(200 * 1024, 3);  // several chunks each way
  c.pump();                            // the last write carries our end
  ASSERT_TRUE(runUntil(loop, [&] { return c.eof; }));
  EXPECT_TRUE(c.received == c.payload) << c.received.size();
  EXPECT_EQ(c.closes, 0);
  EXPECT_EQ(idle.stream, nullptr);
  first->close(CloseReason::kLocalClose);  // both ends done: released
  EXPECT_EQ(c.closes, 1);
  EXPECT_EQ(c.reason, CloseReason::kLocalClose);
  ASSERT_NE(idle.stream, nullptr);
  // The server ends the flow and waits for the next request, silently.
  ASSERT_TRUE(runUntil(loop, [&] { return world.server().sessionCount() == 1; }));
  runUntil(loop, [] { return false; }, 50);
  EXPECT_EQ(idle.events, 0);

  // The second flow: want_ip this time, over the same TLS connection.
  auto second = VlessClientStream::createPooled(std::move(idle.stream), world.request(true));
  EXPECT_TRUE(second->pooled());
  second->setRelease(idle.release());
  Endpoint c2;
  c2.attach(*second);
  second->connect();  // the header goes at once: no handshake to wait for
  c2.payload = "second flow";
  c2.pump();
  ASSERT_TRUE(runUntil(loop, [&] { return c2.eof; }));
  EXPECT_TRUE(c2.connected);
  EXPECT_EQ(c2.received, "second flow");
  ASSERT_TRUE(second->dialledIp().has_value());
  EXPECT_EQ(second->dialledIp()->hostString(), "127.0.0.1");
  second->close(CloseReason::kLocalClose);
  ASSERT_NE(idle.stream, nullptr);
  EXPECT_EQ(world.server().sessionCount(), 1u);  // one connection for both flows
  EXPECT_EQ(world.echoConnections(), 2u);
  idle.stream->close(CloseReason::kLocalClose);
  EXPECT_TRUE(runUntil(loop, [&] { return world.server().sessionCount() == 0; }));
}

TEST(VlessClientStream, ReuseNotReleasedUnlessBothEndedAndClosedCleanly) {
  event::Loop loop;
  ReuseWorld world(loop, nullptr);
  struct Case {
    const char* name;
    bool our_end;        // we write the end chunk
    bool wait;           // for the echo (and its end chunk after ours)
    CloseReason reason;  // how we close
  };
  // "our end only": closed at once, before the server's answer.
  for (const Case& k : {Case{"reset after both ends", true, true, CloseReason::kReset},
                        Case{"our end only", true, false, CloseReason::kLocalClose},
                        Case{"no end at all", false, true, CloseReason::kLocalClose}}) {
    SCOPED_TRACE(k.name);
    Idle idle;
    auto s = VlessClientStream::create(TcpStream::create(loop, loopback(world.serverPort())),
                                       world.request());
    s->setRelease(idle.release());
    Endpoint c;
    c.attach(*s);
    s->connect();
    c.payload = "x";
    c.end = k.our_end;
    c.pump();
    if (k.wait) {
      ASSERT_TRUE(runUntil(loop, [&] { return c.received == "x" && c.eof == k.our_end; }));
    }
    s->close(k.reason);
    EXPECT_EQ(idle.stream, nullptr);
    EXPECT_EQ(c.closes, 1);
    // The inner connection is closed: so is the server's session.
    EXPECT_TRUE(runUntil(loop, [&] { return world.server().sessionCount() == 0; }));
  }
}

TEST(VlessClientStream, ReuseServerClosingMidFlowEndsItUnreusable) {
  // The dial fails (a closed port): the server closes the connection
  // without an end chunk. The flow sees its end, the connection is not
  // released.
  event::Loop loop;
  ReuseWorld world(loop, nullptr);
  uint16_t dead;
  {
    auto l = TcpListener::listen(loop, loopback(), [](std::unique_ptr<TcpStream>) {});
    ASSERT_TRUE(l.ok());
    dead = l.value()->localAddress().port();
  }
  codec::Request req = world.request();
  req.target = codec::Address::ipv4(0x7f000001, dead);
  Idle idle;
  auto s = VlessClientStream::create(TcpStream::create(loop, loopback(world.serverPort())), req);
  s->setRelease(idle.release());
  Endpoint c;
  c.attach(*s);
  s->connect();
  c.payload = "lost";
  c.pump();
  ASSERT_TRUE(runUntil(loop, [&] { return c.eof || c.closes > 0; }));
  EXPECT_EQ(c.received, "");
  s->close(CloseReason::kLocalClose);
  EXPECT_EQ(idle.stream, nullptr);
}

TEST(VlessClientStream, ReuseBytesAfterTheServersEndChunkAreAProtocolError) {
  // A server that breaks the rule (the real one never does): a byte after
  // its end chunk. The connection is not fit for another flow.
  event::Loop loop;
  StreamPtr accepted;
  struct Talker final : StreamCallbacks {
    Stream* s = nullptr;
    bool answered = false;
    void onData(BufferChain& data, bool) override {
      data.clear();
      if (answered) return;
      answered = true;
      BufferChain out;
      out.append(std::string("\x00\x02hi\x00\x00z", 7));
      s->write(out, false);
    }
    void onClose(CloseReason, const std::string&) override {}
  } talker;
  auto l = TcpListener::listen(loop, loopback(), [&](std::unique_ptr<TcpStream> s) {
    talker.s = s.get();
    s->setCallbacks(talker);
    accepted = std::move(s);
  });
  ASSERT_TRUE(l.ok());
  codec::Request req = makeRequest(1);
  req.reuse = true;
  Idle idle;
  auto s = VlessClientStream::create(
      TcpStream::create(loop, loopback(l.value()->localAddress().port())), req);
  s->setRelease(idle.release());
  Endpoint c;
  c.attach(*s);
  s->connect();
  c.payload = "q";
  c.pump();
  ASSERT_TRUE(runUntil(loop, [&] { return c.closes == 1; }));
  EXPECT_EQ(c.reason, CloseReason::kProtocolError) << closeReasonName(c.reason) << " " << c.detail;
  EXPECT_EQ(idle.stream, nullptr);
}

}  // namespace
}  // namespace vt::stream
