#!/usr/bin/env bash
# lan 198.18.5.2 =veth= [app 198.18.5.1 | vt0 198.18.2.1 | 198.18.0.1 default via .0.2] =veth= [srv 198.18.0.2, vless-server on lo 198.18.9.1, ip_forward=1] =veth= web 198.18.1.2 (v6: 2001:db8:{5,2,0,9,1}::)
#
# vless-tun with `[route] auto_route = true` and no manual routes, in
# namespaces made here. The server and the web host are reachable from ns
# app only through its default route (nothing but the fwmark keeps the
# tunnel's own connection out of the TUN), and ns srv forwards, so any leak
# around the tunnel would succeed and be seen. Proves:
#  1. no routing loop: curl app -> web works through the tunnel (flow line in
#     vless-tun's log; vless-server saw the connection from 198.18.0.1; the
#     web server saw it from the server's address, not the app's);
#  2. no IPv6 leak: IPv6 is carried through the tunnel (flow line); with
#     carry_ipv6 = false an IPv6 connect fails at once and a packet sniffer
#     on ns srv's veth sees no IPv6 TCP to the web address (the sniffer is
#     first shown to see exactly such a leak without vless-tun);
#  3. the LAN peer is reached directly (no flow line, it sees 198.18.5.1), and
#     a listener in ns app answers the LAN peer and the web host (beyond the
#     default route) on the veth and LAN addresses, v4 and v6;
#  4. SIGTERM restores `ip rule`, `ip -6 rule` and `ip [-6] route show table
#     all` exactly; after SIGKILL the next start recovers the leftovers, and
#     its SIGTERM restores the original state.
source "$(dirname "$0")/lib.sh"
source "$VT_TOOLS/testbed.sh"
: "${VT_SERVER:?path to vless-server}" "${VT_TUN:?path to vless-tun}"
require_root
require_cmd curl python3 openssl ip

PROBE="$VT_TOOLS/autoroute_probe.py"
ID="vt-ar-$$"
APP="$ID-app" SRV="$ID-srv" WEB="$ID-web" LAN="$ID-lan"
WEB4=198.18.1.2 WEB6=2001:db8:1::2
SRVIP4=198.18.9.1 SRVIP6=2001:db8:9::1
APP4=198.18.0.1 APP6=2001:db8::1
APPLAN4=198.18.5.1 APPLAN6=2001:db8:5::1
LAN4=198.18.5.2 LAN6=2001:db8:5::2
ECHO_PORT=7000 LISTEN_PORT=7001
app() { ip netns exec "$APP" "$@"; }
# A failure that does not invalidate the later checks: reported, the test
# goes on, and fails at the end.
FAILS=()
soft_fail() { FAILS+=("$*"); printf 'FAIL (continuing): %s\n' "$*" >&2; }

# ---- namespaces, veths (made inside the namespaces: names never clash)
for ns in "$APP" "$SRV" "$WEB" "$LAN"; do netns_add "$ns"; done
ip -n "$APP" link add veth0 type veth peer name veth0 netns "$SRV"
ip -n "$SRV" link add veth1 type veth peer name veth0 netns "$WEB"
ip -n "$APP" link add veth1 type veth peer name veth0 netns "$LAN"
addr() { ip -n "$1" addr add "$3" dev "$2" ${4:-}; ip -n "$1" link set "$2" up; }
addr "$APP" veth0 $APP4/30;        addr "$APP" veth0 $APP6/64 nodad
addr "$APP" veth1 $APPLAN4/24;     addr "$APP" veth1 $APPLAN6/64 nodad
addr "$SRV" veth0 198.18.0.2/30;   addr "$SRV" veth0 2001:db8::2/64 nodad
addr "$SRV" veth1 198.18.1.1/30;   addr "$SRV" veth1 2001:db8:1::1/64 nodad
addr "$SRV" lo $SRVIP4/32;         addr "$SRV" lo $SRVIP6/128
addr "$WEB" veth0 $WEB4/30;        addr "$WEB" veth0 $WEB6/64 nodad
addr "$LAN" veth0 $LAN4/24;        addr "$LAN" veth0 $LAN6/64 nodad
# ns app: only a default route (and its connected subnets).
ip -n "$APP" route add default via 198.18.0.2
ip -n "$APP" -6 route add default via 2001:db8::2
# ns srv routes between app (and app's LAN) and web.
ip netns exec "$SRV" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
ip -n "$SRV" route add 198.18.5.0/24 via $APP4
ip -n "$SRV" -6 route add 2001:db8:5::/64 via $APP6
ip -n "$WEB" route add default via 198.18.1.1
ip -n "$WEB" -6 route add default via 2001:db8:1::1
log "namespaces $APP $SRV $WEB $LAN"

