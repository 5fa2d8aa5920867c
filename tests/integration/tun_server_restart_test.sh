#!/usr/bin/env bash
# flows.py slowget (ns app) --vt0--> vless-tun --VLESS v1/TLS--> vless-server (ns srv, killed, restarted) --> xfer.py (ns web)
# Proves a dead server is noticed: when vless-server is killed mid-transfer
# the app's download ends in an error (not a hang, not a clean complete
# stream) within seconds; new connections are refused while it is down; once
# it is back, a new curl works through the same vless-tun.
source "$(dirname "$0")/lib.sh"
source "$VT_TOOLS/testbed.sh"
: "${VT_SERVER:?path to vless-server}" "${VT_TUN:?path to vless-tun}"
require_root
require_cmd curl python3 openssl
size_mb=${VT_XFER_MB:-256}

tb_setup restart
head -c $((size_mb << 20)) /dev/urandom >"$VT_TMP/big.bin"
mkdir -p "$VT_TMP/www"
echo "<html><body>hello through vless-tun</body></html>" >"$VT_TMP/www/index.html"
start xfer ip netns exec "$TB_WEB" python3 "$VT_TOOLS/xfer.py" server --host :: --port 9000 --file "$VT_TMP/big.bin"
start web ip netns exec "$TB_WEB" python3 -m http.server 80 --bind :: --directory "$VT_TMP/www"
wait_port "$TB_WEB4" 9000 10 "$TB_WEB"
wait_port "$TB_WEB4" 80 10 "$TB_WEB"
tb_server_start
tb_tun_start tun 1 true wait

# Reads at most 5 MB/s, so 256 MiB take about a minute: still running at the kill.
start download ip netns exec "$TB_APP" timeout 120 python3 "$VT_TOOLS/flows.py" slowget \
  --target "$TB_WEB4:9000" --chunk 262144 --interval 0.05 --slow 1000
reader=$(last_pid)
deadline=$(( $(date +%s) + 10 ))
until in_srv ss -Htn state established '( dport = :9000 )' | grep -q .; do
  [ "$(date +%s)" -lt "$deadline" ] || fail "the download never reached ns web"
  sleep 0.05
done
sleep 1
log "kill -9 vless-server (pid $TB_SERVER_PID) mid-transfer"
t0=$(date +%s%N)
{ kill -9 "$TB_SERVER_PID"; wait "$TB_SERVER_PID"; } 2>/dev/null || true
# Data already queued in the app's socket and in vless-tun drains first.
deadline=$(( $(date +%s) + 20 ))
while kill -0 "$reader" 2>/dev/null; do
  [ "$(date +%s)" -lt "$deadline" ] || fail "download still running 20 s after the server died (a hang): $(cat "$VT_TMP/download.log")"
  sleep 0.05
done
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
rc=0; wait "$reader" || rc=$?
out=$(cat "$VT_TMP/download.log")
[ $rc -ne 0 ] || fail "download reported success after the server died: $out"
[ $rc -ne 124 ] || fail "download hung until its timeout"
log "download ended ${ms} ms after the kill: $out (exit $rc)"
[[ "$out" == error=* ]] || fail "download ended without an error (a clean EOF hides the failure): $out"
wait_log "$TB_TUN_LOG" "flow #[0-9]+ .*dst=198\.18\.1\.2:9000 reason=" 10
log "$(grep -E 'flow #[0-9]+ .*dst=198\.18\.1\.2:9000 ' "$TB_TUN_LOG" | tail -1)"

log "server down: a new connection is refused, quickly"
t0=$(date +%s%N); rc=0
in_app curl -sS --max-time 15 "http://$TB_WEB4/" >/dev/null 2>&1 || rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ $rc -eq 7 ] || fail "with the server down curl exited $rc after ${ms} ms, want 7 (refused)"
log "refused in ${ms} ms"

log "server back: a new curl works"
tb_server_start vless-server-2
page=$(in_app curl -sS --max-time 10 "http://$TB_WEB4/") || fail "curl after the restart failed"
[[ "$page" == *"hello through vless-tun"* ]] || fail "wrong page after the restart: $page"
kill -0 "$TB_TUN_PID" || fail "vless-tun died"
log "PASS"
