// The one place where mbedTLS return codes are interpreted. Every call into
// mbedTLS that can fail goes through classifyMbedtls(), and every failure
// message is built by mbedtlsErrorText(), so the engine and the context agree
// on what "retry", "closed" and "fatal" mean.
#pragma once

#include <string>

namespace vt::tls {

enum class MbedtlsOutcome {
  kWantIo,      // WANT_READ / WANT_WRITE / async: needs I/O, call again later
  kAgain,       // informational (TLS 1.3 NewSessionTicket): call again now
  kPeerClosed,  // close_notify from the peer
  kFatal,       // anything else: the connection is unusable
};

// `ret` must be negative (an mbedTLS error code).
MbedtlsOutcome classifyMbedtls(int ret) noexcept;

// "SSL - Processing of the Certificate handshake message failed
// (mbedtls -0x7A00)". Works for combined high/low-level codes.
std::string mbedtlsErrorText(int ret);

}  // namespace vt::tls
