#!/usr/bin/env bash
# The control sockets and the metrics endpoint (docs/operations.md "Control
# socket", docs/server.md "Metrics"), during a transfer through the TUN:
#   - `vless-tun status` lists the live download with its bytes, which grow;
#     `status --json` has the same flow; `log-level` shows and sets the level;
#     `close ID` resets the flow (the app sees its connection end);
#   - `vless-server status` lists it-user's connection; the Prometheus
#     counters of it-user move with the traffic; `vless-server close ID`
#     ends a connection;
#   - the sockets have the modes the config asks for, bad requests get
#     clear errors, and a second client with the same socket refuses to
#     start (before it touches a TUN);
#   - SIGHUP on vless-tun applies the log level and the routing rules, and
#     names what needs a restart.
#
#   ns app (app, vless-tun) -- ns srv (vless-server) -- ns web (xfer.py)
source "$(dirname "$0")/lib.sh"
source "$VT_TOOLS/testbed.sh"
require_root
require_cmd curl
: "${VT_SERVER:?path to vless-server}" "${VT_TUN:?path to vless-tun}"
T0=$(date +%s)
# it-user is rate-limited so that the downloads last while we look.
rate_mb=$([ -n "${VT_SANITIZED:-}" ] && echo 1 || echo 2)
bytes=$((rate_mb * 20000000))

tb_setup status
head -c "$bytes" /dev/urandom >"$VT_TMP/big.bin"
start xfer ip netns exec "$TB_WEB" python3 "$VT_TOOLS/xfer.py" server --host "$TB_WEB4" --port 5001 --file "$VT_TMP/big.bin"
wait_port "$TB_WEB4" 5001 10 "$TB_WEB"

