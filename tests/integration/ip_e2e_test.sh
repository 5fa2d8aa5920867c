#!/usr/bin/env bash
# CmdIP end to end, both real halves (issue 9):
#
#   ns app: ping / traceroute / a raw protocol-253 socket
#     --vt0--> vless-tun ([ip] on: v1 CMD 5 over TLS, one connection)
#     --> ns srv: vless-server, [ip] TUN vlessip0 198.18.240.1/24 + 2001:db8:f0::1/64,
#                 nft masquerade out of veth1 (198.18.1.1)
#     --> ns web (router 198.18.1.2) --> ns rtr (router 198.18.3.2)
#     --> ns host 198.18.3.10 2001:db8:4::2 (testbed.sh tb_host_behind_web)
#
# TTL of an echo reply at the app: the host sends 64, the two routers
# forward (62), ns srv forwards it into its TUN (61); vless-tun writes it
# into ns app's TUN, where it is delivered, not forwarded: ping shows
# ttl=61. traceroute -I: hop 1 is the server (its kernel decrements the TTL
# when it forwards out of vlessip0 and answers time-exceeded from
# 198.18.240.1), hop 2 the router 198.18.1.2, hop 3 the router 198.18.3.2,
# hop 4 the host. A UDP traceroute works only
# for destinations in ip.passthrough (otherwise UDP goes through the UDP
# sessions, which carry payloads, not TTLs): 198.18.3.0/24 is listed.
source "$(dirname "$0")/lib.sh"
source "$VT_TOOLS/testbed.sh"
require_root
require_cmd nft ip python3 openssl ping traceroute
: "${VT_SERVER:?path to vless-server}" "${VT_TUN:?path to vless-tun}"

tb_setup ipe
tb_host_behind_web
HOST4=$TB_HOST4 HOST6=$TB_HOST6 NOHOST4=$TB_NOHOST4

IP_CFG=$(printf '%s\n' '[ip]' 'enabled = true' 'tun_name = "vlessip0"' 'pool4 = "198.18.240.0/24"' \
  'pool6 = "2001:db8:f0::/64"' 'masquerade = true' "state_file = \"$VT_TMP/ip-exit.state\"")
tb_server_start srv yes "$IP_CFG"
SRV_LOG="$VT_TMP/srv.log"
wait_log "$SRV_LOG" "ip masquerade: table inet vless_server_vlessip0 installed"

TB_TUN_EXTRA=$(printf '%s\n' '[ip]' 'passthrough = ["198.18.3.0/24"]')
tb_tun_start tun 1 true wait
ip -n "$TB_APP" route replace 198.18.3.0/24 dev vt0
ip -n "$TB_APP" -6 route replace 2001:db8:3::/64 dev vt0
ip -n "$TB_APP" -6 route replace 2001:db8:4::/64 dev vt0

log "1. ping -c 5 through vless-tun and the server's IP exit to the host two hops behind"
out=$(in_app ping -n -c 5 -i 0.2 -W 2 $HOST4) || true
echo "$out"
grep -q "5 packets transmitted, 5 received" <<<"$out" || fail "IPv4: not 5 replies"
[ "$(grep -c "from $HOST4: icmp_seq=.* ttl=61 " <<<"$out")" = 5 ] || fail "IPv4: the TTL is not 61 on every reply"

log "2. no reply from an address where no host exists (nothing answers locally)"
out=$(in_app ping -n -c 2 -i 0.2 -W 1 $NOHOST4) || true
echo "$out"
grep -q "2 packets transmitted, 0 received" <<<"$out" || fail "a reply came from $NOHOST4, where no host exists"

log "3. ping -6"
out=$(in_app ping -6 -n -c 5 -i 0.2 -W 2 $HOST6) || true
echo "$out"
grep -q "5 packets transmitted, 5 received" <<<"$out" || fail "IPv6: not 5 replies"
[ "$(grep -c "from $HOST6: icmp_seq=.* ttl=61 " <<<"$out")" = 5 ] || fail "IPv6: the hop limit is not 61 on every reply"

log "4. traceroute -I lists the server, the two routers and the host"
out=$(in_app traceroute -I -n -q 1 -w 2 -m 6 $HOST4) || true
echo "$out"
grep -Eq "^ *1 +198\.18\.240\.1 " <<<"$out" || fail "hop 1 is not the server's IP exit"
grep -Eq "^ *2 +198\.18\.1\.2 " <<<"$out" || fail "hop 2 is not the first router"
grep -Eq "^ *3 +$TB_RTR4 " <<<"$out" || fail "hop 3 is not the second router"
grep -Eq "^ *4 +$HOST4 " <<<"$out" || fail "hop 4 is not the host"

log "5. UDP traceroute to a passthrough CIDR"
out=$(in_app traceroute -U -n -q 1 -w 2 -m 6 $HOST4) || true
echo "$out"
grep -Eq "^ *3 +$TB_RTR4 " <<<"$out" || fail "UDP traceroute: hop 3 is not the second router"
grep -Eq "^ *4 +$HOST4 " <<<"$out" || fail "UDP traceroute: hop 4 is not the host"

log "6. raw IP protocol 253 from an app socket, both ways"
cat >"$VT_TMP/p253host.py" <<'PY'
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 253)
s.settimeout(15)
data, (src, _) = s.recvfrom(65535)
payload = data[(data[0] & 15) * 4:]
print("host got from=%s payload=%s" % (src, payload.decode()), flush=True)
s.sendto(b"pong:" + payload, (src, 0))
PY
cat >"$VT_TMP/p253app.py" <<'PY'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 253)
s.settimeout(5)
s.sendto(sys.argv[2].encode(), (sys.argv[1], 0))
while True:
    data, (src, _) = s.recvfrom(65535)
    if src == sys.argv[1]:
        print("app got from=%s payload=%s" % (src, data[(data[0] & 15) * 4:].decode()), flush=True)
        break
PY
start p253 ip netns exec "$TB_HOST" python3 "$VT_TMP/p253host.py"
P253_PID=$(last_pid)
sleep 0.3
out=$(in_app python3 "$VT_TMP/p253app.py" $HOST4 "hello-253-$$") || fail "no protocol-253 answer came back"
echo "$out"
wait "$P253_PID" || true
cat "$VT_TMP/p253.log"
grep -q "host got from=198.18.1.1 payload=hello-253-$$" "$VT_TMP/p253.log" || fail "protocol 253 did not reach the host intact"
grep -q "app got from=$HOST4 payload=pong:hello-253-$$" <<<"$out" || fail "the protocol-253 answer did not come back intact"

log "7. TCP still goes through lwIP and the mux, not CmdIP, outside the passthrough"
start http ip netns exec "$TB_WEB" python3 -m http.server --bind 198.18.1.2 8080
wait_port 198.18.1.2 8080 10 "$TB_WEB"
in_app curl -sS -o /dev/null -m 5 http://198.18.1.2:8080/ || fail "HTTP outside the passthrough failed"
wait_log "$TB_TUN_LOG" "flow #[0-9]+ .*dst=198\.18\.1\.2:8080 " 5

stop_pid "$TB_TUN_PID" || fail "vless-tun did not exit cleanly"
stop_pid "$TB_SERVER_PID" || fail "vless-server did not exit cleanly"
grep -E "stopping: ip" "$TB_TUN_LOG" "$SRV_LOG" | sed 's/^/  /'
grep -q "stopping: ip (CmdIP)" "$TB_TUN_LOG" || fail "no CmdIP stop line in vless-tun's log"
in_srv nft list table inet vless_server_vlessip0 >/dev/null 2>&1 && fail "the nftables table outlived the server"
log "PASS"
