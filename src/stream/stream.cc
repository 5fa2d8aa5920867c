#include "stream/stream.h"

namespace vt::stream {

const char* closeReasonName(CloseReason r) noexcept {
  switch (r) {
    case CloseReason::kLocalClose: return "local_close";
    case CloseReason::kRemoteClose: return "remote_close";
    case CloseReason::kReset: return "reset";
    case CloseReason::kConnectFailed: return "connect_failed";
    case CloseReason::kTimeout: return "timeout";
    case CloseReason::kProtocolError: return "protocol_error";
    case CloseReason::kTlsError: return "tls_error";
    case CloseReason::kResolveError: return "resolve_error";
    case CloseReason::kEvicted: return "evicted";
  }
  return "unknown";
}

}  // namespace vt::stream
