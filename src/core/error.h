// Error and Result: the data plane reports failures as values, never as
// exceptions. An Error carries a category code and a human-readable message
// that names what was wrong (a config key, a peer, a field).
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace vt {

enum class Errc {
  kOk = 0,
  kInvalidArgument,  // caller passed something unusable
  kMalformed,        // bytes from the network that do not parse
  kUnsupported,      // well-formed but not something we speak
  kIo,               // an OS call failed
  kTls,              // TLS engine failure
  kTimeout,
  kClosed,
  kConfig,  // config file problem: message names file, key, expectation
  kResolve,
  kLimit,  // a cap was reached
};

const char* errcName(Errc code) noexcept;

struct Error {
  Errc code = Errc::kOk;
  std::string message;

  Error() = default;
  Error(Errc c, std::string m) : code(c), message(std::move(m)) {}
  std::string toString() const;
};

// Result<T>: either a T or an Error. Small and explicit on purpose: callers
// check ok() and then take value() or error().
template <typename T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Result(Error err) : v_(std::move(err)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  T& value() & {
    assert(ok());
    return std::get<0>(v_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<0>(v_);
  }
  T&& value() && {
    assert(ok());
    return std::get<0>(std::move(v_));
  }
  const Error& error() const {
    assert(!ok());
    return std::get<1>(v_);
  }

 private:
  std::variant<T, Error> v_;
};

// Status: a Result with no value.
class Status {
 public:
  Status() = default;
  Status(Error err) : err_(std::move(err)) {}  // NOLINT(google-explicit-constructor)
  static Status okStatus() { return Status(); }

  bool ok() const noexcept { return err_.code == Errc::kOk; }
  explicit operator bool() const noexcept { return ok(); }
  const Error& error() const { return err_; }

 private:
  Error err_;
};

}  // namespace vt