# ---- services
mkdir -p "$VT_TMP/www"
echo "autoroute page" >"$VT_TMP/www/page"
for p in baseline-v4 tunnel-v4 tunnel-v6; do ln -s page "$VT_TMP/www/$p"; done
start web ip netns exec "$WEB" python3 -u -m http.server 80 --bind :: --directory "$VT_TMP/www"
start lan-echo ip netns exec "$LAN" python3 "$PROBE" serve --port $ECHO_PORT
start app-listener ip netns exec "$APP" python3 "$PROBE" serve --port $LISTEN_PORT
UUID=$(new_uuid)
make_cert "$VT_TMP" test.name
cat >"$VT_TMP/server.toml" <<CFG
log_level = "info"
listen = ["$SRVIP4:443", "[$SRVIP6]:443"]
versions = [1]
[tls]
cert = "server.pem"
key = "server.key"
[[users]]
name = "it-user"
uuid = "$UUID"
CFG
"$VT_SERVER" --check -c "$VT_TMP/server.toml" >/dev/null || fail "vless-server config check failed"
start server ip netns exec "$SRV" "$VT_SERVER" -c "$VT_TMP/server.toml"
wait_port $WEB4 80 10 "$WEB"
wait_port $LAN4 $ECHO_PORT 10 "$LAN"
wait_port $APPLAN4 $LISTEN_PORT 10 "$APP"
wait_port $SRVIP4 443 10 "$SRV"

# tun_config NAME [extra [route] lines]
tun_config() {
  cat >"$VT_TMP/$1.toml" <<CFG
log_level = "info"
[tun]
name = "vt0"
ipv4 = "198.18.2.1/30"
ipv6 = "2001:db8:2::1/64"
[server]
address = "$SRVIP4:443"
uuid = "$UUID"
sni = "test.name"
ca = "ca.pem"
[route]
auto_route = true
state_file = "routes.state"
${2:-}
[limits]
connect_timeout = "5s"
CFG
  "$VT_TUN" --check -c "$VT_TMP/$1.toml" >/dev/null ||
    fail "vless-tun config check: $("$VT_TUN" --check -c "$VT_TMP/$1.toml" 2>&1)"
}
# tun_start NAME CONFIG: TUN_PID, TUN_LOG; waits for the start line.
tun_start() {
  start "$1" ip netns exec "$APP" "$VT_TUN" -c "$VT_TMP/$2.toml"
  TUN_PID=$(last_pid) TUN_LOG="$VT_TMP/$1.log"
  wait_log "$TUN_LOG" 'vless-tun started' 10
}
tun_term() {
  local rc=0
  stop_pid "$TUN_PID" 10 || rc=$?
  [ $rc -eq 0 ] || fail "vless-tun exited $rc on SIGTERM"
  grep -E 'ERROR|already existed|rollback' "$TUN_LOG" && fail "vless-tun logged route errors"
  return 0
}
snapshot() {
  { ip -n "$APP" rule; echo "-- v6 rules"; ip -n "$APP" -6 rule
    echo "-- v4 routes"; ip -n "$APP" route show table all
    echo "-- v6 routes"; ip -n "$APP" -6 route show table all; } >"$1"
}
same_state() {
  snapshot "$VT_TMP/now.txt"
  diff -u "$VT_TMP/before.txt" "$VT_TMP/now.txt" >&2 || fail "$1: routing state differs from before vless-tun (diff above)"
}
# get NAME URL...: curl, exactly the page, in under 5 s.
get() {
  local name=$1 page
  shift
  page=$(app curl -sS --max-time 5 "$@") || fail "$name: curl $* failed"
  [ "$page" = "autoroute page" ] || fail "$name: wrong page: $page"
}
# ask NS NAME TARGET EXPECTED_FROM: one line to TARGET, answered from there.
ask() {
  local ns=$1 name=$2 target=$3 from=$4 got
  got=$(ip netns exec "$ns" timeout 10 python3 "$PROBE" ask --target "$target" --msg "$name") ||
    fail "$name: no answer from $target: $got"
  [ "$got" = "ok from=$from $name" ] || fail "$name: answer from $target is '$got', want 'ok from=$from $name'"
}
# sniff_start / sniff_count: IPv6 TCP to the web address arriving on ns srv's veth0.
sniff_start() {
  rm -f "$VT_TMP/sniff.ready"
  start "$1" ip netns exec "$SRV" python3 "$PROBE" sniff --ifname veth0 --dst $WEB6 \
    --ready "$VT_TMP/sniff.ready" --max-seconds 60
  SNIFF_PID=$(last_pid) SNIFF_LOG="$VT_TMP/$1.log"
  local deadline=$(( $(date +%s) + 10 ))
  until [ -f "$VT_TMP/sniff.ready" ]; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "sniffer not ready"
    sleep 0.05
  done
}
# sniff_stop: stops the sniffer and sets SYNS to its count.
sniff_stop() {
  stop_pid "$SNIFF_PID" 5 || true
  SYNS=$(sed -n 's/^syn6=\([0-9]*\) tcp6=[0-9]*$/\1/p' "$SNIFF_LOG")
  [ -n "$SYNS" ] || fail "the sniffer printed no count: $(cat "$SNIFF_LOG")"
}

