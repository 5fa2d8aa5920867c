// WsStream over real loopback TCP (and TLS): a client and a server
// WsStream, or one of them against a raw TCP peer that speaks hand-built
// bytes.
#include "stream/ws_stream.h"

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <vector>

#include "codec/websocket.h"
#include "stream/tcp_stream.h"
#include "stream/tls_stream.h"
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

std::shared_ptr<tls::TlsContext> tlsContext(tls::Role role) {
  tls::TlsOptions o;
  o.role = role;
  if (role == tls::Role::kServer) {
    o.cert_file = kDataDir + "server.pem";
    o.key_file = kDataDir + "server.key";
  } else {
    o.server_name = kServerName;
    o.ca_file = kDataDir + "ca.pem";
  }
  auto ctx = tls::TlsContext::create(o);
  EXPECT_TRUE(ctx.ok()) << ctx.error().toString();
  return ctx.ok() ? ctx.value() : nullptr;
}

bool cleanClose(CloseReason r) {
  return r == CloseReason::kLocalClose || r == CloseReason::kRemoteClose;
}

// WebSocket server on loopback (over TLS with `tls`); every accepted
// connection gets an Endpoint that pumps its payload once connected.
struct WsServer {
  WsServer(event::Loop& loop, WsServerOptions opts, std::function<void(Endpoint&)> setup = {},
           bool tls = false)
      : setup_(std::move(setup)) {
    if (tls) ctx = tlsContext(tls::Role::kServer);
    auto l = TcpListener::listen(loop, loopback(), [this, opts](std::unique_ptr<TcpStream> tcp) {
      StreamPtr inner = std::move(tcp);
      TlsStream* tls_raw = nullptr;
      if (ctx) {
        auto t = TlsStream::create(std::move(inner), ctx);
        tls_raw = t.get();
        inner = std::move(t);
      }
      auto s = WsStream::createServer(std::move(inner), opts);
      auto ep = std::make_unique<Endpoint>();
      ep->attach(*s);
      Endpoint* raw = ep.get();
      ep->on_connected = [raw] { raw->pump(); };
      if (setup_) setup_(*ep);
      if (tls_raw != nullptr) tls_raw->startServer();
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
  std::vector<std::unique_ptr<WsStream>> streams;
  std::vector<std::unique_ptr<Endpoint>> endpoints;
};

std::unique_ptr<WsStream> dial(event::Loop& loop, uint16_t port, WsClientOptions o = {},
                               bool tls = false, Watermarks wm = {}) {
  StreamPtr inner = TcpStream::create(loop, loopback(port));
  if (tls) inner = TlsStream::create(std::move(inner), tlsContext(tls::Role::kClient));
  if (o.host.empty()) o.host = kServerName;
  return WsStream::createClient(std::move(inner), std::move(o), wm);
}

// A raw TCP connection to `port`, recording what it receives.
struct RawClient {
  RawClient(event::Loop& loop, uint16_t port) : tcp(TcpStream::create(loop, loopback(port))) {
    ep.attach(*tcp);
    tcp->connect();
  }
  void send(const std::string& bytes, bool end = false) {
    BufferChain c;
    c.append(bytes);
    tcp->write(c, end);
  }
  std::unique_ptr<TcpStream> tcp;
  Endpoint ep;
};

// A hand-built frame; `mask` true masks with key 1,2,3,4. `len` overrides
// the length field (the payload sent stays as given).
std::string rawFrame(uint8_t first_byte, const std::string& payload, bool mask,
                     std::optional<uint64_t> len = std::nullopt) {
  uint64_t n = len.value_or(payload.size());
  std::string f(1, static_cast<char>(first_byte));
  uint8_t m = mask ? 0x80 : 0;
  if (n < 126) {
    f += static_cast<char>(m | n);
  } else if (n <= 0xffff) {
    f += static_cast<char>(m | 126);
    f += static_cast<char>(n >> 8);
    f += static_cast<char>(n & 0xff);
  } else {
    f += static_cast<char>(m | 127);
    for (int i = 7; i >= 0; --i) f += static_cast<char>((n >> (8 * i)) & 0xff);
  }
  const uint8_t key[4] = {1, 2, 3, 4};
  if (mask) f.append(reinterpret_cast<const char*>(key), 4);
  for (size_t i = 0; i < payload.size(); ++i) {
    f += static_cast<char>(static_cast<uint8_t>(payload[i]) ^ (mask ? key[i % 4] : 0));
  }
  return f;
}

// The upgrade request a client would send (fixed key), and that key.
std::string upgradeRequest(const std::string& path, std::string* key_b64 = nullptr) {
  codec::WsClientRequest req;
  req.path = path;
  req.host = kServerName;
  for (size_t i = 0; i < req.key.size(); ++i) req.key[i] = static_cast<uint8_t>(i * 7);
  BufferChain out;
  EXPECT_TRUE(codec::encodeWsRequest(req, out).ok());
  if (key_b64 != nullptr) *key_b64 = codec::base64Encode(req.key.data(), req.key.size());
  return out.toString();
}

// The frames a raw peer received after the 101 head, decoded as a client.
std::vector<codec::WsFrame> framesAfterHead(const std::string& received) {
  std::vector<codec::WsFrame> frames;
  size_t head_end = received.find("\r\n\r\n");
  EXPECT_NE(head_end, std::string::npos);
  if (head_end == std::string::npos) return frames;
  BufferChain in;
  in.append(received.substr(head_end + 4));
  codec::WsFrameDecoder dec(codec::WsDecoderOptions{codec::WsRole::kClient, 1 << 20, false});
  for (;;) {
    auto r = dec.decode(in);
    EXPECT_TRUE(r.ok()) << r.error().message;
    if (!r.ok() || !r.value()) break;
    frames.push_back(std::move(*r.value()));
  }
  return frames;
}

void transferBothWays(bool tls) {
  event::Loop loop;
  const std::string up = pattern(4 << 20, 21);
  const std::string down = pattern(4 << 20, 22);
  WsServer server(
      loop, WsServerOptions{"/ws", "", codec::kWsDefaultMaxMessage},
      [&](Endpoint& ep) { ep.payload = down; }, tls);
  WsClientOptions o;
  o.path = "/ws?ed=2048";
  o.early_data = 2048;
  auto client = dial(loop, server.port(), o, tls);
  Endpoint c;
  c.attach(*client);
  c.payload = up;
  client->connect();
  c.pump();  // before the upgrade: queued (up to the watermark), the start as early data
  EXPECT_FALSE(c.connected);
  ASSERT_TRUE(runUntil(
      loop,
      [&] {
        return c.closes == 1 && !server.endpoints.empty() && server.endpoints[0]->closes == 1;
      },
      30000))
      << "client got " << c.received.size() << " eof " << c.eof << " closes " << c.closes
      << " sent " << c.sent << " above " << c.above << " below " << c.below;
  Endpoint& s = *server.endpoints[0];
  EXPECT_TRUE(c.connected);
  EXPECT_TRUE(s.connected);
  EXPECT_TRUE(c.eof);
  EXPECT_TRUE(s.eof);
  EXPECT_TRUE(c.received == down) << c.received.size();
  EXPECT_TRUE(s.received == up) << s.received.size();
  EXPECT_TRUE(cleanClose(c.reason)) << closeReasonName(c.reason) << " " << c.detail;
  EXPECT_TRUE(cleanClose(s.reason)) << closeReasonName(s.reason) << " " << s.detail;
  EXPECT_EQ(c.after_close_events, 0);
  EXPECT_EQ(s.after_close_events, 0);
  EXPECT_EQ(c.above, c.below);
  EXPECT_FALSE(server.streams[0]->passthrough());
  EXPECT_EQ(server.streams[0]->path(), "/ws?ed=2048");
  EXPECT_EQ(server.streams[0]->host(), kServerName);
}

TEST(WsStream, FourMegabytesEachWayWithHalfClose) {
  transferBothWays(false);
}

TEST(WsStream, FourMegabytesEachWayOverTls) {
  transferBothWays(true);
}

// One side ends first; the other keeps sending until it is done, then both
// close cleanly (our half-close convention: the close is answered when
// our own direction ends).
TEST(WsStream, HalfCloseThenReply) {
  event::Loop loop;
  WsClientOptions half_close;
  half_close.close_on_end = true;  // vless-tun to vless-server
  WsServer server(loop, WsServerOptions{}, [](Endpoint& ep) {
    ep.on_data = [&ep](BufferChain& data, bool end) {
      ep.received += data.toString();
      data.clear();
      if (end) {
        BufferChain reply;
        reply.append("got " + ep.received);
        ep.stream->write(reply, false);
        BufferChain more;
        more.append(" and more");
        ep.stream->write(more, true);
      }
    };
  });
  auto client = dial(loop, server.port(), half_close);
  Endpoint c;
  c.attach(*client);
  c.payload = "question";
  client->connect();
  c.pump();
  ASSERT_TRUE(runUntil(loop, [&] { return c.closes == 1 && server.endpoints[0]->closes == 1; }));
  EXPECT_EQ(c.received, "got question and more");
  EXPECT_TRUE(c.eof);
  EXPECT_TRUE(cleanClose(c.reason)) << c.detail;
  EXPECT_TRUE(cleanClose(server.endpoints[0]->reason)) << server.endpoints[0]->detail;
}

// Early data: the first bytes travel in the request and arrive first.
void earlyDataCase(size_t early_data, size_t queued, size_t expect_first) {
  SCOPED_TRACE("early_data " + std::to_string(early_data) + " queued " + std::to_string(queued));
  event::Loop loop;
  std::vector<std::string> chunks;
  WsServer server(loop, WsServerOptions{"/ed", "", codec::kWsDefaultMaxMessage}, [&](Endpoint& ep) {
    ep.on_data = [&](BufferChain& data, bool) {
      chunks.push_back(data.toString());
      ep.received += chunks.back();
      data.clear();
    };
  });
  WsClientOptions o;
  o.path = "/ed";
  o.early_data = early_data;
  auto client = dial(loop, server.port(), o);
  Endpoint c;
  c.attach(*client);
  const std::string first = pattern(queued, 3);
  c.payload = first;
  c.end = false;
  client->connect();
  c.pump();
  ASSERT_TRUE(runUntil(loop, [&] { return c.connected; }));
  BufferChain later;
  later.append("later");
  client->write(later, false);
  ASSERT_TRUE(runUntil(loop, [&] {
    return !server.endpoints.empty() && server.endpoints[0]->received.size() == queued + 5;
  }));
  EXPECT_EQ(server.endpoints[0]->received, first + "later");
  ASSERT_FALSE(chunks.empty());
  EXPECT_EQ(chunks[0].size(), expect_first);
  client->close(CloseReason::kLocalClose);
}

TEST(WsStream, EarlyDataArrivesFirst) {
  earlyDataCase(2048, 100, 100);    // all of what was queued
  earlyDataCase(50, 100, 50);       // the first 50 in the header, the rest as a frame
  earlyDataCase(4096, 3000, 2048);  // capped at kWsMaxEarlyData
  earlyDataCase(0, 100, 100);       // off: all of it as one frame
}

// What the client puts on the wire: Sec-WebSocket-Protocol carries the
// early data, which is not sent again; later writes are masked frames.
void earlyDataOnTheWire(bool echo) {
  SCOPED_TRACE(echo ? "echoed" : "not echoed");
  event::Loop loop;
  const std::string first = pattern(100, 9);
  std::unique_ptr<TcpStream> peer;
  Endpoint raw;
  bool answered = false;
  std::optional<std::vector<uint8_t>> early;
  BufferChain in;
  std::string after_head;
  auto l = TcpListener::listen(loop, loopback(), [&](std::unique_ptr<TcpStream> tcp) {
    peer = std::move(tcp);
    raw.on_data = [&](BufferChain& data, bool) {
      in.moveFrom(data);
      if (answered) return;
      auto r = codec::parseWsRequest(in);
      if (r.status != codec::WsRequestStatus::kDone) return;
      answered = true;
      early = r.request.early_data;
      in.drain(r.consumed);
      BufferChain out;
      codec::encodeWsResponse(r.request.key, echo ? r.request.protocol : "", out);
      out.append(rawFrame(0x82, "from server", false));
      peer->write(out, false);
    };
    raw.attach(*peer);
  });
  ASSERT_TRUE(l.ok());
  WsClientOptions o;
  o.early_data = 2048;
  auto client = dial(loop, l.value()->localAddress().port(), o);
  Endpoint c;
  c.attach(*client);
  c.payload = first;
  c.end = false;
  client->connect();
  c.pump();
  ASSERT_TRUE(runUntil(loop, [&] { return c.received == "from server"; }));
  ASSERT_TRUE(early.has_value());
  EXPECT_EQ(std::string(early->begin(), early->end()), first);
  BufferChain more;
  more.append("more");
  client->write(more, false);
  codec::WsFrameDecoder dec(codec::WsDecoderOptions{});  // server role: masked frames
  std::optional<codec::WsFrame> frame;
  ASSERT_TRUE(runUntil(loop, [&] {
    auto r = dec.decode(in);
    EXPECT_TRUE(r.ok());
    if (r.ok() && r.value()) frame = std::move(*r.value());
    return frame.has_value();
  }));
  EXPECT_EQ(frame->opcode, codec::WsOpcode::kBinary);
  if (echo) {
    EXPECT_EQ(frame->payload.toString(), "more");  // the early bytes were not resent
  } else {
    // Not echoed: the server ignored the header, so the bytes went again,
    // first, as their own frame.
    EXPECT_EQ(frame->payload.toString(), first);
    frame.reset();
    ASSERT_TRUE(runUntil(loop, [&] {
      auto r = dec.decode(in);
      EXPECT_TRUE(r.ok());
      if (r.ok() && r.value()) frame = std::move(*r.value());
      return frame.has_value();
    }));
    EXPECT_EQ(frame->payload.toString(), "more");
  }
}

TEST(WsStream, EarlyDataOnTheWire) { earlyDataOnTheWire(true); }
TEST(WsStream, EarlyDataNotEchoedIsResent) { earlyDataOnTheWire(false); }

// What the server cannot take as its WebSocket goes through unmodified.
void passthroughCase(const std::string& sent, bool end, const std::string& reason_part) {
  SCOPED_TRACE(sent);
  event::Loop loop;
  WsServer server(loop, WsServerOptions{"/ws", "", codec::kWsDefaultMaxMessage}, [](Endpoint& ep) {
    ep.on_data = [&ep](BufferChain& data, bool end_stream) {
      (void)end_stream;
      ep.received += data.toString();
      data.clear();
      if (!ep.received.empty() && ep.sent == 0) {
        ep.sent = 1;
        BufferChain reply;
        reply.append("HTTP/1.1 200 OK\r\n\r\nfallback");
        ep.stream->write(reply, false);
      }
    };
  });
  RawClient raw(loop, server.port());
  raw.send(sent, end);
  ASSERT_TRUE(runUntil(loop, [&] {
    return !server.endpoints.empty() && server.endpoints[0]->received.size() == sent.size() &&
           raw.ep.received.size() == 27;
  }));
  Endpoint& s = *server.endpoints[0];
  EXPECT_EQ(s.received, sent);
  EXPECT_TRUE(s.connected);
  EXPECT_EQ(raw.ep.received, "HTTP/1.1 200 OK\r\n\r\nfallback");  // unframed
  EXPECT_TRUE(server.streams[0]->passthrough());
  EXPECT_NE(server.streams[0]->passthroughReason().find(reason_part), std::string::npos)
      << server.streams[0]->passthroughReason();
  // More bytes both ways, still raw.
  if (!end) {
    raw.send("second");
    ASSERT_TRUE(runUntil(loop, [&] { return s.received == sent + "second"; }));
  }
  BufferChain bye;
  bye.append("bye");
  server.streams[0]->write(bye, true);
  ASSERT_TRUE(runUntil(loop, [&] { return raw.ep.eof; }));
  EXPECT_EQ(raw.ep.received, "HTTP/1.1 200 OK\r\n\r\nfallbackbye");
}

TEST(WsStream, ServerPassthrough) {
  passthroughCase("GET /other HTTP/1.1\r\nHost: x\r\n\r\n", false, "not a WebSocket upgrade");
  passthroughCase(upgradeRequest("/other"), false, "another path");
  passthroughCase("hello\r\n", false, "request line");
  passthroughCase("\x16\x03\x01 binary", false, "control byte");
  passthroughCase("hello", true, "ended inside the request head");
}

TEST(WsStream, ServerPassthroughWrongHost) {
  event::Loop loop;
  WsServer server(loop, WsServerOptions{"", "example.com", codec::kWsDefaultMaxMessage});
  RawClient raw(loop, server.port());
  const std::string req = upgradeRequest("/");
  raw.send(req);
  ASSERT_TRUE(runUntil(
      loop, [&] { return !server.endpoints.empty() && server.endpoints[0]->received == req; }));
  EXPECT_TRUE(server.streams[0]->passthrough());
  EXPECT_NE(server.streams[0]->passthroughReason().find("another host"), std::string::npos);
}

TEST(WsStream, ServerAnswers404) {
  event::Loop loop;
  std::unique_ptr<TcpStream> peer;
  Endpoint raw;
  auto l = TcpListener::listen(loop, loopback(), [&](std::unique_ptr<TcpStream> tcp) {
    peer = std::move(tcp);
    raw.on_data = [&](BufferChain& data, bool) {
      data.clear();
      BufferChain out;
      out.append("HTTP/1.1 404 Not Found\r\n\r\n");
      peer->write(out, true);
    };
    raw.attach(*peer);
  });
  ASSERT_TRUE(l.ok());
  auto client = dial(loop, l.value()->localAddress().port());
  Endpoint c;
  c.attach(*client);
  client->connect();
  ASSERT_TRUE(runUntil(loop, [&] { return c.closes == 1; }));
  EXPECT_FALSE(c.connected);
  EXPECT_EQ(c.reason, CloseReason::kProtocolError);
  EXPECT_NE(c.detail.find("404"), std::string::npos) << c.detail;
}

// A raw peer that upgrades, then sends a hostile frame: only that stream
// closes, after writing the close code back.
TEST(WsStream, HostileFramesCloseOnlyThatStream) {
  event::Loop loop;
  WsServer server(loop, WsServerOptions{"/", "", 1 << 20});
  // A well-behaved client that must survive all of it.
  auto good = dial(loop, server.port());
  Endpoint g;
  g.attach(*good);
  good->connect();
  ASSERT_TRUE(runUntil(loop, [&] { return g.connected; }));

  struct Case {
    const char* name;
    std::string frame;
    uint16_t code;
  };
  const std::string bad_utf8 = std::string("\x03\xe8\xff\xfe", 4);
  const std::vector<Case> cases = {
      {"unmasked frame", rawFrame(0x82, "abc", false), codec::kWsCloseProtocolError},
      {"64-bit length over max_message", rawFrame(0x82, "", true, (1u << 20) + 1),
       codec::kWsCloseTooBig},
      {"126-byte ping", rawFrame(0x89, std::string(126, 'p'), true), codec::kWsCloseProtocolError},
      {"close with bad UTF-8", rawFrame(0x88, bad_utf8, true), codec::kWsCloseInvalidPayload},
      {"text frame", rawFrame(0x81, "text", true), 1003},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(cases[i].name);
    RawClient raw(loop, server.port());
    raw.send(upgradeRequest("/") + cases[i].frame);
    ASSERT_TRUE(runUntil(loop, [&] {
      return server.endpoints.size() == i + 2 && server.endpoints[i + 1]->closes == 1 &&
             (raw.ep.eof || raw.ep.closes);
    }));
    Endpoint& s = *server.endpoints[i + 1];
    EXPECT_EQ(s.reason, CloseReason::kProtocolError);
    EXPECT_NE(s.detail.find("websocket"), std::string::npos) << s.detail;
    auto frames = framesAfterHead(raw.ep.received);
    ASSERT_EQ(frames.size(), 1u) << raw.ep.received.size();
    EXPECT_EQ(frames[0].opcode, codec::WsOpcode::kClose);
    EXPECT_EQ(frames[0].close_code, cases[i].code);
  }
  EXPECT_EQ(server.endpoints[0]->closes, 0);
  EXPECT_EQ(g.closes, 0);
  BufferChain hi;
  hi.append("still here");
  good->write(hi, false);
  ASSERT_TRUE(runUntil(loop, [&] { return server.endpoints[0]->received == "still here"; }));
}

TEST(WsStream, PingGetsPong) {
  event::Loop loop;
  WsServer server(loop, WsServerOptions{});
  RawClient raw(loop, server.port());
  raw.send(upgradeRequest("/") + rawFrame(0x89, "ping payload", true) +
           rawFrame(0x8a, "unsolicited", true) + rawFrame(0x82, "data", true));
  ASSERT_TRUE(runUntil(
      loop, [&] { return !server.endpoints.empty() && server.endpoints[0]->received == "data"; }));
  ASSERT_TRUE(runUntil(loop, [&] {
    return raw.ep.received.find("\r\n\r\n") != std::string::npos &&
           framesAfterHead(raw.ep.received).size() == 1;
  }));
  auto frames = framesAfterHead(raw.ep.received);
  EXPECT_EQ(frames[0].opcode, codec::WsOpcode::kPong);
  EXPECT_EQ(frames[0].payload.toString(), "ping payload");
  EXPECT_EQ(server.endpoints[0]->closes, 0);
  // A fragmented binary message arrives whole, in its pieces.
  raw.send(rawFrame(0x02, "frag", true) + rawFrame(0x80, "ment", true));
  ASSERT_TRUE(runUntil(loop, [&] { return server.endpoints[0]->received == "datafragment"; }));
  // A plain TCP end without a close frame is an end_stream.
  raw.send("", true);
  ASSERT_TRUE(runUntil(loop, [&] { return server.endpoints[0]->eof; }));
  EXPECT_EQ(server.endpoints[0]->closes, 0);
}

// The peer's close is our end_stream; our close goes out when our side
// ends, echoing the peer's code, and then the TCP connection ends.
TEST(WsStream, PeerCloseIsEchoedWhenWeEnd) {
  event::Loop loop;
  WsServer server(loop, WsServerOptions{});
  RawClient raw(loop, server.port());
  raw.send(upgradeRequest("/") + rawFrame(0x82, "last", true) +
           rawFrame(0x88, std::string("\x03\xe9", 2) + "going away", true));
  ASSERT_TRUE(
      runUntil(loop, [&] { return !server.endpoints.empty() && server.endpoints[0]->eof; }));
  Endpoint& s = *server.endpoints[0];
  EXPECT_EQ(s.received, "last");
  BufferChain reply;
  reply.append("after your close");
  server.streams[0]->write(reply, true);
  ASSERT_TRUE(runUntil(loop, [&] { return raw.ep.eof; }));
  auto frames = framesAfterHead(raw.ep.received);
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[0].payload.toString(), "after your close");
  EXPECT_EQ(frames[1].opcode, codec::WsOpcode::kClose);
  EXPECT_EQ(frames[1].close_code, 1001);
  raw.send("", true);
  ASSERT_TRUE(runUntil(loop, [&] { return s.closes == 1; }));
  EXPECT_TRUE(cleanClose(s.reason)) << s.detail;
}

// A client refuses what a server may not send: a masked frame.
TEST(WsStream, ClientRefusesMaskedFrame) {
  event::Loop loop;
  std::unique_ptr<TcpStream> peer;
  Endpoint raw;
  BufferChain in;
  bool answered = false;
  auto l = TcpListener::listen(loop, loopback(), [&](std::unique_ptr<TcpStream> tcp) {
    peer = std::move(tcp);
    raw.on_data = [&](BufferChain& data, bool) {
      raw.received += data.toString();
      in.moveFrom(data);
      if (answered) return;
      auto r = codec::parseWsRequest(in);
      if (r.status != codec::WsRequestStatus::kDone) return;
      answered = true;
      raw.received.clear();
      BufferChain out;
      codec::encodeWsResponse(r.request.key, "", out);
      out.append(rawFrame(0x82, "masked", true));
      peer->write(out, false);
    };
    raw.attach(*peer);
  });
  ASSERT_TRUE(l.ok());
  auto client = dial(loop, l.value()->localAddress().port());
  Endpoint c;
  c.attach(*client);
  client->connect();
  ASSERT_TRUE(runUntil(loop, [&] { return c.closes == 1 && (raw.eof || raw.closes); }));
  EXPECT_TRUE(c.connected);
  EXPECT_EQ(c.reason, CloseReason::kProtocolError);
  EXPECT_TRUE(c.received.empty());
  // The client's close frame (masked, code 1002) came before the end.
  BufferChain wire;
  wire.append(raw.received);
  codec::WsFrameDecoder dec(codec::WsDecoderOptions{});
  auto r = dec.decode(wire);
  ASSERT_TRUE(r.ok() && r.value().has_value());
  EXPECT_EQ(r.value()->opcode, codec::WsOpcode::kClose);
  EXPECT_EQ(r.value()->close_code, codec::kWsCloseProtocolError);
}

// By default a client that ends sends nothing (a v2ray/Xray server would
// end both directions on our close); the server's close, when it comes,
// gets the answer, and the download before it arrives whole.
TEST(WsStream, ClientEndsQuietlyByDefault) {
  event::Loop loop;
  std::unique_ptr<TcpStream> peer;
  Endpoint raw;
  bool answered = false;
  BufferChain in;
  auto l = TcpListener::listen(loop, loopback(), [&](std::unique_ptr<TcpStream> tcp) {
    peer = std::move(tcp);
    raw.on_data = [&](BufferChain& data, bool) {
      in.moveFrom(data);
      if (answered) return;
      auto r = codec::parseWsRequest(in);
      if (r.status != codec::WsRequestStatus::kDone) return;
      answered = true;
      in.drain(r.consumed);
      BufferChain out;
      codec::encodeWsResponse(r.request.key, "", out);
      peer->write(out, false);
    };
    raw.attach(*peer);
  });
  ASSERT_TRUE(l.ok());
  auto client = dial(loop, l.value()->localAddress().port());
  Endpoint c;
  c.attach(*client);
  c.payload = "request";
  client->connect();
  c.pump();
  codec::WsFrameDecoder dec(codec::WsDecoderOptions{});  // server role
  std::vector<codec::WsFrame> frames;
  auto readFrames = [&] {
    while (true) {
      auto r = dec.decode(in);
      EXPECT_TRUE(r.ok());
      if (!r.ok() || !r.value()) return;
      frames.push_back(std::move(*r.value()));
    }
  };
  ASSERT_TRUE(runUntil(loop, [&] {
    readFrames();
    return !frames.empty();
  }));
  event::Timer wait(loop);
  bool waited = false;
  wait.start(30, [&] { waited = true; });
  ASSERT_TRUE(runUntil(loop, [&] { return waited; }));
  readFrames();
  ASSERT_EQ(frames.size(), 1u);  // the data; no close after it
  EXPECT_EQ(frames[0].payload.toString(), "request");
  // The server answers, then closes: the client echoes and both end.
  BufferChain reply;
  reply.append(rawFrame(0x82, "response", false));
  codec::encodeWsClose(1000, "", nullptr, reply);
  peer->write(reply, false);
  ASSERT_TRUE(runUntil(loop, [&] {
    readFrames();
    return c.eof && frames.size() == 2;
  }));
  EXPECT_EQ(c.received, "response");
  EXPECT_EQ(frames[1].opcode, codec::WsOpcode::kClose);
  EXPECT_EQ(frames[1].close_code, 1000);
}

TEST(WsStream, ConnectionClosedInsideAFrameIsAReset) {
  event::Loop loop;
  WsServer server(loop, WsServerOptions{});
  RawClient raw(loop, server.port());
  std::string frame = rawFrame(0x82, "truncated", true);
  raw.send(upgradeRequest("/") + frame.substr(0, frame.size() - 3), true);
  ASSERT_TRUE(runUntil(
      loop, [&] { return !server.endpoints.empty() && server.endpoints[0]->closes == 1; }));
  EXPECT_EQ(server.endpoints[0]->reason, CloseReason::kReset);
  EXPECT_FALSE(server.endpoints[0]->eof);
}

TEST(WsStream, BackpressureWhileServerDoesNotRead) {
  event::Loop loop;
  const std::string up = pattern(16 << 20, 31);
  WsServer server(loop, WsServerOptions{},
                  [](Endpoint& ep) { ep.on_connected = [&ep] { ep.stream->readDisable(true); }; });
  WsClientOptions half_close;
  half_close.close_on_end = true;
  auto client = dial(loop, server.port(), half_close);
  Endpoint c;
  c.attach(*client);
  c.payload = up;
  client->connect();
  c.pump();
  // The client fills every buffer on the way and is told to stop.
  ASSERT_TRUE(runUntil(loop, [&] { return c.connected && c.paused && c.above > 0; }));
  size_t sent_when_paused = c.sent;
  event::Timer wait(loop);
  bool waited = false;
  wait.start(100, [&] { waited = true; });
  ASSERT_TRUE(runUntil(loop, [&] { return waited; }));
  Endpoint& s = *server.endpoints[0];
  EXPECT_TRUE(s.received.empty());
  EXPECT_TRUE(c.paused);
  EXPECT_LT(c.sent, up.size());
  EXPECT_LE(client->bufferedBytes(), sent_when_paused);
  server.streams[0]->readDisable(false);
  ASSERT_TRUE(runUntil(
      loop, [&] { return s.eof; }, 30000))
      << "server got " << s.received.size() << " client sent " << c.sent;
  EXPECT_TRUE(s.received == up) << s.received.size();
  EXPECT_GE(c.below, 1);
  BufferChain none;
  server.streams[0]->write(none, true);
  ASSERT_TRUE(runUntil(loop, [&] { return c.closes == 1 && s.closes == 1; }));
  EXPECT_TRUE(cleanClose(c.reason)) << c.detail;
}

// Before the 101, what the user writes is queued up to the watermark.
TEST(WsStream, PendingWritesAreBounded) {
  event::Loop loop;
  auto l = TcpListener::listen(loop, loopback(), [](std::unique_ptr<TcpStream>) {});
  ASSERT_TRUE(l.ok());
  Watermarks wm;
  wm.high = 64 * 1024;
  wm.low = 16 * 1024;
  auto client = dial(loop, l.value()->localAddress().port(), {}, false, wm);
  Endpoint c;
  c.attach(*client);
  c.payload = pattern(1 << 20, 5);
  c.chunk = 16 * 1024;
  client->connect();
  c.pump();
  EXPECT_EQ(c.above, 1);
  EXPECT_LE(c.sent, wm.high + c.chunk);
  EXPECT_EQ(client->bufferedBytes(), c.sent);
  client->close(CloseReason::kLocalClose);
  client->close(CloseReason::kTimeout);
  EXPECT_EQ(c.closes, 1);
  EXPECT_EQ(c.reason, CloseReason::kLocalClose);
}

}  // namespace
}  // namespace vt::stream
