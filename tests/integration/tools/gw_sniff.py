#!/usr/bin/env python3
"""Uplink sniffer for gateway_test.sh.

gw_sniff.py --ifname IF --server ADDR --port P --lan CIDR [--lan CIDR ...]
            --ready FILE [--max-seconds S]

An AF_PACKET socket on IF (both directions) sorts every frame:
  tunnel  TCP between any address and ADDR:P (the tunnel's connections)
  lan     an IPv4/IPv6 packet with a source or destination in a --lan CIDR
  other   any other IPv4/IPv6 packet, except IPv6 neighbour discovery and
          MLD (ICMPv6 types 130..137, 143, also behind a hop-by-hop
          header), which every link has
ARP and other non-IP frames are ignored. Writes FILE once bound; on SIGTERM
or after S seconds prints up to 10 "seen <class> <summary>" lines for lan
and other packets, then "tunnel=N lan=M other=K", and exits 0.
With --dns, also one "dns <src> > <dst> <name>" line for every UDP packet
to or from port 53 that carries a DNS question (the routing rules test:
which names crossed the real interface in clear).
"""
import argparse
import ipaddress
import select
import signal
import socket
import struct
import time

ETH_P_ALL = 0x0003


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--ifname", required=True)
    p.add_argument("--server", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--lan", action="append", default=[])
    p.add_argument("--ready", required=True)
    p.add_argument("--max-seconds", type=float, default=120)
    p.add_argument("--dns", action="store_true")
    a = p.parse_args()
    server = ipaddress.ip_address(a.server)
    lans = [ipaddress.ip_network(c) for c in a.lan]
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((a.ifname, 0))
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    with open(a.ready, "w") as f:
        f.write("ready\n")
    counts = {"tunnel": 0, "lan": 0, "other": 0}
    seen = []
    dns = []

    def qname(msg):
        # The first question's name of a DNS message; None if it does not parse.
        if len(msg) < 12 or int.from_bytes(msg[4:6], "big") < 1:
            return None
        i, labels = 12, []
        while i < len(msg) and msg[i] != 0:
            n = msg[i]
            if n & 0xC0 or i + 1 + n > len(msg):
                return None
            labels.append(msg[i + 1:i + 1 + n].decode("ascii", "replace"))
            i += 1 + n
        return ".".join(labels).lower() if i < len(msg) else None

    def take(frame):
        if len(frame) < 14:
            return
        eth = int.from_bytes(frame[12:14], "big")
        ip = frame[14:]
        if eth == 0x0800 and len(ip) >= 20:
            src, dst = ipaddress.ip_address(ip[12:16]), ipaddress.ip_address(ip[16:20])
            proto, l4 = ip[9], ip[(ip[0] & 0xF) * 4:]
        elif eth == 0x86DD and len(ip) >= 40:
            src, dst = ipaddress.ip_address(ip[8:24]), ipaddress.ip_address(ip[24:40])
            proto, l4 = ip[6], ip[40:]
            if proto == 0 and len(l4) >= 2:  # hop-by-hop options (MLD reports carry one)
                proto, l4 = l4[0], l4[(l4[1] + 1) * 8:]
            if proto == 58 and l4 and (130 <= l4[0] <= 137 or l4[0] == 143):
                return
        else:
            return
        ports = struct.unpack("!HH", l4[:4]) if proto in (6, 17) and len(l4) >= 4 else (0, 0)
        if a.dns and proto == 17 and 53 in ports and len(l4) > 8:
            name = qname(l4[8:])
            if name is not None:
                dns.append(f"dns {src}:{ports[0]} > {dst}:{ports[1]} {name}")
        if proto == 6 and ((src == server and ports[0] == a.port) or (dst == server and ports[1] == a.port)):
            counts["tunnel"] += 1
            return
        cls = "lan" if any(x in n for n in lans for x in (src, dst) if x.version == n.version) else "other"
        counts[cls] += 1
        if len(seen) < 10:
            seen.append(f"seen {cls} proto={proto} {src}:{ports[0]} > {dst}:{ports[1]}")

    deadline = time.monotonic() + a.max_seconds
    while not stop and time.monotonic() < deadline:
        try:
            r, _, _ = select.select([s], [], [], 0.1)
        except InterruptedError:
            continue
        if r:
            take(s.recvfrom(65535)[0])
    s.setblocking(False)
    while True:
        try:
            take(s.recvfrom(65535)[0])
        except (BlockingIOError, InterruptedError):
            break
    for line in seen:
        print(line)
    for line in dns:
        print(line)
    print(f"tunnel={counts['tunnel']} lan={counts['lan']} other={counts['other']}", flush=True)


if __name__ == "__main__":
    main()
