// A client and a server TlsEngine wired back to back through in-memory
// chains: no sockets, no loop. Certificates come from tests/data/tls
// (make-certs.sh there regenerates them).
#include "tls/tls_engine.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <random>
#include <string>

namespace vt::tls {
namespace {

using St = TlsEngine::Status;

std::string dataPath(const char* name) {
  return std::string(VT_TEST_DATA_DIR) + "/tls/" + name;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

TlsOptions serverOptions() {
  TlsOptions o;
  o.role = Role::kServer;
  o.cert_file = dataPath("server.pem");
  o.key_file = dataPath("server.key");
  return o;
}

TlsOptions clientOptions() {
  TlsOptions o;
  o.role = Role::kClient;
  o.server_name = "test.vless-tun.internal";
  o.ca_file = dataPath("ca.pem");
  return o;
}

std::shared_ptr<TlsContext> makeContext(const TlsOptions& o) {
  auto r = TlsContext::create(o);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? r.value() : nullptr;
}

// One side of the wire: the engine, what it decrypted, and the first
// terminal status it reported (kFailed / kClosed stick).
struct Endpoint {
  std::unique_ptr<TlsEngine> engine;
  BufferChain received;
  St terminal = St::kOk;

  void note(St st) {
    if ((st == St::kFailed || st == St::kClosed) && terminal == St::kOk) terminal = st;
  }
  // Handshake until done, then read whatever plaintext has arrived.
  void drive() {
    if (!engine->handshakeDone()) {
      St st = engine->handshake();
      note(st);
      if (st != St::kOk) return;
    }
    note(engine->readPlain(received));
  }
};

struct Pair {
  Endpoint client;
  Endpoint server;

  Pair(const TlsOptions& c, const TlsOptions& s) {
    client.engine = TlsEngine::create(makeContext(c));
    server.engine = TlsEngine::create(makeContext(s));
  }
  Pair() : Pair(clientOptions(), serverOptions()) {}
  Pair(std::shared_ptr<TlsContext> c, std::shared_ptr<TlsContext> s) {
    client.engine = TlsEngine::create(std::move(c));
    server.engine = TlsEngine::create(std::move(s));
  }

  // Moves `from`'s ciphertext to `to`, `chunk` bytes per push, letting `to`
  // run after every push (so 1 = every byte trickles in on its own).
  static void deliver(Endpoint& from, Endpoint& to, size_t chunk) {
    BufferChain wire;
    from.engine->takeCiphertext(wire);
    while (!wire.empty()) {
      BufferChain piece;
      piece.moveFrom(wire, std::min(chunk, wire.size()));
      to.engine->pushCiphertext(piece);
      to.drive();
    }
  }

  // Runs both sides until neither has anything left to send.
  void pump(size_t chunk = SIZE_MAX) {
    for (int round = 0; round < 10000; ++round) {
      client.drive();
      server.drive();
      if (!client.engine->hasCiphertext() && !server.engine->hasCiphertext()) return;
      deliver(client, server, chunk);
      deliver(server, client, chunk);
    }
    ADD_FAILURE() << "pump did not settle";
  }

  bool handshake(size_t chunk = SIZE_MAX) {
    pump(chunk);
    return client.engine->handshakeDone() && server.engine->handshakeDone();
  }

  // Writes all of `data` from `from`, pumping whenever the engine stops
  // accepting (pending ciphertext at its cap). Returns how many writePlain
  // calls left bytes behind.
  int send(Endpoint& from, const std::string& data, size_t chunk = SIZE_MAX) {
    BufferChain in;
    in.append(data);
    int partial = 0;
    while (!in.empty()) {
      St st = from.engine->writePlain(in);
      EXPECT_EQ(st, St::kOk) << from.engine->failureReason();
      if (st != St::kOk) return partial;
      if (!in.empty()) ++partial;
      pump(chunk);
    }
    pump(chunk);
    return partial;
  }
};

std::string pattern(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

class TlsVersionTest : public ::testing::TestWithParam<uint16_t> {
 protected:
  TlsOptions client() const {
    TlsOptions o = clientOptions();
    o.min_version = o.max_version = GetParam();
    return o;
  }
  const char* versionName() const { return GetParam() == 0x0304 ? "TLSv1.3" : "TLSv1.2"; }
};

TEST_P(TlsVersionTest, HandshakeAndDataBothWays) {
  Pair p(client(), serverOptions());
  ASSERT_TRUE(p.handshake()) << p.client.engine->failureReason() << " / "
                             << p.server.engine->failureReason();
  EXPECT_EQ(p.client.engine->negotiatedVersion(), versionName());
  EXPECT_EQ(p.server.engine->negotiatedVersion(), versionName());

  p.send(p.client, "hello from the client");
  EXPECT_EQ(p.server.received.toString(), "hello from the client");
  p.send(p.server, "and hello back");
  EXPECT_EQ(p.client.received.toString(), "and hello back");
  EXPECT_EQ(p.client.terminal, St::kOk);
  EXPECT_EQ(p.server.terminal, St::kOk);
}

// A second connection from the same client context resumes from the ticket
// the first one received: no certificate is sent or verified, data flows.
// A server that cannot read the ticket (restarted: new ticket key) falls
// back to a full handshake.
TEST_P(TlsVersionTest, SessionTicketResumesTheNextConnection) {
  auto cctx = makeContext(client());
  auto sctx = makeContext(serverOptions());
  ASSERT_TRUE(cctx && sctx);
  {
    Pair p(cctx, sctx);
    ASSERT_TRUE(p.handshake()) << p.client.engine->failureReason();
    EXPECT_FALSE(p.client.engine->resumed());
    p.send(p.server, "first");
    EXPECT_EQ(p.client.received.toString(), "first");
  }
  EXPECT_GE(cctx->stats().ticketsReceived, 1u);
  for (int i = 0; i < 3; ++i) {
    Pair p(cctx, sctx);
    ASSERT_TRUE(p.handshake()) << p.client.engine->failureReason() << " / "
                               << p.server.engine->failureReason();
    EXPECT_TRUE(p.client.engine->resumed()) << "connection " << i;
    EXPECT_EQ(p.client.engine->negotiatedVersion(), versionName());
    p.send(p.client, "up " + std::to_string(i));
    p.send(p.server, "down " + std::to_string(i));
    EXPECT_EQ(p.server.received.toString(), "up " + std::to_string(i));
    EXPECT_EQ(p.client.received.toString(), "down " + std::to_string(i));
  }
  EXPECT_EQ(sctx->stats().ticketsAccepted, 3u);
  EXPECT_EQ(cctx->stats().resumed, 3u);
  EXPECT_EQ(cctx->stats().handshakes, 4u);

  auto restarted = makeContext(serverOptions());
  Pair p(cctx, restarted);
  ASSERT_TRUE(p.handshake()) << p.client.engine->failureReason();
  EXPECT_FALSE(p.client.engine->resumed()) << "unknown ticket: full handshake";
  EXPECT_EQ(restarted->stats().ticketsAccepted, 0u);
  p.send(p.client, "still works");
  EXPECT_EQ(p.server.received.toString(), "still works");
}

// TLS 1.3: a read that meets the ticket answers WANT_READ and leaves it
// half-processed; mbedTLS finishes it in the next call, which may be a
// write (a mux connection that only writes, its keepalive, for a while).
// The write must keep the ticket too.
TEST(TlsEngine, TicketHalfReadIsKeptByTheNextWrite) {
  auto cctx = makeContext(clientOptions());
  auto sctx = makeContext(serverOptions());
  ASSERT_TRUE(cctx && sctx);
  auto c = TlsEngine::create(cctx);
  auto s = TlsEngine::create(sctx);
  auto move = [](TlsEngine& from, TlsEngine& to) {
    BufferChain wire;
    from.takeCiphertext(wire);
    if (!wire.empty()) to.pushCiphertext(wire);
  };
  for (int i = 0; i < 20 && !(c->handshakeDone() && s->handshakeDone()); ++i) {
    if (!c->handshakeDone()) c->handshake();
    move(*c, *s);
    if (!s->handshakeDone()) s->handshake();
    move(*s, *c);
  }
  ASSERT_TRUE(c->handshakeDone() && s->handshakeDone());
  ASSERT_EQ(c->negotiatedVersion(), "TLSv1.3");
  BufferChain plain;
  EXPECT_EQ(c->readPlain(plain), TlsEngine::Status::kWantMore);  // meets the ticket
  EXPECT_TRUE(plain.empty());
  BufferChain data;
  data.append("after the ticket");
  EXPECT_EQ(c->writePlain(data), TlsEngine::Status::kOk) << c->failureReason();
  EXPECT_TRUE(data.empty());
  EXPECT_EQ(cctx->stats().ticketsReceived, 1u);
  move(*c, *s);
  BufferChain got;
  s->readPlain(got);
  EXPECT_EQ(got.toString(), "after the ticket");
}

TEST_P(TlsVersionTest, TicketsOffNeverResumes) {
  TlsOptions c = client();
  c.session_tickets = false;
  auto cctx = makeContext(c);
  auto sctx = makeContext(serverOptions());
  for (int i = 0; i < 2; ++i) {
    Pair p(cctx, sctx);
    ASSERT_TRUE(p.handshake()) << p.client.engine->failureReason();
    EXPECT_FALSE(p.client.engine->resumed());
  }
  EXPECT_EQ(cctx->stats().ticketsReceived, 0u);
  EXPECT_EQ(sctx->stats().ticketsAccepted, 0u);
}

TEST_P(TlsVersionTest, OneByteTrickle) {
  Pair p(client(), serverOptions());
  ASSERT_TRUE(p.handshake(1)) << p.client.engine->failureReason() << " / "
                              << p.server.engine->failureReason();
  std::string up = pattern(3000, 1), down = pattern(2500, 2);
  p.send(p.client, up, 1);
  p.send(p.server, down, 1);
  EXPECT_EQ(p.server.received.toString(), up);
  EXPECT_EQ(p.client.received.toString(), down);
}

TEST_P(TlsVersionTest, LargeTransferWithPartialAcceptance) {
  Pair p(client(), serverOptions());
  ASSERT_TRUE(p.handshake());
  const size_t kSize = 1 << 20;
  std::string up = pattern(kSize, 3), down = pattern(kSize, 4);
  EXPECT_GT(p.send(p.client, up), 0);  // the 64 KiB ciphertext cap was hit
  EXPECT_GT(p.send(p.server, down), 0);
  ASSERT_EQ(p.server.received.size(), kSize);
  ASSERT_EQ(p.client.received.size(), kSize);
  EXPECT_TRUE(p.server.received.toString() == up);
  EXPECT_TRUE(p.client.received.toString() == down);
}

TEST_P(TlsVersionTest, WritePlainAcceptsAtMostTheCap) {
  Pair p(client(), serverOptions());
  ASSERT_TRUE(p.handshake());
  BufferChain in;
  in.append(pattern(300 * 1024, 5));
  ASSERT_EQ(p.client.engine->writePlain(in), St::kOk);
  EXPECT_GT(in.size(), 0u);
  BufferChain wire;
  p.client.engine->takeCiphertext(wire);
  // Stops at the first record that reaches the cap.
  EXPECT_GE(wire.size(), TlsEngine::kMaxPendingCiphertext);
  EXPECT_LT(wire.size(), TlsEngine::kMaxPendingCiphertext + 17 * 1024);
}

// Many small slices (as lwIP pbufs arrive) are merged into full records;
// 16 KiB slices go out without merging. Either way the bytes arrive intact.
TEST_P(TlsVersionTest, SliceShapesAreMergedOrSentDirectly) {
  Pair p(client(), serverOptions());
  ASSERT_TRUE(p.handshake());
  std::string data = pattern(200 * 1000, 6);
  BufferChain small;
  for (size_t off = 0; off < data.size(); off += 100) {
    small.append(Slice::copyOf(data.data() + off, 100));
  }
  size_t wire_bytes = 0;
  while (!small.empty()) {
    ASSERT_EQ(p.client.engine->writePlain(small), St::kOk);
    BufferChain wire;
    p.client.engine->takeCiphertext(wire);
    wire_bytes += wire.size();
    p.server.engine->pushCiphertext(wire);
    p.server.drive();
  }
  EXPECT_EQ(p.server.received.toString(), data);
  EXPECT_LT(wire_bytes, data.size() + data.size() / 100);  // ~16 KiB records

  p.server.received.clear();
  BufferChain big;
  for (size_t off = 0; off < data.size(); off += 16384) {
    size_t n = std::min<size_t>(16384, data.size() - off);
    big.append(Slice::copyOf(data.data() + off, n));
  }
  p.send(p.client, "");
  while (!big.empty()) {
    ASSERT_EQ(p.client.engine->writePlain(big), St::kOk);
    p.pump();
  }
  EXPECT_EQ(p.server.received.toString(), data);
}

TEST_P(TlsVersionTest, CloseNotifyEndsWithClosed) {
  Pair p(client(), serverOptions());
  ASSERT_TRUE(p.handshake());
  BufferChain in;
  in.append(std::string("last words"));
  ASSERT_EQ(p.client.engine->writePlain(in), St::kOk);
  p.client.engine->shutdown();
  BufferChain wire;
  p.client.engine->takeCiphertext(wire);
  p.server.engine->pushCiphertext(wire);
  BufferChain out;
  EXPECT_EQ(p.server.engine->readPlain(out), St::kClosed);
  EXPECT_EQ(out.toString(), "last words");
  EXPECT_EQ(p.server.engine->readPlain(out), St::kClosed);
  // The other direction still works until the server shuts down too.
  BufferChain reply;
  reply.append(std::string("ok"));
  EXPECT_EQ(p.server.engine->writePlain(reply), St::kOk);
  p.server.engine->shutdown();
  Pair::deliver(p.server, p.client, SIZE_MAX);
  EXPECT_EQ(p.client.received.toString(), "ok");
  EXPECT_EQ(p.client.terminal, St::kClosed);
}

TEST_P(TlsVersionTest, CorruptedRecordFails) {
  Pair p(client(), serverOptions());
  ASSERT_TRUE(p.handshake());
  BufferChain in;
  in.append(std::string("some application data"));
  ASSERT_EQ(p.client.engine->writePlain(in), St::kOk);
  BufferChain wire;
  p.client.engine->takeCiphertext(wire);
  ASSERT_GT(wire.size(), 10u);
  uint8_t* bytes = wire.linearize(wire.size());
  bytes[wire.size() - 3] ^= 0x40;  // inside the AEAD tag / ciphertext
  p.server.engine->pushCiphertext(wire);
  BufferChain out;
  EXPECT_EQ(p.server.engine->readPlain(out), St::kFailed);
  EXPECT_TRUE(out.empty());
  EXPECT_FALSE(p.server.engine->failureReason().empty());
  EXPECT_EQ(p.server.engine->readPlain(out), St::kFailed);
  EXPECT_EQ(p.server.engine->writePlain(in), St::kFailed);
}

INSTANTIATE_TEST_SUITE_P(Versions, TlsVersionTest, ::testing::Values(0x0304, 0x0303),
                         [](const auto& info) { return info.param == 0x0304 ? "Tls13" : "Tls12"; });

TEST(TlsEngine, AlpnAndSni) {
  TlsOptions c = clientOptions(), s = serverOptions();
  c.alpn = {"h2", "http/1.1"};
  s.alpn = {"h2", "http/1.1"};
  Pair p(c, s);
  ASSERT_TRUE(p.handshake());
  EXPECT_EQ(p.client.engine->negotiatedAlpn(), "h2");
  EXPECT_EQ(p.server.engine->negotiatedAlpn(), "h2");
  EXPECT_EQ(p.server.engine->receivedServerName(), "test.vless-tun.internal");
  EXPECT_EQ(p.client.engine->receivedServerName(), "");

  c.alpn = {"http/1.1"};
  Pair q(c, s);
  ASSERT_TRUE(q.handshake());
  EXPECT_EQ(q.client.engine->negotiatedAlpn(), "http/1.1");
  EXPECT_EQ(q.server.engine->negotiatedAlpn(), "http/1.1");

  c.alpn.clear();
  Pair r(c, s);
  ASSERT_TRUE(r.handshake());
  EXPECT_EQ(r.client.engine->negotiatedAlpn(), "");
}

TEST(TlsEngine, OtherNamesInTheCertificateVerify) {
  for (const char* name : {"localhost", "127.0.0.1"}) {
    TlsOptions c = clientOptions();
    c.server_name = name;
    Pair p(c, serverOptions());
    EXPECT_TRUE(p.handshake()) << name << ": " << p.client.engine->failureReason();
  }
}

TEST(TlsEngine, WrongHostnameFailsVerification) {
  TlsOptions c = clientOptions();
  c.server_name = "wrong.example";
  Pair p(c, serverOptions());
  EXPECT_FALSE(p.handshake());
  EXPECT_EQ(p.client.terminal, St::kFailed);
  EXPECT_NE(lower(p.client.engine->failureReason()).find("verif"), std::string::npos)
      << p.client.engine->failureReason();
  // The server learns of it through the client's alert.
  EXPECT_EQ(p.server.terminal, St::kFailed);
  EXPECT_FALSE(p.server.engine->failureReason().empty());
}

TEST(TlsEngine, InsecureSkipsVerification) {
  TlsOptions c = clientOptions();
  c.server_name = "wrong.example";
  c.insecure = true;
  c.ca_file = dataPath("other-ca.pem");
  Pair p(c, serverOptions());
  ASSERT_TRUE(p.handshake()) << p.client.engine->failureReason();
  EXPECT_EQ(p.server.engine->receivedServerName(), "wrong.example");
  p.send(p.client, "x");
  EXPECT_EQ(p.server.received.toString(), "x");
}

TEST(TlsEngine, UnknownCaFails) {
  TlsOptions c = clientOptions();
  c.ca_file = dataPath("other-ca.pem");
  Pair p(c, serverOptions());
  EXPECT_FALSE(p.handshake());
  EXPECT_NE(lower(p.client.engine->failureReason()).find("verif"), std::string::npos)
      << p.client.engine->failureReason();
}

TEST(TlsEngine, SystemStoreDoesNotTrustTestCa) {
  // scripts/setup.sh installs ca-certificates; a missing bundle is a failure.
  std::FILE* f = std::fopen("/etc/ssl/certs/ca-certificates.crt", "r");
  ASSERT_NE(f, nullptr) << "no system CA bundle (package ca-certificates)";
  std::fclose(f);
  TlsOptions c = clientOptions();
  c.ca_file.clear();
  Pair p(c, serverOptions());
  EXPECT_FALSE(p.handshake());
  EXPECT_EQ(p.client.terminal, St::kFailed);
}

TEST(TlsEngine, VersionMismatchFails) {
  TlsOptions c = clientOptions(), s = serverOptions();
  c.max_version = 0x0303;
  s.min_version = 0x0304;
  Pair p(c, s);
  EXPECT_FALSE(p.handshake());
  EXPECT_EQ(p.server.terminal, St::kFailed);
}

TEST(TlsEngine, WriteBeforeHandshakeKeepsData) {
  Pair p;
  BufferChain in;
  in.append(std::string("early"));
  EXPECT_EQ(p.client.engine->writePlain(in), St::kWantMore);
  EXPECT_EQ(in.toString(), "early");
  ASSERT_TRUE(p.handshake());
  EXPECT_EQ(p.client.engine->writePlain(in), St::kOk);
  EXPECT_TRUE(in.empty());
  p.pump();
  EXPECT_EQ(p.server.received.toString(), "early");
}

TEST(TlsEngine, GarbageIntoServerFails) {
  for (uint32_t seed = 0; seed < 64; ++seed) {
    auto ctx = makeContext(serverOptions());
    auto server = TlsEngine::create(ctx);
    std::string junk = pattern(1 + seed * 37, seed);
    if (seed % 2 == 0) junk.replace(0, std::min<size_t>(3, junk.size()), "\x16\x03\x01", 3);
    BufferChain in;
    in.append(junk);
    server->pushCiphertext(in);
    St st = server->handshake();
    EXPECT_NE(st, St::kOk);
    if (st == St::kFailed) {
      EXPECT_FALSE(server->failureReason().empty());
    }
    // Either rejected or waiting for the rest of a (bogus) record; more
    // garbage must end in failure, not a crash.
    BufferChain more;
    more.append(pattern(40000, seed + 1000));
    server->pushCiphertext(more);
    EXPECT_EQ(server->handshake(), St::kFailed) << "seed " << seed;
    BufferChain out;
    EXPECT_EQ(server->readPlain(out), St::kFailed);
  }
}

// Flips one byte of the server's first flight at a time: the handshake must
// fail cleanly (or, for bytes nobody checks, still work end to end).
TEST_P(TlsVersionTest, FlippedHandshakeByteNeverCrashes) {
  size_t flight_size = 0;
  {
    Pair probe(client(), serverOptions());
    probe.client.drive();
    Pair::deliver(probe.client, probe.server, SIZE_MAX);
    BufferChain flight;
    probe.server.engine->takeCiphertext(flight);
    flight_size = flight.size();
  }
  ASSERT_GT(flight_size, 100u);
  int failed = 0;
  for (size_t pos = 0; pos < flight_size; pos += 5) {
    Pair p(client(), serverOptions());
    p.client.drive();
    Pair::deliver(p.client, p.server, SIZE_MAX);
    BufferChain flight;
    p.server.engine->takeCiphertext(flight);
    if (pos >= flight.size()) break;  // ECDSA signatures vary in length
    flight.linearize(flight.size())[pos] ^= 0x01;
    p.client.engine->pushCiphertext(flight);
    p.client.drive();
    p.pump();
    if (p.client.terminal == St::kFailed || p.server.terminal == St::kFailed) {
      ++failed;
      continue;
    }
    // A flipped record length leaves the client waiting for bytes that
    // never come: the stream layer's handshake timeout ends that.
    if (!p.client.engine->handshakeDone()) {
      EXPECT_EQ(p.client.engine->handshake(), St::kWantMore) << "pos " << pos;
      continue;
    }
    p.send(p.client, "still fine");
    EXPECT_EQ(p.server.received.toString(), "still fine") << "pos " << pos;
  }
  EXPECT_GT(failed, 0);
}

TEST(TlsEngine, GarbageAfterHandshakeFails) {
  Pair p;
  ASSERT_TRUE(p.handshake());
  BufferChain junk;
  junk.append(pattern(5000, 77));
  p.client.engine->pushCiphertext(junk);
  BufferChain out;
  EXPECT_EQ(p.client.engine->readPlain(out), St::kFailed);
  EXPECT_TRUE(out.empty());
}

// --- TlsContext::create errors name the file and the problem ---

std::string writeTemp(const char* name, const std::string& content) {
  std::string path = ::testing::TempDir() + name;
  std::FILE* f = std::fopen(path.c_str(), "wb");
  EXPECT_NE(f, nullptr);
  if (f) {
    std::fwrite(content.data(), 1, content.size(), f);
    std::fclose(f);
  }
  return path;
}

void expectCreateError(const TlsOptions& o, std::initializer_list<std::string> parts) {
  auto r = TlsContext::create(o);
  ASSERT_FALSE(r.ok());
  for (const auto& part : parts) {
    EXPECT_NE(r.error().message.find(part), std::string::npos)
        << "'" << part << "' not in: " << r.error().message;
  }
}

TEST(TlsContext, CertAndKeyFileErrors) {
  TlsOptions s = serverOptions();
  s.cert_file = "/nonexistent/cert.pem";
  expectCreateError(s, {"cert_file", "/nonexistent/cert.pem", "cannot open"});

  std::string garbage = writeTemp("vt_tls_garbage.pem", "this is not a certificate\n");
  s = serverOptions();
  s.cert_file = garbage;
  expectCreateError(s, {"cert_file", garbage, "cannot parse certificate", "mbedtls -0x"});

  s = serverOptions();
  s.key_file = "/nonexistent/key.pem";
  expectCreateError(s, {"key_file", "/nonexistent/key.pem", "cannot open"});

  s = serverOptions();
  s.key_file = garbage;
  expectCreateError(s, {"key_file", garbage, "cannot parse private key"});

  s = serverOptions();
  s.key_file = dataPath("other-ca.key");
  expectCreateError(s, {"does not match", "other-ca.key"});

  s = serverOptions();
  s.cert_file = writeTemp("vt_tls_empty.pem", "");
  expectCreateError(s, {"cert_file", "empty"});

  s = serverOptions();
  s.key_file.clear();
  expectCreateError(s, {"key_file", "required"});
}

TEST(TlsContext, ClientOptionErrors) {
  TlsOptions c = clientOptions();
  c.ca_file = "/nonexistent/ca.pem";
  expectCreateError(c, {"ca_file", "/nonexistent/ca.pem", "cannot open"});

  c = clientOptions();
  c.ca_file = writeTemp("vt_tls_garbage_ca.pem",
                        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
  expectCreateError(c, {"ca_file", "cannot parse CA"});

  c = clientOptions();
  c.server_name.clear();
  expectCreateError(c, {"server_name"});
  c.insecure = true;
  EXPECT_TRUE(TlsContext::create(c).ok());

  c = clientOptions();
  c.min_version = 0x0304;
  c.max_version = 0x0303;
  expectCreateError(c, {"min_version"});
  c.min_version = 0x0301;
  expectCreateError(c, {"min_version"});

  c = clientOptions();
  c.alpn = {""};
  expectCreateError(c, {"alpn"});
}

TEST(TlsEngine, ForeignContextYieldsFailedEngine) {
  struct Fake : TlsContext {
    TlsOptions o;
    TlsStats s;
    const TlsOptions& options() const override { return o; }
    const TlsStats& stats() const override { return s; }
  };
  auto engine = TlsEngine::create(std::make_shared<Fake>());
  ASSERT_NE(engine, nullptr);
  EXPECT_EQ(engine->handshake(), St::kFailed);
  EXPECT_FALSE(engine->failureReason().empty());
}

}  // namespace
}  // namespace vt::tls
