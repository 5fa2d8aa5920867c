/* lwIP options for vless-tun: NO_SYS=1, driven from the libuv loop thread.
 * The netstack issue tunes these (window, segment and pbuf counts); this
 * is the first, conservative set. */
#ifndef VT_LWIPOPTS_H
#define VT_LWIPOPTS_H

#define NO_SYS 1
#define SYS_LIGHTWEIGHT_PROT 0
#define LWIP_NETCONN 0
#define LWIP_SOCKET 0
#define LWIP_TIMERS 1

#define LWIP_IPV4 1
#define LWIP_IPV6 1
#define LWIP_TCP 1
#define LWIP_UDP 1
#define LWIP_ICMP 1
#define LWIP_RAW 0
#define LWIP_DHCP 0
#define LWIP_AUTOIP 0
#define LWIP_IGMP 0
#define LWIP_DNS 0
#define LWIP_ARP 0
#define LWIP_ETHERNET 0
#define LWIP_IPV6_MLD 0
#define LWIP_IPV6_AUTOCONFIG 0
#define LWIP_IPV6_DHCP6 0
#define LWIP_IPV6_ND 0
#define LWIP_ND6_QUEUEING 0
#define LWIP_IPV6_FRAG 1
#define LWIP_IPV6_REASS 1
#define IP_REASSEMBLY 1
#define IP_FRAG 1
#define LWIP_STATS 0
#define LWIP_NETIF_STATUS_CALLBACK 0
#define LWIP_SINGLE_NETIF 1
/* Our patch (accept-any.patch): a netif with this flag takes TCP and UDP for
 * any destination address and port (the TUN). */
#define NETIF_FLAG_ACCEPT_ANY 0x80U

#define MEM_LIBC_MALLOC 1
#define MEMP_MEM_MALLOC 1
#define MEM_ALIGNMENT 8

#define TCP_MSS 1460
#define TCP_WND (64 * 1024)
#define LWIP_WND_SCALE 1
#define TCP_RCV_SCALE 2
#define TCP_SND_BUF (64 * 1024)
#define TCP_SND_QUEUELEN 512
#define MEMP_NUM_TCP_PCB 16384
#define MEMP_NUM_UDP_PCB 4096
#define MEMP_NUM_TCP_SEG 8192
#define PBUF_POOL_SIZE 512
#define TCP_LISTEN_BACKLOG 0
#define LWIP_TCP_KEEPALIVE 1
#define LWIP_CHECKSUM_ON_COPY 1

#endif
