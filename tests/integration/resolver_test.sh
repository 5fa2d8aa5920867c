#!/usr/bin/env bash
# Name resolution cannot be stalled by one user (docs/server.md "Name
# resolution"): user "hog" asks for 48 names that the namespace's DNS server
# never answers, all at once; user "ok" asking for a name that resolves at
# once is served within a bound all the while, hog's own good name waits
# behind its slow ones, and hog's callers get "timed out" at
# resolve_timeout.
#
#   ns app (probes) -- ns srv (vless-server; resolv.conf -> 198.18.1.2) -- ns web (DNS + echo)
source "$(dirname "$0")/lib.sh"
source "$VT_TOOLS/testbed.sh"
require_root
: "${VT_SERVER:?path to vless-server}"
bound_ms=${VT_LOOKUP_BOUND_MS:-1500}

tb_setup resolver
NETNS_ETC="/etc/netns/$TB_SRV"
trap 'rc=$?; set +e; rm -rf "$NETNS_ETC"; rmdir /etc/netns 2>/dev/null || true; (exit $rc); _vt_cleanup' EXIT
mkdir -p "$NETNS_ETC"
printf '127.0.0.1 localhost\n::1 localhost\n' >"$NETNS_ETC/hosts"
# One try, 4 s: a name the server never answers holds a thread that long.
printf 'nameserver 198.18.1.2\noptions timeout:4 attempts:1\n' >"$NETNS_ETC/resolv.conf"
in_web ip route add default via 198.18.1.1

cat >"$VT_TMP/dns_echo.py" <<'PY'
# DNS on 198.18.1.2:53 (UDP): fast.test -> A 198.18.1.2, no AAAA; names
# starting with "slow" are never answered. Echo on 198.18.1.2:7 (TCP).
import socket, struct, threading, time
def dns():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("198.18.1.2", 53))
    while True:
        q, src = s.recvfrom(512)
        i, labels = 12, []
        while q[i]:
            labels.append(q[i + 1:i + 1 + q[i]].decode()); i += 1 + q[i]
        name, qtype = ".".join(labels), struct.unpack("!H", q[i + 1:i + 3])[0]
        if name.startswith("slow"):
            continue
        question = q[12:i + 5]
        known = name == "fast.test"
        answers = b""
        if known and qtype == 1:
            answers = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + socket.inet_aton("198.18.1.2")
        flags = 0x8180 if known else 0x8183
        head = q[:2] + struct.pack("!HHHHH", flags, 1, 1 if answers else 0, 0, 0)
        s.sendto(head + question + answers, src)
threading.Thread(target=dns, daemon=True).start()
t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.bind(("198.18.1.2", 7)); t.listen(64); t.settimeout(1)
def serve(c):
    with c:
        c.settimeout(10)
        try:
            d = c.recv(65535)
            if d: c.sendall(b"web:" + d)
        except OSError: pass
end = time.time() + 120
while time.time() < end:
    try: c, _ = t.accept()
    except socket.timeout: continue
    threading.Thread(target=serve, args=(c,), daemon=True).start()
PY
start dns-echo ip netns exec "$TB_WEB" python3 "$VT_TMP/dns_echo.py"
wait_port 198.18.1.2 7 10 "$TB_WEB"

hog_uuid=$(new_uuid)
TB_USER_EXTRA="[[users]]
name = \"hog\"
uuid = \"$hog_uuid\"" tb_server_start srv yes 'resolve_timeout = "2s"'

probe() {  # probe UUID TARGET: prints the reply line
  in_app python3 "$VT_TOOLS/vless_probe.py" tcp --server "$TB_SRV4:443" --uuid "$1" \
    --ca "$VT_TMP/ca.pem" --sni test.name --target "$2" --msg "$3" --timeout 10 || true
}
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# Before: the good name works.
got=$(probe "$TB_UUID" fast.test:7 before)
[ "$got" = "tcp reply=web:before" ] || fail "fast.test before the storm: '$got'"

# The storm: 48 lookups of never-answered names from hog, in one process.
cat >"$VT_TMP/hog.py" <<'PY'
import socket, ssl, struct, sys, threading, uuid
server, uid, ca, n = sys.argv[1], uuid.UUID(sys.argv[2]).bytes, sys.argv[3], int(sys.argv[4])
ctx = ssl.create_default_context(cafile=ca)
results = []
def one(i):
    name = f"slow{i}.test".encode()
    s = ctx.wrap_socket(socket.create_connection((server, 443), timeout=15), server_hostname="test.name")
    s.sendall(bytes([0]) + uid + bytes([0, 1]) + struct.pack("!H", 7) + bytes([2, len(name)]) + name + b"x")
    try: results.append(s.recv(10))
    except OSError: results.append(b"")
ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
for t in ts: t.start()
for t in ts: t.join()
print(f"hog refused={sum(1 for r in results if r == b'')} of {n}", flush=True)
PY
start hog ip netns exec "$TB_APP" python3 "$VT_TMP/hog.py" "$TB_SRV4" "$hog_uuid" "$VT_TMP/ca.pem" 48
hog_pid=$(last_pid)
sleep 0.5  # the storm is in: every slow lookup holds a thread for 4 s

worst=0
for i in 1 2 3; do
  t0=$(now_ms)
  got=$(probe "$TB_UUID" fast.test:7 "during$i")
  ms=$(( $(now_ms) - t0 ))
  [ "$got" = "tcp reply=web:during$i" ] || fail "user ok during the storm: '$got' after $ms ms"
  [ "$ms" -gt "$worst" ] && worst=$ms
done
log "user ok during hog's storm: 3 lookups+dials, slowest $worst ms (bound $bound_ms)"
[ "$worst" -le "$bound_ms" ] || fail "user ok waited $worst ms for a name that resolves at once"
# hog's own good name waits behind its queue (its lookups are its share).
t0=$(now_ms)
got=$(probe "$hog_uuid" fast.test:7 hog)
hog_ms=$(( $(now_ms) - t0 ))
log "hog's own fast.test: '$got' after $hog_ms ms"

wait "$hog_pid" || true
grep -q "hog refused=48 of 48" "$VT_TMP/hog.log" || fail "want all 48 slow requests refused: $(cat "$VT_TMP/hog.log")"
n=$(grep -c "target=slow[0-9]*\.test:7 .*timed out after 2000 ms" "$VT_TMP/srv.log" || true)
[ "$n" -ge 40 ] || fail "want the slow lookups reported as timed out at resolve_timeout, found $n"
stop_pid "$TB_SERVER_PID"
line=$(grep "stopping: name lookups" "$VT_TMP/srv.log")
log "$line"
grep -Eq "name lookups [0-9]+ \([1-9][0-9]* waited for a slot" <<<"$line" || fail "no lookups waited: $line"
log "resolver ok"
