#!/usr/bin/env bash
# Churn benchmark (by hand, not in CI; root; about 3 minutes with the
# defaults): the load of a browser plus short-lived UDP sockets.
#   churn run (ns app) --vt0--> vless-tun --VLESS v1 (TLS | plain)--> vless-server (ns srv) --> churn serve (ns web)
#   churn run (ns app) --> v2ray dokodemo-door (ns app) --VLESS v0/TLS--> v2ray (ns srv) --> churn serve (ns web)
#   churn run (ns app) --kernel forwarding in ns srv--> churn serve (ns web)   (the limit: no tunnel)
# W workers each connect, send a line, read 1 KiB (the server then closes)
# and close, over and over; meanwhile R new UDP sockets a second each send
# one datagram and wait 1 s for the echo. Prints TCP flows/s, the p50/p99/max
# time per flow, flows over 1 s, failed flows and UDP sockets answered, and
# the CPU seconds of the client and server processes.
# Results and analysis: docs/performance.md ("Churn").
#
#   VT_SERVER=build/release/src/app/vless-server VT_TUN=build/release/src/app/vless-tun \
#   VT_CHURN=build/release/tests/integration/churn bench/churn.sh
#   CHURN_PARTS="kernel v2ray tls notls" (default: all), CHURN_SECS=30,
#   CHURN_WORKERS=32, CHURN_UDP_RATE=20; CHURN_SECS=600 CHURN_PARTS=tls is
#   the 10-minute UDP run.
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../tests/integration/lib.sh"
source "$VT_TOOLS/testbed.sh"
require_root
parts=${CHURN_PARTS:-kernel v2ray tls notls}
secs=${CHURN_SECS:-30}
workers=${CHURN_WORKERS:-32}
rate=${CHURN_UDP_RATE:-20}
export TB_MTU=${BENCH_MTU:-8500}
: "${VT_SERVER:?path to vless-server}" "${VT_CHURN:?path to churn (tests/integration/churn in a Release build)}"
require_cmd v2ray
has() { [[ " $parts " == *" $1 "* ]]; }
hz=$(getconf CLK_TCK)

tb_setup churnb
# The app closes first, so its kernel keeps each connection in TIME_WAIT
# for 60 s and connect() must search the port range around them. Linux
# lets connect() reuse a TIME_WAIT port only towards loopback by default
# (tcp_tw_reuse = 2), which is where v2ray's dokodemo-door listens; set for
# every path here so that the paths, not the app's port search, are
# compared. (Reuse also needs TCP timestamps on the old connection: lwIP
# has them on for this reason, lwipopts.h.)
in_app sysctl -qw net.ipv4.tcp_tw_reuse=1
start churn-serve ip netns exec "$TB_WEB" "$VT_CHURN" serve --port 7100
wait_port "$TB_WEB4" 7100 10 "$TB_WEB"
ROWS=()

# churn_run PATH CLIENT_PID SERVER_PID TARGET
churn_run() {
  local path=$1 cpid=$2 spid=$3 target=$4 c0 s0 c1 s1 out
  c0=$(cpu_ticks "$cpid"); s0=$(cpu_ticks "$spid")
  out=$(in_app timeout $((secs + 60)) "$VT_CHURN" run --target "$target" --seconds "$secs" \
        --workers "$workers" --udp-rate "$rate" --udp-wait-ms 1000 --timeout-ms 10000)
  c1=$(cpu_ticks "$cpid"); s1=$(cpu_ticks "$spid")
  log "$path: $(echo "$out" | tr '\n' ' ')"
  ROWS+=("$path|$(echo "$out" | head -1)|$(awk -v a="$c0" -v b="$c1" -v h="$hz" 'BEGIN{printf "%.1f", (b-a)/h}')|$(awk -v a="$s0" -v b="$s1" -v h="$hz" 'BEGIN{printf "%.1f", (b-a)/h}')")
}

if has kernel; then
  log "== kernel forwarding"
  tb_kernel_forwarding on
  churn_run kernel 0 0 "$TB_WEB4:7100"
  tb_kernel_forwarding off
fi

if has v2ray; then
  log "== v2ray VLESS v0/TLS (dokodemo-door in ns app, TCP and UDP)"
  tb_v2ray_server_start 8443 yes
  tb_v2ray_forward_start v2ray-churn-client 17100:7100:tcp,udp
  v2c=$TB_V2RAY_FORWARD_PID
  churn_run v2ray-tls "$v2c" "$TB_V2RAY_SERVER_PID" 127.0.0.1:17100
  stop_pid "$v2c" || true
  stop_pid "$TB_V2RAY_SERVER_PID" || true
fi

for tls in tls notls; do
  has $tls || continue
  : "${VT_TUN:?path to vless-tun}"
  flag=true; [ $tls = notls ] && flag=false
  log "== vless-tun + vless-server ($tls)"
  tb_server_start "vless-server-$tls" "$([ $tls = tls ] && echo yes || echo no)"
  tb_tun_start "vless-tun-$tls" 1 $flag wait 443
  churn_run "ours-$tls" "$TB_TUN_PID" "$TB_SERVER_PID" "$TB_WEB4:7100"
  stop_pid "$TB_TUN_PID" || true
  stop_pid "$TB_SERVER_PID" || true
  grep -E 'stopping: (tcp|tls|pool|udp)' "$VT_TMP/vless-tun-$tls.log" | sed 's/^/    /'
  grep -E 'stopping: (tls|udp)' "$VT_TMP/vless-server-$tls.log" | sed 's/^/    /'
done

echo
echo "churn: ${workers} TCP workers (connect, 1 line, 1 KiB answer, close) + ${rate} new UDP sockets/s, ${secs} s each; $(nproc) cores, load before $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-10s %s | client cpu s | server cpu s\n' path figures
for r in "${ROWS[@]}"; do
  IFS='|' read -r p f c s <<<"$r"
  printf '%-10s %s | %s | %s\n' "$p" "$f" "$c" "$s"
done
