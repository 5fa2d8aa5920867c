#!/usr/bin/env bash
# Routing rules ([[route.rules]]): app --vt0--> vless-tun --> proxy | direct | block
#
#   ns app (vless-tun, fwmark 496 -> table 100: ns srv as a plain router)
#     proxy:  --VLESS/TLS--> vless-server (ns srv) --> ns web   (web sees 198.18.1.1)
#     direct: --veth, routed by ns srv--> ns web                (web sees 198.18.0.1)
#     block:  reset (connection refused at once) or drop (the SYN times out)
#
# TCP over IPv4 and IPv6 and UDP: ns web says who reached it; the server's
# log never names the direct or blocked destinations; vless-tun's flow lines
# say route=direct and its stop line counts direct and blocked flows.
# Names: a geoip database (mmdb_write.py) makes 198.18.5.0/24 "ZZ", the
# domestic country (direct); ads.test, answered by dnsmasq through the
# hijacked DNS as 198.18.6.2, is blocked by name; flows to 198.18.6.3 are
# routed by the name sniffed from their first bytes (HTTP Host, TLS SNI).
# want_ip (route.dial_by_name): geo.test is 198.18.7.2 (no country) to the
# app's DNS and 198.18.5.2 (ZZ) to the server's; the first flow to it goes
# through the server by name, whose answer says it dialled 198.18.5.2, so
# the next flows to geo.test go direct.
# DNS follows the rules: names a direct rule matches are asked from
# dns.direct_resolver (a second dnsmasq, reached directly), all others only
# through the tunnel (the direct resolver never sees them). A sniffer on
# ns app's real interface (gw_sniff.py --dns) sees the direct flows to the
# domestic range and no DNS question but the direct name's.
source "$(dirname "$0")/lib.sh"
source "$VT_TOOLS/testbed.sh"
source "$VT_TOOLS/udp_bed.sh"
: "${VT_SERVER:?path to vless-server}" "${VT_TUN:?path to vless-tun}"
require_root
require_cmd python3 openssl ip dnsmasq
WHOAMI="$VT_TOOLS/tcp_whoami.py"
T0=$(date +%s)

tb_setup route
# The server's own view of geo.test (ip netns exec binds /etc/netns/NAME/hosts).
tb_netns_hosts "$TB_SRV" "198.18.5.2 geo.test"
# ns srv also forwards (the direct path); ns web answers both paths.
in_srv sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
ip -n "$TB_WEB" route add 198.18.0.0/30 via 198.18.1.1
ip -n "$TB_WEB" -6 route add 2001:db8::/64 via 2001:db8:1::1
# Marked sockets (server connections and direct flows) skip the TUN.
for f in -4 -6; do ip -n "$TB_APP" $f rule add fwmark 496 lookup 100 pref 100; done
ip -n "$TB_APP" route add 198.18.0.0/30 dev veth0 table 100
ip -n "$TB_APP" route add 198.18.1.0/24 via 198.18.0.2 table 100
ip -n "$TB_APP" -6 route add 2001:db8::/64 dev veth0 table 100
ip -n "$TB_APP" -6 route add 2001:db8:1::/64 via 2001:db8::2 table 100

# More addresses of ns web: a "domestic" one, and two only known by name.
for a in 198.18.5.2 198.18.6.2 198.18.6.3 198.18.7.2 198.18.1.53 198.18.6.53; do
  ip -n "$TB_WEB" addr add $a/32 dev veth0
done
for n in 198.18.5.0/24 198.18.6.0/24 198.18.7.0/24 198.18.1.53/32; do
  ip -n "$TB_SRV" route add $n dev veth1
  ip -n "$TB_APP" route add $n via 198.18.0.2 table 100
done
python3 "$VT_TOOLS/mmdb_write.py" "$VT_TMP/geo.mmdb" 198.18.5.0/24=ZZ 198.18.1.0/24=YY \
  198.18.6.0/24=YY 2001:db8:1::/48=YY || fail "cannot write the geoip database"
