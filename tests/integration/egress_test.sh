#!/usr/bin/env bash
# vless-server's egress policy end to end (docs/server.md "Egress"): with the
# defaults, a user asking for the server's loopback (127.0.0.1:22, [::1]:22),
# the server's own address, a name that resolves to 127.0.0.1, and a private
# host is refused, for TCP and for UDP, while a host beyond the server works;
# after `[egress] allow` the loopback, own-address and name targets work.
# The client is tools/vless_probe.py (VLESS v0 written from the protocol
# document), so the targets are named exactly as a hostile user would.
#
#   ns app (probe) -- ns srv (vless-server; echo peers on 127.0.0.1:22,
#                     [::1]:22 and 198.18.1.1:8022 = its own address) -- ns web (echo peer :7)
source "$(dirname "$0")/lib.sh"
source "$VT_TOOLS/testbed.sh"
require_root
require_cmd ip
: "${VT_SERVER:?path to vless-server}"

tb_setup egress
# `ip netns exec` bind-mounts /etc/netns/<ns>/hosts over /etc/hosts.
NETNS_ETC="/etc/netns/$TB_SRV"
trap 'rc=$?; set +e; rm -rf "$NETNS_ETC"; rmdir /etc/netns 2>/dev/null || true; (exit $rc); _vt_cleanup' EXIT
mkdir -p "$NETNS_ETC"
printf '127.0.0.1 localhost\n::1 localhost\n127.0.0.1 sneaky.test\n198.18.1.2 web.test\n' \
  >"$NETNS_ETC/hosts"
in_srv ip link set lo up
in_web ip route add default via 198.18.1.1

# An echo peer: TCP and UDP on one address, replies "<tag>:<msg>", counts
# what reached it in <tag>.count. Bounded: exits after 120 s.
cat >"$VT_TMP/echo.py" <<'PY'
import socket, sys, threading, time
host, port, tag, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
fam = socket.AF_INET6 if ":" in host else socket.AF_INET
seen = [0]
def note():
    seen[0] += 1
    with open(out + ".tmp", "w") as f: f.write(str(seen[0]))
    import os; os.replace(out + ".tmp", out)
def udp():
    u = socket.socket(fam, socket.SOCK_DGRAM); u.bind((host, port))
    while True:
        data, src = u.recvfrom(65535); note(); u.sendto(tag.encode() + b":" + data, src)
def serve(c):
    with c:
        note(); c.settimeout(10)
        try:
            data = c.recv(65535)
            if data: c.sendall(tag.encode() + b":" + data)
        except OSError: pass
t = socket.socket(fam, socket.SOCK_STREAM); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.bind((host, port)); t.listen(64)
threading.Thread(target=udp, daemon=True).start()
threading.Thread(target=lambda: (time.sleep(120), sys.exit(0)), daemon=True).start()
open(out, "w").write("0")
t.settimeout(1)
deadline = time.time() + 120
while time.time() < deadline:
    try: c, _ = t.accept()
    except socket.timeout: continue
    threading.Thread(target=serve, args=(c,), daemon=True).start()
PY
start echo-lo4 ip netns exec "$TB_SRV" python3 "$VT_TMP/echo.py" 127.0.0.1 22 lo4 "$VT_TMP/lo4.count"
start echo-lo6 ip netns exec "$TB_SRV" python3 "$VT_TMP/echo.py" ::1 22 lo6 "$VT_TMP/lo6.count"
start echo-own ip netns exec "$TB_SRV" python3 "$VT_TMP/echo.py" 198.18.1.1 8022 own "$VT_TMP/own.count"
start echo-web ip netns exec "$TB_WEB" python3 "$VT_TMP/echo.py" 198.18.1.2 7 web "$VT_TMP/web.count"
wait_port 127.0.0.1 22 10 "$TB_SRV"
wait_port 198.18.1.1 8022 10 "$TB_SRV"
wait_port 198.18.1.2 7 10 "$TB_WEB"
for t in lo4 lo6 own; do  # wait_port's own connections are not the probes'
  for _ in $(seq 100); do [ -f "$VT_TMP/$t.count" ] && break; sleep 0.05; done
  eval "base_$t=\$(cat \"\$VT_TMP/$t.count\")"
