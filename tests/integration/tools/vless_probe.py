#!/usr/bin/env python3
"""A minimal VLESS v0 client written from docs/protocol.md, independent of
our C++ client, for the egress and drain tests. One request, bounded in time.

tcp --server H:P --uuid U --target HOST:PORT --msg M [--ca FILE --sni NAME] [--timeout S]
    Sends M after the request header, prints "tcp reply=<bytes after the v0
    response header, up to the end of the stream>" (exit 0) or "tcp refused" when the server
    closes without its response header (exit 1).
    Bulk options (plain TCP; the drain test): --half-close shuts down the
    write side after M; --rate KIB reads at most KIB KiB/s; --pause-at BYTES
    --pause S stops reading for S seconds once BYTES came back; --out FILE
    keeps what came back after the v0 response header. With --out, --rate or
    --pause-at the line is "tcp bytes=N end=eof|reset ms=<connect to end>
    paused_ms=<connect to the pause, or -> epoch=<connect, Unix time>
    local=<IP:PORT>" once the stream ended (exit 0), "tcp none" at the
    timeout (exit 1).
udp --server H:P --uuid U --target HOST:PORT --msg M [--ca ... --sni ...] [--timeout S]
    CMD 2: one LEN-framed datagram; prints "udp reply=<payload>" (exit 0),
    "udp refused" when the server closes, "udp none" at the timeout (exit 1).
"""
import argparse
import ipaddress
import socket
import ssl
import struct
import sys
import time
import uuid


def address(target):
    host, _, port = target.rpartition(":")
    host = host.strip("[]")
    port = int(port)
    try:
        ip = ipaddress.ip_address(host)
        atyp, raw = (1, ip.packed) if ip.version == 4 else (3, ip.packed)
    except ValueError:
        atyp, raw = 2, bytes([len(host)]) + host.encode()
    return struct.pack("!H", port) + bytes([atyp]) + raw


def connect(args):
    host, _, port = args.server.rpartition(":")
    sock = socket.create_connection((host.strip("[]"), int(port)), timeout=args.timeout)
    if args.ca:
        ctx = ssl.create_default_context(cafile=args.ca)
        sock = ctx.wrap_socket(sock, server_hostname=args.sni)
    return sock


def read_exactly(sock, n):
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            return None
        out += chunk
    return out


def read_bulk(sock, args, t0, epoch):
    """Reads to the end of the stream, paced and paused as asked; one line."""
    rate = args.rate * 1024 if args.rate else None
    step = 65536 if rate is None else max(1024, min(16384, int(rate / 16)))
    out = open(args.out, "wb") if args.out else None
    total, end, paused_ms, paused = 0, "eof", None, False
    start, slept = time.monotonic(), 0.0
    try:
        while True:
            want = step
            if args.pause_at is not None and not paused:
                if total >= args.pause_at:
                    paused = True
                    paused_ms = int((time.monotonic() - t0) * 1000)
                    time.sleep(args.pause)
                    slept += args.pause
                else:
                    want = min(want, args.pause_at - total)  # stop exactly there
            try:
                chunk = sock.recv(want)
            except ConnectionResetError:
                end = "reset"
                break
            if not chunk:
                break
            total += len(chunk)
            if out:
                out.write(chunk)
            if rate:
                wait = start + slept + total / rate - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
    finally:
        if out:
            out.close()
    ms = int((time.monotonic() - t0) * 1000)
    local = "%s:%d" % sock.getsockname()[:2]
    print(f"tcp bytes={total} end={end} ms={ms} paused_ms={paused_ms if paused_ms is not None else '-'}"
          f" epoch={epoch:.3f} local={local}")
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["tcp", "udp"])
    ap.add_argument("--server", required=True)
    ap.add_argument("--uuid", required=True)
    ap.add_argument("--target", required=True)
    ap.add_argument("--msg", default="hello")
    ap.add_argument("--ca")
    ap.add_argument("--sni", default="test.name")
    ap.add_argument("--timeout", type=float, default=5.0)
    ap.add_argument("--half-close", action="store_true")
    ap.add_argument("--rate", type=float, help="KiB/s")
    ap.add_argument("--pause-at", type=int)
    ap.add_argument("--pause", type=float, default=0.0)
    ap.add_argument("--out")
    args = ap.parse_args()
    bulk = args.out is not None or args.rate is not None or args.pause_at is not None
    if (args.half_close or bulk) and (args.ca or args.mode != "tcp"):
        ap.error("--half-close, --rate, --pause-at and --out are for tcp mode without TLS")

    cmd = 1 if args.mode == "tcp" else 2
    header = bytes([0]) + uuid.UUID(args.uuid).bytes + bytes([0, cmd]) + address(args.target)
    msg = args.msg.encode()
    try:
        t0, epoch = time.monotonic(), time.time()
        sock = connect(args)
        if args.mode == "tcp":
            sock.sendall(header + msg)
            if args.half_close:
                sock.shutdown(socket.SHUT_WR)
        else:
            sock.sendall(header + struct.pack("!H", len(msg)) + msg)
        head = read_exactly(sock, 2)
        if head is None:
            print(f"{args.mode} refused")
            return 1
        if head[1] and read_exactly(sock, head[1]) is None:
            print(f"{args.mode} refused")
            return 1
        if args.mode == "tcp" and bulk:
            return read_bulk(sock, args, t0, epoch)
        if args.mode == "tcp":
            reply = b""
            while True:  # the echo peers close after their one reply
                chunk = sock.recv(65536)
                if not chunk:
                    break
                reply += chunk
            print("tcp reply=" + reply.decode(errors="replace"))
            return 0 if reply else 1
        size = read_exactly(sock, 2)
        if size is None:
            print("udp refused")
            return 1
        payload = read_exactly(sock, struct.unpack("!H", size)[0])
        print("udp reply=" + (payload.decode(errors="replace") if payload is not None else ""))
        return 0 if payload is not None else 1
    except socket.timeout:
        print(f"{args.mode} none")
        return 1
    except (ConnectionError, ssl.SSLError) as e:
        print(f"{args.mode} refused ({e})")
        return 1


if __name__ == "__main__":
    sys.exit(main())
