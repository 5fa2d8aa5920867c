// TieredLru: least-recently-active order in two tiers, for UDP sessions on
// both ends: "fresh" ones (at most one exchange so far: a DNS lookup, a
// probe) and "assured" ones (the app sent again after a reply, Linux
// conntrack's rule). victim() is the least recently active fresh entry
// while there is one, else the least recently active assured one, so a
// burst of short-lived sockets does not push out a quiet long-lived flow.
//
// The owner keeps the Handle insert() gave and its entry's tier, and tells
// the LRU when the entry is active (touch), becomes assured (promote) or
// goes (erase). Not thread-safe; O(1) everything.
#pragma once

#include <list>
#include <vector>

namespace vt {

template <class T>
class TieredLru {
 public:
  using Handle = typename std::list<T*>::iterator;

  // A new, fresh entry, as the most recently active.
  Handle insert(T* t) {
    fresh_.push_front(t);
    return fresh_.begin();
  }
  void touch(Handle h, bool assured) {
    std::list<T*>& l = tier(assured);
    if (h != l.begin()) l.splice(l.begin(), l, h);
  }
  // From fresh to assured, as the most recently active there.
  void promote(Handle h) { assured_.splice(assured_.begin(), fresh_, h); }
  void erase(Handle h, bool assured) { tier(assured).erase(h); }
  T* victim() const {
    if (!fresh_.empty()) return fresh_.back();
    if (!assured_.empty()) return assured_.back();
    return nullptr;
  }
  std::vector<T*> all() const {
    std::vector<T*> v(fresh_.begin(), fresh_.end());
    v.insert(v.end(), assured_.begin(), assured_.end());
    return v;
  }
  void clear() {
    fresh_.clear();
    assured_.clear();
  }

 private:
  std::list<T*>& tier(bool assured) { return assured ? assured_ : fresh_; }

  std::list<T*> fresh_;    // front: most recently active
  std::list<T*> assured_;  // front: most recently active
};

}  // namespace vt
