#!/usr/bin/env bash
# apps (ns app) --vt0--> vless-tun --VLESS v1 Mux/TLS--> vless-server (ns srv; SIGKILL mid-transfer, restarted) --> xfer.py, http, UDP reflector (ns web)
#
# Proves a dead server is noticed and survived by the SAME running vless-tun:
#  1. vless-server is killed with SIGKILL while bulk transfers are in flight
#     through the TUN: a full-speed IPv6 download, a paced 32 MB/s IPv4
#     upload and a slow IPv4 reader (all on the mux connection), and a UDP
#     socket pinging every 100 ms. Every TCP transfer ends in an error (a
#     reset, not a hang and not a clean EOF that would hide the loss) within
#     20 s; the full-speed download is shown to be cut mid-way; vless-tun
#     logs the lost mux connection and one flow line per transfer;
#  2. while the server is down a new connection is refused, quickly;
#  3. once it is back, new flows (TCP curl and UDP echo, IPv4 and IPv6) work
#     within 5 s each, 32 MiB down (v4, v6) and up (v4) arrive intact
#     (sha256), and the UDP socket that pinged across the outage is answered
#     again without the app doing anything;
#  4. vless-tun is still the same process, its fd count and RSS are back
#     near what they were before the outage, and SIGTERM stops it with exit 0.
source "$(dirname "$0")/lib.sh"
source "$VT_TOOLS/testbed.sh"
: "${VT_SERVER:?path to vless-server}" "${VT_TUN:?path to vless-tun}"
require_root
require_cmd curl python3 openssl ss
size_mb=${VT_XFER_MB:-256}  # the transfers cut by the kill
bulk_mb=32                  # the transfers after the restart
UPORT=7300
UPROBE="$VT_TOOLS/udp_probe.py"
T0=$(date +%s)

tb_setup restart
head -c $((size_mb << 20)) /dev/urandom >"$VT_TMP/big.bin"
head -c $((bulk_mb << 20)) /dev/urandom >"$VT_TMP/bulk.bin"
want_bulk=$(sha_of "$VT_TMP/bulk.bin")
mkdir -p "$VT_TMP/www"
echo "<html><body>hello through vless-tun</body></html>" >"$VT_TMP/www/index.html"
start xfer ip netns exec "$TB_WEB" python3 "$VT_TOOLS/xfer.py" server --host :: --port 9000 --file "$VT_TMP/big.bin"
start xfer-bulk ip netns exec "$TB_WEB" python3 "$VT_TOOLS/xfer.py" server --host :: --port 9001 --file "$VT_TMP/bulk.bin"
start web ip netns exec "$TB_WEB" python3 -m http.server 80 --bind :: --directory "$VT_TMP/www"
start reflect ip netns exec "$TB_WEB" python3 "$UPROBE" reflect --port $UPORT --max-seconds 120
wait_port "$TB_WEB4" 9000 30 "$TB_WEB"
wait_port "$TB_WEB4" 9001 30 "$TB_WEB"
wait_port "$TB_WEB4" 80 30 "$TB_WEB"
deadline=$(( $(date +%s) + 30 ))
until in_srv python3 "$UPROBE" poke --target "$TB_WEB4:$UPORT" --msg ping --timeout 1 >/dev/null; do
  [ "$(date +%s)" -lt "$deadline" ] || fail "no UDP reflector on $TB_WEB4:$UPORT"
done
tb_server_start
tb_tun_start tun 1 true wait

# A paced uploader: "SUM\n" + FILE at RATE bytes/s, half-close, the server's
# sha256 back. Prints "done sent=N answer=H" or "error=E sent=N" (exit 3).
cat >"$VT_TMP/upload.py" <<'PY'
import socket, sys, time
target, path, rate, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
host, port = target.rsplit(":", 1)
sent = 0
try:
    s = socket.create_connection((host.strip("[]"), int(port)), timeout=timeout)
    s.sendall(b"SUM\n")
    t0 = time.monotonic()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 16)
            if not b:
                break
            s.sendall(b)
            sent += len(b)
            ahead = sent / rate - (time.monotonic() - t0)
            if ahead > 0:
                time.sleep(ahead)
    s.shutdown(socket.SHUT_WR)
    print("done sent=%d answer=%s" % (sent, s.recv(128).decode().strip()))
except OSError as e:
    print("error=%s sent=%d" % (type(e).__name__, sent))
    sys.exit(3)
PY

