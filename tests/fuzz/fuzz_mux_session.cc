// A server-role MuxSession fed hostile bytes through an in-process fake inner
// stream (libFuzzer needs in-process, deterministic input), with an owner
// whose streams echo, sink, hold, half-take, close and let go, so stream code
// paths run too. Checks: no crash, no leak, no sanitizer report, bounded
// memory, and the session's invariants (mux_session.h is the spec).
//
// Input:
//   [0] options: bits 0-1 stream_window, 2-4 max_streams (0..4), 5-6
//       v1_receive_buffer, 7 the inner stream delivers synchronously inside
//       readDisable(false) (as TlsStream does) instead of on the next step
//   [1] bits 0-1 stream watermarks, 2-3 inner high watermark, 4 keepalive
//       1 ms, 5 dead 2 ms (both otherwise far beyond a run; time only
//       passes in loop steps), 6 onMuxClosed releases the session
//       (deferred delete), 7 tear down by destroying the session unclosed
//   [2..5] stream behaviours, 3 bits per accepted stream (LE, the first 10):
//       0 echo (read-disabled above its watermark), 1 sink (ends after the
//       peer), 2 take half, 3 hold (read-disabled), 4 keep without
//       callbacks, 5 destroy at once, 6 release (deferred delete), 7 answer
//       (PSH LEN 0) and close on data; streams accepted 0th, 2nd, ... are
//       released in their onClose, the others kept to the end
//   [6] length of the chunk handed to start(), then that many bytes
//   then steps: one op byte (low nibble: what, high nibble: argument):
//     0-6  feed the next (byte + 1) input bytes to the session
//     7    feed (arg + 1) * 4 KiB copies of the next byte (2 MiB per input)
//     8    toggle readDisable on stream arg (streams in accept order)
//     9    close (arg even) / destroy (arg odd) stream arg
//     10   write on stream arg: empty, data, end_stream, data + end_stream
//     11   drain the inner stream's queue (arg odd: half of it)
//     12   the peer ends (EOF)
//     13   the peer resets / the inner stream fails inside its next write /
//          inside its next readDisable(false)
//     14   one loop step (posted work, deferred deletes, timers)
//     15   session: goAway / stall the inner stream (over 4 MiB queued) /
//          close
//
// Invariants: every frame the session writes decodes, with the session's
// VER, as whole frames; no SYN; PSH only for a stream that is ours and has
// not sent its FIN, at most 32 KiB, never while the inner stream is above
// its high watermark, never more than the stream's user wrote; UPD only for
// a stream once accepted; NOP on stream 0. Held bytes add up and are
// bounded (VER 2: per stream at most max(window, 262144), else the session
// closed; VER 1: over v1_receive_buffer means the inner stream is paused,
// and at most one frame over it). Stream callbacks: no onConnected, no
// onData while read-disabled or after the last end_stream or empty, at most
// one onClose and nothing after it; by onMuxClosed (once) and by the end
// every stream with callbacks has had its onClose, streamCount() and
// heldBytes() are 0. A stream that left a live session sent its FIN. The
// inner stream: readDisable balanced, no write after close, no connect().
// After teardown the loop has no work, handle or deferred delete left.
#include <algorithm>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "codec/smux.h"
#include "event/loop.h"
#include "fuzz_util.h"
#include "stream/mux_session.h"

using namespace vt;
using namespace vt::stream;
using fuzz::check;

namespace {

event::Loop& loop() {
  static event::Loop* l = new event::Loop;  // the one thing shared by all inputs
  return *l;
}

constexpr size_t kFillBudget = 2 << 20;     // filler bytes per input
constexpr size_t kInitialWindow = 262144;   // smux's guess of the peer window
constexpr size_t kMaxOpWrite = 40000;       // a write op's largest payload

class Harness;

// ---- the inner stream: the network side

class FakeInner final : public Stream {
 public:
  explicit FakeInner(Harness& h) : h_(h) {}
  ~FakeInner() override = default;

