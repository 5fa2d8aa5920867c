#!/usr/bin/env bash
# Syscalls and allocations per MiB (by hand, not in CI; root; about 2
# minutes): one iperf3 stream moves BENCH_COUNT_MB (256) MiB up and then down
# through the bed of bench/run.sh, and perf stat counts, in vless-tun and in
# vless-server separately, every syscall (raw_syscalls:sys_enter), the ones
# that move bytes (read, write, readv, writev, sendmsg, recvmsg, sendmmsg,
# recvmmsg), epoll_wait, page faults, and glibc's malloc calls (a uprobe on libc's
# malloc; C++ new goes through it). Printed per MiB moved.
#
#   VT_SERVER=build/release/src/app/vless-server VT_TUN=build/release/src/app/vless-tun bench/counts.sh
#   BENCH_PARTS="tls notls" (mux over TLS, the default; mux over plain TCP), BENCH_COUNT_MB=256
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../tests/integration/lib.sh"
source "$VT_TOOLS/testbed.sh"
require_root
require_cmd iperf3 perf python3
: "${VT_SERVER:?path to vless-server}"
: "${VT_TUN:?path to vless-tun}"
parts=${BENCH_PARTS:-tls notls}
mb=${BENCH_COUNT_MB:-256}
export TB_MTU=${BENCH_MTU:-8500}
libc=$(ldd "$VT_TUN" | awk '/libc\.so/{print $3}')
[ -n "$libc" ] || fail "cannot find the libc vless-tun uses"
perf probe -q -x "$libc" --add malloc 2>/dev/null || true
grep -q 'probe_libc:malloc' < <(perf list 2>/dev/null) || fail "no uprobe on malloc (perf probe -x $libc malloc)"
# The probe goes on exit, then lib.sh's cleanup (processes, namespaces).
trap 'rc=$?; perf probe -q --del "probe_libc:malloc" 2>/dev/null; (exit $rc); _vt_cleanup' EXIT

events=raw_syscalls:sys_enter
for s in read write readv writev sendmsg recvmsg sendmmsg recvmmsg epoll_wait; do
  events+=",syscalls:sys_enter_$s"
done
events+=",probe_libc:malloc,page-faults"

tb_setup counts
start iperf3 ip netns exec "$TB_WEB" iperf3 -s -p 5201
wait_port "$TB_WEB4" 5201 10 "$TB_WEB"

# count PATH PID_CLIENT PID_SERVER: one stream of $mb MiB each way.
count() {
  local path=$1 cpid=$2 spid=$3 dir
  for dir in up down; do
    local pc ps
    perf stat -x, -e "$events" -p "$cpid" -o "$VT_TMP/c.$path.$dir" &
    pc=$!
    perf stat -x, -e "$events" -p "$spid" -o "$VT_TMP/s.$path.$dir" &
    ps=$!
    sleep 1
    ip netns exec "$TB_APP" timeout 120 iperf3 -c "$TB_WEB4" -p 5201 -n "${mb}M" \
      $([ $dir = down ] && echo -R) >/dev/null 2>&1 || log "iperf3 $path $dir failed"
    kill -INT "$pc" "$ps"
    wait "$pc" "$ps" || true
    for who in c s; do
      python3 - "$VT_TMP/$who.$path.$dir" "$mb" "$path" "$dir" "$([ $who = c ] && echo vless-tun || echo vless-server)" <<'PY'
import sys
f, mb, path, d, who = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
counts = {}
for line in open(f):
    parts = line.strip().split(",")
    if len(parts) < 3 or not parts[0].replace(".", "").isdigit():
        continue
    name = parts[2].split(":")[-1].replace("sys_enter_", "")
    counts[name] = int(float(parts[0]))
total = counts.get("sys_enter", 0)
io = {k: v for k, v in counts.items() if k not in ("sys_enter", "malloc", "page-faults") and v}
print("%-6s %-5s %-12s syscalls/MiB %7.1f  malloc/MiB %7.1f  faults/MiB %6.1f  | %s" % (
    path, d, who, total / mb, counts.get("malloc", 0) / mb, counts.get("page-faults", 0) / mb,
    " ".join("%s %.1f" % (k, v / mb) for k, v in sorted(io.items(), key=lambda kv: -kv[1]))))
PY
    done
  done
}

if [[ " $parts " == *" tls "* ]]; then
  tb_server_start vless-server yes
  tb_tun_start vless-tun 1 true wait 443
  count tls "$TB_TUN_PID" "$TB_SERVER_PID"
  stop_pid "$TB_TUN_PID" || true
  stop_pid "$TB_SERVER_PID" || true
fi
if [[ " $parts " == *" notls "* ]]; then
  tb_server_start vless-server-plain no
  tb_tun_start vless-tun-plain 1 false wait 443
  count plain "$TB_TUN_PID" "$TB_SERVER_PID"
  stop_pid "$TB_TUN_PID" || true
  stop_pid "$TB_SERVER_PID" || true
fi
log "done"
