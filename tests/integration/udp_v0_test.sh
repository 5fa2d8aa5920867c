#!/usr/bin/env bash
# app (1 UDP socket) --vt0--> vless-tun --VLESS v0 over TLS--> v2ray (ns srv, 198.18.0.2:8443, source 198.18.9.1) --> web 198.18.1.2, web2 198.18.3.2; web3 198.18.4.2 --> ? --> app
#
# The same NAT probe as udp_nat_test.sh, over v0 (server.version = 0, udp
# mode "v0") against v2ray's VLESS server. v0 carries one destination per
# connection, so it cannot give a full cone; this test pins down what it does
# give and prints it as "v0 limits: ...":
#  - each reflector answers (v0 carries UDP both ways, IPv4 and IPv6);
#  - each destination gets its own server socket: the reflectors see
#    DIFFERENT ports (address-dependent mapping);
#  - web3, never contacted, sends to the first reflector's mapping: the app
#    never sees web3's address and web3 gets no answer. (v2ray 4.x passes the
#    datagram down the first reflector's connection, and with no source
#    address in the v0 framing the app sees it as from that reflector: the
#    test reports which of the two happened.)
#  - nothing crashed: vless-tun and v2ray still carry a normal UDP echo and a
#    TCP page afterwards, and vless-tun exits 0 on SIGTERM.
source "$(dirname "$0")/lib.sh"
source "$VT_TOOLS/testbed.sh"
source "$VT_TOOLS/udp_bed.sh"
: "${VT_TUN:?path to vless-tun}"
require_root
require_cmd python3 openssl ip v2ray curl
PORT=7100
T0=$(date +%s)

tb_setup uv0
ub_extend
ub_reflectors $PORT
mkdir -p "$VT_TMP/www"
echo "v0 page" >"$VT_TMP/www/index.html"
start http ip netns exec "$TB_WEB" python3 -m http.server 80 --bind :: --directory "$VT_TMP/www"
wait_port "$TB_WEB4" 80 10 "$TB_WEB"
tb_v2ray_server_start 8443 yes
ub_tun_start tun-v0 0 8443 '[udp]
mode = "v0"'

wait_exit() {
  local pid=$1 deadline=$(( $(date +%s) + $2 )) rc=0
  while kill -0 "$pid" 2>/dev/null; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "process $pid still runs after $2 s"
    sleep 0.05
  done
  wait "$pid" || rc=$?
  return $rc
}

LIMITS=()
# v0_nat LABEL R1 R2 W3
v0_nat() {
  local label=$1 r1=$2 r2=$3 w3=$4 out="$VT_TMP/obs-$1" nlog pid got m1 m2
  start "nat-$label" ip netns exec "$TB_APP" python3 "$UB_PROBE" nat \
    --target "$r1:$PORT" --target "$r2:$PORT" --out "$out" --wait 6
  pid=$(last_pid) nlog="$VT_TMP/nat-$label.log"
  local deadline=$(( $(date +%s) + 15 ))
  until [ -f "$out" ]; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "$label: the app learned no mapping in 15 s"
    sleep 0.05
  done
  grep -q ' none$' "$nlog" && fail "$label: a reflector did not answer over v0: $(grep '^seen' "$nlog" | tr '\n' ';')"
  m1=$(grep -F "seen $r1:$PORT " "$nlog" | cut -d' ' -f3)
  m2=$(grep -F "seen $r2:$PORT " "$nlog" | cut -d' ' -f3)
  [ "${m1##*:}" != "${m2##*:}" ] ||
    fail "$label: v0 gave one port ($m1, $m2) for two destinations; the v0 framing has no session to share one"
  # web3 sends to the first mapping; the app must not hear it (v2ray's socket
  # for R1 is connected to R1, and vless-tun's v0 replies come from R1 only).
  got=$(in_web3 python3 "$UB_PROBE" poke --target "$m1" --msg "hello-from-web3-$label" --timeout 3) || true
  wait_exit "$pid" 15 || fail "$label: the app probe failed ($?)"
  [ "$got" = "reply none" ] || fail "$label: web3 got an answer over v0: $got"
  grep -q '^got none$' "$nlog" || fail "$label: the app heard from a never-contacted host: $(grep '^got' "$nlog")"
  # v0 framing carries no source address: whatever comes down a connection
  # is, for vless-tun, from that connection's destination. v2ray 4.x's
  # freedom socket is not connected, so it does pass web3's datagram down
  # r1's connection; the app then sees it as from r1 and cannot answer web3.
  local fate="dropped before the app"
  if grep -qxF "stray from=$r1:$PORT msg=b'hello-from-web3-$label'" "$nlog"; then
    fate="delivered to the app as if from $r1:$PORT (v0 carries no source), unanswerable"
  fi
  grep -F "from=[$w3]:" "$nlog" && fail "$label: v0 showed the app web3's address"
  grep -F "from=$w3:" "$nlog" && fail "$label: v0 showed the app web3's address"
  grep "hello-from-web3" "$nlog" | grep -vF "stray from=$r1:$PORT " &&
    fail "$label: web3's datagram surfaced from an unexpected source"
  LIMITS+=("$label: $r1 saw $m1, $r2 saw $m2 (mapping per destination); web3 -> $m1: $fate; web3 got no reply")
  log "$label: $(grep '^seen' "$nlog" | tr '\n' ' '); web3: $got"
}

v0_nat v4 198.18.1.2 198.18.3.2 198.18.4.2
v0_nat v6 "[2001:db8:1::2]" "[2001:db8:3::2]" 2001:db8:4::2

# Nothing crashed: a normal echo (1..1472 bytes) and a page still pass.
got=$(in_app python3 "$UB_PROBE" echo --target "198.18.1.2:$PORT" --count 500 --min-size 1 --max-size 1472 --timeout 20) ||
  fail "echo over v0 after the NAT probe: $got"
log "after: $got"
# An empty datagram: v0 frames it (LEN 0), but v2ray does not pass it on.
# Which side lost it: the reflector logs every datagram it gets (its first 20).
rc=0
got=$(in_app python3 "$UB_PROBE" echo --target "198.18.3.2:$PORT" --count 1 --max-size 0 --stall 1 --timeout 3) || rc=$?
if [ $rc -eq 0 ]; then
  LIMITS+=("0-byte datagram: echoed")
elif grep -q "from $UB_PUB4:[0-9]* len 0$" "$VT_TMP/reflect-web2.log"; then
  LIMITS+=("0-byte datagram: reached the reflector, its empty echo lost on the way back (v2ray)")
else
  LIMITS+=("0-byte datagram: never reached the reflector (v2ray does not send empty payloads)")
fi
kill -0 "$TB_TUN_PID" || fail "vless-tun died after an empty datagram"
page=$(in_app curl -sS --max-time 10 "http://$TB_WEB4/") || fail "curl over v0 after the NAT probe failed"
[ "$page" = "v0 page" ] || fail "wrong page: $page"
kill -0 "$TB_V2RAY_SERVER_PID" || fail "v2ray died"
ub_tun_stop v0
grep -Eq "udp #[0-9]+ app=198\.18\.2\.1:[0-9]+ mode=v0 channels=2 " "$TB_TUN_LOG" ||
  fail "no v0 session line with channels=2: $(grep 'udp #' "$TB_TUN_LOG" | tr '\n' ';')"
for l in "${LIMITS[@]}"; do echo "v0 limits: $l"; done
log "PASS in $(( $(date +%s) - T0 )) s"
