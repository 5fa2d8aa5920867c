#!/usr/bin/env bash
# lan1 198.18.6.2 --veth1--+
#                          [router = ns app: vless-tun, [route.gateway] interfaces = veth1, veth2;
# lan2 198.18.7.2 --veth2--+  default via ns srv]  --veth0 (uplink)--  srv 198.18.0.2 (vless-server :443, forwards) -- web, web2, web3
# (v6: 2001:db8:6::/64, 2001:db8:7::/64; router 198.18.6.1 / 198.18.7.1 / ::1 on each)
#
# Gateway mode: vless-tun on a router carries whole LANs. ns srv forwards and
# routes the LANs back to the router, so anything of a LAN host that left
# around the tunnel WOULD work and is seen on the uplink. Proves:
#  1. the LAN host's curl over IPv4 and IPv6 goes through the tunnel (flow
#     lines with the LAN host's address; the web server sees ns srv);
#  2. the UDP full-cone check (udp_nat_test's) passes for the LAN host, v4 and v6;
#  3. the LAN host's DNS is hijacked like local queries (dns_test's probe):
#     UDP to a resolver address that exists nowhere (v4, v6), to the real
#     resolver, TCP; queries to the router's own address reach the router's
#     resolver (dnsmasq here), whose upstream queries are hijacked in turn;
#  4. management traffic is untouched and not tunnelled: LAN host -> router
#     (its LAN and its uplink address), router -> LAN host, lan1 -> lan2,
#     with their real source addresses and no flow line;
#  5. during 1-4 the uplink carries nothing but the tunnel's TCP to
#     198.18.0.2:443 (no packet of a LAN address, nothing else); the sniffer
#     is first shown to see a LAN host's direct traffic;
#  6. `ip rule`, `ip -6 rule`, the route tables and the forwarding/rp_filter
#     sysctls are as before after SIGTERM, and after SIGKILL + restart + SIGTERM.
source "$(dirname "$0")/lib.sh"
source "$VT_TOOLS/testbed.sh"
source "$VT_TOOLS/udp_bed.sh"
: "${VT_SERVER:?path to vless-server}" "${VT_TUN:?path to vless-tun}"
require_root
require_cmd python3 openssl ip curl dnsmasq
T0=$(date +%s)
PORT=7100 ECHO_PORT=7000 LISTEN_PORT=7001
RESOLVER=198.18.1.53 FAKE4=198.18.9.53 FAKE6=2001:db8:9::53
R1_4=198.18.6.1 R1_6=2001:db8:6::1 L1_4=198.18.6.2 L1_6=2001:db8:6::2
R2_4=198.18.7.1 R2_6=2001:db8:7::1 L2_4=198.18.7.2 L2_6=2001:db8:7::2
GW_SNIFF="$VT_TOOLS/gw_sniff.py" PROBE="$VT_TOOLS/autoroute_probe.py"

tb_setup gw
ub_extend
RTR=$TB_APP
LAN1="${TB_APP%-app}-lan1" LAN2="${TB_APP%-app}-lan2"
in_rtr() { ip netns exec "$RTR" "$@"; }
in_lan1() { ip netns exec "$LAN1" "$@"; }
netns_add "$LAN1"
netns_add "$LAN2"
ip -n "$RTR" link add veth1 type veth peer name veth0 netns "$LAN1"
ip -n "$RTR" link add veth2 type veth peer name veth0 netns "$LAN2"
addr() { ip -n "$1" addr add "$3" dev "$2" ${4:-}; ip -n "$1" link set "$2" up; }
addr "$RTR" veth1 $R1_4/24; addr "$RTR" veth1 $R1_6/64 nodad
addr "$RTR" veth2 $R2_4/24; addr "$RTR" veth2 $R2_6/64 nodad
addr "$LAN1" veth0 $L1_4/24; addr "$LAN1" veth0 $L1_6/64 nodad
addr "$LAN2" veth0 $L2_4/24; addr "$LAN2" veth0 $L2_6/64 nodad
for ns in "$LAN1" "$LAN2"; do
  gw4=$R1_4 gw6=$R1_6
  [ "$ns" = "$LAN2" ] && gw4=$R2_4 gw6=$R2_6
  ip -n "$ns" route add default via $gw4
  ip -n "$ns" -6 route add default via $gw6
