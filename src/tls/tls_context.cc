#include <psa/crypto.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "tls/tls_context_impl.h"
#include "tls/tls_error.h"

namespace vt::tls {
namespace {

constexpr const char* kSystemCaFile = "/etc/ssl/certs/ca-certificates.crt";
// A CA bundle is a few hundred KiB; anything far larger is not a PEM file.
constexpr long kMaxPemFileSize = 16L * 1024 * 1024;

Error tlsError(std::string message) {
  return Error(Errc::kTls, std::move(message));
}

// PSA keeps process-wide state that TLS 1.3 needs; initialise it once. A
// function-local static makes the first call thread-safe and the rest free.
vt::Status ensurePsaInitialised() {
  static const psa_status_t status = psa_crypto_init();
  if (status != PSA_SUCCESS) {
    return tlsError("psa_crypto_init failed (psa status " + std::to_string(status) + ")");
  }
  return {};
}

// Reads a PEM file and appends the NUL that mbedTLS's PEM parsers require.
// `what` is the option name, for the message ("cert_file /x: ...").
vt::Status readPemFile(const char* what, const std::string& path, std::vector<unsigned char>& out) {
  std::string prefix = std::string(what) + " " + path + ": ";
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return tlsError(prefix + "cannot open: " + std::strerror(errno));
  out.clear();
  unsigned char buf[8192];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) {
    if (out.size() + n > static_cast<size_t>(kMaxPemFileSize)) {
      std::fclose(f);
      return tlsError(prefix + "file larger than 16 MiB, not a PEM file");
    }
    out.insert(out.end(), buf, buf + n);
  }
  bool failed = std::ferror(f) != 0;
  int saved = errno;
  std::fclose(f);
  if (failed) return tlsError(prefix + "read error: " + std::strerror(saved));
  if (out.empty()) return tlsError(prefix + "file is empty");
  out.push_back('\0');
  return {};
}

}  // namespace

MbedtlsContext::MbedtlsContext(const TlsOptions& options) : options_(options) {
  mbedtls_entropy_init(&entropy_);
  mbedtls_ctr_drbg_init(&drbg_);
  mbedtls_x509_crt_init(&ca_);
  mbedtls_x509_crt_init(&own_cert_);
  mbedtls_pk_init(&own_key_);
  mbedtls_ssl_config_init(&conf_);
  mbedtls_ssl_ticket_init(&ticket_);
}

MbedtlsContext::~MbedtlsContext() {
  sessions_.clear();
  mbedtls_ssl_config_free(&conf_);
  mbedtls_ssl_ticket_free(&ticket_);
  mbedtls_pk_free(&own_key_);
  mbedtls_x509_crt_free(&own_cert_);
  mbedtls_x509_crt_free(&ca_);
  mbedtls_ctr_drbg_free(&drbg_);
  mbedtls_entropy_free(&entropy_);
}

vt::Status MbedtlsContext::seedRng() {
  static const char kPersonalisation[] = "vless-tun tls";
  int ret = mbedtls_ctr_drbg_seed(&drbg_, mbedtls_entropy_func, &entropy_,
                                  reinterpret_cast<const unsigned char*>(kPersonalisation),
                                  sizeof(kPersonalisation) - 1);
  if (ret != 0) return tlsError("seeding the TLS RNG failed: " + mbedtlsErrorText(ret));
  return {};
}

vt::Status MbedtlsContext::loadCa() {
  const bool system = options_.ca_file.empty();
  const char* what = system ? "system CA store" : "ca_file";
  const std::string path = system ? kSystemCaFile : options_.ca_file;
  std::vector<unsigned char> pem;
  if (auto st = readPemFile(what, path, pem); !st) return st;
  // A positive return counts certificates that failed to parse while others
  // loaded; system bundles may hold a few mbedTLS cannot read, so that is fine.
  int ret = mbedtls_x509_crt_parse(&ca_, pem.data(), pem.size());
  mbedtls_platform_zeroize(pem.data(), pem.size());
  if (ret < 0) {
    return tlsError(std::string(what) + " " + path +
                    ": cannot parse CA certificates: " + mbedtlsErrorText(ret));
  }
  if (ca_.version == 0) {
    return tlsError(std::string(what) + " " + path + ": no usable CA certificate in the file");
  }
  return {};
}

