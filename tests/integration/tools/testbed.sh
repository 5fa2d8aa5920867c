# The namespace test bed shared by the tun_* tests and bench/run.sh (bash;
# source lib.sh first, then this file).
#
#   ns app: veth 198.18.0.1/30 2001:db8:0::1/64 --- ns srv: veth 198.18.0.2/30 2001:db8:0::2/64
#           TUN vt0 (made by vless-tun)                     veth 198.18.1.1/30 2001:db8:1::1/64 --- ns web: 198.18.1.2/30 2001:db8:1::2/64
#           routes: 198.18.1.0/24 dev vt0, 2001:db8:1::/64 dev vt0 (added once vt0 exists)
#
# Namespaces get names unique to this run, so tests may run side by side;
# lib.sh removes them on exit. Nothing here touches the root namespace.

TB_WEB4=198.18.1.2
TB_WEB6=2001:db8:1::2
TB_SRV4=198.18.0.2
TB_SRV6=2001:db8::2

in_app() { ip netns exec "$TB_APP" "$@"; }
in_srv() { ip netns exec "$TB_SRV" "$@"; }
in_web() { ip netns exec "$TB_WEB" "$@"; }

# tb_setup TAG: the three namespaces, veths and addresses; cert and uuid in
# $VT_TMP (TB_UUID).
tb_setup() {
  local tag=${1:-tb}
  local id="vt-$tag-$$"
  TB_APP="$id-app" TB_SRV="$id-srv" TB_WEB="$id-web"
  netns_add "$TB_APP"
  netns_add "$TB_SRV"
  netns_add "$TB_WEB"
  # Created inside the namespaces, so the interface names never clash.
  ip -n "$TB_APP" link add veth0 type veth peer name veth0 netns "$TB_SRV"
  ip -n "$TB_SRV" link add veth1 type veth peer name veth0 netns "$TB_WEB"
  ip -n "$TB_APP" addr add 198.18.0.1/30 dev veth0
  ip -n "$TB_APP" addr add 2001:db8:0::1/64 dev veth0 nodad
  ip -n "$TB_SRV" addr add 198.18.0.2/30 dev veth0
  ip -n "$TB_SRV" addr add 2001:db8:0::2/64 dev veth0 nodad
  ip -n "$TB_SRV" addr add 198.18.1.1/30 dev veth1
  ip -n "$TB_SRV" addr add 2001:db8:1::1/64 dev veth1 nodad
  ip -n "$TB_WEB" addr add 198.18.1.2/30 dev veth0
  ip -n "$TB_WEB" addr add 2001:db8:1::2/64 dev veth0 nodad
  ip -n "$TB_APP" link set veth0 up
  ip -n "$TB_SRV" link set veth0 up
  ip -n "$TB_SRV" link set veth1 up
  ip -n "$TB_WEB" link set veth0 up
  TB_UUID=$(new_uuid)
  make_cert "$VT_TMP" test.name
  log "test bed: namespaces $TB_APP $TB_SRV $TB_WEB"
}

# tb_netns_hosts NS LINE...: /etc/hosts for the programs run in NS by ip
# netns exec (it binds /etc/netns/NS/hosts); removed when the test ends.
tb_netns_hosts() {
  local ns=$1
  shift
  mkdir -p "/etc/netns/$ns"
  VT_CLEANUP_PATHS+=("/etc/netns/$ns")
  printf '%s\n' "127.0.0.1 localhost" "$@" >"/etc/netns/$ns/hosts"
}

