#!/usr/bin/env bash
# The C API as an app uses it (issue 10): tools/capi_demo.c is compiled
# against the INSTALLED header and library only (cmake --install into a
# scratch prefix), opens its own TUN in ns app like Android's VpnService,
# and runs the core on a thread of its own:
#   1. fd mode, linked statically (libvless_tun.a via pkg-config): every
#      unmarked packet of ns app is routed into the TUN (ip rule not fwmark),
#      so the core's own sockets escape only because protect() marks them;
#      the server is named (vless-srv.test), looked up through dns_servers
#      with a protected socket. curl v4/v6 through the tunnel works, and
#      protect() was called once for every outer socket: the server's
#      connections plus the name lookups.
#   2. packet callbacks (NEPacketTunnelFlow's way), linked to the shared
#      library, an 8-packet input queue: a 4 MiB download arrives intact, with
#      EAGAIN/input_ready flow control exercised.
#   3. two cores in one process on two TUNs (v4 through one, v6 through the
#      other), both running at once.
# Stats JSON is read while running, stop comes from a second thread, a
# second run and a destroy while running are refused.
source "$(dirname "$0")/lib.sh"
source "$VT_TOOLS/testbed.sh"
: "${VT_BUILD:?the build directory}" "${VT_SERVER:?path to vless-server}"
require_root
require_cmd cc pkg-config curl python3 openssl dnsmasq

# The app: built from the installed files, nothing of the source tree.
inst="$VT_TMP/inst"
cmake --install "$VT_BUILD" --prefix "$inst" >"$VT_TMP/install.log" 2>&1 || fail "cmake --install: $(tail -5 "$VT_TMP/install.log")"
[ -f "$inst/include/vless_tun.h" ] && [ -f "$inst/lib/libvless_tun.a" ] && [ -e "$inst/lib/libvless_tun.so" ] ||
  fail "the install lacks the header or a library: $(find "$inst" -type f | head)"
cflags="-std=c11 -Wall -Wextra -Werror ${VT_CAPI_CFLAGS:-}"
# shellcheck disable=SC2086
cc $cflags -I"$inst/include" "$VT_TOOLS/capi_demo.c" -o "$VT_TMP/capi_shared" \
  -L"$inst/lib" -lvless_tun -lpthread -Wl,-rpath,"$inst/lib" || fail "cc (shared) failed"
