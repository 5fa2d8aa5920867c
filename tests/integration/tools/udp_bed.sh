# shellcheck shell=bash
# More test bed for the udp_* and dns_* tests (bash; source lib.sh and
# testbed.sh first, call tb_setup, then ub_extend).
#
#   ns srv gets a "public" address 198.18.9.1 / 2001:db8:9::1 on lo, and every
#   route towards the reflectors prefers it as source, so a NAT mapping is one
#   ip:port whichever reflector sees it:
#     srv veth1 198.18.1.1/30 2001:db8:1::1/64 --- web  198.18.1.2 2001:db8:1::2 (testbed.sh)
#     srv veth2 198.18.3.1/30 2001:db8:3::1/64 --- web2 198.18.3.2 2001:db8:3::2
#     srv veth3 198.18.4.1/30 2001:db8:4::1/64 --- web3 198.18.4.2 2001:db8:4::2
#   web, web2, web3: default route via ns srv (they reach 198.18.9.1 only).

UB_PUB4=198.18.9.1
UB_PUB6=2001:db8:9::1
UB_PROBE="$VT_TOOLS/udp_probe.py"

in_web2() { ip netns exec "$UB_WEB2" "$@"; }
in_web3() { ip netns exec "$UB_WEB3" "$@"; }

ub_extend() {
  UB_WEB2="${TB_APP%-app}-web2" UB_WEB3="${TB_APP%-app}-web3"
  netns_add "$UB_WEB2"
  netns_add "$UB_WEB3"
  ip -n "$TB_SRV" link add veth2 type veth peer name veth0 netns "$UB_WEB2"
  ip -n "$TB_SRV" link add veth3 type veth peer name veth0 netns "$UB_WEB3"
  ip -n "$TB_SRV" addr add $UB_PUB4/32 dev lo
  ip -n "$TB_SRV" addr add $UB_PUB6/128 dev lo
  local i ns dev
  for i in 3 4; do
    ns=$UB_WEB2 dev=veth2
    [ $i = 4 ] && ns=$UB_WEB3 dev=veth3
    ip -n "$TB_SRV" addr add 198.18.$i.1/30 dev $dev
    ip -n "$TB_SRV" addr add 2001:db8:$i::1/64 dev $dev nodad
    ip -n "$ns" addr add 198.18.$i.2/30 dev veth0
    ip -n "$ns" addr add 2001:db8:$i::2/64 dev veth0 nodad
    ip -n "$TB_SRV" link set $dev up
    ip -n "$ns" link set veth0 up
  done
  for i in 1 3 4; do
    dev=veth$((i == 1 ? 1 : i - 1))
    ip -n "$TB_SRV" route replace 198.18.$i.0/30 dev $dev src $UB_PUB4
    ip -n "$TB_SRV" -6 route replace 2001:db8:$i::/64 dev $dev src $UB_PUB6 metric 256  # the connected route
  done
  ip -n "$TB_WEB" route add default via 198.18.1.1
  ip -n "$UB_WEB2" route add default via 198.18.3.1
  ip -n "$UB_WEB3" route add default via 198.18.4.1
  ip -n "$TB_WEB" -6 route add default via 2001:db8:1::1
  ip -n "$UB_WEB2" -6 route add default via 2001:db8:3::1
  ip -n "$UB_WEB3" -6 route add default via 2001:db8:4::1
  log "udp bed: + $UB_WEB2 (198.18.3.2) $UB_WEB3 (198.18.4.2); ns srv's source for them: $UB_PUB4 / $UB_PUB6"
}

