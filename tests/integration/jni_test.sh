#!/usr/bin/env bash
# The JNI glue (platform/android) on the host JVM, set up the way Android
# sets up a VpnService:
#
#   ns app: TUN vtj0 198.18.42.1/30 2001:db8:42::1/64 (made and configured
#           here, like VpnService.Builder.establish(); the Java test opens
#           its fd with a test-only native helper and hands it to VlessTun)
#           veth0 198.18.40.1/32 (no prefix route) --- ns srv: 198.18.40.2/30 vless-server :443
#           routes: default (v4, v6) dev vtj0; fwmark 0x4a4e -> table 100:
#           198.18.40.0/30 dev veth0. Only marked traffic reaches the
#           server; everything else, the core's own sockets included,
#           enters the TUN (Android's policy routing does the same).
#   ns srv: veth1 198.18.41.1/30 2001:db8:41::1/64 --- ns web: 198.18.41.2/30 2001:db8:41::2/64 http.server :80
#
# The Java program (platform/android/test/VlessTunJniTest.java, run under
# -Xcheck:jni) checks bad arguments and the lifecycle, then runs the tunnel
# on a Java thread with a Protector that sets SO_MARK on every socket it is
# given (what VpnService.protect() amounts to), curls through it over IPv4
# and IPv6, reads statsJson, calls networkChanged, stops from another
# thread; then a Protector that forgets the mark (the core's connection
# comes back through the TUN and is refused as a loop) and one that throws.
# Here: every SYN that reached the server came from the veth address and
# their number equals the protect() calls of the marking phase; no JNI
# warning from -Xcheck:jni; the server served the page flows.
source "$(dirname "$0")/lib.sh"
source "$VT_TOOLS/testbed.sh" # stop_pid, wait_log
: "${VT_SERVER:?path to vless-server}"
require_root
JAVA=${VT_JAVA:-java} # the JDK's java that CMake found (tests/integration/CMakeLists.txt)
require_cmd curl python3 openssl nft ip timeout "$JAVA"
[ -f "${VT_JNI_LIB:-}" ] ||
  fail "libvless_tun_jni.so is not built (VT_JNI_LIB='${VT_JNI_LIB:-}'): platform/android needs a JDK at configure time (JAVA_HOME)"
[ -f "${VT_JNI_TEST_LIB:-}" ] || fail "the JNI test helper library is not built (VT_JNI_TEST_LIB='${VT_JNI_TEST_LIB:-}')"
[ -f "${VT_JNI_CLASSES:-}/net/vlesstun/test/VlessTunJniTest.class" ] ||
  fail "the Java classes are not built (VT_JNI_CLASSES='${VT_JNI_CLASSES:-}')"

MARK=0x4a4e
SRV4=198.18.40.2
WEB4=198.18.41.2
WEB6=2001:db8:41::2
id="vt-jni-$$"
APP="$id-app" SRV="$id-srv" WEB="$id-web"
netns_add "$APP"
netns_add "$SRV"
netns_add "$WEB"
ip -n "$APP" link add veth0 type veth peer name veth0 netns "$SRV"
ip -n "$SRV" link add veth1 type veth peer name veth0 netns "$WEB"
ip -n "$APP" addr add 198.18.40.1/32 dev veth0
ip -n "$SRV" addr add 198.18.40.2/30 dev veth0
ip -n "$SRV" addr add 198.18.41.1/30 dev veth1
ip -n "$SRV" addr add 2001:db8:41::1/64 dev veth1 nodad
ip -n "$WEB" addr add 198.18.41.2/30 dev veth0
ip -n "$WEB" addr add 2001:db8:41::2/64 dev veth0 nodad
ip -n "$APP" link set veth0 up
ip -n "$SRV" link set veth0 up
ip -n "$SRV" link set veth1 up
ip -n "$WEB" link set veth0 up
# The replies from the server arrive on veth0 while the unmarked route to
# it is the TUN: no strict reverse-path filter.
ip netns exec "$APP" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 \
  net.ipv4.conf.veth0.rp_filter=0
# The TUN, configured before the app opens it (as establish() does).
ip -n "$APP" tuntap add dev vtj0 mode tun
ip -n "$APP" addr add 198.18.42.1/30 dev vtj0
ip -n "$APP" addr add 2001:db8:42::1/64 dev vtj0 nodad
ip -n "$APP" link set vtj0 up
ip -n "$APP" route add default dev vtj0
ip -n "$APP" -6 route add default dev vtj0
ip -n "$APP" route add 198.18.40.0/30 dev veth0 src 198.18.40.1 table 100
ip -n "$APP" rule add fwmark "$MARK" lookup 100 pref 100
# Without the mark the server is reached through the TUN (the loop protect
# prevents); with it, through veth0.
unmarked=$(ip -n "$APP" route get "$SRV4")
marked=$(ip -n "$APP" route get "$SRV4" mark "$MARK")
[[ "$unmarked" == *"dev vtj0"* ]] || fail "unmarked route to the server is not the TUN: $unmarked"
[[ "$marked" == *"dev veth0"* ]] || fail "marked route to the server is not veth0: $marked"
log "routes: unmarked to $SRV4 via vtj0, mark $MARK via veth0"