  void setCallbacks(StreamCallbacks& cb) override {
    check(!ever_set_, "the session sets the inner stream's callbacks once");
    ever_set_ = true;
    cb_ = &cb;
  }
  void connect() override { check(false, "a server session connects no inner stream"); }
  void write(BufferChain& data, bool end_stream) override;
  void readDisable(bool disable) override {
    if (closed_) return;
    if (disable) {
      ++disabled_;
      return;
    }
    check(disabled_ > 0, "unbalanced readDisable(false) on the inner stream");
    if (--disabled_ != 0) return;
    if (fail_enable_) {
      end(CloseReason::kTlsError);  // as TlsStream's readPlain() on a bad record
    } else if (sync_enable_) {
      deliver();
    }
  }
  void close(CloseReason reason) override { end(reason); }
  size_t bufferedBytes() const override { return queued_ + (stalled_ ? (5u << 20) : 0); }
  std::string peerName() const override { return "fuzz"; }

  // Harness side.
  void feed(const uint8_t* p, size_t n) {
    if (closed_ || eof_ || n == 0) return;
    in_.append(p, n);
    deliver();
  }
  void peerEof() {
    if (closed_ || eof_) return;
    eof_ = true;
    deliver();
  }
  void peerReset() { end(CloseReason::kReset); }
  // TlsStream closes inside write() when its engine fails, and inside
  // readDisable(false) on a bad record: the next such call fails.
  void failNextWrite() { fail_write_ = true; }
  void failNextEnable() { fail_enable_ = true; }
  void drain(bool half) {
    if (closed_) return;
    queued_ = half ? queued_ / 2 : 0;
    if (above_ && bufferedBytes() <= low_) {
      above_ = false;
      if (cb_ != nullptr) cb_->onBelowLowWatermark();
    }
  }
  void toggleStall() { stalled_ = !stalled_; }
  // The session is gone without closing us (teardown by destruction).
  void detach() { cb_ = nullptr; }

  // What the network sent while we were readable; in pieces of at most
  // 64 KiB, as a socket read would.
  void deliver() {
    while (!closed_ && cb_ != nullptr && disabled_ == 0 && (!in_.empty() || (eof_ && !eof_sent_))) {
      BufferChain chunk;
      chunk.moveFrom(in_, std::min<size_t>(in_.size(), 64 * 1024));
      bool end = eof_ && in_.empty();
      if (end) eof_sent_ = true;
      cb_->onData(chunk, end);
    }
  }

  bool closed() const { return closed_; }
  int disabled() const { return disabled_; }
  bool above() const { return above_; }
  void setWatermarks(size_t high, size_t low) {
    high_ = high;
    low_ = low;
  }
  void setSyncEnable(bool on) { sync_enable_ = on; }

 private:
  void end(CloseReason reason) {
    if (closed_) return;
    closed_ = true;
    in_.clear();
    StreamCallbacks* cb = std::exchange(cb_, nullptr);
    if (cb != nullptr) cb->onClose(reason, "");
  }

  Harness& h_;
  StreamCallbacks* cb_ = nullptr;
  bool ever_set_ = false;
  BufferChain in_;   // network bytes not yet delivered
  BufferChain out_;  // a partial frame written by the session (must stay empty)
  size_t queued_ = 0;
  size_t high_ = 1u << 30, low_ = 1u << 28;
  int disabled_ = 0;
  bool above_ = false;
  bool stalled_ = false;
  bool sync_enable_ = false;
  bool fail_write_ = false;
  bool fail_enable_ = false;
  bool eof_ = false;
  bool eof_sent_ = false;
  bool closed_ = false;
};

// ---- one accepted stream's user

class User final : public StreamCallbacks {
 public:
  enum Mode { kEcho, kSink, kPartial, kHold, kNoCallbacks, kDropNow, kDropLater, kAnswerClose };

  User(uint32_t id, int mode, size_t index) : id(id), mode(mode), index(index) {}

