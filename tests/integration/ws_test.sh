#!/usr/bin/env bash
# WebSocket transport (issue 12), every pairing with a real peer, TLS under
# the WebSocket each time:
#   1. curl/xfer.py --socks5--> v2ray (ns app; VLESS v0 + ws client, early
#      data in Sec-WebSocket-Protocol) --> vless-server [ws] (ns srv :443)
#      --> HTTP / xfer servers (ns web); a browser-like GET for / and for the
#      tunnel's path without an upgrade gets the fallback site, same port.
#   2. xfer.py (ns app) --vt0--> vless-tun (v1, mux, [server.ws] half_close)
#      --> vless-server [ws] --> ns web.
#   3. vless-tun (v0, [server.ws] early_data) --> v2ray's VLESS + ws server
#      (ns srv :8443) --> ns web.
#   4. vless-tun (v1) --> nginx (ns srv :8444, TLS, the CDN stand-in: it
#      serves its own site on / and proxies /vl with the upgrade) -->
#      vless-server [ws] on ns srv's 127.0.0.1:10000, plain --> ns web.
# Each pairing: a page, and VT_XFER_MB (64) MiB each way, sha256 checked.
source "$(dirname "$0")/lib.sh"
source "$VT_TOOLS/testbed.sh"
: "${VT_SERVER:?path to vless-server}"
: "${VT_TUN:?path to vless-tun}"
require_root
require_cmd v2ray curl openssl python3 ip nginx
size_mb=${VT_XFER_MB:-64}

tb_setup ws
mkdir -p "$VT_TMP/www" "$VT_TMP/fb" "$VT_TMP/cdn"
echo "<html><body>hello through vless-tun</body></html>" >"$VT_TMP/www/index.html"
echo "<html>the fallback site</html>" >"$VT_TMP/fb/index.html"
cp "$VT_TMP/fb/index.html" "$VT_TMP/fb/vl"  # GET /vl without an upgrade
echo "<html>the cdn site</html>" >"$VT_TMP/cdn/index.html"
head -c $((size_mb << 20)) /dev/urandom >"$VT_TMP/big.bin"
want=$(sha_of "$VT_TMP/big.bin")

web=80 xfer=5001 fb=8080 socks=1080
start web ip netns exec "$TB_WEB" python3 -m http.server "$web" --bind :: --directory "$VT_TMP/www"
start fallback ip netns exec "$TB_SRV" python3 -m http.server "$fb" --bind 127.0.0.1 --directory "$VT_TMP/fb"
start xfer ip netns exec "$TB_WEB" python3 "$VT_TOOLS/xfer.py" server --host "$TB_WEB4" --port "$xfer" --file "$VT_TMP/big.bin"
wait_port "$TB_WEB4" "$web" 10 "$TB_WEB"
wait_port "$TB_WEB4" "$xfer" 10 "$TB_WEB"
wait_port 127.0.0.1 "$fb" 10 "$TB_SRV"

# both_ways LABEL [xfer.py client options...]: VT_XFER_MB down and up.
both_ways() {
  local label=$1 got
  shift
  log "$label: download ${size_mb} MiB"
  got=$(in_app timeout 120 python3 "$VT_TOOLS/xfer.py" client --target "$TB_WEB4:$xfer" "$@" |
        sha256sum | cut -d' ' -f1)
  [ "$got" = "$want" ] || fail "$label: download corrupted: $got != $want"
  log "$label: upload ${size_mb} MiB"
  got=$(in_app timeout 120 python3 "$VT_TOOLS/xfer.py" client --target "$TB_WEB4:$xfer" \
        --send "$VT_TMP/big.bin" "$@")
  [ "$got" = "$want" ] || fail "$label: upload corrupted: $got != $want"
}
page_through() {  # LABEL [curl options...]
  local label=$1 page
  shift
  page=$(in_app curl -sS --max-time 20 "$@" "http://$TB_WEB4:$web/") || fail "$label: curl failed"
  [[ "$page" == *"hello through vless-tun"* ]] || fail "$label: page not fetched: $page"
}

