#!/usr/bin/env bash
# vless-server's drain after both FINs follows progress (docs/server.md,
# `drain_timeout`): once both directions ended, a slow reader gets every byte
# however long the flush takes, as long as it keeps reading at least every
# drain_timeout; one that stops reading is closed drain_timeout after its
# last progress (`close=flush stalled: N bytes queued, ...`).
#
#   ns app (tools/vless_probe.py: half-closes, then reads slowly or stalls)
#   -- ns srv (vless-server, plain TCP, drain_timeout = 1s)
#   -- ns web (a source peer: reads the request to EOF, sends a 512 KiB file, closes)
#
# ns srv and ns app get small TCP buffers (per-namespace sysctls): otherwise
# the kernel's socket buffers take the whole file at once and the server's
# own queue, which drain_timeout is about, never holds a byte. The file is
# 512 KiB, the server's high watermark: the server reads all of it and the
# target's FIN at once, so the whole flush happens after both FINs.
# About 10 s.
source "$(dirname "$0")/lib.sh"
source "$VT_TOOLS/testbed.sh"
require_root
require_cmd ip python3 sha256sum cmp sysctl
: "${VT_SERVER:?path to vless-server}"

FILE_KIB=512
RATE_KIB=128      # the slow reader: 512 KiB in about 4 s, 4 x drain_timeout
SLOW_PAUSE=0.5    # ... with one pause shorter than drain_timeout
STALL_AT=65536    # the stalled reader stops after 64 KiB ...
STALL_FOR=4       # ... for 4 s, well past drain_timeout

tb_setup drain
for ns in "$TB_SRV" "$TB_APP"; do
  ip netns exec "$ns" sysctl -qw net.ipv4.tcp_wmem="4096 16384 65536" \
    net.ipv4.tcp_rmem="4096 8192 16384"
done

head -c $((FILE_KIB * 1024)) /dev/urandom >"$VT_TMP/file.bin"
file_sha=$(sha_of "$VT_TMP/file.bin")

# The source peer: per connection, reads what the client sends up to its
# FIN, sends the file, closes, and says when ("closed=<Unix time>").
# Bounded: exits after 60 s.
cat >"$VT_TMP/source.py" <<'PY'
import socket, sys, threading, time
host, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
data = open(path, "rb").read()
def serve(c):
    with c:
        c.settimeout(10)
        got, sent = b"", 0
        try:
            while len(got) < 4096:
                b = c.recv(4096)
                if not b: break
                got += b
            c.sendall(data)
            sent = len(data)
        except OSError as e:
            got += (" error=%s" % e).encode()
        print("conn got=%s sent=%d closed=%.3f" % (got.decode(errors="replace"), sent, time.time()),
              flush=True)
t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.bind((host, port)); t.listen(16); t.settimeout(1)
deadline = time.time() + 60
while time.time() < deadline:
    try: c, _ = t.accept()
    except socket.timeout: continue
    threading.Thread(target=serve, args=(c,), daemon=True).start()
PY
start source ip netns exec "$TB_WEB" python3 "$VT_TMP/source.py" "$TB_WEB4" 8000 "$VT_TMP/file.bin"
wait_port "$TB_WEB4" 8000 10 "$TB_WEB"

tb_server_start srv no 'drain_timeout = "1s"'
SLOG="$VT_TMP/srv.log"

# probe TAG ARGS...: the probe's line in $line, its fields in f_* (bytes, end,
# ms, paused_ms, epoch, local).
probe() {
  local tag=$1
  shift
  line=$(in_app timeout 30 python3 "$VT_TOOLS/vless_probe.py" tcp --server "$TB_SRV4:443" \
    --uuid "$TB_UUID" --target "$TB_WEB4:8000" --msg "$tag" --half-close \
    --out "$VT_TMP/$tag.out" --timeout 10 "$@") || fail "$tag: probe failed: $line"
  log "$tag: $line"
  [[ $line =~ ^tcp\ bytes=([0-9]+)\ end=([a-z]+)\ ms=([0-9]+)\ paused_ms=([0-9]+)\ epoch=([0-9.]+)\ local=([0-9.]+:[0-9]+)$ ]] ||
    fail "$tag: unexpected probe line '$line'"
  f_bytes=${BASH_REMATCH[1]} f_end=${BASH_REMATCH[2]} f_ms=${BASH_REMATCH[3]}
  f_paused_ms=${BASH_REMATCH[4]} f_epoch=${BASH_REMATCH[5]} f_local=${BASH_REMATCH[6]}
}
# server_line: the server's line for the probe's connection in $sline, its
# ms= in s_ms.
server_line() {
  local pat="peer=${f_local//./\\.} .* close="
  wait_log "$SLOG" "$pat" 5
  sline=$(grep -E -- "$pat" "$SLOG" | tail -1)
  log "server: ${sline#*conn }"
  [[ $sline =~ \ ms=([0-9]+)\  ]] || fail "no ms= in '$sline'"
  s_ms=${BASH_REMATCH[1]}
}
# peer_closed TAG: when the source peer closed (both FINs were then at hand).
peer_closed() {
  wait_log "$VT_TMP/source.log" "^conn got=$1 sent=" 5
  grep -E "^conn got=$1 sent=" "$VT_TMP/source.log" | sed -E 's/.* closed=//'
}
# ms_between A B: (B - A) in ms for two Unix times.
ms_between() { python3 -c "import sys; print(int((float(sys.argv[2]) - float(sys.argv[1])) * 1000))" "$1" "$2"; }