# The kernel adds the link-local addresses (and their local routes) a moment
# after the links come up; the "before" picture must include them.
deadline=$(( $(date +%s) + 10 ))
until [ "$(ip -n "$APP" -6 route show table local | grep -c '^local fe80::')" -eq 2 ]; do
  [ "$(date +%s)" -lt "$deadline" ] || fail "ns app has no link-local addresses after 10 s"
  sleep 0.05
done
snapshot "$VT_TMP/before.txt"

# ---- baseline without vless-tun: the leak paths exist and the sniffer sees them.
get "baseline v4" "http://$WEB4/baseline-v4"
wait_log "$VT_TMP/web.log" "^(::ffff:)?$APP4 .*GET /baseline-v4" 5
sniff_start sniff-baseline
rc=0; app curl -sS --max-time 5 -o /dev/null "http://[$WEB6]/page" || rc=$?
[ $rc -eq 0 ] || fail "baseline: IPv6 curl without vless-tun failed ($rc)"
sniff_stop
[ "$SYNS" -ge 1 ] || fail "baseline: the sniffer saw no IPv6 SYN of a direct connection"
log "baseline: direct v4 and v6 work via ns srv's forwarding; the sniffer saw $SYNS IPv6 SYN(s)"

# ---- run 1: carry_ipv6 (default)
tun_config tun1
sniff_start sniff-run1
tun_start tun1 tun1
ip -n "$APP" rule >"$VT_TMP/rules-run1.txt"
grep -q "not from all fwmark 0x1f0 lookup 2022" "$VT_TMP/rules-run1.txt" || fail "no capture rule: $(cat "$VT_TMP/rules-run1.txt")"
grep -q "from $APP4 lookup main" "$VT_TMP/rules-run1.txt" || fail "no inbound rule for $APP4"
grep -q "from $APPLAN4 lookup main" "$VT_TMP/rules-run1.txt" || fail "no inbound rule for $APPLAN4"
[ -s "$VT_TMP/routes.state" ] || fail "no state file at route.state_file"

# 1. no routing loop
get "tunnel v4" "http://$WEB4/tunnel-v4"
wait_log "$TUN_LOG" "flow #[0-9]+ app=198\.18\.2\.1:[0-9]+ dst=198\.18\.1\.2:80 reason=done up=[1-9][0-9]* down=[1-9][0-9]*" 5
wait_log "$VT_TMP/server.log" "conn #[0-9]+ peer=198\.18\.0\.1:[0-9]+ user=it-user target=198\.18\.1\.2:80 " 5
wait_log "$VT_TMP/web.log" "^(::ffff:)?198\.18\.1\.1 .*GET /tunnel-v4" 5
grep -Eq "^(::ffff:)?$APP4 .*GET /tunnel-v4" "$VT_TMP/web.log" && fail "the web server saw the app's own address: leaked"
log "1: v4 through the tunnel; vless-server saw it from $APP4 (default route, fwmark), web from the server"

# 2a. IPv6 carried
get "tunnel v6" "http://[$WEB6]/tunnel-v6"
wait_log "$TUN_LOG" "flow #[0-9]+ app=\[2001:db8:2::1\]:[0-9]+ dst=\[2001:db8:1::2\]:80 reason=done up=[1-9][0-9]* down=[1-9][0-9]*" 5
wait_log "$VT_TMP/server.log" "conn #[0-9]+ peer=198\.18\.0\.1:[0-9]+ user=it-user target=\[2001:db8:1::2\]:80 " 5
wait_log "$VT_TMP/web.log" "^2001:db8:1::1 .*GET /tunnel-v6" 5
log "2a: v6 through the tunnel (flow line, server target [$WEB6]:80)"