# tb_host_behind_web: a host two routers behind ns srv, for the IP exit
# tests (the TTL and traceroute show the hops):
#   ns srv --- ns web (198.18.1.2 | 198.18.3.1/30, 2001:db8:3::1/64)
#          --- ns rtr (198.18.3.2/30 | 198.18.3.9/29, 2001:db8:3::2 | 2001:db8:4::1)
#          --- ns host (198.18.3.10/29, 2001:db8:4::2/64)
# ns srv routes 198.18.3.0/24, 2001:db8:3::/64 and 2001:db8:4::/64 via ns web. Sets TB_HOST
# (the namespace), TB_HOST4, TB_HOST6, TB_RTR4 (ns rtr's address toward ns
# web) and TB_NOHOST4 (on the host's link, where no host answers). Both
# namespaces are removed with the others.
tb_host_behind_web() {
  TB_HOST="${TB_APP%-app}-host" TB_RTR="${TB_APP%-app}-rtr"
  TB_HOST4=198.18.3.10 TB_HOST6=2001:db8:4::2 TB_RTR4=198.18.3.2 TB_NOHOST4=198.18.3.11
  netns_add "$TB_RTR"
  netns_add "$TB_HOST"
  ip -n "$TB_WEB" link add veth1 type veth peer name veth0 netns "$TB_RTR"
  ip -n "$TB_RTR" link add veth1 type veth peer name veth0 netns "$TB_HOST"
  ip -n "$TB_WEB" addr add 198.18.3.1/30 dev veth1
  ip -n "$TB_WEB" addr add 2001:db8:3::1/64 dev veth1 nodad
  ip -n "$TB_RTR" addr add 198.18.3.2/30 dev veth0
  ip -n "$TB_RTR" addr add 2001:db8:3::2/64 dev veth0 nodad
  ip -n "$TB_RTR" addr add 198.18.3.9/29 dev veth1
  ip -n "$TB_RTR" addr add 2001:db8:4::1/64 dev veth1 nodad
  ip -n "$TB_HOST" addr add 198.18.3.10/29 dev veth0
  ip -n "$TB_HOST" addr add 2001:db8:4::2/64 dev veth0 nodad
  ip -n "$TB_WEB" link set veth1 up
  ip -n "$TB_RTR" link set veth0 up
  ip -n "$TB_RTR" link set veth1 up
  ip -n "$TB_HOST" link set veth0 up
  in_web sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
  ip netns exec "$TB_RTR" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
  ip -n "$TB_WEB" route add 198.18.3.8/29 via 198.18.3.2
  ip -n "$TB_WEB" -6 route add 2001:db8:4::/64 via 2001:db8:3::2
  ip -n "$TB_RTR" route add default via 198.18.3.1
  ip -n "$TB_RTR" -6 route add default via 2001:db8:3::1
  ip -n "$TB_HOST" route add default via 198.18.3.9
  ip -n "$TB_HOST" -6 route add default via 2001:db8:4::1
  ip -n "$TB_SRV" route add 198.18.3.0/24 via 198.18.1.2
  ip -n "$TB_SRV" -6 route add 2001:db8:3::/64 via 2001:db8:1::2
  ip -n "$TB_SRV" -6 route add 2001:db8:4::/64 via 2001:db8:1::2
}
in_host() { ip netns exec "$TB_HOST" "$@"; }

# tb_kernel_forwarding on|off: ns srv routes between app and web itself (the
# benchmark's no-tunnel reference). The app's routes then go via 198.18.0.2.
tb_kernel_forwarding() {
  if [ "$1" = on ]; then
    in_srv sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
    ip -n "$TB_APP" route replace 198.18.1.0/24 via 198.18.0.2
    ip -n "$TB_APP" -6 route replace 2001:db8:1::/64 via 2001:db8::2
    ip -n "$TB_WEB" route replace 198.18.0.0/30 via 198.18.1.1
    ip -n "$TB_WEB" -6 route replace 2001:db8::/64 via 2001:db8:1::1
  else
    in_srv sysctl -qw net.ipv4.ip_forward=0 net.ipv6.conf.all.forwarding=0
    ip -n "$TB_APP" route del 198.18.1.0/24 2>/dev/null || true
    ip -n "$TB_APP" -6 route del 2001:db8:1::/64 2>/dev/null || true
    ip -n "$TB_WEB" route del 198.18.0.0/30 2>/dev/null || true
    ip -n "$TB_WEB" -6 route del 2001:db8::/64 2>/dev/null || true
  fi
}

# wait_log FILE PATTERN [SECONDS]: polls until FILE has a line matching the
# extended regex PATTERN.
wait_log() {
  local file=$1 pat=$2 secs=${3:-10}
  local deadline=$(( $(date +%s) + secs ))
  until grep -Eq -- "$pat" "$file" 2>/dev/null; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "no line matching '$pat' in $(basename "$file") after ${secs}s"
    sleep 0.05
  done
}