# A UDP socket that pings (every 100 ms) until 4 s after MARKER appeared
# (60 s at most), replies matched by number. Prints "before: sent=N
# answered=N after: sent=N answered=N" (pings sent before/after MARKER);
# creates MARKER.live at the first answer.
cat >"$VT_TMP/pinger.py" <<'PY'
import os, select, socket, sys, time
target, marker, linger = sys.argv[1], sys.argv[2], float(sys.argv[3])
host, port = target.rsplit(":", 1)
host = host.strip("[]")
s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
s.connect((host, int(port)))
s.setblocking(False)
sent, got, phase = [0, 0], [0, 0], {}
t0 = time.monotonic()
marked = stop = None
n = 0
next_send = 0.0
while stop is None or time.monotonic() < stop:
    now = time.monotonic()
    if marked is None and os.path.exists(marker):
        marked = now
    if stop is None and ((marked is not None and now - marked >= linger) or now - t0 > 60):
        stop = now + 0.5  # late answers still count
    if stop is None and now >= next_send:
        ph = 0 if marked is None else 1
        try:
            s.send(b"PING %d" % n)
        except OSError:
            pass  # no route while the tunnel is down
        phase[n] = ph
        sent[ph] += 1
        n += 1
        next_send = now + 0.1
    if select.select([s], [], [], 0.02)[0]:
        try:
            data = s.recv(65535)
        except OSError:
            continue
        if data.startswith(b"PING "):
            ph = phase.pop(int(data[5:]), None)
            if ph is not None:
                got[ph] += 1
                if got[0] == 1 and ph == 0:
                    open(marker + ".live", "w").close()
print("before: sent=%d answered=%d after: sent=%d answered=%d" % (sent[0], got[0], sent[1], got[1]))
PY
# pings_live MARKER: waits until the pinger got its first answer.
pings_live() {
  local deadline=$(( $(date +%s) + 20 ))
  until [ -e "$1.live" ]; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "the pinger got no answer in 20 s"
    sleep 0.05
  done
}
# pings_ok LOG LABEL: answered before the disturbance, and again after it.
pings_ok() {
  local res b_sent b_got a_sent a_got
  res=$(cat "$1")
  read -r b_sent b_got a_sent a_got <<<"$(sed -n 's/^before: sent=\([0-9]*\) answered=\([0-9]*\) after: sent=\([0-9]*\) answered=\([0-9]*\)$/\1 \2 \3 \4/p' "$1")"
  [ -n "$a_got" ] || fail "$2: no result from the pinger: $res"
  [ "$b_got" -ge 1 ] || fail "$2: the UDP socket was never answered before the disturbance: $res"
  [ "$a_sent" -ge 20 ] || fail "$2: too few pings after the disturbance to judge: $res"
  [ "$a_got" -ge $(( a_sent - 10 )) ] ||
    fail "$2: the UDP socket that lived through it is not answered again: $res"
  log "$2: $res"
}

fd_count() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
# curl_ok NAME URL: the page, within 5 s.
curl_ok() {
  local page
  page=$(in_app curl -sS --max-time 5 "$2") || fail "$1: curl $2 failed"
  [[ "$page" == *"hello through vless-tun"* ]] || fail "$1: wrong page: $page"
}
# udp_ok NAME HOST: 200 datagrams echoed intact, within 5 s.
udp_ok() {
  local out
  out=$(in_app python3 "$UPROBE" echo --target "$2:$UPORT" --count 200 --max-size 1200 \
        --timeout 5 --stall 2) || fail "$1: UDP echo through the tunnel failed: $out"
  log "$1: $out"
}
# wait_done PID NAME SECS: waits for one of our background apps; sets RC.
wait_done() {
  local pid=$1 deadline=$(( $(date +%s) + $3 ))
  while kill -0 "$pid" 2>/dev/null; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "$2 still running $3 s after the server died (a hang): $(cat "$VT_TMP/$2.log")"
    sleep 0.05
  done
  RC=0; wait "$pid" || RC=$?
}

# Warm up (first flows, mux connection), then the reference figures.
curl_ok "before" "http://$TB_WEB4/"
udp_ok "before, UDP v4" "$TB_WEB4"
sleep 0.5
fd0=$(fd_count "$TB_TUN_PID") rss0=$(rss_kib "$TB_TUN_PID")
log "vless-tun before the outage: $fd0 fds, RSS $rss0 KiB"

