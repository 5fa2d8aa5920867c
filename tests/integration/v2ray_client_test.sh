#!/usr/bin/env bash
# curl / xfer.py --socks5--> v2ray (VLESS v0 client, TLS) --> vless-server --> local HTTP / xfer servers
#                                                              \--fallback--> local HTTP server
# Proves our server interoperates with v2ray as a VLESS v0 client: a page
# arrives, 64 MiB arrive intact both ways, and bad handshakes reach the
# fallback web server.
source "$(dirname "$0")/lib.sh"
: "${VT_SERVER:?path to vless-server}"
require_cmd v2ray curl openssl python3
size_mb=${VT_XFER_MB:-64}

uuid=$(new_uuid)
make_cert "$VT_TMP" test.name
mkdir -p "$VT_TMP/www"
echo "<html><body>hello through vless-tun</body></html>" >"$VT_TMP/www/index.html"
echo "fallback page" >"$VT_TMP/fallback.txt"
mkdir -p "$VT_TMP/fb" && echo "<html>the fallback site</html>" >"$VT_TMP/fb/index.html"
head -c $((size_mb << 20)) /dev/urandom >"$VT_TMP/big.bin"

web=$(free_port); fb=$(free_port); xfer=$(free_port); vs=$(free_port); socks=$(free_port)
start web python3 -m http.server "$web" --bind 127.0.0.1 --directory "$VT_TMP/www"
start fallback python3 -m http.server "$fb" --bind 127.0.0.1 --directory "$VT_TMP/fb"
start xfer python3 "$VT_TOOLS/xfer.py" server --port "$xfer" --file "$VT_TMP/big.bin"

cat >"$VT_TMP/server.toml" <<CFG
log_level = "info"
listen = ["127.0.0.1:$vs"]
versions = [0, 1]
fallback = "127.0.0.1:$fb"
handshake_timeout = "5s"
idle_timeout = "60s"
[tls]
cert = "server.pem"
key = "server.key"
[[users]]
name = "it-user"
uuid = "$uuid"
CFG
"$VT_SERVER" --check -c "$VT_TMP/server.toml" || fail "config check failed"
start vless-server "$VT_SERVER" -c "$VT_TMP/server.toml"

cat >"$VT_TMP/v2ray-client.json" <<CFG
{"log": {"loglevel": "warning"},
 "inbounds": [{"port": $socks, "listen": "127.0.0.1", "protocol": "socks", "settings": {"udp": false}}],
 "outbounds": [{"protocol": "vless",
   "settings": {"vnext": [{"address": "127.0.0.1", "port": $vs,
                           "users": [{"id": "$uuid", "encryption": "none"}]}]},
   "streamSettings": {"network": "tcp", "security": "tls",
     "tlsSettings": {"serverName": "test.name", "allowInsecure": true}}}]}
CFG
start v2ray v2ray -config "$VT_TMP/v2ray-client.json"
for p in $web $fb $xfer $vs $socks; do wait_port 127.0.0.1 "$p"; done

log "page through v2ray -> vless-server"
page=$(curl -sS --max-time 20 --socks5-hostname "127.0.0.1:$socks" "http://127.0.0.1:$web/")
[[ "$page" == *"hello through vless-tun"* ]] || fail "page not fetched: $page"
page=$(curl -sS --max-time 20 --socks5-hostname "127.0.0.1:$socks" "http://localhost:$web/")
[[ "$page" == *"hello through vless-tun"* ]] || fail "page by domain not fetched: $page"

want=$(sha_of "$VT_TMP/big.bin")
log "download ${size_mb} MiB"
got=$(timeout 120 python3 "$VT_TOOLS/xfer.py" client --socks "127.0.0.1:$socks" --target "127.0.0.1:$xfer" | sha256sum | cut -d' ' -f1)
[ "$got" = "$want" ] || fail "download corrupted: $got != $want"
log "upload ${size_mb} MiB"
# v2ray ends the whole connection when the client half-closes, so the
# upload is length-prefixed here (half-close is proven in own_client_test).
got=$(timeout 120 python3 "$VT_TOOLS/xfer.py" client --socks "127.0.0.1:$socks" --target "127.0.0.1:$xfer" \
      --send "$VT_TMP/big.bin" --no-half-close)
[ "$got" = "$want" ] || fail "upload corrupted: $got != $want"

log "plain HTTPS request (not VLESS) reaches the fallback site"
page=$(curl -sS --max-time 20 -k "https://127.0.0.1:$vs/")
[[ "$page" == *"the fallback site"* ]] || fail "fallback page not served: $page"

log "wrong UUID reaches the fallback web server, not the target"
# v2ray itself would drop the fallback's reply (it is no VLESS response), so
# a raw VLESS v0 request with a foreign UUID is sent over TLS here.
bad=$(new_uuid | tr -d -)
port_hex=$(printf '%04x' "$web")
out=$(python3 "$VT_TOOLS/xfer.py" raw --tls --target "127.0.0.1:$vs" \
      --hex "00${bad}0001${port_hex}017f000001" --text 'GET / HTTP/1.0\r\n\r\n')
[[ "$out" != *"hello through vless-tun"* ]] || fail "wrong UUID reached the target"
# The fallback (a Python web server) answers the foreign bytes itself.
[[ "$out" == *"SimpleHTTP"* ]] || fail "wrong UUID did not reach the fallback web server: $out"
log "PASS"
