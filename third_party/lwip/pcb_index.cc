// The pcb index behind pcb-index.patch (see vt_lwip_hooks.h): every pcb in
// lwIP's active or TIME-WAIT list by its 4-tuple, so that tcp_input and
// NetStack find a segment's pcb without walking the lists. Part of vt_lwip
// (lwIP calls it); NetStack asks it too, through vt_tcp_pcb_lookup.
//
// lwIP's lists are global, so is this; every call comes with NetStack's
// process-wide lwIP lock held (src/netstack/lwip_lock.h). The key includes
// the pcb's netif index: two NetStacks (two TUNs) may hold the same 4-tuple.
// If the index cannot allocate, it gives up for good and lookups walk the
// lists as lwIP did (and counts them by walking too).
#include <cassert>
#include <cstdint>
#include <cstring>
#include <new>
#include <unordered_map>

extern "C" {
#include "lwip/priv/tcp_priv.h"
#include "lwip/tcp.h"
#include "vt_lwip_hooks.h"
}

namespace {

struct Key {
  uint8_t remote[16];
  uint8_t local[16];
  uint16_t remotePort;
  uint16_t localPort;
  uint8_t v6;
  uint8_t netif;
  bool operator==(const Key& o) const noexcept {
    return remotePort == o.remotePort && localPort == o.localPort && v6 == o.v6 &&
           netif == o.netif && std::memcmp(remote, o.remote, sizeof remote) == 0 &&
           std::memcmp(local, o.local, sizeof local) == 0;
  }
};

struct KeyHash {
  size_t operator()(const Key& k) const noexcept {
    // FNV-1a over the fields that vary; the address bytes the zone does
    // not touch. Collisions only cost a compare.
    uint64_t h = 1469598103934665603ull;
    auto mix = [&h](const uint8_t* p, size_t n) {
      for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
    };
    mix(k.remote, k.v6 ? 16 : 4);
    mix(k.local, k.v6 ? 16 : 4);
    mix(reinterpret_cast<const uint8_t*>(&k.remotePort), 2);
    mix(reinterpret_cast<const uint8_t*>(&k.localPort), 2);
    mix(&k.netif, 1);
    return static_cast<size_t>(h);
  }
};

using Index = std::unordered_map<Key, tcp_pcb*, KeyHash>;

// Never destroyed: lwIP's lists are process-wide and outlive any object.
Index* gIndex = nullptr;
bool gBroken = false;  // an allocation failed: walk the lists from now on
// Indexed pcbs per netif index (u8_t: 0 is "no netif", 1..255). Counted
// from the map, not from the hooks: lwIP's TCP_RMV reports a removal even
// for a pcb that is not on the list (a hook-driven count went below zero
// in NetStackTest.AbortOrCloseInsideOnData).
uint32_t gCount[256] = {};

Key keyOf(const ip_addr_t* remote, u16_t remotePort, const ip_addr_t* local, u16_t localPort,
          u8_t netif) noexcept {
  Key k;
  std::memset(&k, 0, sizeof k);
  k.v6 = IP_IS_V6(remote) ? 1 : 0;
  if (k.v6 != 0) {
    std::memcpy(k.remote, ip_2_ip6(remote)->addr, 16);
    std::memcpy(k.local, ip_2_ip6(local)->addr, 16);
  } else {
    std::memcpy(k.remote, &ip_2_ip4(remote)->addr, 4);
    std::memcpy(k.local, &ip_2_ip4(local)->addr, 4);
  }
  k.remotePort = remotePort;
  k.localPort = localPort;
  k.netif = netif;
  return k;
}

Key keyOf(const tcp_pcb* pcb) noexcept {
  return keyOf(&pcb->remote_ip, pcb->remote_port, &pcb->local_ip, pcb->local_port, pcb->netif_idx);
}

bool indexed(tcp_pcb* const* list) noexcept {
  return list == &tcp_active_pcbs || list == &tcp_tw_pcbs;
}

bool matches(const tcp_pcb* pcb, const ip_addr_t* remote, u16_t remotePort, const ip_addr_t* local,
             u16_t localPort, u8_t netif) noexcept {
  return pcb->remote_port == remotePort && pcb->local_port == localPort &&
         pcb->netif_idx == netif && ip_addr_eq(&pcb->remote_ip, remote) &&
         ip_addr_eq(&pcb->local_ip, local);
}

// lwIP's own search: active pcbs first, then TIME-WAIT. (lwIP also takes a
// pcb bound to no netif; every pcb of ours is bound to its NetStack's.)
tcp_pcb* walk(const ip_addr_t* remote, u16_t remotePort, const ip_addr_t* local, u16_t localPort,
              u8_t netif) noexcept {
  for (tcp_pcb* pcb = tcp_active_pcbs; pcb != nullptr; pcb = pcb->next) {
    if (matches(pcb, remote, remotePort, local, localPort, netif)) return pcb;
  }
  for (tcp_pcb* pcb = tcp_tw_pcbs; pcb != nullptr; pcb = pcb->next) {
    if (matches(pcb, remote, remotePort, local, localPort, netif)) return pcb;
  }
  return nullptr;
}

void giveUp() noexcept {
  gBroken = true;
  delete gIndex;
  gIndex = nullptr;
}

}  // namespace

