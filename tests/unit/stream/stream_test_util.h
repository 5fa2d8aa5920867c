// Helpers for stream tests: a recording StreamCallbacks that can also pump a
// payload while honouring watermarks, and a bounded run loop.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "event/loop.h"
#include "event/timer.h"
#include "stream/stream.h"

namespace vt::stream::testing {

// Runs the loop until `done()` or `timeout_ms`; false on timeout.
inline bool runUntil(event::Loop& loop, const std::function<bool()>& done,
                     uint64_t timeout_ms = 10000) {
  event::Timer guard(loop);
  bool expired = false;
  guard.start(timeout_ms, [&] { expired = true; });
  while (!done() && !expired) loop.runOnce(true);
  return done();
}

inline std::string pattern(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < n; ++i) {
    x = x * 1103515245u + 12345u;
    s[i] = static_cast<char>(x >> 23);
  }
  return s;
}

class Endpoint final : public StreamCallbacks {
 public:
  Stream* stream = nullptr;
  std::string received;
  bool connected = false;
  bool eof = false;
  int closes = 0;
  int after_close_events = 0;
  CloseReason reason = CloseReason::kLocalClose;
  std::string detail;
  int above = 0;
  int below = 0;
  size_t buffered_at_below = 0;  // the stream's bufferedBytes() at the last low mark
  bool paused = false;
  // Payload to send; `end` half-closes after the last byte.
  std::string payload;
  size_t sent = 0;
  bool end = true;
  size_t chunk = 64 * 1024;
  std::function<void(BufferChain&, bool)> on_data;
  std::function<void()> on_connected;

  void attach(Stream& s) {
    stream = &s;
    s.setCallbacks(*this);
  }
  void pump() {
    while (!paused && stream != nullptr && sent < payload.size()) {
      size_t n = std::min(chunk, payload.size() - sent);
      BufferChain c;
      c.append(payload.data() + sent, n);
      sent += n;
      stream->write(c, end && sent == payload.size());
      EXPECT_TRUE(c.empty());
    }
  }
  bool sentAll() const { return sent == payload.size(); }

  void onConnected() override {
    if (closes) ++after_close_events;
    connected = true;
    if (on_connected) on_connected();
  }
  void onData(BufferChain& data, bool end_stream) override {
    if (closes) ++after_close_events;
    EXPECT_FALSE(eof) << "data after end_stream";
    if (on_data) {
      on_data(data, end_stream);
    } else {
      received += data.toString();
      data.drain(data.size());
    }
    if (end_stream) eof = true;
  }
  void onAboveHighWatermark() override {
    if (closes) ++after_close_events;
    ++above;
    paused = true;
  }
  void onBelowLowWatermark() override {
    if (closes) ++after_close_events;
    ++below;
    buffered_at_below = stream->bufferedBytes();
    paused = false;
    pump();
  }
  void onClose(CloseReason r, const std::string& d) override {
    ++closes;
    reason = r;
    detail = d;
  }
};

}  // namespace vt::stream::testing