vt::Status MbedtlsContext::loadOwnCert() {
  if (options_.cert_file.empty()) return tlsError("cert_file: required for a TLS server");
  if (options_.key_file.empty()) return tlsError("key_file: required for a TLS server");
  std::vector<unsigned char> pem;
  if (auto st = readPemFile("cert_file", options_.cert_file, pem); !st) return st;
  int ret = mbedtls_x509_crt_parse(&own_cert_, pem.data(), pem.size());
  if (ret != 0) {
    std::string why = ret < 0 ? mbedtlsErrorText(ret)
                              : std::to_string(ret) + " certificate(s) in the chain did not parse";
    return tlsError("cert_file " + options_.cert_file + ": cannot parse certificate: " + why);
  }
  if (auto st = readPemFile("key_file", options_.key_file, pem); !st) return st;
  ret = mbedtls_pk_parse_key(&own_key_, pem.data(), pem.size(), nullptr, 0, mbedtls_ctr_drbg_random,
                             &drbg_);
  // The key is secret: do not leave it in freed heap memory.
  mbedtls_platform_zeroize(pem.data(), pem.size());
  if (ret != 0) {
    return tlsError(
        "key_file " + options_.key_file +
        ": cannot parse private key (expected an unencrypted PEM key): " + mbedtlsErrorText(ret));
  }
  ret = mbedtls_pk_check_pair(&own_cert_.pk, &own_key_, mbedtls_ctr_drbg_random, &drbg_);
  if (ret != 0) {
    return tlsError("key_file " + options_.key_file + " does not match cert_file " +
                    options_.cert_file + ": " + mbedtlsErrorText(ret));
  }
  ret = mbedtls_ssl_conf_own_cert(&conf_, &own_cert_, &own_key_);
  if (ret != 0) return tlsError("cert_file: cannot use certificate: " + mbedtlsErrorText(ret));
  return {};
}

vt::Status MbedtlsContext::init() {
  const bool server = options_.role == Role::kServer;
  auto validVersion = [](uint16_t v) { return v == 0x0303 || v == 0x0304; };
  if (!validVersion(options_.min_version) || !validVersion(options_.max_version) ||
      options_.min_version > options_.max_version) {
    return Error(Errc::kInvalidArgument,
                 "TLS versions: min_version/max_version must be 0x0303 (1.2) or 0x0304 (1.3) "
                 "with min <= max");
  }
  for (const auto& proto : options_.alpn) {
    if (proto.empty() || proto.size() > 255) {
      return Error(Errc::kInvalidArgument, "alpn: each protocol must be 1..255 bytes");
    }
  }
  if (!server && !options_.insecure && options_.server_name.empty()) {
    return Error(Errc::kInvalidArgument,
                 "server_name: required to verify the server certificate (or set insecure)");
  }

  if (auto st = ensurePsaInitialised(); !st) return st;
  if (auto st = seedRng(); !st) return st;

  int ret =
      mbedtls_ssl_config_defaults(&conf_, server ? MBEDTLS_SSL_IS_SERVER : MBEDTLS_SSL_IS_CLIENT,
                                  MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT);
  if (ret != 0) return tlsError("mbedtls_ssl_config_defaults: " + mbedtlsErrorText(ret));
  mbedtls_ssl_conf_rng(&conf_, mbedtls_ctr_drbg_random, &drbg_);
  mbedtls_ssl_conf_min_tls_version(&conf_,
                                   static_cast<mbedtls_ssl_protocol_version>(options_.min_version));
  mbedtls_ssl_conf_max_tls_version(&conf_,
                                   static_cast<mbedtls_ssl_protocol_version>(options_.max_version));

  if (!options_.alpn.empty()) {
    for (const auto& proto : options_.alpn) alpn_.push_back(proto.c_str());
    alpn_.push_back(nullptr);
    ret = mbedtls_ssl_conf_alpn_protocols(&conf_, alpn_.data());
    if (ret != 0) return tlsError("alpn: " + mbedtlsErrorText(ret));
  }

  // Key exchange groups, P-256 first: mbedTLS's P-256 (NIST fast reduction,
  // fixed-point comb) does an ECDHE in ~0.8 ms here where its X25519 (a
  // generic-bignum Montgomery ladder) takes ~1.0 ms (programs/test/benchmark
  // of mbedTLS 3.6.6; docs/performance.md "Churn"), and one ECDHE per side
  // is what every new connection costs. The client sends its key share for
  // the first group, so this order decides.
  static const uint16_t kGroups[] = {
      MBEDTLS_SSL_IANA_TLS_GROUP_SECP256R1, MBEDTLS_SSL_IANA_TLS_GROUP_X25519,
      MBEDTLS_SSL_IANA_TLS_GROUP_SECP384R1, MBEDTLS_SSL_IANA_TLS_GROUP_SECP521R1,
      MBEDTLS_SSL_IANA_TLS_GROUP_X448,      MBEDTLS_SSL_IANA_TLS_GROUP_NONE};
  mbedtls_ssl_conf_groups(&conf_, kGroups);
  // TLS 1.3: a full handshake (ECDHE) or a resumption that still runs
  // ECDHE; never pure PSK, which would give up forward secrecy.
  mbedtls_ssl_conf_tls13_key_exchange_modes(
      &conf_, MBEDTLS_SSL_TLS1_3_KEY_EXCHANGE_MODE_EPHEMERAL |
                  MBEDTLS_SSL_TLS1_3_KEY_EXCHANGE_MODE_PSK_EPHEMERAL);
  if (server) {
    // Clients are not asked for certificates; VLESS authenticates by UUID.
    mbedtls_ssl_conf_authmode(&conf_, MBEDTLS_SSL_VERIFY_NONE);
    mbedtls_ssl_conf_sni(&conf_, recordServerName, nullptr);
    if (options_.session_tickets) {
      if (options_.ticket_lifetime_s == 0 || options_.ticket_lifetime_s > 7 * 24 * 3600) {
        return Error(Errc::kInvalidArgument,
                     "ticket_lifetime: expected 1 s .. 7 days (RFC 8446 4.6.1)");
      }
      ret = mbedtls_ssl_ticket_setup(&ticket_, mbedtls_ctr_drbg_random, &drbg_,
                                     MBEDTLS_CIPHER_AES_256_GCM, options_.ticket_lifetime_s);
      if (ret != 0) return tlsError("session tickets: " + mbedtlsErrorText(ret));
      // One p_ticket for both callbacks: both wrappers take the context.
      mbedtls_ssl_conf_session_tickets_cb(&conf_, writeTicket, parseTicket, this);
      mbedtls_ssl_conf_new_session_tickets(&conf_, 1);
    } else {
      mbedtls_ssl_conf_new_session_tickets(&conf_, 0);
    }
    return loadOwnCert();
  }
  mbedtls_ssl_conf_session_tickets(&conf_, options_.session_tickets
                                               ? MBEDTLS_SSL_SESSION_TICKETS_ENABLED
                                               : MBEDTLS_SSL_SESSION_TICKETS_DISABLED);
  if (options_.session_tickets) {
    mbedtls_ssl_conf_tls13_enable_signal_new_session_tickets(
        &conf_, MBEDTLS_SSL_TLS1_3_SIGNAL_NEW_SESSION_TICKETS_ENABLED);
  }
  if (options_.insecure) {
    mbedtls_ssl_conf_authmode(&conf_, MBEDTLS_SSL_VERIFY_NONE);
    return {};
  }
  if (auto st = loadCa(); !st) return st;
  mbedtls_ssl_conf_ca_chain(&conf_, &ca_, nullptr);
  mbedtls_ssl_conf_authmode(&conf_, MBEDTLS_SSL_VERIFY_REQUIRED);
  return {};
}

