#!/usr/bin/env bash
# Network change (issue 10): the app namespace's uplink moves while flows
# run. Before: ns app reaches the server over veth0 (198.18.0.1,
# 2001:db8::1). The move: veth0's addresses are deleted and the link goes
# down, a second uplink veth2 comes up with other addresses (198.18.10.1,
# 2001:db8:10::1) and a route to the server through it. vless-tun follows
# rtnetlink by itself; nobody tells it. Then, with mux off (a connection per
# flow, UDP in separated channels), the uplink moves back to veth0 with yet
# other addresses (198.18.0.5, 2001:db8:0:5::1). Shown, both times:
#   - a TCP download in progress over the old uplink is reset promptly (its
#     server connection's local address is gone; nothing could carry it on);
#   - new flows work within seconds, from the new address (the server logs
#     the peer 198.18.10.1);
#   - one app UDP socket keeps its mapping: the reflector in ns web sees the
#     same server-side ip:port before and after (the udp_session survives
#     and re-dials its channel with the same session id);
#   - vless-tun logs the change and exits 0 on SIGTERM.
source "$(dirname "$0")/lib.sh"
source "$VT_TOOLS/testbed.sh"
: "${VT_SERVER:?path to vless-server}" "${VT_TUN:?path to vless-tun}"
require_root
require_cmd curl python3 openssl

tb_setup netchg
# The second uplink, down and without addresses until the move.
ip -n "$TB_APP" link add veth2 type veth peer name veth2 netns "$TB_SRV"
ip -n "$TB_SRV" addr add 198.18.10.2/30 dev veth2
ip -n "$TB_SRV" addr add 2001:db8:10::2/64 dev veth2 nodad
ip -n "$TB_SRV" link set veth2 up
# For the move back to veth0 with other addresses.
ip -n "$TB_SRV" addr add 198.18.0.6/30 dev veth0
ip -n "$TB_SRV" addr add 2001:db8:0:5::2/64 dev veth0 nodad

mkdir -p "$VT_TMP/www"
echo "<html><body>hello after the move</body></html>" >"$VT_TMP/www/index.html"
start web ip netns exec "$TB_WEB" python3 -m http.server 80 --bind :: --directory "$VT_TMP/www"
start reflector ip netns exec "$TB_WEB" python3 "$VT_TOOLS/udp_probe.py" reflect --port 7000 --max-seconds 120
# A slow sender (16 KiB every 50 ms, at most 30 s a connection): the app
# reads as data comes, so it sees a reset at once. (curl --limit-rate would
# not do: it reads ahead in bursts and then sleeps for seconds, noticing a
# reset only when it wakes.)
start slowweb ip netns exec "$TB_WEB" python3 -c '
import socket, threading, time
def serve(c):
    try:
        c.settimeout(5); c.recv(4096)
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n")
        end = time.monotonic() + 30
        while time.monotonic() < end:
            c.sendall(b"s" * 16384); time.sleep(0.05)
    except OSError:
        pass
    finally:
        c.close()
s = socket.socket(socket.AF_INET6); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0); s.bind(("::", 8081)); s.listen(16)
s.settimeout(1)
end = time.monotonic() + 300
while time.monotonic() < end:
    try:
        c, _ = s.accept()
    except socket.timeout:
        continue
    threading.Thread(target=serve, args=(c,), daemon=True).start()
'
wait_port "$TB_WEB4" 8081 10 "$TB_WEB"
wait_port "$TB_WEB4" 80 10 "$TB_WEB"
tb_server_start
page() { in_app curl -sSf --max-time "${1:-5}" "http://$TB_WEB4/" | grep -q 'after the move'; }

