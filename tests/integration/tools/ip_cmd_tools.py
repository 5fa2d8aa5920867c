#!/usr/bin/env python3
"""CmdIP helpers for ip_client_test.sh: a fake server and a pinger.

    ip_cmd_tools.py server --listen H:P --cert C --key K --uuid U [--max-seconds S]
    ip_cmd_tools.py ping --dst ADDR [--count N] [--interval S] [--wait S]

ping: ICMP / ICMPv6 echo over a raw socket (for hosts without iputils
ping); prints "seq=N ttl=T" per reply (ttl -1 for IPv6) and the summary
line "N packets transmitted, M received"; exit 0 when M > 0.

server: a fake CmdIP server (VLESS v1 CMD 5 over TLS).
Reads the v1 request (docs/protocol.md 3: VER 01, UUID, ADDON, CMD 05 with
no address), then reads `LEN(2) packet` units. It answers every ICMP echo
request (IPv4 type 8, ICMPv6 type 128) by building the reply itself:
addresses swapped, type 0 / 129, checksums recomputed. Other packets are
counted and ignored. Prints "request cmd=5" per accepted request, "unit v<4|6>
proto=<n> len=<n> echo=<0|1>" per packet, and "conn cmd=<n> units=<n>
echo=<n> end=<why>" when a connection ends.
"""
import argparse
import asyncio
import ssl
import struct
import sys
import uuid as uuidlib


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def echo_reply(p):
    """The reply to an echo request `p`, or None."""
    ver = p[0] >> 4
    if ver == 4 and len(p) >= 28 and p[9] == 1:
        ihl = (p[0] & 0x0F) * 4
        if p[ihl] != 8:
            return None
        hdr = bytearray(p[:ihl])
        hdr[12:16], hdr[16:20] = p[16:20], p[12:16]
        hdr[8] = 64  # TTL
        hdr[10:12] = b"\0\0"
        hdr[10:12] = struct.pack("!H", csum(bytes(hdr)))
        icmp = bytearray(p[ihl:])
        icmp[0] = 0
        icmp[2:4] = b"\0\0"
        icmp[2:4] = struct.pack("!H", csum(bytes(icmp)))
        return bytes(hdr) + bytes(icmp)
    if ver == 6 and len(p) >= 48 and p[6] == 58 and p[40] == 128:
        src, dst = p[24:40], p[8:24]
        icmp = bytearray(p[40:])
        icmp[0] = 129
        icmp[2:4] = b"\0\0"
        pseudo = src + dst + struct.pack("!I3xB", len(icmp), 58)
        icmp[2:4] = struct.pack("!H", csum(pseudo + bytes(icmp)))
        hdr = bytearray(p[:40])
        hdr[8:24], hdr[24:40] = src, dst
        hdr[7] = 64  # hop limit
        return bytes(hdr) + bytes(icmp)
    return None


async def handle(r, w, want_uuid, max_seconds):
    cmd, units, echoes, why = -1, 0, 0, "eof"
    try:
        head = await r.readexactly(18)
        if head[0] != 1 or head[1:17] != want_uuid:
            why = "bad-header"
            return
        addon = head[17]
        if addon == 2:
            count = (await r.readexactly(1))[0]
            for _ in range(count):
                _, ln = await r.readexactly(2)
                await r.readexactly(ln)
        elif addon not in (0, 1):
            why = "bad-addon"
            return
        cmd = (await r.readexactly(1))[0]
        if cmd != 5:
            why = "not-cmd5"
            return
        print("request cmd=5", flush=True)
        deadline = asyncio.get_running_loop().time() + max_seconds
        while True:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                why = "max-seconds"
                return
            n = struct.unpack("!H", await asyncio.wait_for(r.readexactly(2), left))[0]
            p = await r.readexactly(n)
            units += 1
            reply = echo_reply(p)
            print("unit v%d proto=%d len=%d echo=%d" % (p[0] >> 4, p[9] if p[0] >> 4 == 4 else p[6],
                                                        n, reply is not None), flush=True)
            if reply is not None:
                echoes += 1
                w.write(struct.pack("!H", len(reply)) + reply)
                await w.drain()
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.TimeoutError):
        pass
    finally:
        print("conn cmd=%d units=%d echo=%d end=%s" % (cmd, units, echoes, why), flush=True)
        w.close()


def ping(a):
    import ipaddress
    import os
    import select
    import socket
    import time
    v6 = ipaddress.ip_address(a.dst).version == 6
    if v6:
        s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    ident = os.getpid() & 0xFFFF
    got = set()
    for seq in range(1, a.count + 1):
        body = struct.pack("!HH", ident, seq) + b"vless-tun-cmdip!" * 3
        msg = bytearray(struct.pack("!BBH", 128 if v6 else 8, 0, 0) + body)
        if not v6:  # the kernel fills in the ICMPv6 checksum
            msg[2:4] = struct.pack("!H", csum(bytes(msg)))
        s.sendto(bytes(msg), (a.dst, 0))
        end = time.monotonic() + (a.wait if seq == a.count else a.interval)
        while True:
            left = end - time.monotonic()
            if left <= 0 or not select.select([s], [], [], left)[0]:
                break
            data, _ = s.recvfrom(65535)
            ttl = -1
            if not v6:
                ttl = data[8]
                data = data[(data[0] & 0x0F) * 4:]
            if len(data) < 8 or data[0] != (129 if v6 else 0):
                continue
            rid, rseq = struct.unpack("!HH", data[4:8])
            if rid == ident and rseq not in got:
                got.add(rseq)
                print("seq=%d ttl=%d" % (rseq, ttl), flush=True)
    print("%d packets transmitted, %d received" % (a.count, len(got)), flush=True)
    return 0 if got else 1


async def serve(a):
    host, port = a.listen.rsplit(":", 1)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a.cert, a.key)
    want = uuidlib.UUID(a.uuid).bytes
    srv = await asyncio.start_server(lambda r, w: handle(r, w, want, a.max_seconds),
                                     host, int(port), ssl=ctx)
    async with srv:
        await asyncio.sleep(a.max_seconds)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    sp = sub.add_parser("server")
    sp.add_argument("--listen", required=True)
    sp.add_argument("--cert", required=True)
    sp.add_argument("--key", required=True)
    sp.add_argument("--uuid", required=True)
    sp.add_argument("--max-seconds", type=float, default=120)
    pp = sub.add_parser("ping")
    pp.add_argument("--dst", required=True)
    pp.add_argument("--count", type=int, default=3)
    pp.add_argument("--interval", type=float, default=0.3)
    pp.add_argument("--wait", type=float, default=2.0)
    a = ap.parse_args()
    if a.cmd == "ping":
        return ping(a)
    try:
        asyncio.run(serve(a))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
