#!/usr/bin/env bash
# vless-nc (our tcp -> tls -> vless stack) --> vless-server (v0 and v1) --> local HTTP / xfer servers
# vless-nc (v0)                            --> v2ray VLESS server (TLS)  --> the same servers
# Proves our client stack against our server and against v2ray's: a page,
# and 64 MiB intact in both directions.
source "$(dirname "$0")/lib.sh"
: "${VT_SERVER:?path to vless-server}" "${VT_NC:?path to vless-nc}"
require_cmd v2ray openssl python3
size_mb=${VT_XFER_MB:-64}

uuid=$(new_uuid)
make_cert "$VT_TMP" test.name
mkdir -p "$VT_TMP/www"
echo "<html><body>hello through vless-tun</body></html>" >"$VT_TMP/www/index.html"
head -c $((size_mb << 20)) /dev/urandom >"$VT_TMP/big.bin"
want=$(sha_of "$VT_TMP/big.bin")

web=$(free_port); xfer=$(free_port); vs=$(free_port); v2=$(free_port)
start web python3 -m http.server "$web" --bind 127.0.0.1 --directory "$VT_TMP/www"
start xfer python3 "$VT_TOOLS/xfer.py" server --port "$xfer" --file "$VT_TMP/big.bin"
cat >"$VT_TMP/server.toml" <<CFG
listen = ["127.0.0.1:$vs"]
versions = [0, 1]
[tls]
cert = "server.pem"
key = "server.key"
[[users]]
name = "it-user"
uuid = "$uuid"
CFG
start vless-server "$VT_SERVER" -c "$VT_TMP/server.toml"
cat >"$VT_TMP/v2ray-server.json" <<CFG
{"log": {"loglevel": "warning"},
 "inbounds": [{"port": $v2, "listen": "127.0.0.1", "protocol": "vless",
   "settings": {"clients": [{"id": "$uuid"}], "decryption": "none"},
   "streamSettings": {"network": "tcp", "security": "tls",
     "tlsSettings": {"certificates": [{"certificateFile": "$VT_TMP/server.pem", "keyFile": "$VT_TMP/server.key"}]}}}],
 "outbounds": [{"protocol": "freedom"}]}
CFG
start v2ray-server v2ray -config "$VT_TMP/v2ray-server.json"
for p in $web $xfer $vs $v2; do wait_port 127.0.0.1 "$p"; done

check_path() {  # NAME SERVER_PORT half-close|no-half-close NC_ARGS...
  local name=$1 port=$2 mode=$3
  shift 3
  local nc=("$VT_NC" --server "127.0.0.1:$port" --tls --sni test.name --ca "$VT_TMP/ca.pem" --uuid "$uuid" "$@")
  log "$name: page"
  local page
  page=$("${nc[@]}" --target "127.0.0.1:$web" --text 'GET / HTTP/1.0\r\nHost: x\r\n\r\n') ||
    fail "$name: page request failed"
  [[ "$page" == *"hello through vless-tun"* ]] || fail "$name: page not fetched: $page"
  page=$("${nc[@]}" --target "localhost:$web" --text 'GET / HTTP/1.0\r\nHost: x\r\n\r\n') ||
    fail "$name: page request by domain failed"
  [[ "$page" == *"hello through vless-tun"* ]] || fail "$name: page by domain not fetched"
  log "$name: download ${size_mb} MiB"
  local got
  got=$(timeout 120 "${nc[@]}" --target "127.0.0.1:$xfer" --text 'GET\n' | sha256sum | cut -d' ' -f1)
  [ "$got" = "$want" ] || fail "$name: download corrupted"
  log "$name: upload ${size_mb} MiB"
  if [ "$mode" = half-close ]; then
    got=$(timeout 120 "${nc[@]}" --target "127.0.0.1:$xfer" --text 'SUM\n' --send "$VT_TMP/big.bin") ||
      fail "$name: upload failed"
  else
    got=$(timeout 120 "${nc[@]}" --target "127.0.0.1:$xfer" --text "SUMN $((size_mb << 20))\\n" \
          --send "$VT_TMP/big.bin" --no-half-close --read-bytes 65) || fail "$name: upload failed"
  fi
  [ "$got" = "$want" ] || fail "$name: upload corrupted: $got"
}

check_path "v1 -> vless-server" "$vs" half-close --version 1
check_path "v1+want_ip -> vless-server" "$vs" half-close --version 1 --want-ip
check_path "v0 -> vless-server" "$vs" half-close --version 0
# v2ray's server ends the whole connection when the client half-closes.
check_path "v0 -> v2ray" "$v2" no-half-close --version 0

log "v1 to a closed port: the client sees a failed dial, not a hang"
dead=$(free_port)
if timeout 20 "$VT_NC" --server "127.0.0.1:$vs" --tls --sni test.name --ca "$VT_TMP/ca.pem" \
     --uuid "$uuid" --version 1 --want-ip --target "127.0.0.1:$dead" --text 'x' >/dev/null 2>"$VT_TMP/dead.err"; then
  fail "dial to a closed port reported success"
fi
grep -q "connect" "$VT_TMP/dead.err" || fail "no failed-dial reason: $(cat "$VT_TMP/dead.err")"
log "PASS"
