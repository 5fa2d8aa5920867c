#include "server/metrics_listener.h"

#include <string_view>

#include "buffer/buffer_chain.h"
#include "core/log.h"
#include "event/timer.h"
#include "stream/tcp_stream.h"

namespace vt::server {

// One client connection: reads one request head, answers once.
MetricsRequest classifyMetricsRequest(std::string_view head) {
  // "GET /metrics HTTP/1.1": three words, one space apart.
  std::string_view line = head.substr(0, head.find('\n'));
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  const size_t sp1 = line.find(' ');
  const size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) {
    return MetricsRequest::kBad;
  }
  const std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  bool token = !method.empty();
  for (char c : method) token = token && c >= 'A' && c <= 'Z';
  if (!token || target.empty() || version.substr(0, 7) != "HTTP/1." || version.size() != 8) {
    return MetricsRequest::kBad;
  }
  if (method != "GET") return MetricsRequest::kNotGet;
  target = target.substr(0, target.find('?'));
  return target == "/metrics" ? MetricsRequest::kMetrics : MetricsRequest::kNotFound;
}

class MetricsListener::Conn : public event::DeferredDeletable, private stream::StreamCallbacks {
 public:
  Conn(MetricsListener& owner, std::unique_ptr<stream::TcpStream> tcp)
      : owner_(owner), tcp_(std::move(tcp)), deadline_(owner.loop_) {}

  void start() {
    deadline_.start(owner_.opts_.deadline_ms, [this] {
      ++owner_.stats_.timeouts;
      tcp_->close(stream::CloseReason::kTimeout, "metrics: deadline");
    });
    tcp_->setCallbacks(*this);  // starts reading
  }

 private:
  void onData(BufferChain& data, bool end_stream) override {
    if (answered_) {  // whatever follows the request is not read
      data.clear();
      return;
    }
    const size_t cap = owner_.opts_.max_head_bytes;
    const size_t take = std::min(data.size(), cap + 1 - std::min(head_.size(), cap + 1));
    if (take > 0) {
      const size_t at = head_.size();
      head_.resize(at + take);
      data.copyOut(0, head_.data() + at, take);
    }
    data.clear();
    size_t end = head_.find("\r\n\r\n");
    if (end == std::string::npos) end = head_.find("\n\n");
    if (end != std::string::npos && end <= cap) {
      answerRequest();
    } else if (head_.size() > cap) {
      answer(431, "Request Header Fields Too Large", "request head too large\n");
    } else if (end_stream) {
      answer(400, "Bad Request", "incomplete request\n");
    }
  }

  void onClose(stream::CloseReason, const std::string&) override {
    deadline_.stop();
    owner_.onConnClosed(this);
  }

  void answerRequest() {
    switch (classifyMetricsRequest(head_)) {
      case MetricsRequest::kBad: answer(400, "Bad Request", "bad request line\n"); return;
      case MetricsRequest::kNotGet:
        answer(405, "Method Not Allowed", "only GET\n", "Allow: GET\r\n");
        return;
      case MetricsRequest::kNotFound:
        answer(404, "Not Found", "not found; the metrics are at /metrics\n");
        return;
      case MetricsRequest::kMetrics: break;
    }
    ++owner_.stats_.requests;
    answer(200, "OK", owner_.body_(), "", "text/plain; version=0.0.4; charset=utf-8");
  }

  void answer(int code, const char* reason, const std::string& body, const char* extra = "",
              const char* type = "text/plain; charset=utf-8") {
    answered_ = true;
    head_.clear();
    head_.shrink_to_fit();
    if (code != 200) ++owner_.stats_.errors;
    std::string out = "HTTP/1.1 " + std::to_string(code) + " " + reason +
                      "\r\nContent-Type: " + type +
                      "\r\nContent-Length: " + std::to_string(body.size()) +
                      "\r\nConnection: close\r\n" + extra + "\r\n" + body;
    BufferChain b;
    b.append(out);
    // Our direction ends after the answer; the stream closes once the
    // client has closed too (or at the deadline).
    tcp_->write(b, true);
  }

  MetricsListener& owner_;
  std::unique_ptr<stream::TcpStream> tcp_;
  event::Timer deadline_;
  std::string head_;
  bool answered_ = false;
};

MetricsListener::MetricsListener(event::Loop& loop, BodyFn body, Options opts)
    : loop_(loop), body_(std::move(body)), opts_(opts) {}

Result<std::unique_ptr<MetricsListener>> MetricsListener::start(event::Loop& loop,
                                                                const event::SocketAddress& addr,
                                                                BodyFn body, Options opts) {
  std::unique_ptr<MetricsListener> m(new MetricsListener(loop, std::move(body), opts));
  MetricsListener* raw = m.get();
  auto l = stream::TcpListener::listen(
      loop, addr, [raw](std::unique_ptr<stream::TcpStream> s) { raw->onAccept(std::move(s)); }, 64);
  if (!l.ok()) {
    return Error(l.error().code, "metrics: listen " + addr.toString() + ": " + l.error().message);
  }
  m->listener_ = std::move(l).value();
  const std::string where = m->listener_->localAddress().toString();
  VT_INFO("metrics: serving http://%s/metrics", where.c_str());
  if (!addr.isLoopback()) {
    VT_WARN(
        "metrics on %s, not loopback: the counters name users and their traffic; keep it "
        "behind a firewall",
        where.c_str());
  }
  return m;
}

MetricsListener::~MetricsListener() {
  listener_.reset();
  conns_.clear();  // their streams close without callbacks
}

event::SocketAddress MetricsListener::localAddress() const {
  return listener_->localAddress();
}

void MetricsListener::onAccept(std::unique_ptr<stream::TcpStream> tcp) {
  if (conns_.size() >= opts_.max_connections) {
    ++stats_.refused;
    tcp->close(stream::CloseReason::kEvicted);
    loop_.deferredDelete(std::move(tcp));
    return;
  }
  tcp->setNoDelay(true);
  auto c = std::make_unique<Conn>(*this, std::move(tcp));
  Conn* raw = c.get();
  conns_.emplace(raw, std::move(c));
  raw->start();
}

void MetricsListener::onConnClosed(Conn* c) {
  auto it = conns_.find(c);
  if (it == conns_.end()) return;
  // Inside the stream's own callback: deleted on a later iteration.
  loop_.deferredDelete(std::move(it->second));
  conns_.erase(it);
}

}  // namespace vt::server
