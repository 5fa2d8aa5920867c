#!/usr/bin/env bash
# app (many UDP sockets) --vt0--> vless-tun [udp] max_sessions=4 max_channels=8 idle_timeout=3s queue_datagrams=8 --v1 separated/TLS--> vless-server (ns srv) --> reflector (ns web 198.18.1.2:7400-7412)
#
# vless-tun's UDP limits hold and are logged, never silent:
#  1. a burst of 100 datagrams on a new channel, before its server
#     connection is up, keeps at most 8 waiting; the rest are dropped,
#     counted on the session line and warned about; what was kept is echoed;
#  2. with 6 app sockets and max_sessions = 4 the least recently active
#     sessions (the first two) are evicted (reason=evicted) while every new
#     socket is served;
#  4. one app socket talking to 12 remotes with max_channels = 8: every
#     remote is answered, through one NAT mapping (channels beyond the cap
#     replace the least recently used; a remote whose channel went is
#     reopened on its next datagram);
#  3. a session with no datagram for idle_timeout closes
#     (reason=idle_timeout);
#  5. vless-server with [udp] max_sessions_per_user = 2: a user's third
#     session evicts the least recently active one (never refuses the new
#     one); the evicted channel ends cleanly (the client logs server_closed,
#     no warning), the evicted app socket's next datagram opens a fresh
#     channel and is answered; the evictions are logged summed up and
#     counted in the server's stop line.
source "$(dirname "$0")/lib.sh"
source "$VT_TOOLS/testbed.sh"
source "$VT_TOOLS/udp_bed.sh"
: "${VT_SERVER:?path to vless-server}" "${VT_TUN:?path to vless-tun}"
require_root
require_cmd python3 openssl ip nft
PORT=7400
T0=$(date +%s)

tb_setup ulim
start reflect-web ip netns exec "$TB_WEB" python3 "$UB_PROBE" reflect --port $PORT --ports 13 --max-seconds 240
ub_wait_reflector "$TB_SRV" 198.18.1.2 $PORT
tb_server_start
ub_tun_start tun-lim 1 443 '[udp]
mode = "separated"
max_sessions = 4
max_channels = 8
idle_timeout = "3s"
queue_datagrams = 8'

# 1. burst before the channel is up. New connections to the server are
# held (ns srv drops their SYNs) until vless-tun said its queue is full, so
# the channel cannot connect first however loaded the machine is; the
# kernel resends the SYN a second later and the channel comes up.
in_srv nft -f - <<'NFT'
table inet vt_hold {
  chain input { type filter hook input priority 0; tcp dport 443 tcp flags & (syn | ack) == syn drop; }
}
NFT
in_app python3 "$UB_PROBE" echo --target 198.18.1.2:$PORT --count 100 --min-size 100 --max-size 100 \
  --window 100 --stall 5 --timeout 15 >"$VT_TMP/burst.out" 2>&1 &
burst_pid=$!
wait_log "$TB_TUN_LOG" "WARN .*udp #[0-9]+/[0-9]+ .*already wait" 15
in_srv nft delete table inet vt_hold
wait "$burst_pid" || true
out=$(cat "$VT_TMP/burst.out")
ok=$(sed -n 's/.* ok=\([0-9]*\) .*/\1/p' <<<"$out" | tail -1)
[ -n "$ok" ] || fail "burst: no result: $out"
[ "$ok" -ge 1 ] || fail "burst: nothing came back: $out"
grep -q "corrupt=0 " <<<"$out" || fail "burst: corrupt echoes: $out"
line=$(grep -E "WARN .*udp #[0-9]+/[0-9]+ .*already wait" "$TB_TUN_LOG" | head -1) ||
  fail "burst: no warning about the full connect queue"
log "burst of 100 before connect: $(tail -1 <<<"$out"); vless-tun: ${line#* WARN  }"
wait_log "$TB_TUN_LOG" "udp #1 app=198\.18\.2\.1:[0-9]+ mode=separated channels=1 up=[0-9]+/[0-9]+ down=$ok/[0-9]+ drops=[1-9][0-9]* .*reason=idle" 8
line=$(grep -E "udp #1 app=" "$TB_TUN_LOG")
up=$(sed -n 's/.* up=\([0-9]*\)\/.*/\1/p' <<<"$line") drops=$(sed -n 's/.* drops=\([0-9]*\) .*/\1/p' <<<"$line")
# up counts what the app sent; all but the echoed ones were dropped at the queue.
[ "$up" -eq 100 ] && [ "$drops" -eq $((100 - ok)) ] ||
  fail "burst: want up=100 and drops=$((100 - ok)) (100 sent, $ok echoed): $line"
log "3. idle close and the burst's accounting: ${line#* INFO  }"

# 2. six sockets, four sessions
for i in 1 2 3 4 5 6; do
  got=$(in_app python3 "$UB_PROBE" poke --target 198.18.1.2:$PORT --msg "sock-$i" --timeout 3) ||
    fail "socket $i not served with max_sessions reached: $got"
done
wait_log "$TB_TUN_LOG" "udp #[0-9]+ app=198\.18\.2\.1:[0-9]+ mode=separated .*reason=evicted" 3
n=$(grep -cE "udp #[0-9]+ app=.*reason=evicted" "$TB_TUN_LOG")
# Sessions #2..#7 are the six sockets: the two oldest go.
grep -Eq "udp #2 app=.*reason=evicted" "$TB_TUN_LOG" && grep -Eq "udp #3 app=.*reason=evicted" "$TB_TUN_LOG" ||
  fail "the evicted sessions are not the least recently active: $(grep 'reason=evicted' "$TB_TUN_LOG" | tr '\n' ';')"
