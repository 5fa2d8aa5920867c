#!/usr/bin/env bash
# Memory of an embedded core (by hand, not in CI; root; about 2 minutes
# with the defaults): what a phone's packet-tunnel extension pays.
#   flows.py hold (ns app) --TUN mt0--> mobile_host (static libvless_tun.a, ONE core,
#        packet callbacks like NEPacketTunnelFlow) --VLESS v1 mux/TLS--> vless-server (ns srv) --> flows.py server (ns web)
# bench/mobile_host.c is built here against an install of VT_BUILD (cmake
# --install into a scratch prefix), linked with the static library, and run
# with a phone extension's config (below). For each of MOBILE_RUNS runs and
# each variant it reads the process's VmRSS and VmHWM (/proc/PID/status)
# and Pss and Private_Dirty (/proc/PID/smaps_rollup):
#   rest   3 s after the core runs (no flows; the warm mux connection is up)
#   flows  with MOBILE_FLOWS idle TCP flows open through the tunnel (each
#          carried one request and answer, then nothing: flows.py hold)
#   closed 5 s after those flows closed (FIN both ways; lwIP's TIME_WAIT is 2 s)
# and per flow = (flows - rest) VmRSS / flows opened. Variants:
#   host-cb   mobile_host, callback mode, the mobile config
#   host-fd   mobile_host, fd mode, the mobile config
#   vless-tun the vless-tun program (it opens the TUN itself), default config
# Also prints the stripped size of the static host program, and per variant
# (first run) where the RSS lies at rest and with the flows: file-backed
# (text, libraries) vs [heap] vs other anonymous mappings (thread malloc
# arenas, thread stacks), and the host's malloc bytes in use and free
# (mallinfo2) at the three points. Namespaces and
# addresses are those of tests/integration/tools/testbed.sh (198.18.0.0/15,
# 2001:db8::/32), named per run and removed on exit, as is every process
# this script started (by PID). Results: docs/performance.md ("Mobile:
# memory of an embedded core").
#
#   VT_BUILD=build bench/mobile_memory.sh      (a Release build dir with vless-server,
#                                               vless-tun, vless_tun_static built)
#   MOBILE_RUNS=3 (1..10), MOBILE_FLOWS=1000 (1..5000),
#   MOBILE_VARIANTS="host-cb host-fd vless-tun" (default: all)
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../tests/integration/lib.sh"
source "$VT_TOOLS/testbed.sh"
require_root
require_cmd cc pkg-config python3 openssl strip
# A scratch folder of our own name (lib.sh's cleanup removes whatever
# VT_TMP names): other sessions on a shared machine may sweep /tmp/vt-it.*.
rmdir "$VT_TMP"
VT_TMP=$(mktemp -d /tmp/vt-mobmem.XXXXXX)
: "${VT_BUILD:?a Release build directory (vless-server, vless-tun, vless_tun_static built)}"
VT_BUILD=$(cd "$VT_BUILD" && pwd)
VT_SERVER=${VT_SERVER:-$VT_BUILD/src/app/vless-server}
VT_TUN=${VT_TUN:-$VT_BUILD/src/app/vless-tun}
runs=${MOBILE_RUNS:-3}
nflows=${MOBILE_FLOWS:-1000}
variants=${MOBILE_VARIANTS:-host-cb host-fd vless-tun}
[[ "$runs" =~ ^[0-9]+$ ]] && [ "$runs" -ge 1 ] && [ "$runs" -le 10 ] || fail "MOBILE_RUNS: 1..10"
[[ "$nflows" =~ ^[0-9]+$ ]] && [ "$nflows" -ge 1 ] && [ "$nflows" -le 5000 ] || fail "MOBILE_FLOWS: 1..5000"
[ -x "$VT_SERVER" ] && [ -x "$VT_TUN" ] || fail "no vless-server / vless-tun in $VT_BUILD/src/app"
# flows.py holds one fd per flow, vless-server two.
ulimit -n "$(ulimit -Hn)"

