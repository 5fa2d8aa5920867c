/* lwIP hooks of vless-tun (LWIP_HOOK_FILENAME): lwIP's .c files that use
 * hooks include this after their own headers. The functions live in
 * src/netstack/net_stack.cc.
 *
 * The pcb index (pcb-index.patch): lwIP keeps active and TIME-WAIT pcbs in
 * singly linked lists and walks them for every segment that is not for the
 * pcb at the front, and for every SYN in full; with thousands of flows that
 * walk (a cache miss per pcb) dominated. The patch reports every pcb that
 * enters or leaves those two lists, and tcp_input asks the index instead.
 *
 * All of it runs under NetStack's process-wide lwIP lock (lwip_lock.h). */
#ifndef VT_LWIP_HOOKS_H
#define VT_LWIP_HOOKS_H

#include "lwip/ip_addr.h"

#ifdef __cplusplus
extern "C" {
#endif

struct tcp_pcb;
void vt_tcp_pcb_listed(struct tcp_pcb **list, struct tcp_pcb *pcb);
void vt_tcp_pcb_unlisted(struct tcp_pcb **list, struct tcp_pcb *pcb);
/* The active or TIME-WAIT pcb for this segment's 4-tuple on the netif with
 * index netif_idx (the one it came in on), or NULL. Two TUNs (two
 * NetStacks) may carry the same 4-tuple at once. */
struct tcp_pcb *vt_tcp_pcb_lookup(const ip_addr_t *remote, u16_t remote_port,
                                  const ip_addr_t *local, u16_t local_port, u8_t netif_idx);
/* Active plus TIME-WAIT pcbs bound to the netif with this index. */
u32_t vt_tcp_pcb_count(u8_t netif_idx);

/* The index of the netif NetStack is serving now (multi-netif.patch:
 * lwIP's timers and evictions leave other netifs' pcbs alone). Written only
 * under the process-wide lwIP lock. */
extern u8_t vt_tcp_current_netif;

/* The vt_gso_mss of the pcb whose segment lwIP is sending now (0: none, or
 * no pcb), set by LWIP_HOOK_TCP_OUT_ADD_TCPOPTS for every TCP segment just
 * before it reaches the netif's output. Under the lwIP lock. */
extern u16_t vt_tcp_out_gso_mss;

#ifdef __cplusplus
}
#endif

#endif
