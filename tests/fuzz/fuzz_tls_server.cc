// The TLS engine in the server role (the test certificate in tests/data/tls,
// ECDSA P-256), fed hostile bytes as the client's records, driven the way
// TlsStream drives it (push ciphertext, handshake(), then readPlain() and an
// echo through writePlain(), takeCiphertext() after each step). Checks: no
// crash, no sanitizer report, no leak; what the engine writes stays bounded
// (handshake flights plus the echo, never more than 64 KiB of ciphertext
// waiting); plaintext never exceeds the ciphertext it came from; kFailed
// has a reason and sticks; a finished handshake names TLS 1.2 or 1.3
// within the context's range; an SNI is at most 255 bytes.
//
// Input: [0] bits 0-1: server context (0 and 3: TLS 1.2-1.3 with ALPN h2,
// http/1.1 and tickets; 1: TLS 1.3 only, no ALPN, no tickets; 2: TLS 1.2
// only, ALPN http/1.1), bit 2: shutdown() at the end, bit 7: mode.
//   Raw mode (bit 7 clear): [1..3] cut points (each non-zero byte b cuts
//   at len * b / 256), then the bytes the client sends, delivered in up to
//   four chunks. Seeds: a ClientHello of our own client engine, record
//   headers, a TLS 1.2 ClientHello.
//   Client mode (bit 7 set): a real client engine (ours, TLS 1.2-1.3, no
//   verification; bit 3: it keeps tickets, so later inputs may resume)
//   talks to the server engine and the rest of the input says how the
//   client's bytes reach the server, one op byte at a time (op % 6):
//     0 deliver what the client has queued; 1 the same with one byte
//     XORed (u16 offset, u8 value); 2 deliver only a prefix (u16 length);
//     3 inject raw bytes (u8 length, then the bytes); 4 the client writes
//     u8 * 97 bytes; 5 the client sends close_notify.
//   That reaches the server's post-handshake paths (application records,
//   tickets, close_notify, records cut anywhere, tampered records), which
//   raw bytes cannot (they would need the session keys). Slower: each such
//   input runs a full handshake (ECDHE and a signature).
//
// The certificate directory comes from CMake (VT_TLS_TEST_DATA).
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "buffer/buffer_chain.h"
#include "fuzz_util.h"
#include "tls/tls_engine.h"

#ifndef VT_TLS_TEST_DATA
#error "VT_TLS_TEST_DATA (the tests/data/tls directory) must be defined"
#endif

using namespace vt;
using namespace vt::tls;
using fuzz::check;

namespace {

constexpr size_t kMaxOps = 64;

struct Contexts {
  std::shared_ptr<TlsContext> server[3];
  std::shared_ptr<TlsContext> client[2];  // without / with tickets
};
Contexts* contexts = nullptr;

std::shared_ptr<TlsContext> make(const TlsOptions& o) {
  auto r = TlsContext::create(o);
  check(r.ok(), "TLS context", r.ok() ? "" : r.error().message);
  return std::move(r).value();
}

void setUp() {
  contexts = new Contexts;
  const std::string dir = VT_TLS_TEST_DATA;
  TlsOptions s;
  s.role = Role::kServer;
  s.cert_file = dir + "/server.pem";
  s.key_file = dir + "/server.key";
  s.alpn = {"h2", "http/1.1"};
  contexts->server[0] = make(s);
  TlsOptions s13 = s;
  s13.min_version = 0x0304;
  s13.alpn = {};
  s13.session_tickets = false;
  contexts->server[1] = make(s13);
  TlsOptions s12 = s;
  s12.max_version = 0x0303;
  s12.alpn = {"http/1.1"};
  contexts->server[2] = make(s12);
  TlsOptions c;
  c.role = Role::kClient;
  c.server_name = "test.vless-tun.internal";
  c.insecure = true;
  c.alpn = {"http/1.1"};
  c.session_tickets = false;
  contexts->client[0] = make(c);
  c.session_tickets = true;
  contexts->client[1] = make(c);
}

struct Reader {
  const uint8_t* p;
  size_t n;
  size_t pos = 0;
  bool done() const { return pos >= n; }
  uint8_t u8() { return pos < n ? p[pos++] : 0; }
  uint16_t u16() { return static_cast<uint16_t>(u8() << 8 | u8()); }
};

// The server side as TlsStream runs it: an echo application on top.
class Server {
 public:
  Server(std::shared_ptr<TlsContext> ctx, uint16_t min_v, uint16_t max_v)
      : engine_(TlsEngine::create(std::move(ctx))), min_v_(min_v), max_v_(max_v) {}

