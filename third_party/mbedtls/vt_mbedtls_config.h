/* vless-tun's adjustments to mbedTLS 3.6's default configuration. The default
 * already enables TLS 1.2 and TLS 1.3 (with middlebox compatibility mode),
 * SNI, ALPN, X.509 and the PSA crypto that TLS 1.3 needs. */
#ifndef VT_MBEDTLS_CONFIG_H
#define VT_MBEDTLS_CONFIG_H

/* Renegotiation is a DoS and complexity hazard we never need. */
#undef MBEDTLS_SSL_RENEGOTIATION
/* TLS 1.3 session tickets arrive after the handshake (tls_engine.cc stores them). */
/* Records at most 16 KiB either way; the default, stated for memory budgets. */
#define MBEDTLS_SSL_IN_CONTENT_LEN 16384
#define MBEDTLS_SSL_OUT_CONTENT_LEN 16384
/* Several loop threads in one process (tun.workers, two cores in one app)
 * run TLS handshakes at once, and PSA keeps its key slots (the ECDHE key
 * shares) in one process-wide store: without threading support two
 * handshakes raced on it (a leaked key slot under ASan). mbedTLS 3.6 locks
 * the store with MBEDTLS_THREADING_C. */
#define MBEDTLS_THREADING_C
#define MBEDTLS_THREADING_PTHREAD

#endif