# --- 1. v2ray's VLESS + WebSocket client against vless-server ------------
tb_server_start vless-server yes "fallback = \"127.0.0.1:$fb\"
idle_timeout = \"60s\"
[ws]
path = \"/vl\""
cat >"$VT_TMP/v2ray-ws-client.json" <<CFG
{"log": {"loglevel": "warning"},
 "inbounds": [{"port": $socks, "listen": "127.0.0.1", "protocol": "socks", "settings": {"udp": false}}],
 "outbounds": [{"protocol": "vless",
   "settings": {"vnext": [{"address": "$TB_SRV4", "port": 443,
                           "users": [{"id": "$TB_UUID", "encryption": "none"}]}]},
   "streamSettings": {"network": "ws", "security": "tls",
     "tlsSettings": {"serverName": "test.name", "allowInsecure": true},
     "wsSettings": {"path": "/vl", "maxEarlyData": 2048,
                    "earlyDataHeaderName": "Sec-WebSocket-Protocol"}}}]}
CFG
start v2ray-client ip netns exec "$TB_APP" v2ray -config "$VT_TMP/v2ray-ws-client.json"
v2c=$(last_pid)
wait_port 127.0.0.1 "$socks" 10 "$TB_APP"
page_through "v2ray ws client" --socks5-hostname "127.0.0.1:$socks"
# v2ray ends the whole connection when its client half-closes: the upload
# is length-prefixed (as in v2ray_client_test).
both_ways "v2ray ws client" --socks "127.0.0.1:$socks" --no-half-close
grep -q "user=it-user target=$TB_WEB4:$xfer" "$VT_TMP/vless-server.log" || fail "vless-server did not log the flows"

log "the fallback site on the same port: / and the tunnel's path without an upgrade"
for path in / /vl; do
  page=$(in_app curl -sS --max-time 20 -k "https://$TB_SRV4:443$path")
  [[ "$page" == *"the fallback site"* ]] || fail "GET $path: fallback page not served: $page"
