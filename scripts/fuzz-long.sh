#!/usr/bin/env bash
# Long fuzzing: every libFuzzer target for N executions (default 10^7) or a
# fixed time each, with a corpus per target kept between runs outside git.
#
#   scripts/fuzz-long.sh                    # 10^7 executions per target (hours; see below)
#   scripts/fuzz-long.sh --seconds 600      # 10 minutes per target
#   scripts/fuzz-long.sh --seconds 60 -j 2 fuzz_smux fuzz_server_request
#
# Options:
#   --runs N          executions per target (default 10000000)
#   --seconds S       run each target for S seconds instead of N executions
#   --max-seconds S   with --runs: stop a target after S seconds anyway
#                     (default 14400, i.e. 4 h; 0 = no cap)
#   -j, --jobs N      targets run at once, one core each (default 1); also
#                     the build's parallelism
#   --state DIR       where corpora and run records live
#                     (default $VT_FUZZ_STATE or ~/.cache/vless-tun)
#   --merge           afterwards, minimise each kept corpus (libFuzzer -merge=1)
#   --no-build        use the fuzzers already in build/fuzz-long
#   TARGET...         only these targets (default: all that were built)
#
# Layout under --state:
#   fuzz-corpus/<target>/         the kept corpus (grows run after run; the
#                                 seeds in tests/fuzz/corpus/<target> are
#                                 read too, never written)
#   fuzz-runs/<date>/<target>.log libFuzzer's output
#   fuzz-runs/<date>/<target>/    crash-*, timeout-*, oom-*, leak-* inputs
#   fuzz-runs/<date>/summary.txt  the final table
#
# Every target runs with -timeout=10 -rss_limit_mb=2048 (ASan, UBSan with
# halt_on_error, LeakSanitizer). Exit status: 0 when every target finished
# clean, 1 when any crashed, timed out, ran out of memory or leaked; the
# table names the reproducer, which replays with
#   build/fuzz-long/tests/fuzz/<target> <file>
#
# Duration: the build (~10 min the first time on one core), then per
# target S seconds, or N / (its executions per second) capped by
# --max-seconds; targets run one after another (--jobs at a time). With
# --seconds 60 the 15 targets take ~16 min on one core. With the default
# 10^7 runs, at the rates of a reference run on a busy 2-core machine:
# fuzz_netstack_input, fuzz_dns ~5 min; the other decoder targets and
# fuzz_mux_session 10-50 min each; fuzz_server_request ~2.5 h (~1,200
# executions/s); fuzz_tls_server (10-30/s: each valid ClientHello costs an
# ECDHE and a signature under full instrumentation) stops at the 4 h cap.
# About 11 h on one core in all, ~6 h with -j 2.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

runs=10000000
seconds=0
max_seconds=14400
jobs=1
state=${VT_FUZZ_STATE:-${HOME:-/root}/.cache/vless-tun}
merge=0
build=1
targets=()

usage() { sed -n '2,/^set -uo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit "${1:-2}"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs=${2:?}; shift 2 ;;
    --seconds) seconds=${2:?}; shift 2 ;;
    --max-seconds) max_seconds=${2:?}; shift 2 ;;
    -j|--jobs) jobs=${2:?}; shift 2 ;;
    -j[0-9]*) jobs=${1#-j}; shift ;;
    --state) state=${2:?}; shift 2 ;;
    --merge) merge=1; shift ;;
    --no-build) build=0; shift ;;
    -h|--help) usage 0 ;;
    -*) echo "fuzz-long.sh: unknown option $1" >&2; usage 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
for n in "$runs" "$seconds" "$max_seconds" "$jobs"; do
  case "$n" in ''|*[!0-9]*) echo "fuzz-long.sh: not a number: $n" >&2; exit 2 ;; esac
done
[ "$jobs" -ge 1 ] || jobs=1

bin=build/fuzz-long/tests/fuzz
if [ "$build" -eq 1 ]; then
  echo "=== building the fuzzers in build/fuzz-long (clang, -j $jobs)"
  CC=clang CXX=clang++ cmake -S . -B build/fuzz-long -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DVT_FUZZ=ON -DVT_TESTS=OFF >/dev/null || exit 1
  ninja -C build/fuzz-long -j "$jobs" fuzz || exit 1