  void onConnected() override { check(false, "onConnected on an accepted stream"); }
  void onData(BufferChain& data, bool end_stream) override;
  void onAboveHighWatermark() override {
    check(closes == 0, "onAboveHighWatermark after onClose");
    check(!above, "onAboveHighWatermark twice");
    above = true;
    if (mode == kEcho && s != nullptr) {
      bp_paused = true;
      disable(true);
    }
  }
  void onBelowLowWatermark() override {
    check(closes == 0, "onBelowLowWatermark after onClose");
    check(above, "onBelowLowWatermark without onAboveHighWatermark");
    above = false;
    if (bp_paused && s != nullptr) {
      bp_paused = false;
      disable(false);
    }
  }
  void onClose(CloseReason reason, const std::string& detail) override;

  void disable(bool on) {
    if (on) {
      ++disabled;
    } else {
      check(disabled > 0, "harness: unbalanced readDisable");
      --disabled;
    }
    s->readDisable(on);  // may deliver (and close) right here
  }
  // Writes n pattern bytes (0: an empty write), end_stream as given.
  void write(size_t n, bool end_stream) {
    if (s == nullptr) return;
    BufferChain c;
    std::string bytes(n, static_cast<char>('a' + id % 26));
    c.append(bytes);
    written += n;
    s->write(c, end_stream);
    check(c.empty(), "MuxStream::write drains its argument");
  }
  // Hands the stream to the loop's deferred delete (safe in a callback).
  void release();
  // Destroys the stream now (only outside its callbacks).
  void destroy() {
    if (!own) return;
    if (closes == 0) let_go = true;
    own.reset();
    s = nullptr;
  }

  uint32_t id;
  int mode;
  size_t index;
  std::unique_ptr<MuxStream> own;  // ours until released or destroyed
  MuxStream* s = nullptr;          // alive while non-null
  bool callbacks = false;
  bool let_go = false;   // destroyed (or released) before its onClose
  bool released = false;
  int closes = 0;
  CloseReason reason = CloseReason::kLocalClose;
  int disabled = 0;      // our readDisable count
  bool op_paused = false;
  bool bp_paused = false;
  bool above = false;
  bool eof_done = false;  // took everything of an end_stream delivery
  bool fin_seen = false;  // the session wrote our FIN
  size_t written = 0;     // bytes handed to write()
  size_t psh_out = 0;     // PSH bytes the session wrote for us
};

// Destroys the stream on a later loop step and marks it gone.
class StreamHolder final : public event::DeferredDeletable {
 public:
  StreamHolder(std::unique_ptr<MuxStream> s, User& u) : s_(std::move(s)), u_(u) {}
  ~StreamHolder() override {
    s_.reset();
    u_.s = nullptr;
  }

 private:
  std::unique_ptr<MuxStream> s_;
  User& u_;
};

void User::release() {
  if (!own || released) return;
  released = true;
  if (closes == 0) let_go = true;
  loop().deferredDelete(std::make_unique<StreamHolder>(std::move(own), *this));
}

// ---- the run of one input

struct Reader {
  const uint8_t* p;
  size_t n;
  size_t pos = 0;
  bool done() const { return pos >= n; }
  uint8_t u8() { return pos < n ? p[pos++] : 0; }
  // Up to k bytes; returns how many.
  size_t take(size_t k, const uint8_t** out) {
    k = std::min(k, n - pos);
    *out = p + pos;
    pos += k;
    return k;
  }
};

class Harness final : public MuxSession::Owner {
 public:
  explicit Harness(Reader& in) : in_(in), inner(*this) {}

  void run();
  void onFrameOut(const codec::SmuxDecodeResult& r, bool was_above);
  void checkInvariants();

  // MuxSession::Owner
  void onMuxStream(std::unique_ptr<MuxStream> s) override;
  void onMuxClosed(CloseReason reason, const std::string& detail) override;