  bool dead() const { return failed_ || closed_; }
  uint64_t in() const { return in_; }
  uint64_t out() const { return out_; }

  // Bytes from the client; what the server sends goes to `wire`.
  void receive(BufferChain& data, BufferChain& wire) {
    in_ += data.size();
    if (dead()) {
      data.clear();
      return;
    }
    engine_->pushCiphertext(data);
    check(data.empty(), "pushCiphertext drains its argument");
    drive(wire);
  }
  void finish(BufferChain& wire) {
    if (failed_) return;
    engine_->shutdown();
    take(wire);
  }

 private:
  void take(BufferChain& wire) {
    size_t before = wire.size();
    engine_->takeCiphertext(wire);
    out_ += wire.size() - before;
    check(!engine_->hasCiphertext(), "takeCiphertext leaves nothing behind");
  }
  void noteStatus(TlsEngine::Status st, const char* op) {
    if (st == TlsEngine::Status::kFailed) {
      check(!engine_->failureReason().empty(), "kFailed without a reason", op);
      failed_ = true;
    } else {
      check(!failed_, "a failed engine came back", op);
    }
    if (st == TlsEngine::Status::kClosed) closed_ = true;
  }
  void drive(BufferChain& wire) {
    if (!engine_->handshakeDone()) {
      TlsEngine::Status st = engine_->handshake();
      take(wire);
      noteStatus(st, "handshake");
      if (st != TlsEngine::Status::kOk) return;
      check(engine_->handshakeDone(), "handshake kOk but not done");
      std::string v = engine_->negotiatedVersion();
      check(v == "TLSv1.2" || v == "TLSv1.3", "negotiated version", v);
      check((v == "TLSv1.2" && min_v_ <= 0x0303) || (v == "TLSv1.3" && max_v_ >= 0x0304),
            "version outside the context's range", v);
      check(engine_->receivedServerName().size() <= 255, "SNI over 255 bytes");
    }
    for (int i = 0; i < 64; ++i) {
      BufferChain plain;
      TlsEngine::Status st = engine_->readPlain(plain);
      noteStatus(st, "readPlain");
      plain_ += plain.size();
      check(plain_ <= in_, "more plaintext than ciphertext");
      echo_.moveFrom(plain);
      if (st != TlsEngine::Status::kOk) break;
    }
    take(wire);
    if (failed_) return;
    // Echo, as much as the engine takes (bounded by kMaxPendingCiphertext
    // between takes, so drain in rounds).
    for (int i = 0; i < 64 && !echo_.empty(); ++i) {
      size_t before = echo_.size();
      TlsEngine::Status st = engine_->writePlain(echo_);
      noteStatus(st, "writePlain");
      check(echo_.size() <= before, "writePlain grew its input");
      take(wire);
      if (st != TlsEngine::Status::kOk || echo_.size() == before) break;
    }
    if (closed_) finish(wire);
  }

