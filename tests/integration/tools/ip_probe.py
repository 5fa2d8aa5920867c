#!/usr/bin/env python3
"""A CmdIP (VLESS v1, CMD 5) client written from docs/protocol.md 3.7, for
ip_exit_test.sh. It builds its packets itself (raw bytes, its own source
address) and reads the LEN(2)-framed packets the server sends back.

ping   --server H:P --uuid U --src A --dst B [--count N] [--ca F --sni S]
       ICMP / ICMPv6 echo requests (IPv6 when --dst has a colon); prints one
       line per reply "reply seq=N ttl=T src=S rtt_ms=R" and a last line
       "sent=N received=M".
proto  --server ... --src A --dst B --payload P
       one raw IP packet of protocol 253 carrying P; waits --wait seconds
       for a protocol 253 packet back and prints "proto253 from=S payload=P".
hostile --server ... --src A --dst B --own G
       sends a spoofed-source echo, an echo to the server's own address G,
       a packet with a bad IPv4 header checksum, units of LEN 0, of a
       version-7 packet and shorter than an IPv4 header, a unit whose LEN
       is longer than its packet's total length, one cut short of it, an
       IPv4 header with IHL 3, and an IPv6 packet with nine extension
       headers, then a good echo; prints the good echo's reply line
       ("reply ..."), proving the session lived.
"""
import argparse
import ipaddress
import select
import socket
import ssl
import struct
import sys
import time
import uuid


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def ipv4(src, dst, proto, payload, ttl=64, bad_checksum=False):
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 0x1234, 0, ttl, proto, 0,
                      ipaddress.ip_address(src).packed, ipaddress.ip_address(dst).packed)
    c = csum(hdr) ^ (0x5555 if bad_checksum else 0)
    return hdr[:10] + struct.pack("!H", c) + hdr[12:] + payload


def ipv6(src, dst, nh, payload, hlim=64):
    return struct.pack("!IHBB16s16s", 6 << 28, len(payload), nh, hlim,
                       ipaddress.ip_address(src).packed, ipaddress.ip_address(dst).packed) + payload


def echo(src, dst, ident, seq):
    data = struct.pack("!d", time.time()) + b"vless-cmdip-echo" * 2
    if ":" in dst:
        body = struct.pack("!BBHHH", 128, 0, 0, ident, seq) + data
        pseudo = (ipaddress.ip_address(src).packed + ipaddress.ip_address(dst).packed +
                  struct.pack("!IxxxB", len(body), 58))
        c = csum(pseudo + body)
        return ipv6(src, dst, 58, body[:2] + struct.pack("!H", c) + body[4:])
    body = struct.pack("!BBHHH", 8, 0, 0, ident, seq) + data
    c = csum(body)
    return ipv4(src, dst, 1, body[:2] + struct.pack("!H", c) + body[4:])


class Conn:
    def __init__(self, args):
        host, _, port = args.server.rpartition(":")
        s = socket.create_connection((host.strip("[]"), int(port)), timeout=10)
        if args.ca:
            ctx = ssl.create_default_context(cafile=args.ca)
            s = ctx.wrap_socket(s, server_hostname=args.sni)
        # v1 | UUID | ADDON 0x00 | CMD 5 (no address)
        s.sendall(bytes([1]) + uuid.UUID(args.uuid).bytes + bytes([0, 5]))
        s.setblocking(False)
        self.s = s
        self.buf = b""

    def send(self, pkt):
        self.send_raw(struct.pack("!H", len(pkt)) + pkt)

    def send_raw(self, data):
        self.s.setblocking(True)
        self.s.sendall(data)
        self.s.setblocking(False)

    def recv(self, deadline):
        """One packet, or None at the deadline; raises EOFError on close."""
        while True:
            if len(self.buf) >= 2:
                n = struct.unpack("!H", self.buf[:2])[0]
                if len(self.buf) >= 2 + n:
                    pkt, self.buf = self.buf[2:2 + n], self.buf[2 + n:]
                    return pkt
            left = deadline - time.time()
            if left <= 0:
                return None
            if not (isinstance(self.s, ssl.SSLSocket) and self.s.pending()):
                r, _, _ = select.select([self.s], [], [], left)
                if not r:
                    return None
            try:
                chunk = self.s.recv(65536)
            except (ssl.SSLWantReadError, BlockingIOError):
                continue
            if not chunk:
                raise EOFError("server closed the session")
            self.buf += chunk


