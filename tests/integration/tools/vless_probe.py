#!/usr/bin/env python3
"""A minimal VLESS v0 client written from docs/protocol.md, independent of
our C++ client, for the egress tests. One request, bounded in time.

tcp --server H:P --uuid U --target HOST:PORT --msg M [--ca FILE --sni NAME] [--timeout S]
    Sends M after the request header, prints "tcp reply=<bytes after the v0
    response header, up to the end of the stream>" (exit 0) or "tcp refused" when the server
    closes without its response header (exit 1).
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
    args = ap.parse_args()

    cmd = 1 if args.mode == "tcp" else 2
    header = bytes([0]) + uuid.UUID(args.uuid).bytes + bytes([0, cmd]) + address(args.target)
    msg = args.msg.encode()
    try:
        sock = connect(args)
        if args.mode == "tcp":
            sock.sendall(header + msg)
        else:
            sock.sendall(header + struct.pack("!H", len(msg)) + msg)
        head = read_exactly(sock, 2)
        if head is None:
            print(f"{args.mode} refused")
            return 1
        if head[1] and read_exactly(sock, head[1]) is None:
            print(f"{args.mode} refused")
            return 1
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