start dnsmasq ip netns exec "$TB_WEB" dnsmasq --keep-in-foreground --conf-file=/dev/null --pid-file= \
  --user=root --group=root --no-resolv --no-hosts --port 53 --listen-address=198.18.1.53 \
  --bind-interfaces --address=/ads.test/198.18.6.2 --address=/geo.test/198.18.7.2 --local-ttl=60
DQLOG="$VT_TMP/direct-dns-queries.txt"
start dnsmasq-direct ip netns exec "$TB_WEB" dnsmasq --keep-in-foreground --conf-file=/dev/null --pid-file= \
  --user=root --group=root --no-resolv --no-hosts --port 53 --listen-address=198.18.6.53 \
  --bind-interfaces --address=/direct.test/198.18.5.2 --local-ttl=60 --log-queries \
  --log-facility="$DQLOG"
start whoami ip netns exec "$TB_WEB" python3 "$WHOAMI" serve --ports 8080 8081 8082 8083 8084 --max-seconds 240
wait_port "$TB_WEB4" 8080 10 "$TB_WEB"
start reflect ip netns exec "$TB_WEB" python3 "$UB_PROBE" reflect --port 7300 --ports 3 --max-seconds 240
ub_wait_reflector "$TB_SRV" "$TB_WEB4" 7300
tb_server_start
SERVER_LOG="$VT_TMP/vless-server.log"
# A sniffer on the app namespace's real interface: what leaves in clear.
start sniff ip netns exec "$TB_APP" python3 "$VT_TOOLS/gw_sniff.py" --ifname veth0 \
  --server "$TB_SRV4" --port 443 --lan 198.18.5.0/24 --dns --ready "$VT_TMP/sniff.ready" \
  --max-seconds 240
SNIFF_PID=$(last_pid)
for _ in $(seq 100); do [ -e "$VT_TMP/sniff.ready" ] && break; sleep 0.1; done
[ -e "$VT_TMP/sniff.ready" ] || fail "the sniffer did not start"

