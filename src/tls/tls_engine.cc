// MbedtlsEngine: one mbedtls_ssl_context over two memory queues.
//
// The BIO callbacks never block: sending appends to out_ (always accepts),
// receiving drains in_ or answers WANT_READ. So WANT_WRITE cannot happen
// today, but writePlain() still follows mbedTLS's rule for it: after a
// WANT_* the next mbedtls_ssl_write() gets the same bytes and length, which
// stay at the front of the caller's chain until they are reported written.
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

#include <algorithm>

#include "tls/tls_context_impl.h"
#include "tls/tls_error.h"

namespace vt::tls {
namespace {

// One TLS record of plaintext per mbedtls_ssl_write() call.
constexpr size_t kMaxRecordPlain = MBEDTLS_SSL_OUT_CONTENT_LEN;
constexpr size_t kMaxServerNameLen = 255;
// A front slice at least this big becomes a record of its own rather than
// being copied together with what follows it.
constexpr size_t kMinDirectRecord = 4096;

// How many bytes of `in` the next record takes (in is not empty).
size_t recordLength(const BufferChain& in, size_t record) {
  size_t len = std::min(in.size(), record);
  size_t front = in.slice(0).size();
  if (front == 0 || front >= len) return len;  // empty front: linearize drops it
  if (front >= kMinDirectRecord) return front;
  // A small remnant ahead of a full slice (16 KiB slices cut into 16383-byte
  // TLS 1.3 records leave one byte): send it alone instead of copying a
  // whole record to merge it.
  if (in.sliceCount() > 1 && in.slice(1).size() >= len) return front;
  return len;  // many small slices: merge up to one record
}

class MbedtlsEngine final : public TlsEngine {
 public:
  explicit MbedtlsEngine(std::shared_ptr<TlsContext> ctx);
  ~MbedtlsEngine() override { mbedtls_ssl_free(&ssl_); }
  MbedtlsEngine(const MbedtlsEngine&) = delete;
  MbedtlsEngine& operator=(const MbedtlsEngine&) = delete;

  void pushCiphertext(BufferChain& in) override { in_.moveFrom(in); }
  Status handshake() override;
  bool handshakeDone() const override { return handshake_done_; }
  Status writePlain(BufferChain& in) override;
  Status readPlain(BufferChain& out) override;
  void shutdown() override;
  void takeCiphertext(BufferChain& out) override { out.moveFrom(out_); }
  bool hasCiphertext() const override { return !out_.empty(); }

  std::string failureReason() const override { return failure_; }
  std::string negotiatedAlpn() const override;
  std::string negotiatedVersion() const override;
  std::string receivedServerName() const override { return sni_; }
  bool resumed() const override { return handshake_done_ && offered_ && verifying_ && !certSeen_; }

  void setServerName(const unsigned char* name, size_t len) {
    sni_.assign(reinterpret_cast<const char*>(name), len);
  }

 private:
  static int onSend(void* self, const unsigned char* buf, size_t len);
  static int onVerify(void* self, mbedtls_x509_crt* crt, int depth, uint32_t* flags);
  MbedtlsContext* impl() const { return static_cast<MbedtlsContext*>(ctx_.get()); }
  void handshakeCompleted();
  // The server sent a new ticket (TLS 1.3, after the handshake).
  void ticketArrived() { impl()->storeSession(&ssl_); }
  static int onRecv(void* self, unsigned char* buf, size_t len);

  // Maps a negative mbedTLS return to a Status: the one place that turns
  // classifyMbedtls() outcomes into engine state. `op` names the call.
  Status onError(const char* op, int ret);
  Status fail(std::string reason);