log "slow reader: $FILE_KIB KiB at $RATE_KIB KiB/s, a ${SLOW_PAUSE}s pause halfway"
probe slow --rate "$RATE_KIB" --pause-at $((FILE_KIB * 512)) --pause "$SLOW_PAUSE"
[ "$f_end" = eof ] || fail "slow: the stream ended with $f_end, want eof"
[ "$f_bytes" -eq $((FILE_KIB * 1024)) ] || fail "slow: got $f_bytes bytes, want $((FILE_KIB * 1024))"
[ "$(sha_of "$VT_TMP/slow.out")" = "$file_sha" ] || fail "slow: what arrived differs from the file"
server_line
[[ $sline =~ close=done ]] || fail "slow: want close=done: $sline"
[[ $sline =~ \ up=4\ down=$((FILE_KIB * 1024))\  ]] || fail "slow: want up=4 down=$((FILE_KIB * 1024)): $sline"
fin=$(peer_closed slow)
end_epoch=$(python3 -c "print($f_epoch + $f_ms / 1000)")
flush_ms=$(ms_between "$fin" "$end_epoch")
# The server closed when its own queue was empty: with the small buffers,
# only the last ~80 KiB (0.6 s at this rate) were in the kernel by then.
server_flush_ms=$(( $(ms_between "$fin" "$f_epoch") + s_ms ))
log "slow: flush after both FINs ${flush_ms} ms at the client, the server's queue emptied after ${server_flush_ms} ms (drain_timeout 1000 ms)"
[ "$flush_ms" -ge 3000 ] || fail "slow: the flush after both FINs took only $flush_ms ms, want >= 3 x drain_timeout"
[ "$server_flush_ms" -ge 2500 ] ||
  fail "slow: the server's queue emptied $server_flush_ms ms after the FINs: the kernel took the bytes, not the server"

log "stalled reader: reads 64 KiB, stops for ${STALL_FOR}s, then reads to the end"
probe stall --pause-at "$STALL_AT" --pause "$STALL_FOR"
case $f_end in eof | reset) ;; *) fail "stall: the stream ended with $f_end" ;; esac
[ "$f_bytes" -ge "$STALL_AT" ] && [ "$f_bytes" -lt $((FILE_KIB * 1024)) ] ||
  fail "stall: got $f_bytes bytes, want more than $STALL_AT and less than the file"
cmp -s -n "$f_bytes" "$VT_TMP/stall.out" "$VT_TMP/file.bin" ||
  fail "stall: the $f_bytes bytes that arrived are not the file's first bytes"
server_line
[[ $sline =~ close=flush\ stalled:\ ([0-9]+)\ bytes\ queued,\ none\ sent\ for\ drain_timeout ]] ||
  fail "stall: want close=flush stalled: $sline"
queued=${BASH_REMATCH[1]}
after_ms=$((s_ms - f_paused_ms))
resume_ms=$((f_ms - f_paused_ms - STALL_FOR * 1000))
log "stall: server closed ${after_ms} ms after the stall began with $queued bytes queued;" \
  "the client got $f_bytes bytes ($f_end) ${resume_ms} ms after it resumed"
# drain_timeout (1 s) after the last progress, seen by a poll that backs off
# to 250 ms; the kernel buffers fill within milliseconds of the stall.
[ "$after_ms" -ge 900 ] && [ "$after_ms" -le 2500 ] ||
  fail "stall: the server closed $after_ms ms after the stall began, want about 1000 (900..2500)"
[ "$queued" -ge 131072 ] || fail "stall: only $queued bytes queued in the server, want >= 128 KiB"
[ "$resume_ms" -le 2000 ] || fail "stall: the end came $resume_ms ms after the client resumed"

n=$(grep -c 'close=flush stalled' "$SLOG" || true)
[ "$n" -eq 1 ] || fail "want one connection closed as stalled, found $n"
log "drain ok"