[ "$n" -eq 2 ] || fail "want 2 evicted sessions (6 sockets, max 4), got $n: $(grep 'udp #' "$TB_TUN_LOG" | tr '\n' ';')"
log "2. six sockets served, $n sessions evicted at max_sessions = 4"
# 4. twelve remotes, eight channels
targets=()
for p in $(seq $((PORT + 1)) $((PORT + 12))); do targets+=(--target "198.18.1.2:$p"); done
start nat-12 ip netns exec "$TB_APP" python3 "$UB_PROBE" nat "${targets[@]}" --out "$VT_TMP/obs12" --wait 0
pid=$(last_pid)
deadline=$(( $(date +%s) + 20 ))
while kill -0 "$pid" 2>/dev/null; do
  [ "$(date +%s)" -lt "$deadline" ] || fail "12 remotes: the probe still runs after 20 s"
  sleep 0.05
done
wait "$pid" || fail "12 remotes: the probe failed"
grep -q '^seen .* none$' "$VT_TMP/nat-12.log" && fail "12 remotes with max_channels = 8: unanswered: $(grep '^seen .* none$' "$VT_TMP/nat-12.log" | tr '\n' ';')"
[ "$(wc -l <"$VT_TMP/obs12")" -eq 1 ] || fail "12 remotes: more than one mapping: $(tr '\n' ' ' <"$VT_TMP/obs12")"
log "4. 12 remotes answered through one mapping $(cat "$VT_TMP/obs12") with max_channels = 8"

# 5. the server's per-user cap evicts; the evicted app socket recovers
ub_server_stop
tb_server_start vless-server-cap yes '[udp]
max_sessions_per_user = 2'
SLOG="$VT_TMP/vless-server-cap.log"
# One app socket: a datagram now and one 2 s later (within idle_timeout).
start steps-5 ip netns exec "$TB_APP" python3 "$UB_PROBE" steps --step "198.18.1.2:$PORT=keep-1" \
  --step "198.18.1.2:$PORT=keep-2" --wait 2
spid=$(last_pid)
wait_log "$VT_TMP/steps-5.log" "^step 1 .* msg=keep-1" 5
# Two more sockets: the second evicts the first socket's server session.
for i in 1 2; do
  got=$(in_app python3 "$UB_PROBE" poke --target 198.18.1.2:$PORT --msg "cap-$i" --timeout 3) ||
    fail "5. socket $i not served at max_sessions_per_user = 2: $got"
done
wait_log "$SLOG" "WARN +udp nat: evicted 1 session at max_sessions_per_user=2 \(user it-user\)" 5
wait "$spid" || fail "5. the steps probe failed"
grep -Eq "^step 2 .* msg=keep-2" "$VT_TMP/steps-5.log" ||
  fail "5. the evicted socket's next datagram was not answered: $(tr '\n' ';' <"$VT_TMP/steps-5.log")"
lport=$(sed -n 's/^local port //p' "$VT_TMP/steps-5.log")
log "5. sockets beyond the server's per-user cap served; the evicted one answered again"

ub_tun_stop limits
line=$(grep -E "udp #[0-9]+ app=198\.18\.2\.1:$(sed -n 's/^local port //p' "$VT_TMP/nat-12.log") " "$TB_TUN_LOG") ||
  fail "12 remotes: no session line"
log "4. ${line#* INFO  }"
# The evicted socket's session: its first channel ended by the server
# (cleanly: no warning), a second one opened for its next datagram.
line=$(grep -E "udp #[0-9]+ app=198\.18\.2\.1:$lport .*channels=2 " "$TB_TUN_LOG") ||
  fail "5. want the evicted socket's session with 2 channels: $(grep -E "app=198\.18\.2\.1:$lport " "$TB_TUN_LOG")"
sid=$(sed -n 's/.*udp #\([0-9]*\) app=.*/\1/p' <<<"$line")
grep -Eq "DEBUG .*udp #$sid/1 channel to 198\.18\.1\.2:$PORT closed: .*reason=server_closed" "$TB_TUN_LOG" ||
  fail "5. the evicted channel did not end as server_closed: $(grep -E "udp #$sid/" "$TB_TUN_LOG" | tr '\n' ';')"
grep -E "WARN .*udp #$sid/" "$TB_TUN_LOG" && fail "5. the server's eviction made vless-tun warn"
log "5. ${line#* INFO  }"
ub_server_stop vless-server-cap
grep -Eq "udp conn #[0-9]+ .*close=udp session evicted at max_sessions_per_user=2" "$SLOG" ||
  fail "5. no evicted connection in the server log"
line=$(grep -E "stopping: udp nat [0-9]+ sessions .*evicted 2 at max_sessions_per_user, 0 at max_sessions" "$SLOG") ||
  fail "5. want 2 evictions in the server's stop line: $(grep -E 'stopping|udp nat: evicted' "$SLOG" | tr '\n' ';')"
log "5. vless-server: $(grep -E 'udp nat: evicted' "$SLOG" | sed 's/^.* WARN  //' | tr '\n' ';') ${line#* INFO  }"
log "PASS in $(( $(date +%s) - T0 )) s"
