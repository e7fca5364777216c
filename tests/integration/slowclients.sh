#!/usr/bin/env bash
# Slow and idle clients cannot lock others out: a cap per client address, a deadline for request heads, a
# minimum body rate (a steady slow upload still succeeds), an idle timeout between requests, and a descriptor
# limit raised at start-up. The limits are lowered here so that the test takes seconds.
. "$(dirname "$0")/lib.sh"

ulimit -Sn 1024 # a soft limit below the hard one: berth raises it
hard=$(ulimit -Hn)
start_berth BERTH_HTTP_HEADER_TIMEOUT=2s BERTH_HTTP_MIN_RATE=50KiB BERTH_HTTP_IDLE_TIMEOUT=3s \
    BERTH_HTTP_MAX_CONNECTIONS_PER_ADDRESS=20
is "berth raised its descriptor limit to the hard limit ($hard)" \
    "$(awk '/Max open files/ {print $4}' "/proc/$BERTH_PID/limits")" "$hard"

if ! curl -s -o /dev/null --interface 127.0.0.2 "$URL/healthz"; then
    skip_all "cannot connect from 127.0.0.2"
fi

# slowloris N SECONDS SOURCE : open N connections from SOURCE that each send one byte of a request head every
# 0.5 s; print how many the server accepted (it did not close them at once) and, after SECONDS, how many it
# had closed by then.
slowloris() {
    "$PYTHON" - "$PORT" "$1" "$2" "$3" <<'PY'
import socket, sys, time
port, n, secs, src = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
head = b"GET /v2/ HTTP/1.1\r\nHost: x\r\nUser-Agent: slow\r\n" + b"X-Pad: " + b"a" * 200
socks = []
for i in range(n):
    s = socket.socket()
    s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    s.setblocking(False)
    socks.append(s)
time.sleep(0.5)
def closed(s):
    try:
        return s.recv(4096) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
accepted = sum(1 for s in socks if not closed(s))
alive = [s for s in socks]
end = time.time() + secs
i = 0
while time.time() < end:
    for s in list(alive):
        try:
            s.send(head[i % len(head):i % len(head) + 1])
        except OSError:
            alive.remove(s)
    i += 1
    time.sleep(0.5)
gone = sum(1 for s in socks if s not in alive or closed(s))
print(accepted, gone)
PY
}

# --- one address opens 200 trickling connections while another client pushes and pulls
slowloris 200 6 127.0.0.2 >"$T/loris" &
loris=$!
sleep 1
mkrand "$T/blob" 300000
push_blob slow/a "$T/blob"
is "while 127.0.0.2 holds its connections, a push from 127.0.0.1 -> 201" "$STATUS" 201
api GET "/v2/slow/a/blobs/$(sha256_of "$T/blob")"
check "... and a pull gets the exact bytes" same_bytes "$BODY" "$T/blob"
wait $loris
read -r accepted gone <"$T/loris"
is "of 200 connections from one address, 20 were accepted (http.max_connections_per_address)" "$accepted" 20
is "... and within 6 s every one was closed (head not complete within http.header_timeout)" "$gone" 200
check "the log says why" grep -q 'request head not complete within http.header_timeout' "$SRV/berth.log"
api GET /metrics
like "/metrics counts connections refused for their address" "$(cat "$BODY")" \
    'berth_connections_refused_total\{reason="address"\} 1[0-9][0-9]'
like "/metrics counts connections closed for a slow head" "$(cat "$BODY")" \
    'berth_connections_closed_total\{reason="slow_head"\} 20'

# --- a body arriving at 1 KiB/s is cut off; a steady one at 100 KiB/s (above http.min_rate) is not
start_upload slow/a
"$PYTHON" - "$PORT" "$(path_of "$UPLOAD_URL")" >"$T/trickle" <<'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(("PATCH %s HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n"
           "Content-Type: application/octet-stream\r\n\r\n" % sys.argv[2]).encode())
t0, sent = time.time(), 0
try:
    while time.time() - t0 < 15:
        s.send(b"x" * 1024)
        sent += 1024
        time.sleep(1)
    print("not closed")
except OSError:
    print("closed after %.0f s" % (time.time() - t0))
PY
like "a PATCH body at 1 KiB/s is cut off (http.min_rate 50 KiB/s over 2 s windows)" "$(cat "$T/trickle")" \
    '^closed after [2-9] s'

mkrand "$T/steady" $((600 * 1024))
start_upload slow/a
t0=$(date +%s)
api PUT "$(with_query "$UPLOAD_URL" "digest=$(sha256_of "$T/steady")")" --limit-rate 100k \
    -H 'Content-Type: application/octet-stream' --data-binary "@$T/steady"
is "a 600 KiB upload at a steady 100 KiB/s (about 6 s, three windows) -> 201" "$STATUS" 201
check "... it did take several windows ($(($(date +%s) - t0)) s)" test $(($(date +%s) - t0)) -ge 4

# --- a keep-alive connection idle longer than http.idle_timeout is closed; one in use is not
"$PYTHON" - "$PORT" >"$T/idle" <<'PY'
import socket, sys, time
def req(s):
    s.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n")
    return s.recv(65536).startswith(b"HTTP/1.1 200")
busy = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
idle = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
ok = req(busy) and req(idle)
for i in range(6):
    time.sleep(1)
    ok = ok and req(busy)
idle.settimeout(1)
try:
    gone = idle.recv(1) == b""
except OSError:
    gone = True
print("busy-ok" if ok else "busy-failed", "idle-closed" if gone else "idle-open")
PY
is "after 6 s: the connection used every second still works, the idle one was closed" "$(cat "$T/idle")" \
    "busy-ok idle-closed"

stop_berth
done_testing
