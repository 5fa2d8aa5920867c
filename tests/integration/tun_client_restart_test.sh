#!/usr/bin/env bash
# apps (ns app) --vt0--> vless-tun (SIGKILL mid-transfer, started again) --VLESS v1 Mux/TLS--> vless-server (ns srv) --> xfer.py, http, UDP reflector (ns web)
#
# vless-tun carrying transfers is killed with SIGKILL (no clean-up runs: its
# TUN vanishes with its fd, auto_route's rules and state file stay), then
# started again with the same config. Three runs:
#   autoroute   route.auto_route = true, no manual routes (ns app has no
#               default route: whatever works went through vt0); in flight
#               at the kill: a 16 MB/s IPv4 upload, a slow IPv6 download and
#               a UDP socket pinging every 100 ms;
#   lost-state  the same config, nothing in flight, and the state file is
#               deleted before the restart: the leftover rules must be taken
#               over, not doubled;
#   manual      no auto_route (the test routes the web subnets into vt0);
#               the upload and the pings in flight.
# Each run proves:
#  1. the restart comes up at once with a new vt0; with auto_route it
#     removes (or takes over) the killed run's leftovers without an error
#     and ends with exactly the rules and table-2022 routes of the first
#     start: nothing missing, nothing doubled;
#  2. new flows work: TCP (curl) and UDP (200-datagram echo) over IPv4 and
#     IPv6; autoroute and manual: 32 MiB down intact (sha256; autoroute also
#     over IPv6, and 32 MiB up), and the UDP socket that pinged across the
#     kill is answered again without the app doing anything;
#  3. the app connections cut by the kill end, none hangs: one that sends
#     is reset by the new instance (it has no state for it); a pure reader
#     has nothing to send and so only its own read timeout (5 s) ends it;
#  4. SIGTERM of the restarted instance exits 0 and leaves ns app exactly as
#     before the first start: ip rule / ip -6 rule, every routing table,
#     links, addresses, nft ruleset (iptables too where installed), no state
#     file.
source "$(dirname "$0")/lib.sh"
source "$VT_TOOLS/testbed.sh"
: "${VT_SERVER:?path to vless-server}" "${VT_TUN:?path to vless-tun}"
require_root
require_cmd curl python3 openssl ip ss nft
big_mb=${VT_XFER_MB:-64}  # the transfers cut by the kill (paced: still running at the kill)
bulk_mb=32                 # the transfers after the restart
UPORT=7300
UPROBE="$VT_TOOLS/udp_probe.py"
T0=$(date +%s)

tb_setup crst
head -c $((big_mb << 20)) /dev/urandom >"$VT_TMP/big.bin"
head -c $((bulk_mb << 20)) /dev/urandom >"$VT_TMP/bulk.bin"
want_bulk=$(sha_of "$VT_TMP/bulk.bin")
mkdir -p "$VT_TMP/www"
echo "<html><body>hello through vless-tun</body></html>" >"$VT_TMP/www/index.html"
start xfer ip netns exec "$TB_WEB" python3 "$VT_TOOLS/xfer.py" server --host :: --port 9000 --file "$VT_TMP/big.bin"
start xfer-bulk ip netns exec "$TB_WEB" python3 "$VT_TOOLS/xfer.py" server --host :: --port 9001 --file "$VT_TMP/bulk.bin"
start web ip netns exec "$TB_WEB" python3 -m http.server 80 --bind :: --directory "$VT_TMP/www"
start reflect ip netns exec "$TB_WEB" python3 "$UPROBE" reflect --port $UPORT --max-seconds 120
wait_port "$TB_WEB4" 9000 30 "$TB_WEB"
wait_port "$TB_WEB4" 9001 30 "$TB_WEB"
wait_port "$TB_WEB4" 80 30 "$TB_WEB"
deadline=$(( $(date +%s) + 30 ))
until in_srv python3 "$UPROBE" poke --target "$TB_WEB4:$UPORT" --msg ping --timeout 1 >/dev/null; do
  [ "$(date +%s)" -lt "$deadline" ] || fail "no UDP reflector on $TB_WEB4:$UPORT"