fi
if [ ${#targets[@]} -eq 0 ]; then
  while IFS= read -r f; do targets+=("$(basename "$f")"); done \
    < <(find "$bin" -maxdepth 1 -type f -executable -name 'fuzz_*' 2>/dev/null | sort)
fi
[ ${#targets[@]} -gt 0 ] || { echo "fuzz-long.sh: no fuzz targets in $bin" >&2; exit 1; }
for t in "${targets[@]}"; do
  [ -x "$bin/$t" ] || { echo "fuzz-long.sh: no such fuzzer: $bin/$t" >&2; exit 1; }
done

run_dir="$state/fuzz-runs/$(date +%Y%m%d-%H%M%S)"
mkdir -p "$run_dir" || exit 1
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
if [ "$seconds" -gt 0 ]; then
  limit=(-max_total_time="$seconds"); what="$seconds s per target"
else
  limit=(-runs="$runs"); what="$runs executions per target"
  [ "$max_seconds" -gt 0 ] && { limit+=(-max_total_time="$max_seconds"); what+=", at most $max_seconds s each"; }
fi
echo "=== ${#targets[@]} targets, $what, $jobs at a time; run records in $run_dir"

# One target: libFuzzer on the kept corpus (+ the seeds, read only), then a
# one-line record "target rc seconds" in $run_dir/<target>.rc.
run_one() {
  local t=$1 corpus="$state/fuzz-corpus/$1" seeds="tests/fuzz/corpus/$1" start rc
  mkdir -p "$corpus" "$run_dir/$t"
  local dirs=("$corpus")
  [ -d "$seeds" ] && dirs+=("$seeds")
  start=$(date +%s)
  "$bin/$t" "${limit[@]}" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$run_dir/$t/" "${dirs[@]}" >"$run_dir/$t.log" 2>&1 &
  echo $! >"$run_dir/$t.pid"
  wait $!
  rc=$?
  rm -f "$run_dir/$t.pid"
  echo "$t $rc $(( $(date +%s) - start ))" >"$run_dir/$t.rc"
  printf '%-24s finished: exit %s after %ss\n' "$t" "$rc" "$(( $(date +%s) - start ))"
}

on_signal() {
  echo "fuzz-long.sh: interrupted; stopping the fuzzers" >&2
  for f in "$run_dir"/*.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null; done
  wait
  exit 130
}
trap on_signal INT TERM
for t in "${targets[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
  printf '%-24s started\n' "$t"
  run_one "$t" &
done
wait

if [ "$merge" -eq 1 ]; then
  for t in "${targets[@]}"; do
    corpus="$state/fuzz-corpus/$t"
    tmp="$corpus.merge"
    rm -rf "$tmp"; mkdir -p "$tmp"
    if "$bin/$t" -merge=1 -timeout=10 -rss_limit_mb=2048 "$tmp" "$corpus" >"$run_dir/$t.merge.log" 2>&1; then
      rm -rf "$corpus" && mv "$tmp" "$corpus"
    else
      echo "$t: merge failed (corpus kept as it was), see $run_dir/$t.merge.log" >&2
      rm -rf "$tmp"
    fi
  done
fi

# The table.
stat() { grep -Eo "stat::$2: *[0-9]+" "$1" 2>/dev/null | tail -1 | grep -Eo '[0-9]+$'; }
cov() { # first INITED / last cov line: "cov ft"
  grep -E "$2" "$1" 2>/dev/null | sed -nE 's/.*cov: ([0-9]+) ft: ([0-9]+).*/\1 \2/p' | "$3" -1
}
failed=0
{
  printf '%-22s %11s %7s %7s %17s %24s  %s\n' target executions seconds exec/s "corpus (files/KiB)" "coverage: cov (+new) ft" result
  for t in "${targets[@]}"; do
    log="$run_dir/$t.log"
    read -r _ rc secs <"$run_dir/$t.rc" 2>/dev/null || { rc=-1; secs=0; }
    execs=$(stat "$log" number_of_executed_units); execs=${execs:-0}
    rate=$(stat "$log" average_exec_per_sec)
    [ -n "$rate" ] || rate=$(( secs > 0 ? execs / secs : 0 ))
    corpus="$state/fuzz-corpus/$t"
    files=$(find "$corpus" -type f | wc -l)
    kib=$(( ($(find "$corpus" -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}') + 1023) / 1024 ))
    read -r c0 f0 < <(cov "$log" 'INITED' head); read -r c1 f1 < <(cov "$log" 'cov: ' tail)
    gained="${c1:-?} (+$(( ${c1:-0} - ${c0:-0} ))) ${f1:-?} (+$(( ${f1:-0} - ${f0:-0} )))"
    artifact=$(find "$run_dir/$t" -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' \
      -o -name 'leak-*' \) | head -1)
    if [ "$rc" = 0 ] && [ -z "$artifact" ]; then
      result=ok
    else
      failed=1
      kind=$(basename "${artifact:-failed-}"); kind=${kind%%-*}
      result="$(echo "$kind" | tr a-z A-Z) (exit $rc)${artifact:+ $artifact}; log $log"
    fi
    printf '%-22s %11s %7s %7s %17s %24s  %s\n' "$t" "$execs" "$secs" "$rate" "$files/$kib" "$gained" "$result"
  done
} | tee "$run_dir/summary.txt"
echo "summary: $run_dir/summary.txt"
exit "$failed"