ssock="$VT_TMP/server.sock"
csock="$VT_TMP/client.sock"
TB_USER_EXTRA="rate_limit = \"${rate_mb}MB/s\"" tb_server_start srv yes "[metrics]
listen = \"127.0.0.1:9105\"
[control]
socket = \"$ssock\""
slog="$VT_TMP/srv.log"
wait_log "$slog" 'metrics: serving http://127.0.0.1:9105/metrics' 5
TB_TUN_EXTRA="[control]
socket = \"$csock\"
group = \"nogroup\"
[[route.rules]]
ip_cidr = [\"198.18.3.0/24\"]
action = \"block\"" tb_tun_start tun 1 true immediate
[ -S "$csock" ] || fail "no client control socket at $csock"
[ -S "$ssock" ] || fail "no server control socket at $ssock"
[ "$(stat -c '%a %G' "$csock")" = "660 nogroup" ] || fail "client socket mode: $(stat -c '%a %G' "$csock")"
[ "$(stat -c '%a' "$ssock")" = "600" ] || fail "server socket mode: $(stat -c '%a' "$ssock")"
log "sockets: client $(stat -c '%a %G' "$csock"), server $(stat -c '%a %U' "$ssock")"

ctl() { "$VT_TUN" "$@" -s "$csock"; }
sctl() { "$VT_SERVER" "$@" -s "$ssock"; }
metric() {  # metric NAME{LABELS}: its value now (0 when absent)
  in_srv curl -s --max-time 5 http://127.0.0.1:9105/metrics >"$VT_TMP/metrics.txt" || fail "GET /metrics failed"
  awk -v k="$1" '$1 == k { print $2; found = 1 } END { if (!found) print 0 }' "$VT_TMP/metrics.txt"
}

# A second client on the same socket: refused before it makes a TUN.
sed "s/name = \"vt0\"/name = \"vt1\"/" "$VT_TMP/tun.toml" >"$VT_TMP/tun2.toml"
if timeout 10 ip netns exec "$TB_APP" "$VT_TUN" -c "$VT_TMP/tun2.toml" 2>"$VT_TMP/tun2.err"; then
  fail "a second vless-tun started on a control socket in use"
fi
grep -q "control socket $csock: another process answers on it" "$VT_TMP/tun2.err" || fail "second client: $(cat "$VT_TMP/tun2.err")"
ip -n "$TB_APP" link show vt1 >/dev/null 2>&1 && fail "the second client made its TUN"
log "a second client on the same socket: $(tail -1 "$VT_TMP/tun2.err")"

# Download 1 (the one we watch and then close from the client).
in_app timeout 120 python3 "$VT_TOOLS/xfer.py" client --target "$TB_WEB4:5001" >"$VT_TMP/d1.got" 2>"$VT_TMP/d1.err" &
d1=$!
# Download 2 (closed from the server), once download 1 is flow 1.
deadline=$(( $(date +%s) + 10 ))
until ctl status | grep -Eq '^tcp: 1 flow '; do
  [ "$(date +%s)" -lt "$deadline" ] || fail "download 1 never showed in status"
  sleep 0.1
done
id=$(ctl status --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["flows"][0]["id"])')
in_app timeout 120 python3 "$VT_TOOLS/xfer.py" client --target "$TB_WEB4:5001" >"$VT_TMP/d2.got" 2>"$VT_TMP/d2.err" &
d2=$!
m0=$(metric 'vless_server_user_bytes_total{user="it-user",direction="down"}')
sleep 2
ctl status >"$VT_TMP/status1.txt" || fail "vless-tun status failed"
cat "$VT_TMP/status1.txt"
grep -Eq '^vless-tun running for .*tun vt0' "$VT_TMP/status1.txt" || fail "status: no summary line"
grep -Eq '^tcp: 2 flows' "$VT_TMP/status1.txt" || fail "status: not 2 live tcp flows"
grep -Eq "^[0-9]+ +tcp +198\.18\.2\.1:[0-9]+ +$TB_WEB4:5001 +[0-9]+ B +[0-9.]+ (KiB|MiB)" "$VT_TMP/status1.txt" || fail "status: the download is not listed with its bytes"
ctl status --json >"$VT_TMP/s1.json" || fail "status --json failed"
sleep 1
ctl status --json >"$VT_TMP/s2.json" || fail "status --json failed"
python3 - "$VT_TMP/s1.json" "$VT_TMP/s2.json" "$TB_WEB4:5001" <<'PY' || fail "status --json: the flows' bytes did not grow"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
def flows(j):
    return {f["id"]: f for f in j["flows"] if f["proto"] == "tcp" and f["dst"] == sys.argv[3]}
fa, fb = flows(a), flows(b)
assert len(fa) == 2 and fa.keys() == fb.keys(), (fa, fb)
for i in fa:
    assert fb[i]["down"] > fa[i]["down"] > 0, (fa[i], fb[i])
assert b["tcp"]["bytes_down"] > a["tcp"]["bytes_down"], (a["tcp"], b["tcp"])
PY
log "client: flows listed, bytes growing (closing flow $id)"

# The log level.
[ "$(ctl log-level)" = "info" ] || fail "log-level: $(ctl log-level)"
[ "$(ctl log-level debug)" = "log level info -> debug" ] || fail "log-level debug"
[ "$(ctl log-level)" = "debug" ] || fail "log-level after the change"
wait_log "$TB_TUN_LOG" 'control: log level info -> debug' 5
ctl log-level info >/dev/null
ctl log-level loud 2>"$VT_TMP/err.txt" && fail "log-level loud accepted"
grep -q 'expected one of trace, debug, info, warn, error, off, got "loud"' "$VT_TMP/err.txt" || fail "log-level loud: $(cat "$VT_TMP/err.txt")"
ctl close 999999 2>"$VT_TMP/err.txt" && fail "close of an unknown id succeeded"
grep -q 'no live flow with id 999999' "$VT_TMP/err.txt" || fail "close 999999: $(cat "$VT_TMP/err.txt")"
ctl close x1 2>"$VT_TMP/err.txt" && fail "close x1 succeeded"
in_app timeout 5 python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b"x" * 5000 + b"\n")
print(s.recv(4096).decode().strip())' "$csock" >"$VT_TMP/long.txt" || true
grep -q 'request longer than 1024 bytes' "$VT_TMP/long.txt" || fail "an oversized request: $(cat "$VT_TMP/long.txt")"
log "client: log-level and the errors as documented"

# The server's view.
sctl status >"$VT_TMP/sstatus.txt" || fail "vless-server status failed"
cat "$VT_TMP/sstatus.txt"
grep -q 'it-user' "$VT_TMP/sstatus.txt" || fail "server status: no it-user"
sctl status --json >"$VT_TMP/ss.json" || fail "vless-server status --json failed"
python3 - "$VT_TMP/ss.json" <<'PY' || fail "server status --json: it-user's bytes"
import json, sys
j = json.load(open(sys.argv[1]))
u = [u for u in j["users"] if u["name"] == "it-user"]
assert u and u[0]["bytes_down"] > 0, j["users"]
PY
m1=$(metric 'vless_server_user_bytes_total{user="it-user",direction="down"}')
python3 -c "import sys; sys.exit(0 if float('$m1') > float('$m0') else 1)" || fail "metrics: it-user's down bytes did not move ($m0 -> $m1)"
grep -q '^# TYPE vless_server_user_bytes_total counter' "$VT_TMP/metrics.txt" || fail "metrics: no TYPE line"
log "server: it-user listed; metrics it-user down bytes $m0 -> $m1"