done
tb_server_start

# A paced uploader: "SUM\n" + FILE at RATE bytes/s, half-close, the server's
# sha256 back. Prints "done sent=N answer=H" or "error=E sent=N" (exit 3).
cat >"$VT_TMP/upload.py" <<'PY'
import socket, sys, time
target, path, rate, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
host, port = target.rsplit(":", 1)
sent = 0
try:
    s = socket.create_connection((host.strip("[]"), int(port)), timeout=timeout)
    s.sendall(b"SUM\n")
    t0 = time.monotonic()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 16)
            if not b:
                break
            s.sendall(b)
            sent += len(b)
            ahead = sent / rate - (time.monotonic() - t0)
            if ahead > 0:
                time.sleep(ahead)
    s.shutdown(socket.SHUT_WR)
    print("done sent=%d answer=%s" % (sent, s.recv(128).decode().strip()))
except OSError as e:
    print("error=%s sent=%d" % (type(e).__name__, sent))
    sys.exit(3)
PY

# The whole network state of ns app that vless-tun may touch.
snapshot() {
  { echo "-- rules v4"; ip -n "$TB_APP" rule
    echo "-- rules v6"; ip -n "$TB_APP" -6 rule
    echo "-- routes v4"; ip -n "$TB_APP" route show table all
    echo "-- routes v6"; ip -n "$TB_APP" -6 route show table all
    echo "-- links"; ip -n "$TB_APP" -o link show | awk -F': ' '{print $2}'
    echo "-- addresses"; ip -n "$TB_APP" -br addr
    echo "-- nft"; in_app nft list ruleset
    if command -v iptables-save >/dev/null; then
      echo "-- iptables"; in_app iptables-save | grep -v '^#' | sed 's/\[[0-9]*:[0-9]*\]//'
      echo "-- ip6tables"; in_app ip6tables-save | grep -v '^#' | sed 's/\[[0-9]*:[0-9]*\]//'
    fi
    echo "-- state files"; find "$VT_TMP" -name '*.state*'
  } >"$1" 2>&1
}
# What auto_route installs (vt0's own kernel routes, e.g. a random IPv6
# link-local, differ between two TUNs and are left out).
policy() {
  { ip -n "$TB_APP" rule; ip -n "$TB_APP" -6 rule
    ip -n "$TB_APP" route show table 2022; ip -n "$TB_APP" -6 route show table 2022; } >"$1" 2>&1
}
same_as() {  # same_as BEFORE NOW WHAT
  diff -u "$1" "$2" >&2 || fail "$3 (diff above)"
}
# A UDP socket that pings (every 100 ms) until 4 s after MARKER appeared
# (60 s at most), replies matched by number. Prints "before: sent=N
# answered=N after: sent=N answered=N" (pings sent before/after MARKER);
# creates MARKER.live at the first answer.
cat >"$VT_TMP/pinger.py" <<'PY'
import os, select, socket, sys, time
target, marker, linger = sys.argv[1], sys.argv[2], float(sys.argv[3])
host, port = target.rsplit(":", 1)
host = host.strip("[]")
s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
s.connect((host, int(port)))
s.setblocking(False)
sent, got, phase = [0, 0], [0, 0], {}
t0 = time.monotonic()
marked = stop = None
n = 0
next_send = 0.0
while stop is None or time.monotonic() < stop:
    now = time.monotonic()
    if marked is None and os.path.exists(marker):
        marked = now
    if stop is None and ((marked is not None and now - marked >= linger) or now - t0 > 60):
        stop = now + 0.5  # late answers still count
    if stop is None and now >= next_send:
        ph = 0 if marked is None else 1
        try:
            s.send(b"PING %d" % n)
        except OSError:
            pass  # no route while the tunnel is down
        phase[n] = ph
        sent[ph] += 1
        n += 1
        next_send = now + 0.1
    if select.select([s], [], [], 0.02)[0]:
        try:
            data = s.recv(65535)
        except OSError:
            continue
        if data.startswith(b"PING "):
            ph = phase.pop(int(data[5:]), None)
            if ph is not None:
                got[ph] += 1
                if got[0] == 1 and ph == 0:
                    open(marker + ".live", "w").close()
