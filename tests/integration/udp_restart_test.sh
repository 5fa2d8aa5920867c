#!/usr/bin/env bash
# app (1 UDP socket, a ping every 100 ms) --vt0--> vless-tun --v1 separated|classic/TLS--> vless-server (ns srv; stopped, then started again) --> reflector (ns web 198.18.1.2:7300)
#
# A UDP channel whose server connection goes away is reopened on the app's
# next datagram: the app keeps ONE socket across a restart of vless-server,
# its pings fail while the server is down (dropped and counted, never
# queued without bound), and once the server is back the pings are
# answered again without the app doing anything. Separated and classic
# mode; vless-tun and vless-server exit 0 afterwards.
source "$(dirname "$0")/lib.sh"
source "$VT_TOOLS/testbed.sh"
source "$VT_TOOLS/udp_bed.sh"
: "${VT_SERVER:?path to vless-server}" "${VT_TUN:?path to vless-tun}"
require_root
require_cmd python3 openssl ip
PORT=7300
T0=$(date +%s)

tb_setup urst
start reflect-web ip netns exec "$TB_WEB" python3 "$UB_PROBE" reflect --port $PORT --max-seconds 240
ub_wait_reflector "$TB_SRV" 198.18.1.2 $PORT

wait_exit() {
  local pid=$1 deadline=$(( $(date +%s) + $2 )) rc=0
  while kill -0 "$pid" 2>/dev/null; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "process $pid still runs after $2 s"
    sleep 0.05
  done
  wait "$pid" || rc=$?
  return $rc
}

wait_file() {
  local deadline=$(( $(date +%s) + $2 ))
  until [ -e "$1" ]; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.05
  done
}

for mode in separated classic; do
  tb_server_start "server-$mode-1"
  ub_tun_start "tun-$mode" 1 443 "[udp]
mode = \"$mode\"
[limits]
connect_timeout = \"2s\""
  marker="$VT_TMP/marker-$mode" ready="$VT_TMP/ready-$mode"
  # The pings run until 6 s after the server is back (40 s at most); the
  # server goes down only once 10 of them were answered, so a slow machine
  # shifts the schedule instead of failing it.
  start "ping-$mode" ip netns exec "$TB_APP" python3 "$UB_PROBE" pingloop --target 198.18.1.2:$PORT \
    --seconds 40 --interval 0.1 --marker "$marker" --ready "$ready" --ready-after 10 \
    --tail 6 --settle 2.5
  pid=$(last_pid)
  wait_file "$ready" 30 || fail "$mode: no 10 answers within 30 s before the restart"
  ub_server_stop "server-$mode-1"
  log "$mode: vless-server stopped under the pings"
  sleep 1
  tb_server_start "server-$mode-2"
  touch "$marker"
  log "$mode: vless-server started again"
  wait_exit "$pid" 45 || fail "$mode: the ping probe failed"
  res=$(cat "$VT_TMP/ping-$mode.log")
  read -r sent replies after at ssent sreplies <<<"$(sed -n 's/^pings sent=\([0-9]*\) replies=\([0-9]*\) after_marker=\([0-9]*\) marker_at=\([0-9]*\) settled_sent=\([0-9]*\) settled_replies=\([0-9]*\)$/\1 \2 \3 \4 \5 \6/p' "$VT_TMP/ping-$mode.log")"
  [ -n "$sreplies" ] || fail "$mode: no result from the ping probe: $res"
  # A channel that failed waits before the next try (200 ms doubling to
  # 2 s), so the pings of the first 2.5 s after the restart may go
  # unanswered; every ping after that is answered (two lost at most).
  [ "$ssent" -ge 25 ] || fail "$mode: only $ssent pings after the settling time ($res)"
  [ "$sreplies" -ge $(( ssent - 2 )) ] ||
    fail "$mode: after the restart only $sreplies of $ssent pings were answered ($res)"
  [ "$after" -ge "$sreplies" ] || fail "$mode: inconsistent probe counts ($res)"
  [ "$(( replies - after ))" -ge 10 ] || fail "$mode: too few answers before the restart ($res)"
  log "$mode: $res"
  ub_tun_stop "$mode"
  line=$(grep -E "udp #[0-9]+ app=198\.18\.2\.1:[0-9]+ mode=$mode " "$TB_TUN_LOG") ||
    fail "$mode: no session line: $(grep 'udp #' "$TB_TUN_LOG")"
  log "$mode: $line"
  grep -Eq "udp #[0-9]+/[0-9]+ .*(server connection|closed|failed)" "$TB_TUN_LOG" ||
    fail "$mode: nothing logged about the lost server connection"
  ub_server_stop "server-$mode-2"
done
log "PASS in $(( $(date +%s) - T0 )) s"
