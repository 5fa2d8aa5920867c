/* lwIP options for vless-tun: NO_SYS=1; each NetStack on its own loop
 * thread, every entry into lwIP under one process-wide lock (lwip_lock.h).
 *
 * Shape of the deployment these numbers are for: lwIP terminates TCP from
 * apps on the same host (the kernel hands us their packets through a TUN),
 * so the "network" between the app and lwIP has ~0 RTT, no loss and no
 * reordering. The slow path is the proxy upstream, not this hop. Hence:
 * small-but-not-tiny windows, no static pools, checksum checks off.
 *
 * Memory per idle TCP flow (no data queued either way):
 *   struct tcp_pcb 280 B (x86-64; malloc'd, MEMP_MEM_MALLOC) +
 *   vt::netstack::TcpFlow ~200 B, ~0.5 KiB with malloc overhead. Buffers
 *   are only held while bytes are in flight: at most
 *   TCP_WND received-but-unconsumed bytes (the app's own pbufs, adopted by
 *   the owner) and at most TCP_SND_BUF copied bytes waiting for the app's
 *   ACK. Far below the 8 KiB/idle-flow budget of the client.
 */
#ifndef VT_LWIPOPTS_H
#define VT_LWIPOPTS_H

#define NO_SYS 1
#define SYS_LIGHTWEIGHT_PROT 0
#define LWIP_NETCONN 0
#define LWIP_SOCKET 0
/* NetStack::onTimer() calls tcp_tmr() every TCP_TMR_INTERVAL itself (the
 * owner's loop timer runs only while there are pcbs), like hev and badvpn.
 * lwIP's own timeout list would need sys_now() polling even when idle. */
#define LWIP_TIMERS 0
/* 50 ms, not lwIP's 250: every TCP time counts in these ticks, and the
 * retransmission timeout in "slow" ticks of two. With ~0 RTT to the app the
 * RTO settles at 3 slow ticks: 300 ms here (fires 200-300 ms after the
 * send, above Linux's 200 ms delayed-ACK bound), 1.5 s at 250. The owner's
 * timer runs this often only while TCP is busy (NetStack kIdleIntervalMs
 * otherwise). Must equal NetStack::kTickMs (static_assert there). */
#define TCP_TMR_INTERVAL 50
/* The first retransmission timeout, before an RTT is measured: 1 s
 * (RFC 6298), not lwIP's 3 s; a lost first data segment stalled 3 s. */
#define LWIP_TCP_RTO_TIME 1000

#define LWIP_IPV4 1
#define LWIP_IPV6 1
#define LWIP_TCP 1
/* UDP goes beside lwIP (netstack/net_stack_udp.cc, docs/netstack.md):
 * NetStack never injects a UDP packet, so lwIP's udp.c sees none. Left
 * compiled in (unused, a few KiB of code); switching it off is untested. */
#define LWIP_UDP 1
/* ICMP: lwIP answers echo only for the TUN's own addresses (the accept-any
 * patch lets only TCP/UDP through for foreign destinations). */
#define LWIP_ICMP 1
#define LWIP_RAW 0
#define LWIP_DHCP 0
#define LWIP_AUTOIP 0
#define LWIP_IGMP 0
#define LWIP_DNS 0
#define LWIP_ARP 0
#define LWIP_ETHERNET 0
/* IPv6 on, but a point-to-point TUN has no neighbours: no MLD, no SLAAC, no
 * router solicitation, no duplicate address detection. */
#define LWIP_IPV6_MLD 0
#define LWIP_IPV6_AUTOCONFIG 0
#define LWIP_IPV6_DHCP6 0
#define LWIP_IPV6_SEND_ROUTER_SOLICIT 0
#define LWIP_IPV6_DUP_DETECT_ATTEMPTS 0
#define LWIP_ND6_QUEUEING 0
#define LWIP_IPV6_NUM_ADDRESSES 2
/* No reassembly in lwIP: the kernel never fragments the TCP it sends into
 * a TUN (DF/PMTU); NetStack reassembles UDP fragments itself (bounded,
 * zero copy) and drops other fragments before lwIP (counted).
 * Fragmenting our own output stays possible. */
#define IP_REASSEMBLY 0
#define LWIP_IPV6_REASS 0
#define IP_FRAG 1
#define LWIP_IPV6_FRAG 1
#define IP_DEFAULT_TTL 64
#define LWIP_STATS 0
#define LWIP_NETIF_STATUS_CALLBACK 0
#define LWIP_NETIF_LINK_CALLBACK 0
/* One netif per NetStack, and a process may run several NetStacks (one per
 * client core, each on its own thread; docs/netstack.md, "Several
 * NetStacks in one process"). */
#define LWIP_SINGLE_NETIF 0
/* Our patch (accept-any.patch): a netif with this flag takes TCP and UDP for
 * any destination address and port (the TUN). */
