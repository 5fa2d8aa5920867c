#!/usr/bin/env bash
# Soak (root; by hand before a release, not in CI): vless-tun + vless-server
# under connection churn for --minutes (10), while the client's and the
# server's RSS and open fds are sampled; they must stay flat after warm-up.
#
#   churn run (ns app) --vt0--> vless-tun --VLESS v1/TLS--> vless-server (ns srv) --> churn serve (ns web)
#
# Load (tests/integration/tools/churn.cc, as in tun_churn_test.sh and
# bench/churn.sh): W workers (32) connect, send a line, read the 1 KiB answer
# (the server then closes) and close, over and over; meanwhile R (20) new UDP
# sockets a second each send one datagram and wait 1 s for the echo. churn
# runs in back-to-back chunks of --interval seconds (10); in the middle of
# each chunk the script samples vless-tun's and vless-server's VmRSS and the
# entries of /proc/PID/fd, and after it adds the chunk's flows to the totals:
# one CSV row per chunk (about every 10 s).
#
# Passes when:
#   - flat: for each of client RSS, client fds, server RSS, server fds, the
#     mean of the last 20% of the samples is within 5% of the mean of the
#     samples just after warm-up (the 20% that follow the first 20%);
#   - at least 10,000 TCP flows done, none failed, none over 5 s;
#   - at least 2,000 UDP sockets answered and none left unanswered;
#   - both processes alive throughout and stopped cleanly (exit 0); every
#     client flow closed with reason=done; no server stream or connection
#     closed with an error, timeout or refusal (but the start probe's); the
#     stop lines count no evicted flows or UDP sessions, failed dials, lost
#     mux connections, evicted or expired SYNs, or refusals (admission,
#     egress); no WARN/ERROR lines other than the expected ones (the server's
#     UDP evictions at max_sessions_per_user, its open-files warning in a
#     container whose hard limit is below max_connections).
# Exit 0 when all pass, 1 otherwise; 130 on Ctrl-C. Everything it starts is
# stopped by PID and its namespaces removed on exit, even on failure.
#
# Duration: --minutes plus about a minute (set-up; stop; one pass over each
# log, about 500 MB each after 10 minutes). Below 8 minutes the warm-up is
# shorter than the UDP lifetimes and the verdict means little (use it to try
# the script). Disk: the processes log every flow, about 1.1 GB per 10
# minutes in the temporary folder (removed at the end).
# Results: docs/performance.md ("Soak").
#
#   scripts/soak.sh [--minutes N] [--mux on|off] [--out DIR] [--workers W]
#                   [--udp-rate R] [--interval S] [--udp-timeouts short|default]
#   binaries: VT_SERVER, VT_TUN, VT_CHURN (default: build/release's)
#   --mux: default is the client's default (on, with a v1 server).
#   --udp-timeouts: short (default): UDP sessions live at most 60 s on both
#          ends (assured ones 300 s by default), so the steady state is
#          reached within the warm-up; default: the products' defaults.
#   --out: the CSV, the per-chunk churn lines, the stop lines and the logs
#          without their per-flow lines (default /tmp/vt-soak.DATE-TIME).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
minutes=10 mux="" out="" workers=32 udp_rate=20 interval=10 udp_timeouts=short
usage() {
  sed -n '/^#   scripts\/soak.sh/,/^set -euo/p' "$0" | sed '$d' | sed 's/^#  \{0,2\}//' >&2
  exit 2
}
while [ $# -gt 0 ]; do
  case $1 in
    --minutes) minutes=${2:?}; shift 2 ;;
    --mux) mux=${2:?}; shift 2 ;;
    --out) out=${2:?}; shift 2 ;;
    --workers) workers=${2:?}; shift 2 ;;
    --udp-rate) udp_rate=${2:?}; shift 2 ;;
    --interval) interval=${2:?}; shift 2 ;;
    --udp-timeouts) udp_timeouts=${2:?}; shift 2 ;;
    -h|--help) usage ;;
    *) echo "soak.sh: unknown argument $1" >&2; usage ;;
  esac
