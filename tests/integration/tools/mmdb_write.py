#!/usr/bin/env python3
"""mmdb_write: writes a tiny MaxMind DB (format 2.0) mapping networks to
country codes, for the geoip tests. Python 3 standard library only, so the
tests need no GeoLite2 download and no writer package.

    mmdb_write.py OUT.mmdb 198.18.1.0/24=ZZ 2001:db8:1::/48=ZZ 198.18.3.0/24=YY
    mmdb_write.py --record-size 28 OUT.mmdb ...

Each network's data record is {"country": {"iso_code": "XX"}}, the shape
of GeoLite2-Country that GeoIp reads; CIDR=r:XX writes
{"registered_country": {"iso_code": "XX"}} instead (a block registered to
a country but located nowhere, like an anycast range). The database is IPv6 (ip_version 6)
with IPv4 networks stored at ::a.b.c.d (::/96 plus the prefix), as real
databases do; ::ffff:0:0/96 is aliased to that IPv4 subtree too, so a
mapped address finds the same record (mmdblookup --ip ::ffff:198.18.1.1).

The layout, from the MaxMind DB specification: a binary search tree of
node_count nodes, each holding two records (bit 0, bit 1); a record is a
node number (< node_count), "no data" (== node_count), or a data-section
pointer (node_count + 16 + offset). Then 16 zero bytes, the data section,
the metadata marker and the metadata map.
"""

import argparse
import ipaddress
import struct
import sys
import time

METADATA_MARKER = b"\xab\xcd\xefMaxMind.com"

# Data-section types (the control byte's top three bits; 8 and above are
# "extended": stored as type 0 plus a byte holding type - 7).
T_STRING, T_UINT16, T_UINT32, T_MAP, T_UINT64, T_ARRAY = 2, 5, 6, 7, 9, 11


def _control(type_num, size):
    if size < 29:
        first, extra = size, b""
    elif size < 29 + 256:
        first, extra = 29, bytes([size - 29])
    elif size < 285 + 65536:
        first, extra = 30, struct.pack(">H", size - 285)
    else:
        first, extra = 31, struct.pack(">I", size - 65821)[1:]
    if type_num <= 7:
        return bytes([(type_num << 5) | first]) + extra
    return bytes([first, type_num - 7]) + extra


def _uint(type_num, value, max_bytes):
    raw = value.to_bytes(max_bytes, "big").lstrip(b"\0")  # minimal; 0 is zero bytes
    return _control(type_num, len(raw)) + raw


def encode(value):
    """Encodes str, dict and list, and ints tagged as (type, value)."""
    if isinstance(value, str):
        raw = value.encode("utf-8")
        return _control(T_STRING, len(raw)) + raw
    if isinstance(value, dict):
        out = _control(T_MAP, len(value))
        for k, v in value.items():
            out += encode(k) + encode(v)
        return out
    if isinstance(value, list):
        return _control(T_ARRAY, len(value)) + b"".join(encode(v) for v in value)
    if isinstance(value, tuple):
        type_num, n = value
        width = {T_UINT16: 2, T_UINT32: 4, T_UINT64: 8}[type_num]
        return _uint(type_num, n, width)
    raise TypeError("cannot encode %r" % (value,))


class Tree:
    """The search tree while it is built: nodes are [left, right], a record
    is None (no data), ("node", index) or ("data", offset)."""

    def __init__(self):
        self.nodes = [[None, None]]

    def _new(self, left=None, right=None):
        self.nodes.append([left, right])
        return len(self.nodes) - 1

    def insert(self, bits, length, record):
        """Sets every address under the first `length` of the 128 `bits`
        to `record`. Callers insert shorter prefixes first, so a longer one
        only ever splits a data record, never lands above a subtree."""
        node = 0
        for depth in range(length):
            bit = (bits >> (127 - depth)) & 1
            if depth == length - 1:
                self.nodes[node][bit] = record
                return
            cur = self.nodes[node][bit]
            if cur is None or cur[0] == "data":
                # A shorter network (or nothing) covered this half: split it,
                # both halves keeping what it had.
                child = self._new(cur, cur)
                self.nodes[node][bit] = ("node", child)
                node = child
            else:
                node = cur[1]

    def node_at(self, bits, length):
        """The node reached after `length` bits, or None."""
        node = 0
        for depth in range(length):
            cur = self.nodes[node][(bits >> (127 - depth)) & 1]
            if cur is None or cur[0] != "node":
                return None
            node = cur[1]
        return node