# 3. LAN direct; inbound from the LAN peer and from beyond the default route.
ask "$APP" lan-v4 "$LAN4:$ECHO_PORT" $APPLAN4
ask "$APP" lan-v6 "[$LAN6]:$ECHO_PORT" $APPLAN6
ask "$LAN" in-lan-v4 "$APPLAN4:$LISTEN_PORT" $LAN4
ask "$LAN" in-lan-v6 "[$APPLAN6]:$LISTEN_PORT" $LAN6
ask "$WEB" in-web-veth-v4 "$APP4:$LISTEN_PORT" $WEB4
ask "$WEB" in-web-veth-v6 "[$APP6]:$LISTEN_PORT" $WEB6
ask "$WEB" in-web-lan-v4 "$APPLAN4:$LISTEN_PORT" $WEB4
ask "$WEB" in-web-lan-v6 "[$APPLAN6]:$LISTEN_PORT" $WEB6
log "3: LAN peer reached directly; the app's listener answered the LAN peer and the web host (v4, v6)"

tun_term
sniff_stop
[ "$SYNS" -eq 0 ] || fail "run 1: $SYNS IPv6 SYN(s) to $WEB6 reached ns srv outside the tunnel"
grep -E "dst=\[?(198\.18\.5\.|2001:db8:5::|$WEB4:$LISTEN_PORT|\[?$WEB6\]?:$LISTEN_PORT)" "$TUN_LOG" &&
  fail "LAN or inbound traffic went into the tunnel"
grep -q "routing loop" "$TUN_LOG" && fail "vless-tun refused a routing loop"
grep -Eq "stopping: 2 flows" "$TUN_LOG" || fail "want exactly the 2 curl flows in the tunnel: $(grep stopping "$TUN_LOG")"
same_state "SIGTERM (run 1)"
[ -e "$VT_TMP/routes.state" ] && fail "state file left after SIGTERM"
log "4a: SIGTERM restored ip rule / ip -6 rule / route tables exactly"

# ---- run 2: carry_ipv6 = false, then SIGKILL
tun_config tun2 "carry_ipv6 = false"
tun_start tun2 tun2
# (grep -q reads from a variable: in a pipe, pipefail would see ip's SIGPIPE)
t2022=$(ip -n "$APP" -6 route show table 2022)
# IPv6 still enters the TUN (with the TUN's source address); vless-tun
# refuses it there. An `unreachable ::/0` here leaked (see docs/routing.md).
grep -Eq "^default dev vt0 .*src " <<<"$t2022" ||
  fail "IPv6 is not routed into the TUN with a TUN source: $t2022"
