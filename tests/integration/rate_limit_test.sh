#!/usr/bin/env bash
# Per-user rate limit (docs/server.md "Rate limit"): user "slow" is limited
# to RATE (4MB/s) for all its connections together; downloads and uploads
# through vless-server (TLS) run at RATE within 10%, also with two of its
# connections at once, while user "fast", transferring at the same time, is
# not held back.
#
#   ns app (vless-nc) -- ns srv (vless-server) -- ns web (xfer.py)
source "$(dirname "$0")/lib.sh"
source "$VT_TOOLS/testbed.sh"
require_root
: "${VT_SERVER:?path to vless-server}" "${VT_NC:?path to vless-nc}"
# MB/s (10^6 bytes); under ASan (VT_SANITIZED) the ends cannot move 4 MB/s
# through TLS reliably, so the limit there is 1 MB/s.
rate_mb=${VT_RATE_MB:-$([ -n "${VT_SANITIZED:-}" ] && echo 1 || echo 4)}
# Seconds of transfer at the limit (8 under ASan, whose TLS handshakes and
# start-up are slow enough to weigh on a 4 s measurement).
secs=${VT_RATE_SECS:-$([ -n "${VT_SANITIZED:-}" ] && echo 8 || echo 4)}
bytes=$((rate_mb * 1000000 * secs))
# The unlimited user's file: it must finish before the limited user's
# transfer; under ASan (VT_SANITIZED) everything is several times slower.
fast_mb=$([ -n "${VT_SANITIZED:-}" ] && echo 4 || echo 32)

tb_setup rate
fast_uuid=$(new_uuid)
head -c "$bytes" /dev/urandom >"$VT_TMP/slow.bin"
head -c $((fast_mb << 20)) /dev/urandom >"$VT_TMP/fast.bin"
start xfer-slow ip netns exec "$TB_WEB" python3 "$VT_TOOLS/xfer.py" server --host "$TB_WEB4" --port 5001 --file "$VT_TMP/slow.bin"
start xfer-fast ip netns exec "$TB_WEB" python3 "$VT_TOOLS/xfer.py" server --host "$TB_WEB4" --port 5002 --file "$VT_TMP/fast.bin"
wait_port "$TB_WEB4" 5001 10 "$TB_WEB"
wait_port "$TB_WEB4" 5002 10 "$TB_WEB"
TB_USER_EXTRA="rate_limit = \"${rate_mb}MB/s\"
[[users]]
name = \"fast\"
uuid = \"$fast_uuid\"" tb_server_start srv

nc() {  # nc UUID PORT ARGS...: vless-nc from ns app to the xfer server on PORT
  local uuid=$1 port=$2
  shift 2
  timeout 120 ip netns exec "$TB_APP" "$VT_NC" --server "$TB_SRV4:443" --tls --sni test.name \
    --ca "$VT_TMP/ca.pem" --uuid "$uuid" --target "$TB_WEB4:$port" "$@"
}
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
# check NAME BYTES MS: the rate within 10% of the limit (25% under ASan,
# whose event loop runs late enough to skew a paced reader; the figure the
# issue asks for is the Release one).
tol=$([ -n "${VT_SANITIZED:-}" ] && echo 25 || echo 10)
check() {
  local rate=$(( $2 * 1000 / $3 ))
  log "$1: $2 bytes in $3 ms = $rate B/s (limit $((rate_mb * 1000000)), +-$tol%)"
  [ "$rate" -ge $((rate_mb * (100 - tol) * 10000)) ] && [ "$rate" -le $((rate_mb * (100 + tol) * 10000)) ] ||
    fail "$1: $rate B/s is not within $tol% of ${rate_mb} MB/s"
}

log "download: slow (limited) and fast at the same time"
t0=$(now_ms)
nc "$fast_uuid" 5002 --text 'GET\n' >"$VT_TMP/fast.got" &
fast_pid=$!
got=$(nc "$TB_UUID" 5001 --text 'GET\n' | sha256sum | cut -d' ' -f1)
t1=$(now_ms)
[ "$got" = "$(sha_of "$VT_TMP/slow.bin")" ] || fail "slow download corrupt"
check "slow download" "$bytes" $((t1 - t0))
# The other user was not held back: its file finished before these 16 MB.
! kill -0 "$fast_pid" 2>/dev/null || fail "the fast user's $fast_mb MiB took longer than the limited user's ${rate_mb} MB/s transfer"
wait "$fast_pid" || fail "fast download failed"
[ "$(sha_of "$VT_TMP/fast.got")" = "$(sha_of "$VT_TMP/fast.bin")" ] || fail "fast download corrupt"
log "fast download: $fast_mb MiB done before the limited one"

log "upload: slow (limited)"
t0=$(now_ms)
got=$(nc "$TB_UUID" 5001 --text 'SUM\n' --send "$VT_TMP/slow.bin")
t1=$(now_ms)
[ "$got" = "$(sha_of "$VT_TMP/slow.bin")" ] || fail "slow upload corrupt: $got"
check "slow upload" "$bytes" $((t1 - t0))

log "download: two connections of the limited user share the limit"
t0=$(now_ms)
nc "$TB_UUID" 5001 --text 'GET\n' >"$VT_TMP/a.got" &
a=$!
nc "$TB_UUID" 5001 --text 'GET\n' >"$VT_TMP/b.got" &
b=$!
wait "$a" || fail "first parallel download failed"
wait "$b" || fail "second parallel download failed"
t1=$(now_ms)
check "slow, two connections" $((2 * bytes)) $((t1 - t0))

log "fast alone: unlimited"
t0=$(now_ms)
got=$(nc "$fast_uuid" 5002 --text 'GET\n' | sha256sum | cut -d' ' -f1)
t1=$(now_ms)
[ "$got" = "$(sha_of "$VT_TMP/fast.bin")" ] || fail "fast download corrupt"
fast_rate=$(( (fast_mb << 20) * 1000 / (t1 - t0) ))
log "fast: $fast_mb MiB in $((t1 - t0)) ms = $fast_rate B/s"
want_fast=$([ -n "${VT_SANITIZED:-}" ] && echo $((rate_mb * 1000000)) || echo $((rate_mb * 3 * 1000000)))
[ "$fast_rate" -ge "$want_fast" ] || fail "the unlimited user got only $fast_rate B/s"
stop_pid "$TB_SERVER_PID"
grep "stopping: rate limit" "$VT_TMP/srv.log" || fail "no rate limit stop line"
log "rate limit ok"