# The host: built from the installed header and archive only.
inst="$VT_TMP/inst"
cmake --install "$VT_BUILD" --prefix "$inst" >"$VT_TMP/install.log" 2>&1 || fail "cmake --install: $(tail -5 "$VT_TMP/install.log")"
[ -f "$inst/lib/libvless_tun.a" ] || fail "no libvless_tun.a in the install (build vless_tun_static)"
static_libs=$(PKG_CONFIG_PATH="$inst/lib/pkgconfig" pkg-config --static --libs vless-tun) || fail "pkg-config vless-tun"
static_libs=${static_libs//-lvless_tun/}
host="$VT_TMP/mobile_host"
# shellcheck disable=SC2086
cc -std=c11 -O2 -Wall -Wextra -Werror -I"$inst/include" "$here/mobile_host.c" -o "$host" \
  "$inst/lib/libvless_tun.a" $static_libs -lm || fail "cc mobile_host failed"
ldd "$host" | grep -q libvless_tun && fail "mobile_host still needs libvless_tun.so"
strip -o "$host.stripped" "$host"
# Written back now: a freshly written binary's pages are dirty in the page
# cache, and mapped they count as the process's Private_Dirty.
sync
size_unstripped=$(stat -c %s "$host")
size_stripped=$(stat -c %s "$host.stripped")
log "mobile_host: $size_unstripped bytes, $size_stripped stripped ($(ldd "$host" | awk '{print $1}' | tr '\n' ' '))"
# Closer to an app binary: libuv folded in too (an iOS app links it
# statically; the C++ runtime is a system library there). Size only; the
# runs use the program above. toml++ stays shared (Debian has no archive of
# it), and so libstdc++ (toml++'s .so needs the shared one).
size_folded=-
libuv_a=$(for n in libuv_a.a libuv.a; do f=$(cc -print-file-name="$n"); if [ "$f" != "$n" ]; then echo "$f"; fi; done | head -1)
if [ -n "$libuv_a" ]; then
  # shellcheck disable=SC2086
  if cc -std=c11 -O2 -I"$inst/include" "$here/mobile_host.c" -o "$host.folded" "$inst/lib/libvless_tun.a" \
       "$libuv_a" ${static_libs//-luv/} -lm 2>"$VT_TMP/folded.log"; then
    strip "$host.folded"
    size_folded="$(stat -c %s "$host.folded") bytes (text $(size "$host.folded" | awk 'NR==2 {print $1}'))"
  else
    size_folded="- (link failed: $(tail -1 "$VT_TMP/folded.log"))"
  fi
fi
log "mobile_host with libuv folded in, stripped: $size_folded"

tb_setup mobmem
start flows-server ip netns exec "$TB_WEB" python3 "$VT_TOOLS/flows.py" server --port 7000
wait_port "$TB_WEB4" 7000 10 "$TB_WEB"
tb_server_start
load0=$(cut -d" " -f1-3 /proc/loadavg)

# The phone extension's config (docs/performance.md says why each value):
mtu=1500
mobile_config() {  # FILE
  cat >"$1" <<CFG
log_level = "warn"
[tun]
mtu = $mtu
ipv4 = "198.18.2.1/30"
ipv6 = "2001:db8:2::1/64"
[server]
address = "$TB_SRV4:443"
uuid = "$TB_UUID"
version = 1
sni = "test.name"
ca = "$VT_TMP/ca.pem"
[limits]
max_flows = 2048
buffer_budget = "8MiB"
[udp]
max_sessions = 256
[dns]
cache_size = 128
[mux]
stream_window = 131072
CFG
}
default_config() {  # FILE: only what must be said
  cat >"$1" <<CFG
log_level = "warn"
[tun]
name = "mt0"
ipv4 = "198.18.2.1/30"
ipv6 = "2001:db8:2::1/64"
[server]
address = "$TB_SRV4:443"
uuid = "$TB_UUID"
sni = "test.name"
ca = "$VT_TMP/ca.pem"
CFG
}
mobile_config "$VT_TMP/mobile.toml"
default_config "$VT_TMP/default.toml"
"$VT_TUN" --check -c "$VT_TMP/mobile.toml" >/dev/null || fail "the mobile config: $("$VT_TUN" --check -c "$VT_TMP/mobile.toml" 2>&1)"
"$VT_TUN" --check -c "$VT_TMP/default.toml" >/dev/null || fail "the default config: $("$VT_TUN" --check -c "$VT_TMP/default.toml" 2>&1)"
routes="ip route replace 198.18.1.0/24 dev mt0 && ip -6 route replace 2001:db8:1::/64 dev mt0"
setup="ip addr add 198.18.2.1/30 dev mt0 && ip addr add 2001:db8:2::1/64 dev mt0 nodad && ip link set mt0 up && $routes"

# mem PID: "VmRSS VmHWM Pss Private_Dirty" in KiB (the last two "-"
# without smaps_rollup). Private_Dirty is closest to what a phone charges an
# extension (its footprint: dirty and compressed pages, not clean text).
mem() {
  local rss hwm pss dirty
  rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$1/status")
  hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$1/status")
  pss=$(awk '/^Pss:/ {print $2}' "/proc/$1/smaps_rollup" 2>/dev/null || true)
  dirty=$(awk '/^Private_Dirty:/ {print $2}' "/proc/$1/smaps_rollup" 2>/dev/null || true)
  echo "$rss $hwm ${pss:--} ${dirty:--}"
}
# breakdown PID: RSS KiB by kind of mapping.
breakdown() {
  awk '/^[0-9a-f]+-[0-9a-f]+ / { kind = "anon"; if ($6 ~ /^\//) kind = "file"; else if ($6 == "[heap]") kind = "heap"; else if ($6 ~ /^\[stack/) kind = "stack"; else if ($6 != "") kind = "other" }
       /^Rss:/ { r[kind] += $2 }
       END { printf "file-backed %d, [heap] %d, anonymous mappings (thread malloc arenas, thread stacks) %d, main stack %d, other %d", r["file"], r["heap"], r["anon"], r["stack"], r["other"] }' "/proc/$1/smaps"
}

# wait_file_line FILE PATTERN SECONDS
wait_line() {
  local deadline=$(( $(date +%s) + $3 ))
  until grep -Eq -- "$2" "$1" 2>/dev/null; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "no '$2' in $(basename "$1") after $3 s"
    sleep 0.1
  done
}

ROWS=()  # "variant run rest(3) flows(3) closed(3) opened per_flow"
NOTES=()
measure_variant() {  # VARIANT RUN
  local v=$1 r=$2 pid out a b c opened failed hpid deadline
  out="$VT_TMP/$v-$r.log"
  case $v in
    host-cb) start "$v-$r" ip netns exec "$TB_APP" "$host" callbacks "$VT_TMP/mobile.toml" mt0 "$setup" "$mtu" ;;
    host-fd) start "$v-$r" ip netns exec "$TB_APP" "$host" fd "$VT_TMP/mobile.toml" mt0 "$setup" ;;
    vless-tun) start "$v-$r" ip netns exec "$TB_APP" "$VT_TUN" -c "$VT_TMP/default.toml" ;;
  esac
  pid=$(last_pid)
  if [ "$v" = vless-tun ]; then
    # It logs at warn: wait for its TUN, then route.
    deadline=$(( $(date +%s) + 10 ))
    until ip -n "$TB_APP" link show mt0 >/dev/null 2>&1; do
      [ "$(date +%s)" -lt "$deadline" ] || fail "vless-tun made no mt0 in 10 s: $(tail -3 "$out")"
      sleep 0.1
    done
    ip netns exec "$TB_APP" bash -c "$routes"
  else
    wait_line "$out" '^running' 15
  fi
  sleep 3
  a=$(mem "$pid")
  if [ "$r" = 1 ]; then NOTES+=("$v, at rest: RSS KiB $(breakdown "$pid")"); fi
  if [ "$v" != vless-tun ]; then
    kill -USR2 "$pid"
    wait_line "$out" '^heap' 5
  fi
  rm -f "$VT_TMP/hold.ready"
  start "hold-$v-$r" ip netns exec "$TB_APP" python3 "$VT_TOOLS/flows.py" hold --target "$TB_WEB4:7000" \
    --n "$nflows" --ready "$VT_TMP/hold.ready" --timeout 60
  hpid=$(last_pid)
  deadline=$(( $(date +%s) + 120 ))
  until [ -s "$VT_TMP/hold.ready" ]; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "hold: $nflows flows not open after 120 s"
    sleep 0.2
  done
  read -r opened failed <"$VT_TMP/hold.ready"
  sleep 2
  b=$(mem "$pid")
  if [ "$r" = 1 ]; then
    NOTES+=("$v, $opened flows open: RSS KiB $(breakdown "$pid")")
  fi
  if [ "$v" != vless-tun ]; then
    kill -USR2 "$pid"
    deadline=$(( $(date +%s) + 5 ))
    until [ "$(grep -c '^heap' "$out")" -ge 2 ]; do
      [ "$(date +%s)" -lt "$deadline" ] || fail "$v: no heap line"
      sleep 0.1
    done
  fi
  stop_pid "$hpid" 20 || true
  sleep 5
  c=$(mem "$pid")
  if [ "$v" != vless-tun ]; then
    # After the last reading: the heap, then the stats JSON (built inside
    # this process).
    kill -USR2 "$pid"
    sleep 0.3
    kill -USR1 "$pid"
    wait_line "$out" '^stats' 5
    NOTES+=("$v run $r: malloc at rest $(grep '^heap' "$out" | sed -n 1p | cut -d' ' -f2-), with $opened flows $(grep '^heap' "$out" | sed -n 2p | cut -d' ' -f2-), closed $(grep '^heap' "$out" | sed -n 3p | cut -d' ' -f2-); after the close the core's stats say $(grep -o '"tcp":{"flows":[0-9]*,"opened":[0-9]*,"closed":[0-9]*' "$out" | tail -1 | tr -d '"{'), $(grep -o '"mux_connections_opened":[0-9]*' "$out" | tail -1 | tr -d '"') (one warm + one per 128 streams)")
  fi
  stop_pid "$pid" 15 || log "$v exited non-zero"
  local pf
  pf=$(awk -v x="${a%% *}" -v y="${b%% *}" -v n="$opened" 'BEGIN { if (n > 0) printf "%.2f", (y - x) / n; else print "err" }')
  ROWS+=("$v $r $a $b $c $opened $pf")
  log "$v run $r: rest [$a] flows [$b] closed [$c] (VmRSS VmHWM Pss Private_Dirty KiB) opened=$opened failed=$failed per-flow ${pf} KiB"
  [ "$failed" = 0 ] || log "WARNING: $failed flows failed to open"
}

