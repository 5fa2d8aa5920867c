#!/usr/bin/env python3
"""Probes for tun_autoroute_test.sh.

serve  --port P: line server on every address (v4 and v6). Each line is
       answered with "ok from=<peer address> <line>", so the caller learns
       which source address the connection arrived from.
ask    --target H:P --msg M [--timeout S]: one connection, one line, prints
       the answer; exit 1 (with the error) on failure or timeout.
sniff  --ifname IF --dst ADDR --ready FILE [--max-seconds S]: an AF_PACKET
       socket on IF counting the IPv6 TCP packets that ARRIVE on IF (not the
       ones the namespace sends) with destination ADDR, and among them the
       SYNs. Writes FILE once the socket is bound; on SIGTERM/SIGINT or after
       S seconds prints "syn6=N tcp6=M" and exits 0.
"""
import argparse
import asyncio
import ipaddress
import select
import signal
import socket
import sys
import time

ETH_P_ALL = 0x0003
ETH_P_IPV6 = 0x86DD
PACKET_OUTGOING = 4
IPPROTO_TCP = 6


def split_target(t):
    host, port = t.rsplit(":", 1)
    return host.strip("[]"), int(port)


async def serve(args):
    async def handle(reader, writer):
        peer = writer.get_extra_info("peername")[0]
        if peer.startswith("::ffff:"):
            peer = peer[7:]
        try:
            while True:
                line = await asyncio.wait_for(reader.readline(), 30)
                if not line:
                    break
                writer.write(b"ok from=" + peer.encode() + b" " + line)
                await writer.drain()
        except (ConnectionError, OSError, asyncio.TimeoutError):
            pass
        finally:
            writer.close()

    srv = await asyncio.start_server(handle, host=None, port=args.port)
    async with srv:
        await srv.serve_forever()


def ask(args):
    host, port = split_target(args.target)
    try:
        with socket.create_connection((host, port), timeout=args.timeout) as s:
            s.sendall(args.msg.encode() + b"\n")
            buf = b""
            while not buf.endswith(b"\n"):
                chunk = s.recv(4096)
                if not chunk:
                    break
                buf += chunk
            print(buf.decode(errors="replace").rstrip("\n"))
            return 0 if buf.endswith(b"\n") else 1
    except OSError as e:
        print("error: %s" % e)
        return 1


def sniff(args):
    want = ipaddress.IPv6Address(args.dst).packed
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((args.ifname, 0))
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    with open(args.ready, "w") as f:
        f.write("ready\n")
    syn = tcp = 0
    deadline = time.monotonic() + args.max_seconds
    while not stop and time.monotonic() < deadline:
        try:
            r, _, _ = select.select([s], [], [], 0.1)
        except InterruptedError:
            continue
        if not r:
            continue
        frame, addr = s.recvfrom(65535)
        if addr[2] == PACKET_OUTGOING or len(frame) < 14 + 40 + 20:
            continue
        if int.from_bytes(frame[12:14], "big") != ETH_P_IPV6:
            continue
        ip6 = frame[14:]
        if ip6[6] != IPPROTO_TCP or ip6[24:40] != want:
            continue
        tcp += 1
        flags = ip6[40 + 13]
        if flags & 0x02 and not flags & 0x10:
            syn += 1
    print("syn6=%d tcp6=%d" % (syn, tcp), flush=True)
    return 0


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("serve")
    a.add_argument("--port", type=int, required=True)
    a = sub.add_parser("ask")
    a.add_argument("--target", required=True)
    a.add_argument("--msg", required=True)
    a.add_argument("--timeout", type=float, default=5)
    a = sub.add_parser("sniff")
    a.add_argument("--ifname", required=True)
    a.add_argument("--dst", required=True)
    a.add_argument("--ready", required=True)
    a.add_argument("--max-seconds", type=float, default=60)
    args = p.parse_args()
    if args.cmd == "serve":
        asyncio.run(serve(args))
        return 0
    if args.cmd == "ask":
        return ask(args)
    return sniff(args)


if __name__ == "__main__":
    sys.exit(main())