# Close one flow from the client, then the other's connection from the server.
ctl close "$id" >"$VT_TMP/close.txt" || fail "close $id failed"
grep -q "closed tcp flow $id " "$VT_TMP/close.txt" || fail "close: $(cat "$VT_TMP/close.txt")"
deadline=$(( $(date +%s) + 15 ))
while kill -0 "$d1" 2>/dev/null; do
  [ "$(date +%s)" -lt "$deadline" ] || fail "the closed download still runs"
  sleep 0.2
done
wait "$d1" || true
[ "$(stat -c %s "$VT_TMP/d1.got")" -lt "$bytes" ] || fail "download 1 completed despite close"
grep -q "control: closing tcp flow $id" "$TB_TUN_LOG" || fail "no close line in the client log"
wait_log "$TB_TUN_LOG" "reason=closed_by_operator" 5
kill -0 "$d2" || fail "download 2 ended with download 1"
# The server's end of flow 1 went too (mux: the second FIN).
wait_log "$slog" 'the peer abandoned the stream' 10
sctl status --json >"$VT_TMP/ss2.json" || fail "vless-server status --json failed"
sid=$(python3 - "$VT_TMP/ss2.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
c = [c for c in j["connections"] if c["user"] == "it-user" and c["kind"] == "tcp"]
print(max(c, key=lambda c: c["down"])["id"])
PY
) || fail "server status --json: no it-user connection"
sctl close "$sid" >"$VT_TMP/sclose.txt" || fail "server close $sid failed"
deadline=$(( $(date +%s) + 15 ))
while kill -0 "$d2" 2>/dev/null; do
  [ "$(date +%s)" -lt "$deadline" ] || fail "download 2 still runs after the server closed its connection"
  sleep 0.2
done
wait "$d2" || true
[ "$(stat -c %s "$VT_TMP/d2.got")" -lt "$bytes" ] || fail "download 2 completed despite the server's close"
log "closed: client flow $id, server connection $sid; both downloads ended early"
grep "conn #" "$slog" | grep -v "close=server stopping" | sed 's/^/  server: /' 
ctl status >"$VT_TMP/status2.txt"
grep -Eq '^tcp: 0 flows' "$VT_TMP/status2.txt" || fail "flows left after the closes: $(cat "$VT_TMP/status2.txt")"

# SIGHUP on vless-tun: a config that does not load changes nothing; then
# the log level and the rules apply at once, and a changed tun.mtu is named
# as needing a restart.
cfg="$VT_TMP/tun.toml"
cp "$cfg" "$VT_TMP/tun.good"
printf 'bogus = 1\n' >>"$cfg"
kill -HUP "$TB_TUN_PID"
wait_log "$TB_TUN_LOG" 'reload refused, the running config stays' 10
sed -e 's|^log_level = "info"|log_level = "debug"|' -e 's|^mtu = 1500|mtu = 1400|' \
    -e 's|"198.18.3.0/24"|"198.18.1.2/32"|' "$VT_TMP/tun.good" >"$cfg"
kill -HUP "$TB_TUN_PID"
wait_log "$TB_TUN_LOG" 'reloaded .*: log level debug \(was info\); routing: 1 rules, default proxy' 10
wait_log "$TB_TUN_LOG" 'reload: tun.mtu changed in .*; it applies at the next restart' 5
kill -0 "$TB_TUN_PID" || fail "vless-tun died on SIGHUP"
[ "$(ctl log-level)" = "debug" ] || fail "log level after the reload: $(ctl log-level)"
if in_app timeout 10 python3 "$VT_TOOLS/xfer.py" client --target "$TB_WEB4:5001" >/dev/null 2>&1; then
  fail "a download after the reload was not blocked"
fi
blocked=$(ctl status --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["route"]["tcp_blocked"])')
[ "$blocked" -ge 1 ] || fail "tcp_blocked after the reload: $blocked"
log "client reload: $(grep -o 'reloaded .*' "$TB_TUN_LOG" | tail -1)"

stop_pid "$TB_TUN_PID" || fail "vless-tun exited non-zero"
[ -e "$csock" ] && fail "the client left its control socket behind"
stop_pid "$TB_SERVER_PID" || fail "vless-server exited non-zero"
[ -e "$ssock" ] && fail "the server left its control socket behind"
for f in "$TB_TUN_LOG" "$slog"; do
  if grep -Ei 'Sanitizer|runtime error|assert|terminate called' "$f"; then fail "$f: a check tripped"; fi
done
log "PASS in $(( $(date +%s) - T0 )) s"
