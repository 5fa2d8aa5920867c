#!/usr/bin/env bash
# vless:// share links end to end: vless-server prints a link per user,
# vless-tun imports each into a config, and that config carries a flow
# through the namespace bed (TLS, then WebSocket over TLS; VLESS v1 with
# vtv=1 and v0 with --v0); the server's log names the link's user.
#
#   ns app: vless-tun (config from the link; test.name -> 198.18.0.2 in
#   /etc/netns/<app>/hosts) --> vless-server (ns srv) --> whoami (ns web)
source "$(dirname "$0")/lib.sh"
source "$VT_TOOLS/testbed.sh"
: "${VT_SERVER:?path to vless-server}" "${VT_TUN:?path to vless-tun}"
require_root
require_cmd python3 openssl ip
T0=$(date +%s)

tb_setup link
tb_netns_hosts "$TB_APP" "198.18.0.2 test.name"
start whoami ip netns exec "$TB_WEB" python3 "$VT_TOOLS/tcp_whoami.py" serve --ports 8080 --max-seconds 200
wait_port "$TB_WEB4" 8080 10 "$TB_WEB"

# run_link LABEL LINK: import, start, one flow, stop; the server log must
# show the link's user.
run_link() {
  local label=$1 link=$2 cfg="$VT_TMP/$1.toml" out
  "$VT_TUN" import -o "$cfg" "$link" || fail "$label: import refused the server's own link: $link"
  # The bed's CA and TUN addresses (a real user's system CA store trusts
  # their server's certificate; here it is the test CA).
  sed -i "s|^\[server\]$|[server]\nca = \"$VT_TMP/ca.pem\"|" "$cfg"
  sed -i "s|^\[tun\]$|[tun]\nipv4 = \"198.18.2.1/30\"\nmtu = 1500|" "$cfg"
  "$VT_TUN" --check -c "$cfg" >/dev/null || fail "$label: the imported config does not check: $(cat "$cfg")"
  start "tun-$label" ip netns exec "$TB_APP" "$VT_TUN" -c "$cfg"
  local pid
  pid=$(last_pid)
  wait_log "$VT_TMP/tun-$label.log" 'vless-tun started' 10
  ip -n "$TB_APP" route replace 198.18.1.0/24 dev vt0
  out=$(ip netns exec "$TB_APP" python3 "$VT_TOOLS/tcp_whoami.py" probe --target "$TB_WEB4:8080")
  [[ "$out" =~ ^PEER\ 198\.18\.1\.1\  ]] || fail "$label: through the imported config: $out"
  stop_pid "$pid" || fail "$label: vless-tun did not exit cleanly"
  log "$label: $out"
}

for mode in tls ws; do
  extra=""
  [ $mode = ws ] && extra=$'[ws]\npath = "/tunnel"'
  TB_USER_EXTRA=$'[[users]]\nname = "bob"\nuuid = "'"$(new_uuid)"'"' tb_server_start "server-$mode" yes "$extra"
  links=$("$VT_SERVER" links -c "$VT_TMP/server-$mode.toml" --host test.name) || fail "links: $links"
  v0links=$("$VT_SERVER" links -c "$VT_TMP/server-$mode.toml" --host test.name --v0) || fail "links --v0"
  log "$mode links: $(tr '\t\n' '  ' <<<"$links")"
  [ "$(wc -l <<<"$links")" -eq 2 ] || fail "$mode: want a link per user: $links"
  it=$(sed -n 's/^it-user\t//p' <<<"$links")
  bob=$(sed -n 's/^bob\t//p' <<<"$v0links")
  [[ "$it" == vless://*@test.name:443\?encryption=none\&security=tls* ]] || fail "$mode: link shape: $it"
  [[ "$it" == *vtv=1* && "$bob" != *vtv=* ]] || fail "$mode: versions: $it / $bob"
  if [ $mode = ws ]; then [[ "$it" == *type=ws*path=%2Ftunnel* ]] || fail "ws link: $it"; fi
  run_link "$mode-v1" "$it"
  run_link "$mode-v0" "$bob"
  stop_pid "$TB_SERVER_PID" || fail "$mode: vless-server did not exit cleanly"
  slog="$VT_TMP/server-$mode.log"
  grep -q "user=it-user" "$slog" || fail "$mode: it-user's link did not reach the server as it-user"
  grep -q "user=bob" "$slog" || fail "$mode: bob's link did not reach the server as bob"
done

# A listen address of 0.0.0.0 needs --host; a bad link is refused with its reason.
printf 'listen = ["0.0.0.0:443"]\n[[users]]\nname = "x"\nuuid = "%s"\n' "$(new_uuid)" >"$VT_TMP/any.toml"
out=$("$VT_SERVER" links -c "$VT_TMP/any.toml" 2>&1) && fail "links without --host on 0.0.0.0: $out"
grep -q -- "--host" <<<"$out" || fail "links on 0.0.0.0: $out"
out=$("$VT_TUN" import "vless://$(new_uuid)@h:443?security=reality&pbk=k" 2>&1) && fail "reality imported"
grep -q "REALITY is not supported" <<<"$out" || fail "reality: $out"
log "PASS in $(( $(date +%s) - T0 )) s"
