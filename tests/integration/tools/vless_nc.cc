// vless-nc: a netcat over our own client stack (tcp -> [tls] -> vless), for
// the integration tests. Sends --text (C escapes allowed) and then the bytes
// of --send FILE, half-closes, and writes everything that comes back to
// stdout. Exit 0 when the server finished cleanly, 1 otherwise (reason on
// stderr).
//
//   vless-nc --server 127.0.0.1:443 [--tls --sni NAME (--ca FILE | --insecure)]
//            --uuid UUID [--version 0|1] [--want-ip] --target HOST:PORT
//            [--text 'GET\n'] [--send FILE] [--no-half-close --read-bytes N]
// --no-half-close keeps our direction open after the payload (for peers
// such as v2ray that end the whole connection on a half-close); then
// --read-bytes N ends the run after N bytes have arrived.
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "codec/vless.h"
#include "core/log.h"
#include "event/loop.h"
#include "stream/tcp_stream.h"
#include "stream/tls_stream.h"
#include "stream/vless_client_stream.h"
#include "tls/tls_engine.h"

using namespace vt;

namespace {

std::string unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\' || i + 1 == s.size()) {
      out.push_back(s[i]);
      continue;
    }
    char c = s[++i];
    out.push_back(c == 'n' ? '\n' : c == 'r' ? '\r' : c == 't' ? '\t' : c == '0' ? '\0' : c);
  }
  return out;
}

class Client : public stream::StreamCallbacks {
 public:
  Client(event::Loop& loop, stream::StreamPtr s, std::vector<uint8_t> payload, bool half_close,
         size_t read_bytes)
      : loop_(loop),
        stream_(std::move(s)),
        payload_(std::move(payload)),
        half_close_(half_close),
        read_bytes_(read_bytes) {
    stream_->setCallbacks(*this);
  }
  void start() {
    stream_->connect();
    pump();  // the first chunk travels with the VLESS header
  }
  int exitCode() const { return ok_ ? 0 : 1; }

  void onData(BufferChain& data, bool end_stream) override {
    for (size_t i = 0; i < data.sliceCount(); ++i) {
      const Slice& s = data.slice(i);
      fwrite(s.data(), 1, s.size(), stdout);
    }
    received_ += data.size();
    data.drain(data.size());
    if (end_stream || (read_bytes_ != 0 && received_ >= read_bytes_)) {
      fflush(stdout);
      ok_ = true;
      stream_->close(stream::CloseReason::kRemoteClose);
    }
  }
  void onAboveHighWatermark() override { paused_ = true; }
  void onBelowLowWatermark() override {
    paused_ = false;
    pump();
  }
  void onClose(stream::CloseReason reason, const std::string& detail) override {
    fflush(stdout);
    if (!ok_) {
      fprintf(stderr, "vless-nc: closed: %s %s (received %zu bytes)\n",
              stream::closeReasonName(reason), detail.c_str(), received_);
    }
    loop_.stop();
  }

 private:
  void pump() {
    while (!paused_ && !finished_) {
      size_t n = std::min<size_t>(256 * 1024, payload_.size() - offset_);
      BufferChain chunk;
      chunk.append(payload_.data() + offset_, n);
      offset_ += n;
      finished_ = offset_ == payload_.size();
      stream_->write(chunk, finished_ && half_close_);
    }
  }

  event::Loop& loop_;
  stream::StreamPtr stream_;
  std::vector<uint8_t> payload_;
  size_t offset_ = 0;
  size_t received_ = 0;
  bool half_close_;
  size_t read_bytes_;
  bool paused_ = false;
  bool finished_ = false;
  bool ok_ = false;
};

int usage() {
  fprintf(stderr,
          "usage: vless-nc --server HOST:PORT [--tls --sni NAME (--ca FILE|--insecure)] --uuid U\n"
          "                [--version 0|1] [--want-ip] --target HOST:PORT [--text T] [--send FILE]\n"
          "                [--no-half-close --read-bytes N]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string server, sni, ca, uuid_text, target, text, send_file;
  bool use_tls = false, insecure = false, want_ip = false, half_close = true;
  size_t read_bytes = 0;
  int version = 1;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--server") server = next();
    else if (a == "--tls") use_tls = true;
    else if (a == "--sni") sni = next();
    else if (a == "--ca") ca = next();
    else if (a == "--insecure") insecure = true;
    else if (a == "--uuid") uuid_text = next();
    else if (a == "--version") version = std::atoi(next().c_str());
    else if (a == "--want-ip") want_ip = true;
    else if (a == "--target") target = next();
    else if (a == "--text") text = unescape(next());
    else if (a == "--send") send_file = next();
    else if (a == "--no-half-close") half_close = false;
    else if (a == "--read-bytes") read_bytes = std::strtoul(next().c_str(), nullptr, 10);
    else return usage();
  }
  setLogLevel(LogLevel::kWarn);
  auto server_addr = event::SocketAddress::parse(server);
  codec::Request req;
  req.version = static_cast<uint8_t>(version);
  req.want_ip = want_ip;
  if (!server_addr || !codec::parseUuid(uuid_text, req.uuid) || target.empty() ||
      (version != 0 && version != 1)) {
    return usage();
  }
  size_t colon = target.rfind(':');
  if (colon == std::string::npos) return usage();
  req.target = codec::Address::parseHost(target.substr(0, colon),
                                         static_cast<uint16_t>(std::atoi(target.c_str() + colon + 1)));

  std::vector<uint8_t> payload(text.begin(), text.end());
  if (!send_file.empty()) {
    // One read of the whole file. A byte-at-a-time istreambuf_iterator copy
    // of 8 MB is slow under ASan, and it_rate_limit counts from the launch:
    // a CI run saw 3 s between launch and the server's accept, and measured
    // 736 KB/s against the 1 MB/s limit.
    std::ifstream f(send_file, std::ios::binary | std::ios::ate);
    std::streamoff size = f ? static_cast<std::streamoff>(f.tellg()) : -1;
    size_t at = payload.size();
    if (size >= 0) {
      payload.resize(at + static_cast<size_t>(size));
      f.seekg(0);
      f.read(reinterpret_cast<char*>(payload.data() + at), size);
    }
    if (size < 0 || !f) {
      fprintf(stderr, "vless-nc: cannot read %s\n", send_file.c_str());
      return 1;
    }
  }

  event::Loop loop;
  stream::StreamPtr s = stream::TcpStream::create(loop, *server_addr);
  if (use_tls) {
    tls::TlsOptions o;
    o.role = tls::Role::kClient;
    o.server_name = sni;
    o.ca_file = ca;
    o.insecure = insecure;
    auto ctx = tls::TlsContext::create(o);
    if (!ctx.ok()) {
      fprintf(stderr, "vless-nc: %s\n", ctx.error().toString().c_str());
      return 1;
    }
    s = stream::TlsStream::create(std::move(s), ctx.value());
  }
  s = stream::VlessClientStream::create(std::move(s), req);
  auto client = std::make_unique<Client>(loop, std::move(s), std::move(payload), half_close,
                                         read_bytes);
  client->start();
  loop.run();
  int rc = client->exitCode();
  client.reset();
  loop.run();  // let deferred deletes and handle closes finish
  return rc;
}
