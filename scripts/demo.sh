#!/usr/bin/env bash
# The main job on an embedded default, on a fresh Debian 12 machine as root:
# builds, creates three network namespaces, starts vless-server in one and
# vless-tun (the TUN VPN client, auto_route on) in another, and fetches a
# page from the third with curl through the tunnel.
#
#   app: curl -> vt0 (TUN, 198.18.2.1) -> vless-tun ==VLESS v1/TLS==> 198.18.0.2 vless-server (srv) -> 198.18.1.2 web
#        veth 198.18.0.1/30 ---------------------------------------- veth 198.18.0.2/30
#
# The app namespace has no route to the web namespace of its own: with
# auto_route, everything but vless-tun's own (marked) connection enters the
# TUN. Everything the script creates is removed on exit, even on failure.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
[ "$(id -u)" -eq 0 ] || { echo "demo.sh: run as root (it creates network namespaces and a TUN)" >&2; exit 1; }

scripts/setup.sh
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
ninja -C build/release vless-server vless-tun >/dev/null
server_bin=$root/build/release/src/app/vless-server
tun_bin=$root/build/release/src/app/vless-tun

tag=$$
app=vt-demo-app-$tag; srv=vt-demo-srv-$tag; web=vt-demo-web-$tag
tmp=$(mktemp -d /tmp/vt-demo.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  for ns in "$app" "$srv" "$web"; do ip netns del "$ns" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
die() { echo "demo: $*" >&2; for f in "$tmp"/*.log; do echo "--- $f"; tail -20 "$f"; done >&2; exit 1; }

for ns in "$app" "$srv" "$web"; do ip netns add "$ns"; ip -n "$ns" link set lo up; done
ip -n "$app" link add veth0 type veth peer name veth0 netns "$srv"
ip -n "$srv" link add veth1 type veth peer name veth0 netns "$web"
ip -n "$app" addr add 198.18.0.1/30 dev veth0 && ip -n "$app" link set veth0 up
ip -n "$srv" addr add 198.18.0.2/30 dev veth0 && ip -n "$srv" link set veth0 up
ip -n "$srv" addr add 198.18.1.1/30 dev veth1 && ip -n "$srv" link set veth1 up
ip -n "$web" addr add 198.18.1.2/30 dev veth0 && ip -n "$web" link set veth0 up

uuid=$(cat /proc/sys/kernel/random/uuid)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
  -keyout "$tmp/key.pem" -out "$tmp/cert.pem" -subj "/CN=demo.vless-tun" \
  -addext "subjectAltName=DNS:demo.vless-tun" 2>/dev/null
mkdir -p "$tmp/www"
cat >"$tmp/www/index.html" <<'HTML'
<html><head><title>vless-tun demo</title></head>
<body><h1>Hello from the web namespace</h1>
<p>This page crossed the tunnel: curl -> TUN -> vless-tun -> vless-server -> web.</p></body></html>
HTML
cat >"$tmp/server.toml" <<CFG
log_level = "info"
listen = ["198.18.0.2:443"]
versions = [0, 1]
[tls]
cert = "cert.pem"
key = "key.pem"
[[users]]
name = "demo"
uuid = "$uuid"
CFG
cat >"$tmp/client.toml" <<CFG
log_level = "info"
[tun]
name = "vt0"
ipv4 = "198.18.2.1/30"
[server]
address = "198.18.0.2:443"
uuid = "$uuid"
version = 1
sni = "demo.vless-tun"
ca = "cert.pem"
[route]
auto_route = true
carry_ipv6 = false
state_file = "$tmp/routes.state"
CFG

ip netns exec "$web" python3 -m http.server 80 --bind 0.0.0.0 --directory "$tmp/www" >"$tmp/web.log" 2>&1 &
pids+=($!)
ip netns exec "$srv" "$server_bin" -c "$tmp/server.toml" 2>"$tmp/server.log" &
pids+=($!)
wait_for() {  # DESCRIPTION COMMAND...: polls for up to 10 s
  local what=$1 deadline=$(( $(date +%s) + 10 ))
  shift
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || die "$what not ready after 10s"
    sleep 0.05
  done
}
wait_for "web server" ip netns exec "$srv" bash -c "exec 3<>/dev/tcp/198.18.1.2/80"
wait_for "vless-server" grep -q "listening on" "$tmp/server.log"

echo "== without the tunnel, the app namespace cannot reach the web server:"
if ip netns exec "$app" curl -s --max-time 2 http://198.18.1.2/ >/dev/null; then die "unexpected direct route"; fi
echo "   (no route, as intended)"

ip netns exec "$app" "$tun_bin" -c "$tmp/client.toml" 2>"$tmp/client.log" &
pids+=($!)
wait_for "vless-tun" grep -q "vless-tun started" "$tmp/client.log"
echo "== vless-tun is up (auto_route); the app namespace's policy rules now:"
ip netns exec "$app" ip rule show | sed 's/^/   /'
echo "== curl http://198.18.1.2/ in the app namespace, through the tunnel:"
ip netns exec "$app" curl -sS -i --max-time 10 http://198.18.1.2/ >"$tmp/page.txt" || die "curl through the tunnel failed"
head -n 12 "$tmp/page.txt" | sed 's/^/   /'
grep -q "Hello from the web namespace" "$tmp/page.txt" || die "the page did not arrive"

kill -TERM "${pids[2]}"
wait "${pids[2]}" 2>/dev/null || true
echo "== vless-tun's log (one line per flow):"
sed 's/^/   /' "$tmp/client.log"
echo "== vless-server's log:"
grep -v "TLS handshake: connection closed by peer" "$tmp/server.log" | sed 's/^/   /'
echo "== after vless-tun stopped, its rules are gone:"
ip netns exec "$app" ip rule show | sed 's/^/   /'
echo "== demo ok"
