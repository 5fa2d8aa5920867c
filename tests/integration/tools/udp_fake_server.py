#!/usr/bin/env python3
"""A hostile VLESS v1 server for udp_hostile_test.sh (TLS, UDP commands only).

    udp_fake_server.py --listen H:P --cert C --key K --uuid U [--max-seconds S]

Reads each request header (docs/protocol.md 3), then answers by the
target's port:
  7001  well-behaved echo: separated channel `FLAG 0 LEN payload`, classic
        `PORT ATYP ADDR LEN payload` (the target as the source);
  7002  one bad frame per datagram: separated FLAG 7, classic ATYP 9;
  7003  separated FLAG 1 with a name as the source (ATYP 2, forbidden);
        classic: a LEN larger than UDP allows (65535) with the bytes;
  7004  half a frame, then the connection closes.
Prints one line per connection: "conn target=<port> mode=<multi|classic>
datagrams=<n> end=<why>". Bounded: each connection lives at most 30 s.
"""
import argparse
import asyncio
import ssl
import struct
import sys
import uuid as uuidlib


async def read_addr(r):
    port = struct.unpack("!H", await r.readexactly(2))[0]
    atyp = (await r.readexactly(1))[0]
    if atyp == 1:
        addr = await r.readexactly(4)
    elif atyp == 3:
        addr = await r.readexactly(16)
    elif atyp == 2:
        addr = await r.readexactly((await r.readexactly(1))[0])
    else:
        raise ValueError("atyp %d" % atyp)
    return port, atyp, addr


def addr_bytes(port, atyp, addr):
    head = struct.pack("!HB", port, atyp)
    return head + (bytes([len(addr)]) if atyp == 2 else b"") + addr


async def handle(r, w, want_uuid):
    target = "?"
    mode = "?"
    n = 0
    why = "client closed"
    try:
        head = await r.readexactly(18)
        if head[0] != 1 or head[1:17] != want_uuid:
            raise ValueError("not a v1 request for our uuid")
        addon = head[17]
        multi = addon == 1
        if addon == 2:
            for _ in range((await r.readexactly(1))[0]):
                t, ln = await r.readexactly(2)
                await r.readexactly(ln)
                multi = multi or t == 1
        elif addon not in (0, 1):
            raise ValueError("addon %d" % addon)
        cmd = (await r.readexactly(1))[0]
        if cmd != 2:
            raise ValueError("cmd %d" % cmd)
        tport, tatyp, taddr = await read_addr(r)
        target = tport
        mode = "multi" if multi else "classic"
        while True:
            if multi:
                port, atyp, addr = tport, tatyp, taddr
            else:
                port, atyp, addr = await read_addr(r)
            ln = struct.unpack("!H", await r.readexactly(2))[0]
            payload = await r.readexactly(ln)
            n += 1
            frame = struct.pack("!H", len(payload)) + payload
            if port == 7001:
                w.write((b"\0" if multi else addr_bytes(port, atyp, addr)) + frame)
            elif port == 7002:
                w.write(b"\x07" + frame if multi else struct.pack("!HB", port, 9) + addr + frame)
            elif port == 7003:
                if multi:
                    w.write(b"\x01" + addr_bytes(53, 2, b"evil.test") + frame)
                else:
                    w.write(addr_bytes(port, atyp, addr) + b"\xff\xff" + b"x" * 65535)
            elif port == 7004:
                w.write((b"\0" if multi else addr_bytes(port, atyp, addr)) + frame[:2] + payload[:1])
                await w.drain()
                why = "half a frame sent"
                break
            await w.drain()
    except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
        pass
    except ValueError as e:
        why = "bad request: %s" % e
    finally:
        print("conn target=%s mode=%s datagrams=%d end=%s" % (target, mode, n, why), flush=True)
        w.close()


async def main_async(args):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    want = uuidlib.UUID(args.uuid).bytes
    host, port = args.listen.rsplit(":", 1)

    async def bounded(r, w):
        try:
            await asyncio.wait_for(handle(r, w, want), 30)
        except asyncio.TimeoutError:
            w.close()

    srv = await asyncio.start_server(bounded, host, int(port), ssl=ctx)
    async with srv:
        await asyncio.sleep(args.max_seconds)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--listen", required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--uuid", required=True)
    p.add_argument("--max-seconds", type=float, default=120)
    asyncio.run(main_async(p.parse_args()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
