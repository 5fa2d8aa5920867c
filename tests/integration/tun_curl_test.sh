#!/usr/bin/env bash
# curl (ns app) --vt0--> vless-tun --VLESS v1|v0 over TLS--> vless-server | v2ray (ns srv) --> http.server (ns web)
# Proves the TUN client end to end: pages over IPv4 and IPv6 through v1
# (wait mode; over the mux, then a connection per flow) and v0 (immediate)
# to our server and v0 to v2ray's; a closed
# port gets "connection refused" at once in wait mode (no fake SYN-ACK); a
# flow line per connection in vless-tun's log; exit 0 on SIGTERM.
source "$(dirname "$0")/lib.sh"
source "$VT_TOOLS/testbed.sh"
: "${VT_SERVER:?path to vless-server}" "${VT_TUN:?path to vless-tun}"
require_root
require_cmd curl v2ray python3 openssl

tb_setup curl
mkdir -p "$VT_TMP/www"
echo "<html><body>hello through vless-tun</body></html>" >"$VT_TMP/www/index.html"
# Bound to every address: bound to one, http.server stalls in reverse DNS.
start web ip netns exec "$TB_WEB" python3 -m http.server 80 --bind :: --directory "$VT_TMP/www"
wait_port "$TB_WEB4" 80 10 "$TB_WEB"
wait_port "$TB_WEB6" 80 10 "$TB_WEB"
tb_server_start
tb_v2ray_server_start 8443 yes

# pages NAME: the page over IPv4 and IPv6, and their flow lines.
pages() {
  local name=$1 dst page
  for dst in "$TB_WEB4" "[$TB_WEB6]"; do
    page=$(in_app curl -sS --max-time 10 "http://$dst/") || fail "$name: curl http://$dst/ failed"
    [[ "$page" == *"hello through vless-tun"* ]] || fail "$name: wrong page from $dst: $page"
  done
  wait_log "$TB_TUN_LOG" "flow #[0-9]+ app=198\.18\.2\.1:[0-9]+ dst=198\.18\.1\.2:80 reason=[a-z_-]+ up=[1-9][0-9]* down=[1-9][0-9]* ms=[0-9]+" 5
  wait_log "$TB_TUN_LOG" "flow #[0-9]+ app=\[?2001:db8:2::1\]?:[0-9]+ dst=\[?2001:db8:1::2\]?:80 reason=[a-z_-]+ up=[1-9][0-9]* down=[1-9][0-9]* ms=[0-9]+" 5
  log "$name: pages over IPv4 and IPv6, flow lines logged"
}
# refused NAME DST: curl must fail with exit 7 (refused) in under 3 s.
refused() {
  local name=$1 dst=$2 t0 rc=0
  t0=$(date +%s%N)
  in_app curl -sS --max-time 10 "http://$dst:81/" >/dev/null 2>"$VT_TMP/refused.err" || rc=$?
  local ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  [ $rc -eq 7 ] || fail "$name: closed port $dst:81 gave curl exit $rc after ${ms} ms, want 7 (refused): $(cat "$VT_TMP/refused.err")"
  [ $ms -lt 3000 ] || fail "$name: refusal from $dst:81 took ${ms} ms"
  log "$name: closed port $dst:81 refused in ${ms} ms"
}
stop_tun() {
  local rc=0
  stop_pid "$TB_TUN_PID" 10 || rc=$?
  [ $rc -eq 0 ] || fail "$1: vless-tun exited $rc on SIGTERM"
  ip -n "$TB_APP" link show vt0 >/dev/null 2>&1 && fail "$1: vt0 still exists after exit"
  return 0
}

tb_tun_start tun-v1 1 true wait
pages "v1 wait (mux) -> vless-server"
refused "v1 wait (mux)" "$TB_WEB4"
refused "v1 wait (mux)" "[$TB_WEB6]"
stop_tun "v1 wait (mux)"
# Every flow was a stream of one Mux connection: its line counts them.
wait_log "$VT_TMP/vless-server.log" "conn #[0-9]+ peer=198\.18\.0\.1:[0-9]+ user=it-user target=198\.18\.1\.2:80 .* mux=[0-9]+/[0-9]+" 5
wait_log "$VT_TMP/vless-server.log" "conn #[0-9]+ peer=198\.18\.0\.1:[0-9]+ user=it-user target=mux .* streams=4 refused=0 smux=v2" 5
log "v1 wait (mux): 4 streams on one mux connection"

TB_TUN_EXTRA="[mux]
enabled = false" tb_tun_start tun-v1-flows 1 true wait
pages "v1 wait (a connection per flow) -> vless-server"
refused "v1 wait (a connection per flow)" "$TB_WEB4"
stop_tun "v1 wait (a connection per flow)"

tb_tun_start tun-v0 0 true immediate
pages "v0 immediate -> vless-server"
# Immediate mode has answered the SYN already: the failure shows as a reset
# or an empty reply, but it must come quickly, not hang.
rc=0; in_app curl -sS --max-time 10 "http://$TB_WEB4:81/" >/dev/null 2>&1 || rc=$?
[ $rc -ne 0 ] && [ $rc -ne 28 ] || fail "v0 immediate: closed port gave curl exit $rc (0 or 28 = timeout)"
log "v0 immediate: closed port fails with curl exit $rc"
stop_tun "v0 immediate"

tb_tun_start tun-v2ray 0 true immediate 8443
pages "v0 immediate -> v2ray"
stop_tun "v0 -> v2ray"
log "PASS"