done
[[ $minutes =~ ^[0-9]+$ && $minutes -ge 1 && $minutes -le 1440 ]] || { echo "soak.sh: --minutes 1..1440" >&2; exit 2; }
[[ $workers =~ ^[0-9]+$ && $workers -ge 1 && $workers -le 256 ]] || { echo "soak.sh: --workers 1..256" >&2; exit 2; }
[[ $udp_rate =~ ^[0-9]+$ && $udp_rate -ge 1 && $udp_rate -le 1000 ]] || { echo "soak.sh: --udp-rate 1..1000" >&2; exit 2; }
[[ $interval =~ ^[0-9]+$ && $interval -ge 2 && $interval -le 600 ]] || { echo "soak.sh: --interval 2..600" >&2; exit 2; }
case $mux in "" | on | off) ;; *) echo "soak.sh: --mux on|off" >&2; exit 2 ;; esac
case $udp_timeouts in short | default) ;; *) echo "soak.sh: --udp-timeouts short|default" >&2; exit 2 ;; esac

export VT_SERVER=${VT_SERVER:-$root/build/release/src/app/vless-server}
export VT_TUN=${VT_TUN:-$root/build/release/src/app/vless-tun}
export VT_CHURN=${VT_CHURN:-$root/build/release/tests/integration/churn}
source "$root/tests/integration/lib.sh"
source "$VT_TOOLS/testbed.sh"
require_root
for b in "$VT_SERVER" "$VT_TUN" "$VT_CHURN"; do [ -x "$b" ] || fail "not executable: $b (build/release, or set VT_SERVER/VT_TUN/VT_CHURN)"; done
out=${out:-/tmp/vt-soak.$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"
out=$(cd "$out" && pwd)
csv=$out/samples.csv
total_secs=$((minutes * 60))
hz=$(getconf CLK_TCK)

# Stop churn and the processes at once on Ctrl-C, then lib.sh's clean-up
# (processes by PID, namespaces, temporary folder). The logs go to $out
# first, also on failure.
SOAK_SAVED=0
save_logs() {
  [ $SOAK_SAVED = 1 ] && return 0
  SOAK_SAVED=1
  local f name
  for f in "$VT_TMP"/*.log; do
    [ -f "$f" ] || continue
    name=$(basename "$f" .log)
    # One pass: the log without its per-flow lines (millions of them) and,
    # in NAME.reasons, "KIND<tab>REASON<tab>COUNT" of those lines (KIND: flow
    # and udp from vless-tun, conn and udp-conn from vless-server).
    awk -v reasons="$out/$name.reasons" '
      / (flow|udp|conn) #[0-9]+ / && / (reason|close)=/ {
        kind = "conn"
        if ($0 ~ / udp conn #/) kind = "udp-conn"; else if ($0 ~ / udp #/) kind = "udp"; else if ($0 ~ / flow #/) kind = "flow"
        r = "?"
        if (match($0, / close=.*/)) { r = substr($0, RSTART + 7); sub(/ (streams|mux)=.*$/, "", r) }
        else if (match($0, / reason=[a-z_]+/)) r = substr($0, RSTART + 8, RLENGTH - 8)
        n[kind "\t" r]++
        next
      }
      { print }
      END { for (k in n) print k "\t" n[k] >reasons }' "$f" >"$out/$name.log" || true
  done
}
_soak_exit() {
  local rc=$? pid
  set +e
  for pid in "${VT_PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${VT_PIDS[@]}"; do wait "$pid" 2>/dev/null; done
  VT_PIDS=()
  save_logs
  (exit "$rc")
  _vt_cleanup
}
trap _soak_exit EXIT

forget_pid() {  # a PID we have waited for: lib.sh's clean-up must not signal it again
  local p keep=()
  for p in "${VT_PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  VT_PIDS=("${keep[@]}")
}
sample_fds() { local n; n=$(ls "/proc/$1/fd" 2>/dev/null | wc -l) || true; echo "${n:-0}"; }

tb_setup soak
# As in tun_churn_test.sh: the app's kernel may reuse its own TIME_WAIT ports.
in_app sysctl -qw net.ipv4.tcp_tw_reuse=1
start churn-serve ip netns exec "$TB_WEB" "$VT_CHURN" serve --port 7100
wait_port "$TB_WEB4" 7100 10 "$TB_WEB"
# UDP lifetimes. A UDP session whose app port the kernel hands out again
# within 30 s carries a second exchange, becomes assured and then lives
# 300 s (both ends' default): with the defaults the number of live sessions
# (a socket each on the server) climbs for 5 minutes, longer than a 10-minute
# run's warm-up. "short" (the default here) caps every UDP lifetime at 60 s
# so that the steady state comes within the warm-up; "default" keeps the
# products' (then run 25 minutes or more).
srv_extra="" tun_extra=""
if [ "$udp_timeouts" = short ]; then
  srv_extra=$'[udp]\nsession_timeout = "60s"\nchannel_idle_timeout = "60s"'
  tun_extra=$'[udp]\nidle_timeout = "60s"'
