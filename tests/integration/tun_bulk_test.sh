#!/usr/bin/env bash
# xfer.py client (ns app) --vt0--> vless-tun --VLESS v1/TLS--> vless-server (ns srv) --> xfer.py server (ns web)
# Proves bulk data survives the TUN path intact: 256 MiB down and 256 MiB up
# (sha256), the upload ending in a half-close that must reach the server; and
# that a download still moving after the app half-closed is not cut off by
# drain_timeout (it bounds a stalled direction, not a busy one). With TUN
# offload (the default) the stop line must show TSO segments read;
# VT_OFFLOAD=false runs it without (it_tun_bulk_no_offload).
source "$(dirname "$0")/lib.sh"
source "$VT_TOOLS/testbed.sh"
: "${VT_SERVER:?path to vless-server}" "${VT_TUN:?path to vless-tun}"
require_root
require_cmd python3 openssl
size_mb=${VT_XFER_MB:-256}

tb_setup bulk
head -c $((size_mb << 20)) /dev/urandom >"$VT_TMP/big.bin"
want=$(sha_of "$VT_TMP/big.bin")
start xfer ip netns exec "$TB_WEB" python3 "$VT_TOOLS/xfer.py" server --host :: --port 9000 --file "$VT_TMP/big.bin"
wait_port "$TB_WEB4" 9000 10 "$TB_WEB"
tb_server_start
tb_tun_start tun 1 true wait

for dst in "$TB_WEB4" "[$TB_WEB6]"; do
  log "download ${size_mb} MiB from $dst"
  t0=$(date +%s%N)
  got=$(in_app timeout 120 python3 "$VT_TOOLS/xfer.py" client --target "$dst:9000" | sha256sum | cut -d' ' -f1) ||
    fail "download from $dst failed (client error or timeout)"
  ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  [ "$got" = "$want" ] || fail "download from $dst corrupted or cut short: $got != $want"
  log "download from $dst intact in ${ms} ms ($(( (size_mb * 1000) / (ms + 1) )) MiB/s)"
  # IPv6 only downloads: one upload over each family would double the time.
  [ "$dst" = "$TB_WEB4" ] || continue
  log "upload ${size_mb} MiB to $dst (SUM: ends with a half-close)"
  t0=$(date +%s%N)
  got=$(in_app timeout 120 python3 "$VT_TOOLS/xfer.py" client --target "$dst:9000" --send "$VT_TMP/big.bin") ||
    fail "upload to $dst failed"
  ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  [ "$got" = "$want" ] || fail "upload to $dst corrupted or cut short: '$got' != $want"
  log "upload to $dst intact in ${ms} ms ($(( (size_mb * 1000) / (ms + 1) )) MiB/s)"
done
# The upload's flow line carries every byte ("SUM\n" + the file).
wait_log "$TB_TUN_LOG" "flow #[0-9]+ .*dst=198\.18\.1\.2:9000 .*up=$(( (size_mb << 20) + 4 )) " 5
stop_pid "$TB_TUN_PID" || fail "vless-tun did not exit cleanly"
# TUN offload (on unless VT_OFFLOAD=false): the upload came in TSO segments
# of several MSS, read whole, and the downloads' segments left gathered in
# GSO packets, one per flow run of a loop pass (docs/netstack.md).
if [ "${VT_OFFLOAD:-true}" = true ]; then
  line=$(grep 'stopping: tun offload' "$TB_TUN_LOG") || fail "no tun offload stop line"
  log "$line"
  [[ "$line" =~ :\ ([0-9]+)\ of\ [0-9]+\ packets\ read.*\(0\ dropped\),\ ([0-9]+)\ of\ [0-9]+\ written\ GSO\ packets\ \(([0-9]+)\ TCP ]] &&
    [ "${BASH_REMATCH[1]}" -gt 0 ] || fail "offload did not carry the upload: $line"
  [ "${BASH_REMATCH[2]}" -gt 0 ] && [ "${BASH_REMATCH[3]}" -gt "${BASH_REMATCH[2]}" ] ||
    fail "the downloads' segments were not gathered into GSO packets: $line"
else
  ! grep -q 'stopping: tun offload' "$TB_TUN_LOG" || fail "offload counted with tun.offload = false"
fi

log "drain_timeout 2s: the app half-closes, then reads for 6 s (slowly, then fast)"
tb_tun_start tun-drain 1 true wait 443 'drain_timeout = "2s"'
out=$(in_app timeout 120 python3 "$VT_TOOLS/flows.py" slowget --target "$TB_WEB4:9000" --half-close \
      --chunk 65536 --interval 0.05 --slow 6) || fail "download after a half-close failed: $out"
[ "$out" = "bytes=$((size_mb << 20)) sha256=$want" ] ||
  fail "download after a half-close cut short: $out; $(grep 'flow #' "$TB_TUN_LOG" | tail -1)"
log "download after a half-close intact"
log "PASS"