done

probe() {  # probe tcp|udp TARGET: prints the probe's one line
  in_app python3 "$VT_TOOLS/vless_probe.py" "$1" --server "$TB_SRV4:443" --uuid "$TB_UUID" \
    --ca "$VT_TMP/ca.pem" --sni test.name --target "$2" --msg "m-$1" --timeout 5 || true
}
expect() {  # expect tcp|udp TARGET WANT
  local got
  got=$(probe "$1" "$2")
  [ "$got" = "$3" ] || fail "$1 to $2: want '$3', got '$got'"
  log "$1 $2: $got"
}
count() { cat "$VT_TMP/$1.count"; }

log "defaults: refused"
tb_server_start srv-default
for mode in tcp udp; do
  expect $mode 198.18.1.2:7 "$mode reply=web:m-$mode"  # the Internet still works
  expect $mode 127.0.0.1:22 "$mode refused"
  expect $mode '[::1]:22' "$mode refused"
  expect $mode 198.18.1.1:8022 "$mode refused"
  expect $mode sneaky.test:22 "$mode refused"
  expect $mode 10.0.0.1:80 "$mode refused"
  expect $mode '[fd00::1]:80' "$mode refused"
  expect $mode 169.254.169.254:80 "$mode refused"
done
for t in lo4 lo6 own; do
  base=base_$t
  [ "$(count $t)" = "${!base}" ] ||
    fail "the $t peer was reached $(( $(count $t) - ${!base} )) times despite the policy"
done
slog="$VT_TMP/srv-default.log"
for want in "egress denied: 127\.0\.0\.1:22 \(loopback\)" "egress denied: \[::1\]:22 \(loopback\)" \
            "egress denied: 198\.18\.1\.1:8022 \(the server's own address\)" \
            "egress denied: 10\.0\.0\.1:80 \(private\)" \
            "egress denied: \[fd00::1\]:80 \(private \(unique-local\)\)" \
            "egress denied: 169\.254\.169\.254:80 \(link-local\)"; do
  n=$(grep -Ec "$want" "$slog" || true)
  [ "$n" -ge 2 ] || fail "want '$want' logged for TCP and UDP, found $n: $(grep -c 'egress denied' "$slog") denials"
done
# sneaky.test resolved at the server to 127.0.0.1: refused as loopback.
grep -Eq "target=sneaky\.test:22 .*egress denied: 127\.0\.0\.1:22 \(loopback\)" "$slog" ||
  fail "no TCP line for sneaky.test refused as loopback"
grep -Eq "udp conn .*target=sneaky\.test:22 .*egress denied: 127\.0\.0\.1:22 \(loopback\)" "$slog" ||
  fail "no UDP line for sneaky.test refused as loopback"
stop_pid "$TB_SERVER_PID"
grep -Eq "stopping: egress policy refused (1[4-9]|[2-9][0-9]) dials and datagrams" "$slog" ||
  fail "want 14 refusals or more counted: $(grep 'stopping: egress' "$slog")"

log "allow: works"
tb_server_start srv-allow yes '[egress]
allow = ["127.0.0.0/8", "::1", "198.18.1.1"]
deny = ["198.18.1.2"]'
for mode in tcp udp; do
  expect $mode 127.0.0.1:22 "$mode reply=lo4:m-$mode"
  expect $mode '[::1]:22' "$mode reply=lo6:m-$mode"
  expect $mode 198.18.1.1:8022 "$mode reply=own:m-$mode"
  expect $mode sneaky.test:22 "$mode reply=lo4:m-$mode"
  expect $mode 10.0.0.1:80 "$mode refused"   # still private
  expect $mode web.test:7 "$mode refused"    # the deny list wins
done
grep -Eq "egress denied: 198\.18\.1\.2:7 \(deny list\)" "$VT_TMP/srv-allow.log" ||
  fail "no 'deny list' refusal logged"
log "egress ok"