  std::unique_ptr<TlsEngine> engine_;
  uint16_t min_v_, max_v_;
  BufferChain echo_;
  uint64_t in_ = 0, out_ = 0, plain_ = 0;
  bool failed_ = false;
  bool closed_ = false;
};

Server makeServer(uint8_t flags) {
  switch (flags & 3) {
    case 1: return Server(contexts->server[1], 0x0304, 0x0304);
    case 2: return Server(contexts->server[2], 0x0303, 0x0303);
    default: return Server(contexts->server[0], 0x0303, 0x0304);
  }
}

// Output bound: handshake flights (certificate chain, tickets, alerts) are
// a few KiB; the rest is the echo of at most what came in, plus record
// overhead (at most 22 + 256 bytes per record of 1 byte or more).
void checkBounded(const Server& s) {
  check(s.out() <= 64 * 1024 + 300 * (s.in() + 1), "server output out of proportion",
        std::to_string(s.out()) + " for " + std::to_string(s.in()));
}

void runRaw(uint8_t flags, Reader& r) {
  Server server = makeServer(flags);
  uint8_t cut[3] = {r.u8(), r.u8(), r.u8()};
  const uint8_t* body = r.p + r.pos;
  size_t len = r.n - std::min(r.n, r.pos);
  std::vector<size_t> cuts = {0, len};
  for (uint8_t c : cut) {
    if (c != 0) cuts.push_back(len * c / 256);
  }
  std::sort(cuts.begin(), cuts.end());
  BufferChain wire;
  for (size_t i = 0; i + 1 < cuts.size(); ++i) {
    BufferChain chunk;
    if (cuts[i + 1] > cuts[i]) chunk.append(body + cuts[i], cuts[i + 1] - cuts[i]);
    server.receive(chunk, wire);
    wire.clear();
  }
  if (flags & 4) server.finish(wire);
  checkBounded(server);
}

void runClient(uint8_t flags, Reader& r) {
  Server server = makeServer(flags);
  std::unique_ptr<TlsEngine> client = TlsEngine::create(contexts->client[(flags >> 3) & 1]);
  BufferChain to_server;  // client ciphertext not yet delivered
  BufferChain to_client;  // server ciphertext
  BufferChain app;        // client plaintext waiting for the handshake
  bool client_dead = false;

  auto clientStep = [&] {
    if (client_dead) return;
    if (!to_client.empty()) client->pushCiphertext(to_client);
    TlsEngine::Status st = client->handshake();
    if (st == TlsEngine::Status::kOk) {
      BufferChain sink;
      for (int i = 0; i < 64; ++i) {
        st = client->readPlain(sink);
        if (st != TlsEngine::Status::kOk) break;
      }
      if (st != TlsEngine::Status::kFailed && !app.empty()) st = client->writePlain(app);
    }
    if (st == TlsEngine::Status::kFailed) client_dead = true;
    client->takeCiphertext(to_server);
  };
  auto deliver = [&](BufferChain& bytes) {
    server.receive(bytes, to_client);
    clientStep();
  };

  clientStep();  // the ClientHello
  for (size_t ops = 0; ops < kMaxOps && !r.done() && !server.dead(); ++ops) {
    uint8_t op = r.u8() % 6;
    switch (op) {
      case 0: deliver(to_server); break;
      case 1: {
        uint16_t at = r.u16();
        uint8_t x = r.u8();
        if (to_server.empty()) break;
        std::string bytes = to_server.toString();
        bytes[at % bytes.size()] ^= static_cast<char>(x == 0 ? 1 : x);
        to_server.clear();
        BufferChain b;
        b.append(bytes);
        deliver(b);
        break;
      }
      case 2: {
        uint16_t n = r.u16();
        BufferChain part;
        part.moveFrom(to_server, std::min<size_t>(n, to_server.size()));
        deliver(part);
        break;
      }
      case 3: {
        size_t n = std::min<size_t>(r.u8(), r.n - std::min(r.n, r.pos));
        BufferChain raw;
        if (n) raw.append(r.p + r.pos, n);
        r.pos += n;
        deliver(raw);
        break;
      }
      case 4: {
        size_t n = static_cast<size_t>(r.u8()) * 97;
        app.append(std::string(n, 'q'));
        clientStep();
        break;
      }
      default:
        if (!client_dead) client->shutdown();
        clientStep();
        break;
    }
  }
  deliver(to_server);
  if (flags & 4) server.finish(to_client);
  checkBounded(server);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  setUp();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  Reader r{data, size, 1};
  if (data[0] & 0x80) {
    runClient(data[0], r);
  } else {
    runRaw(data[0], r);
  }
  return 0;
}
