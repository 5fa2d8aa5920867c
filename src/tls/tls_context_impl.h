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
#include <mbedtls/x509_crt.h>

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
  const mbedtls_ssl_config* config() const { return &conf_; }

 private:
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
};

}  // namespace vt::tls
