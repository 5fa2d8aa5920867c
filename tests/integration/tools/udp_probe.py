#!/usr/bin/env python3
"""UDP and DNS probes for the udp_*/dns_* integration tests.

Every command is bounded in count and time; none runs forever.

reflect --port P [--ports N] [--max-seconds S]
    UDP reflector on every address (v4 and v6), ports P..P+N-1. A datagram "WHO?" is answered
    with "SEEN <ip> <port>" (the source it arrived from); anything else is
    echoed back unchanged.
nat --target H:P [--target H:P ...] --out FILE [--wait S]
    From ONE unconnected socket: asks every target "WHO?" and prints
    "seen <target> <ip>:<port>" (or "seen <target> none"); writes the distinct
    observed endpoints to FILE (one a line, FILE.tmp then renamed). Then waits
    up to S seconds for a datagram from any address that is not a target,
    prints "got from=<ip>:<port> msg=<payload>" and answers it with
    "REPLY <payload>", or prints "got none". Datagrams from the targets that
    arrive meanwhile are printed as "stray from=...".
poke --target H:P --msg M [--timeout S]
    Sends M (again every second) until an answer arrives; prints
    "reply from=<ip>:<port> msg=<payload>" or "reply none" (exit 1).
echo --target H:P --count N --max-size M [--min-size m] [--spread] [--window W] [--timeout S] [--stall S]
    N datagrams of sizes m..M (size = m + i % (M-m+1), m = 0 by default; with
    --spread evenly spaced from m to M, both included) with content derived from the
    index, at most W outstanding; every echo is checked against what is
    outstanding. Prints "echo sent=N ok=K lost=L corrupt=C ms=T" and exits 1
    unless every datagram came back intact.
steps --step H:P=MSG [--step ...] [--wait S]
    From ONE socket, in order: sends MSG to H:P and prints every datagram
    that arrives within S seconds (1) as "step <i> to=<H:P> from=<ip:port>
    msg=<payload>", or "step <i> to=<H:P> none".
mapping --target H:P --marker FILE [--timeout S]
    From ONE socket: "WHO?" to a reflector until it answers (prints "before
    <ip> <port> local=..."), then waits for FILE and asks again (prints
    "after <ip> <port> ms=<time to the answer>"): the NAT mapping a
    reflector sees for one app socket across a change made meanwhile.
pingloop --target H:P --seconds S [--interval I] --marker FILE
         [--ready FILE --ready-after K] [--tail T --settle W]
    From ONE socket, a numbered ping every I seconds (0.1) for S seconds;
    replies are matched by number. Prints "pings sent=N replies=R
    after_marker=A marker_at=M settled_sent=SS settled_replies=SR" where A
    counts the replies to pings sent after FILE appeared (the test creates
    it once it has disturbed the tunnel) and SS/SR the pings sent at least W
    seconds after it and their replies. With --ready, touches that file
    after K replies (the test disturbs the tunnel only then); with --tail,
    stops T seconds after the marker appeared (S stays the cap), so a slow
    machine still gets T seconds of pings after the disturbance.
dns --server H --name N [--type A|AAAA] [--tcp] [--port 53] [--timeout S]
    One DNS query (own packet, no library); prints "answer <type> <addr>
    ttl=<ttl>" per record, or "rcode=<n>" / the error, exit 1 without answers.
first --target H:P --n N [--timeout S]
    N times, each from a NEW socket (a new app endpoint, so a new tunnel
    session and channel): send one datagram, wait for its echo. Prints
    "first n=N ok=K mean_ms=.. p95_ms=.. max_ms=..": the time to the first
    reply on a new channel.
spray --target H:P --count N [--timeout S] [--resend S]
    From ONE socket: one datagram to each of the N ports P..P+N-1 of H, again
    every S (1) seconds to those that have not answered, for at most
    --timeout seconds. An answer counts only from the port it was sent to.
    Prints "spray n=N answered=K first_ms=.. last_ms=.. sent=.." (the time to
    the first remote's reply and to the last remote's) and exits 1 unless
    every remote answered.
sniff --ifname IF --port P --ready FILE [--max-seconds S]
    AF_PACKET on IF: counts IPv4/IPv6 UDP and TCP packets (both directions)
    with source or destination port P. Writes FILE once bound; on SIGTERM or
    after S seconds prints "port<P> udp=N tcp=M" and exits 0.
"""
import argparse
import ipaddress
import os
import random
import select
import selectors
import signal
import socket
import struct
import sys
import time


