#!/usr/bin/env python3
"""Many-connection helper for the tun tests and the benchmark.

server   --port P: asyncio line server on every address (v4 and v6). Every line it
         reads is answered with "ok <line>"; it closes when the peer does.
burst    --target H:P --n N: opens N connections at once, each sends one
         line and expects its answer; prints "ok=X failed=Y ms=T" and exits
         1 unless all N succeeded.
hold     --target H:P --n N --ready FILE: opens N connections (a request and
         answer on each, so each is a live flow through the tunnel), writes
         the count to FILE and holds them until SIGTERM/SIGINT.
latency  --target H:P --n N: N sequential connect+request+answer+close;
         prints "n=N mean_ms=M p95_ms=P".
slowget  --target H:P (an xfer.py server): sends "GET", reads CHUNK bytes
         every INTERVAL seconds for SLOW seconds, then as fast as it can;
         prints "bytes=B sha256=H" or "error=... bytes=B" (exit 3).
         --half-close: shut the sending side after "GET".
"""
import argparse
import asyncio
import hashlib
import signal
import socket
import sys
import time


def split_target(t):
    host, port = t.rsplit(":", 1)
    return host.strip("[]"), int(port)


async def serve(args):
    async def handle(reader, writer):
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                writer.write(b"ok " + line)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    srv = await asyncio.start_server(handle, host=None, port=args.port, backlog=4096)
    async with srv:
        await srv.serve_forever()


async def one_request(host, port, i, timeout):
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    try:
        msg = b"req %d\n" % i
        writer.write(msg)
        await writer.drain()
        got = await asyncio.wait_for(reader.readline(), timeout)
        if got != b"ok " + msg:
            raise RuntimeError("bad answer %r" % got)
    finally:
        writer.close()


async def burst(args):
    host, port = split_target(args.target)
    t0 = time.monotonic()
    res = await asyncio.gather(*(one_request(host, port, i, args.timeout) for i in range(args.n)),
                               return_exceptions=True)
    bad = [r for r in res if isinstance(r, BaseException)]
    ms = (time.monotonic() - t0) * 1000
    print("ok=%d failed=%d ms=%.0f" % (args.n - len(bad), len(bad), ms))
    kinds = {}
    for e in bad:
        kinds[repr(e)[:80]] = kinds.get(repr(e)[:80], 0) + 1
    for k, v in sorted(kinds.items(), key=lambda kv: -kv[1])[:5]:
        print("  %dx %s" % (v, k))
    return 0 if not bad else 1


async def hold(args):
    host, port = split_target(args.target)
    held = []
    sem = asyncio.Semaphore(args.parallel)

    async def open_one(i):
        async with sem:
            r, w = await asyncio.wait_for(asyncio.open_connection(host, port), args.timeout)
            w.write(b"hold %d\n" % i)
            await w.drain()
            got = await asyncio.wait_for(r.readline(), args.timeout)
            if not got.startswith(b"ok "):
                raise RuntimeError("bad answer")
            held.append((r, w))

    res = await asyncio.gather(*(open_one(i) for i in range(args.n)), return_exceptions=True)
    bad = [r for r in res if isinstance(r, BaseException)]
    with open(args.ready, "w") as f:
        f.write("%d %d\n" % (len(held), len(bad)))
    if bad:
        print("failed=%d first=%r" % (len(bad), bad[0]), file=sys.stderr)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, stop.set)
    await stop.wait()
    for _, w in held:
        w.close()
    return 0


def latency(args):
    host, port = split_target(args.target)
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    times = []
    for i in range(args.n):
        t0 = time.monotonic()
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.settimeout(args.timeout)
        s.connect((host, port))
        s.sendall(b"lat %d\n" % i)
        buf = b""
        while not buf.endswith(b"\n"):
            b = s.recv(256)
            if not b:
                raise SystemExit("connection closed before the answer")
            buf += b
        s.close()
        times.append((time.monotonic() - t0) * 1000)
    times.sort()
    p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
    print("n=%d mean_ms=%.2f p95_ms=%.2f" % (len(times), sum(times) / len(times), p95))


def slowget(args):
    host, port = split_target(args.target)
    s = socket.create_connection((host, port), timeout=args.timeout)
    s.sendall(b"GET\n")
    if args.half_close:
        s.shutdown(socket.SHUT_WR)
    h = hashlib.sha256()
    n = 0
    marked = False
    slow_until = time.monotonic() + args.slow
    try:
        while True:
            if time.monotonic() < slow_until:
                b = s.recv(args.chunk)
                time.sleep(args.interval)
            else:
                b = s.recv(1 << 18)
            if not b:
                break
            h.update(b)
            n += len(b)
            if args.marker and n >= args.mark_at and not marked:
                open(args.marker, "w").close()
                marked = True
    except OSError as e:
        print("error=%s bytes=%d" % (type(e).__name__, n))
        sys.stdout.flush()
        return 3
    print("bytes=%d sha256=%s" % (n, h.hexdigest()))
    return 0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["server", "burst", "hold", "latency", "slowget"])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--target")
    p.add_argument("--n", type=int, default=1)
    p.add_argument("--parallel", type=int, default=256)
    p.add_argument("--timeout", type=float, default=30)
    p.add_argument("--ready")
    p.add_argument("--chunk", type=int, default=65536)
    p.add_argument("--interval", type=float, default=0.05)
    p.add_argument("--marker", help="slowget: created once --mark-at bytes have arrived")
    p.add_argument("--mark-at", type=int, default=1 << 20)
    p.add_argument("--slow", type=float, default=20)
    p.add_argument("--half-close", action="store_true", help="slowget: half-close after GET")
    args = p.parse_args()
    if args.mode == "server":
        asyncio.run(serve(args))
    elif args.mode == "burst":
        sys.exit(asyncio.run(burst(args)))
    elif args.mode == "hold":
        sys.exit(asyncio.run(hold(args)))
    elif args.mode == "latency":
        latency(args)
    else:
        sys.exit(slowget(args))


if __name__ == "__main__":
    main()