fi
case $mux in
  on) tun_extra+=$'\n[mux]\nenabled = true' ;;
  off) tun_extra+=$'\n[mux]\nenabled = false' ;;
esac
tb_server_start vless-server yes "$srv_extra"
export TB_MTU=8500 # vless-tun's default TUN MTU
export TB_TUN_EXTRA=$tun_extra
tb_tun_start vless-tun 1 true wait 443
cpid=$TB_TUN_PID spid=$TB_SERVER_PID
c_cpu0=$(cpu_ticks "$cpid") s_cpu0=$(cpu_ticks "$spid")
load0=$(cut -d' ' -f1-3 /proc/loadavg)
log "soak: ${minutes} min, $workers TCP workers + $udp_rate UDP sockets/s, chunks of ${interval}s, mux ${mux:-default}, UDP timeouts $udp_timeouts; load $load0; out $out"

echo "t_s,tcp_done,tcp_failed,over_1s,over_5s,max_ms,udp_sent,udp_answered,udp_lost,client_rss_kib,client_fds,server_rss_kib,server_fds,load1" >"$csv"
: >"$out/churn.log"
declare -A tot=([tcp_done]=0 [tcp_failed]=0 [over_1s]=0 [over_5s]=0 [udp_sent]=0 [udp_answered]=0 [udp_lost]=0)
max_ms=0 chunks=0 t0=$SECONDS
while [ $((SECONDS - t0)) -lt $total_secs ]; do
  left=$((total_secs - (SECONDS - t0)))
  secs=$((left < interval ? left : interval))
  chunk_out=$VT_TMP/chunk.out
  # Bounded: churn stops starting flows after $secs, each socket has a 10 s
  # deadline, and timeout ends it in any case.
  ip netns exec "$TB_APP" timeout -k 5 $((secs + 30)) "$VT_CHURN" run --target "$TB_WEB4:7100" \
    --seconds "$secs" --workers "$workers" --udp-rate "$udp_rate" --udp-wait-ms 1000 \
    --timeout-ms 10000 >"$chunk_out" 2>&1 &
  churn_pid=$!
  VT_PIDS+=("$churn_pid")
  sleep "$(awk -v s="$secs" 'BEGIN{print s / 2}')" &
  wait $! || true
  kill -0 "$cpid" 2>/dev/null || fail "vless-tun died (after $((SECONDS - t0)) s)"
  kill -0 "$spid" 2>/dev/null || fail "vless-server died (after $((SECONDS - t0)) s)"
  t=$((SECONDS - t0))
  crss=$(rss_kib "$cpid") cfd=$(sample_fds "$cpid") srss=$(rss_kib "$spid") sfd=$(sample_fds "$spid")
  load1=$(cut -d' ' -f1 /proc/loadavg)
  rc=0
  wait "$churn_pid" || rc=$?
  unset 'VT_PIDS[-1]'
  [ $rc = 0 ] || fail "churn run exited with $rc: $(cat "$chunk_out")"
  line=$(head -1 "$chunk_out")
  echo "t=$t $(tr '\n' ' ' <"$chunk_out")" >>"$out/churn.log"
  declare -A f=()
  for kv in $line; do f[${kv%%=*}]=${kv#*=}; done
  [ -n "${f[tcp_done]:-}" ] || fail "churn printed no summary: $(cat "$chunk_out")"
  for k in "${!tot[@]}"; do tot[$k]=$((tot[$k] + ${f[$k]:-0})); done
  max_ms=$(awk -v a="$max_ms" -v b="${f[max_ms]}" 'BEGIN{print (b > a) ? b : a}')
  chunks=$((chunks + 1))
  echo "$t,${tot[tcp_done]},${tot[tcp_failed]},${tot[over_1s]},${tot[over_5s]},$max_ms,${tot[udp_sent]},${tot[udp_answered]},${tot[udp_lost]},$crss,$cfd,$srss,$sfd,$load1" >>"$csv"
  if [ $((chunks % 6)) = 1 ]; then
    log "t=${t}s tcp=${tot[tcp_done]} udp=${tot[udp_answered]}/${tot[udp_sent]} client ${crss} KiB ${cfd} fds, server ${srss} KiB ${sfd} fds, load $load1"
  fi
done
duration=$((SECONDS - t0))
c_cpu=$(awk -v a="$c_cpu0" -v b="$(cpu_ticks "$cpid")" -v h="$hz" 'BEGIN{printf "%.0f", (b-a)/h}')
s_cpu=$(awk -v a="$s_cpu0" -v b="$(cpu_ticks "$spid")" -v h="$hz" 'BEGIN{printf "%.0f", (b-a)/h}')
load1=$(cut -d' ' -f1-3 /proc/loadavg)

FAILS=()
problem() { FAILS+=("$*"); }
kill -0 "$cpid" 2>/dev/null || problem "vless-tun died"
kill -0 "$spid" 2>/dev/null || problem "vless-server died"
stop_pid "$cpid" 15 || problem "vless-tun did not stop cleanly"
stop_pid "$spid" 15 || problem "vless-server did not stop cleanly"
forget_pid "$cpid"
forget_pid "$spid"
save_logs
clog=$out/vless-tun.log slog=$out/vless-server.log # without the per-flow lines
grep -h 'stopping:' "$clog" "$slog" | sed 's/^.*INFO  //' >"$out/stop-lines.txt" || true

# ---- the table and the verdict --------------------------------------------
echo
echo "soak: ${duration} s, $chunks chunks; $workers TCP workers + $udp_rate UDP sockets/s; mux ${mux:-default (on)}; UDP timeouts $udp_timeouts; $(nproc) cores, load $load0 at the start, $load1 at the end"
column -t -s, "$csv"
echo
# flat METRIC-COLUMN NAME: mean of the samples just after warm-up (the 20%
# after the first 20%) against the mean of the last 20%; also the maximum.
verdict() {
  awk -F, -v col="$1" -v name="$2" '
    NR > 1 { v[++n] = $col; if ($col > mx) mx = $col }
    END {
      m = int(n * 0.2 + 0.5); if (m < 1) m = 1
      if (n < 3 * m) { printf "%-12s %10s %10s %10s %8s  %s\n", name, "-", "-", mx, "-", "FAIL (too few samples)"; exit 1 }
      for (i = m + 1; i <= 2 * m; i++) w += v[i]
      for (i = n - m + 1; i <= n; i++) e += v[i]
      w /= m; e /= m
      ch = w > 0 ? (e - w) * 100 / w : 0
      ok = (ch <= 5 && ch >= -5)
      printf "%-12s %10.0f %10.0f %10d %+7.1f%%  %s\n", name, w, e, mx, ch, ok ? "flat" : "NOT FLAT"
      exit !ok
    }' "$csv"
}
printf '%-12s %10s %10s %10s %8s  %s\n' metric warmed-up end max change verdict
verdict 10 "client RSS" || problem "client RSS not flat"
verdict 11 "client fds" || problem "client fds not flat"
verdict 12 "server RSS" || problem "server RSS not flat"
verdict 13 "server fds" || problem "server fds not flat"
echo "(RSS in KiB; warmed-up: mean of the samples in the second 20% of the run; end: mean of the last 20%)"
echo

echo "TCP: ${tot[tcp_done]} flows ($((tot[tcp_done] / (duration > 0 ? duration : 1)))/s), ${tot[tcp_failed]} failed, ${tot[over_1s]} over 1 s, ${tot[over_5s]} over 5 s, slowest $max_ms ms"
echo "UDP: ${tot[udp_answered]} of ${tot[udp_sent]} sockets answered, ${tot[udp_lost]} unanswered"
echo "CPU: vless-tun $c_cpu s, vless-server $s_cpu s"
[ "${tot[tcp_done]}" -ge 10000 ] || problem "only ${tot[tcp_done]} TCP flows (at least 10,000)"
[ "${tot[tcp_failed]}" = 0 ] || problem "${tot[tcp_failed]} TCP flows failed (churn.log has the reasons)"
[ "${tot[over_5s]}" = 0 ] || problem "${tot[over_5s]} TCP flows took over 5 s"
[ "${tot[udp_answered]}" -ge 2000 ] || problem "only ${tot[udp_answered]} UDP sockets answered (at least 2,000)"
[ "${tot[udp_lost]}" = 0 ] || problem "${tot[udp_lost]} UDP sockets unanswered"

# Per-flow lines (counted while saving the logs). vless-tun: every flow
# done; UDP sessions end with idle_timeout while running, shutdown at the
# stop. vless-server: streams done or closed by the client (also udp channel
# idle with the short UDP timeouts); resets only at the stop (the client
# resets its mux connections); one tls_error from wait_port's probe at the
# start. Errors, timeouts and refusals are unexpected.
creasons=$out/vless-tun.reasons sreasons=$out/vless-server.reasons
touch "$creasons" "$sreasons"
summary() {  # KIND FILE: "reason count; ..." with the details after ( or : cut
  awk -F'\t' -v k="$1" '$1 == k { r = $2; sub(/ *[(:].*/, "", r); n[r] += $3 }
    END { for (r in n) printf "%s %d; ", r, n[r] }' "$2"
}
echo "client flow lines: $(summary flow "$creasons")"
echo "client udp lines: $(summary udp "$creasons")"
echo "server stream lines: $(summary conn "$sreasons")"
echo "server udp lines: $(summary udp-conn "$sreasons")"
other=$(awk -F'\t' '$1 == "flow" && $2 != "done" { n += $3 } END { print n + 0 }' "$creasons")
[ "$other" = 0 ] || problem "$other client flows closed for other reasons than done ($creasons)"
[ "$(awk -F'\t' '$1 == "flow" { n += $3 } END { print n + 0 }' "$creasons")" -gt 0 ] || problem "no flow lines in vless-tun's log"
probe='client tls_error (TLS handshake: connection closed by peer)'
bad=$(awk -F'\t' -v p="$probe" '$2 != p && $2 ~ /timeout|error|refused|denied|fail/ { n += $3 } END { print n + 0 }' "$sreasons")
probes=$(awk -F'\t' -v p="$probe" '$2 == p { n += $3 } END { print n + 0 }' "$sreasons")
[ "$probes" -le 2 ] || problem "server: $probes connections closed during the TLS handshake (the start probe is 1)"
[ "$bad" = 0 ] || problem "server: $bad connections or streams closed with an error, timeout or refusal ($sreasons)"
echo "stop lines:"
sed 's/^/  /' "$out/stop-lines.txt"
# expect_zero LOG REGEX WHAT: the number REGEX captures (its first group, sed
# -E syntax) in LOG's stop lines must be 0.
stop_num() { sed -n -E "s/.*$2.*/\\1/p" "$1" | head -1; }
expect_zero() {
  local v
  v=$(stop_num "$1" "$2")
  [ -n "$v" ] || { problem "no stop line for '$3'"; return; }
  [ "$v" = 0 ] || problem "$3: $v"
}
expect_zero "$clog" 'stopping: [0-9]+ flows \(([0-9]+) evicted' "client: flows evicted"
expect_zero "$clog" 'stopping: [0-9]+ flows \([0-9]+ evicted, ([0-9]+) failed dials' "client: failed dials"
expect_zero "$clog" 'failed dials, ([0-9]+) loops refused' "client: loops refused"
expect_zero "$clog" 'held \([0-9]+ replaced, ([0-9]+) evicted' "client: SYNs evicted"
expect_zero "$clog" 'held \([0-9]+ replaced, [0-9]+ evicted, ([0-9]+) expired' "client: SYNs expired"
if grep -q 'stopping: mux' "$clog"; then
  expect_zero "$clog" 'stopping: mux [0-9]+ streams on [0-9]+ connections \(([0-9]+) lost' "client: mux connections lost"
fi
expect_zero "$clog" 'stopping: udp [0-9]+ sessions \(([0-9]+) evicted' "client: UDP sessions evicted"
expect_zero "$slog" 'egress policy refused ([0-9]+) ' "server: egress refusals"
expect_zero "$slog" 'admission refused ([0-9]+) connections at max_connections,' "server: refused at max_connections"
expect_zero "$slog" 'max_connections, ([0-9]+) at max_connections_per_source' "server: refused per source"
expect_zero "$slog" 'max_connections_per_source, ([0-9]+) at max_handshakes' "server: refused handshakes per source"
expect_zero "$slog" 'max_handshakes_per_source, ([0-9]+) at max_connections_per_user' "server: refused per user"
# WARN/ERROR lines, less the expected ones.
grep -h -E ' (WARN|ERROR) ' "$clog" "$slog" |
  grep -v -E 'udp nat: evicted [0-9]+ sessions? at max_sessions_per_user|open files limit [0-9]+ is below what max_connections' \
    >"$out/unexpected-warnings.txt" || true
if [ -s "$out/unexpected-warnings.txt" ]; then
  problem "$(wc -l <"$out/unexpected-warnings.txt") unexpected WARN/ERROR lines, e.g. $(head -1 "$out/unexpected-warnings.txt")"
fi
echo "expected warnings: $(grep -h -c -E 'udp nat: evicted' "$slog" || true) UDP eviction lines (server, at most one per 10 s)"

echo
if [ ${#FAILS[@]} -eq 0 ]; then
  echo "soak: PASS ($out)"
  exit 0
fi
for p in "${FAILS[@]}"; do echo "soak: FAIL: $p"; done
echo "soak: FAIL ($out)"
exit 1
