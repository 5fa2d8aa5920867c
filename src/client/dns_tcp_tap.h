// DnsTcpTap: listens to one hijacked DNS-over-TCP flow (app <-> dns.resolver)
// and offers the DnsCache the answers to the queries the app sent on it,
// as UdpSession does for UDP. It only reads: TcpSession shows it each chunk
// of the relay before passing the same bytes on, unchanged and undelayed.
//
// Both directions carry DNS messages behind a 2-byte big-endian length
// (RFC 1035 4.2.2, RFC 7766 8): several may share a segment (pipelining),
// one may span several, answers may come in any order. An answer is
// offered to the cache only if its id is that of an outstanding query of
// this flow AND its one question (DnsCache::questionKey) is that query's
// (how RFC 7766 7 has clients match pipelined answers);
// that query is then answered (a second answer is unmatched). Every other
// answer is counted unmatched and never stored.
//
// Bounds, whatever the peers send:
//   - at most kMaxOutstanding queries remembered, the oldest forgotten;
//   - at most one partial frame per direction, of at most kMaxFrameBytes
//     (a longer answer could not be cached anyway): longer frames are
//     skipped unbuffered, only their id is kept (an answer too long still
//     retires its query, a query too long is not remembered);
//   - a length below a DNS header (12) is not DNS framing: the tap stops
//     for good and lets go of its memory (the relay is not affected).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "buffer/buffer_chain.h"
#include "client/dns_cache.h"

namespace vt::client {

struct DnsTcpTapStats {
  uint64_t queries = 0;    // remembered (one question, opcode QUERY)
  uint64_t ignored = 0;    // query frames not remembered (too long, not one question)
  uint64_t forgotten = 0;  // outstanding queries dropped at kMaxOutstanding
  uint64_t matched = 0;    // answers offered to the cache
  uint64_t stored = 0;     // ... and stored by it
  uint64_t unmatched = 0;  // answers to no outstanding query (id or question)
  uint64_t oversized = 0;  // answers to a query, too long to buffer
};

class DnsNames;

class DnsTcpTap {
 public:
  static constexpr size_t kMaxOutstanding = 64;
  static constexpr size_t kMaxFrameBytes = DnsCache::kMaxEntryBytes;

  // `cache` must stay valid while bytes are fed (the destructor does not
  // touch it): the Client's, fed only by its live sessions.
  explicit DnsTcpTap(DnsCache& cache) : cache_(cache) {}
  // Matched answers also teach the routing rules' names (null: not).
  void setNames(DnsNames* names) { names_ = names; }
  DnsTcpTap(const DnsTcpTap&) = delete;
  DnsTcpTap& operator=(const DnsTcpTap&) = delete;

  // Bytes from the app toward the resolver, in stream order.
  void onQueryBytes(const BufferChain& data);
  void onQueryBytes(const uint8_t* p, size_t n);
  // Bytes from the resolver toward the app, in stream order. Returns how
  // many answers completed in them were unmatched (the Client counts them).
  uint64_t onAnswerBytes(const BufferChain& data, uint64_t nowMs);
  uint64_t onAnswerBytes(const uint8_t* p, size_t n, uint64_t nowMs);

  // False once the framing broke: nothing more is read.
  bool tapping() const noexcept { return !stopped_; }
  size_t outstanding() const noexcept { return outstanding_.size(); }
  // Bytes held of partial frames, both directions.
  size_t bufferedBytes() const noexcept { return up_.kept.size() + down_.kept.size(); }
  const DnsTcpTapStats& stats() const noexcept { return stats_; }

 private:
  // One direction's framing: the length prefix, then the frame's bytes
  // (kept whole up to kMaxFrameBytes, else only the first two, the id).
  struct Reader {
    uint8_t len[2] = {0, 0};
    size_t lenHave = 0;
    size_t frameLen = 0;
    size_t seen = 0;
    std::vector<uint8_t> kept;
  };
  struct Query {
    uint16_t id;
    std::string question;
  };
  void feed(Reader& r, const uint8_t* p, size_t n, bool answers, uint64_t nowMs);
  void onQuery(const std::vector<uint8_t>& frame, size_t frameLen);
  void onAnswer(const std::vector<uint8_t>& frame, size_t frameLen, uint64_t nowMs);
  std::deque<Query>::iterator find(uint16_t id);
  void stop();

  DnsCache& cache_;
  DnsNames* names_ = nullptr;
  Reader up_;    // app -> resolver: queries
  Reader down_;  // resolver -> app: answers

  std::deque<Query> outstanding_;  // oldest first
  DnsTcpTapStats stats_;
  bool stopped_ = false;
};

}  // namespace vt::client
