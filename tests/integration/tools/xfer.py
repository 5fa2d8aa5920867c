#!/usr/bin/env python3
"""Bulk-transfer helper for the integration tests.

server: listens on HOST:PORT; each connection sends one line:
  "GET\n"  -> the server sends the file given by --file, then closes
  "SUM\n"  -> the server reads until EOF (the peer half-closes) and answers
              with the sha256 hex of what it read, then closes
  "SUMN n\n" -> reads exactly n bytes, answers with their sha256 hex, then
              waits for the peer to close (for paths that do not carry a
              half-close, such as v2ray's)
  "ECHO\n" -> echoes everything until EOF, then half-closes
client: connects directly or through a SOCKS5 proxy (--socks), sends
  "SUM\n" + the bytes of --send FILE and half-closes, or "GET\n"; writes
  what it receives to stdout.
"""
import argparse
import hashlib
import os
import socket
import struct
import sys
import threading


def serve(args):
    srv = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((args.host, args.port))
    srv.listen(128)
    if args.ready:
        with open(args.ready, "w") as f:
            f.write(str(srv.getsockname()[1]))

    def handle(conn):
        with conn:
            line = b""
            while not line.endswith(b"\n") and len(line) < 64:
                b = conn.recv(1)
                if not b:
                    return
                line += b
            cmd = line.strip()
            if cmd == b"GET":
                with open(args.file, "rb") as f:
                    conn.sendfile(f)
            elif cmd == b"SUM":
                h = hashlib.sha256()
                while True:
                    b = conn.recv(1 << 16)
                    if not b:
                        break
                    h.update(b)
                conn.sendall(h.hexdigest().encode() + b"\n")
            elif cmd.startswith(b"SUMN "):
                left = int(cmd.split()[1])
                h = hashlib.sha256()
                while left > 0:
                    b = conn.recv(min(left, 1 << 16))
                    if not b:
                        return
                    h.update(b)
                    left -= len(b)
                conn.sendall(h.hexdigest().encode() + b"\n")
                while conn.recv(1 << 16):
                    pass
                return
            elif cmd == b"ECHO":
                while True:
                    b = conn.recv(1 << 16)
                    if not b:
                        break
                    conn.sendall(b)
            conn.shutdown(socket.SHUT_WR)

    while True:
        c, _ = srv.accept()
        threading.Thread(target=handle, args=(c,), daemon=True).start()


def recv_exact(s, n):
    out = b""
    while len(out) < n:
        b = s.recv(n - len(out))
        if not b:
            raise SystemExit("socks: connection closed during handshake")
        out += b
    return out


def socks_connect(proxy, host, port):
    ph, pp = proxy.rsplit(":", 1)
    s = socket.create_connection((ph, int(pp)), timeout=60)
    s.sendall(b"\x05\x01\x00")
    if recv_exact(s, 2) != b"\x05\x00":
        raise SystemExit("socks: no acceptable auth method")
    h = host.encode()
    s.sendall(b"\x05\x01\x00\x03" + bytes([len(h)]) + h + struct.pack(">H", port))
    rep = recv_exact(s, 4)
    if rep[1] != 0:
        raise SystemExit("socks: connect failed, reply %d" % rep[1])
    atyp = rep[3]
    recv_exact(s, {1: 4, 4: 16}.get(atyp, 0) or recv_exact(s, 1)[0])
    recv_exact(s, 2)
    return s


def client(args):
    host, port = args.target.rsplit(":", 1)
    if args.socks:
        s = socks_connect(args.socks, host.strip("[]"), int(port))
    else:
        s = socket.create_connection((host.strip("[]"), int(port)), timeout=60)
    s.settimeout(120)
    if args.send and args.no_half_close:
        s.sendall(b"SUMN %d\n" % os.path.getsize(args.send))
        with open(args.send, "rb") as f:
            s.sendfile(f)
        line = b""
        while not line.endswith(b"\n"):
            b = s.recv(128)
            if not b:
                break
            line += b
        sys.stdout.buffer.write(line)
        return
    if args.send:
        s.sendall(b"SUM\n")
        with open(args.send, "rb") as f:
            s.sendfile(f)
    else:
        s.sendall(b"GET\n")
    s.shutdown(socket.SHUT_WR)
    out = sys.stdout.buffer
    while True:
        b = s.recv(1 << 16)
        if not b:
            break
        out.write(b)
    out.flush()


def raw(args):
    """Sends raw bytes (hex) over TCP or TLS (unverified) and prints the reply."""
    import ssl
    host, port = args.target.rsplit(":", 1)
    s = socket.create_connection((host.strip("[]"), int(port)), timeout=20)
    if args.tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        s = ctx.wrap_socket(s, server_hostname=args.sni)
    s.sendall(bytes.fromhex(args.hex) + args.text.encode().decode("unicode_escape").encode("latin-1"))
    out = b""
    try:
        while True:
            b = s.recv(1 << 16)
            if not b:
                break
            out += b
    except (socket.timeout, ssl.SSLError, ConnectionResetError):
        pass
    sys.stdout.buffer.write(out)


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="mode", required=True)
    ps = sub.add_parser("server")
    ps.add_argument("--host", default="127.0.0.1")
    ps.add_argument("--port", type=int, default=0)
    ps.add_argument("--file")
    ps.add_argument("--ready", help="write the bound port to this file")
    pc = sub.add_parser("client")
    pc.add_argument("--target", required=True)
    pc.add_argument("--socks")
    pc.add_argument("--send")
    pc.add_argument("--no-half-close", action="store_true",
                    help="length-prefixed upload; do not rely on half-close")
    pr = sub.add_parser("raw")
    pr.add_argument("--target", required=True)
    pr.add_argument("--tls", action="store_true")
    pr.add_argument("--sni", default="test.name")
    pr.add_argument("--hex", default="")
    pr.add_argument("--text", default="")
    args = p.parse_args()
    {"server": serve, "client": client, "raw": raw}[args.mode](args)


if __name__ == "__main__":
    main()