print("before: sent=%d answered=%d after: sent=%d answered=%d" % (sent[0], got[0], sent[1], got[1]))
PY
# pings_live MARKER: waits until the pinger got its first answer.
pings_live() {
  local deadline=$(( $(date +%s) + 20 ))
  until [ -e "$1.live" ]; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "the pinger got no answer in 20 s"
    sleep 0.05
  done
}
# pings_ok LOG LABEL: answered before the disturbance, and again after it.
pings_ok() {
  local res b_sent b_got a_sent a_got
  res=$(cat "$1")
  read -r b_sent b_got a_sent a_got <<<"$(sed -n 's/^before: sent=\([0-9]*\) answered=\([0-9]*\) after: sent=\([0-9]*\) answered=\([0-9]*\)$/\1 \2 \3 \4/p' "$1")"
  [ -n "$a_got" ] || fail "$2: no result from the pinger: $res"
  [ "$b_got" -ge 1 ] || fail "$2: the UDP socket was never answered before the disturbance: $res"
  [ "$a_sent" -ge 20 ] || fail "$2: too few pings after the disturbance to judge: $res"
  [ "$a_got" -ge $(( a_sent - 10 )) ] ||
    fail "$2: the UDP socket that lived through it is not answered again: $res"
  log "$2: $res"
}

fd_count() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
curl_ok() {
  local page
  page=$(in_app curl -sS --max-time 5 "$2") || fail "$1: curl $2 failed"
  [[ "$page" == *"hello through vless-tun"* ]] || fail "$1: wrong page: $page"
}
udp_ok() {
  local out
  out=$(in_app python3 "$UPROBE" echo --target "$2:$UPORT" --count 200 --max-size 1200 \
        --timeout 5 --stall 2) || fail "$1: UDP echo through the tunnel failed: $out"
}
down_ok() {  # down_ok LABEL DST
  local t0 got
  t0=$(date +%s%N)
  got=$(in_app timeout 30 python3 "$VT_TOOLS/xfer.py" client --target "$2:9001" | sha256sum | cut -d' ' -f1)
  [ "$got" = "$want_bulk" ] || fail "$1: ${bulk_mb} MiB download from $2 corrupt or short"
  log "$1: ${bulk_mb} MiB down from $2 intact in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
}
wait_done() {  # wait_done PID NAME SECS: sets RC
  local pid=$1 deadline=$(( $(date +%s) + $3 ))
  while kill -0 "$pid" 2>/dev/null; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "$2 still running after $3 s (a hang): $(cat "$VT_TMP/$2.log")"
    sleep 0.05
  done
  RC=0; wait "$pid" || RC=$?
}

# tun_start NAME CONFIG AUTO: vless-tun in ns app; manual routes unless AUTO.
tun_start() {
  start "$1" ip netns exec "$TB_APP" "$VT_TUN" -c "$VT_TMP/$2.toml"
  TUN_PID=$(last_pid) TUN_LOG="$VT_TMP/$1.log"
  wait_log "$TUN_LOG" 'vless-tun started' 10
  if [ "$3" = no ]; then
    ip -n "$TB_APP" route replace 198.18.1.0/24 dev vt0
    ip -n "$TB_APP" -6 route replace 2001:db8:1::/64 dev vt0
  fi
}

# The kernel adds veth0's IPv6 link-local (and its local route) a moment
# after the link comes up; the "before" picture must include it.
deadline=$(( $(date +%s) + 10 ))
until [ "$(ip -n "$TB_APP" -6 route show table local | grep -c '^local fe80::')" -eq 1 ] &&
      ! ip -n "$TB_APP" -6 addr | grep -q tentative; do
  [ "$(date +%s)" -lt "$deadline" ] || fail "ns app's link-local address not ready after 10 s"
  sleep 0.05
done
snapshot "$VT_TMP/before.txt"

