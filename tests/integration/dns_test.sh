#!/usr/bin/env bash
# app (resolv.conf: 198.18.9.53, exists nowhere) --vt0--> vless-tun [dns hijack -> 198.18.1.53:53] --v1/TLS--> vless-server (ns srv) --> dnsmasq (ns web 198.18.1.53)
#
# Name resolution through the tunnel:
#  1. auto_route off (198.18.1.0/24, 198.18.9.0/24 and their v6 routed into
#     vt0): `getent hosts example.test` in ns app, whose resolv.conf names a
#     resolver that does not exist, gets dnsmasq's answer: the hijack sent the
#     query to [dns] resolver. A raw UDP query (IPv4 and IPv6 resolver
#     addresses) and a TCP query on port 53 are answered too; the same query
#     again is answered from vless-tun's cache (dnsmasq logs it once). An
#     answer that came over TCP feeds the cache too: after TCP queries (one
#     alone, then three pipelined, one of them split across two writes),
#     the same questions over UDP are answered from the cache.
#  2. auto_route on (ns app: default route via ns srv, which forwards, so a
#     query outside the tunnel WOULD reach dnsmasq): a sniffer on ns srv's
#     veth facing ns app sees no packet to or from port 53 while ns app
#     resolves through getent, UDP and TCP, to the fake and to the real
#     resolver address. The sniffer is first shown to see a direct query.
source "$(dirname "$0")/lib.sh"
source "$VT_TOOLS/testbed.sh"
source "$VT_TOOLS/udp_bed.sh"
: "${VT_SERVER:?path to vless-server}" "${VT_TUN:?path to vless-tun}"
require_root
require_cmd python3 openssl ip dnsmasq getent
T0=$(date +%s)
RESOLVER=198.18.1.53 FAKE4=198.18.9.53 FAKE6=2001:db8:9::53

tb_setup dns
# /etc/netns/<app>/resolv.conf is bind-mounted by `ip netns exec`; it goes
# on exit whatever happens (then lib.sh's own cleanup runs).
NETNS_ETC="/etc/netns/$TB_APP"
trap 'rc=$?; set +e; rm -rf "$NETNS_ETC"; rmdir /etc/netns 2>/dev/null || true; (exit $rc); _vt_cleanup' EXIT
mkdir -p "$NETNS_ETC"
printf 'nameserver %s\noptions timeout:2 attempts:2\n' $FAKE4 >"$NETNS_ETC/resolv.conf"

ip -n "$TB_WEB" addr add $RESOLVER/32 dev veth0
ip -n "$TB_SRV" route add $RESOLVER/32 dev veth1
QLOG="$VT_TMP/dnsmasq-queries.txt"
# --local-ttl: answers from --address have TTL 0 otherwise, and TTL 0 is not cached.
start dnsmasq ip netns exec "$TB_WEB" dnsmasq --keep-in-foreground --conf-file=/dev/null --pid-file= \
  --user=root --group=root --no-resolv --no-hosts --port 53 --listen-address=$RESOLVER --bind-interfaces \
  --address=/example.test/198.18.1.2 --address=/example.test/2001:db8:1::2 --local-ttl=60 \
  --log-queries --log-facility="$QLOG"
wait_port $RESOLVER 53 10 "$TB_SRV"
out=$(in_srv python3 "$UB_PROBE" dns --server $RESOLVER --name probe.example.test) || fail "dnsmasq does not answer: $out"
tb_server_start

# q LABEL ARGS...: a query from ns app that must answer A 198.18.1.2 (or AAAA).
q() {
  local label=$1 out
  shift
  out=$(in_app python3 "$UB_PROBE" dns "$@") || fail "$label: $out"
  grep -Eq '^answer (A 198\.18\.1\.2|AAAA 2001:db8:1::2) ttl=[0-9]+$' <<<"$out" || fail "$label: wrong answer: $out"
  log "$label: $(tr '\n' ' ' <<<"$out")"
  LAST_TTL=$(sed -n 's/.* ttl=//p' <<<"$out" | head -1)
}
queries() { grep -c "query\[$1\] $2 from" "$QLOG" || true; }

# Without vless-tun nothing answers (the resolver address is fake, no route).
rc=0; in_app timeout 10 getent hosts example.test >/dev/null || rc=$?
[ $rc -ne 0 ] || fail "getent resolved without vless-tun: the bed is wrong"

