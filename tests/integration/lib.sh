# Shared harness for the integration tests (bash). Source it, then use
# `start NAME CMD...` for every background process: they are all stopped, by
# PID, on exit, as are the namespaces made with `netns_add` and the temporary
# folder, even when the test fails.
set -euo pipefail

VT_TOOLS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/tools"
VT_TMP=$(mktemp -d /tmp/vt-it.XXXXXX)
VT_PIDS=()
VT_NETNS=()
VT_FAILED=0

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*"; }
fail() {
  VT_FAILED=1
  printf 'FAIL: %s\n' "$*" >&2
  exit 1
}

VT_CLEANUP_PATHS=()
_vt_cleanup() {
  local rc=$?
  for pid in "${VT_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${VT_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  for ns in "${VT_NETNS[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
  # Files a test put outside VT_TMP (/etc/netns/<ns>/...), by path.
  for p in "${VT_CLEANUP_PATHS[@]}"; do rm -rf "$p"; done
  [ ${#VT_CLEANUP_PATHS[@]} -eq 0 ] || rmdir /etc/netns 2>/dev/null || true
  if [ $rc -ne 0 ]; then
    # Show what the processes said; it is the first thing one needs.
    for f in "$VT_TMP"/*.log; do
      [ -f "$f" ] || continue
      echo "----- $(basename "$f") (last 30 lines)"
      tail -30 "$f"
    done
  fi
  [ -n "${VT_KEEP_TMP:-}" ] && echo "kept $VT_TMP" || rm -rf "$VT_TMP"
  exit $rc
}
trap _vt_cleanup EXIT
trap 'exit 130' INT TERM

require_root() {
  [ "$(id -u)" -eq 0 ] || fail "this test needs root"
}
require_cmd() {
  for c in "$@"; do command -v "$c" >/dev/null || fail "missing command '$c' (run scripts/setup.sh)"; done
}

# start NAME CMD... : runs CMD in the background, output to $VT_TMP/NAME.log
start() {
  local name=$1
  shift
  "$@" >"$VT_TMP/$name.log" 2>&1 &
  VT_PIDS+=($!)
  log "started $name (pid $!)"
}
last_pid() { echo "${VT_PIDS[-1]}"; }

# A free TCP port on loopback (the kernel picks; a race is possible but rare).
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_port HOST PORT [SECONDS] [NETNS]: polls until something listens.
wait_port() {
  local host=$1 port=$2 secs=${3:-10} ns=${4:-}
  local deadline=$(( $(date +%s) + secs ))
  local run=()
  [ -n "$ns" ] && run=(ip netns exec "$ns")
  while ! "${run[@]}" bash -c "exec 3<>/dev/tcp/$host/$port" 2>/dev/null; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "nothing listens on $host:$port after ${secs}s"
    sleep 0.05
  done
}

# make_cert DIR NAME: a self-signed CA and a server cert for NAME, 127.0.0.1.
make_cert() {
  local dir=$1 name=$2
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -keyout "$dir/ca.key" -out "$dir/ca.pem" -subj "/CN=vless-tun test CA" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$dir/server.key" -out "$dir/server.csr" -subj "/CN=$name" 2>/dev/null
  printf 'subjectAltName=DNS:%s,IP:127.0.0.1\n' "$name" >"$dir/ext.cnf"
  openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
    -CAcreateserial -days 2 -extfile "$dir/ext.cnf" -out "$dir/server.pem" 2>/dev/null
}

new_uuid() { cat /proc/sys/kernel/random/uuid; }

sha_of() { sha256sum "$1" | cut -d' ' -f1; }

netns_add() {
  ip netns add "$1"
  VT_NETNS+=("$1")
  ip -n "$1" link set lo up
}
