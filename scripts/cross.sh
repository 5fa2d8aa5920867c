#!/usr/bin/env bash
# Cross builds for phone and router CPUs with Debian 12's cross toolchains:
#   scripts/cross.sh [aarch64|armhf|all]      (default: all)
# For each architecture: installs what it needs (as root, once), configures
# with cmake/toolchains/<triplet>.cmake, builds vless-tun, vless-server and
# the unit tests, runs the unit tests under qemu-user, strips copies of the
# two binaries and prints their sizes. Every phase is timed. See docs/cross.md.
#
# Environment:
#   VT_DEPS_DIR      lwIP/mbedTLS sources (default: <repo>/.deps; scripts/setup.sh
#                    fetches them there when missing)
#   VT_CROSS_OUT     where the build-<arch> folders go (default: <repo>)
#   JOBS             parallel compile jobs (default: nproc)
#   VT_CROSS_NO_TESTS=1  build and strip only
#   VT_CROSS_EXCLUDE ctest -E regex of unit tests not to run (default below)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
deps=${VT_DEPS_DIR:-$root/.deps}
out=${VT_CROSS_OUT:-$root}
jobs=${JOBS:-$(nproc)}

say() { printf 'cross: %s\n' "$*"; }
die() { printf 'cross: %s\n' "$*" >&2; exit 1; }

case "${1:-all}" in
  aarch64) arches=(aarch64) ;;
  armhf) arches=(armhf) ;;
  all) arches=(aarch64 armhf) ;;
  *) die "usage: $0 [aarch64|armhf|all]" ;;
esac

# arch -> Debian architecture, triplet (toolchain file, compiler prefix)
debarch() { case $1 in aarch64) echo arm64 ;; armhf) echo armhf ;; esac; }
triplet() { case $1 in aarch64) echo aarch64-linux-gnu ;; armhf) echo arm-linux-gnueabihf ;; esac; }

# Unit tests that cannot run under qemu-user, as a ctest -E regex. Each one
# with the reason:
#   route_test: its policy routing rules (ip rule) go over rtnetlink, and
#     qemu-user (7.2 in Debian 12) translates only link, address and route
#     messages: RTM_NEWRULE/RTM_DELRULE fail with EOPNOTSUPP under qemu.
# The other root tests (platform_test, netstack_tun_test: a TUN in a netns of
# their own) do run under qemu-user; like natively, they need root.
exclude=${VT_CROSS_EXCLUDE-^route_test\$}

timings=()
phase_start=0
phase() { phase_name=$1; phase_start=$(date +%s.%N); say "== $phase_name"; }
phase_end() {
  local t
  t=$(awk -v a="$phase_start" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
  timings+=("$(printf '%-24s %8s s' "$phase_name" "$t")")
  say "$phase_name: ${t} s"
}
total_start=$(date +%s.%N)

# ---- install ------------------------------------------------------------
phase install
pkgs=(cmake ninja-build pkg-config qemu-user binutils)
for a in "${arches[@]}"; do
  d=$(debarch "$a")
  pkgs+=("crossbuild-essential-$d" "libuv1-dev:$d" "libmaxminddb-dev:$d" "libtomlplusplus-dev:$d" "libgtest-dev:$d" "libc6:$d"
        "libssl-dev:$d")
done
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" -eq 0 ] || die "must run as root to install: ${missing[*]}"
  for a in "${arches[@]}"; do
    d=$(debarch "$a")
    dpkg --print-foreign-architectures | grep -qx "$d" || { say "dpkg --add-architecture $d"; dpkg --add-architecture "$d"; }
  done
  say "apt-get update"
  apt-get update -qq
  say "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    -o DPkg::Lock::Timeout=600 "${missing[@]}" >/dev/null
fi
if ! compgen -G "$deps/mbedtls-3.6*/library/ssl_tls.c" >/dev/null ||
   ! compgen -G "$deps/lwip-2.2.1*/src/core/tcp.c" >/dev/null; then
  [ -z "${VT_DEPS_DIR:-}" ] || die "no lwIP/mbedTLS sources in $deps"
  say "lwIP/mbedTLS sources missing: scripts/setup.sh"
  "$root/scripts/setup.sh"
fi
phase_end

results=()
for a in "${arches[@]}"; do
  t=$(triplet "$a")
  b="$out/build-$a"

  # ---- configure ----------------------------------------------------------
  phase "$a configure"
  mkdir -p "$b"
  cmake -S "$root" -B "$b" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_TOOLCHAIN_FILE="$root/cmake/toolchains/$t.cmake" \
    -DVT_DEPS_DIR="$deps" >"$b/configure.log" 2>&1 ||
    { tail -40 "$b/configure.log"; die "$a: configure failed (log: $b/configure.log)"; }
  phase_end

  # ---- build --------------------------------------------------------------
  # The unit tests' targets have the tests' names (tests/CMakeLists.txt).
  mapfile -t unit < <(cd "$b" && ctest -N -L '^unit$' | awk '/Test +#/{print $3}')
  phase "$a build"
  ninja -C "$b" -j "$jobs" vless-tun vless-server "${unit[@]}"
  phase_end

  # ---- unit tests under qemu-user -------------------------------------------
  # CMAKE_CROSSCOMPILING_EMULATOR (toolchain file) makes ctest run each test
  # binary as: qemu-<arch> <binary>, with the target's loader and libraries
  # from dpkg multiarch (not -L; see the toolchain file).
  test_summary="not run"
  if [ "${VT_CROSS_NO_TESTS:-0}" != 1 ]; then
    phase "$a unit tests (qemu)"
    log="$b/ctest-qemu.log"
    set +e
    (cd "$b" && ctest -L '^unit$' ${exclude:+-E "$exclude"} -j "$jobs" --output-on-failure) 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    set -e
    test_summary=$(grep -E 'tests passed' "$log" | tail -1)
    [ -n "$exclude" ] && test_summary+=" (excluded: $exclude)"
    [ "$rc" -eq 0 ] || test_summary+=" FAILED"
    phase_end
  fi

  # ---- strip and sizes ----------------------------------------------------
  phase "$a strip"
  mkdir -p "$b/stripped"
  sizes=""
  for bin in vless-tun vless-server; do
    f=$(find "$b" -path "$b/stripped" -prune -o -type f -name "$bin" -perm -u+x -print | head -1)
    [ -n "$f" ] || die "$a: $bin not built"
    "$t-strip" -o "$b/stripped/$bin" "$f"
    s=$(stat -c %s "$b/stripped/$bin")
    needed=$("$t-readelf" -d "$b/stripped/$bin" | awk -F'[][]' '/NEEDED/{printf "%s ", $2}')
    sizes+=$(printf '\n  %-13s %9d bytes (%5.0f KiB) stripped, %9d unstripped; needs %s' \
      "$bin" "$s" "$(awk -v s="$s" 'BEGIN{print s/1024}')" "$(stat -c %s "$f")" "$needed")
  done
  phase_end
  results+=("$a ($t): unit tests: $test_summary$sizes")
done

total=$(awk -v a="$total_start" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
echo
say "== summary"
for r in "${results[@]}"; do echo "$r"; done
echo "times:"
for l in "${timings[@]}"; do echo "  $l"; done
printf '  %-24s %8s s\n' total "$total"
for r in "${results[@]}"; do case $r in *FAILED*) exit 1 ;; esac; done
