#!/usr/bin/env bash
# SIGHUP on vless-server (docs/server.md "Reload"): while user it-user
# downloads a file (rate-limited so that it lasts), the config is rewritten
# without bob and with alice, and the server gets SIGHUP. Then: it-user's
# download completes intact (sha256) on its connection of before; bob's
# live connection is closed and bob is refused; alice gets in; the server
# logs what changed; a config that does not load changes nothing. Then the
# certificate is renewed in place and served from the next SIGHUP on.
#
#   ns app (vless-nc) -- ns srv (vless-server) -- ns web (xfer.py)
source "$(dirname "$0")/lib.sh"
source "$VT_TOOLS/testbed.sh"
require_root
: "${VT_SERVER:?path to vless-server}" "${VT_NC:?path to vless-nc}"
T0=$(date +%s)
# it-user at 8 MB/s (2 MB/s under ASan) for 4 s of transfer.
rate_mb=$([ -n "${VT_SANITIZED:-}" ] && echo 2 || echo 8)
bytes=$((rate_mb * 4000000))

tb_setup reload
bob=$(new_uuid) alice=$(new_uuid)
head -c "$bytes" /dev/urandom >"$VT_TMP/big.bin"
head -c 100000 /dev/urandom >"$VT_TMP/small.bin"
start xfer-big ip netns exec "$TB_WEB" python3 "$VT_TOOLS/xfer.py" server --host "$TB_WEB4" --port 5001 --file "$VT_TMP/big.bin"
start xfer-small ip netns exec "$TB_WEB" python3 "$VT_TOOLS/xfer.py" server --host "$TB_WEB4" --port 5002 --file "$VT_TMP/small.bin"
wait_port "$TB_WEB4" 5001 10 "$TB_WEB"
wait_port "$TB_WEB4" 5002 10 "$TB_WEB"
users_before="rate_limit = \"${rate_mb}MB/s\"
[[users]]
name = \"bob\"
uuid = \"$bob\"
rate_limit = \"1MB/s\""
TB_USER_EXTRA="$users_before" tb_server_start srv
cfg="$VT_TMP/srv.toml"
slog="$VT_TMP/srv.log"

nc() {  # nc UUID PORT ARGS...
  local uuid=$1 port=$2
  shift 2
  timeout 120 ip netns exec "$TB_APP" "$VT_NC" --server "$TB_SRV4:443" --tls --sni test.name \
    --ca "$VT_TMP/ca.pem" --uuid "$uuid" --target "$TB_WEB4:$port" "$@"
}

nc "$alice" 5002 --text 'GET\n' >/dev/null 2>&1 && fail "alice got in before she was added"
nc "$TB_UUID" 5001 --text 'GET\n' >"$VT_TMP/big.got" 2>"$VT_TMP/big.err" &
big_pid=$!
nc "$bob" 5001 --text 'GET\n' >"$VT_TMP/bob.got" 2>/dev/null &
bob_pid=$!
sleep 1
kill -0 "$big_pid" || fail "it-user's download ended before the reload"
kill -0 "$bob_pid" || fail "bob's download ended before the reload"

# A config that does not load: refused, nothing changes.
cp "$cfg" "$VT_TMP/good.toml"
printf 'listen = 5\n' >>"$cfg"
kill -HUP "$TB_SERVER_PID"
wait_log "$slog" 'reload refused, the running config stays' 10
cp "$VT_TMP/good.toml" "$cfg"

# bob out, alice in.
python3 - "$cfg" "$bob" "$alice" <<'PY'
import sys
path, bob, alice = sys.argv[1:]
text = open(path).read()
block = '[[users]]\nname = "bob"\nuuid = "%s"\nrate_limit = "1MB/s"\n' % bob
assert block in text, text
text = text.replace(block, '[[users]]\nname = "alice"\nuuid = "%s"\n' % alice)
open(path, "w").write(text)
PY
kill -HUP "$TB_SERVER_PID"
wait_log "$slog" 'reloaded .*: 2 users \(1 added, 1 removed, 0 with a new uuid' 10
log "server: $(grep 'reloaded ' "$slog" | tail -1)"
kill -0 "$TB_SERVER_PID" || fail "vless-server died on SIGHUP"

# bob's connection was closed, and bob is refused.
deadline=$(( $(date +%s) + 10 ))
while kill -0 "$bob_pid" 2>/dev/null; do
  [ "$(date +%s)" -lt "$deadline" ] || fail "bob's connection still runs after the reload"
  sleep 0.1
done
wait "$bob_pid" || true
[ "$(stat -c %s "$VT_TMP/bob.got")" -lt "$bytes" ] || fail "bob's download completed despite the reload"
grep -q "user=bob .*user removed by reload" "$slog" || fail "no close line for bob's connection"
nc "$bob" 5002 --text 'GET\n' >/dev/null 2>&1 && fail "bob got in after he was removed"
# alice is in.
got=$(nc "$alice" 5002 --text 'GET\n' | sha256sum | cut -d' ' -f1)
[ "$got" = "$(sha_of "$VT_TMP/small.bin")" ] || fail "alice's download after the reload"
log "bob cut off and refused, alice served"

# A renewed certificate (rewritten in place, as certbot does): new
# connections get it after SIGHUP; the download in flight keeps its TLS.
mkdir -p "$VT_TMP/renewed"
make_cert "$VT_TMP/renewed" test.name
newca() {
  timeout 30 ip netns exec "$TB_APP" "$VT_NC" --server "$TB_SRV4:443" --tls --sni test.name \
    --ca "$VT_TMP/renewed/ca.pem" --uuid "$TB_UUID" --target "$TB_WEB4:5002" --text 'GET\n'
}
newca >/dev/null 2>&1 && fail "the renewed certificate was served before the reload"
cp "$VT_TMP/renewed/server.pem" "$VT_TMP/server.pem"
cp "$VT_TMP/renewed/server.key" "$VT_TMP/server.key"
kill -HUP "$TB_SERVER_PID"
wait_log "$slog" 'reloaded .*tls certificate and key read again' 10
got=$(newca | sha256sum | cut -d' ' -f1)
[ "$got" = "$(sha_of "$VT_TMP/small.bin")" ] || fail "no download with the renewed certificate"
nc "$TB_UUID" 5002 --text 'GET\n' >/dev/null 2>&1 && fail "the old certificate still served after the reload"
log "renewed certificate served after SIGHUP"

# it-user's transfer carried on across the reloads.
wait "$big_pid" || fail "it-user's download failed: $(cat "$VT_TMP/big.err")"
[ "$(sha_of "$VT_TMP/big.got")" = "$(sha_of "$VT_TMP/big.bin")" ] || fail "it-user's download corrupt"
log "it-user: $bytes bytes intact (sha256) across the reloads"
stop_pid "$TB_SERVER_PID" || fail "vless-server exited non-zero"
if grep -Ei 'Sanitizer|runtime error|assert|terminate called' "$slog"; then fail "vless-server tripped a check"; fi
log "PASS in $(( $(date +%s) - T0 )) s"
