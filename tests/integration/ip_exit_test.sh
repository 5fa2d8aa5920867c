#!/usr/bin/env bash
# IP sessions (CMD 5) through vless-server's own TUN, with masquerade.
#
#   ns app: tools/ip_probe.py (CmdIP over TLS, its own packets, source 198.18.0.1)
#     --- ns srv: vless-server, TUN vlessip0 198.18.240.1/24 2001:db8:f0::1/64,
#                 nft masquerade out of veth1 (198.18.1.1)
#     --- ns web (router) --- ns rtr (router) --- ns host 198.18.3.10 2001:db8:4::2
#         (testbed.sh tb_host_behind_web)
#
# Expected TTL of an echo reply at the client: the host sends 64, the two
# routers forward (62), ns srv forwards into the TUN (61); the client reads
# the packet off the stream without a hop of its own: 61 (IPv6 hop limit too).
source "$(dirname "$0")/lib.sh"
source "$VT_TOOLS/testbed.sh"
require_root
require_cmd nft ip python3 openssl
: "${VT_SERVER:?path to vless-server}"
PROBE="$VT_TOOLS/ip_probe.py"

tb_setup ipx
tb_host_behind_web
HOST4=$TB_HOST4 HOST6=$TB_HOST6 NOHOST4=$TB_NOHOST4

STATE="$VT_TMP/ip-exit.state"
IP_CFG=$(printf '%s\n' '[ip]' 'enabled = true' 'tun_name = "vlessip0"' 'pool4 = "198.18.240.0/24"' \
  'pool6 = "2001:db8:f0::/64"' 'masquerade = true' 'max_sessions_per_user = 4' \
  'lease_grace = "30s"' "state_file = \"$STATE\"")

snapshot() {  # what must be as before after a stop or a crash + restart
  {
    in_srv nft list ruleset
    echo "--- routes"; in_srv ip route; in_srv ip -6 route | grep -v '^fe80\|^multicast' || true
    echo "--- sysctl"; in_srv sysctl -n net.ipv4.ip_forward net.ipv6.conf.all.forwarding
  } 2>&1
}
in_srv sysctl -qw net.ipv4.ip_forward=0 net.ipv6.conf.all.forwarding=0
BEFORE=$(snapshot)

probe() { in_app python3 "$PROBE" "$@" --server 198.18.0.2:443 --uuid "$TB_UUID" --ca "$VT_TMP/ca.pem" --sni test.name; }

tb_server_start srv yes "$IP_CFG"
LOG="$VT_TMP/srv.log"
wait_log "$LOG" "ip masquerade: table inet vless_server_vlessip0 installed"
in_srv nft list table inet vless_server_vlessip0 >/dev/null || fail "no nftables table while running"
[ "$(in_srv sysctl -n net.ipv4.ip_forward)" = 1 ] || fail "ip_forward not on while running"

log "1. ping -c 5 through the IP exit to the host two hops behind"
out=$(probe ping --src 198.18.0.1 --dst $HOST4 --count 5)
echo "$out"
grep -q "sent=5 received=5" <<<"$out" || fail "IPv4: not 5 replies"
[ "$(grep -c "reply .*ttl=61 src=$HOST4" <<<"$out")" = 5 ] || fail "IPv4: TTL is not 61 on every reply"

log "2. no reply from an address where no host exists"
out=$(probe ping --src 198.18.0.1 --dst $NOHOST4 --count 2 --wait 1.5)
echo "$out"
grep -q "sent=2 received=0" <<<"$out" || fail "a reply came from $NOHOST4, where no host exists"

log "3. IPv6 echo"
out=$(probe ping --src 2001:db8:0:ff::1 --dst $HOST6 --count 5)
echo "$out"
grep -q "sent=5 received=5" <<<"$out" || fail "IPv6: not 5 replies"
[ "$(grep -c "reply .*ttl=61 src=$HOST6" <<<"$out")" = 5 ] || fail "IPv6: hop limit is not 61 on every reply"

