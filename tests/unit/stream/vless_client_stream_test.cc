#include "stream/vless_client_stream.h"

#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "event/timer.h"
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

}  // namespace
}  // namespace vt::stream