# What the archive needs besides itself, from the installed vless-tun.pc.
static_libs=$(PKG_CONFIG_PATH="$inst/lib/pkgconfig" pkg-config --static --libs vless-tun) || fail "pkg-config vless-tun"
static_libs=${static_libs//-lvless_tun/}
# shellcheck disable=SC2086
cc $cflags -I"$inst/include" "$VT_TOOLS/capi_demo.c" -o "$VT_TMP/capi_static" \
  "$inst/lib/libvless_tun.a" $static_libs -lm || fail "cc (static) failed"
ldd "$VT_TMP/capi_static" | grep -q libvless_tun && fail "the static build still needs libvless_tun.so"
nm -D "$VT_TMP/capi_static" | grep -qi " T .*lwip\| T .*mbedtls\| T _ZN2vt" && fail "the static build exports internals"
log "capi_demo built against $inst (shared and static; only vless_tun_* visible)"

tb_setup capi
mkdir -p "$VT_TMP/www"
echo "<html><body>hello through the C API</body></html>" >"$VT_TMP/www/index.html"
head -c $((4 << 20)) /dev/urandom >"$VT_TMP/www/blob"
want_sha=$(sha_of "$VT_TMP/www/blob")
start web ip netns exec "$TB_WEB" python3 -m http.server 80 --bind :: --directory "$VT_TMP/www"
wait_port "$TB_WEB4" 80 10 "$TB_WEB"
tb_server_start
# The server's name, for the lookup protect() must cover.
start dnsmasq ip netns exec "$TB_SRV" dnsmasq --keep-in-foreground --conf-file=/dev/null --pid-file= \
  --user=root --group=root --no-resolv --no-hosts --port 53 --listen-address="$TB_SRV4" --bind-interfaces \
  --address=/vless-srv.test/"$TB_SRV4" --log-queries --log-facility="$VT_TMP/dnsq.log"
# dnsmasq has no AAAA for the name and REFUSES that query (no upstream): the
# lookup goes on with the A answer after one try (ServerNameResolver).
sleep 0.5

core_config() {  # FILE SERVER_ADDRESS TUN4 TUN6
  cat >"$1" <<CFG
log_level = "info"
[tun]
mtu = 1500
ipv4 = "$3"
ipv6 = "$4"
[server]
address = "$2"
uuid = "$TB_UUID"
version = 1
sni = "test.name"
ca = "$VT_TMP/ca.pem"
CFG
}
page_cmd() {  # the page over v4 and v6 from ns app
  echo "curl -sSf --max-time 10 http://$TB_WEB4/ | grep -q 'through the C API' && curl -sSf --max-time 10 'http://[$TB_WEB6]/' | grep -q 'through the C API'"
}

# 1. fd mode, static library, protect() marks, everything else into the TUN.
core_config "$VT_TMP/c1.toml" "vless-srv.test:443" 198.18.2.1/30 2001:db8:2::1/64
setup1="ip addr add 198.18.2.1/30 dev capi0 && ip addr add 2001:db8:2::1/64 dev capi0 nodad && ip link set capi0 up &&
  ip route add default dev capi0 table 77 && ip -6 route add default dev capi0 table 77 &&
  ip rule add not fwmark 0x77 table 77 pref 100 && ip -6 rule add not fwmark 0x77 table 77 pref 100"
CAPI_MARK=0x77 CAPI_DNS="$TB_SRV4" ip netns exec "$TB_APP" "$VT_TMP/capi_static" fd \
  "$VT_TMP/c1.toml" capi0 "$setup1" "$(page_cmd)" >"$VT_TMP/fd.out" 2>"$VT_TMP/fd.err" ||
  fail "fd mode: $(tail -5 "$VT_TMP/fd.out") $(grep -v ' 0 \| 1 ' "$VT_TMP/fd.err" | tail -5)"
grep -q '^ok$' "$VT_TMP/fd.out" || fail "fd mode: no ok"
grep -q '"state":"running".*"tcp":{"flows":[0-9]*,"opened":[1-9]' "$VT_TMP/fd.out" || fail "fd mode: the stats lack the flows: $(grep '^stats' "$VT_TMP/fd.out")"
grep -q '"loops_refused":0' "$VT_TMP/fd.out" || fail "fd mode: connections looped into the TUN"
ip netns exec "$TB_APP" ip rule del not fwmark 0x77 table 77 pref 100
ip netns exec "$TB_APP" ip -6 rule del not fwmark 0x77 table 77 pref 100
protects=$(sed -n 's/.*protect calls \([0-9]*\);.*/\1/p' "$VT_TMP/fd.out")
lookups=$(grep -c 'resolved to' "$VT_TMP/fd.err" || true)
sleep 1  # the server logs a connection when it closes
# One line per connection, plus one per mux stream (those carry " mux=").
conns=$(grep -E "conn #[0-9]+ peer=198\.18\.0\.1:" "$VT_TMP/vless-server.log" | grep -vc " mux=" || true)
[ "$lookups" -ge 1 ] || fail "fd mode: the server's name was not looked up"
[ "$conns" -ge 1 ] || fail "fd mode: the server saw no connection"
[ "$protects" -eq $((conns + lookups)) ] ||
  fail "fd mode: protect() called $protects times for $conns server connections + $lookups lookups"
log "fd mode (static library): pages v4/v6 through the tunnel; protect() called $protects times = $conns server connections + $lookups name lookups; no loop"

# 2. packet callbacks, shared library, a small input queue under a 4 MiB download.
core_config "$VT_TMP/c2.toml" "$TB_SRV4:443" 198.18.2.1/30 2001:db8:2::1/64
setup2="ip addr add 198.18.2.1/30 dev capi0 && ip addr add 2001:db8:2::1/64 dev capi0 nodad && ip link set capi0 up &&
  ip route add 198.18.1.0/24 dev capi0 && ip -6 route add 2001:db8:1::/64 dev capi0"
run2="$(page_cmd) && curl -sSf --max-time 60 http://$TB_WEB4/blob -o $VT_TMP/blob.got"
ip netns exec "$TB_APP" "$VT_TMP/capi_shared" callbacks "$VT_TMP/c2.toml" capi0 "$setup2" "$run2" \
  >"$VT_TMP/cb.out" 2>"$VT_TMP/cb.err" || fail "callback mode: $(tail -5 "$VT_TMP/cb.out")"
grep -q '^ok$' "$VT_TMP/cb.out" || fail "callback mode: no ok"
[ "$(sha_of "$VT_TMP/blob.got")" = "$want_sha" ] || fail "callback mode: the 4 MiB download differs"
grep -q '"tun_mode":"callbacks"' "$VT_TMP/cb.out" || fail "callback mode: stats say another mode"
grep -q 'eagain [1-9]' "$VT_TMP/cb.out" || fail "callback mode: the full queue never refused a batch (flow control not exercised)"
log "callback mode (shared library): pages and 4 MiB intact; $(grep -o 'eagain [0-9]*' "$VT_TMP/cb.out") refusals of a full queue"

# 3. two cores, two TUNs, one process.
core_config "$VT_TMP/t1.toml" "$TB_SRV4:443" 198.18.2.1/30 2001:db8:2::1/64
core_config "$VT_TMP/t2.toml" "$TB_SRV4:443" 198.18.2.5/30 2001:db8:5::1/64
setup_a="ip addr add 198.18.2.1/30 dev capi1 && ip link set capi1 up && ip route add 198.18.1.0/24 dev capi1"
setup_b="ip addr add 2001:db8:5::1/64 dev capi2 nodad && ip link set capi2 up && ip -6 route add 2001:db8:1::/64 dev capi2"
run_a="curl -sSf --max-time 30 http://$TB_WEB4/blob -o $VT_TMP/blob.a"
run_b="curl -sSf --max-time 30 'http://[$TB_WEB6]/blob' -o $VT_TMP/blob.b"
ip netns exec "$TB_APP" "$VT_TMP/capi_shared" two "$VT_TMP/t1.toml" capi1 "$setup_a" "$run_a" \
  "$VT_TMP/t2.toml" capi2 "$setup_b" "$run_b" >"$VT_TMP/two.out" 2>"$VT_TMP/two.err" ||
  fail "two cores: $(tail -5 "$VT_TMP/two.out")"
[ "$(sha_of "$VT_TMP/blob.a")" = "$want_sha" ] && [ "$(sha_of "$VT_TMP/blob.b")" = "$want_sha" ] ||
  fail "two cores: a download differs"
grep -q '^\[core1\] .*vless-tun started: tun capi1' "$VT_TMP/two.err" && grep -q '^\[core2\] .*vless-tun started: tun capi2' "$VT_TMP/two.err" ||
  fail "two cores: each core's log did not reach its own callback"
log "two cores in one process: 4 MiB over v4 through capi1 and over v6 through capi2, intact; logs apart"
log "PASS"