extern "C" {
u8_t vt_tcp_current_netif = NETIF_NO_INDEX;
u16_t vt_tcp_out_gso_mss = 0;
}

extern "C" u32_t vt_tcp_pcb_count(u8_t netif_idx) {
  if (!gBroken) return gCount[netif_idx];
  u32_t n = 0;
  for (tcp_pcb* list : {tcp_active_pcbs, tcp_tw_pcbs}) {
    for (tcp_pcb* pcb = list; pcb != nullptr; pcb = pcb->next) n += pcb->netif_idx == netif_idx;
  }
  return n;
}

extern "C" void vt_tcp_pcb_listed(tcp_pcb** list, tcp_pcb* pcb) {
  if (gBroken || !indexed(list)) return;
  try {
    if (gIndex == nullptr) gIndex = new Index();
    // A 4-tuple is in at most one of the lists at a time (lwIP moves a pcb
    // out of active before it enters TIME-WAIT; NetStack frees a TIME-WAIT
    // pcb before a new connection takes its 4-tuple), so this never
    // overwrites a live entry.
    if (gIndex->insert_or_assign(keyOf(pcb), pcb).second) ++gCount[pcb->netif_idx];
  } catch (const std::bad_alloc&) {
    giveUp();
  }
}

extern "C" void vt_tcp_pcb_unlisted(tcp_pcb** list, tcp_pcb* pcb) {
  if (gBroken || gIndex == nullptr || !indexed(list)) return;
  auto it = gIndex->find(keyOf(pcb));
  if (it != gIndex->end() && it->second == pcb) {
    gIndex->erase(it);
    assert(gCount[pcb->netif_idx] > 0);
    --gCount[pcb->netif_idx];
  }
}

extern "C" tcp_pcb* vt_tcp_pcb_lookup(const ip_addr_t* remote, u16_t remotePort,
                                      const ip_addr_t* local, u16_t localPort, u8_t netif) {
  if (gBroken) return walk(remote, remotePort, local, localPort, netif);
  tcp_pcb* pcb = nullptr;
  if (gIndex != nullptr) {
    auto it = gIndex->find(keyOf(remote, remotePort, local, localPort, netif));
    if (it != gIndex->end() && matches(it->second, remote, remotePort, local, localPort, netif)) {
      pcb = it->second;
    }
  }
  // Debug and sanitizer builds prove the index against lwIP's own walk on
  // every lookup.
  assert(pcb == walk(remote, remotePort, local, localPort, netif));
  return pcb;
}
