#include "netstack/udp_reassembly.h"

#include <algorithm>

namespace vt::netstack {

FragmentReassembler::Iter FragmentReassembler::find(const FragmentInfo& info) {
  for (auto it = partials_.begin(); it != partials_.end(); ++it) {
    if (it->id == info.id && it->version == info.version && it->protocol == info.protocol &&
        it->src == info.src && it->dst == info.dst) {
      return it;
    }
  }
  return partials_.end();
}

void FragmentReassembler::drop(Iter it) noexcept {
  bytes_ -= it->cost;
  partials_.erase(it);
}

void FragmentReassembler::clear() noexcept {
  partials_.clear();
  bytes_ = 0;
}

FragmentReassembler::Outcome FragmentReassembler::add(const FragmentInfo& info, Slice&& data,
                                                      size_t cost, uint64_t now, BufferChain& out,
                                                      size_t* evicted) {
  const size_t begin = info.offset;
  const size_t end = info.offset + info.dataLen;
  Iter it = find(info);
  if (it != partials_.end()) {
    Partial& pd = *it;
    bool bad = pd.lastSeen && (end > pd.total || (!info.more && end != pd.total));
    if (!info.more && !pd.frags.empty() && pd.frags.back().end > end) bad = true;
    for (const Fragment& f : pd.frags) {
      if (f.begin == begin && f.end == end)
        return bad ? (drop(it), Outcome::kInvalid) : Outcome::kDuplicate;
      if (begin < f.end && f.begin < end) bad = true;
    }
    if (bad) {
      drop(it);
      return Outcome::kInvalid;
    }
    if (pd.frags.size() >= limits_.maxFragmentsPerDatagram) {
      drop(it);
      return Outcome::kTooMany;
    }
  }
  // Make room by dropping the oldest other datagrams.
  const bool fresh = it == partials_.end();
  while (!partials_.empty()) {
    const bool countFull = fresh && partials_.size() >= limits_.maxDatagrams;
    const bool bytesFull = bytes_ + cost > limits_.maxBytes;
    if (!countFull && !bytesFull) break;
    Iter victim = partials_.begin();
    if (victim == it) ++victim;
    if (victim == partials_.end()) break;  // only ours left
    drop(victim);
    if (evicted != nullptr) ++*evicted;
  }
  if (bytes_ + cost > limits_.maxBytes) {  // ours alone is too big
    if (it != partials_.end()) drop(it);
    return Outcome::kOverflow;
  }
  if (fresh) {
    Partial pd;
    pd.version = info.version;
    pd.src = info.src;
    pd.dst = info.dst;
    pd.id = info.id;
    pd.protocol = info.protocol;
    pd.firstTick = now;
    partials_.push_back(std::move(pd));
    it = std::prev(partials_.end());
  }
  Partial& pd = *it;
  auto pos = std::upper_bound(pd.frags.begin(), pd.frags.end(), begin,
                              [](size_t b, const Fragment& f) { return b < f.begin; });
  pd.frags.insert(pos, Fragment{begin, end, std::move(data)});
  pd.received += end - begin;
  pd.cost += cost;
  bytes_ += cost;
  if (!info.more) {
    pd.lastSeen = true;
    pd.total = end;
  }
  if (!pd.lastSeen || pd.received != pd.total) return Outcome::kHeld;
  out.clear();
  for (Fragment& f : pd.frags) out.append(std::move(f.data));
  drop(it);
  return Outcome::kComplete;
}

size_t FragmentReassembler::expire(uint64_t now) {
  size_t n = 0;
  // Oldest first: partials_ is in creation order, so stop at the first young one.
  while (!partials_.empty() && now - partials_.front().firstTick > limits_.timeoutTicks) {
    drop(partials_.begin());
    ++n;
  }
  return n;
}

}  // namespace vt::netstack