  Reader& in_;
  MuxOptions opt;
  FakeInner inner;
  std::unique_ptr<MuxSession> own_session;
  MuxSession* session = nullptr;  // alive while non-null
  std::vector<std::unique_ptr<User>> users;
  uint32_t policy = 0;
  bool release_on_closed = false;
  bool goaway = false;
  int mux_closed = 0;
  size_t fill_left = kFillBudget;
  // Output bookkeeping.
  std::map<uint32_t, std::deque<User*>> open;  // accepted, our FIN not yet written
  std::set<uint32_t> ever;                     // ids ever accepted
  uint64_t frames_out = 0;
  uint64_t psh_bytes_out = 0;
  int out_version = 0;

  size_t heldCap() const {
    size_t win = std::max<size_t>(opt.stream_window, 2 * codec::kSmuxMaxPshData);
    return std::max(win, kInitialWindow);
  }
  User* pick(uint8_t arg) {
    if (users.empty()) return nullptr;
    return users[arg % users.size()].get();
  }
  void allClosedCheck(const char* when) {
    for (auto& u : users) {
      if (u->callbacks && !u->let_go) check(u->closes == 1, when, "stream " + std::to_string(u->id));
      check(u->closes <= 1, "onClose at most once");
    }
  }
};

// Releases the session on a later loop step (the owner's right after
// onMuxClosed).
class SessionHolder final : public event::DeferredDeletable {
 public:
  SessionHolder(std::unique_ptr<MuxSession> s, Harness& h) : s_(std::move(s)), h_(h) {}
  ~SessionHolder() override {
    s_.reset();
    h_.session = nullptr;
  }

