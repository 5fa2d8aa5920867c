#!/usr/bin/env bash
# flows.py slowget (ns app, 64 KiB per 50 ms) --vt0--> vless-tun --VLESS v1/TLS--> vless-server (ns srv) --> xfer.py GET 256 MiB (ns web)
# Proves backpressure end to end: while the app reads slowly and the sender
# could fill any buffer, vless-tun's and vless-server's RSS stay bounded;
# afterwards the app reads the rest fast and the file arrives intact.
# Both flows are streams of one Mux connection (the default): while the
# slow reader holds its stream's window, a second app flow fetches the
# whole file at full speed on the same connection and must finish before
# the slow phase ends (one stream's slow reader stalls no other stream).
source "$(dirname "$0")/lib.sh"
source "$VT_TOOLS/testbed.sh"
: "${VT_SERVER:?path to vless-server}" "${VT_TUN:?path to vless-tun}"
require_root
require_cmd python3 openssl
size_mb=${VT_XFER_MB:-256}
slow_s=${VT_SLOW_SECS:-20}
# Growth over the RSS at rest, both processes: two flows of a 256 MiB file
# must not be buffered (Release grows about 2 MiB; ASan, whose rest is
# already ~50 MiB of shadow and runtime, about 16 MiB).
bound_kib=$((32 * 1024))
# Under ASan freed memory sits in a quarantine (256 MiB by default) and would
# count as RSS; keep it small so the bound measures our buffering.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=8"

tb_setup bp
head -c $((size_mb << 20)) /dev/urandom >"$VT_TMP/big.bin"
want=$(sha_of "$VT_TMP/big.bin")
start xfer ip netns exec "$TB_WEB" python3 "$VT_TOOLS/xfer.py" server --host :: --port 9000 --file "$VT_TMP/big.bin"
wait_port "$TB_WEB4" 9000 10 "$TB_WEB"
tb_server_start
tb_tun_start tun 1 true wait
rest_c=$(rss_kib "$TB_TUN_PID"); rest_s=$(rss_kib "$TB_SERVER_PID")
log "RSS at rest: vless-tun $rest_c KiB, vless-server $rest_s KiB"

log "slow reader for ${slow_s}s, then fast, ${size_mb} MiB"
slow_t0=$(date +%s%N)
start slowget ip netns exec "$TB_APP" timeout $((slow_s + 120)) python3 "$VT_TOOLS/flows.py" slowget \
  --target "$TB_WEB4:9000" --chunk 65536 --interval 0.05 --slow "$slow_s"
reader=$(last_pid)
sleep 0.5  # the slow flow is open and its first window is on its way
start fastget ip netns exec "$TB_APP" timeout $((slow_s + 120)) python3 "$VT_TOOLS/flows.py" slowget \
  --target "$TB_WEB4:9000" --chunk 65536 --interval 0 --slow 0
fast=$(last_pid)
fast_done=""
sleep 1.5  # warm-up: the first window's worth of data moves
peak_c=0; peak_s=0; samples=0
while kill -0 "$reader" 2>/dev/null; do
  c=$(rss_kib "$TB_TUN_PID"); s=$(rss_kib "$TB_SERVER_PID")
  [ "$c" -gt "$peak_c" ] && peak_c=$c
  [ "$s" -gt "$peak_s" ] && peak_s=$s
  samples=$((samples + 1))
  if [ -z "$fast_done" ] && ! kill -0 "$fast" 2>/dev/null; then
    fast_done=$(date +%s%N)
    fast_ms=$(( (fast_done - slow_t0) / 1000000 ))
    [ "$fast_ms" -lt $((slow_s * 1000)) ] && slow_alive=yes || slow_alive=no
  fi
  sleep 0.1
done
rc=0; wait "$fast" || rc=$?
[ $rc -eq 0 ] || fail "the fast flow beside the slow reader failed (exit $rc): $(cat "$VT_TMP/fastget.log")"
[ "$(cat "$VT_TMP/fastget.log")" = "bytes=$((size_mb << 20)) sha256=$want" ] ||
  fail "the fast flow's transfer is corrupted or cut short: $(cat "$VT_TMP/fastget.log")"
[ "$slow_alive" = yes ] || fail "the fast flow finished ${fast_ms:-?} ms after the slow reader started, not within its ${slow_s} s slow phase"
log "a fast flow fetched ${size_mb} MiB intact beside the slow reader, ${fast_ms} ms into its ${slow_s} s slow phase"
rc=0; wait "$reader" || rc=$?
out=$(cat "$VT_TMP/slowget.log")
[ $rc -eq 0 ] || fail "slow reader failed (exit $rc): $out"
[ "$out" = "bytes=$((size_mb << 20)) sha256=$want" ] || fail "transfer corrupted or cut short: $out"
log "transfer intact; $samples samples"
log "peak RSS: vless-tun $peak_c KiB (rest $rest_c), vless-server $peak_s KiB (rest $rest_s), growth bound $bound_kib KiB"
[ $((peak_c - rest_c)) -lt "$bound_kib" ] || fail "vless-tun RSS grew by $((peak_c - rest_c)) KiB >= $bound_kib KiB"
[ $((peak_s - rest_s)) -lt "$bound_kib" ] || fail "vless-server RSS grew by $((peak_s - rest_s)) KiB >= $bound_kib KiB"
log "PASS"