def build(entries, record_size=24, database_type="vless-tun-test"):
    """entries: [(network string, iso_code)]. Returns the file's bytes."""
    data = b""
    offsets = {}  # iso_code -> offset in the data section (one record each)
    nets = []
    for net_text, iso in entries:
        net = ipaddress.ip_network(net_text, strict=True)
        if net.version == 4:
            bits, length = int(net.network_address), 96 + net.prefixlen
        else:
            bits, length = int(net.network_address), net.prefixlen
        if length == 0:
            raise ValueError("%s: a /0 network is not supported" % net_text)
        if iso not in offsets:
            offsets[iso] = len(data)
            if iso.startswith("r:"):
                data += encode({"registered_country": {"iso_code": iso[2:]}})
            else:
                data += encode({"country": {"iso_code": iso}})
        nets.append((length, bits, iso))

    tree = Tree()
    for length, bits, iso in sorted(nets, key=lambda n: n[0]):
        tree.insert(bits, length, ("data", offsets[iso]))

    # ::ffff:0:0/96 -> the IPv4 subtree (::/96), when both are free to alias.
    v4_root = tree.node_at(0, 96)
    mapped = 0xFFFF << 32
    if v4_root is not None and tree.node_at(mapped, 95) is None:
        node = 0
        for depth in range(95):
            bit = (mapped >> (127 - depth)) & 1
            cur = tree.nodes[node][bit]
            if cur is not None and cur[0] == "data":
                break  # an IPv6 network already covers it: leave it alone
            if cur is None:
                cur = ("node", tree._new())
                tree.nodes[node][bit] = cur
            node = cur[1]
        else:
            tree.nodes[node][(mapped >> 32) & 1] = ("node", v4_root)

    node_count = len(tree.nodes)

    def value(record):
        if record is None:
            return node_count
        kind, n = record
        return n if kind == "node" else node_count + 16 + n

    limit = 1 << record_size
    out = bytearray()
    for left, right in tree.nodes:
        lv, rv = value(left), value(right)
        if lv >= limit or rv >= limit:
            raise ValueError("record_size %d is too small for this database" % record_size)
        if record_size == 24:
            out += lv.to_bytes(3, "big") + rv.to_bytes(3, "big")
        elif record_size == 28:
            # The middle byte holds the high nibbles: left's above right's.
            middle = ((lv >> 24) << 4) | (rv >> 24)
            out += (lv & 0xFFFFFF).to_bytes(3, "big") + bytes([middle])
            out += (rv & 0xFFFFFF).to_bytes(3, "big")
        elif record_size == 32:
            out += lv.to_bytes(4, "big") + rv.to_bytes(4, "big")
        else:
            raise ValueError("record_size must be 24, 28 or 32")

    metadata = {
        "binary_format_major_version": (T_UINT16, 2),
        "binary_format_minor_version": (T_UINT16, 0),
        "build_epoch": (T_UINT64, int(time.time())),
        "database_type": database_type,
        "description": {"en": "vless-tun test database (tests/integration/tools/mmdb_write.py)"},
        "ip_version": (T_UINT16, 6),
        "languages": ["en"],
        "node_count": (T_UINT32, node_count),
        "record_size": (T_UINT16, record_size),
    }
    return bytes(out) + b"\0" * 16 + data + METADATA_MARKER + encode(metadata)


def main(argv):
    ap = argparse.ArgumentParser(description="Write a small country MaxMind DB.")
    ap.add_argument("--record-size", type=int, default=24, choices=(24, 28, 32))
    ap.add_argument("--database-type", default="vless-tun-test")
    ap.add_argument("out")
    ap.add_argument("entries", nargs="*", metavar="CIDR=CC")
    args = ap.parse_args(argv)
    entries = []
    for e in args.entries:
        net, sep, iso = e.partition("=")
        if not sep or not iso:
            ap.error("%s: expected CIDR=CC" % e)
        entries.append((net, iso))
    try:
        blob = build(entries, args.record_size, args.database_type)
    except ValueError as err:
        ap.error(str(err))
    with open(args.out, "wb") as f:
        f.write(blob)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