# Without the mux, the server logs each flow's target (the check below).
ub_tun_start tun 1 443 "fwmark = 496
[mux]
enabled = false
[dns]
hijack = true
resolver = \"198.18.1.53:53\"
direct_resolver = \"198.18.6.53:53\"
[route]
default_action = \"proxy\"
geoip_database = \"geo.mmdb\"
dial_by_name = true
direct_interface = \"veth0\"
[[route.rules]]
ip_cidr = [\"$TB_WEB4/32\", \"$TB_WEB6/128\"]
port = 8081
action = \"direct\"
[[route.rules]]
ip_cidr = [\"198.18.1.0/24\", \"2001:db8:1::/64\"]
port = [8082]
network = \"tcp\"
action = \"block\"
[[route.rules]]
port = \"8083\"
action = \"block\"
block_style = \"drop\"
[[route.rules]]
network = [\"udp\"]
port = \"7301-7301\"
action = \"direct\"
[[route.rules]]
port = 7302
action = \"block\"
[[route.rules]]
domain_suffix = \"ads.test\"
action = \"block\"
[[route.rules]]
domain = [\"sniffed.test\"]
domain_suffix = \"direct.test\"
action = \"direct\"
[[route.rules]]
geoip = \"zz\"
action = \"direct\""
for n in 198.18.5.0/24 198.18.6.0/24 198.18.7.0/24; do ip -n "$TB_APP" route replace $n dev vt0; done

probe() { in_app python3 "$WHOAMI" probe --target "$1" --timeout "${2:-5}" "${@:3}"; }
expect() {  # expect WHAT TARGET PATTERN [TIMEOUT [PROBE OPTIONS]]
  local out
  out=$(probe "$2" "${4:-5}" "${@:5}")
  [[ "$out" =~ $3 ]] || fail "$1: $2 answered \"$out\", expected /$3/"
  log "$1: $2 -> $out"
}
# Proxied: the server dialled ns web.
expect "proxy" "$TB_WEB4:8080" '^PEER 198\.18\.1\.1 '
expect "proxy v6" "[$TB_WEB6]:8080" '^PEER 2001:db8:1::1 '
# Direct: ns web sees the app namespace's own address.
expect "direct" "$TB_WEB4:8081" '^PEER 198\.18\.0\.1 '
expect "direct v6" "[$TB_WEB6]:8081" '^PEER 2001:db8::1 '
# Block, reset: refused at once.
expect "block reset" "$TB_WEB4:8082" '^refused ms=[0-9]{1,3}$'
expect "block reset v6" "[$TB_WEB6]:8082" '^refused ms=[0-9]{1,3}$'
# Block, drop: no answer at all.
expect "block drop" "$TB_WEB4:8083" '^timeout ' 2

# geoip: the domestic address goes direct, the foreign one (above) not.
expect "geoip ZZ direct" "198.18.5.2:8080" '^PEER 198\.18\.0\.1 '
# By name from DNS: ads.test resolves (through the tunnel) and is refused.
out=$(in_app python3 "$UB_PROBE" dns --server 198.18.9.53 --name ads.test) || fail "dns: $out"
grep -q "^answer A 198.18.6.2 " <<<"$out" || fail "dns ads.test: $out"
expect "domain block" "198.18.6.2:8080" '^refused ms=[0-9]{1,3}$'
# By name sniffed from the first bytes.
expect "sniffed Host direct" "198.18.6.3:8080" '^PEER 198\.18\.0\.1 ' 5 --http-host sniffed.test
expect "sniffed Host other" "198.18.6.3:8080" '^PEER 198\.18\.1\.1 ' 5 --http-host other.test
expect "sniffed SNI" "198.18.6.3:8084" '^tls-sent ' 5 --tls-sni sniffed.test
grep -q "port 8084 from 198.18.0.1" "$VT_TMP/whoami.log" ||
  fail "the TLS flow with SNI sniffed.test did not go direct: $(grep 8084 "$VT_TMP/whoami.log")"
# want_ip: first through the server by name, then direct by the answer.
out=$(in_app python3 "$UB_PROBE" dns --server 198.18.9.53 --name geo.test) || fail "dns: $out"
grep -q "^answer A 198.18.7.2 " <<<"$out" || fail "dns geo.test: $out"
expect "want_ip first" "198.18.7.2:8080" '^PEER 198\.18\.1\.1 '
expect "want_ip next" "198.18.7.2:8080" '^PEER 198\.18\.0\.1 '
expect "want_ip again" "198.18.7.2:8080" '^PEER 198\.18\.0\.1 '
# DNS follows the rules.
out=$(in_app python3 "$UB_PROBE" dns --server 198.18.9.53 --name www.direct.test) || fail "dns: $out"
grep -q "^answer A 198.18.5.2 " <<<"$out" || fail "dns www.direct.test: $out"
grep -q "query\[A\] www.direct.test from 198.18.0.1" "$DQLOG" ||
  fail "the direct name was not asked directly: $(cat "$DQLOG")"
expect "dns direct name" "198.18.5.2:8080" '^PEER 198\.18\.0\.1 '
if grep -E "geo\.test|ads\.test" "$DQLOG"; then
  fail "a proxied name reached the direct resolver"
fi

# UDP from one app socket: 7300 proxied, 7301 direct, 7302 blocked.
out=$(in_app python3 "$UB_PROBE" steps --wait 2 --step "$TB_WEB4:7300=WHO?" \
  --step "$TB_WEB4:7301=WHO?" --step "$TB_WEB4:7302=WHO?")
log "udp: $(tr '\n' ' ' <<<"$out")"
grep -q "^step 1 .*msg=SEEN 198.18.1.1 " <<<"$out" || fail "udp proxy: $out"
grep -q "^step 2 .*msg=SEEN 198.18.0.1 " <<<"$out" || fail "udp direct: $out"
grep -q "^step 3 .* none" <<<"$out" || fail "udp block: $out"

# A connected UDP socket learns of a reset-style block at once (ICMP port
# unreachable from the destination); a drop-style one hears nothing.
udp_connected() {
  in_app python3 -c '
import socket, sys, time
host, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
s.connect((host, port)); s.settimeout(2); t0 = time.monotonic()
try:
    s.send(b"WHO?"); s.recv(100); print("answer")
except ConnectionRefusedError: print("refused ms=%d" % ((time.monotonic() - t0) * 1000))
except socket.timeout: print("timeout")' "$1" "$2"
}
out=$(udp_connected 198.18.1.2 7302)
[[ "$out" =~ ^refused\ ms=[0-9]{1,3}$ ]] || fail "udp block reset: $out"
log "udp block reset: $out"
out=$(udp_connected 2001:db8:1::2 7302)
[[ "$out" =~ ^refused\ ms=[0-9]{1,3}$ ]] || fail "udp block reset v6: $out"
log "udp block reset v6: $out"
out=$(udp_connected 198.18.1.2 8083)
[ "$out" = timeout ] || fail "udp block drop: $out"
log "udp block drop: $out"

ub_tun_stop rules
ub_server_stop
stop_pid "$SNIFF_PID" || fail "the sniffer failed"
sniffed=$(cat "$VT_TMP/sniff.log")
log "sniffer: $(grep -E '^(tunnel|dns)' <<<"$sniffed" | tr '\n' ' ')"
# The domestic address was reached in clear, by the app's own address.
[[ "$(tail -1 <<<"$sniffed")" =~ lan=([0-9]+) ]] && [ "${BASH_REMATCH[1]}" -gt 0 ] ||
  fail "no direct packet to 198.18.5.0/24 on the real interface: $sniffed"
# Only the direct name was asked in clear; proxied names never left but inside TLS.
grep -q "^dns 198.18.0.1:[0-9]* > 198.18.6.53:53 www.direct.test$" <<<"$sniffed" ||
  fail "the direct query is not on the real interface: $sniffed"
if grep '^dns ' <<<"$sniffed" | grep -v ' www\.direct\.test$'; then
  fail "a proxied name crossed the real interface in clear"
fi
# The server carried the proxied flows and never heard of the others.
grep -Eq "target=198\.18\.1\.2:8080 " "$SERVER_LOG" || fail "no proxied TCP flow in the server's log"
grep -Eq "target=198\.18\.1\.2:7300 " "$SERVER_LOG" || fail "no proxied UDP in the server's log"
[ "$(grep -c "target=geo\.test:8080 " "$SERVER_LOG")" -eq 1 ] ||
  fail "want_ip: the server should have dialled geo.test once: $(grep geo.test "$SERVER_LOG")"
if grep -E ':(8081|8082|8083|7301|7302)\b|198\.18\.5\.2|198\.18\.6\.2|:8084|direct\.test' "$SERVER_LOG"; then
  fail "the server's log names a destination the rules kept from it"
fi
grep -Eq "flow #[0-9]+ app=\S+ dst=198\.18\.1\.2:8081 route=direct reason=done" "$TB_TUN_LOG" ||
  fail "no route=direct flow line: $(grep 'flow #' "$TB_TUN_LOG" | head -5)"
stop_line=$(grep -E "stopping: routing: " "$TB_TUN_LOG") || fail "no routing summary at stop"
log "client: $stop_line"
# direct: 8081 twice, geoip, Host and SNI, geo.test twice, www.direct.test;
# blocked: 8082 twice, 8083 (its SYNs), ads.test.
[[ "$stop_line" =~ tcp\ direct=8\ blocked=([0-9]+), ]] || fail "direct TCP count: $stop_line"
[ "${BASH_REMATCH[1]}" -ge 4 ] || fail "blocked TCP count: $stop_line"
[[ "$stop_line" =~ udp\ direct=1\ blocked=4\ \(datagrams\),\ dns\ direct=1\; ]] ||
  fail "UDP counts: $stop_line"
log "PASS in $(( $(date +%s) - T0 )) s"