# tb_server_start [NAME] [tls=yes|no] [extra TOML lines]: vless-server in ns
# srv on 198.18.0.2:443 and [2001:db8::2]:443; TB_SERVER_PID.
tb_server_start() {
  local name=${1:-vless-server} tls=${2:-yes} extra=${3:-}
  : "${VT_SERVER:?path to vless-server}"
  {
    echo 'log_level = "info"'
    echo 'listen = ["198.18.0.2:443", "[2001:db8::2]:443"]'
    echo 'versions = [0, 1]'
    echo "max_connections = ${TB_MAX_CONNECTIONS:-100000}"
    [ -n "$extra" ] && printf '%s\n' "$extra"
    if [ "$tls" = yes ]; then printf '[tls]\ncert = "server.pem"\nkey = "server.key"\n'; fi
    printf '[[users]]\nname = "it-user"\nuuid = "%s"\n' "$TB_UUID"
    # More keys for it-user, then more [[users]] tables (TB_USER_EXTRA).
    [ -n "${TB_USER_EXTRA:-}" ] && printf '%s\n' "$TB_USER_EXTRA"
  } >"$VT_TMP/$name.toml"
  "$VT_SERVER" --check -c "$VT_TMP/$name.toml" >/dev/null || fail "vless-server config check failed"
  start "$name" ip netns exec "$TB_SRV" "$VT_SERVER" -c "$VT_TMP/$name.toml"
  TB_SERVER_PID=$(last_pid)
  wait_port "$TB_SRV4" 443 10 "$TB_SRV"
}

# tb_v2ray_server_start [PORT] [tls=yes|no]: v2ray's VLESS server in ns srv.
tb_v2ray_server_start() {
  local port=${1:-8443} tls=${2:-yes} stream='{"network": "tcp"}'
  [ "$tls" = yes ] && stream='{"network": "tcp", "security": "tls",
     "tlsSettings": {"certificates": [{"certificateFile": "'"$VT_TMP"'/server.pem", "keyFile": "'"$VT_TMP"'/server.key"}]}}'
  cat >"$VT_TMP/v2ray-server.json" <<CFG
{"log": {"loglevel": "warning"},
 "inbounds": [{"port": $port, "listen": "0.0.0.0", "protocol": "vless",
   "settings": {"clients": [{"id": "$TB_UUID"}], "decryption": "none"},
   "streamSettings": $stream}],
 "outbounds": [{"protocol": "freedom"}]}
CFG
  start v2ray-server ip netns exec "$TB_SRV" v2ray -config "$VT_TMP/v2ray-server.json"
  TB_V2RAY_SERVER_PID=$(last_pid)
  wait_port "$TB_SRV4" "$port" 10 "$TB_SRV"
}

# tb_v2ray_client_start [SERVER_PORT] [SOCKS_PORT]: v2ray's socks inbound in
# ns app (127.0.0.1:SOCKS_PORT) with a VLESS/TLS outbound to ns srv.
tb_v2ray_client_start() {
  local port=${1:-8443} socks=${2:-1080}
  cat >"$VT_TMP/v2ray-client.json" <<CFG
{"log": {"loglevel": "warning"},
 "inbounds": [{"port": $socks, "listen": "127.0.0.1", "protocol": "socks", "settings": {"udp": false}}],
 "outbounds": [{"protocol": "vless",
   "settings": {"vnext": [{"address": "$TB_SRV4", "port": $port,
                           "users": [{"id": "$TB_UUID", "encryption": "none"}]}]},
   "streamSettings": {"network": "tcp", "security": "tls",
     "tlsSettings": {"serverName": "test.name", "allowInsecure": true}}}]}
CFG
  start v2ray-client ip netns exec "$TB_APP" v2ray -config "$VT_TMP/v2ray-client.json"
  TB_V2RAY_CLIENT_PID=$(last_pid)
  wait_port 127.0.0.1 "$socks" 10 "$TB_APP"
}

