// MbedtlsContext: the only TlsContext implementation. Internal to src/tls;
// engines reach the mbedTLS config through it.
//
// Threading: mbedtls_ctr_drbg and the ssl_config are used without locks
// (MBEDTLS_THREADING_C is off). A context and all engines made from it must
// live on one thread, the loop thread. Only psa_crypto_init() is guarded,
// because PSA's state is process-wide.
#pragma once

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/ssl_ticket.h>
#include <mbedtls/x509_crt.h>

#include <chrono>
#include <deque>
#include <memory>
#include <vector>

#include "tls/tls_engine.h"

namespace vt::tls {

// Server-side SNI hook (defined with the engine): records the name the
// client asked for in the engine found through the ssl user data. Any name
// is accepted for now; one certificate serves them all.
int recordServerName(void* unused, mbedtls_ssl_context* ssl, const unsigned char* name, size_t len);

class MbedtlsContext final : public TlsContext {
 public:
  explicit MbedtlsContext(const TlsOptions& options);
  ~MbedtlsContext() override;
  MbedtlsContext(const MbedtlsContext&) = delete;
  MbedtlsContext& operator=(const MbedtlsContext&) = delete;

  // Builds the mbedTLS config; the message names the option that failed.
  vt::Status init();

  const TlsOptions& options() const override { return options_; }
  const TlsStats& stats() const override { return stats_; }
  TlsStats& mutableStats() { return stats_; }
  const mbedtls_ssl_config* config() const { return &conf_; }

  // Client resumption cache (loop thread only). offerSession() loads the
  // freshest stored session into `ssl` (a new connection); each session is
  // used once while others are left, the last one is reused until a fresher
  // one arrives. storeSession() keeps the session `ssl` just received.
  bool offerSession(mbedtls_ssl_context* ssl);
  void storeSession(const mbedtls_ssl_context* ssl);
  size_t storedSessions() const { return sessions_.size(); }

  // At most this many sessions are kept (a few hundred bytes each, plus the
  // server's certificate chain that mbedTLS copies into each).
  static constexpr size_t kMaxSessions = 8;

 private:
  struct SessionFree {
    void operator()(mbedtls_ssl_session* s) const;
  };
  struct Stored {
    std::unique_ptr<mbedtls_ssl_session, SessionFree> session;
    std::chrono::steady_clock::time_point at;
  };
  static int writeTicket(void* self, const mbedtls_ssl_session* session, unsigned char* start,
                         const unsigned char* end, size_t* tlen, uint32_t* lifetime);
  static int parseTicket(void* self, mbedtls_ssl_session* session, unsigned char* buf, size_t len);

  vt::Status seedRng();
  vt::Status loadCa();
  vt::Status loadOwnCert();

  TlsOptions options_;
  mbedtls_entropy_context entropy_;
  mbedtls_ctr_drbg_context drbg_;
  mbedtls_x509_crt ca_;
  mbedtls_x509_crt own_cert_;
  mbedtls_pk_context own_key_;
  mbedtls_ssl_config conf_;
  // Null-terminated array of pointers into options_.alpn, as mbedTLS wants.
  std::vector<const char*> alpn_;
  mbedtls_ssl_ticket_context ticket_;  // server: the ticket keys
  std::deque<Stored> sessions_;        // client: oldest first
  TlsStats stats_;
};

}  // namespace vt::tls
