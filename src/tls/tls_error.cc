#include "tls/tls_error.h"

#include <mbedtls/error.h>
#include <mbedtls/ssl.h>

#include <cstdio>

namespace vt::tls {

MbedtlsOutcome classifyMbedtls(int ret) noexcept {
  switch (ret) {
    case MBEDTLS_ERR_SSL_WANT_READ:
    case MBEDTLS_ERR_SSL_WANT_WRITE:
    case MBEDTLS_ERR_SSL_ASYNC_IN_PROGRESS:
    case MBEDTLS_ERR_SSL_CRYPTO_IN_PROGRESS: return MbedtlsOutcome::kWantIo;
    case MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET:
      // Only signalled when enabled in the config (session_tickets); the
      // engine stores the ticket where it sees this, then continues.
      return MbedtlsOutcome::kAgain;
    case MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY: return MbedtlsOutcome::kPeerClosed;
    default: return MbedtlsOutcome::kFatal;
  }
}

std::string mbedtlsErrorText(int ret) {
  char text[256];
  text[0] = '\0';
  mbedtls_strerror(ret, text, sizeof(text));
  char code[32];
  std::snprintf(code, sizeof(code), "-0x%04X", ret < 0 ? -ret : ret);
  std::string out = text[0] != '\0' ? text : "unknown error";
  out += " (mbedtls ";
  out += code;
  out += ")";
  return out;
}

}  // namespace vt::tls