log "4. raw IP protocol 253 both ways"
cat >"$VT_TMP/p253.py" <<'PY'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 253)
s.settimeout(15)
data, (src, _) = s.recvfrom(65535)
payload = data[(data[0] & 15) * 4:]
print("host got from=%s payload=%s" % (src, payload.decode()), flush=True)
s.sendto(b"pong:" + payload, (src, 0))
PY
start p253 ip netns exec "$TB_HOST" python3 "$VT_TMP/p253.py"
P253_PID=$(last_pid)
sleep 0.3
out=$(probe proto --src 198.18.0.1 --dst $HOST4 --payload "hello-253-$$" --wait 5)
echo "$out"
wait "$P253_PID" || true
cat "$VT_TMP/p253.log"
grep -q "host got from=198.18.1.1 payload=hello-253-$$" "$VT_TMP/p253.log" || fail "protocol 253 did not reach the host intact (masqueraded)"
grep -q "proto253 from=$HOST4 to=198.18.0.1 payload=pong:hello-253-$$" <<<"$out" || fail "protocol 253 reply did not come back intact"

log "5. hostile units (spoofed source, to the server itself, bad header checksum, LEN 0, not IP, short, LEN past or short of the packet, IHL 3, 9 IPv6 extension headers): dropped, counted, session lives"
out=$(probe hostile --src 198.18.0.1 --dst $HOST4 --own 198.18.240.1)
echo "$out"
grep -q "reply seq=4" <<<"$out" || fail "the session did not survive the hostile packets"
wait_log "$LOG" "drops=.*spoofed=1.*dst_own=1.*parse\[empty\]=1 parse\[bad version\]=1 parse\[truncated header\]=1 parse\[ihl too small\]=1 parse\[total length mismatch\]=2 parse\[bad header checksum\]=1 parse\[too many extension headers\]=1" 5

log "6. two clients at once: different pool addresses, each only its own replies"
probe ping --src 198.18.0.1 --dst $HOST4 --count 10 --interval 0.1 >"$VT_TMP/c1.out" &
C1=$!
probe ping --src 198.18.0.5 --dst $HOST4 --count 10 --interval 0.1 >"$VT_TMP/c2.out" &
C2=$!
wait $C1 || fail "client 1 failed"
wait $C2 || fail "client 2 failed"
cat "$VT_TMP/c1.out" "$VT_TMP/c2.out" | grep -v '^reply' || true
for f in c1 c2; do
  grep -q "sent=10 received=10" "$VT_TMP/$f.out" || fail "$f: not 10 replies"
  ! grep -q "WRONG-DESTINATION\|^other" "$VT_TMP/$f.out" || fail "$f: got someone else's packets"
done
sleep 0.5
leases=$(grep -Eo "ip v4=[0-9.]+\(client 198.18.0.[15]\)" "$LOG" | tail -2 | sort -u)
echo "$leases"
[ "$(echo "$leases" | cut -d'(' -f1 | sort -u | wc -l)" = 2 ] || fail "two concurrent clients did not get two pool addresses"

log "7. stop: kernel state as before"
stop_pid "$TB_SERVER_PID" || fail "vless-server exited non-zero"
grep "stopping: ip" "$LOG"
grep -q "ip masquerade removed\|ip: masquerade removed" "$LOG" || fail "no removal line"
AFTER=$(snapshot)
[ "$BEFORE" = "$AFTER" ] || { diff <(echo "$BEFORE") <(echo "$AFTER"); fail "kernel state differs after stop"; }
[ ! -e "$STATE" ] || fail "state file left after a clean stop"

log "8. SIGKILL, then a new start cleans up"
tb_server_start srv2 yes "$IP_CFG"
wait_log "$VT_TMP/srv2.log" "table inet vless_server_vlessip0 installed"
kill -9 "$TB_SERVER_PID"; wait "$TB_SERVER_PID" 2>/dev/null || true
[ -e "$STATE" ] || fail "no state file after SIGKILL"
in_srv nft list table inet vless_server_vlessip0 >/dev/null 2>&1 || fail "expected the crashed run's table to be left"
tb_server_start srv3 yes "$IP_CFG"
wait_log "$VT_TMP/srv3.log" "removed what an earlier run left"
wait_log "$VT_TMP/srv3.log" "table inet vless_server_vlessip0 installed"
out=$(probe ping --src 198.18.0.1 --dst $HOST4 --count 2)
grep -q "sent=2 received=2" <<<"$out" || fail "after recovery: no replies"
stop_pid "$TB_SERVER_PID" || fail "vless-server exited non-zero"
AFTER=$(snapshot)
[ "$BEFORE" = "$AFTER" ] || { diff <(echo "$BEFORE") <(echo "$AFTER"); fail "kernel state differs after SIGKILL + restart + stop"; }
log "PASS"
