#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this and nothing else):
#   1. set-up (packages, Debian source packages of mbedTLS and lwIP)
#   2. Release build with -Werror, every test through ctest
#   3. the same suite built with ASan+UBSan (the 4-worker repeats left out)
#   4. the unit tests built with ThreadSanitizer (scripts/tsan.sh)
#   5. each libFuzzer target (clang) for a short bounded run
# Needs root (network namespaces, TUN devices, installs). Exits non-zero on
# the first failure.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
jobs=${VT_JOBS:-$(nproc)}
# ctest jobs: the tests that measure (bulk, churn, rates, memory bounds) are
# RUN_SERIAL (tests/integration/CMakeLists.txt) and run alone; the rest
# mostly wait, so they share the machine.
test_jobs=${VT_TEST_JOBS:-3}
fuzz_seconds=${VT_FUZZ_SECONDS:-15}
start=$(date +%s)
step() { printf '\n=== %s (%ss)\n' "$*" "$(( $(date +%s) - start ))"; }

[ "$(id -u)" -eq 0 ] || { echo "test.sh: run as root (the integration tests create network namespaces)" >&2; exit 1; }

step "set-up"
scripts/setup.sh

step "Release build"
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release -DVT_WERROR=ON >/dev/null
ninja -C build/release -j "$jobs"

step "Release tests"
ctest --test-dir build/release --output-on-failure --timeout 600 -j "$test_jobs"

step "ASan+UBSan build"
cmake -S . -B build/asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DVT_SANITIZE=ON -DVT_WERROR=ON >/dev/null
ninja -C build/asan -j "$jobs"

step "ASan+UBSan tests"
# The full-size loads (256 MiB each way, 500 connections, 20 s of slow
# reading) ran in the Release pass; under the sanitizers the same tests run
# with lighter loads, since what they look for there is memory errors;
# VT_SANITIZED tells the tests that memory and speed bounds do not hold
# there (ASan's shadow and quarantine, its slowdown).
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  VT_SANITIZED=1 VT_XFER_MB=32 VT_CONNS=200 VT_SLOW_SECS=16 VT_CHURN_WORKERS=8 VT_CHURN_MAX_MS=5000 VT_CHURN_SECS=15 \
  ctest --test-dir build/asan --output-on-failure --timeout 900 -j "$test_jobs" -E '^it_w4_'

step "TSan build and unit tests"
scripts/tsan.sh

step "fuzz build (clang, libFuzzer)"
CC=clang CXX=clang++ cmake -S . -B build/fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DVT_FUZZ=ON -DVT_TESTS=OFF >/dev/null
ninja -C build/fuzz -j "$jobs" fuzz

step "fuzz runs (${fuzz_seconds}s each)"
fuzzers=$(find build/fuzz/tests/fuzz -maxdepth 1 -type f -executable -name 'fuzz_*' | sort)
[ -n "$fuzzers" ] || { echo "no fuzz targets were built" >&2; exit 1; }
# One target per core at a time; each writes its verdict to a file.
fuzz_one() {
  local f=$1 name work seeds
  name=$(basename "$f")
  work=$(mktemp -d)
  seeds="tests/fuzz/corpus/$name"
  [ -d "$seeds" ] && cp -r "$seeds"/. "$work"/
  if "$f" -max_total_time="$fuzz_seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=0 \
       -artifact_prefix="$work/" "$work" >"$work.log" 2>&1; then
    printf '%-32s ok (%s)\n' "$name" "$(grep -Eo 'stat::number_of_executed_units: [0-9]+|Done [0-9]+ runs' "$work.log" | tail -1)" >"$fuzz_out/$name.ok"
  else
    { echo "$name FAILED:"; tail -40 "$work.log"; } >"$fuzz_out/$name.failed"
  fi
  rm -rf "$work" "$work.log"
}
fuzz_out=$(mktemp -d)
running=0
for f in $fuzzers; do
  if [ "$running" -ge "$jobs" ]; then wait -n || true; running=$((running - 1)); fi
  fuzz_one "$f" &
  running=$((running + 1))
done
wait
fuzz_pass=0 fuzz_fail=0
for f in $fuzzers; do
  name=$(basename "$f")
  if [ -f "$fuzz_out/$name.ok" ]; then cat "$fuzz_out/$name.ok"; fuzz_pass=$((fuzz_pass + 1))
  else cat "$fuzz_out/$name.failed" 2>/dev/null || echo "$name FAILED: no verdict"; fuzz_fail=$((fuzz_fail + 1)); fi
done
rm -rf "$fuzz_out"
echo "fuzz: $fuzz_pass passed, $fuzz_fail failed"
[ "$fuzz_fail" -eq 0 ] || exit 1

step "all green"