def split_target(t):
    host, port = t.rsplit(":", 1)
    return host.strip("[]"), int(port)


def fmt(addr):
    ip = addr[0]
    if ip.startswith("::ffff:"):
        ip = ip[7:]
    return ("[%s]:%d" if ":" in ip else "%s:%d") % (ip, addr[1])


def family_of(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def reflect(args):
    socks = []
    for port in range(args.port, args.port + args.ports):
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        s.bind(("::", port))
        socks.append(s)
    deadline = time.monotonic() + args.max_seconds
    count = 0
    sel = selectors.DefaultSelector()  # epoll: more than FD_SETSIZE ports
    for s in socks:
        sel.register(s, selectors.EVENT_READ)
    while time.monotonic() < deadline:
        for key, _ in sel.select(0.5):
            count = reflect_one(key.fileobj, count)
    return 0


def reflect_one(s, count):
    data, addr = s.recvfrom(65535)
    count += 1
    if data == b"WHO?":
        ip = addr[0][7:] if addr[0].startswith("::ffff:") else addr[0]
        out = ("SEEN %s %d" % (ip, addr[1])).encode()
    else:
        out = data
    try:
        s.sendto(out, addr)
    except OSError as e:
        print("sendto %s: %s" % (fmt(addr), e), flush=True)
    if count <= 20 or count % 1000 == 0:
        print("datagram %d from %s len %d" % (count, fmt(addr), len(data)), flush=True)
    return count


def nat(args):
    targets = [split_target(t) for t in args.target]
    fam = family_of(targets[0][0])
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.bind(("::" if fam == socket.AF_INET6 else "0.0.0.0", 0))
    print("local port %d" % s.getsockname()[1], flush=True)
    tkeys = {fmt(t) for t in targets}
    seen = {}
    # Up to 5 tries each: the first datagram of a channel may wait for the
    # tunnel to connect, but it must not need more than that.
    for _ in range(5):
        for t in targets:
            if fmt(t) not in seen:
                s.sendto(b"WHO?", t)
        end = time.monotonic() + 1.0
        while len(seen) < len(targets) and time.monotonic() < end:
            r, _, _ = select.select([s], [], [], 0.1)
            if not r:
                continue
            data, addr = s.recvfrom(65535)
            key = fmt(addr)
            if key in tkeys and data.startswith(b"SEEN "):
                _, ip, port = data.decode().split()
                seen[key] = fmt((ip, int(port)))
            else:
                print("stray from=%s msg=%r" % (key, data), flush=True)
        if len(seen) == len(targets):
            break
    observed = []
    for t in targets:
        print("seen %s %s" % (fmt(t), seen.get(fmt(t), "none")), flush=True)
        if fmt(t) in seen and seen[fmt(t)] not in observed:
            observed.append(seen[fmt(t)])
    with open(args.out + ".tmp", "w") as f:
        f.write("".join(o + "\n" for o in observed))
    os.rename(args.out + ".tmp", args.out)
    end = time.monotonic() + args.wait
    while time.monotonic() < end:
        r, _, _ = select.select([s], [], [], 0.1)
        if not r:
            continue
        data, addr = s.recvfrom(65535)
        if fmt(addr) in tkeys:
            print("stray from=%s msg=%r" % (fmt(addr), data), flush=True)
            continue
        print("got from=%s msg=%s" % (fmt(addr), data.decode(errors="replace")), flush=True)
        s.sendto(b"REPLY " + data, addr)
        # Let the reply leave before the socket closes.
        time.sleep(0.5)
        return 0
    print("got none", flush=True)
    return 0


def ask_who(s, t, end):
    """WHO? to t (again every 0.5 s) until "SEEN ..." comes back or end."""
    next_send = 0.0
    while time.monotonic() < end:
        if time.monotonic() >= next_send:
            s.sendto(b"WHO?", t)
            next_send = time.monotonic() + 0.5
        r, _, _ = select.select([s], [], [], 0.1)
        if r:
            data, _ = s.recvfrom(65535)
            if data.startswith(b"SEEN "):
                return data.decode(errors="replace")[5:]
    return None


def mapping(args):
    t = split_target(args.target)
    s = socket.socket(family_of(t[0]), socket.SOCK_DGRAM)
    before = ask_who(s, t, time.monotonic() + args.timeout)
    print("before %s local=%s" % (before, fmt(s.getsockname())), flush=True)
    if before is None:
        return 1
    end = time.monotonic() + args.timeout
    while not os.path.exists(args.marker) and time.monotonic() < end:
        time.sleep(0.05)
    if not os.path.exists(args.marker):
        print("after none (no marker)", flush=True)
        return 1
    t0 = time.monotonic()
    after = ask_who(s, t, time.monotonic() + args.timeout)
    print("after %s ms=%d local=%s" % (after, (time.monotonic() - t0) * 1000, fmt(s.getsockname())),
          flush=True)
    return 0 if after is not None else 1


def poke(args):
    t = split_target(args.target)
    s = socket.socket(family_of(t[0]), socket.SOCK_DGRAM)
    end = time.monotonic() + args.timeout
    next_send = 0.0
    while time.monotonic() < end:
        if time.monotonic() >= next_send:
            s.sendto(args.msg.encode(), t)
            next_send = time.monotonic() + 1.0
        r, _, _ = select.select([s], [], [], 0.1)
        if r:
            data, addr = s.recvfrom(65535)
            print("reply from=%s msg=%s" % (fmt(addr), data.decode(errors="replace")), flush=True)
            return 0
    print("reply none", flush=True)
    return 1


def payload(i, size):
    head = struct.pack("!I", i)
    rnd = random.Random(i).randbytes(max(0, size - 4))
    return (head + rnd)[:size]


def echo(args):
    t = split_target(args.target)
    s = socket.socket(family_of(t[0]), socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    s.connect(t)
    s.setblocking(False)
    outstanding = {}  # payload -> count (small payloads may repeat)
    inflight = 0
    sent = ok = lost = corrupt = 0
    t0 = time.monotonic()
    deadline = t0 + args.timeout
    last_progress = t0
    while (sent < args.count or inflight) and time.monotonic() < deadline:
        while sent < args.count and inflight < args.window:
            span = args.max_size - args.min_size
            if args.spread:
                size = args.min_size + sent * span // max(1, args.count - 1)
            else:
                size = args.min_size + sent % (span + 1)
            p = payload(sent, size)
            try:
                s.send(p)
            except BlockingIOError:
                break
            outstanding[p] = outstanding.get(p, 0) + 1
            inflight += 1
            sent += 1
        r, _, _ = select.select([s], [], [], 0.1)
        if r:
            while True:
                try:
                    data = s.recv(65535)
                except BlockingIOError:
                    break
                except ConnectionRefusedError:
                    print("ICMP port unreachable", flush=True)
                    continue
                n = outstanding.get(data, 0)
                if n == 0:
                    corrupt += 1
                    if corrupt <= 5:
                        print("unexpected datagram len %d head %s" % (len(data), data[:8].hex()), flush=True)
                    continue
                if n == 1:
                    del outstanding[data]
                else:
                    outstanding[data] = n - 1
                inflight -= 1
                ok += 1
                last_progress = time.monotonic()
        if inflight and time.monotonic() - last_progress > args.stall:
            # Nothing came back for a while: what is outstanding is lost.
            lost += inflight
            print("stall: %d outstanding given up after %d sent" % (inflight, sent), flush=True)
            outstanding.clear()
            inflight = 0
            last_progress = time.monotonic()
    lost += inflight + (args.count - sent)
    ms = int((time.monotonic() - t0) * 1000)
    print("echo sent=%d ok=%d lost=%d corrupt=%d ms=%d" % (sent, ok, lost, corrupt, ms), flush=True)
    return 0 if ok == args.count and corrupt == 0 else 1


def steps(args):
    plan = []
    for st in args.step:
        tgt, msg = st.split("=", 1)
        plan.append((split_target(tgt), tgt, msg.encode()))
    s = socket.socket(family_of(plan[0][0][0]), socket.SOCK_DGRAM)
    for i, (t, name, msg) in enumerate(plan, 1):
        s.sendto(msg, t)
        if i == 1:
            print("local port %d" % s.getsockname()[1], flush=True)
        end = time.monotonic() + args.wait
        seen = 0
        while time.monotonic() < end:
            r, _, _ = select.select([s], [], [], 0.05)
            if r:
                data, addr = s.recvfrom(65535)
                seen += 1
                print("step %d to=%s from=%s msg=%s" % (i, name, fmt(addr), data[:64].decode(errors="replace")), flush=True)
        if not seen:
            print("step %d to=%s none" % (i, name), flush=True)
    return 0


def pingloop(args):
    t = split_target(args.target)
    s = socket.socket(family_of(t[0]), socket.SOCK_DGRAM)
    s.connect(t)
    s.setblocking(False)
    end = time.monotonic() + args.seconds
    sent = replies = after = 0
    marked_from = None  # first ping number sent after the marker appeared
    settled_from = None  # first ping number sent W seconds after it
    marked_time = None
    next_send = 0.0
    got = set()
    while time.monotonic() < end:
        now = time.monotonic()
        if now >= next_send:
            if marked_from is None and os.path.exists(args.marker):
                marked_from = sent
                marked_time = now
                if args.tail is not None:
                    end = min(end, now + args.tail)
            if (settled_from is None and marked_time is not None and
                    now - marked_time >= args.settle):
                settled_from = sent
            try:
                s.send(b"PING %d" % sent)
            except OSError:
                pass  # e.g. an ICMP error reported on the socket
            sent += 1
            next_send = now + args.interval
        r, _, _ = select.select([s], [], [], 0.02)
        if not r:
            continue
        try:
            data = s.recv(65535)
        except OSError:
            continue
        if data.startswith(b"PING "):
            n = int(data[5:])
            if n not in got:
                got.add(n)
                replies += 1
                if marked_from is not None and n >= marked_from:
                    after += 1
                if args.ready and replies == args.ready_after:
                    open(args.ready, "w").close()
    settled_sent = 0 if settled_from is None else sent - settled_from
    settled_replies = 0 if settled_from is None else sum(1 for n in got if n >= settled_from)
    print("pings sent=%d replies=%d after_marker=%d marker_at=%s settled_sent=%d "
          "settled_replies=%d" % (sent, replies, after, marked_from, settled_sent,
                                  settled_replies), flush=True)
    return 0


QTYPES = {"A": 1, "AAAA": 28}


def dns_query(name, qtype):
    qid = random.randrange(65536)
    q = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\0" + struct.pack("!HH", QTYPES[qtype], 1)
    return qid, q


def skip_name(m, off):
    for _ in range(128):
        if off >= len(m):
            raise ValueError("name past the end")
        n = m[off]
        if n == 0:
            return off + 1
        if n & 0xC0 == 0xC0:
            return off + 2
        off += 1 + n
    raise ValueError("name too long")


def dns(args):
    qid, q = dns_query(args.name, args.type)
    fam = family_of(args.server)
    try:
        if args.tcp:
            with socket.create_connection((args.server, args.port), timeout=args.timeout) as c:
                c.sendall(struct.pack("!H", len(q)) + q)
                buf = b""
                while len(buf) < 2 or len(buf) < 2 + struct.unpack("!H", buf[:2])[0]:
                    chunk = c.recv(4096)
                    if not chunk:
                        raise OSError("connection closed after %d bytes" % len(buf))
                    buf += chunk
                m = buf[2:2 + struct.unpack("!H", buf[:2])[0]]
        else:
            s = socket.socket(fam, socket.SOCK_DGRAM)
            s.settimeout(args.timeout)
            s.sendto(q, (args.server, args.port))
            while True:
                m, addr = s.recvfrom(65535)
                if len(m) >= 2 and struct.unpack("!H", m[:2])[0] == qid:
                    break
    except OSError as e:
        print("error: %s" % e)
        return 1
    if len(m) < 12:
        print("error: short answer (%d bytes)" % len(m))
        return 1
    rid, flags, qd, an, _, _ = struct.unpack("!HHHHHH", m[:12])
    if rid != qid:
        print("error: id %d, want %d" % (rid, qid))
        return 1
    off = 12
    for _ in range(qd):
        off = skip_name(m, off) + 4
    # Resolvers match the question byte for byte (the 0x20 case trick too).
    if qd != 1 or m[12:off] != q[12:]:
        print("error: the answer's question %r is not the query's %r" % (m[12:off], q[12:]))
        return 1
    count = 0
    for _ in range(an):
        off = skip_name(m, off)
        rtype, _, ttl, rdlen = struct.unpack("!HHIH", m[off:off + 10])
        rdata = m[off + 10:off + 10 + rdlen]
        off += 10 + rdlen
        if rtype == 1 and rdlen == 4:
            print("answer A %s ttl=%d" % (ipaddress.IPv4Address(rdata), ttl))
            count += 1
        elif rtype == 28 and rdlen == 16:
            print("answer AAAA %s ttl=%d" % (ipaddress.IPv6Address(rdata), ttl))
            count += 1
    if count == 0:
        print("rcode=%d answers=0" % (flags & 0xF))
        return 1
    return 0


ETH_P_ALL = 0x0003


def sniff(args):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((args.ifname, 0))
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    with open(args.ready, "w") as f:
        f.write("ready\n")
    counts = {17: 0, 6: 0}

    def take(frame):
        if len(frame) < 14:
            return
        eth = int.from_bytes(frame[12:14], "big")
        ip = frame[14:]
        if eth == 0x0800 and len(ip) >= 20:
            proto, l4 = ip[9], ip[(ip[0] & 0xF) * 4:]
            if struct.unpack("!H", ip[6:8])[0] & 0x1FFF:
                return  # a later fragment has no ports
        elif eth == 0x86DD and len(ip) >= 40:
            proto, l4 = ip[6], ip[40:]
        else:
            return
        if proto not in counts or len(l4) < 4:
            return
        sport, dport = struct.unpack("!HH", l4[:4])
        if args.port in (sport, dport):
            counts[proto] += 1

    deadline = time.monotonic() + args.max_seconds
    while not stop and time.monotonic() < deadline:
        try:
            r, _, _ = select.select([s], [], [], 0.1)
        except InterruptedError:
            continue
        if r:
            take(s.recvfrom(65535)[0])
    # Stopped: what is already queued on the socket still counts.
    s.setblocking(False)
    while True:
        try:
            take(s.recvfrom(65535)[0])
        except (BlockingIOError, InterruptedError):
            break
    print("port%d udp=%d tcp=%d" % (args.port, counts[17], counts[6]), flush=True)
    return 0



def cmd_first(args):
    host, port = split_target(args.target)
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    times = []
    for i in range(args.n):
        s = socket.socket(fam, socket.SOCK_DGRAM)
        s.settimeout(args.timeout)
        msg = ("first %d" % i).encode()
        t0 = time.monotonic()
        try:
            s.sendto(msg, (host, port))
            while True:
                data, _ = s.recvfrom(2048)
                if data == msg:
                    times.append((time.monotonic() - t0) * 1000.0)
                    break
        except socket.timeout:
            pass
        finally:
            s.close()
    times.sort()
    if not times:
        print("first n=%d ok=0" % args.n)
        return 1
    p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
    print("first n=%d ok=%d mean_ms=%.2f p95_ms=%.2f max_ms=%.2f" %
          (args.n, len(times), sum(times) / len(times), p95, times[-1]))
    return 0 if len(times) == args.n else 1

def spray(args):
    host, port = split_target(args.target)
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.setblocking(False)
    t0 = time.monotonic()
    deadline = t0 + args.timeout
    pending = set(range(args.count))
    first = {}
    sent = 0
    next_round = t0
    while pending and time.monotonic() < deadline:
        if time.monotonic() >= next_round:
            for i in sorted(pending):
                try:
                    s.sendto(b"spray %d" % i, (host, port + i))
                    sent += 1
                except (BlockingIOError, OSError):
                    pass  # the next round sends it again
            next_round = time.monotonic() + args.resend
        r, _, _ = select.select([s], [], [], 0.05)
        while r:
            try:
                data, addr = s.recvfrom(2048)
            except BlockingIOError:
                break
            try:
                i = int(data.split()[1])
            except (IndexError, ValueError):
                continue
            if i in pending and addr[1] == port + i and data == b"spray %d" % i:
                pending.discard(i)
                first[i] = (time.monotonic() - t0) * 1000.0
    s.close()
    def ms(v):
        return "%.1f" % v if v is not None else "none"
    print("spray n=%d answered=%d first_ms=%s last_ms=%s sent=%d" %
          (args.count, len(first), ms(first.get(0)), ms(max(first.values()) if first else None),
           sent), flush=True)
    return 0 if not pending else 1


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("reflect")
    a.add_argument("--port", type=int, required=True)
    a.add_argument("--ports", type=int, default=1, help="this many ports from --port")
    a.add_argument("--max-seconds", type=float, default=300)
    a = sub.add_parser("nat")
    a.add_argument("--target", action="append", required=True)
    a.add_argument("--out", required=True)
    a.add_argument("--wait", type=float, default=10)
    a = sub.add_parser("mapping")
    a.add_argument("--target", required=True)
    a.add_argument("--marker", required=True)
    a.add_argument("--timeout", type=float, default=20)
    a = sub.add_parser("poke")
    a.add_argument("--target", required=True)
    a.add_argument("--msg", required=True)
    a.add_argument("--timeout", type=float, default=5)
    a = sub.add_parser("echo")
    a.add_argument("--target", required=True)
    a.add_argument("--count", type=int, required=True)
    a.add_argument("--max-size", type=int, required=True)
    a.add_argument("--min-size", type=int, default=0)
    a.add_argument("--spread", action="store_true")
    a.add_argument("--window", type=int, default=64)
    a.add_argument("--timeout", type=float, default=60)
    a.add_argument("--stall", type=float, default=3)
    a = sub.add_parser("steps")
    a.add_argument("--step", action="append", required=True)
    a.add_argument("--wait", type=float, default=1)
    a = sub.add_parser("pingloop")
    a.add_argument("--target", required=True)
    a.add_argument("--seconds", type=float, required=True)
    a.add_argument("--interval", type=float, default=0.1)
    a.add_argument("--marker", required=True)
    a.add_argument("--ready")
    a.add_argument("--ready-after", type=int, default=10)
    a.add_argument("--tail", type=float)
    a.add_argument("--settle", type=float, default=0)
    a = sub.add_parser("dns")
    a.add_argument("--server", required=True)
    a.add_argument("--name", required=True)
    a.add_argument("--type", default="A", choices=sorted(QTYPES))
    a.add_argument("--tcp", action="store_true")
    a.add_argument("--port", type=int, default=53)
    a.add_argument("--timeout", type=float, default=5)
    a = sub.add_parser("first")
    a.add_argument("--target", required=True)
    a.add_argument("--n", type=int, default=50)
    a.add_argument("--timeout", type=float, default=5.0)
    a = sub.add_parser("spray")
    a.add_argument("--target", required=True)
    a.add_argument("--count", type=int, required=True)
    a.add_argument("--timeout", type=float, default=30)
    a.add_argument("--resend", type=float, default=1.0)
    a = sub.add_parser("sniff")
    a.add_argument("--ifname", required=True)
    a.add_argument("--port", type=int, required=True)
    a.add_argument("--ready", required=True)
    a.add_argument("--max-seconds", type=float, default=60)
    args = p.parse_args()
    return {"reflect": reflect, "nat": nat, "poke": poke, "mapping": mapping, "echo": echo,
            "dns": dns, "sniff": sniff, "pingloop": pingloop, "steps": steps,
            "first": cmd_first, "spray": spray}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