done
log "an upgrade for another path gets the fallback site too (its 404 here)"
code=$(in_app curl -sS -k --max-time 20 -o /dev/null -w '%{http_code}' --http1.1 \
       -H 'Upgrade: websocket' -H 'Connection: Upgrade' -H 'Sec-WebSocket-Version: 13' \
       -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' "https://$TB_SRV4:443/other") || true
[ "$code" = 404 ] || fail "upgrade for /other: expected the fallback's 404, got '$code'"
stop_pid "$v2c" || true

# --- 2. vless-tun (v1, mux) against vless-server [ws] ---------------------
TB_TUN_EXTRA='[server.ws]
path = "/vl"
half_close = true
early_data = 2048' tb_tun_start tun-ws 1 true wait
page_through "vless-tun ws"
both_ways "vless-tun ws"
stop_pid "$TB_TUN_PID" || fail "vless-tun (ws) did not exit cleanly"
stop_pid "$TB_SERVER_PID" || fail "vless-server (ws) did not exit cleanly"

# --- 3. vless-tun (v0) against v2ray's VLESS + WebSocket server ----------
cat >"$VT_TMP/v2ray-ws-server.json" <<CFG
{"log": {"loglevel": "warning"},
 "inbounds": [{"port": 8443, "listen": "0.0.0.0", "protocol": "vless",
   "settings": {"clients": [{"id": "$TB_UUID"}], "decryption": "none"},
   "streamSettings": {"network": "ws", "security": "tls",
     "tlsSettings": {"certificates": [{"certificateFile": "$VT_TMP/server.pem", "keyFile": "$VT_TMP/server.key"}]},
     "wsSettings": {"path": "/v2", "maxEarlyData": 2048,
                    "earlyDataHeaderName": "Sec-WebSocket-Protocol"}}}],
 "outbounds": [{"protocol": "freedom"}]}
CFG
start v2ray-server ip netns exec "$TB_SRV" v2ray -config "$VT_TMP/v2ray-ws-server.json"
v2s=$(last_pid)
wait_port "$TB_SRV4" 8443 10 "$TB_SRV"
TB_TUN_EXTRA='[server.ws]
path = "/v2"
early_data = 2048' tb_tun_start tun-v2ray 0 true immediate 8443
page_through "v2ray ws server"
both_ways "v2ray ws server" --no-half-close
stop_pid "$TB_TUN_PID" || fail "vless-tun (v2ray ws) did not exit cleanly"
stop_pid "$v2s" || true

# --- 4. through nginx (the CDN stand-in) ---------------------------------
cat >"$VT_TMP/srv-behind.toml" <<CFG
log_level = "info"
listen = "127.0.0.1:10000"
idle_timeout = "60s"
[ws]
path = "/vl"
[[users]]
name = "it-user"
uuid = "$TB_UUID"
CFG
"$VT_SERVER" -c "$VT_TMP/srv-behind.toml" --check >/dev/null || fail "config srv-behind.toml refused"
start vless-server-behind ip netns exec "$TB_SRV" "$VT_SERVER" -c "$VT_TMP/srv-behind.toml"
behind=$(last_pid)
wait_port 127.0.0.1 10000 10 "$TB_SRV"
mkdir -p "$VT_TMP/nginx"
cat >"$VT_TMP/nginx.conf" <<CFG
daemon off;
master_process on;
worker_processes 1;
user root;
pid $VT_TMP/nginx/nginx.pid;
error_log $VT_TMP/nginx/error.log warn;
events { worker_connections 256; }
http {
  access_log $VT_TMP/nginx/access.log;
  client_body_temp_path $VT_TMP/nginx/body;
  proxy_temp_path $VT_TMP/nginx/proxy;
  fastcgi_temp_path $VT_TMP/nginx/fastcgi;
  uwsgi_temp_path $VT_TMP/nginx/uwsgi;
  scgi_temp_path $VT_TMP/nginx/scgi;
  server {
    listen $TB_SRV4:8444 ssl;
    server_name test.name;
    ssl_certificate $VT_TMP/server.pem;
    ssl_certificate_key $VT_TMP/server.key;
    root $VT_TMP/cdn;
    location = /vl {
      proxy_pass http://127.0.0.1:10000;
      proxy_http_version 1.1;
      proxy_set_header Upgrade \$http_upgrade;
      proxy_set_header Connection "upgrade";
      proxy_set_header Host \$host;
      proxy_buffering off;
      proxy_read_timeout 120s;
    }
  }
}
CFG
ip netns exec "$TB_SRV" nginx -t -q -e "$VT_TMP/nginx/error.log" -c "$VT_TMP/nginx.conf" ||
  fail "nginx refused its config: $(cat "$VT_TMP/nginx/error.log")"
start nginx ip netns exec "$TB_SRV" nginx -e "$VT_TMP/nginx/error.log" -c "$VT_TMP/nginx.conf"
wait_port "$TB_SRV4" 8444 10 "$TB_SRV"
page=$(in_app curl -sS --max-time 20 -k "https://$TB_SRV4:8444/")
[[ "$page" == *"the cdn site"* ]] || fail "nginx did not serve its own site on /: $page"
TB_TUN_EXTRA='[server.ws]
path = "/vl"' tb_tun_start tun-nginx 1 true wait 8444
page_through "through nginx"
both_ways "through nginx"
stop_pid "$TB_TUN_PID" || fail "vless-tun (nginx) did not exit cleanly"
# nginx logs an upgraded request when it ends: the mux connection closed.
wait_log "$VT_TMP/nginx/access.log" '"GET /vl HTTP/1.1" 101 ' 10
stop_pid "$behind" || fail "vless-server behind nginx did not exit cleanly"
log "ok"