# ub_reflectors PORT: a reflector in web, web2, web3; waits until each answers.
ub_reflectors() {
  local port=$1 ns
  for ns in "$TB_WEB" "$UB_WEB2" "$UB_WEB3"; do
    start "reflect-${ns##*-}" ip netns exec "$ns" python3 "$UB_PROBE" reflect --port "$port" --max-seconds 240
  done
  ub_wait_reflector "$TB_SRV" 198.18.1.2 "$port"
  ub_wait_reflector "$TB_SRV" 198.18.3.2 "$port"
  ub_wait_reflector "$TB_SRV" 198.18.4.2 "$port"
}
ub_wait_reflector() {
  local ns=$1 host=$2 port=$3 deadline=$(( $(date +%s) + 10 ))
  until ip netns exec "$ns" python3 "$UB_PROBE" poke --target "$host:$port" --msg ping --timeout 0.5 >/dev/null; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "no UDP reflector answers on $host:$port"
  done
}

# ub_tun_start NAME VERSION PORT [extra TOML]: vless-tun in ns app (TLS, CA
# checked), then routes the web subnets and 198.18.9.0/24 into vt0 (v4, v6)
# unless UB_NO_ROUTES is set.
ub_tun_start() {
  local name=$1 version=$2 port=$3 extra=${4:-}
  : "${VT_TUN:?path to vless-tun}"
  cat >"$VT_TMP/$name.toml" <<CFG
log_level = "debug"
[tun]
name = "vt0"
mtu = 1500
workers = ${VT_WORKERS:-1}
offload = ${VT_OFFLOAD:-true}
ipv4 = "198.18.2.1/30"
ipv6 = "2001:db8:2::1/64"
[server]
address = "$TB_SRV4:$port"
uuid = "$TB_UUID"
version = $version
sni = "test.name"
ca = "ca.pem"
$extra
CFG
  "$VT_TUN" --check -c "$VT_TMP/$name.toml" >/dev/null ||
    fail "vless-tun config check failed: $("$VT_TUN" --check -c "$VT_TMP/$name.toml" 2>&1)"
  start "$name" ip netns exec "$TB_APP" "$VT_TUN" -c "$VT_TMP/$name.toml"
  TB_TUN_PID=$(last_pid)
  TB_TUN_LOG="$VT_TMP/$name.log"
  wait_log "$TB_TUN_LOG" 'vless-tun started' 10
  if [ "${VT_WORKERS:-1}" -gt 1 ]; then wait_log "$TB_TUN_LOG" "workers: $VT_WORKERS \\(tun.workers = $VT_WORKERS\\)" 5; fi
  local i
  [ -n "${UB_NO_ROUTES:-}" ] && return 0  # auto_route sets its own
  for i in 1 3 4 9; do
    ip -n "$TB_APP" route replace 198.18.$i.0/24 dev vt0
    ip -n "$TB_APP" -6 route replace 2001:db8:$i::/64 dev vt0
  done
}

# ub_tun_stop LABEL: SIGTERM, exit 0, no crash words in the log.
ub_tun_stop() {
  local rc=0
  stop_pid "$TB_TUN_PID" 10 || rc=$?
  [ $rc -eq 0 ] || fail "$1: vless-tun exited $rc on SIGTERM"
  if grep -Ei 'Sanitizer|runtime error|assert|terminate called' "$TB_TUN_LOG"; then
    fail "$1: vless-tun crashed or tripped a check"
  fi
  return 0
}

# ub_field FILE KEY: the value of "KEY value" lines, one a line.
ub_field() { sed -n "s/^$2 //p" "$1"; }

# ub_server_stop [NAME]: SIGTERM vless-server (TB_SERVER_PID); it must exit 0 with no sanitizer or
# check output in its log (an ASan build reports leaks only at exit).
ub_server_stop() {
  local rc=0 slog="$VT_TMP/${1:-vless-server}.log"
  stop_pid "$TB_SERVER_PID" 10 || rc=$?
  [ $rc -eq 0 ] || fail "vless-server exited $rc on SIGTERM"
  if grep -Ei 'Sanitizer|runtime error|assert|terminate called' "$slog"; then
    fail "vless-server crashed or tripped a check"
  fi
  grep -E '^[^ ]+ (WARN|ERROR) ' "$slog" | grep -v 'tls_error' | head -5 || true
}
