#include "event/resolver.h"

#include <uv.h>

#include <algorithm>

namespace vt::event {

Result<std::vector<SocketAddress>> addressesFromAddrinfo(const addrinfo* res,
                                                         const std::string& host, uint16_t port) {
  std::vector<SocketAddress> out;
  for (const addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
    SocketAddress a = SocketAddress::fromSockaddr(ai->ai_addr);
    a.setPort(port);
    if (std::find(out.begin(), out.end(), a) == out.end()) out.push_back(a);
  }
  if (out.empty()) return Error(Errc::kResolve, "resolve " + host + ": no IPv4/IPv6 address");
  return out;
}

struct Resolver::Request {
  uv_getaddrinfo_t req;
  Resolver* owner;  // null once cancelled or the Resolver is gone
  std::string host;
  uint16_t port;

  static void onDone(uv_getaddrinfo_t* req, int status, addrinfo* res) {
    auto* self = static_cast<Request*>(req->data);
    Resolver* owner = self->owner;
    if (owner == nullptr || status == UV_ECANCELED) {
      if (res != nullptr) uv_freeaddrinfo(res);
      delete self;
      return;
    }
    owner->pending_ = nullptr;
    if (status != 0) {
      std::string msg = "resolve " + self->host + ": " + uv_strerror(status);
      if (res != nullptr) uv_freeaddrinfo(res);
      delete self;
      owner->finish(Error(Errc::kResolve, std::move(msg)));
      return;
    }
    Result<std::vector<SocketAddress>> out = addressesFromAddrinfo(res, self->host, self->port);
    uv_freeaddrinfo(res);
    delete self;
    owner->finish(std::move(out));
  }
};

Resolver::Resolver(Loop& loop) : loop_(loop) {}

Resolver::~Resolver() {
  cancel();
}

void Resolver::resolve(const std::string& host, uint16_t port, Callback cb) {
  cancel();
  cb_ = std::move(cb);
  auto* r = new Request{};
  r->req.data = r;
  r->owner = this;
  r->host = host;
  r->port = port;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  // Null service: the port is patched in afterwards, which avoids a
  // services-database lookup per call.
  int rc = uv_getaddrinfo(loop_.raw(), &r->req, &Request::onDone, r->host.c_str(), nullptr, &hints);
  if (rc != 0) {
    delete r;
    // Deliver asynchronously like every other outcome; `alive` guards
    // against a cancel() or destruction in between.
    auto* marker = new Request{};
    marker->owner = this;
    pending_ = marker;
    std::string msg = "resolve " + host + ": " + uv_strerror(rc);
    loop_.post([this, marker, msg]() {
      bool live = marker->owner != nullptr;
      delete marker;
      if (!live) return;
      pending_ = nullptr;
      finish(Error(Errc::kResolve, msg));
    });
    return;
  }
  pending_ = r;
}

void Resolver::cancel() {
  if (pending_ == nullptr) return;
  pending_->owner = nullptr;
  // Best effort: a lookup already running in the pool completes, and
  // onDone then frees it without calling us.
  if (pending_->req.loop != nullptr) uv_cancel(reinterpret_cast<uv_req_t*>(&pending_->req));
  pending_ = nullptr;
  cb_ = nullptr;
}

void Resolver::finish(Result<std::vector<SocketAddress>> result) {
  Callback cb = std::move(cb_);
  cb_ = nullptr;
  if (cb) cb(std::move(result));
}

}  // namespace vt::event