  std::shared_ptr<TlsContext> ctx_;  // keeps the ssl_config alive
  mbedtls_ssl_context ssl_;
  BufferChain in_;   // ciphertext from the network, not yet read by mbedTLS
  BufferChain out_;  // ciphertext produced, not yet taken
  std::string failure_;
  std::string sni_;
  bool handshake_done_ = false;
  bool failed_ = false;
  bool peer_closed_ = false;
  bool shutdown_sent_ = false;
  bool client_ = false;
  bool offered_ = false;    // a stored session was offered for resumption
  bool verifying_ = false;  // the client verifies the server's certificate
  bool certSeen_ = false;   // ... and a certificate was verified (full handshake)
  // Length passed to an mbedtls_ssl_write() that answered WANT_*; the retry
  // must pass the same length (the bytes are still at the front of `in`).
  size_t pinned_len_ = 0;
};

MbedtlsEngine::MbedtlsEngine(std::shared_ptr<TlsContext> ctx) : ctx_(std::move(ctx)) {
  mbedtls_ssl_init(&ssl_);
  auto* impl = dynamic_cast<MbedtlsContext*>(ctx_.get());
  if (impl == nullptr) {
    fail("TLS engine: context was not made by TlsContext::create");
    return;
  }
  int ret = mbedtls_ssl_setup(&ssl_, impl->config());
  if (ret != 0) {
    fail("TLS engine setup: " + mbedtlsErrorText(ret));
    return;
  }
  const TlsOptions& opt = impl->options();
  client_ = opt.role == Role::kClient;
  if (client_) {
    verifying_ = !opt.insecure;
    if (verifying_) mbedtls_ssl_set_verify(&ssl_, onVerify, this);
    offered_ = impl->offerSession(&ssl_);
  }
  if (opt.role == Role::kClient && !opt.server_name.empty()) {
    // Sets both the SNI sent and the name the certificate must match.
    ret = mbedtls_ssl_set_hostname(&ssl_, opt.server_name.c_str());
    if (ret != 0) {
      fail("server_name " + opt.server_name + ": " + mbedtlsErrorText(ret));
      return;
    }
  }
  mbedtls_ssl_set_user_data_p(&ssl_, this);
  mbedtls_ssl_set_bio(&ssl_, this, onSend, onRecv, nullptr);
}

int MbedtlsEngine::onSend(void* self, const unsigned char* buf, size_t len) {
  // mbedTLS never hands over more than one record, far below INT_MAX.
  static_cast<MbedtlsEngine*>(self)->out_.append(buf, len);
  return static_cast<int>(len);
}

int MbedtlsEngine::onRecv(void* self, unsigned char* buf, size_t len) {
  BufferChain& in = static_cast<MbedtlsEngine*>(self)->in_;
  if (in.empty()) return MBEDTLS_ERR_SSL_WANT_READ;
  size_t n = in.copyOut(0, buf, std::min(len, in.size()));
  in.drain(n);
  return static_cast<int>(n);
}

// Per-connection verify hook: only notes that a certificate was checked
// (mbedTLS's own verification result stands; flags are left as they are).
int MbedtlsEngine::onVerify(void* self, mbedtls_x509_crt*, int, uint32_t*) {
  static_cast<MbedtlsEngine*>(self)->certSeen_ = true;
  return 0;
}

void MbedtlsEngine::handshakeCompleted() {
  handshake_done_ = true;
  TlsStats& st = impl()->mutableStats();
  st.handshakes++;
  if (resumed()) st.resumed++;
  // TLS 1.2 delivers its ticket inside the handshake; TLS 1.3 sends it
  // afterwards (ticketArrived from readPlain).
  if (client_ && impl()->options().session_tickets &&
      mbedtls_ssl_get_version_number(&ssl_) == MBEDTLS_SSL_VERSION_TLS1_2) {
    impl()->storeSession(&ssl_);
  }
}

TlsEngine::Status MbedtlsEngine::fail(std::string reason) {
  if (!failed_) {
    failed_ = true;
    failure_ = std::move(reason);
  }
  return Status::kFailed;
}

TlsEngine::Status MbedtlsEngine::onError(const char* op, int ret) {
  switch (classifyMbedtls(ret)) {
    case MbedtlsOutcome::kWantIo:
    case MbedtlsOutcome::kAgain: return Status::kWantMore;
    case MbedtlsOutcome::kPeerClosed: peer_closed_ = true; return Status::kClosed;
    case MbedtlsOutcome::kFatal: break;
  }
  std::string reason = std::string("TLS ") + op + ": " + mbedtlsErrorText(ret);
  if (ret == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED) {
    // Say which check failed (name mismatch, unknown CA, expiry...).
    char info[512];
    int n =
        mbedtls_x509_crt_verify_info(info, sizeof(info), "", mbedtls_ssl_get_verify_result(&ssl_));
    if (n > 0) {
      std::string detail(info, static_cast<size_t>(n));
      std::replace(detail.begin(), detail.end(), '\n', ';');
      while (!detail.empty() && (detail.back() == ';' || detail.back() == ' ')) detail.pop_back();
      reason += "; certificate verification: " + detail;
    }
  }
  return fail(std::move(reason));
}

TlsEngine::Status MbedtlsEngine::handshake() {
  if (failed_) return Status::kFailed;
  if (handshake_done_) return Status::kOk;
  for (;;) {
    int ret = mbedtls_ssl_handshake(&ssl_);
    if (ret == 0) {
      handshakeCompleted();
      return Status::kOk;
    }
    if (ret == MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET) ticketArrived();
    if (classifyMbedtls(ret) == MbedtlsOutcome::kAgain) continue;
    Status st = onError("handshake", ret);
    // close_notify before the handshake ended is a failed handshake.
    if (st == Status::kClosed) return fail("TLS handshake: peer closed the connection");
    return st;
  }
}

TlsEngine::Status MbedtlsEngine::writePlain(BufferChain& in) {
  if (failed_) return Status::kFailed;
  if (!handshake_done_) {
    Status st = handshake();
    if (st != Status::kOk) return st;
  }
  if (shutdown_sent_) {
    if (in.empty()) return Status::kOk;
    return fail("TLS write: data written after shutdown()");
  }
  // TLS 1.3 carries one byte less than TLS 1.2 (the inner content type).
  int max_payload = mbedtls_ssl_get_max_out_record_payload(&ssl_);
  const size_t record = max_payload > 0 ? static_cast<size_t>(max_payload) : kMaxRecordPlain;
  while (!in.empty() && out_.size() < kMaxPendingCiphertext) {
    if (pinned_len_ > in.size())
      return fail("TLS write: pinned plaintext was removed from the chain");
    size_t len = pinned_len_ != 0 ? pinned_len_ : recordLength(in, record);
    // Whole records straight from the front slice; small slices (pbufs)
    // are first copied into one slice that stays at the chain's front
    // (pinned) until mbedTLS reports them written.
    const uint8_t* data = in.linearize(len);
    int ret = mbedtls_ssl_write(&ssl_, data, len);
    if (ret == 0) return fail("TLS write: mbedtls_ssl_write accepted nothing");
    if (ret > 0) {
      pinned_len_ = 0;
      in.drain(static_cast<size_t>(ret));
      continue;
    }
    // A ticket that a read left half-processed (mbedTLS answers the read
    // with WANT_READ and finishes the ticket in the next call, whichever
    // it is) completes here: keep it, as readPlain does.
    if (ret == MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET) {
      ticketArrived();
      continue;
    }
    if (classifyMbedtls(ret) == MbedtlsOutcome::kAgain) continue;
    if (classifyMbedtls(ret) == MbedtlsOutcome::kWantIo) {
      pinned_len_ = len;
      return Status::kOk;
    }
    Status st = onError("write", ret);
    return st == Status::kClosed ? Status::kClosed : Status::kFailed;
  }
  return Status::kOk;
}

TlsEngine::Status MbedtlsEngine::readPlain(BufferChain& out) {
  if (failed_) return Status::kFailed;
  if (peer_closed_) return Status::kClosed;
  if (!handshake_done_) {
    Status st = handshake();
    if (st != Status::kOk) return st;
  }
  bool appended = false;
  for (;;) {
    // A zero-length read processes records until application data is
    // decrypted in mbedTLS's buffer, so we learn its size before reserving
    // room in `out` (no empty slices left behind on WANT_READ).
    size_t in_before = in_.size();
    unsigned char probe = 0;
    int ret = mbedtls_ssl_read(&ssl_, &probe, 0);
    if (ret == MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET) {
      ticketArrived();
      continue;
    }
    if (ret < 0) {
      MbedtlsOutcome outcome = classifyMbedtls(ret);
      if (outcome == MbedtlsOutcome::kAgain) continue;
      if (outcome == MbedtlsOutcome::kWantIo) {
        // mbedTLS also answers WANT_READ after skipping a warning alert;
        // keep going while it still consumes our input.
        if (!in_.empty() && in_.size() < in_before) continue;
        break;
      }
      return onError("read", ret);
    }
    size_t avail = mbedtls_ssl_get_bytes_avail(&ssl_);
    if (avail == 0) {
      // An empty record was consumed; stop unless it made progress.
      if (!in_.empty() && in_.size() < in_before) continue;
      break;
    }
    while (avail > 0) {
      size_t room = 0;
      uint8_t* dst = out.reserve(1, &room);
      size_t want = std::min(room, avail);
      ret = mbedtls_ssl_read(&ssl_, dst, want);
      if (ret <= 0) return onError("read", ret < 0 ? ret : MBEDTLS_ERR_SSL_INTERNAL_ERROR);
      out.commit(static_cast<size_t>(ret));
      avail -= static_cast<size_t>(ret);
      appended = true;
    }
  }
  return appended ? Status::kOk : Status::kWantMore;
}

void MbedtlsEngine::shutdown() {
  if (failed_ || shutdown_sent_) return;
  shutdown_sent_ = true;
  // A no-op before the handshake is over; the caller then just closes.
  int ret = mbedtls_ssl_close_notify(&ssl_);
  if (ret < 0 && classifyMbedtls(ret) == MbedtlsOutcome::kFatal) onError("shutdown", ret);
}

std::string MbedtlsEngine::negotiatedAlpn() const {
  const char* p = mbedtls_ssl_get_alpn_protocol(&ssl_);
  return p != nullptr ? p : "";
}

std::string MbedtlsEngine::negotiatedVersion() const {
  if (!handshake_done_) return "";
  return mbedtls_ssl_get_version(&ssl_);
}

}  // namespace

int recordServerName(void*, mbedtls_ssl_context* ssl, const unsigned char* name, size_t len) {
  auto* engine = static_cast<MbedtlsEngine*>(mbedtls_ssl_get_user_data_p(ssl));
  if (engine == nullptr || len > kMaxServerNameLen) return -1;  // aborts the handshake
  engine->setServerName(name, len);
  return 0;
}

std::unique_ptr<TlsEngine> TlsEngine::create(std::shared_ptr<TlsContext> ctx) {
  return std::make_unique<MbedtlsEngine>(std::move(ctx));
}

}  // namespace vt::tls