# tb_tun_start NAME VERSION TLS MODE [PORT] [extra [limits] lines]: vless-tun
# (TUN MTU $TB_MTU, 1500 unless set; the benchmark sets vless-tun's default)
# in ns app; waits for its start line, then routes the web subnets into vt0.
# $TB_TUN_EXTRA (TOML tables, e.g. "[mux]" lines) ends the config;
# $TB_TUN_SERVER_EXTRA adds keys to its [server] table.
# Sets TB_TUN_PID and TB_TUN_LOG.
tb_tun_start() {
  local name=$1 version=$2 tls=$3 mode=$4 port=${5:-443} limits=${6:-}
  : "${VT_TUN:?path to vless-tun}"
  cat >"$VT_TMP/$name.toml" <<CFG
log_level = "info"
[tun]
name = "vt0"
mtu = ${TB_MTU:-1500}
workers = ${VT_WORKERS:-1}
offload = ${VT_OFFLOAD:-true}
ipv4 = "198.18.2.1/30"
ipv6 = "2001:db8:2::1/64"
[server]
address = "$TB_SRV4:$port"
uuid = "$TB_UUID"
version = $version
tls = $tls
sni = "test.name"
ca = "ca.pem"
connect_mode = "$mode"
${TB_TUN_SERVER_EXTRA:-}
[limits]
$limits
${TB_TUN_EXTRA:-}
CFG
  "$VT_TUN" --check -c "$VT_TMP/$name.toml" >/dev/null || fail "vless-tun config check failed: $("$VT_TUN" --check -c "$VT_TMP/$name.toml" 2>&1)"
  start "$name" ip netns exec "$TB_APP" "$VT_TUN" -c "$VT_TMP/$name.toml"
  TB_TUN_PID=$(last_pid)
  TB_TUN_LOG="$VT_TMP/$name.log"
  wait_log "$TB_TUN_LOG" 'vless-tun started' 10
  if [ "${VT_WORKERS:-1}" -gt 1 ]; then wait_log "$TB_TUN_LOG" "workers: $VT_WORKERS \\(tun.workers = $VT_WORKERS\\)" 5; fi
  ip -n "$TB_APP" route replace 198.18.1.0/24 dev vt0
  ip -n "$TB_APP" -6 route replace 2001:db8:1::/64 dev vt0
}

# tb_v2ray_forward_start NAME LISTEN_PORT:WEB_PORT:NETWORK...: v2ray in ns
# app with one dokodemo-door inbound per argument (127.0.0.1:LISTEN_PORT ->
# ns web's WEB_PORT, NETWORK "tcp", "udp" or "tcp,udp"), VLESS/TLS to
# tb_v2ray_server_start's server on 8443. Waits for the first inbound;
# sets TB_V2RAY_FORWARD_PID.
tb_v2ray_forward_start() {
  local name=$1 spec inbounds="" lp wp net first=""
  shift
  for spec in "$@"; do
    IFS=: read -r lp wp net <<<"$spec"
    [ -z "$first" ] && first=$lp
    [ -n "$inbounds" ] && inbounds+=","
    inbounds+='{"port": '"$lp"', "listen": "127.0.0.1", "protocol": "dokodemo-door",
    "settings": {"address": "'"$TB_WEB4"'", "port": '"$wp"', "network": "'"$net"'"}}'
  done
  cat >"$VT_TMP/$name.json" <<CFG
{"log": {"loglevel": "warning"},
 "inbounds": [$inbounds],
 "outbounds": [{"protocol": "vless",
   "settings": {"vnext": [{"address": "$TB_SRV4", "port": 8443,
                           "users": [{"id": "$TB_UUID", "encryption": "none"}]}]},
   "streamSettings": {"network": "tcp", "security": "tls",
     "tlsSettings": {"serverName": "test.name", "allowInsecure": true}}}]}
CFG
  start "$name" ip netns exec "$TB_APP" v2ray -config "$VT_TMP/$name.json"
  TB_V2RAY_FORWARD_PID=$(last_pid)
  wait_port 127.0.0.1 "$first" 10 "$TB_APP"
}

# stop_pid PID [SECONDS]: SIGTERM one of our processes and wait for it
# (SIGKILL after the deadline). Returns its exit status.
stop_pid() {
  local pid=$1 secs=${2:-10} i=0
  kill "$pid" 2>/dev/null || return 0
  while kill -0 "$pid" 2>/dev/null; do
    i=$((i + 1))
    if [ $i -gt $((secs * 20)) ]; then kill -9 "$pid" 2>/dev/null || true; break; fi
    sleep 0.05
  done
  local rc=0
  wait "$pid" 2>/dev/null || rc=$?
  return $rc
}

# The real process behind `start NAME ip netns exec NS CMD` is the same PID
# (ip netns exec execs), so /proc/PID is the program's own.
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
