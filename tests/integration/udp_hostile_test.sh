#!/usr/bin/env bash
# app (1 UDP socket) --vt0--> vless-tun --v1 separated|classic/TLS--> tools/udp_fake_server.py (ns srv 198.18.0.2:443: echoes for port 7001, hostile framing for 7002-7004)
#
# Hostile framing from the server closes that channel only, never reaches
# the app and never stops vless-tun: between well-behaved echoes (port 7001,
# each answered exactly once, from 198.18.1.2:7001) the same app socket hits
# channels that answer with an unknown FLAG / ATYP, a name as a FLAG 1
# source or an oversize LEN, and half a frame then EOF. The app receives
# nothing from those, vless-tun warns about each malformed one (the EOF in
# mid-frame is logged as a closed connection), reopens on the next
# datagram, and exits 0 on SIGTERM. Separated and classic mode (in classic
# one connection carries every destination, so the good echo after a bad
# one proves the reopen).
source "$(dirname "$0")/lib.sh"
source "$VT_TOOLS/testbed.sh"
source "$VT_TOOLS/udp_bed.sh"
: "${VT_TUN:?path to vless-tun}"
require_root
require_cmd python3 openssl ip
T0=$(date +%s)

tb_setup uhost
start fake-server ip netns exec "$TB_SRV" python3 "$VT_TOOLS/udp_fake_server.py" --listen "$TB_SRV4:443" \
  --cert "$VT_TMP/server.pem" --key "$VT_TMP/server.key" --uuid "$TB_UUID" --max-seconds 120
wait_port "$TB_SRV4" 443 10 "$TB_SRV"

G=198.18.1.2:7001
for mode in separated classic; do
  ub_tun_start "tun-$mode" 1 443 "[udp]
mode = \"$mode\""
  out="$VT_TMP/steps-$mode.txt"
  in_app timeout 60 python3 "$UB_PROBE" steps --wait 1 \
    --step "$G=good-1" --step "198.18.1.2:7002=bad-flag" \
    --step "$G=good-2" --step "198.18.1.2:7003=bad-source" \
    --step "$G=good-3" --step "198.18.1.2:7004=half-frame" \
    --step "$G=good-4" --step "198.18.1.2:7002=bad-flag-again" \
    --step "$G=good-5" >"$out" || fail "$mode: the probe failed: $(cat "$out")"
  for i in 1 2 3 4 5; do
    step=$((2 * i - 1))
    got=$(grep "^step $step " "$out")
    [ "$got" = "step $step to=$G from=$G msg=good-$i" ] ||
      fail "$mode: good echo $i: want one answer from $G, got: $(tr '\n' ';' <<<"$got")"
  done
  bad=$(grep -E "^step (2|4|6|8) .* from=" "$out") && fail "$mode: hostile frames reached the app: $bad"
  kill -0 "$TB_TUN_PID" || fail "$mode: vless-tun died"
  ub_tun_stop "$mode"
  warns=$(grep -cE "WARN .*udp #[0-9]+/[0-9]+ to .*: malformed framing from the server" "$TB_TUN_LOG" || true)
  # separated: FLAG 7 twice and the name as a FLAG 1 source. classic: ATYP 9
  # twice (its LEN 65535 datagram decodes, is too big for UDP and is counted
  # as a drop). 7004's EOF in mid-frame is only a closed connection (DEBUG,
  # reason=server_closed), its half datagram lost.
  want=3
  [ $mode = classic ] && want=2
  [ "$warns" -eq $want ] || fail "$mode: want $want malformed-framing warnings, got $warns: $(grep WARN "$TB_TUN_LOG" | tr '\n' ';')"
  grep -Eq "DEBUG .*udp #[0-9]+/[0-9]+ .*closed: .*reason=server_closed" "$TB_TUN_LOG" ||
    fail "$mode: the connection that ended mid-frame was not logged as closed"
  log "$mode: 5 good echoes answered, hostile ones dropped; vless-tun warned:"
  grep -E "WARN .*udp #" "$TB_TUN_LOG" | sed 's/^[^ ]* WARN  /    /' | sort | uniq -c | sed 's/^/  /'
done
log "fake server: $(grep -c '^conn' "$VT_TMP/fake-server.log") connections: $(sort "$VT_TMP/fake-server.log" | uniq -c | tr '\n' ';')"
log "PASS in $(( $(date +%s) - T0 )) s"
