// Resolver: non-blocking name resolution through uv_getaddrinfo (libuv's
// thread pool). The callback never runs after cancel() or after the
// Resolver is destroyed; the in-flight request owns its own memory and is
// freed when libuv hands it back.
#pragma once

#include <netdb.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/error.h"
#include "event/loop.h"
#include "event/socket_address.h"

namespace vt::event {

// getaddrinfo's IPv4/IPv6 answers in order, duplicates removed, `port`
// set; or the error "resolve HOST: no IPv4/IPv6 address". Shared by
// Resolver and ResolverPool.
Result<std::vector<SocketAddress>> addressesFromAddrinfo(const addrinfo* res,
                                                         const std::string& host, uint16_t port);

class Resolver {
 public:
  using Callback = std::function<void(Result<std::vector<SocketAddress>>)>;

  explicit Resolver(Loop& loop);
  ~Resolver();
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  // One lookup at a time: a new resolve() cancels the previous one. The
  // callback always runs on a later loop iteration (IP literals included),
  // with the addresses in the resolver's order, duplicates removed.
  void resolve(const std::string& host, uint16_t port, Callback cb);
  void cancel();
  bool pending() const { return pending_ != nullptr; }

 private:
  struct Request;
  friend struct Request;
  void finish(Result<std::vector<SocketAddress>> result);

  Loop& loop_;
  Request* pending_ = nullptr;  // owned by libuv while in flight
  Callback cb_;
};

}  // namespace vt::event