done
# The router: only a default route towards ns srv; strict reverse-path
# filtering, as many distributions set it.
ip -n "$RTR" route add default via $TB_SRV4
ip -n "$RTR" -6 route add default via $TB_SRV6
in_rtr sysctl -qw net.ipv4.conf.all.rp_filter=1 net.ipv4.conf.default.rp_filter=1
# ns srv forwards and routes the LANs back: a leak would work.
in_srv sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
for n in 6 7; do
  ip -n "$TB_SRV" route add 198.18.$n.0/24 via 198.18.0.1
  ip -n "$TB_SRV" -6 route add 2001:db8:$n::/64 via 2001:db8::1
done
ip -n "$TB_SRV" route add 198.18.2.0/30 via 198.18.0.1

# ---- services: web (HTTP), reflectors, dnsmasq (ns web), listeners
mkdir -p "$VT_TMP/www"
echo "gateway page" >"$VT_TMP/www/page"
for p in baseline gw-v4 gw-v6 recovered; do ln -s page "$VT_TMP/www/$p"; done
start web ip netns exec "$TB_WEB" python3 -u -m http.server 80 --bind :: --directory "$VT_TMP/www"
ub_reflectors $PORT
ip -n "$TB_WEB" addr add $RESOLVER/32 dev veth0
ip -n "$TB_SRV" route add $RESOLVER/32 dev veth1
QLOG="$VT_TMP/dnsmasq-queries.txt"
start dnsmasq ip netns exec "$TB_WEB" dnsmasq --keep-in-foreground --conf-file=/dev/null --pid-file= \
  --user=root --group=root --no-resolv --no-hosts --port 53 --listen-address=$RESOLVER --bind-interfaces \
  --address=/example.test/198.18.1.2 --address=/example.test/2001:db8:1::2 --local-ttl=60 \
  --log-queries --log-facility="$QLOG"
# The router's own resolver, for LAN hosts that use the router as their DNS
# server: its upstream (198.18.9.53) exists nowhere; vless-tun hijacks it.
start router-dns ip netns exec "$RTR" dnsmasq --keep-in-foreground --conf-file=/dev/null --pid-file= \
  --user=root --group=root --no-resolv --no-hosts --port 53 --server=$FAKE4 --no-negcache \
  --listen-address=$R1_4 --listen-address=$R1_6 --bind-interfaces --cache-size=0
start lan1-listener ip netns exec "$LAN1" python3 "$PROBE" serve --port $ECHO_PORT
start lan2-listener ip netns exec "$LAN2" python3 "$PROBE" serve --port $ECHO_PORT
start rtr-listener ip netns exec "$RTR" python3 "$PROBE" serve --port $LISTEN_PORT
wait_port $TB_WEB4 80 10 "$TB_WEB"
wait_port $RESOLVER 53 10 "$TB_SRV"
wait_port $L1_4 $ECHO_PORT 10 "$LAN1"
wait_port $L2_4 $ECHO_PORT 10 "$LAN2"
wait_port $R1_4 $LISTEN_PORT 10 "$RTR"
wait_port $R1_4 53 10 "$RTR"
tb_server_start

