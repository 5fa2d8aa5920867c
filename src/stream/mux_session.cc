#include "stream/mux_session.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "codec/smux.h"
#include "core/log.h"

namespace vt::stream {
namespace {

using codec::SmuxCommand;

constexpr uint8_t kSyn = static_cast<uint8_t>(SmuxCommand::kSyn);
constexpr uint8_t kFin = static_cast<uint8_t>(SmuxCommand::kFin);
constexpr uint8_t kPsh = static_cast<uint8_t>(SmuxCommand::kPsh);
constexpr uint8_t kNop = static_cast<uint8_t>(SmuxCommand::kNop);
constexpr uint8_t kUpd = static_cast<uint8_t>(SmuxCommand::kUpd);

// Output is handed to the inner stream in batches of about this size.
constexpr size_t kFlushBytes = 64 * 1024;
// Stream data stops at the inner stream's high watermark; only control
// frames (FIN for refused SYNs, UPD, NOP) can go past it. A peer that makes
// us queue this much without reading is hostile.
constexpr size_t kMaxInnerBuffered = 4 << 20;
// smux's initial guess of the peer window: a peer may send this much before
// it has seen our first UPD.
constexpr uint32_t kInitialPeerWindow = 262144;
// A stream that takes a whole window within this has its window doubled
// (up to max_stream_window): the window then covers about this long at
// the stream's rate, the bandwidth-delay product of a 100 ms path.
constexpr uint64_t kWindowGrowMs = 100;

}  // namespace

// ---------------------------------------------------------------- session

MuxSession::MuxSession(event::Loop& loop, Stream& inner, Role role, MuxOptions opt, Owner& owner)
    : loop_(loop),
      inner_(inner),
      role_(role),
      opt_(opt),
      owner_(owner),
      version_(opt.version),
      version_known_(role == Role::kClient),
      tick_(loop) {
  if (opt_.stream_window < 2 * codec::kSmuxMaxPshData) opt_.stream_window = 2 * codec::kSmuxMaxPshData;
  idle_since_ms_ = loop_.now();
  last_rx_ms_ = loop_.now();
  last_tx_ms_ = loop_.now();
  inner_.setCallbacks(*this);
}

MuxSession::~MuxSession() {
  *alive_ = false;
  if (!streams_.empty()) failAll(CloseReason::kReset, "mux session destroyed");
}

void MuxSession::start(BufferChain* initial) {
  if (started_) return;
  started_ = true;
  uint64_t tick = std::max<uint64_t>(1, std::min(opt_.keepalive_ms, opt_.dead_ms / 2));
  tick_.start(tick, [this] { onTick(); }, tick);
  if (role_ == Role::kClient) {
    inner_.connect();
    return;
  }
  connected_ = true;
  last_rx_ms_ = loop_.now();
  if (initial != nullptr && !initial->empty()) {
    rx_.moveFrom(*initial);
    processInput();
  }
}

std::unique_ptr<MuxStream> MuxSession::openStream(bool wait_answer) {
  if (role_ != Role::kClient || dying()) return nullptr;
  next_id_ += 2;
  if (next_id_ >= 0x7fffffffu) goaway_ = true;  // ids would wrap: new sessions take over
  auto s = std::unique_ptr<MuxStream>(new MuxStream(*this, next_id_, true, wait_answer));
  streams_[next_id_] = s.get();
  ++stats_.streamsOpened;
  return s;
}

void MuxSession::close(CloseReason reason, const std::string& detail) {
  if (closed_) return;
  closed_ = true;
  close_reason_ = reason;
  close_detail_ = detail;
  tick_.stop();
  failAll(reason, detail);
  if (!inner_closed_) inner_.close(reason);  // its onClose reports to the owner
  if (inner_closed_ && !reported_) {
    reported_ = true;
    owner_.onMuxClosed(close_reason_, close_detail_);
  }
}

void MuxSession::failAll(CloseReason reason, const std::string& detail) {
  std::vector<MuxStream*> all;
  all.reserve(streams_.size());
  for (auto& [id, s] : streams_) all.push_back(s);
  streams_.clear();
  ready_.clear();
  held_total_ = 0;
  CloseReason sr = reason == CloseReason::kTimeout ? CloseReason::kTimeout : CloseReason::kReset;
  std::string why = "mux connection " + std::string(closeReasonName(reason));
  if (!detail.empty()) why += ": " + detail;
  for (MuxStream* s : all) s->onSessionGone(sr, why);
}

// ---- inner callbacks

void MuxSession::onConnected() {
  if (closed_) return;
  connected_ = true;
  last_rx_ms_ = loop_.now();
  owner_.onMuxConnected();
  pump();
}

void MuxSession::onData(BufferChain& data, bool end_stream) {
  if (closed_) {
    data.clear();
    return;
  }
  last_rx_ms_ = loop_.now();
  rx_.moveFrom(data);
  if (end_stream) inner_eof_ = true;
  processInput();
}

void MuxSession::onAboveHighWatermark() { inner_above_ = true; }

void MuxSession::onBelowLowWatermark() {
  inner_above_ = false;
  pump();
}

void MuxSession::onClose(CloseReason reason, const std::string& detail) {
  inner_closed_ = true;
  if (!closed_) {
    closed_ = true;
    close_reason_ = reason;
    close_detail_ = detail;
    tick_.stop();
    failAll(reason, detail);
  }
  if (!reported_) {
    reported_ = true;
    owner_.onMuxClosed(close_reason_, close_detail_);
  }
}

// ---- input

void MuxSession::processInput() {
  if (processing_) return;  // the outer loop picks the new bytes up
  processing_ = true;
  auto alive = alive_;
  while (!closed_ && !paused_) {
    codec::SmuxDecodeResult r = codec::decodeSmuxFrame(rx_);
    if (r.status == codec::DecodeStatus::kNeedMore) break;
    if (r.status == codec::DecodeStatus::kInvalid) {
      processing_ = false;
      close(CloseReason::kProtocolError, "smux: " + r.error);
      return;
    }
    ++stats_.framesIn;
    BufferChain payload;
    rx_.drain(codec::kSmuxHeaderSize);
    if (r.header.command == SmuxCommand::kPsh) {
      payload.moveFrom(rx_, r.payload_size);
    } else {
      rx_.drain(r.payload_size);
    }
    if (!handleFrame(r.header.version, static_cast<uint8_t>(r.header.command), r.header.stream_id,
                     payload, r.upd_consumed, r.upd_window)) {
      break;
    }
    if (!*alive) return;
  }
  processing_ = false;
  if (!closed_ && inner_eof_ && !paused_ && rx_.empty() == false &&
      codec::decodeSmuxFrame(rx_).status == codec::DecodeStatus::kNeedMore) {
    close(CloseReason::kProtocolError, "smux: connection ended inside a frame");
    return;
  }
  if (!closed_ && inner_eof_ && rx_.empty()) {
    close(CloseReason::kRemoteClose, "the peer ended the connection");
  }
}

bool MuxSession::handleFrame(uint8_t ver, uint8_t cmd, uint32_t sid, BufferChain& payload,
                             uint32_t consumed, uint32_t window) {
  if (!version_known_) {
    version_ = ver;
    version_known_ = true;
  } else if (ver != version_) {
    close(CloseReason::kProtocolError, "smux version changed from " + std::to_string(version_) +
                                           " to " + std::to_string(ver));
    return false;
  }
  if (cmd == kNop) return true;
  if (cmd == kSyn) {
    if (role_ == Role::kClient) {
      // We accept no streams from the server: refuse it.
      ++stats_.unknownFrames;
      sendControl(kFin, sid);
      return true;
    }
    if ((sid & 1) == 0) {
      close(CloseReason::kProtocolError, "smux: client SYN with even stream id " + std::to_string(sid));
      return false;
    }
    if (streams_.count(sid) != 0) return true;  // smux ignores a repeated SYN
    acceptStream(sid);
    return true;
  }
  auto it = streams_.find(sid);
  if (it == streams_.end()) {
    ++stats_.unknownFrames;  // a stream that already ended (or never was)
    // Data for a stream we abandoned: our FIN only ended our direction, so
    // the peer still serves it (a target we no longer read). A second FIN
    // says the stream is gone (docs/protocol.md "Closing"); once per id.
    const bool ours = (sid & 1) == 1 && (role_ == Role::kClient ? sid <= next_id_ : sid <= max_accepted_);
    if (cmd == kPsh && ours && sid != last_abandoned_fin_) {
      last_abandoned_fin_ = sid;
      ++stats_.abandonedFins;
      sendControl(kFin, sid);
    }
    return true;
  }
  MuxStream* s = it->second;
  if (cmd == kPsh) {
    stats_.bytesIn += payload.size();
    s->onPsh(payload);
  } else if (cmd == kFin) {
    s->onFin();
  } else if (cmd == kUpd) {
    s->onUpd(consumed, window);
  }
  return true;
}

void MuxSession::acceptStream(uint32_t sid) {
  if (goaway_ || (opt_.max_streams != 0 && streams_.size() >= opt_.max_streams)) {
    ++stats_.streamsRefused;
    sendControl(kFin, sid);
    return;
  }
  auto s = std::unique_ptr<MuxStream>(new MuxStream(*this, sid, false, false));
  streams_[sid] = s.get();
  max_accepted_ = std::max(max_accepted_, sid);
  ++stats_.streamsOpened;
  owner_.onMuxStream(std::move(s));
}

// ---- output

void MuxSession::sendControl(uint8_t cmd, uint32_t sid) {
  if (closed_) return;
  codec::encodeSmuxControl(version_, static_cast<SmuxCommand>(cmd), sid, out_);
  ++stats_.framesOut;
  flushOut();
}

void MuxSession::sendUpd(uint32_t sid, uint32_t consumed, uint32_t window) {
  if (closed_ || version_ != codec::kSmuxVersion2) return;
  codec::encodeSmuxUpd(sid, consumed, window, out_);
  ++stats_.framesOut;
  flushOut();
}

void MuxSession::markReady(MuxStream& s) {
  if (!s.ready_) {
    s.ready_ = true;
    ready_.push_back(s.id_);
  }
  pump();
}

void MuxSession::pump() {
  if (pumping_ || closed_) return;
  pumping_ = true;
  auto alive = alive_;
  while (!closed_ && !inner_above_ && !ready_.empty()) {
    uint32_t id = ready_.front();
    ready_.pop_front();
    auto it = streams_.find(id);
    if (it == streams_.end() || !it->second->ready_) continue;
    MuxStream* s = it->second;
    s->ready_ = false;
    bool more = s->sendOne(out_);  // counts its frames (PSH and FIN may go together)
    if (!*alive) return;
    // sendOne may have finished (and forgotten) the stream.
    if (more && streams_.count(id) != 0 && !s->ready_) {
      s->ready_ = true;
      ready_.push_back(id);
    }
    if (out_.size() >= kFlushBytes) flushOut();
  }
  flushSoon();
  pumping_ = false;
}

void MuxSession::flushSoon() {
  if (out_.empty() || flush_posted_) return;
  flush_posted_ = true;
  std::weak_ptr<bool> alive = alive_;
  loop_.post([this, alive] {
    if (alive.expired()) return;
    flush_posted_ = false;
    if (!closed_) flushOut();
  });
}

void MuxSession::flushOut() {
  if (out_.empty() || inner_closed_) {
    out_.clear();
    return;
  }
  last_tx_ms_ = loop_.now();
  ++stats_.innerWrites;
  inner_.write(out_, false);
  if (inner_.bufferedBytes() > kMaxInnerBuffered) {
    std::weak_ptr<bool> alive = alive_;
    loop_.post([this, alive] {
      if (alive.expired() || closed_) return;
      close(CloseReason::kProtocolError, "the peer does not read (over 4 MiB queued)");
    });
  }
}

void MuxSession::forget(MuxStream& s) {
  auto it = streams_.find(s.id_);
  if (it != streams_.end() && it->second == &s) streams_.erase(it);
  if (streams_.empty()) idle_since_ms_ = loop_.now();
}

size_t MuxSession::heldLimit() const {
  return version_ == codec::kSmuxVersion1 ? opt_.v1_receive_buffer : opt_.v2_receive_buffer;
}

void MuxSession::addHeld(size_t n) {
  held_total_ += n;
  if (!paused_ && held_total_ > heldLimit()) {
    paused_ = true;
    ++stats_.v1Pauses;
    inner_.readDisable(true);
  }
}

void MuxSession::subHeld(size_t n) {
  held_total_ -= std::min(n, held_total_);
  if (paused_ && held_total_ <= heldLimit() / 2) {
    paused_ = false;
    last_rx_ms_ = loop_.now();  // the dead timer restarts with reading
    inner_.readDisable(false);
    if (!rx_.empty() || inner_eof_) {
      std::weak_ptr<bool> alive = alive_;
      loop_.post([this, alive] {
        if (!alive.expired()) processInput();
      });
    }
  }
}

void MuxSession::onTick() {
  if (closed_) return;
  uint64_t now = loop_.now();
  // While VER 1 input is paused we read nothing, NOPs included: the wait is
  // ours, not the peer's silence (smux does not time out then either).
  if (!paused_ && now - last_rx_ms_ >= opt_.dead_ms) {
    // libuv runs timers before it reads sockets: after the process stood
    // still (a phone's extension suspended, a loaded machine) the peer's
    // NOPs may be waiting unread. Look once more after one read pass.
    if (!dead_suspect_) {
      dead_suspect_ = true;
      uint64_t tick = std::max<uint64_t>(1, std::min(opt_.keepalive_ms, opt_.dead_ms / 2));
      tick_.start(std::min<uint64_t>(100, tick), [this] { onTick(); }, tick);
      return;
    }
    close(CloseReason::kTimeout,
          "nothing from the peer for " + std::to_string(now - last_rx_ms_) + " ms");
    return;
  }
  dead_suspect_ = false;
  // Server role: no NOP before the peer's first frame told us the VER (a
  // VER 1 peer dies on a VER 2 frame).
  if (connected_ && version_known_ && now - last_tx_ms_ >= opt_.keepalive_ms) {
    sendControl(kNop, 0);
  }
}

// ---------------------------------------------------------------- stream

MuxStream::MuxStream(MuxSession& session, uint32_t id, bool outbound, bool wait_answer)
    : session_(&session),
      id_(id),
      window_(session.opt_.stream_window),
      epoch_ms_(session.loop_.now()),
      outbound_(outbound),
      wait_answer_(outbound && wait_answer),
      syn_sent_(!outbound),
      answered_(!outbound || !wait_answer) {}

void MuxStream::setReceiveWindow(uint32_t window) {
  if (closed_ || session_ == nullptr || session_->version_ != codec::kSmuxVersion2 ||
      window <= window_) {
    return;
  }
  window_ = window;
  // Before the SYN the peer has no such stream: connect() announces it.
  if (syn_sent_) sendWindow();
}

void MuxStream::sendWindow() {
  consumed_unreported_ = 0;
  session_->sendUpd(id_, consumed_, window_);
}

MuxStream::~MuxStream() {
  *alive_ = false;
  closed_ = true;  // (a stream closing may still be in the session: see close())
  callbacks_ = nullptr;
  if (session_ != nullptr && syn_sent_ && !fin_sent_) {
    fin_sent_ = true;
    session_->sendControl(kFin, id_);
  }
  leaveSession();
}

std::string MuxStream::peerName() const {
  return (session_ != nullptr ? session_->peerName() : std::string("-")) + "#" +
         std::to_string(id_);
}

void MuxStream::connect() {
  if (!outbound_ || syn_sent_ || closed_) return;
  if (session_ == nullptr) return;  // onSessionGone has reported already
  syn_sent_ = true;
  // SYN, then what was written before, in one write where possible.
  codec::encodeSmuxControl(session_->version_, SmuxCommand::kSyn, id_, session_->out_);
  ++session_->stats_.framesOut;
  if (window_ != session_->opt_.stream_window) {
    codec::encodeSmuxUpd(id_, consumed_, window_, session_->out_);
    ++session_->stats_.framesOut;
  }
  if (sendable() > 0 || fin_wanted_ || empty_psh_) {
    session_->markReady(*this);  // pumps; the write follows at the end of the pass
  } else {
    session_->flushOut();
  }
  if (!wait_answer_) {
    std::weak_ptr<bool> alive = alive_;
    session_->loop_.post([this, alive] {
      if (alive.expired() || closed_ || callbacks_ == nullptr) return;
      callbacks_->onConnected();
    });
  }
}

void MuxStream::write(BufferChain& data, bool end_stream) {
  if (closed_ || fin_wanted_ || session_ == nullptr) {
    data.clear();
    return;
  }
  if (data.empty() && !end_stream) empty_psh_ = true;
  pending_.moveFrom(data);
  if (end_stream) fin_wanted_ = true;
  if (!above_ && pending_.size() > session_->opt_.stream_wm.high) {
    above_ = true;
    if (callbacks_ != nullptr) callbacks_->onAboveHighWatermark();
    if (closed_ || session_ == nullptr) return;
  }
  if (syn_sent_) session_->markReady(*this);
}

size_t MuxStream::sendable() const {
  if (!syn_sent_ || session_ == nullptr) return 0;
  size_t n = pending_.size();
  if (session_->version_ != codec::kSmuxVersion2) return n;
  int64_t inflight = static_cast<uint32_t>(written_ - peer_consumed_);
  int64_t win = static_cast<int64_t>(peer_window_) - inflight;
  if (win <= 0) return 0;
  return std::min<size_t>(n, static_cast<size_t>(win));
}

bool MuxStream::sendOne(BufferChain& out) {
  if (closed_ || session_ == nullptr) return false;
  size_t n = std::min(sendable(), codec::kSmuxMaxPshData);
  uint8_t ver = session_->version_;
  if (n > 0) {
    BufferChain chunk;
    chunk.moveFrom(pending_, n);
    codec::encodeSmuxPsh(ver, id_, chunk, out);
    written_ += static_cast<uint32_t>(n);
    session_->stats_.bytesOut += n;
    ++session_->stats_.framesOut;
    empty_psh_ = false;
  } else if (empty_psh_) {
    BufferChain none;
    codec::encodeSmuxPsh(ver, id_, none, out);
    ++session_->stats_.framesOut;
    empty_psh_ = false;
  }
  if (pending_.empty() && fin_wanted_ && !fin_sent_) {
    codec::encodeSmuxControl(ver, SmuxCommand::kFin, id_, out);
    ++session_->stats_.framesOut;
    fin_sent_ = true;
  }
  auto alive = alive_;
  checkBelow();
  if (!*alive || closed_) return false;
  if (fin_sent_ && eof_delivered_) {
    maybeFinish();
    return false;
  }
  return sendable() > 0 || empty_psh_ || (fin_wanted_ && !fin_sent_ && pending_.empty());
}

void MuxStream::checkBelow() {
  if (above_ && session_ != nullptr && pending_.size() <= session_->opt_.stream_wm.low) {
    above_ = false;
    if (callbacks_ != nullptr) callbacks_->onBelowLowWatermark();
  }
}

void MuxStream::readDisable(bool disable) {
  if (disable) {
    ++read_disabled_;
    return;
  }
  if (read_disabled_ > 0 && --read_disabled_ == 0) deliver();
}

void MuxStream::onPsh(BufferChain& payload) {
  if (closed_) return;
  auto alive = alive_;
  if (!answered_) {
    answered_ = true;
    if (callbacks_ != nullptr) callbacks_->onConnected();
    if (!*alive || closed_) return;
  }
  if (fin_received_ || payload.empty()) return;  // data after FIN: dropped
  size_t n = payload.size();
  held_.moveFrom(payload);
  session_->addHeld(n);
  if (session_->version_ == codec::kSmuxVersion2 &&
      held_.size() > std::max(window_, kInitialPeerWindow)) {
    session_->close(CloseReason::kProtocolError,
                    "stream " + std::to_string(id_) + ": the peer sent past its window");
    return;
  }
  deliver();
}

void MuxStream::onFin() {
  if (closed_) return;
  if (fin_received_) {
    // A second FIN: the peer abandoned the stream (it sent its FIN, closed
    // it, and then got our data). Nothing more is read or written.
    if (session_ != nullptr) ++session_->stats_.peerAbandoned;
    close(CloseReason::kReset, "the peer abandoned the stream");
    return;
  }
  if (!answered_) {
    close(CloseReason::kConnectFailed, "the server could not connect to the target");
    return;
  }
  fin_received_ = true;
  deliver();
}

void MuxStream::onUpd(uint32_t consumed, uint32_t window) {
  if (closed_) return;
  peer_consumed_ = consumed;
  peer_window_ = window;
  if (sendable() > 0) session_->markReady(*this);
}

void MuxStream::deliver() {
  if (delivering_) return;  // the outer call loops
  delivering_ = true;
  auto alive = alive_;
  while (!closed_ && read_disabled_ == 0 && callbacks_ != nullptr && session_ != nullptr) {
    bool eof = fin_received_ && !eof_delivered_;
    if (held_.empty() && !eof) break;
    size_t before = held_.size();
    // The session counts `before` for us until we report what was taken. A
    // stream that leaves in the callback (close()) leaves that to us.
    MuxSession* session = session_;
    std::shared_ptr<bool> session_alive = session->alive_;
    callbacks_->onData(held_, fin_received_);
    if (!*alive) return;
    size_t taken = before - std::min(before, held_.size());
    if (fin_received_ && held_.empty()) eof_delivered_ = true;
    if (session_ == nullptr && *session_alive && !session->closed_) {
      session->subHeld(before);  // (a closed session has zeroed its count)
    } else if (session_ != nullptr) {
      // VER 1: may resume the inner stream, which may deliver (and close
      // the session, and us) right here.
      session_->subHeld(taken);
      if (session_ != nullptr && session_->version_ == codec::kSmuxVersion2 && taken > 0) {
        consumed_ += static_cast<uint32_t>(taken);
        consumed_unreported_ += static_cast<uint32_t>(taken);
        // A whole window taken within kWindowGrowMs, and nothing left
        // over: the window, not the reader, sets the pace (the header's
        // "Window growth").
        if (static_cast<uint32_t>(consumed_ - epoch_consumed_) >= window_) {
          uint64_t now = session_->loop_.now();
          bool grow = now - epoch_ms_ < kWindowGrowMs && held_.empty() &&
                      window_ < session_->opt_.max_stream_window;
          epoch_ms_ = now;
          epoch_consumed_ = consumed_;
          if (grow) {
            window_ = std::min<uint32_t>(window_ * 2, session_->opt_.max_stream_window);
            ++session_->stats_.windowGrowths;
            sendWindow();
          }
        }
        // Before our first UPD the peer stops at kInitialPeerWindow bytes in
        // flight: a larger window must still be reported before that.
        if (consumed_unreported_ >= std::min(window_, kInitialPeerWindow) / 2) sendWindow();
      }
    }
    // The user keeps the rest for now (also with end_stream: offering the
    // same bytes again would spin forever).
    if (taken == 0) break;
    if (eof_delivered_) break;
  }
  delivering_ = false;
  if (!closed_ && eof_delivered_) maybeFinish();
}

void MuxStream::maybeFinish() {
  if (closed_ || !fin_sent_ || !eof_delivered_) return;
  closed_ = true;
  // onClose first: leaving may resume the inner stream, which may close
  // the session (and report to its owner) right there.
  auto alive = alive_;
  StreamCallbacks* cb = std::exchange(callbacks_, nullptr);
  if (cb != nullptr) cb->onClose(CloseReason::kRemoteClose, "");
  if (*alive) leaveSession();
}

void MuxStream::close(CloseReason reason, const std::string& detail) {
  if (closed_) return;
  closed_ = true;
  pending_.clear();
  // onClose first: writing the FIN or leaving may close the inner stream
  // (and the session, which then reports to its owner) right there.
  auto alive = alive_;
  StreamCallbacks* cb = std::exchange(callbacks_, nullptr);
  if (cb != nullptr) cb->onClose(reason, detail);
  if (!*alive) return;
  if (session_ != nullptr && syn_sent_ && !fin_sent_) {
    fin_sent_ = true;
    session_->sendControl(kFin, id_);
  }
  leaveSession();
}

void MuxStream::onSessionGone(CloseReason reason, const std::string& detail) {
  session_ = nullptr;
  pending_.clear();
  held_.clear();  // also for a stream in the middle of its close()
  if (closed_) return;
  closed_ = true;
  StreamCallbacks* cb = std::exchange(callbacks_, nullptr);
  if (cb != nullptr) cb->onClose(reason, detail);
}

void MuxStream::leaveSession() {
  if (session_ == nullptr) return;
  // Out of the session first: subHeld may resume the inner stream, which
  // may deliver (and close the session) right here.
  MuxSession* session = std::exchange(session_, nullptr);
  size_t held = held_.size();
  held_.clear();
  session->forget(*this);
  if (!delivering_) session->subHeld(held);  // else deliver() settles it
}

}  // namespace vt::stream
