#!/usr/bin/env bash
# app (1 UDP socket) --vt0--> vless-tun --v1 separated/TLS--> vless-server (ns srv, NAT 198.18.9.1) --> web 198.18.1.2, web2 198.18.3.2; web3 198.18.4.2 (never contacted) --> 198.18.9.1:P --> app
#
# The NAT vless-tun + vless-server give an app, in the spirit of RFC 5780
# (mux, the default: one SimpleSocks UDP stream per app socket; and the
# separated and classic modes): from ONE app socket, two reflectors with
# different addresses see the same source ip:port (endpoint-independent
# mapping); a third host that the app never contacted sends to that ip:port,
# the app receives it with the third host's real source address, and the
# app's answer reaches the third host from the same ip:port
# (endpoint-independent filtering: full cone). IPv4 and IPv6; the classic
# mode gives the same from its one connection per app socket.
source "$(dirname "$0")/lib.sh"
source "$VT_TOOLS/testbed.sh"
source "$VT_TOOLS/udp_bed.sh"
: "${VT_SERVER:?path to vless-server}" "${VT_TUN:?path to vless-tun}"
require_root
require_cmd python3 openssl ip
PORT=7100
T0=$(date +%s)

tb_setup unat
ub_extend
ub_reflectors $PORT
tb_server_start

# wait_exit PID SECONDS: waits for one of our processes to end; its status.
wait_exit() {
  local pid=$1 deadline=$(( $(date +%s) + $2 )) rc=0
  while kill -0 "$pid" 2>/dev/null; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "process $pid still runs after $2 s"
    sleep 0.05
  done
  wait "$pid" || rc=$?
  return $rc
}

# full_cone LABEL R1 R2 W3 PUB: the whole check for one family.
full_cone() {
  local label=$1 r1=$2 r2=$3 w3=$4 pub=$5 out="$VT_TMP/obs-$1" obs nlog pid rc=0 got
  start "nat-$label" ip netns exec "$TB_APP" python3 "$UB_PROBE" nat \
    --target "$r1:$PORT" --target "$r2:$PORT" --out "$out" --wait 10
  pid=$(last_pid) nlog="$VT_TMP/nat-$label.log"
  local deadline=$(( $(date +%s) + 15 ))
  until [ -f "$out" ]; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "$label: the app learned no mapping in 15 s"
    sleep 0.05
  done
  grep -q ' none$' "$nlog" && fail "$label: a reflector did not answer through the tunnel: $(grep '^seen' "$nlog")"
  [ "$(wc -l <"$out")" -eq 1 ] ||
    fail "$label: mapping depends on the destination (want one ip:port): $(grep '^seen' "$nlog" | tr '\n' ';')"
  obs=$(cat "$out")
  [[ "$obs" == "$pub":* ]] || fail "$label: observed $obs, want the server's address $pub"
  log "$label: endpoint-independent mapping: $(grep '^seen' "$nlog" | tr '\n' ' ')"
  got=$(in_web3 python3 "$UB_PROBE" poke --target "$obs" --msg "hello-from-web3-$label" --timeout 5) ||
    fail "$label: web3's datagram to $obs was not answered by the app: $got; app: $(tail -3 "$nlog")"
  [ "$got" = "reply from=$obs msg=REPLY hello-from-web3-$label" ] ||
    fail "$label: web3 got '$got', want the app's reply from $obs"
  wait_exit "$pid" 15 || fail "$label: the app probe failed ($?)"
  local w3re=${w3//./\\.}
  grep -Eq "^got from=\[?$w3re\]?:[0-9]+ msg=hello-from-web3-$label$" "$nlog" ||
    fail "$label: the app did not see web3's real source: $(grep '^got' "$nlog")"
  log "$label: endpoint-independent filtering: $(grep '^got' "$nlog" | cut -c1-80); web3 $got"
  LOCAL_PORT=$(sed -n 's/^local port //p' "$nlog")
  OBS_PORT=${obs##*:}
}

for mode in mux separated classic; do
  ub_tun_start "tun-$mode" 1 443 "[udp]
mode = \"$mode\""
  full_cone "$mode-v4" 198.18.1.2 198.18.3.2 198.18.4.2 $UB_PUB4
  p4=$LOCAL_PORT o4=$OBS_PORT
  full_cone "$mode-v6" "[2001:db8:1::2]" "[2001:db8:3::2]" 2001:db8:4::2 "[$UB_PUB6]"
  p6=$LOCAL_PORT o6=$OBS_PORT
  ub_tun_stop "$mode"
  # The session lines: one per app socket, 3 remotes; the server's NAT port is the observed one.
  case $mode in
    separated) want=3 smode=multi ;;
    classic) want=1 smode=classic ;;
    mux) want=1 smode=mux ;;
  esac
  for pp in "198\.18\.2\.1:$p4" "\[2001:db8:2::1\]:$p6"; do
    grep -Eq "udp #[0-9]+ app=$pp mode=$mode channels=$want up=[1-9][0-9]*/[0-9]+ down=[1-9][0-9]*/[0-9]+ drops=0 " "$TB_TUN_LOG" ||
      fail "$mode: no session line for app $pp with channels=$want, drops=0: $(grep 'udp #' "$TB_TUN_LOG" | tr '\n' ';')"
  done
  if [ $mode = separated ]; then
    # (a classic connection has a private socket: its log names no NAT port)
    wait_log "$VT_TMP/vless-server.log" "udp conn #[0-9]+ .*mode=$smode .*nat=[^ ]*:$o4 " 5
    wait_log "$VT_TMP/vless-server.log" "udp conn #[0-9]+ .*mode=$smode .*nat=[^ ]*:$o6 " 5
  else
    wait_log "$VT_TMP/vless-server.log" "udp conn #[0-9]+ .*mode=$smode " 5
  fi
  log "$mode: session lines in vless-tun's log; vless-server logged its $smode connections (NAT ports $o4 / $o6)"
done
ub_server_stop
log "PASS in $(( $(date +%s) - T0 )) s"