for r in $(seq 1 "$runs"); do
  for v in $variants; do
    measure_variant "$v" "$r"
    sleep 1
  done
done

echo
echo "mobile memory: $nflows idle TCP flows, $runs runs; $(nproc) cores, load before $load0, after $(cut -d' ' -f1-3 /proc/loadavg)"
echo "mobile_host (static libvless_tun.a): $size_unstripped bytes, stripped $size_stripped bytes; with libuv folded in, stripped: $size_folded"
printf '%-9s %3s | %-25s | %-25s | %-25s | %6s | %s\n' variant run "rest RSS/HWM/Pss/Dirty" "flows RSS/HWM/Pss/Dirty" "closed RSS/HWM/Pss/Dirty" opened "RSS KiB/flow"
for row in "${ROWS[@]}"; do
  # shellcheck disable=SC2086
  set -- $row
  printf '%-9s %3s | %-25s | %-25s | %-25s | %6s | %s\n' "$1" "$2" "$3/$4/$5/$6" "$7/$8/$9/${10}" "${11}/${12}/${13}/${14}" "${15}" "${16}"
done
echo
echo "spread (min / median / max over the runs), KiB:"
for v in $variants; do
  for col in 3 7 11 6 10 14 16; do
    # shellcheck disable=SC2086
    vals=$(for row in "${ROWS[@]}"; do set -- $row; if [ "$1" = "$v" ]; then echo "${!col}"; fi; done | sort -n)
    name=$(case $col in 3) echo "rest RSS" ;; 7) echo "flows RSS" ;; 11) echo "closed RSS" ;; 6) echo "rest dirty" ;; 10) echo "flows dirty" ;; 14) echo "closed dirty" ;; 16) echo "per-flow RSS" ;; esac)
    printf '%-9s %-13s %s\n' "$v" "$name" "$(echo "$vals" | awk '{a[NR]=$1} END {printf "%s / %s / %s", a[1], a[int((NR+1)/2)], a[NR]}')"
  done
done
echo
for n in "${NOTES[@]}"; do echo "$n"; done