# run LABEL AUTO(yes|no) LOSE_STATE(yes|no) LOAD(full|some|none): what is in
# flight at the kill and checked after the restart.
run() {
  local label=$1 auto=$2 lose=$3 load=$4 cfg="tun-$1" route="" n t0 ms out full=no
  [ "$load" = full ] && full=yes
  [ "$auto" = yes ] && route='[route]
auto_route = true
state_file = "routes.state"'
  cat >"$VT_TMP/$cfg.toml" <<CFG
log_level = "info"
[tun]
name = "vt0"
mtu = 1500
ipv4 = "198.18.2.1/30"
ipv6 = "2001:db8:2::1/64"
[server]
address = "$TB_SRV4:443"
uuid = "$TB_UUID"
sni = "test.name"
ca = "ca.pem"
$route
[limits]
connect_timeout = "5s"
CFG
  "$VT_TUN" --check -c "$VT_TMP/$cfg.toml" >/dev/null ||
    fail "$label: config check: $("$VT_TUN" --check -c "$VT_TMP/$cfg.toml" 2>&1)"

  # ---- first instance, carrying transfers
  tun_start "$label-1" "$cfg" "$auto"
  local pid1=$TUN_PID
  [ "$auto" = yes ] && policy "$VT_TMP/$label-applied.txt"
  curl_ok "$label: first instance" "http://$TB_WEB4/"
  local marker="$VT_TMP/$label.marker" pings="" upload="" download="" want=0
  if [ "$load" != none ]; then
    start "$label-pings" ip netns exec "$TB_APP" python3 "$VT_TMP/pinger.py" "$TB_WEB4:$UPORT" "$marker" 4
    pings=$(last_pid)
    start "$label-upload" ip netns exec "$TB_APP" timeout 60 python3 "$VT_TMP/upload.py" \
      "$TB_WEB4:9000" "$VT_TMP/big.bin" 16000000 30
    upload=$(last_pid) want=1
  fi
  if [ "$full" = yes ]; then
    start "$label-download" ip netns exec "$TB_APP" timeout 60 python3 "$VT_TOOLS/flows.py" slowget \
      --target "[$TB_WEB6]:9000" --chunk 262144 --interval 0.05 --slow 1000 --timeout 5
    download=$(last_pid) want=2
  fi
  deadline=$(( $(date +%s) + 20 ))
  until [ "$(in_web ss -Htn state established '( sport = :9000 )' | wc -l)" -ge $want ]; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "$label: the transfers never reached ns web"
    sleep 0.05
  done
  [ -z "$pings" ] || pings_live "$marker"
  [ $want -eq 0 ] || sleep 0.7

  # ---- SIGKILL
  log "$label: kill -9 vless-tun (pid $pid1) with $want transfer(s) in flight"
  { kill -9 "$pid1"; wait "$pid1"; } 2>/dev/null || true
  local tk=$(date +%s%N)
  deadline=$(( $(date +%s) + 5 ))
  while ip -n "$TB_APP" link show vt0 >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "$label: vt0 still there 5 s after the SIGKILL"
    sleep 0.02
  done
  if [ "$auto" = yes ]; then
    n=$(ip -n "$TB_APP" rule | grep -c 'lookup 2022' || true)
    [ "$n" -ge 1 ] || fail "$label: the SIGKILL left no rules (the restart proves nothing)"
    [ -s "$VT_TMP/routes.state" ] || fail "$label: the SIGKILL left no state file"
    log "$label: left by the kill: $(ip -n "$TB_APP" rule | grep -c '^900[0-2]:') v4 + $(ip -n "$TB_APP" -6 rule | grep -c '^900[0-2]:') v6 rules, $(grep -c '^r' "$VT_TMP/routes.state") state lines (rules and routes); table 2022 now: '$(ip -n "$TB_APP" route show table 2022)'"
    if [ "$lose" = yes ]; then rm -f "$VT_TMP/routes.state"; log "$label: state file deleted"; fi
  fi

  # ---- the same config again
  tun_start "$label-2" "$cfg" "$auto"
  ms=$(( ($(date +%s%N) - tk) / 1000000 ))
  touch "$marker"
  log "$label: restarted, up ${ms} ms after the kill"
  if [ "$auto" = yes ]; then
    grep -E 'ERROR|rollback' "$TUN_LOG" && fail "$label: the restart logged route errors"
    if [ "$lose" = yes ]; then
      n=$(grep -c 'already existed; taking it over' "$TUN_LOG" || true)
      [ "$n" -ge 1 ] || fail "$label: no rule was taken over although the state file was lost"
      log "$label: $n leftover rules taken over (state file lost)"
    else
      grep -q 'auto_route: removed [1-9][0-9]* leftover rules and routes' "$TUN_LOG" ||
        fail "$label: the restart did not recover the leftovers"
      grep -q 'already existed' "$TUN_LOG" && fail "$label: entries existed after the recovery"
      log "$label: $(grep -o 'removed [0-9]* leftover rules and routes' "$TUN_LOG")"
    fi
    policy "$VT_TMP/$label-recovered.txt"
    same_as "$VT_TMP/$label-applied.txt" "$VT_TMP/$label-recovered.txt" \
      "$label: rules/table 2022 after the restart differ from the first start (duplicates or missing)"
  fi

  # ---- new flows through the new instance
  t0=$(date +%s%N)
  curl_ok "$label: TCP v4" "http://$TB_WEB4/"
  curl_ok "$label: TCP v6" "http://[$TB_WEB6]/"
  udp_ok "$label: UDP v4" "$TB_WEB4"
  udp_ok "$label: UDP v6" "[$TB_WEB6]"
  log "$label: TCP+UDP v4+v6 through the new instance in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
  [ "$load" = none ] || down_ok "$label" "$TB_WEB4"
  if [ "$full" = yes ]; then
    down_ok "$label" "[$TB_WEB6]"
    t0=$(date +%s%N)
    out=$(in_app timeout 30 python3 "$VT_TMP/upload.py" "$TB_WEB4:9001" "$VT_TMP/bulk.bin" 1e12 20) ||
      fail "$label: the ${bulk_mb} MiB upload failed: $out"
    [ "$out" = "done sent=$((bulk_mb << 20)) answer=$want_bulk" ] || fail "$label: upload corrupt or short: $out"
    log "$label: ${bulk_mb} MiB up to $TB_WEB4 intact in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
  fi
  # ---- the transfers cut by the kill end
  for app in upload download; do
    local pid=$upload
    [ $app = download ] && pid=$download
    [ -n "$pid" ] || continue
    wait_done "$pid" "$label-$app" 20
    out=$(cat "$VT_TMP/$label-$app.log")
    # The app's last line is its result: the log's mtime is when it ended.
    ms=$(( ($(date -r "$VT_TMP/$label-$app.log" +%s%N) - tk) / 1000000 ))
    [ $RC -ne 0 ] && [ $RC -ne 124 ] && [[ "$out" == error=* ]] ||
      fail "$label: the $app cut by the kill ended with exit $RC: $out"
    log "$label: $app cut by the kill ended ${ms} ms after it: $out"
  done

  if [ -n "$pings" ]; then
    wait_done "$pings" "$label-pings" 15
    pings_ok "$VT_TMP/$label-pings.log" "$label: UDP socket across the restart (after = since the restart)"
  fi
  log "$label: new instance: $(fd_count "$TUN_PID") fds, RSS $(rss_kib "$TUN_PID") KiB"

  # ---- SIGTERM: back to the state before the first start
  local rc=0
  stop_pid "$TUN_PID" 10 || rc=$?
  [ $rc -eq 0 ] || fail "$label: vless-tun exited $rc on SIGTERM"
  grep -E ' ERROR |Sanitizer|runtime error|terminate called' "$TUN_LOG" && fail "$label: errors in the log"
  snapshot "$VT_TMP/$label-after.txt"
  same_as "$VT_TMP/before.txt" "$VT_TMP/$label-after.txt" \
    "$label: ns app after SIGTERM differs from before the first start"
  log "$label: SIGTERM left ns app exactly as before (rules, routes, links, addresses, nft)"
}

run autoroute yes no full
run lost-state yes yes none
run manual no no some
log "PASS in $(( $(date +%s) - T0 )) s"
