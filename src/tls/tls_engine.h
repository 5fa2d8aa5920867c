// TlsEngine: mbedTLS 3.6 as a sans-I/O engine. Ciphertext goes in and comes
// out through memory queues; plaintext likewise. No sockets, no loop, so a
// client and a server engine can be tested against each other in memory.
//
//   network --pushCiphertext--> [engine] --readPlain--> application
//   network <-takeCiphertext--- [engine] <-writePlain-- application
//
// Memory per engine: mbedTLS allocates an input and an output record buffer
// of MBEDTLS_SSL_{IN,OUT}_CONTENT_LEN (16 KiB) plus record overhead each,
// about 2 x 16.6 KiB, for the engine's whole life, plus a few KiB of
// handshake state freed once the handshake ends and the peer certificate
// (kept by MBEDTLS_SSL_KEEP_PEER_CERTIFICATE). The ciphertext queues hold
// at most what the caller lets accumulate: writePlain stops accepting once
// kMaxPendingCiphertext bytes wait to be taken.
//
// Threading: an engine and its TlsContext (RNG, config) are used from one
// thread only, the loop thread; nothing here takes locks.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "buffer/buffer_chain.h"
#include "core/error.h"

namespace vt::tls {

enum class Role { kClient, kServer };

struct TlsOptions {
  Role role = Role::kClient;
  // Client: SNI and the name the certificate must match (unless insecure).
  std::string server_name;
  std::vector<std::string> alpn;  // in preference order
  // Client verification: a CA file, else the system store
  // (/etc/ssl/certs/ca-certificates.crt). `insecure` skips verification
  // and must be asked for explicitly.
  std::string ca_file;
  bool insecure = false;
  // Server: certificate chain and key, PEM files.
  std::string cert_file;
  std::string key_file;
  // Versions: 0x0303 = TLS 1.2, 0x0304 = TLS 1.3.
  uint16_t min_version = 0x0303;
  uint16_t max_version = 0x0304;
  // Session resumption with tickets (docs/performance.md "Churn"): a server
  // issues tickets (stateless, sealed with a key it rotates every
  // ticket_lifetime_s, the previous key still accepted); a client keeps the
  // freshest few and offers one on each new connection, so a reconnect skips
  // the certificate chain and its signatures. TLS 1.3 resumes with
  // psk_dhe_ke only: every connection still has its own ECDHE (forward
  // secrecy); pure psk_ke is never offered nor accepted.
  bool session_tickets = true;
  uint32_t ticket_lifetime_s = 3600;
};

// Handshake counters of one TlsContext (all its engines).
struct TlsStats {
  uint64_t handshakes = 0;        // completed
  uint64_t resumed = 0;           // client: of those, resumed from a ticket
  uint64_t ticketsReceived = 0;   // client: sessions stored for resumption
  uint64_t ticketsAccepted = 0;   // server: tickets that decrypted and were in date
};

// Shared, immutable-after-build configuration (certificates, CA chain, RNG).
// One per listener or per outbound; engines keep a shared_ptr to it.
class TlsContext {
 public:
  static Result<std::shared_ptr<TlsContext>> create(const TlsOptions& options);
  virtual ~TlsContext() = default;
  virtual const TlsOptions& options() const = 0;
  virtual const TlsStats& stats() const = 0;
};

class TlsEngine {
 public:
  enum class Status {
    kOk,         // progress made or nothing to do
    kWantMore,   // needs more ciphertext from the network
    kClosed,     // peer sent close_notify (clean end of its direction)
    kFailed,     // fatal; failureReason() says why; stop using the engine
  };

  // writePlain stops accepting plaintext while this much ciphertext waits
  // for takeCiphertext(): the caller's backpressure signal (`in` not empty).
  static constexpr size_t kMaxPendingCiphertext = 64 * 1024;

  // Never null: if mbedTLS cannot set up the connection (out of memory, a
  // context not made by TlsContext::create), the engine starts in kFailed.
  static std::unique_ptr<TlsEngine> create(std::shared_ptr<TlsContext> ctx);
  virtual ~TlsEngine() = default;

  // Queues bytes from the network (drains `in`).
  virtual void pushCiphertext(BufferChain& in) = 0;
  // Drives the handshake; kOk once it is complete. Application data may
  // have arrived with the last handshake flight: call readPlain() next.
  // After kFailed, hasCiphertext() may hold an alert worth flushing.
  virtual Status handshake() = 0;
  virtual bool handshakeDone() const = 0;
  // Encrypts as much of `in` as the engine accepts and drains exactly that;
  // the rest stays in `in` (pinned, retried on the next call). Before the
  // handshake is done it drives the handshake and, while that is pending,
  // returns kWantMore leaving `in` untouched. At most one record's worth is
  // copied (to merge small slices); full slices are encrypted in place.
  // Writing after shutdown() is kFailed.
  virtual Status writePlain(BufferChain& in) = 0;
  // Appends decrypted bytes to `out`. kOk when bytes were appended, kWantMore
  // when a whole record is still missing; kClosed may come with bytes that
  // preceded the close_notify already appended.
  virtual Status readPlain(BufferChain& out) = 0;
  // Queues close_notify (nothing is sent before the handshake is done).
  virtual void shutdown() = 0;
  // Moves the ciphertext to send onto the end of `out`.
  virtual void takeCiphertext(BufferChain& out) = 0;
  virtual bool hasCiphertext() const = 0;

  virtual std::string failureReason() const = 0;
  virtual std::string negotiatedAlpn() const = 0;
  virtual std::string negotiatedVersion() const = 0;  // "TLSv1.3"
  // Server: the SNI host name the client sent ("" if none). Client: "".
  virtual std::string receivedServerName() const = 0;
  // Client, after the handshake: the session was resumed from a ticket (the
  // server sent no certificate). Only known when the client verifies the
  // server (not `insecure`); false otherwise and on servers.
  virtual bool resumed() const = 0;
};

}  // namespace vt::tls
