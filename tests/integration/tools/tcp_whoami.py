#!/usr/bin/env python3
"""Who reaches whom over TCP (the routing rules test).

serve --ports P [P ...] [--max-seconds S]
    Listens on every port (IPv6 dual-stack); each connection gets one line
    "PEER <source ip> <port>" and is closed.
probe --target H:P [--timeout S] [--http-host NAME | --tls-sni NAME]
    One connection; prints "PEER <ip>" (what the server saw), "refused",
    "timeout" or "error <text>", and how long it took ("ms=<n>"). With
    --http-host it first sends an HTTP/1.1 request with that Host; with
    --tls-sni a TLS ClientHello naming it (the handshake then fails on
    the plain answer: "tls-sent" is printed, and the server's log tells who
    connected).
"""
import argparse
import selectors
import socket
import ssl
import sys
import time


def serve(args):
    sel = selectors.DefaultSelector()
    for port in args.ports:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("::", port))
        s.listen(64)
        sel.register(s, selectors.EVENT_READ)
    print("listening", flush=True)
    deadline = time.monotonic() + args.max_seconds
    while time.monotonic() < deadline:
        for key, _ in sel.select(0.5):
            c, addr = key.fileobj.accept()
            ip = addr[0][7:] if addr[0].startswith("::ffff:") else addr[0]
            print("port %d from %s" % (key.fileobj.getsockname()[1], ip), flush=True)
            try:
                c.sendall(("PEER %s %d\n" % (ip, addr[1])).encode())
            except OSError:
                pass
            c.close()
    return 0


def probe(args):
    host, _, port = args.target.rpartition(":")
    host = host.strip("[]")
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(args.timeout)
    t0 = time.monotonic()
    try:
        s.connect((host, int(port)))
        if args.tls_sni:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            try:
                ctx.wrap_socket(s, server_hostname=args.tls_sni)
            except (ssl.SSLError, OSError):
                pass
            print("tls-sent ms=%d" % ((time.monotonic() - t0) * 1000), flush=True)
            return 0
        if args.http_host:
            s.sendall(("GET / HTTP/1.1\r\nHost: %s\r\nUser-Agent: vt-test\r\n\r\n" %
                       args.http_host).encode())
        line = s.makefile().readline().strip()
        out = line if line else "empty"
    except ConnectionRefusedError:
        out = "refused"
    except ConnectionResetError:
        out = "reset"
    except socket.timeout:
        out = "timeout"
    except OSError as e:
        out = "error %s" % e
    print("%s ms=%d" % (out, (time.monotonic() - t0) * 1000), flush=True)
    return 0


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("serve")
    a.add_argument("--ports", type=int, nargs="+", required=True)
    a.add_argument("--max-seconds", type=float, default=120)
    a = sub.add_parser("probe")
    a.add_argument("--target", required=True)
    a.add_argument("--timeout", type=float, default=5)
    a.add_argument("--http-host")
    a.add_argument("--tls-sni")
    args = p.parse_args()
    return {"serve": serve, "probe": probe}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
