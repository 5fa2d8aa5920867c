#include "stream/tls_stream.h"

#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "stream/tcp_stream.h"
#include "stream_test_util.h"

namespace vt::stream {
namespace {

using testing::Endpoint;
using testing::pattern;
using testing::runUntil;

const std::string kDataDir = VT_TEST_DATA_DIR "/tls/";
const char* kServerName = "test.vless-tun.internal";

event::SocketAddress loopback(uint16_t port = 0) {
  return event::SocketAddress::ipv4(0x7f000001, port);
}

std::shared_ptr<tls::TlsContext> serverContext() {
  tls::TlsOptions o;
  o.role = tls::Role::kServer;
  o.cert_file = kDataDir + "server.pem";
  o.key_file = kDataDir + "server.key";
  o.alpn = {"h2", "http/1.1"};
  auto ctx = tls::TlsContext::create(o);
  EXPECT_TRUE(ctx.ok()) << ctx.error().toString();
  return ctx.ok() ? ctx.value() : nullptr;
}

std::shared_ptr<tls::TlsContext> clientContext(const std::string& ca = "ca.pem") {
  tls::TlsOptions o;
  o.role = tls::Role::kClient;
  o.server_name = kServerName;
  o.ca_file = kDataDir + ca;
  o.alpn = {"http/1.1"};
  auto ctx = tls::TlsContext::create(o);
  EXPECT_TRUE(ctx.ok()) << ctx.error().toString();
  return ctx.ok() ? ctx.value() : nullptr;
}

// TLS server on loopback; every accepted connection gets an Endpoint.
struct TlsServer {
  TlsServer(event::Loop& loop, std::function<void(Endpoint&)> setup = {})
      : setup_(std::move(setup)) {
    ctx = serverContext();
    auto l = TcpListener::listen(loop, loopback(), [this](std::unique_ptr<TcpStream> tcp) {
      auto s = TlsStream::create(std::move(tcp), ctx);
      auto ep = std::make_unique<Endpoint>();
      if (setup_) setup_(*ep);
      ep->attach(*s);
      Endpoint* raw = ep.get();
      ep->on_connected = [raw] { raw->pump(); };
      s->startServer();
      streams.push_back(std::move(s));
      endpoints.push_back(std::move(ep));
    });
    EXPECT_TRUE(l.ok());
    listener = std::move(l.value());
  }
  uint16_t port() const { return listener->localAddress().port(); }

