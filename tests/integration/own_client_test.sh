#!/usr/bin/env bash
# vless-nc (ns app; our tcp -> tls -> vless stack) --> vless-server (ns srv; v0 and v1) --> HTTP / xfer servers (ns web)
# vless-nc (ns app; v0)                            --> v2ray VLESS server (ns srv; TLS)  --> the same servers
# Proves our client stack against our server and against v2ray's: a page
# (by address and by a name the server resolves), 64 MiB intact in both
# directions, and a failed dial reported as such. The targets sit in their
# own namespace because the server refuses loopback/private egress by default.
source "$(dirname "$0")/lib.sh"
source "$VT_TOOLS/testbed.sh"
: "${VT_SERVER:?path to vless-server}" "${VT_NC:?path to vless-nc}"
require_root
require_cmd v2ray openssl python3 ip
size_mb=${VT_XFER_MB:-64}

tb_setup nc
# /etc/netns/<srv>/hosts is bind-mounted over /etc/hosts by `ip netns exec`:
# the servers in ns srv resolve web.test to ns web. It goes on exit whatever
# happens (then lib.sh's own cleanup runs).
NETNS_ETC="/etc/netns/$TB_SRV"
trap 'rc=$?; set +e; rm -rf "$NETNS_ETC"; rmdir /etc/netns 2>/dev/null || true; (exit $rc); _vt_cleanup' EXIT
mkdir -p "$NETNS_ETC"
printf '127.0.0.1 localhost\n::1 localhost\n%s web.test\n' "$TB_WEB4" >"$NETNS_ETC/hosts"

mkdir -p "$VT_TMP/www"
echo "<html><body>hello through vless-tun</body></html>" >"$VT_TMP/www/index.html"
head -c $((size_mb << 20)) /dev/urandom >"$VT_TMP/big.bin"
want=$(sha_of "$VT_TMP/big.bin")

web=80 xfer=5001 dead=81 vs=443 v2=8443
# Bound to every address: bound to one, http.server stalls in reverse DNS.
start web ip netns exec "$TB_WEB" python3 -m http.server "$web" --bind :: --directory "$VT_TMP/www"
start xfer ip netns exec "$TB_WEB" python3 "$VT_TOOLS/xfer.py" server --host "$TB_WEB4" --port "$xfer" --file "$VT_TMP/big.bin"
wait_port "$TB_WEB4" "$web" 10 "$TB_WEB"
wait_port "$TB_WEB4" "$xfer" 10 "$TB_WEB"
tb_server_start                   # 198.18.0.2:443, v0 and v1, TLS
tb_v2ray_server_start "$v2" yes   # 198.18.0.2:8443

check_path() {  # NAME SERVER_PORT half-close|no-half-close NC_ARGS...
  local name=$1 port=$2 mode=$3
  shift 3
  local nc=(ip netns exec "$TB_APP" "$VT_NC" --server "$TB_SRV4:$port" --tls --sni test.name
            --ca "$VT_TMP/ca.pem" --uuid "$TB_UUID" "$@")
  log "$name: page"
  local page
  page=$("${nc[@]}" --target "$TB_WEB4:$web" --text 'GET / HTTP/1.0\r\nHost: x\r\n\r\n') ||
    fail "$name: page request failed"
  [[ "$page" == *"hello through vless-tun"* ]] || fail "$name: page not fetched: $page"
  page=$("${nc[@]}" --target "web.test:$web" --text 'GET / HTTP/1.0\r\nHost: x\r\n\r\n') ||
    fail "$name: page request by domain failed"
  [[ "$page" == *"hello through vless-tun"* ]] || fail "$name: page by domain not fetched"
  log "$name: download ${size_mb} MiB"
  local got
  got=$(timeout 120 "${nc[@]}" --target "$TB_WEB4:$xfer" --text 'GET\n' | sha256sum | cut -d' ' -f1)
  [ "$got" = "$want" ] || fail "$name: download corrupted"
  log "$name: upload ${size_mb} MiB"
  if [ "$mode" = half-close ]; then
    got=$(timeout 120 "${nc[@]}" --target "$TB_WEB4:$xfer" --text 'SUM\n' --send "$VT_TMP/big.bin") ||
      fail "$name: upload failed"
  else
    got=$(timeout 120 "${nc[@]}" --target "$TB_WEB4:$xfer" --text "SUMN $((size_mb << 20))\\n" \
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
if timeout 20 ip netns exec "$TB_APP" "$VT_NC" --server "$TB_SRV4:$vs" --tls --sni test.name --ca "$VT_TMP/ca.pem" \
     --uuid "$TB_UUID" --version 1 --want-ip --target "$TB_WEB4:$dead" --text 'x' >/dev/null 2>"$VT_TMP/dead.err"; then
  fail "dial to a closed port reported success"
fi
grep -q "connect" "$VT_TMP/dead.err" || fail "no failed-dial reason: $(cat "$VT_TMP/dead.err")"
log "PASS"
