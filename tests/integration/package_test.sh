#!/usr/bin/env bash
# The Debian packages (platform/linux/packaging, docs/operations.md): CPack
# builds vless-tun and vless-server .debs from the build under test; they
# are checked (dependencies, files, maintainer scripts), installed on this
# machine with dpkg, their units pass `systemd-analyze verify`, the
# installed binaries run their units' ExecStart lines as written (configs
# in /etc, the server in ns srv, the client in ns app), tell a stand-in
# for systemd's notification socket when they are ready (Type=notify) and
# stopping, and carry a flow;
# then both are purged, whatever happens. Refuses to run where either
# package is already installed.
source "$(dirname "$0")/lib.sh"
source "$VT_TOOLS/testbed.sh"
: "${VT_TUN:?path to vless-tun}"
require_root
require_cmd cpack dpkg dpkg-deb systemd-analyze python3 openssl ip
T0=$(date +%s)
build=$(cd "$(dirname "$VT_TUN")/../.." && pwd)
for p in vless-tun vless-server; do
  if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok'; then
    fail "$p is installed on this machine already: not replacing it (dpkg --purge $p first)"
  fi
done

mine=()  # files and packages to take away at the end
made_dirs=()  # runtime directories made here
cleanup_pkgs() {
  local rc=$?
  set +e
  [ -n "${TUN_PID:-}" ] && stop_pid "$TUN_PID"
  [ -n "${SRV_PID:-}" ] && stop_pid "$SRV_PID"
  rm -f "${mine[@]}"
  for d in "${made_dirs[@]}"; do rm -f "$d"/*.sock; rmdir "$d" 2>/dev/null; done
  dpkg --purge vless-tun vless-server >/dev/null 2>&1
  (exit $rc)
  _vt_cleanup
}
trap cleanup_pkgs EXIT

cpack --config "$build/CPackConfig.cmake" -B "$VT_TMP/pkgs" >"$VT_TMP/cpack.log" 2>&1 ||
  fail "cpack: $(tail -5 "$VT_TMP/cpack.log")"
TUN_DEB=$(ls "$VT_TMP"/pkgs/vless-tun_*.deb) SRV_DEB=$(ls "$VT_TMP"/pkgs/vless-server_*.deb)
log "built $(basename "$TUN_DEB") ($(stat -c %s "$TUN_DEB") B), $(basename "$SRV_DEB") ($(stat -c %s "$SRV_DEB") B)"
for deb in "$TUN_DEB" "$SRV_DEB"; do
  deps=$(dpkg-deb -f "$deb" Depends)
  for d in libuv1 libtomlplusplus3 libmaxminddb0; do
    [[ "$deps" == *"$d"* ]] || fail "$(basename "$deb"): Depends lacks $d: $deps"
  done
done
files=$(dpkg-deb -c "$TUN_DEB" | awk '{print $6}')
for f in ./usr/bin/vless-tun ./lib/systemd/system/vless-tun@.service ./usr/share/man/man8/vless-tun.8 \
         ./usr/share/doc/vless-tun/examples/client.toml ./etc/vless-tun/; do
  grep -qx -- "$f" <<<"$files" || fail "vless-tun.deb lacks $f"
done
files=$(dpkg-deb -c "$SRV_DEB" | awk '{print $6}')
for f in ./usr/bin/vless-server ./lib/systemd/system/vless-server.service \
         ./usr/share/man/man8/vless-server.8 ./usr/share/doc/vless-server/examples/server.toml; do
  grep -qx -- "$f" <<<"$files" || fail "vless-server.deb lacks $f"
done

dpkg -i "$TUN_DEB" "$SRV_DEB" >"$VT_TMP/dpkg.log" 2>&1 || fail "dpkg -i: $(tail -5 "$VT_TMP/dpkg.log")"
log "installed: $(dpkg-query -W -f='${Package} ${Version} ${Status}\n' vless-tun vless-server | tr '\n' ';')"
/usr/bin/vless-tun --version | grep -q '^vless-tun ' || fail "vless-tun --version"
/usr/bin/vless-server --version | grep -q '^vless-server ' || fail "vless-server --version"
# Units: verified as installed (man pages checked by file above: --man=no).
cp /lib/systemd/system/vless-tun@.service "$VT_TMP/vless-tun@check.service"
out=$(systemd-analyze verify --man=no /lib/systemd/system/vless-server.service \
        "$VT_TMP/vless-tun@check.service" 2>&1) || fail "systemd-analyze verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify said: $out"
log "systemd-analyze verify: both units clean"
# The examples check as shipped (the server's once its TLS files exist).
/usr/bin/vless-tun --check -c /usr/share/doc/vless-tun/examples/client.toml >/dev/null ||
  fail "the shipped client example does not check"

# ExecStart as written, with configs where the units read them.
exec_of() { sed -n 's/^ExecStart=//p' "$1"; }
tb_setup pkg
mine+=(/etc/vless-server/server.toml /etc/vless-server/server.pem /etc/vless-server/server.key
       /etc/vless-tun/pkgtest.toml)
cp "$VT_TMP/server.pem" "$VT_TMP/server.key" /etc/vless-server/
sed -e 's|/etc/vless-server/fullchain.pem|/etc/vless-server/server.pem|' \
    -e 's|/etc/vless-server/privkey.pem|/etc/vless-server/server.key|' \
    -e "s|^listen = .*|listen = [\"$TB_SRV4:443\"]|" \
    -e "s|^uuid = .*|uuid = \"$TB_UUID\"|" /usr/share/doc/vless-server/examples/server.toml \
    >/etc/vless-server/server.toml
srv_exec=$(exec_of /lib/systemd/system/vless-server.service)
[ "$srv_exec" = "/usr/bin/vless-server -c /etc/vless-server/server.toml --control /run/vless-server/control.sock" ] || fail "server ExecStart: $srv_exec"
# The units' runtime directories (systemd's RuntimeDirectory=), made here
# when the machine has none, removed after.
for d in /run/vless-server /run/vless-tun; do
  if [ ! -d "$d" ]; then mkdir -m 0755 "$d"; made_dirs+=("$d"); fi
done
# Type=notify: a stand-in for systemd's notification socket.
NOTIFY="$VT_TMP/notify.sock"
start notify python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1]); s.settimeout(60)
while True:
    try:
        print(s.recv(4096).decode().replace("\n", " "), flush=True)
    except socket.timeout:
        break' "$NOTIFY"
NOTIFY_PID=$(last_pid)
for _ in $(seq 100); do [ -S "$NOTIFY" ] && break; sleep 0.05; done
NOTIFY_SOCKET="$NOTIFY" start pkg-server ip netns exec "$TB_SRV" $srv_exec
SRV_PID=$(last_pid)
wait_port "$TB_SRV4" 443 10 "$TB_SRV"
wait_log "$VT_TMP/notify.log" '^READY=1 ' 10
link=$(/usr/bin/vless-server links -c /etc/vless-server/server.toml --host test.name | cut -f2)
tb_netns_hosts "$TB_APP" "198.18.0.2 test.name"
/usr/bin/vless-tun import -o /etc/vless-tun/pkgtest.toml "$link" 2>/dev/null || fail "import $link"
sed -i -e "s|^\[server\]$|[server]\nca = \"$VT_TMP/ca.pem\"|" \
       -e "s|^\[tun\]$|[tun]\nipv4 = \"198.18.2.1/30\"\nmtu = 1500|" /etc/vless-tun/pkgtest.toml
tun_exec=$(exec_of /lib/systemd/system/vless-tun@.service | sed 's/%i/pkgtest/g')
[ "$tun_exec" = "/usr/bin/vless-tun -c /etc/vless-tun/pkgtest.toml --control /run/vless-tun/pkgtest.sock" ] || fail "tun ExecStart: $tun_exec"
NOTIFY_SOCKET="$NOTIFY" start pkg-tun ip netns exec "$TB_APP" $tun_exec
TUN_PID=$(last_pid)
wait_log "$VT_TMP/pkg-tun.log" 'vless-tun started' 10
wait_log "$VT_TMP/notify.log" '^READY=1 STATUS=running' 10
ip -n "$TB_APP" route replace 198.18.1.0/24 dev vt0
start whoami ip netns exec "$TB_WEB" python3 "$VT_TOOLS/tcp_whoami.py" serve --ports 8080 --max-seconds 60
wait_port "$TB_WEB4" 8080 10 "$TB_WEB"
out=$(ip netns exec "$TB_APP" python3 "$VT_TOOLS/tcp_whoami.py" probe --target "$TB_WEB4:8080")
[[ "$out" =~ ^PEER\ 198\.18\.1\.1\  ]] || fail "a flow through the installed binaries: $out"
log "installed binaries carried a flow: $out"
# The status commands find the units' sockets by themselves.
/usr/bin/vless-server status >"$VT_TMP/srv-status.txt" || fail "vless-server status: $(cat "$VT_TMP/srv-status.txt")"
grep -q '^uptime ' "$VT_TMP/srv-status.txt" || fail "vless-server status: $(cat "$VT_TMP/srv-status.txt")"
/usr/bin/vless-tun status >"$VT_TMP/tun-status.txt" || fail "vless-tun status: $(cat "$VT_TMP/tun-status.txt")"
grep -q '^vless-tun running for ' "$VT_TMP/tun-status.txt" || fail "vless-tun status: $(cat "$VT_TMP/tun-status.txt")"
log "status: $(head -1 "$VT_TMP/srv-status.txt") | $(head -1 "$VT_TMP/tun-status.txt")"
stop_pid "$TUN_PID" || fail "installed vless-tun did not exit cleanly"
TUN_PID=""
stop_pid "$SRV_PID" || fail "installed vless-server did not exit cleanly"
SRV_PID=""
grep -q '^STOPPING=1 STATUS=draining' "$VT_TMP/notify.log" || fail "no STOPPING=1: $(cat "$VT_TMP/notify.log")"
log "service manager heard: $(tr '\n' '|' <"$VT_TMP/notify.log")"
stop_pid "$NOTIFY_PID" || true
rm -f "${mine[@]}"
[ -e /run/vless-server/control.sock ] && fail "vless-server left its control socket"
[ -e /run/vless-tun/pkgtest.sock ] && fail "vless-tun left its control socket"
for d in "${made_dirs[@]}"; do rmdir "$d" 2>/dev/null || true; done
dpkg --purge vless-tun vless-server >"$VT_TMP/purge.log" 2>&1 || fail "dpkg --purge: $(cat "$VT_TMP/purge.log")"
[ ! -e /usr/bin/vless-tun ] && [ ! -e /lib/systemd/system/vless-server.service ] || fail "purge left files"
log "PASS in $(( $(date +%s) - T0 )) s"