# pass NAME FROM_IF TO_IF TO4 TO6 VIA4 VIA6 [route]: vless-tun running
# (TB_TUN_EXTRA), then the uplink moves from FROM_IF to TO_IF (which gets
# TO4/30, TO6/64 and a route to the server via VIA4/VIA6). With "route",
# both uplinks stay up with their addresses and only the route to the server
# moves (the default route switching to another uplink).
pass() {
  local name=$1 from=$2 to=$3 to4=$4 to6=$5 via4=$6 via6=$7 how=${8:-move}
  tb_tun_start "tun-$name" 1 true wait
  page 10 || fail "$name: no page before the move"
  local marker="$VT_TMP/moved-$name"
  start "mapping-$name" ip netns exec "$TB_APP" python3 "$VT_TOOLS/udp_probe.py" mapping \
    --target "$TB_WEB4:7000" --marker "$marker" --timeout 20
  local map_pid; map_pid=$(last_pid)
  wait_log "$VT_TMP/mapping-$name.log" '^before [0-9.]+ [0-9]+' 10
  start "slow-$name" ip netns exec "$TB_APP" curl -sS --max-time 60 "http://$TB_WEB4:8081/" -o "$VT_TMP/big.got"
  local slow_pid; slow_pid=$(last_pid)
  sleep 2
  kill -0 "$slow_pid" 2>/dev/null || fail "$name: the slow download ended before the move: $(cat "$VT_TMP/slow-$name.log")"

  local t0
  if [ "$how" = route ]; then
    log "$name: the route to the server moves from $from to $to ($to4); both keep their addresses"
    t0=$(date +%s%N)
  else
    log "$name: moving the uplink: $from loses its addresses and goes down, $to comes up with $to4"
    t0=$(date +%s%N)
    ip -n "$TB_APP" addr flush dev "$from"
    ip -n "$TB_APP" link set "$from" down
    ip -n "$TB_APP" link set "$to" up
    ip -n "$TB_APP" addr add "$to4/30" dev "$to"
    ip -n "$TB_APP" addr add "$to6/64" dev "$to" nodad
  fi
  ip -n "$TB_APP" route replace "$TB_SRV4/32" via "$via4" dev "$to"
  ip -n "$TB_APP" -6 route replace "$TB_SRV6/128" via "$via6" dev "$to"
  touch "$marker"

  # A new flow works within seconds.
  local ok_ms=""
  for _ in $(seq 1 30); do
    if page 2; then ok_ms=$(( ($(date +%s%N) - t0) / 1000000 )); break; fi
    sleep 0.2
  done
  [ -n "$ok_ms" ] || fail "$name: no page within about 15 s after the move"
  log "$name: new flows: a page $ok_ms ms after the move"

  # The download in progress: reset promptly, not left hanging.
  local rc=0
  for _ in $(seq 1 30); do kill -0 "$slow_pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$slow_pid" 2>/dev/null; then
    # Still running 3 s after the move: what the app's socket looks like.
    log "$name: the download still runs; its socket: $(ip netns exec "$TB_APP" ss -tnioe "dport = :80" | tr '\n' ' ')"
  fi
  wait "$slow_pid" || rc=$?
  local slow_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  [ "$rc" -ne 0 ] || fail "$name: the download over the old uplink completed (expected a reset: its local address is gone)"
  [ "$slow_ms" -lt 10000 ] || fail "$name: the download over the old uplink took $slow_ms ms to fail"
  log "$name: flow in progress: reset (curl exit $rc) $slow_ms ms after the move: $(tr '\n' ' ' <"$VT_TMP/slow-$name.log")"

  # The UDP socket's mapping at the far end is unchanged.
  wait "$map_pid" || fail "$name: the UDP probe failed: $(cat "$VT_TMP/mapping-$name.log")"
  local before after
  before=$(sed -n 's/^before \([0-9.]* [0-9]*\) .*/\1/p' "$VT_TMP/mapping-$name.log")
  after=$(sed -n 's/^after \([0-9.]* [0-9]*\) .*/\1/p' "$VT_TMP/mapping-$name.log")
  [ -n "$before" ] && [ "$before" = "$after" ] ||
    fail "$name: the UDP mapping changed across the move: $(cat "$VT_TMP/mapping-$name.log")"
  log "$name: UDP: the reflector saw $before before and after ($(grep -o 'ms=[0-9]*' "$VT_TMP/mapping-$name.log") to the first answer after)"

  wait_log "$TB_TUN_LOG" 'network changed: [1-9][0-9]* server connections closed' 5
  log "$name: vless-tun: $(grep -Eo 'network change seen: .*' "$TB_TUN_LOG" | tail -1); $(grep -Eo 'network changed: [1-9][0-9]* server connections closed \([^)]*\)' "$TB_TUN_LOG" | tail -1)"
  rc=0
  stop_pid "$TB_TUN_PID" 10 || rc=$?
  [ $rc -eq 0 ] || fail "$name: vless-tun exited $rc on SIGTERM"
  # The server logs a connection when it closes.
  wait_log "$VT_TMP/vless-server.log" "conn #[0-9]+ peer=${to4//./\\.}:" 10
  log "$name: the server saw connections from $to4"
}

# Mux (the default): TCP flows and the UDP stream on one connection.
pass mux veth0 veth2 198.18.10.1 2001:db8:10::1 198.18.10.2 2001:db8:10::2
# Without mux: a connection per flow, UDP in separated channels; and back.
TB_TUN_EXTRA="[mux]
enabled = false" pass separated veth2 veth0 198.18.0.5 2001:db8:0:5::1 198.18.0.6 2001:db8:0:5::2
# Both uplinks up; only the route to the server moves back to veth2.
ip -n "$TB_APP" link set veth2 up
ip -n "$TB_APP" addr add 198.18.10.5/30 dev veth2
ip -n "$TB_APP" addr add 2001:db8:10::5/64 dev veth2 nodad
ip -n "$TB_SRV" addr add 198.18.10.6/30 dev veth2
TB_TUN_EXTRA="" pass route veth0 veth2 198.18.10.5 2001:db8:10::5 198.18.10.6 2001:db8:10::2 route
log "PASS"
