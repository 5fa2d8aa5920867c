// FragmentReassembler: puts IPv4 and IPv6 fragments of UDP datagrams back
// together, so that a datagram the app's kernel split for the TUN MTU
// still arrives whole. Bounded: at most maxDatagrams partial datagrams and
// maxBytes of fragments held; to make room the oldest partial datagram is
// dropped; a partial datagram older than timeoutTicks is dropped by
// expire(). Overlapping fragments (other than exact duplicates) drop the
// whole datagram (RFC 5722 for IPv6; the same for IPv4, since a TUN app's
// kernel never sends overlaps and they are a classic evasion trick).
//
// Zero copy: each fragment's data arrives as a Slice (usually an adopted
// input pbuf); the completed datagram is a BufferChain of those slices.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <vector>

#include "buffer/buffer_chain.h"
#include "netstack/udp_packet.h"

namespace vt::netstack {

struct ReassemblyLimits {
  size_t maxDatagrams = 64;
  size_t maxBytes = 1024 * 1024;
  size_t maxFragmentsPerDatagram = 128;  // 65535 / 1232 (MTU 1280) is 54
  uint64_t timeoutTicks = 20;            // ticks of expire()'s clock
};

class FragmentReassembler {
 public:
  // What add() did with a fragment.
  enum class Outcome {
    kHeld,       // kept; the datagram is not complete yet
    kComplete,   // `out` holds the reassembled transport segment
    kDuplicate,  // same range as a fragment already held: ignored
    kInvalid,    // inconsistent with the others: its datagram was dropped
    kTooMany,    // over maxFragmentsPerDatagram: its datagram was dropped
    kOverflow,   // the datagram alone exceeds maxBytes: dropped
  };

  explicit FragmentReassembler(const ReassemblyLimits& limits) noexcept : limits_(limits) {}

  // `data` holds info.dataLen bytes of the fragment's payload; `cost` is
  // what it counts against maxBytes (>= its size: the buffer behind it).
  // Evictions made to fit it are added to *evicted.
  Outcome add(const FragmentInfo& info, Slice&& data, size_t cost, uint64_t now, BufferChain& out,
              size_t* evicted);
  // Drops partial datagrams older than timeoutTicks; returns how many.
  size_t expire(uint64_t now);
  void clear() noexcept;

  bool empty() const noexcept { return partials_.empty(); }
  size_t datagramCount() const noexcept { return partials_.size(); }
  size_t bytesHeld() const noexcept { return bytes_; }

 private:
  struct Fragment {
    size_t begin = 0;
    size_t end = 0;
    Slice data;
  };
  struct Partial {
    uint8_t version = 0;
    IpAddress src;
    IpAddress dst;
    uint32_t id = 0;
    uint8_t protocol = 0;
    uint64_t firstTick = 0;
    size_t total = 0;  // known once the last fragment arrived
    bool lastSeen = false;
    size_t received = 0;  // bytes of data held (no overlaps, so complete
                          // when received == total)
    size_t cost = 0;
    std::vector<Fragment> frags;  // sorted by begin, disjoint
  };
  using Iter = std::list<Partial>::iterator;

  Iter find(const FragmentInfo& info);
  void drop(Iter it) noexcept;

  ReassemblyLimits limits_;
  std::list<Partial> partials_;  // oldest first
  size_t bytes_ = 0;
};

}  // namespace vt::netstack
