#!/usr/bin/env bash
# churn run (ns app) --vt0--> vless-tun --VLESS v1/TLS--> vless-server (ns srv) --> churn serve (ns web)
#   TCP: W workers (32) each connect, send a line, read the 1 KiB answer (the
#        server then closes first, which leaves TIME_WAIT on our side) and
#        close, over and over;
#   UDP: meanwhile 20 new sockets a second each send one datagram and wait
#        1 s for the echo (DNS, NTP, QUIC probes), default UDP mode.
# Proves (issue 15), over IPv4 and IPv6:
#   - no flow failed and none took longer than VT_CHURN_MAX_MS (1000 ms: a
#     stalled SYN costs the app's 1 s retransmission timer at least);
#   - every UDP socket answered, for several times the new-session timeout
#     of both ends (set to 3 s here, default 30 s): the client's sessions
#     expire throughout, and with the server's per-user cap at 40 sessions
#     its least-recently-active eviction runs throughout too (before:
#     refusal at the cap and 300 s lifetimes locked UDP out after ~13 s);
# The stop lines show how often the app's kernel reused a 4-tuple lwIP
# still held (the stall this used to cause is what the bound catches).
source "$(dirname "$0")/lib.sh"
source "$VT_TOOLS/testbed.sh"
: "${VT_SERVER:?path to vless-server}" "${VT_TUN:?path to vless-tun}" "${VT_CHURN:?path to churn}"
require_root
secs=${VT_CHURN_SECS:-25}
workers=${VT_CHURN_WORKERS:-32}
max_ms=${VT_CHURN_MAX_MS:-1000}

tb_setup churn
# As in bench/churn.sh: the app's kernel may reuse its own TIME_WAIT ports.
in_app sysctl -qw net.ipv4.tcp_tw_reuse=1
start churn-serve ip netns exec "$TB_WEB" "$VT_CHURN" serve --port 7100
wait_port "$TB_WEB4" 7100 10 "$TB_WEB"
tb_server_start vless-server yes '[udp]
new_session_timeout = "3s"
max_sessions_per_user = 40'
tb_tun_start tun 1 true wait 443 '[udp]
new_session_timeout = "3s"'

check() {  # check OUT: asserts on churn run's summary line
  local out=$1 kv
  declare -A f
  for kv in $(echo "$out" | head -1); do f[${kv%%=*}]=${kv#*=}; done
  [ "${f[tcp_done]:-0}" -gt 0 ] || fail "no TCP flow completed: $out"
  [ "${f[tcp_failed]}" = 0 ] || fail "failed TCP flows: $out"
  awk -v m="${f[max_ms]}" -v b="$max_ms" 'BEGIN{exit !(m <= b)}' ||
    fail "slowest TCP flow took ${f[max_ms]} ms (bound $max_ms ms): $out"
  [ "${f[udp_sent]:-0}" -ge $((secs * 20 - 20)) ] || fail "too few UDP sockets sent: $out"
  [ "${f[udp_lost]}" = 0 ] && [ "${f[udp_answered]}" = "${f[udp_sent]}" ] ||
    fail "UDP sockets left unanswered: $out"
}

for dst in "$TB_WEB4" "[$TB_WEB6]"; do
  log "churn to $dst: $workers workers and 20 new UDP sockets/s for ${secs}s"
  out=$(in_app timeout $((secs + 60)) "$VT_CHURN" run --target "$dst:7100" --seconds "$secs" \
        --workers "$workers" --udp-rate 20 --udp-wait-ms 1000 --timeout-ms 10000) ||
    fail "churn run failed: $out"
  log "$(echo "$out" | tr '\n' ' ')"
  check "$out"
done
kill -0 "$TB_TUN_PID" || fail "vless-tun died"
stop_pid "$TB_TUN_PID" || fail "vless-tun did not stop cleanly"
stop_pid "$TB_SERVER_PID" || fail "vless-server did not stop cleanly"
grep -E 'stopping: (tcp|tls|pool|udp)' "$TB_TUN_LOG" | while read -r l; do log "tun: ${l#*INFO  }"; done
grep -E 'stopping: (tls|udp)' "$VT_TMP/vless-server.log" | while read -r l; do log "server: ${l#*INFO  }"; done
log "PASS"
