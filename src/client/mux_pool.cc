#include "client/mux_pool.h"

#include <algorithm>
#include <cinttypes>

#include "client/client.h"
#include "codec/smux.h"
#include "core/log.h"

namespace vt::client {

MuxPool::MuxPool(Client& client, const config::ClientMuxConfig& cfg)
    : client_(client), cfg_(cfg), timer_(client.loop()) {
  uint64_t tick = std::max<uint64_t>(100, std::min<uint64_t>(cfg_.idle_timeout_ms / 2, 5'000));
  timer_.start(tick, [this] { onTimer(); }, tick);
}

MuxPool::~MuxPool() {
  *alive_ = false;
  clear();
}

size_t MuxPool::streams() const {
  size_t n = 0;
  for (const auto& c : conns_) n += c->mux ? c->mux->streamCount() : 0;
  return n;
}

bool MuxPool::usable(const Conn& c) const {
  return !c.closedByUs && c.mux != nullptr && !c.mux->dying();
}

size_t MuxPool::spare() const {
  size_t n = 0;
  for (const auto& c : conns_) {
    if (usable(*c) && c->mux->streamCount() * 4 < cfg_.max_streams * 3) ++n;
  }
  return n;
}

void MuxPool::refill() {
  if (cleared_ || !client_.serverAddressKnown()) return;
  if (hadFailure_ && client_.loop().now() - lastFailMs_ < kRetryMs) return;
  for (size_t have = spare(); have < cfg_.warm; ++have) {
    if (dial() == nullptr) return;
    ++stats_.warmDials;
  }
}

MuxPool::Conn* MuxPool::pick() {
  Conn* best = nullptr;
  for (auto& c : conns_) {
    if (!usable(*c)) continue;
    size_t n = c->mux->streamCount();
    if (n >= cfg_.max_streams) continue;
    if (best == nullptr || n > best->mux->streamCount()) best = c.get();
  }
  return best;
}

MuxPool::Conn* MuxPool::dial() {
  codec::Request req;
  req.command = codec::Command::kMux;
  req.target = codec::Address::fromDomain("v1.mux.cool", 1);
  std::unique_ptr<stream::VlessClientStream> inner = client_.makeStream(std::move(req));
  if (inner == nullptr) return nullptr;
  auto c = std::make_unique<Conn>(*this, client_.takeId(nextId_));
  c->openedMs = client_.loop().now();
  stream::MuxOptions o;
  o.version = cfg_.version;
  o.stream_window = cfg_.stream_window;
  o.max_stream_window = cfg_.max_stream_window;
  o.keepalive_ms = cfg_.keepalive_ms;
  o.dead_ms = cfg_.dead_ms;
  stream::Stream& raw = *inner;
  c->inner = std::move(inner);
  stream::MuxSession::Owner& owner = *c;
  c->mux = std::make_unique<stream::MuxSession>(client_.loop(), raw,
                                                stream::MuxSession::Role::kClient, o, owner);
  Conn* p = c.get();
  conns_.push_back(std::move(c));
  p->it = std::prev(conns_.end());
  ++stats_.connectionsOpened;
  stats_.maxConnections = std::max<uint64_t>(stats_.maxConnections, conns_.size());
  VT_DEBUG("mux #%" PRIu64 ": connecting (%zu connections)", p->id, conns_.size());
  p->mux->start(nullptr);
  return p;
}

std::unique_ptr<stream::MuxStream> MuxPool::open(const codec::SimpleSocksHeader& h,
                                                  bool waitAnswer) {
  if (cleared_) return nullptr;
  Conn* c = pick();
  if (c == nullptr) c = dial();
  if (c == nullptr) return nullptr;
  std::unique_ptr<stream::MuxStream> s =
      c->mux->openStream(waitAnswer && cfg_.version == codec::kSmuxVersion2);
  if (s == nullptr) return nullptr;
  ++stats_.streamsOpened;
  if (h.command == codec::SimpleSocksCommand::kUdp) s->setReceiveWindow(cfg_.datagram_window);
  BufferChain head;
  codec::encodeSimpleSocks(h, head);
  s->write(head, false);  // goes out with the SYN on connect()
  stats_.maxStreams = std::max<uint64_t>(stats_.maxStreams, streams());
  refill();  // the next flow finds room without a handshake
  return s;
}

void MuxPool::Conn::onMuxConnected() {
  pool.client_.noteServerReached();
  VT_DEBUG("mux #%" PRIu64 ": connected to %s in %" PRIu64 " ms", id, mux->peerName().c_str(),
           pool.client_.loop().now() - openedMs);
}

void MuxPool::Conn::onMuxClosed(stream::CloseReason reason, const std::string& detail) {
  pool.onConnClosed(*this, reason, detail);
}

uint64_t MuxPool::framesSent() const {
  uint64_t n = stats_.framesOut;
  for (const auto& c : conns_) n += c->mux ? c->mux->stats().framesOut : 0;
  return n;
}

uint64_t MuxPool::connectionWrites() const {
  uint64_t n = stats_.innerWrites;
  for (const auto& c : conns_) n += c->mux ? c->mux->stats().innerWrites : 0;
  return n;
}

uint64_t MuxPool::windowGrowths() const {
  uint64_t n = stats_.windowGrowths;
  for (const auto& c : conns_) n += c->mux ? c->mux->stats().windowGrowths : 0;
  return n;
}

void MuxPool::onConnClosed(Conn& c, stream::CloseReason reason, const std::string& detail) {
  const stream::MuxStats& st = c.mux->stats();
  stats_.framesOut += st.framesOut;
  stats_.innerWrites += st.innerWrites;
  stats_.windowGrowths += st.windowGrowths;
  if (c.closedByUs) {
    VT_DEBUG("mux #%" PRIu64 ": closed: streams=%" PRIu64 " up=%" PRIu64 " down=%" PRIu64, c.id,
             st.streamsOpened, st.bytesOut, st.bytesIn);
  } else {
    ++stats_.connectionsLost;
    const bool repeat = hadFailure_ && st.framesIn == 0;
    if (st.framesIn == 0) {
      ++stats_.dialsFailed;
      hadFailure_ = true;  // the next background dial waits kRetryMs
      lastFailMs_ = client_.loop().now();
    }
    // A warm connection that carried nothing is worth a DEBUG line only
    // (the server ends idle ones), and so is a failed dial after another
    // (a server that is down would repeat it per flow; the stop line
    // counts them).
    VT_LOG(st.streamsOpened == 0 || repeat ? LogLevel::kDebug : LogLevel::kWarn,
           "mux #%" PRIu64 " to %s lost after %" PRIu64 " ms: %s%s%s (streams=%" PRIu64
           " up=%" PRIu64 " down=%" PRIu64 "); new flows open a new connection",
           c.id, c.inner ? c.inner->peerName().c_str() : "-", client_.loop().now() - c.openedMs,
           stream::closeReasonName(reason), detail.empty() ? "" : ": ", detail.c_str(),
           st.streamsOpened, st.bytesOut, st.bytesIn);
    if (st.bytesIn == 0 && st.framesIn == 0) client_.onDialFailed();
  }
  if (st.framesIn != 0) hadFailure_ = false;
  std::unique_ptr<Conn> own = std::move(*c.it);
  conns_.erase(c.it);
  client_.loop().deferredDelete(std::move(own));
  if (!cleared_) {
    client_.loop().post([this, alive = std::weak_ptr<bool>(alive_)] {
      if (!alive.expired()) refill();
    });
  }
}

void MuxPool::onTimer() {
  uint64_t now = client_.loop().now();
  for (auto it = conns_.begin(); it != conns_.end();) {
    Conn& c = **it++;  // closing erases it from conns_
    if (c.closedByUs || c.mux == nullptr) continue;
    uint64_t since = c.mux->idleSinceMs();
    // An idle connection that is one of the warm ones stays (the server
    // ends it after its reuse_idle_timeout; refill() dials a new one).
    if (since != 0 && now - since >= cfg_.idle_timeout_ms && spare() > cfg_.warm) {
      c.closedByUs = true;
      ++stats_.connectionsIdled;
      c.mux->close(stream::CloseReason::kLocalClose, "idle");
    }
  }
  refill();  // retries after a failure, and whatever was missed
}

void MuxPool::dropIdle() {
  if (cleared_) return;
  std::vector<Conn*> idle;
  for (auto& c : conns_) {
    if (c->mux->streamCount() == 0) idle.push_back(c.get());
  }
  for (Conn* c : idle) closeConn(*c, "network changed");
  refill();
}

void MuxPool::closeConn(Conn& c, const char* why) {
  c.closedByUs = true;
  c.mux->close(stream::CloseReason::kLocalClose, why);
  // If the inner stream has not reported its close yet (it is still
  // listed), let it go now.
  for (auto it = conns_.begin(); it != conns_.end(); ++it) {
    if (it->get() != &c) continue;
    std::unique_ptr<Conn> own = std::move(*it);
    conns_.erase(it);
    client_.loop().deferredDelete(std::move(own));
    return;
  }
}

void MuxPool::clear() {
  cleared_ = true;
  timer_.stop();
  while (!conns_.empty()) closeConn(*conns_.front(), "client stopping");
}

}  // namespace vt::client