 private:
  std::unique_ptr<MuxSession> s_;
  Harness& h_;
};

void FakeInner::write(BufferChain& data, bool end_stream) {
  check(!closed_, "the session writes to its closed inner stream");
  check(!end_stream, "the session half-closes its inner stream");
  if (fail_write_) {
    data.clear();
    end(CloseReason::kTlsError);
    return;
  }
  bool was_above = above_;
  queued_ += data.size();
  out_.moveFrom(data);
  for (;;) {
    codec::SmuxDecodeResult r = codec::decodeSmuxFrame(out_);
    check(r.status != codec::DecodeStatus::kInvalid, "the session wrote a bad frame", r.error);
    if (r.status != codec::DecodeStatus::kDone) break;
    h_.onFrameOut(r, was_above);
    out_.drain(r.consumed);
  }
  check(out_.empty(), "the session writes whole frames");
  if (!above_ && bufferedBytes() > high_) {
    above_ = true;
    if (cb_ != nullptr) cb_->onAboveHighWatermark();
  }
}

void User::onData(BufferChain& data, bool end_stream) {
  check(closes == 0, "onData after onClose");
  check(s != nullptr, "onData on a destroyed stream");
  check(disabled == 0, "onData while read-disabled");
  check(!eof_done, "onData after the last end_stream");
  check(!data.empty() || end_stream, "onData with nothing");
  size_t n = data.size();
  switch (mode) {
    case kEcho: {
      BufferChain c;
      c.moveFrom(data);
      written += n;
      s->write(c, end_stream);
      check(c.empty(), "MuxStream::write drains its argument");
      break;
    }
    case kSink:
      data.drain(n);
      if (end_stream) write(0, true);
      break;
    case kPartial:
      data.drain(n / 2);
      break;
    case kHold:
      data.drain(n);
      if (s != nullptr && closes == 0 && !op_paused) {
        op_paused = true;
        disable(true);
      }
      break;
    case kAnswerClose:
      data.drain(n);
      s->close(CloseReason::kLocalClose);
      break;
    default:
      check(false, "onData for a stream without callbacks");
  }
  if (end_stream && data.empty() && closes == 0) eof_done = true;
}

void User::onClose(CloseReason r, const std::string&) {
  check(closes == 0, "onClose twice");
  check(callbacks, "onClose without callbacks");
  ++closes;
  reason = r;
  if (index % 2 == 0) release();  // the others stay until the end
}

void Harness::onMuxStream(std::unique_ptr<MuxStream> s) {
  check(s != nullptr, "onMuxStream with nothing");
  check(session != nullptr && !session->closed(), "onMuxStream from a closed session");
  check(!goaway, "a stream accepted after goAway");
  uint32_t id = s->id();
  check((id & 1) == 1, "accepted an even stream id");
  if (opt.max_streams != 0) check(session->streamCount() <= opt.max_streams, "max_streams");
  size_t index = users.size();
  int mode = index < 10 ? static_cast<int>((policy >> (3 * index)) & 7) : static_cast<int>(index % 8);
  users.push_back(std::make_unique<User>(id, mode, index));
  User& u = *users.back();
  open[id].push_back(&u);
  ever.insert(id);
  u.s = s.get();
  switch (mode) {
    case User::kDropNow:
      u.let_go = true;
      u.s = nullptr;
      s.reset();  // sends the FIN
      return;
    case User::kDropLater:
      u.own = std::move(s);
      u.release();
      return;
    case User::kNoCallbacks:
      u.own = std::move(s);
      return;
    default:
      break;
  }
  u.own = std::move(s);
  u.callbacks = true;
  u.s->setCallbacks(u);
  if (mode == User::kHold) {
    u.op_paused = true;
    u.disable(true);
  } else if (mode == User::kAnswerClose) {
    u.write(0, false);  // the server's answer: a PSH of LEN 0
  }
}

void Harness::onMuxClosed(CloseReason, const std::string&) {
  check(++mux_closed == 1, "onMuxClosed twice");
  check(session != nullptr && session->closed(), "onMuxClosed from an open session");
  check(inner.closed(), "onMuxClosed before the inner stream closed");
  check(session->streamCount() == 0, "streams left at onMuxClosed");
  check(session->heldBytes() == 0, "held bytes left at onMuxClosed");
  allClosedCheck("a stream without onClose at onMuxClosed");
  if (release_on_closed && own_session) {
    loop().deferredDelete(std::make_unique<SessionHolder>(std::move(own_session), *this));
  }
}

void Harness::onFrameOut(const codec::SmuxDecodeResult& r, bool was_above) {
  check(session != nullptr, "a frame from a destroyed session");
  ++frames_out;
  const auto& hd = r.header;
  check(hd.version == session->version(), "frame VER is not the session's");
  if (out_version == 0) out_version = hd.version;
  check(hd.version == out_version, "frame VER changed");
  switch (hd.command) {
    case codec::SmuxCommand::kSyn:
      check(false, "the server sent a SYN");
      break;
    case codec::SmuxCommand::kNop:
      check(hd.stream_id == 0, "NOP on a stream");
      break;
    case codec::SmuxCommand::kPsh: {
      check(r.payload_size <= codec::kSmuxMaxPshData, "PSH over 32 KiB");
      check(!was_above, "PSH while the inner stream is above its high watermark");
      auto it = open.find(hd.stream_id);
      check(it != open.end() && !it->second.empty(), "PSH for a stream that is not ours",
            std::to_string(hd.stream_id));
      User* u = it->second.front();
      u->psh_out += r.payload_size;
      psh_bytes_out += r.payload_size;
      check(u->psh_out <= u->written, "PSH bytes the user did not write");
      break;
    }
    case codec::SmuxCommand::kFin: {
      auto it = open.find(hd.stream_id);
      if (it != open.end() && !it->second.empty()) {
        it->second.front()->fin_seen = true;
        it->second.pop_front();
        if (it->second.empty()) open.erase(it);
      }
      // else: the answer to a refused SYN
      break;
    }
    case codec::SmuxCommand::kUpd:
      check(hd.version == codec::kSmuxVersion2, "UPD in VER 1");
      check(ever.count(hd.stream_id) != 0, "UPD for a stream never accepted");
      break;
  }
}

void Harness::checkInvariants() {
  for (auto& u : users) {
    check(u->closes <= 1, "onClose at most once");
    if (u->s == nullptr) continue;
    size_t pend_cap = opt.stream_wm.high + kMaxOpWrite +
                      std::max(heldCap(), opt.v1_receive_buffer + 65535) + 65536;
    if (u->mode == User::kEcho || u->mode == User::kSink || u->mode == User::kHold) {
      check(u->s->bufferedBytes() <= pend_cap, "stream pending bytes unbounded");
    }
  }
  if (session == nullptr) return;
  size_t sum = 0;
  for (auto& u : users) {
    if (u->s != nullptr) sum += u->s->heldBytes();
  }
  check(sum == session->heldBytes(), "held bytes do not add up",
        std::to_string(sum) + " vs " + std::to_string(session->heldBytes()));
  if (session->closed()) {
    check(session->streamCount() == 0, "streams left in a closed session");
    check(session->heldBytes() == 0, "held bytes left in a closed session");
    return;
  }
  if (session->version() == codec::kSmuxVersion2) {
    for (auto& u : users) {
      if (u->s != nullptr) check(u->s->heldBytes() <= heldCap(), "VER 2 stream holds past its window");
    }
  } else {
    size_t held = session->heldBytes();
    check(held <= opt.v1_receive_buffer + 65535, "VER 1 held bytes past one frame over the buffer");
    if (held > opt.v1_receive_buffer) {
      check(inner.closed() || inner.disabled() > 0, "VER 1 over the buffer and still reading");
    }
  }
  check(session->stats().streamsOpened == users.size(), "streamsOpened");
  check(session->stats().framesOut >= frames_out, "framesOut");
}

// Loop steps until no posted work, deferred delete or closing handle is left.
void settle() {
  for (int i = 0; i < 64; ++i) {
    int more = loop().runOnce(false);
    if (more == 0 && loop().pendingDeletes() == 0) break;
  }
}

void Harness::run() {
  static constexpr uint32_t kWindows[4] = {0, 100000, 262144, 1u << 20};
  static constexpr size_t kV1Buffers[4] = {0, 1000, 65536, 300000};
  static constexpr size_t kStreamHigh[4] = {256 * 1024, 1024, 0, 65536};
  static constexpr size_t kInnerHigh[4] = {1u << 30, 256, 16384, 65536};
  uint8_t a = in_.u8();
  uint8_t b = in_.u8();
  for (int i = 0; i < 4; ++i) policy |= static_cast<uint32_t>(in_.u8()) << (8 * i);
  opt.stream_window = kWindows[a & 3];
  opt.max_streams = ((a >> 2) & 7) % 5;
  opt.v1_receive_buffer = kV1Buffers[(a >> 5) & 3];
  inner.setSyncEnable((a & 0x80) != 0);
  opt.stream_wm.high = kStreamHigh[b & 3];
  opt.stream_wm.low = opt.stream_wm.high / 4;
  size_t ih = kInnerHigh[(b >> 2) & 3];
  inner.setWatermarks(ih, ih / 4);
  opt.keepalive_ms = (b & 0x10) ? 1 : 1'000'000'000;
  opt.dead_ms = (b & 0x20) ? 2 : 2'000'000'000;
  release_on_closed = (b & 0x40) != 0;
  bool destroy_unclosed = (b & 0x80) != 0;
  opt.version = 2;

  own_session = std::make_unique<MuxSession>(loop(), inner, MuxSession::Role::kServer, opt, *this);
  session = own_session.get();
  {
    const uint8_t* p;
    size_t n = in_.take(in_.u8(), &p);
    BufferChain initial;
    if (n) initial.append(p, n);
    session->start(n ? &initial : nullptr);
    check(initial.empty(), "start() takes the initial bytes");
  }
  checkInvariants();

  while (!in_.done()) {
    inner.deliver();  // what waited for a readDisable(false)
    uint8_t op = in_.u8();
    uint8_t kind = op & 15;
    uint8_t arg = op >> 4;
    if (kind <= 6) {
      const uint8_t* p;
      size_t n = in_.take(static_cast<size_t>(in_.u8()) + 1, &p);
      inner.feed(p, n);
    } else if (kind == 7) {
      uint8_t v = in_.u8();
      size_t n = std::min<size_t>((arg + 1u) * 4096u, fill_left);
      fill_left -= n;
      std::vector<uint8_t> fill(n, v);
      inner.feed(fill.data(), fill.size());
    } else if (kind == 8) {
      User* u = pick(arg);
      if (u != nullptr && u->s != nullptr && u->callbacks) {
        u->op_paused = !u->op_paused;
        u->disable(u->op_paused);
      }
    } else if (kind == 9) {
      User* u = pick(arg);
      if (u != nullptr && u->s != nullptr) {
        if (arg & 1) {
          u->destroy();  // outside its callbacks: sends the FIN now
        } else {
          u->s->close(CloseReason::kLocalClose);
        }
      }
    } else if (kind == 10) {
      User* u = pick(arg);
      if (u != nullptr && u->s != nullptr && u->closes == 0 && !u->above) {
        switch (arg & 3) {
          case 0: u->write(0, false); break;
          case 1: u->write(1 + (arg * 2521u) % kMaxOpWrite, false); break;
          case 2: u->write(0, true); break;
          default: u->write(1000, true); break;
        }
      }
    } else if (kind == 11) {
      inner.drain(arg & 1);
    } else if (kind == 12) {
      inner.peerEof();
    } else if (kind == 13) {
      switch (arg % 3) {
        case 0: inner.peerReset(); break;
        case 1: inner.failNextWrite(); break;
        default: inner.failNextEnable(); break;
      }
    } else if (kind == 14) {
      loop().runOnce(false);
    } else {
      if (session != nullptr) {
        switch (arg % 3) {
          case 0:
            session->goAway();
            goaway = true;
            break;
          case 1: inner.toggleStall(); break;
          default: session->close(CloseReason::kLocalClose, "fuzz"); break;
        }
      }
    }
    checkInvariants();
  }

  // Teardown. What the session framed in its last pass goes to the inner
  // stream at the end of that pass (MuxSession::flushSoon): let it.
  settle();
  // A live session: every stream that left it sent its FIN.
  if (session != nullptr && !session->closed()) {
    for (auto& u : users) {
      if (u->closes == 1 || (u->s == nullptr && u->let_go)) check(u->fin_seen, "a stream left without its FIN", std::to_string(u->id));
    }
    check(session->stats().framesOut == frames_out, "framesOut");
    check(session->stats().bytesOut == psh_bytes_out, "bytesOut");
  }
  if (destroy_unclosed && own_session) {
    own_session.reset();  // its destructor resets every stream
    session = nullptr;
    inner.detach();
    allClosedCheck("a stream without onClose after the session's destruction");
  } else if (session != nullptr) {
    session->close(CloseReason::kLocalClose, "fuzz done");
    check(mux_closed == 1, "onMuxClosed after close()");
    check(session == nullptr || session->streamCount() == 0, "streamCount() after close");
  }
  allClosedCheck("a stream without onClose by the end");
  settle();
  // Streams and then the session, or the other way round (both are valid).
  if (policy & 0x80000000u) {
    own_session.reset();
    session = nullptr;
    for (auto& u : users) u->own.reset();
  } else {
    for (auto& u : users) u->own.reset();
    own_session.reset();
    session = nullptr;
  }
  for (auto& u : users) u->s = nullptr;
  settle();
  check(loop().pendingDeletes() == 0, "deferred deletes left after the run");
  check(loop().runOnce(false) == 0, "loop work or handles left after the run");
  allClosedCheck("a stream without onClose at the end");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Reader in{data, size};
  {
    Harness h(in);
    h.run();
  }
  return 0;
}
