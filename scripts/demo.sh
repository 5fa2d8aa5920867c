#!/usr/bin/env bash
# The main job on an embedded default, on a fresh Debian 12 machine as root:
# builds, creates three network namespaces, starts vless-server in one and a
# client in another, and fetches a page from the third through the tunnel.
#
#   app 198.18.0.1 --veth-- 198.18.0.2 server 198.18.1.1 --veth-- 198.18.1.2 web
#
# The app namespace has no route to the web namespace: the page can only
# arrive through vless-server. Until the TUN client (vless-tun) lands, the
# client is vless-nc, our own tcp -> tls -> vless stack as a command.
# Everything the script creates is removed on exit, even on failure.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
[ "$(id -u)" -eq 0 ] || { echo "demo.sh: run as root (it creates network namespaces)" >&2; exit 1; }

scripts/setup.sh
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
ninja -C build/release vless-server vless-nc >/dev/null
server_bin=build/release/src/app/vless-server
nc_bin=build/release/tests/integration/vless-nc

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

for ns in "$app" "$srv" "$web"; do ip netns add "$ns"; ip -n "$ns" link set lo up; done
ip link add vta$tag netns "$app" type veth peer name vts$tag netns "$srv"
ip link add vtw$tag netns "$web" type veth peer name vtx$tag netns "$srv"
ip -n "$app" addr add 198.18.0.1/30 dev vta$tag && ip -n "$app" link set vta$tag up
ip -n "$srv" addr add 198.18.0.2/30 dev vts$tag && ip -n "$srv" link set vts$tag up
ip -n "$srv" addr add 198.18.1.1/30 dev vtx$tag && ip -n "$srv" link set vtx$tag up
ip -n "$web" addr add 198.18.1.2/30 dev vtw$tag && ip -n "$web" link set vtw$tag up

uuid=$(cat /proc/sys/kernel/random/uuid)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
  -keyout "$tmp/key.pem" -out "$tmp/cert.pem" -subj "/CN=demo.vless-tun" \
  -addext "subjectAltName=DNS:demo.vless-tun" 2>/dev/null
mkdir -p "$tmp/www"
cat >"$tmp/www/index.html" <<'HTML'
<html><head><title>vless-tun demo</title></head>
<body><h1>Hello from the web namespace</h1>
<p>This page crossed the tunnel: app -> vless-server -> web.</p></body></html>
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

ip netns exec "$web" python3 -m http.server 80 --bind 0.0.0.0 --directory "$tmp/www" >"$tmp/web.log" 2>&1 &
pids+=($!)
ip netns exec "$srv" "$server_bin" -c "$tmp/server.toml" 2>"$tmp/server.log" &
pids+=($!)
wait_port() {
  local ns=$1 host=$2 port=$3 deadline=$(( $(date +%s) + 10 ))
  until ip netns exec "$ns" bash -c "exec 3<>/dev/tcp/$host/$port" 2>/dev/null; do
    [ "$(date +%s)" -lt "$deadline" ] || { echo "demo: nothing listens on $host:$port" >&2; cat "$tmp"/*.log >&2; exit 1; }
    sleep 0.05
  done
}
wait_port "$srv" 198.18.1.2 80
wait_port "$app" 198.18.0.2 443

echo "== the app namespace cannot reach the web server directly:"
if ip netns exec "$app" timeout 2 bash -c "exec 3<>/dev/tcp/198.18.1.2/80" 2>/dev/null; then
  echo "demo: unexpected direct route" >&2; exit 1
fi
echo "   (no route, as intended)"
echo "== fetching http://198.18.1.2/ through vless-server (VLESS v1 over TLS):"
ip netns exec "$app" "$nc_bin" --server 198.18.0.2:443 --tls --sni demo.vless-tun --ca "$tmp/cert.pem" \
  --uuid "$uuid" --version 1 --target 198.18.1.2:80 \
  --text 'GET / HTTP/1.0\r\nHost: 198.18.1.2\r\n\r\n' >"$tmp/page.txt"
head -n 12 "$tmp/page.txt"
sleep 0.2
echo "== vless-server's log:"
cat "$tmp/server.log"
grep -q "Hello from the web namespace" "$tmp/page.txt" || { echo "demo: page did not arrive" >&2; exit 1; }
echo "== demo ok"