sniff_start sniff-run2
t0=$(date +%s%N) rc=0
app curl -sS --max-time 5 -o /dev/null "http://[$WEB6]/page" 2>"$VT_TMP/curl6.err" || rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
# The same with a plain connect(), without curl's fallbacks.
how=$(app timeout 10 python3 -c "import socket
s=socket.socket(socket.AF_INET6); s.settimeout(3)
try: s.connect(('$WEB6',80)); print('connected from', s.getsockname()[0])
except OSError as e: print(e.strerror)") || true
get "tunnel v4 (carry_ipv6 off)" "http://$WEB4/page"
sniff_stop
if [ $rc -eq 0 ] || [[ "$how" == connected* ]] || [ "$SYNS" -ne 0 ]; then
  soft_fail "2b: carry_ipv6 = false LEAKS IPv6: curl exit $rc, connect(): '$how', $SYNS IPv6 SYN(s) to $WEB6 reached ns srv's veth;" \
    "route get without source: '$(app ip -6 route get $WEB6 2>&1 | head -1)';" \
    "with the source the kernel then picks: '$(app ip -6 route get $WEB6 from $APP6 2>&1 | head -1)'"
else
  [ $ms -lt 2000 ] || fail "2b: IPv6 curl took ${ms} ms to fail (want fast)"
  log "2b: carry_ipv6 = false: IPv6 fails in ${ms} ms (curl $rc, connect: $how), 0 IPv6 SYNs at ns srv"
fi
grep -q "flow #.*dst=\[$WEB6\]" "$TUN_LOG" && fail "2b: an IPv6 flow was carried with carry_ipv6 = false"

snapshot "$VT_TMP/applied.txt"
kill -9 "$TUN_PID"; wait "$TUN_PID" 2>/dev/null || true
rules=$(ip -n "$APP" rule)
grep -q "lookup 2022" <<<"$rules" || fail "SIGKILL left no rules (test proves nothing)"
[ -s "$VT_TMP/routes.state" ] || fail "SIGKILL left no state file"

# ---- run 3: same config; recover, then SIGTERM
tun_start tun3 tun2
grep -q "auto_route: removed [1-9][0-9]* leftover rules and routes" "$TUN_LOG" || fail "run 3 did not recover the leftovers"
snapshot "$VT_TMP/recovered.txt"
# vt0 is new (another ifindex) but the layout must be the same, not doubled.
[ "$(grep -c 'lookup' "$VT_TMP/recovered.txt")" -eq "$(grep -c 'lookup' "$VT_TMP/applied.txt")" ] ||
  fail "after recover the rules differ from a clean start: $(diff "$VT_TMP/applied.txt" "$VT_TMP/recovered.txt")"
get "tunnel v4 (recovered)" "http://$WEB4/page"
tun_term
same_state "SIGTERM after recover"
[ -e "$VT_TMP/routes.state" ] && fail "state file left after SIGTERM (run 3)"
log "4b: after SIGKILL the next start recovered; its SIGTERM restored the original state"

# ---- run 4: the server given by name. With auto_route getaddrinfo's DNS
# sockets (unmarked) would go into the tunnel; vless-tun asks the
# namespace's nameserver (ns srv, 198.18.9.1) from a marked socket instead,
# so the query arrives from the app's own address, and the tunnel works.
NETNS_ETC="/etc/netns/$APP"
trap 'rc=$?; set +e; rm -rf "$NETNS_ETC"; rmdir /etc/netns 2>/dev/null || true; (exit $rc); _vt_cleanup' EXIT
mkdir -p "$NETNS_ETC"
printf '127.0.0.1 localhost\n' >"$NETNS_ETC/hosts"
printf 'nameserver %s\noptions timeout:2 attempts:1\n' "$SRVIP4" >"$NETNS_ETC/resolv.conf"
cat >"$VT_TMP/dns.py" <<'PY'
# vpn.test -> A 198.18.9.1, no AAAA; logs "query NAME TYPE from IP".
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("198.18.9.1", 53)); s.settimeout(120)
while True:
    try: q, src = s.recvfrom(512)
    except socket.timeout: break
    i, labels = 12, []
    while q[i]:
        labels.append(q[i + 1:i + 1 + q[i]].decode()); i += 1 + q[i]
    name, qtype = ".".join(labels).lower(), struct.unpack("!H", q[i + 1:i + 3])[0]
    print(f"query {name} {qtype} from {src[0]}", flush=True)
    ans = b""
    if name == "vpn.test" and qtype == 1:
        ans = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + socket.inet_aton("198.18.9.1")
    rcode = 0 if name == "vpn.test" else 3
    s.sendto(q[:2] + struct.pack("!HHHHH", 0x8180 | rcode, 1, 1 if ans else 0, 0, 0) + q[12:i + 5] + ans, src)
PY
start dns ip netns exec "$SRV" python3 "$VT_TMP/dns.py"
sed "s/^address = \"$SRVIP4:443\"/address = \"vpn.test:443\"/" "$VT_TMP/tun1.toml" >"$VT_TMP/byname.toml"
grep -q 'address = "vpn.test:443"' "$VT_TMP/byname.toml" || fail "could not make the by-name config"
tun_start tun4 byname
wait_log "$TUN_LOG" "server vpn\.test:443 resolved to $SRVIP4:443" 10
get "tunnel v4 (server by name)" "http://$WEB4/page"
grep -Eq "query vpn\.test 1 from $APP4" "$VT_TMP/dns.log" ||
  fail "the server's name was not asked from the app's own address (outside the tunnel): $(cat "$VT_TMP/dns.log")"
tun_term
same_state "SIGTERM after the by-name run"
log "5: server by name with auto_route: resolved from a marked socket ($(grep -c 'query vpn' "$VT_TMP/dns.log") queries from $APP4), tunnel works"
[ ${#FAILS[@]} -eq 0 ] || fail "${#FAILS[@]} check(s) failed: ${FAILS[*]}"
log "PASS"
