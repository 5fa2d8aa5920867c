#!/usr/bin/env bash
# app (ONE UDP socket) --vt0--> vless-tun --v1 mux/TLS--> vless-server (ns srv) --> 1,000 ports of a reflector (ns web 198.18.1.2:7300..8299)
#
# Issue 14's case, as a P2P app (DHT, ICE, games) does it: one socket sends
# to 1,000 remotes and re-sends to the silent ones. In the default
# configuration every remote must answer, from its own port, over ONE
# server connection (one Mux connection, one SimpleSocks UDP stream): the
# server's established connections on :443 are counted while the app is
# still talking. Bounded: 1,000 remotes, 30 s.
source "$(dirname "$0")/lib.sh"
source "$VT_TOOLS/testbed.sh"
source "$VT_TOOLS/udp_bed.sh"
: "${VT_SERVER:?path to vless-server}" "${VT_TUN:?path to vless-tun}"
require_root
require_cmd python3 openssl ip ss
N=${VT_REMOTES:-1000}
PORT=7300
T0=$(date +%s)

tb_setup umany
start reflect ip netns exec "$TB_WEB" python3 "$UB_PROBE" reflect --port $PORT --ports "$N" --max-seconds 120
ub_wait_reflector "$TB_SRV" 198.18.1.2 $PORT
ub_wait_reflector "$TB_SRV" 198.18.1.2 $((PORT + N - 1))
tb_server_start
ub_tun_start tun 1 443  # the default configuration: no [udp] or [mux] table

out=$(in_app python3 "$UB_PROBE" spray --target 198.18.1.2:$PORT --count "$N" --timeout 30) ||
  fail "not every remote answered: $out"
log "$out"
conns=$(ip netns exec "$TB_SRV" ss -Htn state established '( sport = :443 )' | wc -l)
# With several workers (VT_WORKERS) each keeps its own warm mux connection;
# the app socket's datagrams read on the other queues are handed to its
# session's home worker, so its one UDP stream stays one.
workers=${VT_WORKERS:-1}
[ "$conns" -eq "$workers" ] || fail "want $workers server connection(s) (one per worker), got $conns: $(ip netns exec "$TB_SRV" ss -Htn state established '( sport = :443 )')"
log "server connections on :443 while the app talks to $N remotes: $conns"
ub_tun_stop "mux"
if [ "$workers" -gt 1 ]; then
  line=$(grep -E "stopping: $workers workers, .* [0-9]+ datagrams handed to their home worker \(0 dropped" "$TB_TUN_LOG") ||
    fail "no workers line with 0 hand-over drops: $(grep 'workers' "$TB_TUN_LOG" | tr '\n' ';')"
  handed=$(sed -E 's/.* ([0-9]+) datagrams handed.*/\1/' <<<"$line")
  [ "$handed" -gt 0 ] || fail "$N remotes from one socket, yet no datagram read on another queue: $line"
  log "$line"
fi
grep -Eq "udp #[0-9]+ app=198\.18\.2\.1:[0-9]+ mode=mux channels=1 up=[0-9]+/[0-9]+ down=[0-9]+/[0-9]+ " "$TB_TUN_LOG" ||
  fail "no mux session line with channels=1: $(grep 'udp #' "$TB_TUN_LOG" | tr '\n' ';')"
wait_log "$VT_TMP/vless-server.log" "udp conn #[0-9]+ .*mode=mux " 5
n_udp=$(grep -c "udp conn #" "$VT_TMP/vless-server.log")
[ "$n_udp" -eq 1 ] || fail "want one server UDP relay (one stream), got $n_udp"
log "PASS in $(( $(date +%s) - T0 )) s"