#define NETIF_FLAG_ACCEPT_ANY 0x80U
/* Our hooks: the pcb index of pcb-index.patch (functions declared in
 * vt_lwip_hooks.h, defined in src/netstack/net_stack.cc). Defined here, not
 * in the hook file, because tcp_priv.h tests them before a .c file includes
 * the hook file. */
#define LWIP_HOOK_FILENAME "vt_lwip_hooks.h"
#define LWIP_HOOK_TCP_PCB_LISTED(pcbs, npcb) vt_tcp_pcb_listed((pcbs), (npcb))
#define LWIP_HOOK_TCP_PCB_UNLISTED(pcbs, npcb) vt_tcp_pcb_unlisted((pcbs), (npcb))
#define LWIP_HOOK_TCP_PCB_LOOKUP(src, sport, dst, dport, netif_idx) \
  vt_tcp_pcb_lookup((src), (sport), (dst), (dport), (netif_idx))
/* multi-netif.patch: lwIP's timers and pcb evictions skip the pcbs of every
 * netif but the one NetStack is serving now (vt_tcp_current_netif, set by
 * NetStack at each entry, under the process-wide lwIP lock). */
#define LWIP_HOOK_TCP_PCB_FOREIGN(pcb) ((pcb)->netif_idx != vt_tcp_current_netif)
/* Every TCP segment lwIP builds passes here just before its checksum and
 * ip_output (tcp_output_segment, and tcp_output_fill_options for ACKs,
 * RSTs and probes): NetStack's output reads vt_tcp_out_gso_mss to know
 * whether a segment longer than the peer's MSS goes to the TUN as GSO
 * (gso-mss.patch, docs/netstack.md "TUN offload"). Adds no option. */
#define LWIP_HOOK_TCP_OUT_ADD_TCPOPTS(p, hdr, pcb, opts) \
  (vt_tcp_out_gso_mss = ((pcb) != NULL ? (pcb)->vt_gso_mss : 0), (opts))

/* Packets come from the local kernel, which computed (or offloaded and then
 * completed) every checksum; checking again costs a pass over each byte.
 * Generation stays on, and is folded into the copy in tcp_write. */
#define CHECKSUM_CHECK_IP 0
#define CHECKSUM_CHECK_TCP 0
#define CHECKSUM_CHECK_UDP 0
#define CHECKSUM_CHECK_ICMP 0
#define CHECKSUM_CHECK_ICMP6 0
#define LWIP_CHECKSUM_ON_COPY 1

/* Heap for everything. Static memp pools would cap pcbs in lwIP, but they
 * cost BSS sized for the worst case and never shrink after a burst;
 * NetStack enforces its own caps (max flows, max pending SYNs) instead, so
 * the MEMP_NUM_* counts below are not limits (memp.c calls malloc). */
#define MEM_LIBC_MALLOC 1
#define MEMP_MEM_MALLOC 1
#define MEM_ALIGNMENT 8
#define MEMP_NUM_TCP_PCB 16384
#define MEMP_NUM_UDP_PCB 4096
#define MEMP_NUM_TCP_SEG 8192
#define PBUF_POOL_SIZE 64

/* TCP_MSS is the largest MSS we ever use, so that a TUN MTU up to 16040
 * can be used (fewer segments per byte); the MSS actually advertised and
 * used is clamped to netif MTU - 40 (IPv4) / - 60 (IPv6) by lwIP
 * (TCP_CALCULATE_EFF_SEND_MSS), i.e. 1460 on a 1500 MTU. lwIP allows at
 * most 16382 (its TCP_SNDLOWAT arithmetic is u16). It was 8960 (MTU 9000)
 * until 2026-12-02; MTU 16000 against the default 8500 is measured in
 * docs/performance.md "Throughput". With GSO writes (NetStack::
 * setGsoOutput, off for now) TcpFlow raises an accepted pcb's mss at run time to a multiple of the app's, up to 65000,
 * for GSO writes (gso-mss.patch); TCP_MSS still bounds what is advertised
 * and what the app may send us. */
#define TCP_MSS 16000
#define TCP_CALCULATE_EFF_SEND_MSS 1
/* 256 KiB receive window and send buffer. The hop to the app has ~0 RTT,
 * but not zero: the ACK comes back through the TUN and our own loop, which
 * is busy with the other side, so a window's bytes must cover that turn.
 * With 64 KiB four TLS streams over one mux downloaded at 1.4-1.7 Gbit/s
 * with both processes partly idle; 256 KiB lifted both directions, that
 * one most (1.7 -> 3.4 Gbit/s; bench/run.sh, docs/performance.md
 * "Throughput").
 * The window is also the bound of unconsumed bytes per flow (backpressure:
 * tcp_recved only for what the owner accepted), and the send buffer that of
 * copied bytes waiting for the app's ACK: an idle flow holds neither. A
 * window over 65535 needs window scaling: 3 covers 256 KiB (65535 << 3). */