void MbedtlsContext::SessionFree::operator()(mbedtls_ssl_session* s) const {
  mbedtls_ssl_session_free(s);
  delete s;
}

int MbedtlsContext::writeTicket(void* self, const mbedtls_ssl_session* session,
                                unsigned char* start, const unsigned char* end, size_t* tlen,
                                uint32_t* lifetime) {
  return mbedtls_ssl_ticket_write(&static_cast<MbedtlsContext*>(self)->ticket_, session, start, end,
                                  tlen, lifetime);
}

int MbedtlsContext::parseTicket(void* self, mbedtls_ssl_session* session, unsigned char* buf,
                                size_t len) {
  auto* ctx = static_cast<MbedtlsContext*>(self);
  int ret = mbedtls_ssl_ticket_parse(&ctx->ticket_, session, buf, len);
  if (ret == 0) ctx->stats_.ticketsAccepted++;
  return ret;
}

bool MbedtlsContext::offerSession(mbedtls_ssl_context* ssl) {
  if (!options_.session_tickets) return false;
  // Tickets older than the longest lifetime a server may give (7 days) are
  // useless; ours rotate hourly. A refused ticket only costs a full
  // handshake, so the age check here is coarse.
  const auto now = std::chrono::steady_clock::now();
  while (!sessions_.empty() && now - sessions_.front().at > std::chrono::hours(24)) {
    sessions_.pop_front();
  }
  if (sessions_.empty()) return false;
  if (mbedtls_ssl_set_session(ssl, sessions_.back().session.get()) != 0) {
    sessions_.pop_back();  // unusable: never offer it again
    return false;
  }
  if (sessions_.size() > 1) sessions_.pop_back();  // use once while others are left
  return true;
}

void MbedtlsContext::storeSession(const mbedtls_ssl_context* ssl) {
  std::unique_ptr<mbedtls_ssl_session, SessionFree> s(new mbedtls_ssl_session);
  mbedtls_ssl_session_init(s.get());
  if (mbedtls_ssl_get_session(ssl, s.get()) != 0) return;
  if (sessions_.size() >= kMaxSessions) sessions_.pop_front();
  sessions_.push_back(Stored{std::move(s), std::chrono::steady_clock::now()});
  stats_.ticketsReceived++;
}

Result<std::shared_ptr<TlsContext>> TlsContext::create(const TlsOptions& options) {
  auto ctx = std::make_shared<MbedtlsContext>(options);
  if (auto st = ctx->init(); !st) return st.error();
  return std::shared_ptr<TlsContext>(std::move(ctx));
}

}  // namespace vt::tls