# ---- 1. auto_route off
ub_tun_start tun-dns 1 443 "[dns]
hijack = true
resolver = \"$RESOLVER:53\"
cache_size = 512"
got=$(in_app timeout 10 getent hosts example.test) || fail "getent hosts example.test failed through the tunnel"
grep -Eq '^(198\.18\.1\.2|2001:db8:1::2) +example\.test$' <<<"$got" || fail "getent answered '$got'"
log "getent hosts example.test via fake resolver $FAKE4: $got"
q "UDP via $FAKE4" --server $FAKE4 --name udp.example.test
ttl1=$LAST_TTL
q "UDP via [$FAKE6] (AAAA)" --server $FAKE6 --name udp6.example.test --type AAAA
q "TCP via $FAKE4:53" --server $FAKE4 --name tcp.example.test --tcp
# The TCP answer was cached (the tap matched it to the query by id and
# question): the same question over UDP never reaches dnsmasq.
q "UDP after TCP (cache)" --server $FAKE4 --name tcp.example.test
n=$(queries A tcp.example.test)
[ "$n" -eq 1 ] || fail "dnsmasq saw tcp.example.test $n times, want 1 (the UDP repeat of a TCP query must come from the cache)"
# Pipelined TCP queries (RFC 7766): two in one write, a third cut in two
# writes; every answer must come back, and each is then cached.
out=$(in_app timeout 10 python3 - $FAKE4 <<'PY'
import socket, struct, sys, time
def frame(qid, name):
    m = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        m += bytes([len(label)]) + label.encode()
    m += b"\0" + struct.pack("!HH", 1, 1)
    return struct.pack("!H", len(m)) + m
want = {0x1101: "pipe1.example.test", 0x1102: "pipe2.example.test", 0x1103: "pipe3.example.test"}
f = [frame(i, n) for i, n in sorted(want.items())]
with socket.create_connection((sys.argv[1], 53), timeout=5) as c:
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    c.sendall(f[0] + f[1] + f[2][:9])
    time.sleep(0.2)
    c.sendall(f[2][9:])
    buf, got = b"", set()
    while len(got) < 3:
        while len(buf) < 2 or len(buf) < 2 + struct.unpack("!H", buf[:2])[0]:
            chunk = c.recv(4096)
            if not chunk:
                sys.exit("closed after %d answers" % len(got))
            buf += chunk
        n = struct.unpack("!H", buf[:2])[0]
        m, buf = buf[2:2 + n], buf[2 + n:]
        qid, flags, _, an = struct.unpack("!HHHH", m[:8])
        if qid not in want or an < 1 or flags & 0xF:
            sys.exit("unexpected answer id=%d flags=%#x an=%d" % (qid, flags, an))
        got.add(qid)
print("pipelined: 3 answers")
PY
) || fail "pipelined TCP queries: $out"
log "TCP via $FAKE4:53, $out"
for i in 1 2 3; do
  q "UDP after pipelined TCP (cache)" --server $FAKE4 --name pipe$i.example.test
  n=$(queries A pipe$i.example.test)
  [ "$n" -eq 1 ] || fail "dnsmasq saw pipe$i.example.test $n times, want 1 (answered over TCP, then from the cache)"
done
sleep 1.1
q "UDP again (cache)" --server $FAKE4 --name udp.example.test
ttl2=$LAST_TTL
n=$(queries A udp.example.test)
[ "$n" -eq 1 ] || fail "dnsmasq saw udp.example.test $n times, want 1 (the repeat must come from the cache): $(grep udp.example "$QLOG")"
[ "$ttl2" -le "$ttl1" ] || fail "the cached answer's TTL grew: $ttl1 -> $ttl2"
# Names are case-insensitive (RFC 4343): the same name in mixed case is the
# same cache entry, and the answer repeats the question exactly as asked
# (the probe checks the question section byte for byte).
q "UDP mixed case (cache)" --server $FAKE4 --name UdP.eXaMpLe.TeSt
n=$(grep -ci "query\[A\] udp.example.test from" "$QLOG")
[ "$n" -eq 1 ] || fail "the mixed-case repeat went to dnsmasq ($n queries for udp.example.test): the cache key is case-sensitive"
for name in example.test udp6.example.test tcp.example.test; do
  [ "$(grep -c "query\[[A-Z]*\] $name from" "$QLOG")" -ge 1 ] || fail "dnsmasq never saw $name"