#define TCP_WND (256 * 1024)
#define LWIP_WND_SCALE 1
#define TCP_RCV_SCALE 3
/* Copied bytes waiting for the app's ACK; bounded per flow. TcpFlow reads
 * pcb->snd_buf, since tcp_sndbuf() clamps to 0xFFFF. */
#define TCP_SND_BUF (256 * 1024)
/* pbufs per flow's send queue: TcpFlow writes whole slices (<= 16 KiB) so
 * 4 per MSS-sized segment of a 1460 MSS is ample. */
#define TCP_SND_QUEUELEN ((4 * TCP_SND_BUF + 1459) / 1460)
/* Only the sockets API reads this; it just has to pass lwIP's sanity checks
 * (below TCP_SND_BUF, and 4 * TCP_MSS + this below 0xFFFF). */
#define TCP_SNDLOWAT 1024
#define TCP_QUEUE_OOSEQ 1
/* Out-of-order segments from the app: lwIP SACKs each one it queues, and
 * must then keep it (never renege). The app's kernel does not resend data
 * it saw SACKed until its own retransmission timeout (RFC 2018), so each
 * queued-then-dropped segment cost the app an RTO, with exponential
 * backoff when it recurred: at 5% loss each way a 48-pbuf cap (70 KiB, a
 * quarter of the window) was hit on most losses; a third of the app's
 * segments were retransmissions (8 times what was lost), an upload ran at
 * ~1 MiB/s instead of ~15 with pauses of up to 25 s, and it_tun_loss once
 * saw one of 137 s. So the queue holds a whole window: it is bounded in bytes
 * by TCP_WND (the receive window check, which already keeps it inside
 * rcv_wnd) and in pbufs by one per 536-byte segment (the smallest MSS an
 * app may use); small input packets are copied to right-sized pbufs
 * (TunPump), so the pbuf count bounds the overhead, not the bytes. */
#define TCP_OOSEQ_MAX_PBUFS ((TCP_WND + 535) / 536)
#define TCP_OOSEQ_MAX_BYTES TCP_WND
/* lwIP drops the whole queue once the app sent nothing for this many RTOs
 * (6); a pcb that only receives has the initial RTO (1 s), so after 6 s of
 * the app's retransmission backoff: reneging again, just when the app is
 * slowest to recover (ooseq-keep.patch lets us set it). The queue is
 * bounded by the window and freed with the pcb; keep it (3300 RTOs: 55 min
 * at the initial RTO, 16 min at the 300 ms floor). */
#define TCP_OOSEQ_TIMEOUT 3300U
/* TIME_WAIT (2*MSL): 2 s. The app's kernel is
 * one hop away with ~0 RTT, so TIME_WAIT only has to catch a retransmitted
 * FIN after a lost ACK (a TUN write dropped on EAGAIN), which comes within
 * the app's minimum RTO (200 ms). Longer only holds pcbs: at 1,000 flows/s
 * lwIP's default (2 min) would keep 120,000. NetStack also drops a
 * TIME_WAIT pcb at once when the app reuses its 4-tuple with a new SYN, and
 * caps their number (NetStackOptions::maxTimeWait). */
#define TCP_MSL 1000UL
/* LAST_ACK give-up (our last-ack-timeout.patch; lwIP uses 2*MSL): a pcb in
 * LAST_ACK may still hold data it retransmits (RTO 0.3 s and doubling); at
 * 2 s a lost retransmission removed it and the app never got its tail or
 * FIN (found by it_tun_loss at 5% loss). Its retransmissions and the
 * retransmission limit end it normally; this bounds an app that went away.
 * When pcbs run out, tcp_alloc takes LAST_ACK ones first anyway. */
#define TCP_LAST_ACK_TIMEOUT 30000UL
#define TCP_LISTEN_BACKLOG 0
#define LWIP_TCP_KEEPALIVE 1
/* Timestamps on (when the app's SYN offers them, as Linux's does): an app
 * that closes first keeps TIME_WAIT in its own kernel, and Linux lets
 * connect() reuse a TIME_WAIT port (tcp_tw_reuse) only when the old
 * connection carried timestamps. Without them a browser-like app spends its
 * time searching the port range, slower the longer it churns (measured:
 * 32 workers through vless-tun fell from ~3,500 to ~800 flows/s within
 * 30 s; bench/churn.sh). Costs 12 bytes per segment on this hop. */
#define LWIP_TCP_TIMESTAMPS 1
/* SACK toward the app (RFC 2018, when its SYN offers SACK_PERM, as Linux's
 * does): with several segments lost in a window, the app's kernel resends
 * just the holes instead of everything after the first. 4 blocks (32
 * bytes per pcb). lwIP's own retransmission ignores the app's SACKs; it
 * has NewReno instead (newreno.patch). */
#define LWIP_TCP_SACK_OUT 1

#endif
