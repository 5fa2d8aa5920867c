#!/usr/bin/env bash
# flows.py burst (ns app, 500 connections at once) --vt0--> vless-tun --VLESS v1/TLS--> vless-server (ns srv) --> flows.py server (ns web)
# Proves 500 simultaneous connections through the TUN all connect and
# complete a request/answer, within a bound, and each is logged once closed.
source "$(dirname "$0")/lib.sh"
source "$VT_TOOLS/testbed.sh"
: "${VT_SERVER:?path to vless-server}" "${VT_TUN:?path to vless-tun}"
require_root
require_cmd python3 openssl
n=${VT_CONNS:-500}

tb_setup conc
start flows ip netns exec "$TB_WEB" python3 "$VT_TOOLS/flows.py" server --port 7000
wait_port "$TB_WEB4" 7000 10 "$TB_WEB"
# 500 TLS handshakes at once take longer than the default 10 s on 2 cores in
# a sanitizer build (both ends); this test is about all of them completing.
tb_server_start vless-server yes 'handshake_timeout = "90s"'
tb_tun_start tun 1 true wait 443 'connect_timeout = "90s"'

for dst in "$TB_WEB4" "[$TB_WEB6]"; do
  log "$n connections at once to $dst"
  out=$(in_app timeout 150 python3 "$VT_TOOLS/flows.py" burst --target "$dst:7000" --n "$n" --timeout 100) ||
    fail "burst to $dst: $out"
  log "burst to $dst: $out"
done
# Every one of the 2n flows is logged once it has closed.
deadline=$(( $(date +%s) + 20 ))
while [ "$(grep -c 'flow #.*dst=.*:7000 ' "$TB_TUN_LOG")" -lt $((2 * n)) ]; do
  [ "$(date +%s)" -lt "$deadline" ] ||
    fail "only $(grep -c 'flow #.*dst=.*:7000 ' "$TB_TUN_LOG") of $((2 * n)) flow lines logged"
  sleep 0.1
done
grep 'flow #.*dst=.*:7000 ' "$TB_TUN_LOG" | sed -n 's/.*reason=\([^ ]*\).*/\1/p' | sort | uniq -c |
  while read -r c r; do log "  $c flows closed with reason=$r"; done
kill -0 "$TB_TUN_PID" || fail "vless-tun died"
log "PASS"
