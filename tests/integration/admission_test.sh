#!/usr/bin/env bash
# Slot exhaustion (docs/server.md "Admission"): one hostile host opens
# thousands of TCP connections to vless-server and holds them, half of them
# silent and half stuck in the middle of a TLS ClientHello, more than the
# server's max_connections. A legitimate client on another host still
# connects and gets its echo within a bound, and the server's RSS stays
# below a bound; the refusals are counted.
#
#   ns app (client) -- ns srv (vless-server, max_connections 3000) -- ns web (echo peer)
#                          \-- ns evil 198.18.5.2 (the hostile host)
source "$(dirname "$0")/lib.sh"
source "$VT_TOOLS/testbed.sh"
require_root
require_cmd ip
: "${VT_SERVER:?path to vless-server}"
hostile=${VT_HOSTILE_CONNS:-4000}   # connections the hostile host opens
# Under ASan (VT_SANITIZED) shadow memory and the quarantine inflate RSS.
rss_bound_kib=${VT_RSS_BOUND_KIB:-$([ -n "${VT_SANITIZED:-}" ] && echo 524288 || echo 32768)}
rtt_bound_ms=${VT_RTT_BOUND_MS:-1000}

tb_setup admission
TB_EVIL="${TB_APP%-app}-evil"
netns_add "$TB_EVIL"
ip -n "$TB_SRV" link add veth5 type veth peer name veth0 netns "$TB_EVIL"
ip -n "$TB_SRV" addr add 198.18.5.1/30 dev veth5
ip -n "$TB_EVIL" addr add 198.18.5.2/30 dev veth0
ip -n "$TB_SRV" link set veth5 up
ip -n "$TB_EVIL" link set veth0 up
ip -n "$TB_EVIL" route add default via 198.18.5.1
in_web ip route add default via 198.18.1.1

# The web namespace's echo peer (replies "web:<msg>" and closes).
cat >"$VT_TMP/echo.py" <<'PY'
import socket, threading, time
t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.bind(("198.18.1.2", 7)); t.listen(256); t.settimeout(1)
def serve(c):
    with c:
        c.settimeout(10)
        try:
            d = c.recv(65535)
            if d: c.sendall(b"web:" + d)
        except OSError: pass
end = time.time() + 300
while time.time() < end:
    try: c, _ = t.accept()
    except socket.timeout: continue
    threading.Thread(target=serve, args=(c,), daemon=True).start()
PY
start echo ip netns exec "$TB_WEB" python3 "$VT_TMP/echo.py"
wait_port 198.18.1.2 7 10 "$TB_WEB"

# The hostile host: N connections, every other one sends the first bytes of
# a TLS ClientHello and stops; all are held open for HOLD seconds; prints
# how many connected and how many the server closed meanwhile.
cat >"$VT_TMP/hostile.py" <<'PY'
import errno, selectors, socket, sys, time
n, hold = int(sys.argv[1]), float(sys.argv[2])
hello = bytes([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]) + bytes(32)
socks, connected, closed = [], 0, 0
sel = selectors.DefaultSelector()
for i in range(n):
    s = socket.socket(); s.setblocking(False)
    try: s.connect(("198.18.0.2", 443))
    except BlockingIOError: pass
    socks.append(s); sel.register(s, selectors.EVENT_WRITE, i)
    if i % 200 == 199: time.sleep(0.01)
end = time.time() + hold
pending = set(range(n))
while time.time() < end:
    for key, ev in sel.select(timeout=0.1):
        s, i = key.fileobj, key.data
        if ev & selectors.EVENT_WRITE:
            if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                connected += 1
                if i % 2: 
                    try: s.send(hello)
                    except OSError: pass
            sel.modify(s, selectors.EVENT_READ, i)
        else:
            try: d = s.recv(4096)
            except OSError: d = b""
            if not d:
                closed += 1; sel.unregister(s)
print(f"hostile connected={connected} closed_by_server={closed} held={connected - closed}", flush=True)
for s in socks: s.close()
PY
TB_MAX_CONNECTIONS=3000 tb_server_start srv
ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -ge $((hostile + 256)) ] || fail "open files limit $(ulimit -n) is below $((hostile + 256))"
start hostile ip netns exec "$TB_EVIL" python3 "$VT_TMP/hostile.py" "$hostile" 12
sleep 4  # the hostile connections are in

rtt_max=0
for i in $(seq 20); do
  t0=$(date +%s%N)
  got=$(in_app python3 "$VT_TOOLS/vless_probe.py" tcp --server "$TB_SRV4:443" --uuid "$TB_UUID" \
          --ca "$VT_TMP/ca.pem" --sni test.name --target 198.18.1.2:7 --msg "m$i" --timeout 5 || true)
  ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  [ "$got" = "tcp reply=web:m$i" ] || fail "legitimate request $i during the attack: '$got' after ${ms} ms"
  [ "$ms" -gt "$rtt_max" ] && rtt_max=$ms
done
rss=$(rss_kib "$TB_SERVER_PID")
fds=$(ls "/proc/$TB_SERVER_PID/fd" | wc -l)
log "during the attack: 20 legitimate TLS requests, slowest ${rtt_max} ms (bound ${rtt_bound_ms}); server RSS ${rss} KiB (bound ${rss_bound_kib}), ${fds} fds"
[ "$rtt_max" -le "$rtt_bound_ms" ] || fail "a legitimate request took ${rtt_max} ms (bound ${rtt_bound_ms} ms)"
[ "$rss" -le "$rss_bound_kib" ] || fail "server RSS ${rss} KiB over the bound ${rss_bound_kib} KiB"
hostile_pid=$(last_pid)
wait "$hostile_pid" || true
grep hostile "$VT_TMP/hostile.log" || fail "the hostile script did not report"
held=$(sed -n 's/.* held=\([0-9]*\).*/\1/p' "$VT_TMP/hostile.log")
[ "${held:-99999}" -le 128 ] || fail "the hostile host held $held connections (max_handshakes_per_source 128)"
stop_pid "$TB_SERVER_PID"
line=$(grep "stopping: admission refused" "$VT_TMP/srv.log")
log "$line"
refused=$(sed -n 's/.*, \([0-9]*\) at max_handshakes_per_source.*/\1/p' <<<"$line")
[ "${refused:-0}" -ge $((hostile - 128 - 200)) ] ||
  fail "want about $((hostile - 128)) refusals at max_handshakes_per_source: $line"
log "admission ok"
