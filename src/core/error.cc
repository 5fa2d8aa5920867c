#include "core/error.h"

namespace vt {

const char* errcName(Errc code) noexcept {
  switch (code) {
    case Errc::kOk: return "ok";
    case Errc::kInvalidArgument: return "invalid argument";
    case Errc::kMalformed: return "malformed";
    case Errc::kUnsupported: return "unsupported";
    case Errc::kIo: return "io";
    case Errc::kTls: return "tls";
    case Errc::kTimeout: return "timeout";
    case Errc::kClosed: return "closed";
    case Errc::kConfig: return "config";
    case Errc::kResolve: return "resolve";
    case Errc::kLimit: return "limit";
  }
  return "unknown";
}

std::string Error::toString() const {
  std::string s = errcName(code);
  if (!message.empty()) {
    s += ": ";
    s += message;
  }
  return s;
}

}  // namespace vt
