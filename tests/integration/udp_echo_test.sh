#!/usr/bin/env bash
# app (udp_probe echo) --vt0 (MTU 1500)--> vless-tun --v1 mux|separated|classic, v0 /TLS--> vless-server (ns srv) --> reflector (ns web 198.18.1.2:7200, [2001:db8:1::2]:7200)
#
# 10,000 IPv4 datagrams of every size from 0 to the path maximum (1472 =
# 1500 - 20 - 8) and 300 IPv6 ones up to 1452 (1500 - 40 - 8) echo back
# intact (content checked against what is outstanding) and in count, at most
# 64 outstanding, 60 s at most per run; any loss fails (the tunnel runs over
# TCP: at this pace it must lose none). Mux (the default), separated, classic, then
# v0 (server.version = 0) against the same vless-server. The
# session lines in vless-tun's log count exactly those datagrams and bytes.
# Then 60 datagrams each from just past the path maximum to UDP's largest
# (65507 / 65527): IP fragments both ways through the TUN.
source "$(dirname "$0")/lib.sh"
source "$VT_TOOLS/testbed.sh"
source "$VT_TOOLS/udp_bed.sh"
: "${VT_SERVER:?path to vless-server}" "${VT_TUN:?path to vless-tun}"
require_root
require_cmd python3 openssl ip
PORT=7200 N4=10000 MAX4=1472 N6=300 MAX6=1452
T0=$(date +%s)

tb_setup uecho
start reflect-web ip netns exec "$TB_WEB" python3 "$UB_PROBE" reflect --port $PORT --max-seconds 240
ub_wait_reflector "$TB_SRV" 198.18.1.2 $PORT
tb_server_start

# udp_errors: the kernels' UDP receive-buffer drop counters in srv and web
# (a loss there is the sockets', not the tunnel's).
udp_errors() {
  local ns
  for ns in "$TB_SRV" "$TB_WEB"; do
    printf '%s: Udp RcvbufErrors=%s Udp6RcvbufErrors=%s; ' "${ns##*-}" \
      "$(ip netns exec "$ns" awk '/^Udp:/ && $2 ~ /^[0-9]/ {print $6}' /proc/net/snmp)" \
      "$(ip netns exec "$ns" awk '$1 == "Udp6RcvbufErrors" {print $2}' /proc/net/snmp6)"
  done
}
# bytes N MAX: the payload bytes the probe sends for N datagrams.
bytes() { python3 -c "print(sum(i % ($2 + 1) for i in range($1)))"; }
B4=$(bytes $N4 $MAX4) B6=$(bytes $N6 $MAX6)

for mode in mux separated classic v0; do
  version=1
  [ $mode = v0 ] && version=0
  ub_tun_start "tun-$mode" $version 443 "[udp]
mode = \"$mode\""
  t=$(date +%s%N)
  out=$(in_app timeout 90 python3 "$UB_PROBE" echo --target "198.18.1.2:$PORT" --count $N4 --max-size $MAX4 \
    --window 64 --timeout 60) || fail "$mode IPv4: $out; $(udp_errors)"
  log "$mode IPv4 0..$MAX4 bytes: $out ($(( ($(date +%s%N) - t) / 1000000 )) ms)"
  out=$(in_app timeout 60 python3 "$UB_PROBE" echo --target "[2001:db8:1::2]:$PORT" --count $N6 --max-size $MAX6 \
    --window 64 --timeout 30) || fail "$mode IPv6: $out; $(udp_errors)"
  log "$mode IPv6 0..$MAX6 bytes: $out"
  # Past the path maximum the app's kernel fragments; vless-tun reassembles
  # and fragments the echo on the way back. Up to UDP's largest payloads.
  out=$(in_app timeout 60 python3 "$UB_PROBE" echo --target "198.18.1.2:$PORT" --count 60 --spread \
    --min-size $((MAX4 + 1)) --max-size 65507 --window 2 --timeout 30) || fail "$mode IPv4 fragmented: $out; $(udp_errors)"
  log "$mode IPv4 $((MAX4 + 1))..65507 bytes (fragmented): $out"
  out=$(in_app timeout 60 python3 "$UB_PROBE" echo --target "[2001:db8:1::2]:$PORT" --count 60 --spread \
    --min-size $((MAX6 + 1)) --max-size 65527 --window 2 --timeout 30) || fail "$mode IPv6 fragmented: $out; $(udp_errors)"
  log "$mode IPv6 $((MAX6 + 1))..65527 bytes (fragmented): $out"
  ub_tun_stop "$mode"
  grep -Eq "udp #[0-9]+ app=198\.18\.2\.1:[0-9]+ mode=$mode channels=1 up=$N4/$B4 down=$N4/$B4 drops=0 " "$TB_TUN_LOG" ||
    fail "$mode: want a session line up=down=$N4/$B4 drops=0: $(grep 'udp #' "$TB_TUN_LOG" | tr '\n' ';')"
  grep -Eq "udp #[0-9]+ app=\[2001:db8:2::1\]:[0-9]+ mode=$mode channels=1 up=$N6/$B6 down=$N6/$B6 drops=0 " "$TB_TUN_LOG" ||
    fail "$mode: want an IPv6 session line up=down=$N6/$B6 drops=0: $(grep 'udp #' "$TB_TUN_LOG" | tr '\n' ';')"
  log "$mode: session lines count $N4/$B4 and $N6/$B6 both ways, no drops"
done
ub_server_stop
log "PASS in $(( $(date +%s) - T0 )) s"
