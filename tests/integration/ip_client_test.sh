#!/usr/bin/env bash
# app: ping 198.18.1.2 / 2001:db8:1::2 --vt0--> vless-tun --VLESS v1 CMD 5/TLS--> tools/ip_cmd_tools.py (ns srv 198.18.0.2:443: answers echo requests itself)
#
# The client half of CmdIP (docs/client.md "IP passthrough (CmdIP)") without
# vless-server: ICMP that enters the TUN goes through one CmdIP session and
# the replies the fake server builds come back to ping (3 of 3, IPv4 and
# IPv6). With the fake server gone, a ping gets no reply: nothing answers
# locally. vless-tun's stop line counts the packets.
source "$(dirname "$0")/lib.sh"
source "$VT_TOOLS/testbed.sh"
: "${VT_TUN:?path to vless-tun}"
require_root
require_cmd python3 openssl ip ping
# iputils ping (scripts/setup.sh installs it).
pinger() {  # pinger [-6] ADDR COUNT INTERVAL
  local six=""
  [ "$1" = -6 ] && { six=-6; shift; }
  in_app ping $six -n -c "$2" -i "$3" -W 2 "$1"
}
T0=$(date +%s)

tb_setup ipc
start fake-ip ip netns exec "$TB_SRV" python3 "$VT_TOOLS/ip_cmd_tools.py" server --listen "$TB_SRV4:443" \
  --cert "$VT_TMP/server.pem" --key "$VT_TMP/server.key" --uuid "$TB_UUID" --max-seconds 120
FAKE_PID=$(last_pid)
wait_port "$TB_SRV4" 443 10 "$TB_SRV"

TB_TUN_EXTRA='[mux]
enabled = false
[ip]
queue_packets = 16' tb_tun_start tun-ip 1 true wait

out=$(pinger "$TB_WEB4" 3 0.3 2>&1) || fail "ping $TB_WEB4 through CmdIP failed: $out"
grep -q "3 packets transmitted, 3 received" <<<"$out" || fail "want 3 replies from $TB_WEB4: $out"
grep -q "ttl=64" <<<"$out" || fail "want the fake server's TTL 64 in the replies: $out"
log "IPv4: $(grep 'packets transmitted' <<<"$out")"
out=$(pinger -6 "$TB_WEB6" 3 0.3 2>&1) || fail "ping -6 $TB_WEB6 through CmdIP failed: $out"
grep -q "3 packets transmitted, 3 received" <<<"$out" || fail "want 3 replies from $TB_WEB6: $out"
log "IPv6: $(grep 'packets transmitted' <<<"$out")"

# The fake server goes away: no reply, from anyone.
stop_pid "$FAKE_PID" 5 || true
[ "$(grep -c '^request cmd=5' "$VT_TMP/fake-ip.log")" -eq 1 ] ||
  fail "want one CMD 5 request at the fake server: $(cat "$VT_TMP/fake-ip.log")"
[ "$(grep -c '^unit .*echo=1' "$VT_TMP/fake-ip.log")" -eq 6 ] ||
  fail "want 6 echo requests at the fake server: $(cat "$VT_TMP/fake-ip.log")"
if out=$(pinger "$TB_WEB4" 2 0.5 2>&1); then
  fail "a ping got a reply with the CmdIP server gone: $out"
fi
grep -q " 0 received" <<<"$out" || fail "want 0 replies with the server gone: $out"
log "server gone: $(grep 'packets transmitted' <<<"$out")"

kill -0 "$TB_TUN_PID" || fail "vless-tun died"
stop_pid "$TB_TUN_PID" 10 || fail "vless-tun exited non-zero"
line=$(grep "stopping: ip (CmdIP)" "$TB_TUN_LOG") || fail "no CmdIP stop line"
grep -Eq "up [0-9]+ packets/.* down 6 packets/" <<<"$line" || fail "want 6 packets down in: $line"
log "vless-tun: ${line#*stopping: }"
log "PASS in $(( $(date +%s) - T0 )) s"