# ---- 1. SIGKILL mid-transfer
marker="$VT_TMP/pings.marker"
start pings ip netns exec "$TB_APP" python3 "$VT_TMP/pinger.py" "$TB_WEB4:$UPORT" "$marker" 4
pings=$(last_pid)
# Reads at most 5 MB/s: still running at the kill whatever the machine.
start slowget ip netns exec "$TB_APP" timeout 60 python3 "$VT_TOOLS/flows.py" slowget \
  --target "$TB_WEB4:9000" --chunk 262144 --interval 0.05 --slow 1000
slowget=$(last_pid)
# The full-speed download marks its first MiB: the kill follows at once,
# while the rest is still coming (a fixed delay let 32 MiB finish first
# once the path got faster).
start fastget ip netns exec "$TB_APP" timeout 60 python3 "$VT_TOOLS/flows.py" slowget \
  --target "[$TB_WEB6]:9000" --slow 0 --timeout 30 --marker "$VT_TMP/fastget.mid" --mark-at 1048576
fastget=$(last_pid)
start upload ip netns exec "$TB_APP" timeout 60 python3 "$VT_TMP/upload.py" \
  "$TB_WEB4:9000" "$VT_TMP/big.bin" 32000000 30
upload=$(last_pid)
deadline=$(( $(date +%s) + 20 ))
until [ "$(in_web ss -Htn state established '( sport = :9000 )' | wc -l)" -ge 3 ]; do
  [ "$(date +%s)" -lt "$deadline" ] || fail "the 3 transfers never all reached ns web"
  sleep 0.05
done
pings_live "$marker"
deadline=$(( $(date +%s) + 20 ))
until [ -e "$VT_TMP/fastget.mid" ]; do
  [ "$(date +%s)" -lt "$deadline" ] || fail "the full-speed download never got its first MiB"
  sleep 0.005
done
log "kill -9 vless-server (pid $TB_SERVER_PID) with 3 transfers in flight"
lines_at_kill=$(wc -l <"$TB_TUN_LOG")
t0=$(date +%s%N)
{ kill -9 "$TB_SERVER_PID"; wait "$TB_SERVER_PID"; } 2>/dev/null || true
for app in fastget upload slowget; do
  case $app in fastget) pid=$fastget ;; upload) pid=$upload ;; slowget) pid=$slowget ;; esac
  wait_done "$pid" "$app" 20
  ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  out=$(cat "$VT_TMP/$app.log")
  [ $RC -ne 124 ] || fail "$app hung until its timeout: $out"
  [ $RC -ne 0 ] || fail "$app reported success after the server died: $out"
  [[ "$out" == error=* ]] || fail "$app ended without an error (a clean EOF hides the failure): $out"
  log "$app ended ${ms} ms after the kill: $out (exit $RC)"
done
got=$(sed -n 's/^error=[A-Za-z]* bytes=\([0-9]*\)$/\1/p' "$VT_TMP/fastget.log")
[ -n "$got" ] && [ "$got" -gt 0 ] && [ "$got" -lt $((size_mb << 20)) ] ||
  fail "the full-speed download was not cut mid-way (bytes=$got of $((size_mb << 20))): the kill came too late"
wait_log "$TB_TUN_LOG" "mux #[0-9]+ to 198\.18\.0\.2:443 lost after" 5
log "vless-tun: $(grep -E 'mux #[0-9]+ to .* lost after' "$TB_TUN_LOG" | head -1 | cut -c1-200)"
for dst in '198\.18\.1\.2:9000' '\[2001:db8:1::2\]:9000'; do
  wait_log "$TB_TUN_LOG" "flow #[0-9]+ .*dst=$dst reason=server_" 5
done
n=$(grep -cE "flow #[0-9]+ .*dst=(198\.18\.1\.2|\[2001:db8:1::2\]):9000 reason=server_" "$TB_TUN_LOG")
[ "$n" -eq 3 ] || fail "want 3 flow lines with reason=server_* for the cut transfers, got $n: $(grep 'flow #' "$TB_TUN_LOG")"
grep -E "flow #[0-9]+ .*:9000 reason=" "$TB_TUN_LOG" | sed 's/^/  /'