done
grep -Eq "query\[[A-Z]+\] [a-z0-9.]+ from 198\.18\.1\.1$" "$QLOG" || fail "dnsmasq saw the queries from elsewhere than ns srv: $(tail -3 "$QLOG")"
log "dnsmasq saw udp.example.test once (TTL $ttl1 -> $ttl2 from the cache), all from ns srv"
log "dnsmasq saw tcp.example.test and pipe1..3.example.test once each: the UDP repeats came from TCP answers in the cache"
ub_tun_stop "dns (auto_route off)"
# The summary counts UDP queries (the cache hits among them) and TCP flows
# apart; every answer matched its query (none unmatched).
line=$(grep -E "stopping: udp .*; dns 9 hijacked \(2 tcp\), 6 cache hits, 0 answers not cached" "$TB_TUN_LOG") ||
  fail "want the stop summary to count 9 UDP queries, 2 TCP flows, 6 cache hits, 0 unmatched answers: $(grep 'stopping: udp' "$TB_TUN_LOG")"
log "vless-tun: ${line#* INFO  }"

# ---- 2. auto_route on: no DNS packet outside the tunnel
ip -n "$TB_APP" route add default via $TB_SRV4
ip -n "$TB_APP" -6 route add default via $TB_SRV6
in_srv sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
ip -n "$TB_WEB" route add default via 198.18.1.1
ip -n "$TB_WEB" -6 route add default via 2001:db8:1::1
ip -n "$TB_SRV" route add 198.18.2.0/30 via 198.18.0.1  # (a leak from the TUN's address could be answered too)

sniff_start() {
  rm -f "$VT_TMP/sniff.ready"
  start "$1" ip netns exec "$TB_SRV" python3 "$UB_PROBE" sniff --ifname veth0 --port 53 \
    --ready "$VT_TMP/sniff.ready" --max-seconds 60
  SNIFF_PID=$(last_pid) SNIFF_LOG="$VT_TMP/$1.log"
  local deadline=$(( $(date +%s) + 10 ))
  until [ -f "$VT_TMP/sniff.ready" ]; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "sniffer not ready"
    sleep 0.05
  done
}
sniff_stop() {
  stop_pid "$SNIFF_PID" 5 || true
  LEAKS=$(sed -n 's/^port53 udp=\([0-9]*\) tcp=\([0-9]*\)$/\1 \2/p' "$SNIFF_LOG")
  [ -n "$LEAKS" ] || fail "the sniffer printed no count: $(cat "$SNIFF_LOG")"
}

sniff_start sniff-baseline
q "baseline: direct UDP to $RESOLVER, no vless-tun" --server $RESOLVER --name direct.example.test
sniff_stop
[ "${LEAKS% *}" -ge 2 ] || fail "baseline: the sniffer saw '$LEAKS' port-53 packets of a direct query, want >= 2"
log "baseline: the sniffer sees a direct query ($LEAKS udp/tcp packets)"

UB_NO_ROUTES=1 ub_tun_start tun-dns-ar 1 443 "[route]
auto_route = true
state_file = \"routes.state\"
[dns]
resolver = \"$RESOLVER:53\""
before=$(wc -l <"$QLOG")
sniff_start sniff-tunnel
got=$(in_app timeout 10 getent hosts ar.example.test) || fail "auto_route: getent failed"
log "auto_route: getent hosts ar.example.test: $got"
q "auto_route: UDP via $FAKE4" --server $FAKE4 --name ar-udp.example.test
q "auto_route: UDP via the real $RESOLVER" --server $RESOLVER --name ar-real.example.test
q "auto_route: UDP via [$FAKE6]" --server $FAKE6 --name ar-udp6.example.test
q "auto_route: TCP via $FAKE4:53" --server $FAKE4 --name ar-tcp.example.test --tcp
q "auto_route: TCP via the real $RESOLVER:53" --server $RESOLVER --name ar-tcp-real.example.test --tcp
sniff_stop
[ "$LEAKS" = "0 0" ] || fail "auto_route: port-53 packets (udp tcp) outside the tunnel on ns srv's veth: $LEAKS"
for name in ar.example.test ar-udp.example.test ar-real.example.test ar-udp6.example.test ar-tcp.example.test ar-tcp-real.example.test; do
  tail -n +"$((before + 1))" "$QLOG" | grep -q "query\[[A-Z]*\] $name from 198\.18\.1\.1$" ||
    fail "auto_route: dnsmasq did not see $name from ns srv (the tunnel)"
done
log "auto_route: every query answered through the tunnel; 0 port-53 packets on ns app's real link"
ub_tun_stop "dns (auto_route on)"
line=$(grep -E "stopping: udp .*; dns 4 hijacked \(2 tcp\), 0 cache hits" "$TB_TUN_LOG") ||
  fail "auto_route: want the stop summary to count 4 UDP and 2 TCP queries, no cache hit: $(grep 'stopping: udp' "$TB_TUN_LOG")"
log "auto_route: vless-tun: ${line#* INFO  }"
ub_server_stop
log "PASS in $(( $(date +%s) - T0 )) s"