# ---- helpers
snapshot() {
  { ip -n "$RTR" rule; echo "-- v6 rules"; ip -n "$RTR" -6 rule
    echo "-- v4 routes"; ip -n "$RTR" route show table all
    echo "-- v6 routes"; ip -n "$RTR" -6 route show table all
    echo "-- sysctls"
    in_rtr sysctl net.ipv4.ip_forward net.ipv6.conf.all.forwarding net.ipv4.conf.all.forwarding \
      net.ipv4.conf.veth1.forwarding net.ipv6.conf.veth1.forwarding net.ipv4.conf.all.rp_filter \
      net.ipv4.conf.veth0.rp_filter; } >"$1"
}
same_state() {
  snapshot "$VT_TMP/now.txt"
  diff -u "$VT_TMP/before.txt" "$VT_TMP/now.txt" >&2 || fail "$1: routing state or sysctls differ from before vless-tun (diff above)"
}
sniff_start() {
  rm -f "$VT_TMP/sniff.ready"
  start "$1" ip netns exec "$TB_SRV" python3 "$GW_SNIFF" --ifname veth0 --server $TB_SRV4 --port 443 \
    --lan 198.18.6.0/24 --lan 198.18.7.0/24 --lan 2001:db8:6::/64 --lan 2001:db8:7::/64 \
    --ready "$VT_TMP/sniff.ready" --max-seconds 240
  SNIFF_PID=$(last_pid) SNIFF_LOG="$VT_TMP/$1.log"
  local deadline=$(( $(date +%s) + 10 ))
  until [ -f "$VT_TMP/sniff.ready" ]; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "sniffer not ready"
    sleep 0.05
  done
}
sniff_stop() {
  stop_pid "$SNIFF_PID" 5 || true
  COUNTS=$(grep -E '^tunnel=[0-9]+ lan=[0-9]+ other=[0-9]+$' "$SNIFF_LOG") ||
    fail "the sniffer printed no count: $(cat "$SNIFF_LOG")"
}
# get NS NAME URL: curl from NS, exactly the page, in under 5 s.
get() {
  local ns=$1 name=$2 page
  shift 2
  page=$(ip netns exec "$ns" curl -sS --max-time 5 "$@") || fail "$name: curl $* failed"
  [ "$page" = "gateway page" ] || fail "$name: wrong page: $page"
}
# ask NS NAME TARGET EXPECTED_FROM: one line to TARGET over TCP, answered from there.
ask() {
  local ns=$1 name=$2 target=$3 from=$4 got
  got=$(ip netns exec "$ns" timeout 10 python3 "$PROBE" ask --target "$target" --msg "$name") ||
    fail "$name: no answer from $target: $got"
  [ "$got" = "ok from=$from $name" ] || fail "$name: answer from $target is '$got', want 'ok from=$from $name'"
}
# q LABEL ARGS...: a DNS query from lan1 that must answer A 198.18.1.2 (or AAAA).
q() {
  local label=$1 out
  shift
  out=$(in_lan1 python3 "$UB_PROBE" dns "$@") || fail "$label: $out"
  grep -Eq '^answer (A 198\.18\.1\.2|AAAA 2001:db8:1::2) ttl=[0-9]+$' <<<"$out" || fail "$label: wrong answer: $out"
  log "$label: $(tr '\n' ' ' <<<"$out")"
}
wait_exit() {
  local pid=$1 deadline=$(( $(date +%s) + $2 )) rc=0
  while kill -0 "$pid" 2>/dev/null; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "process $pid still runs after $2 s"
    sleep 0.05
  done
  wait "$pid" || rc=$?
  return $rc
}
# full_cone LABEL R1 R2 W3 PUB: udp_nat_test's check, from lan1.
full_cone() {
  local label=$1 r1=$2 r2=$3 w3=$4 pub=$5 out="$VT_TMP/obs-$1" obs nlog pid got
  start "nat-$label" ip netns exec "$LAN1" python3 "$UB_PROBE" nat \
    --target "$r1:$PORT" --target "$r2:$PORT" --out "$out" --wait 10
  pid=$(last_pid) nlog="$VT_TMP/nat-$label.log"
  local deadline=$(( $(date +%s) + 15 ))
  until [ -f "$out" ]; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "$label: the LAN host learned no mapping in 15 s"
    sleep 0.05
  done
  grep -q ' none$' "$nlog" && fail "$label: a reflector did not answer through the tunnel: $(grep '^seen' "$nlog")"
  [ "$(wc -l <"$out")" -eq 1 ] ||
    fail "$label: mapping depends on the destination: $(grep '^seen' "$nlog" | tr '\n' ';')"
  obs=$(cat "$out")
  [[ "$obs" == "$pub":* ]] || fail "$label: observed $obs, want the server's address $pub"
  got=$(in_web3 python3 "$UB_PROBE" poke --target "$obs" --msg "hello-from-web3-$label" --timeout 5) ||
    fail "$label: web3's datagram to $obs was not answered by the LAN host: $got; $(tail -3 "$nlog")"
  [ "$got" = "reply from=$obs msg=REPLY hello-from-web3-$label" ] ||
    fail "$label: web3 got '$got', want the LAN host's reply from $obs"
  wait_exit "$pid" 15 || fail "$label: the LAN host's probe failed"
  local w3re=${w3//./\\.}
  grep -Eq "^got from=\[?$w3re\]?:[0-9]+ msg=hello-from-web3-$label$" "$nlog" ||
    fail "$label: the LAN host did not see web3's real source: $(grep '^got' "$nlog")"
  log "$label: full cone for the LAN host: $(grep '^seen' "$nlog" | tr '\n' ' ')| web3 $got"
}
# web2's networks are bypassed: the router's own traffic to them uses the
# main table, the LAN's still goes into the TUN (the iif rules come first),
# and the replies pass the router's strict rp_filter (vt0's is loose).
GW_CONFIG="[route]
auto_route = true
state_file = \"routes.state\"
bypass = [\"198.18.3.0/24\", \"2001:db8:3::/64\"]
[route.gateway]
interfaces = [\"veth1\", \"veth2\"]
[dns]
resolver = \"$RESOLVER:53\""

# The kernel adds link-local addresses a moment after the links come up;
# the "before" picture must include them.
deadline=$(( $(date +%s) + 10 ))
until [ "$(ip -n "$RTR" -6 route show table local | grep -c '^local fe80::')" -eq 3 ]; do
  [ "$(date +%s)" -lt "$deadline" ] || fail "the router has no link-local addresses after 10 s"
  sleep 0.05
done
snapshot "$VT_TMP/before.txt"
grep -q '^net.ipv4.ip_forward = 0$' "$VT_TMP/before.txt" || fail "the router forwards already: the test proves nothing"

# ---- baseline: without vless-tun, a forwarding router leaks, and the sniffer sees it.
in_rtr sysctl -qw net.ipv4.ip_forward=1
sniff_start sniff-baseline
get "$LAN1" "baseline (router forwards, no vless-tun)" "http://$TB_WEB4/baseline"
sniff_stop
in_rtr sysctl -qw net.ipv4.ip_forward=0
in_rtr sysctl -qw net.ipv4.conf.all.rp_filter=1  # (ip_forward resets nothing else, but be exact)
[[ "$COUNTS" =~ lan=([1-9][0-9]*) ]] || fail "baseline: the sniffer saw no LAN packet of a direct connection: $COUNTS"
log "baseline: the sniffer sees a LAN host's direct connection ($COUNTS)"
same_state "baseline"

# ---- run 1
UB_NO_ROUTES=1 ub_tun_start tun1 1 443 "$GW_CONFIG"
wait_log "$TB_TUN_LOG" "gateway: traffic from veth1,veth2 goes into the TUN" 5
rules4=$(ip -n "$RTR" rule) rules6=$(ip -n "$RTR" -6 rule)
for r in "$rules4" "$rules6"; do
  for i in veth1 veth2; do grep -Eq "^9001:.*iif $i lookup 2022" <<<"$r" || fail "no iif rule for $i: $r"; done
done
[ "$(in_rtr sysctl -n net.ipv4.ip_forward)" = 1 ] || fail "ip_forward is not on"
[ "$(in_rtr sysctl -n net.ipv6.conf.all.forwarding)" = 1 ] || fail "IPv6 forwarding is not on"
[ "$(in_rtr sysctl -n net.ipv4.conf.vt0.rp_filter)" = 2 ] || fail "vt0's rp_filter is not loose"
grep -q '^iifrule 4 pref 9001 iif veth1 lookup 2022$' "$VT_TMP/routes.state" || fail "state file lacks the iif rule"
grep -q '^sysctl net/ipv4/ip_forward 0 1$' "$VT_TMP/routes.state" || fail "state file lacks ip_forward's old value"
log "run 1: iif rules (v4, v6), forwarding on, vt0 rp_filter 2, all in the state file"
for pair in 198.18.3.2,$L1_4 2001:db8:3::2,$L1_6; do
  dst=${pair%,*} src=${pair#*,}
  own=$(ip -n "$RTR" route get $dst) lan=$(ip -n "$RTR" route get $dst from $src iif veth1)
  grep -q "dev veth0" <<<"$own" || fail "the router's own route to bypassed $dst is not the uplink: $own"
  grep -q "dev vt0" <<<"$lan" || fail "the LAN's route to bypassed $dst is not the TUN: $lan"
done
log "run 1: bypassed web2: the router's own route is the uplink, the LAN's is vt0"

sniff_start sniff-run1
# 1. curl from the LAN host, IPv4 and IPv6
get "$LAN1" "LAN curl v4" "http://$TB_WEB4/gw-v4"
wait_log "$TB_TUN_LOG" "flow #[0-9]+ app=198\.18\.6\.2:[0-9]+ dst=198\.18\.1\.2:80 reason=done up=[1-9][0-9]* down=[1-9][0-9]*" 5
get "$LAN1" "LAN curl v6" "http://[$TB_WEB6]/gw-v6"
wait_log "$TB_TUN_LOG" "flow #[0-9]+ app=\[2001:db8:6::2\]:[0-9]+ dst=\[2001:db8:1::2\]:80 reason=done up=[1-9][0-9]* down=[1-9][0-9]*" 5
wait_log "$VT_TMP/web.log" "GET /gw-v6" 5
grep -Eq "^(::ffff:)?($L1_4|$L1_6) .*GET /gw" "$VT_TMP/web.log" && fail "the web server saw the LAN host's own address: leaked"
log "1: the LAN host's curl went through the tunnel, v4 and v6 (flow lines name $L1_4 / $L1_6)"

# 2. UDP full cone for the LAN host
full_cone "lan-v4" 198.18.1.2 198.18.3.2 198.18.4.2 $UB_PUB4
full_cone "lan-v6" "[2001:db8:1::2]" "[2001:db8:3::2]" 2001:db8:4::2 "[$UB_PUB6]"

# 3. DNS of the LAN host
before=$(wc -l <"$QLOG")
q "LAN DNS: UDP via $FAKE4 (exists nowhere)" --server $FAKE4 --name gw-udp.example.test
q "LAN DNS: UDP via [$FAKE6] (AAAA)" --server $FAKE6 --name gw-udp6.example.test --type AAAA
q "LAN DNS: UDP via the real $RESOLVER" --server $RESOLVER --name gw-real.example.test
q "LAN DNS: TCP via $FAKE4:53" --server $FAKE4 --name gw-tcp.example.test --tcp
q "LAN DNS: UDP via the router $R1_4 (its dnsmasq)" --server $R1_4 --name gw-router.example.test
q "LAN DNS: UDP via the router [$R1_6]" --server $R1_6 --name gw-router6.example.test --type AAAA
for name in gw-udp gw-udp6 gw-real gw-tcp gw-router gw-router6; do
  tail -n +"$((before + 1))" "$QLOG" | grep -q "query\[[A-Z]*\] $name.example.test from 198\.18\.1\.1$" ||
    fail "dnsmasq did not see $name.example.test from ns srv (through the tunnel): $(tail -5 "$QLOG")"
done
log "3: every LAN query answered through the tunnel (dnsmasq saw them from ns srv), the router's resolver's too"

# 4. management traffic: untouched, not tunnelled
ask "$LAN1" lan-to-router-v4 "$R1_4:$LISTEN_PORT" $L1_4
ask "$LAN1" lan-to-router-v6 "[$R1_6]:$LISTEN_PORT" $L1_6
ask "$LAN1" lan-to-router-uplink-v4 "198.18.0.1:$LISTEN_PORT" $L1_4
ask "$RTR" router-to-lan-v4 "$L1_4:$ECHO_PORT" $R1_4
ask "$RTR" router-to-lan-v6 "[$L1_6]:$ECHO_PORT" $R1_6
ask "$LAN1" lan1-to-lan2-v4 "$L2_4:$ECHO_PORT" $L1_4
ask "$LAN1" lan1-to-lan2-v6 "[$L2_6]:$ECHO_PORT" $L1_6
grep -E "flow #.* dst=\[?(198\.18\.[67]\.|2001:db8:[67]::|198\.18\.0\.1:)" "$TB_TUN_LOG" &&
  fail "management traffic went into the tunnel"
log "4: LAN -> router (LAN and uplink address), router -> LAN, lan1 -> lan2 direct, real sources, no flow line"

sniff_stop
[[ "$COUNTS" =~ ^tunnel=[1-9][0-9]*\ lan=0\ other=0$ ]] ||
  fail "5: the uplink carried more than the tunnel's connections: $COUNTS; $(grep '^seen' "$SNIFF_LOG" | tr '\n' ';')"
log "5: the uplink saw only the tunnel's TCP to $TB_SRV4:443 ($COUNTS)"

ub_tun_stop "run 1"
grep -E ' ERROR |already existed|rollback' "$TB_TUN_LOG" && fail "vless-tun logged route errors"
same_state "SIGTERM (run 1)"
[ -e "$VT_TMP/routes.state" ] && fail "state file left after SIGTERM"
log "6a: SIGTERM restored rules, routes and sysctls exactly"

# ---- run 2: SIGKILL, then run 3 recovers
UB_NO_ROUTES=1 ub_tun_start tun2 1 443 "$GW_CONFIG"
snapshot "$VT_TMP/applied.txt"
kill -9 "$TB_TUN_PID"; wait "$TB_TUN_PID" 2>/dev/null || true
[ "$(in_rtr sysctl -n net.ipv4.ip_forward)" = 1 ] || fail "SIGKILL: ip_forward is already off (test proves nothing)"
grep -q "iif veth1 lookup 2022" <<<"$(ip -n "$RTR" rule)" || fail "SIGKILL left no iif rule (test proves nothing)"
grep -q '^sysctl ' "$VT_TMP/routes.state" || fail "SIGKILL left no sysctl lines in the state file"

UB_NO_ROUTES=1 ub_tun_start tun3 1 443 "$GW_CONFIG"
grep -q "auto_route: removed [1-9][0-9]* leftover rules and routes" "$TB_TUN_LOG" || fail "run 3 did not recover the leftovers"
grep -q '^sysctl net/ipv4/ip_forward 0 1$' "$VT_TMP/routes.state" ||
  fail "run 3 recorded ip_forward's old value as other than 0 (recover must restore it first): $(grep sysctl "$VT_TMP/routes.state")"
snapshot "$VT_TMP/recovered.txt"
[ "$(grep -c 'lookup' "$VT_TMP/recovered.txt")" -eq "$(grep -c 'lookup' "$VT_TMP/applied.txt")" ] ||
  fail "after recover the rules differ from a clean start: $(diff "$VT_TMP/applied.txt" "$VT_TMP/recovered.txt")"
get "$LAN1" "LAN curl v4 (recovered)" "http://$TB_WEB4/recovered"
wait_log "$TB_TUN_LOG" "flow #[0-9]+ app=198\.18\.6\.2:[0-9]+ dst=198\.18\.1\.2:80 reason=done" 5
ub_tun_stop "run 3"
same_state "SIGTERM after SIGKILL + recover"
[ -e "$VT_TMP/routes.state" ] && fail "state file left after SIGTERM (run 3)"
log "6b: after SIGKILL the next start recovered (sysctls first); its SIGTERM restored everything"
ub_server_stop
log "PASS in $(( $(date +%s) - T0 )) s"