# ---- 2. server down
t0=$(date +%s%N); rc=0
in_app curl -sS --max-time 15 "http://$TB_WEB4/" >/dev/null 2>&1 || rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ $rc -eq 7 ] || fail "with the server down curl exited $rc after ${ms} ms, want 7 (refused)"
[ $ms -lt 5000 ] || fail "with the server down curl took ${ms} ms to be refused"
log "server down: a new connection is refused in ${ms} ms"
kill -0 "$TB_TUN_PID" || fail "vless-tun died with the server"
# The pinger's socket keeps sending (10/s) while the server is down: its
# channel fails, and new ones wait 200 ms doubling, so it does not dial the
# server (and log a WARN) per datagram.
sleep 3
warns=$(tail -n +"$((lines_at_kill + 1))" "$TB_TUN_LOG" | grep -c "WARN" || true)
udp_fail=$(tail -n +"$((lines_at_kill + 1))" "$TB_TUN_LOG" | grep -c "new channels of this socket wait" || true)
log "server down for 3 s more: $warns WARN lines in vless-tun's log since the kill ($udp_fail about failed UDP channels)"
[ "$udp_fail" -le 3 ] || fail "$udp_fail WARN lines about failed UDP channels during the outage: a WARN per datagram?"
[ "$warns" -le 12 ] || fail "$warns WARN lines during a few seconds of outage: $(tail -n +"$((lines_at_kill + 1))" "$TB_TUN_LOG" | grep WARN | head -20)"

# ---- 3. server back: new flows through the same vless-tun
tb_server_start vless-server-2
t_up=$(date +%s%N)
touch "$marker"
curl_ok "after, TCP v4" "http://$TB_WEB4/"
ms_first=$(( ($(date +%s%N) - t_up) / 1000000 ))
curl_ok "after, TCP v6" "http://[$TB_WEB6]/"
udp_ok "after, UDP v4" "$TB_WEB4"
udp_ok "after, UDP v6" "[$TB_WEB6]"
ms_all=$(( ($(date +%s%N) - t_up) / 1000000 ))
log "server back: first TCP flow after ${ms_first} ms, TCP+UDP v4+v6 all done after ${ms_all} ms"
for dst in "$TB_WEB4" "[$TB_WEB6]"; do
  t0=$(date +%s%N)
  got=$(in_app timeout 30 python3 "$VT_TOOLS/xfer.py" client --target "$dst:9001" | sha256sum | cut -d' ' -f1)
  [ "$got" = "$want_bulk" ] || fail "after the restart, the ${bulk_mb} MiB download from $dst is corrupt or short"
  log "after: ${bulk_mb} MiB down from $dst intact in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
done
t0=$(date +%s%N)
out=$(in_app timeout 30 python3 "$VT_TMP/upload.py" "$TB_WEB4:9001" "$VT_TMP/bulk.bin" 1e12 20) ||
  fail "after the restart the ${bulk_mb} MiB upload failed: $out"
[ "$out" = "done sent=$((bulk_mb << 20)) answer=$want_bulk" ] || fail "after the restart the upload arrived corrupt or short: $out"
log "after: ${bulk_mb} MiB up to $TB_WEB4 intact in $(( ($(date +%s%N) - t0) / 1000000 )) ms"

# The UDP socket that pinged through the outage.
wait_done "$pings" pings 20
[ $RC -eq 0 ] || fail "the pinger failed: $(cat "$VT_TMP/pings.log")"
pings_ok "$VT_TMP/pings.log" "UDP socket across the outage (after = since the restart)"

# ---- 4. the same process, no leak
kill -0 "$TB_TUN_PID" || fail "vless-tun died"
sleep 0.5
fd1=$(fd_count "$TB_TUN_PID") rss1=$(rss_kib "$TB_TUN_PID")
log "vless-tun after: $fd1 fds (before $fd0), RSS $rss1 KiB (before $rss0)"
[ "$fd1" -le $(( fd0 + 4 )) ] || fail "vless-tun holds $fd1 fds after the outage, $fd0 before: leaked? $(ls -l "/proc/$TB_TUN_PID/fd")"
# Under ASan freed memory waits in its quarantine (256 MiB): no bound there.
if [ -z "${VT_SANITIZED:-}" ]; then
  [ "$rss1" -le $(( rss0 + 32768 )) ] || fail "vless-tun RSS grew from $rss0 to $rss1 KiB"
fi
rc=0; stop_pid "$TB_TUN_PID" 10 || rc=$?
[ $rc -eq 0 ] || fail "vless-tun exited $rc on SIGTERM"
grep -Ei 'Sanitizer|runtime error|assert|terminate called' "$TB_TUN_LOG" && fail "vless-tun tripped a check"
log "$(grep -E 'stopping: mux' "$TB_TUN_LOG" | sed 's/^.*stopping: //')"
grep -Eq 'stopping: mux [0-9]+ streams on [0-9]+ connections \([1-9][0-9]* lost' "$TB_TUN_LOG" ||
  fail "the stop line counts no lost mux connection"
log "PASS in $(( $(date +%s) - T0 )) s"