mkdir -p "$VT_TMP/www"
echo "<html><body>hello through vless-tun</body></html>" >"$VT_TMP/www/index.html"
head -c 65536 /dev/urandom >"$VT_TMP/www/big.bin" # fetched slowly (~2 s) by 4 curls at once
start web ip netns exec "$WEB" python3 -m http.server 80 --bind :: --directory "$VT_TMP/www"
wait_port "$WEB4" 80 10 "$WEB"

UUID=$(new_uuid)
make_cert "$VT_TMP" test.name
cat >"$VT_TMP/server.toml" <<CFG
log_level = "info"
listen = ["$SRV4:443"]
versions = [0, 1]
[tls]
cert = "server.pem"
key = "server.key"
[[users]]
name = "it-user"
uuid = "$UUID"
CFG
"$VT_SERVER" --check -c "$VT_TMP/server.toml" >/dev/null || fail "vless-server config check failed"
start vless-server ip netns exec "$SRV" "$VT_SERVER" -c "$VT_TMP/server.toml"
SERVER_PID=$(last_pid)
wait_port "$SRV4" 443 10 "$SRV"
# Every SYN that reaches the server from now on (after wait_port's own
# probe), and those from the app's veth address.
ip netns exec "$SRV" nft -f - <<'NFT'
table inet vtjni {
  chain input {
    type filter hook input priority 0; policy accept;
    tcp dport 443 tcp flags & (syn | ack) == syn counter comment "syn-all"
    ip saddr 198.18.40.1 tcp dport 443 tcp flags & (syn | ack) == syn counter comment "syn-veth"
  }
}
NFT
syn_count() {
  ip netns exec "$SRV" nft list chain inet vtjni input |
    sed -n "s/.*counter packets \([0-9]*\) .*comment \"$1\".*/\1/p"
}


# The app's config text: a connection per flow (no mux), so every flow
# dials and protect() is called once per server connection.
cat >"$VT_TMP/client.toml" <<CFG
log_level = "info"
[tun]
mtu = 1500
[server]
address = "$SRV4:443"
uuid = "$UUID"
version = 1
tls = true
sni = "test.name"
ca = "$VT_TMP/ca.pem"
connect_mode = "wait"
[mux]
enabled = false
CFG

# An ASan build (VT_SANITIZE): the JVM is not instrumented, so the ASan
# runtime must come first (LD_PRELOAD), with libstdc++ right after it (ASan
# resolves its __cxa_throw interceptor at start; loaded later by
# System.loadLibrary, the first C++ throw fails a CHECK); the JVM handles
# SIGSEGV itself (implicit null checks, safepoint polls), and its own
# allocations at exit are no leaks of ours.
java_env=()
asan_rt=$(ldd "$VT_JNI_LIB" | awk '/libasan\.so/ {print $3; exit}')
if [ -n "$asan_rt" ]; then
  cxx_rt=$(ldd "$VT_JNI_LIB" | awk '/libstdc\+\+\.so/ {print $3; exit}')
  java_env=(env LD_PRELOAD="$asan_rt${cxx_rt:+ $cxx_rt}"
    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}handle_segv=0:allow_user_segv_handler=1:detect_leaks=0")
  log "ASan build: the JVM runs with LD_PRELOAD='$asan_rt${cxx_rt:+ $cxx_rt}'"
fi
log "running the Java test ($JAVA: $("$JAVA" -version 2>&1 | head -1))"
rc=0
# timeout bounds the JVM (it is our child; SIGKILL 5 s after SIGTERM).
timeout --kill-after=5 240 ip netns exec "$APP" "${java_env[@]}" "$JAVA" -Xcheck:jni \
  -Djava.library.path="$(dirname "$VT_JNI_LIB"):$(dirname "$VT_JNI_TEST_LIB")" \
  -cp "$VT_JNI_CLASSES" net.vlesstun.test.VlessTunJniTest vtj0 "$MARK" "$VT_TMP/client.toml" \
  "http://$WEB4/" "http://[$WEB6]/" </dev/null >"$VT_TMP/java.log" 2>&1 || rc=$?
