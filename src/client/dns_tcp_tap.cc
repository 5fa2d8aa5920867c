#include "client/dns_tcp_tap.h"

#include <deque>
#include <algorithm>

#include "client/dns_names.h"
#include "codec/dns.h"
#include "core/bytes.h"

namespace vt::client {
namespace {

// Capacity a reader may keep between frames; a longer frame's buffer is
// given back once it is done, so an idle flow holds little.
constexpr size_t kIdleCapacity = 512;

}  // namespace

void DnsTcpTap::onQueryBytes(const BufferChain& data) {
  for (size_t i = 0; i < data.sliceCount() && !stopped_; ++i) {
    const Slice& s = data.slice(i);
    feed(up_, s.data(), s.size(), false, 0);
  }
}

void DnsTcpTap::onQueryBytes(const uint8_t* p, size_t n) {
  if (!stopped_) feed(up_, p, n, false, 0);
}

uint64_t DnsTcpTap::onAnswerBytes(const BufferChain& data, uint64_t nowMs) {
  const uint64_t before = stats_.unmatched;
  for (size_t i = 0; i < data.sliceCount() && !stopped_; ++i) {
    const Slice& s = data.slice(i);
    feed(down_, s.data(), s.size(), true, nowMs);
  }
  return stats_.unmatched - before;
}

uint64_t DnsTcpTap::onAnswerBytes(const uint8_t* p, size_t n, uint64_t nowMs) {
  const uint64_t before = stats_.unmatched;
  if (!stopped_) feed(down_, p, n, true, nowMs);
  return stats_.unmatched - before;
}

void DnsTcpTap::feed(Reader& r, const uint8_t* p, size_t n, bool answers, uint64_t nowMs) {
  while (n > 0 && !stopped_) {
    if (r.lenHave < 2) {
      r.len[r.lenHave++] = *p++;
      --n;
      if (r.lenHave < 2) continue;
      r.frameLen = loadBe16(r.len);
      r.seen = 0;
      if (r.frameLen < codec::kDnsHeaderSize) {
        // Not a DNS message: whatever follows cannot be framed either.
        stop();
        return;
      }
      r.kept.reserve(std::min(r.frameLen, kMaxFrameBytes));
      continue;
    }
    // A frame too long to buffer keeps only its id.
    const size_t keep = r.frameLen <= kMaxFrameBytes ? r.frameLen : 2;
    const size_t take = std::min(n, r.frameLen - r.seen);
    if (r.seen < keep) {
      const size_t k = std::min(take, keep - r.seen);
      r.kept.insert(r.kept.end(), p, p + k);
    }
    r.seen += take;
    p += take;
    n -= take;
    if (r.seen < r.frameLen) continue;  // n is 0: the rest comes later
    if (answers) {
      onAnswer(r.kept, r.frameLen, nowMs);
    } else {
      onQuery(r.kept, r.frameLen);
    }
    if (stopped_) return;
    r.lenHave = 0;
    r.kept.clear();
    if (r.kept.capacity() > kIdleCapacity) std::vector<uint8_t>().swap(r.kept);
  }
}

std::deque<DnsTcpTap::Query>::iterator DnsTcpTap::find(uint16_t id) {
  return std::find_if(outstanding_.begin(), outstanding_.end(),
                      [id](const Query& q) { return q.id == id; });
}

void DnsTcpTap::onQuery(const std::vector<uint8_t>& frame, size_t frameLen) {
  const uint16_t id = loadBe16(frame.data());
  // A new query with an outstanding id replaces that one: an answer with
  // the id is for the newer question now (a sane app keeps the ids of its
  // outstanding queries apart; whatever this frame holds, it ends the old).
  if (auto it = find(id); it != outstanding_.end()) outstanding_.erase(it);
  // QR 0, OPCODE 0 (QUERY): what the cache stores answers to.
  std::string question;
  if (frame.size() == frameLen && (frame[2] & 0xF8) == 0) {
    question = DnsCache::questionKey(frame.data(), frame.size());
  }
  if (question.empty()) {
    ++stats_.ignored;
    return;
  }
  if (outstanding_.size() >= kMaxOutstanding) {
    outstanding_.pop_front();
    ++stats_.forgotten;
  }
  outstanding_.push_back(Query{id, std::move(question)});
  ++stats_.queries;
}

void DnsTcpTap::onAnswer(const std::vector<uint8_t>& frame, size_t frameLen, uint64_t nowMs) {
  const uint16_t id = loadBe16(frame.data());
  auto it = find(id);
  if (frame.size() < frameLen) {
    // Too long to cache; its question was not read, but its id retires
    // the query it answers, which will get no other answer.
    if (it == outstanding_.end()) {
      ++stats_.unmatched;
    } else {
      outstanding_.erase(it);
      ++stats_.oversized;
    }
    return;
  }
  if (it == outstanding_.end() ||
      DnsCache::questionKey(frame.data(), frame.size()) != it->question) {
    // Not the answer to a query of ours (an id we never saw or already
    // answered, another question): the app judges it, the cache never
    // sees it. A wrong question does not retire the query.
    ++stats_.unmatched;
    return;
  }
  outstanding_.erase(it);
  ++stats_.matched;
  if (cache_.store(frame.data(), frame.size(), nowMs)) ++stats_.stored;
  if (names_ != nullptr) names_->learn(frame.data(), frame.size(), nowMs);
}

void DnsTcpTap::stop() {
  stopped_ = true;
  std::vector<uint8_t>().swap(up_.kept);
  std::vector<uint8_t>().swap(down_.kept);
  std::deque<Query>().swap(outstanding_);
}

}  // namespace vt::client