def parse(pkt):
    v = pkt[0] >> 4
    if v == 4:
        ihl = (pkt[0] & 15) * 4
        return dict(v=4, ttl=pkt[8], proto=pkt[9], src=str(ipaddress.ip_address(pkt[12:16])),
                    dst=str(ipaddress.ip_address(pkt[16:20])), body=pkt[ihl:])
    return dict(v=6, ttl=pkt[7], proto=pkt[6], src=str(ipaddress.ip_address(pkt[8:24])),
                dst=str(ipaddress.ip_address(pkt[24:40])), body=pkt[40:])


def wait_echo(c, args, ident, seq, sent_at, timeout):
    deadline = time.time() + timeout
    while True:
        pkt = c.recv(deadline)
        if pkt is None:
            return None
        p = parse(pkt)
        if p["dst"] != args.src:
            print("WRONG-DESTINATION %s" % p["dst"], flush=True)
            continue
        b = p["body"]
        reply_type = 129 if p["v"] == 6 else 0
        if p["proto"] in (1, 58) and b[0] == reply_type:
            rid, rseq = struct.unpack("!HH", b[4:8])
            if rid == ident and rseq == seq:
                return "reply seq=%d ttl=%d src=%s rtt_ms=%.3f" % (
                    seq, p["ttl"], p["src"], (time.time() - sent_at) * 1000)
        print("other proto=%d type=%d from=%s" % (p["proto"], b[0] if b else -1, p["src"]), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["ping", "proto", "hostile"])
    ap.add_argument("--server", required=True)
    ap.add_argument("--uuid", required=True)
    ap.add_argument("--src", required=True)
    ap.add_argument("--dst", required=True)
    ap.add_argument("--own", default="")
    ap.add_argument("--count", type=int, default=5)
    ap.add_argument("--interval", type=float, default=0.2)
    ap.add_argument("--wait", type=float, default=2.0)
    ap.add_argument("--ident", type=int, default=0x4242)
    ap.add_argument("--payload", default="")
    ap.add_argument("--ca", default="")
    ap.add_argument("--sni", default="")
    args = ap.parse_args()
    c = Conn(args)
    if args.mode == "ping":
        got = 0
        for seq in range(1, args.count + 1):
            t = time.time()
            c.send(echo(args.src, args.dst, args.ident, seq))
            line = wait_echo(c, args, args.ident, seq, t, args.wait)
            if line:
                got += 1
                print(line, flush=True)
            time.sleep(args.interval)
        print("sent=%d received=%d" % (args.count, got), flush=True)
        return 0
    if args.mode == "proto":
        payload = args.payload.encode()
        if ":" in args.dst:
            c.send(ipv6(args.src, args.dst, 253, payload))
        else:
            c.send(ipv4(args.src, args.dst, 253, payload))
        deadline = time.time() + args.wait
        while True:
            pkt = c.recv(deadline)
            if pkt is None:
                print("proto253 none", flush=True)
                return 1
            p = parse(pkt)
            if p["proto"] == 253:
                print("proto253 from=%s to=%s payload=%s" % (p["src"], p["dst"], p["body"].decode()),
                      flush=True)
                return 0
    if args.mode == "hostile":
        first = echo(args.src, args.dst, args.ident, 1)
        c.send(first)  # sets our source address
        print(wait_echo(c, args, args.ident, 1, time.time(), args.wait) or "no first reply", flush=True)
        spoof = "198.18.0.99" if ":" not in args.dst else "2001:db8:0:99::1"
        c.send(echo(spoof, args.dst, args.ident, 2))
        c.send(echo(args.src, args.own, args.ident, 3))
        c.send(ipv4(args.src, args.dst, 1, b"\x08\0\0\0\0\0\0\0", bad_checksum=True))
        c.send_raw(b"\0\0")                       # LEN 0
        c.send_raw(b"\0\x03\x70\0\0")            # version 7
        c.send_raw(b"\0\x04\x45\0\0\x04")        # shorter than an IPv4 header
        good = echo(args.src, args.dst, args.ident, 9)
        c.send(good + b"\0\0\0\0")               # LEN past the total length
        c.send(good[:-4])                          # LEN short of it
        ihl3 = bytearray(good)
        ihl3[0] = 0x43
        c.send(bytes(ihl3))                        # IHL 3
        if ":" not in args.own:
            chain = b"".join(bytes([60, 0, 1, 4, 0, 0, 0, 0]) for _ in range(9))  # 9 x Destination Options
            c.send(ipv6("2001:db8:0:ff::1", "2001:db8:4::2", 60, chain[:-8] + bytes([59, 0, 1, 4, 0, 0, 0, 0])))
        c.send(echo(args.src, args.dst, args.ident, 4))
        line = wait_echo(c, args, args.ident, 4, time.time(), args.wait)
        print(line or "no reply after the hostile packets", flush=True)
        return 0 if line else 1
    return 2


if __name__ == "__main__":
    sys.exit(main())