  std::function<void(Endpoint&)> setup_;
  std::shared_ptr<tls::TlsContext> ctx;
  std::unique_ptr<TcpListener> listener;
  std::vector<std::unique_ptr<TlsStream>> streams;
  std::vector<std::unique_ptr<Endpoint>> endpoints;
};

std::unique_ptr<TlsStream> dial(event::Loop& loop, uint16_t port,
                                std::shared_ptr<tls::TlsContext> ctx = clientContext()) {
  return TlsStream::create(TcpStream::create(loop, loopback(port)), std::move(ctx));
}

TEST(TlsStream, EchoSniAlpn) {
  event::Loop loop;
  TlsServer server(loop, [](Endpoint& ep) {
    ep.on_data = [&ep](BufferChain& data, bool end) { ep.stream->write(data, end); };
  });
  auto client = dial(loop, server.port());
  Endpoint c;
  c.attach(*client);
  c.payload = "hello over tls";
  c.end = false;
  client->connect();
  c.pump();  // before the handshake: queued, sent after it
  EXPECT_FALSE(c.connected);
  ASSERT_TRUE(runUntil(loop, [&] { return c.received == "hello over tls"; }));
  EXPECT_TRUE(c.connected);
  EXPECT_TRUE(client->handshakeDone());
  EXPECT_EQ(client->alpn(), "http/1.1");
  EXPECT_EQ(client->sni(), kServerName);
  ASSERT_EQ(server.streams.size(), 1u);
  EXPECT_TRUE(server.endpoints[0]->connected);
  EXPECT_EQ(server.streams[0]->sni(), kServerName);
  EXPECT_EQ(server.streams[0]->alpn(), "http/1.1");
  EXPECT_FALSE(client->version().empty());

  BufferChain bye;
  bye.append("!");
  client->write(bye, true);  // close_notify; the echo mirrors it
  ASSERT_TRUE(runUntil(loop, [&] { return c.closes == 1; }));
  EXPECT_TRUE(c.eof);
  EXPECT_EQ(c.received, "hello over tls!");
  EXPECT_EQ(c.after_close_events, 0);
}

TEST(TlsStream, FourMegabytesEachWayWithHalfClose) {
  event::Loop loop;
  const std::string up = pattern(4 << 20, 11);
  const std::string down = pattern(4 << 20, 12);
  TlsServer server(loop, [&](Endpoint& ep) { ep.payload = down; });
  auto client = dial(loop, server.port());
  Endpoint c;
  c.attach(*client);
  c.payload = up;
  client->connect();
  c.pump();
  ASSERT_TRUE(runUntil(
      loop,
      [&] {
        return c.closes == 1 && !server.endpoints.empty() && server.endpoints[0]->closes == 1;
      },
      20000))
      << "client got " << c.received.size() << " eof " << c.eof << " closes " << c.closes
      << " sent " << c.sent << " above " << c.above << " below " << c.below << " buffered "
      << client->bufferedBytes() << "; server got " << server.endpoints[0]->received.size()
      << " eof " << server.endpoints[0]->eof << " sent " << server.endpoints[0]->sent << " above "
      << server.endpoints[0]->above << " buffered " << server.streams[0]->bufferedBytes();
  Endpoint& s = *server.endpoints[0];
  EXPECT_TRUE(c.eof);
  EXPECT_TRUE(s.eof);
  EXPECT_TRUE(c.received == down) << c.received.size();
  EXPECT_TRUE(s.received == up) << s.received.size();
  EXPECT_EQ(c.above, c.below);
}

// A peer whose TCP connection ends without close_notify (killed, or the
// connection cut by someone else) must not look like a finished transfer:
// the bytes that arrived are delivered, then the stream resets.
TEST(TlsStream, EofWithoutCloseNotifyIsAReset) {
  event::Loop loop;
  TlsServer server(loop, [](Endpoint& ep) {
    ep.on_data = [&ep](BufferChain& data, bool) {
      auto* tls = static_cast<TlsStream*>(ep.stream);
      tls->write(data, false);
      // Then a bare TCP FIN, below TLS: no close_notify.
      BufferChain none;
      tls->inner().write(none, true);
    };
  });
  auto client = dial(loop, server.port());
  Endpoint c;
  c.attach(*client);
  c.payload = "partial";
  c.end = false;
  client->connect();
  c.pump();
  ASSERT_TRUE(runUntil(loop, [&] { return c.closes == 1; }));
  EXPECT_EQ(c.received, "partial");
  EXPECT_FALSE(c.eof) << "a truncation must not be reported as a clean end";
  EXPECT_EQ(c.reason, CloseReason::kReset);
}

TEST(TlsStream, HalfCloseThenReply) {
  event::Loop loop;
  TlsServer server(loop, [](Endpoint& ep) {
    ep.on_data = [&ep](BufferChain& data, bool end) {
      ep.received += data.toString();
      data.drain(data.size());
      if (end) {
        BufferChain reply;
        reply.append("got " + ep.received);
        ep.stream->write(reply, true);
      }
    };
  });
  auto client = dial(loop, server.port());
  Endpoint c;
  c.attach(*client);
  c.payload = "question";
  client->connect();
  c.pump();
  ASSERT_TRUE(runUntil(loop, [&] { return c.closes == 1; }));
  EXPECT_EQ(c.received, "got question");
  EXPECT_TRUE(c.eof);
}

TEST(TlsStream, UntrustedCertificateFails) {
  event::Loop loop;
  TlsServer server(loop);
  auto client = dial(loop, server.port(), clientContext("other-ca.pem"));
  Endpoint c;
  c.attach(*client);
  client->connect();
  ASSERT_TRUE(runUntil(loop, [&] { return c.closes == 1; }));
  EXPECT_EQ(c.reason, CloseReason::kTlsError);
  EXPECT_FALSE(c.connected);
  EXPECT_FALSE(c.detail.empty());
}

TEST(TlsStream, ConnectRefused) {
  event::Loop loop;
  uint16_t port;
  {
    auto l = TcpListener::listen(loop, loopback(), [](auto) {});
    port = l.value()->localAddress().port();
  }
  auto client = dial(loop, port);
  Endpoint c;
  c.attach(*client);
  client->connect();
  EXPECT_EQ(c.closes, 0);
  ASSERT_TRUE(runUntil(loop, [&] { return c.closes == 1; }));
  EXPECT_EQ(c.reason, CloseReason::kConnectFailed);
}

TEST(TlsStream, ReadDisableHoldsData) {
  event::Loop loop;
  TlsServer server(loop, [](Endpoint& ep) {
    ep.payload = "pushed";
    ep.end = false;
  });
  auto client = dial(loop, server.port());
  Endpoint c;
  c.attach(*client);
  client->connect();
  ASSERT_TRUE(runUntil(loop, [&] { return c.connected; }));
  client->readDisable(true);
  event::Timer wait(loop);
  bool waited = false;
  wait.start(50, [&] { waited = true; });
  ASSERT_TRUE(runUntil(loop, [&] { return waited; }));
  EXPECT_TRUE(c.received.empty());
  client->readDisable(false);
  ASSERT_TRUE(runUntil(loop, [&] { return c.received == "pushed"; }));
  client->close(CloseReason::kLocalClose);
  client->close(CloseReason::kLocalClose);
  EXPECT_EQ(c.closes, 1);
  // Our abortive close reaches the server as an end of its input (its own
  // direction stays open until it ends it).
  ASSERT_TRUE(
      runUntil(loop, [&] { return server.endpoints[0]->eof || server.endpoints[0]->closes; }));
}

}  // namespace
}  // namespace vt::stream
