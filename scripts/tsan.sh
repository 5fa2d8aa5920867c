#!/usr/bin/env bash
# ThreadSanitizer build of the threaded parts and their unit tests (issue
# 11): engine_workers_test (1, 2 and 4 client workers over a real
# multi-queue TUN: their inboxes, the stats parking, the shared DNS cache
# and routing maps (DnsNames, DialledIps),
# lwIP's process-wide lock), capi_test (two cores side by side, stop/run
# races), netstack_test (several NetStacks on their own threads) and
# event_test (the resolver pool's threads). Our code and lwIP are
# instrumented, mbedTLS too (its PSA key store and RNG are process-wide).
# scripts/test.sh runs it so (~3 min cold on 2 cores). `--all` builds and
# runs every unit test under TSan instead (~7 min). By hand: sudo
# scripts/tsan.sh [--all] (after scripts/setup.sh). Needs root
# (namespaces, TUN devices).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
jobs=${VT_JOBS:-$(nproc)}
[ "$(id -u)" -eq 0 ] || { echo "tsan.sh: run as root (the unit tests create network namespaces and TUNs)" >&2; exit 1; }

cmake -S . -B build/tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVT_TSAN=ON -DVT_WERROR=ON >/dev/null
if [ "${1:-}" = "--all" ]; then
  # Every target that ctest -L unit runs.
  targets=$(ninja -C build/tsan -t targets all | sed -nE 's@^tests/unit/[a-z_]+/([a-z0-9_]+_test): .*@\1@p' | sort -u)
  [ -n "$targets" ] || { echo "tsan.sh: no unit test targets found" >&2; exit 1; }
  filter=(-L unit)
else
  targets="engine_workers_test capi_test netstack_test event_test"
  filter=(-R '^(engine_workers_test|capi_test|netstack_test|event_test)$')
fi
# shellcheck disable=SC2086
ninja -C build/tsan -j "$jobs" $targets
# halt_on_error: the first report fails the test; second_deadlock_stack for
# lock-order reports. setarch -R: TSan's shadow mapping needs a fixed
# layout on kernels with high mmap randomisation.
TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 history_size=4" VT_SANITIZED=1 \
  setarch "$(uname -m)" -R ctest --test-dir build/tsan "${filter[@]}" --output-on-failure --timeout 900