grep -E '^(OK|FAIL|PROTECT|PASS)' "$VT_TMP/java.log" | sed 's/^/  java: /'
[ $rc -eq 0 ] || fail "the Java test exited $rc"
grep -q '^PASS$' "$VT_TMP/java.log" || fail "the Java test did not print PASS"
# -Xcheck:jni reports JNI misuse as warnings (a call with an exception
# pending or not checked, local references piling up past the frame's
# capacity in the long native run frame, bad references); any is a failure.
if grep -nE 'WARNING in native method|FATAL ERROR in native method|WARNING: JNI local refs|ERROR: (Address|Undefined)Sanitizer|runtime error:' "$VT_TMP/java.log"; then
  fail "-Xcheck:jni (or a sanitizer) reported misuse"
fi

# Counts: protect() calls of the marking phase vs SYNs at the server.
line=$(grep '^PROTECT phase=B ' "$VT_TMP/java.log") || fail "no PROTECT phase=B line"
calls=$(sed -n 's/.* calls=\([0-9]*\).*/\1/p' <<<"$line")
okc=$(sed -n 's/.* ok=\([0-9]*\).*/\1/p' <<<"$line")
tcpc=$(sed -n 's/.* tcp=\([0-9]*\).*/\1/p' <<<"$line")
udpc=$(sed -n 's/.* udp=\([0-9]*\).*/\1/p' <<<"$line")
syn_all=$(syn_count syn-all)
syn_veth=$(syn_count syn-veth)
log "protect(): $calls calls ($tcpc TCP, $udpc UDP route probes after the network change), $okc marked; SYNs at the server: $syn_all, from 198.18.40.1: $syn_veth"
[ "$calls" = "$okc" ] || fail "protect() failed to mark $((calls - okc)) of $calls sockets"
[ "$syn_all" = "$syn_veth" ] || fail "$((syn_all - syn_veth)) SYNs reached the server from elsewhere than veth0"
[ "$syn_all" = "$tcpc" ] || fail "the server saw $syn_all connection attempts, protect() was given $tcpc TCP sockets"
[ $((tcpc + udpc)) = "$calls" ] || fail "protect() was given $((calls - tcpc - udpc)) sockets that are neither TCP nor UDP"
# Flows one after another share a pooled connection and networkChanged
# drops the idle one, so there were dials before and after it; how many the
# four parallel flows needed depends on how their starts overlap with the
# releases (4 or 5 seen), so only the equality above is exact.
[ "$tcpc" -ge 2 ] || fail "only $tcpc protected TCP sockets, want >= 2 (dials before and after networkChanged)"
# The phase that forgot the mark never reached the server: no SYN beyond
# the marked ones (checked above) and the loop showed up inside the core.
grep -q '^LOG\[C1\] .*routing loop through the TUN' "$VT_TMP/java.log" ||
  fail "phase C1 logged no refused routing loop"
grep -q '^LOG\[B\] .*routing loop' "$VT_TMP/java.log" && fail "phase B logged a routing loop"

# statsJson() is JSON with the counters the docs name.
grep '^STATS\[B\] ' "$VT_TMP/java.log" | sed 's/^STATS\[B\] //' | python3 -c '
import json, sys
s = json.load(sys.stdin)
assert s["state"] == "running", s["state"]
assert s["tun_mode"] == "fd", s["tun_mode"]
assert s["tcp"]["opened"] >= 8 and s["tcp"]["loops_refused"] == 0, s["tcp"]
assert s["tun"]["packets_in"] > 0 and s["tun"]["packets_out"] > 0, s["tun"]
assert s["connections"]["server_addresses"] == ["198.18.40.2:443"], s["connections"]
print("statsJson: valid JSON; tcp.opened=%d, tls_handshakes=%d" % (s["tcp"]["opened"], s["connections"].get("tls_handshakes", -1)))
' || fail "statsJson() of phase B is not the expected JSON"

# The server carried the page flows, every one from the veth address.
stop_pid "$SERVER_PID" 10 || true
flows=$(grep -cE "conn #[0-9]+ peer=198\.18\.40\.1:[0-9]+ user=it-user target=(198\.18\.41\.2|\[?2001:db8:41::2\]?):80 " "$VT_TMP/vless-server.log" || true)
others=$(grep -E "conn #[0-9]+ peer=.* user=it-user " "$VT_TMP/vless-server.log" | grep -vc "peer=198\.18\.40\.1:" || true)
log "server: $flows page flows from 198.18.40.1, $others connections from elsewhere"
[ "$flows" -ge 8 ] || fail "the server logged $flows page flows, want >= 8"
[ "$others" -eq 0 ] || fail "the server logged $others connections not from 198.18.40.1"
# Each protected socket was one server connection that carried flows.
conns=$(grep -oE "conn #[0-9]+ peer=198\.18\.40\.1:[0-9]+ user=it-user " "$VT_TMP/vless-server.log" | cut -d' ' -f2 | sort -u | wc -l)
log "server: the flows came over $conns connections"
[ "$conns" = "$tcpc" ] || fail "the server's flows came over $conns connections, protect() was given $tcpc TCP sockets"
log "PASS"
