#!/usr/bin/env bash
# Upload bodies on HTTP/1 are read by berth as they arrive (src/http/stream.h), not buffered whole by h2o: a large
# push holds little memory and no temporary file; chunked bodies, 100-continue, Content-Range and pipelining work;
# a body nobody takes is thrown away and the connection stays usable; a client that vanishes mid-body loses only
# that chunk; a stalled body is cut by the watchdog.
. "$(dirname "$0")/lib.sh"

start_berth BERTH_HTTP_HEADER_TIMEOUT=2s BERTH_HTTP_MIN_RATE=50KiB BERTH_HTTP_MAX_BODY_SIZE=700MiB

# --- a 512 MiB monolithic push: the server's memory stays small, and no temp file holds the body
big=$T/big
mkrand "$big" $((512 << 20))
d=$(sha256_of "$big")
start_upload big/one || fail "start upload"
hwm_before=$(awk '/VmHWM/ {print $2}' "/proc/$BERTH_PID/status")
(
    peak=0
    while kill -0 "$BERTH_PID" 2>/dev/null && [[ ! -e $T/stop-sampling ]]; do
        # h2o's temporary body files: unlinked at once, so seen only among the open descriptors
        f=$(ls -l "/proc/$BERTH_PID/fd" 2>/dev/null | grep -c '/tmp/body\..*(deleted)')
        ((f > peak)) && peak=$f
        sleep 0.05
    done
    echo "$peak" >"$T/tempfiles"
) &
sampler=$!
api PUT "$(with_query "$UPLOAD_URL" "digest=$d")" -H 'Content-Type: application/octet-stream' -H 'Expect:' \
    --data-binary "@$big"
touch "$T/stop-sampling"
wait "$sampler"
is "512 MiB monolithic PUT stored" "$STATUS" 201
is "Docker-Content-Digest" "$(hdr Docker-Content-Digest)" "$d"
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$BERTH_PID/status")
diag "VmHWM before ${hwm_before} kB, after ${hwm} kB"
check "berth's peak memory grew by less than 64 MiB for a 512 MiB body ($hwm_before -> $hwm kB)" \
    test $((hwm - hwm_before)) -lt 65536
is "no temporary body file was made" "$(cat "$T/tempfiles")" 0
check "the stored blob is byte-exact" cmp -s "$big" "$(blob_path "$d")"

# --- POST ?digest= with the whole body (a single request)
small=$T/small
mkrand "$small" $((3 << 20))
ds=$(sha256_of "$small")
api POST "/v2/big/two/blobs/uploads/?digest=$ds" -H 'Expect:' --data-binary "@$small"
is "POST ?digest= with a 3 MiB body" "$STATUS" 201
api GET "/v2/big/two/blobs/$ds"
check "and it reads back" cmp -s "$small" "$BODY"

# --- chunked transfer encoding with Expect: 100-continue (how docker and containerd send layers)
start_upload big/three || fail "start upload"
api PATCH "$UPLOAD_URL" -H 'Transfer-Encoding: chunked' -H 'Expect: 100-continue' -T "$small"
is "chunked PATCH with Expect" "$STATUS" 202
is "Range after it" "$(hdr Range)" "0-$(((3 << 20) - 1))"
like "the client was told to go on" "$(head -1 "$HDRS")" '100 Continue'
api PUT "$(with_query "$(resolve "$(hdr Location)")" "digest=$ds")"
is "closing PUT" "$STATUS" 201

# --- chunks with Content-Range, in order, then one out of order
start_upload big/four || fail "start upload"
head -c 1000000 "$small" >"$T/c1"
tail -c +1000001 "$small" >"$T/c2"
api PATCH "$UPLOAD_URL" -H 'Content-Type: application/octet-stream' -H 'Content-Range: 0-999999' \
    --data-binary "@$T/c1"
is "first ranged chunk" "$STATUS" 202
url=$(resolve "$(hdr Location)")
api PATCH "$url" -H 'Content-Type: application/octet-stream' -H 'Content-Range: 0-999999' --data-binary "@$T/c1"
is "a chunk that does not continue the upload" "$STATUS" 416
is "Range still where it was" "$(hdr Range)" "0-999999"
api PATCH "$url" -H 'Content-Type: application/octet-stream' \
    -H "Content-Range: 1000000-$(((3 << 20) - 1))" --data-binary "@$T/c2"
is "second ranged chunk" "$STATUS" 202
api PUT "$(with_query "$(resolve "$(hdr Location)")" "digest=$ds")"
is "closing PUT after ranged chunks" "$STATUS" 201

# --- raw HTTP/1 exchanges: refused bodies, pipelining, a vanished client, a broken encoding, a stall
raw() { "$PYTHON" - "$PORT" "$@" <<'PY'
import socket, sys, time
port, case = int(sys.argv[1]), sys.argv[2]
args = sys.argv[3:]
def conn():
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(10)
    return s
def read_response(s, buf=b""):
    """one response: (status, headers dict, body, rest)"""
    while b"\r\n\r\n" not in buf:
        d = s.recv(65536)
        if not d:
            raise EOFError("closed before a response")
        buf += d
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    h = {}
    for l in lines[1:]:
        k, _, v = l.partition(":")
        h[k.strip().lower()] = v.strip()
    n = int(h.get("content-length", "0"))
    while len(rest) < n:
        d = s.recv(65536)
        if not d:
            break
        rest += d
    return status, h, rest[:n], rest[n:]
def closed(s, wait=5):
    s.settimeout(wait)
    try:
        while True:
            d = s.recv(65536)
            if not d:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False
def head(method, path, extra=""):
    return f"{method} {path} HTTP/1.1\r\nHost: x\r\n{extra}\r\n".encode()

if case == "refused-then-reuse":
    # a 4 MiB PATCH to an unknown session: answered, the body thrown away, the connection reused
    s = conn()
    body = b"x" * (4 << 20)
    s.sendall(head("PATCH", args[0], f"Content-Length: {len(body)}\r\n") + body[:65536])
    st, h, b, rest = read_response(s)
    s.sendall(body[65536:])
    s.sendall(head("GET", "/v2/"))
    st2, _, _, _ = read_response(s, rest)
    print(st, b.decode().count("BLOB_UPLOAD_UNKNOWN"), st2)
elif case == "refused-expect":
    # with Expect, the client is answered at once and never sends the body; the connection then closes
    s = conn()
    s.sendall(head("PATCH", args[0], "Content-Length: 1048576\r\nExpect: 100-continue\r\n"))
    st, h, b, rest = read_response(s)
    print(st, h.get("connection", ""), closed(s))
elif case == "pipelined":
    # a PATCH and a GET of its status in one write: both answered, in order
    data = b"y" * 300000
    s = conn()
    s.sendall(head("PATCH", args[0], f"Content-Length: {len(data)}\r\n") + data + head("GET", args[0]))
    st, h, b, rest = read_response(s)
    st2, h2, _, _ = read_response(s, rest)
    print(st, h.get("range"), st2, h2.get("range"))
elif case == "vanish":
    # half a 2 MiB chunk, then the client goes away
    s = conn()
    s.sendall(head("PATCH", args[0], "Content-Length: 2097152\r\n") + b"z" * 1000000)
    time.sleep(0.3)
    s.close()
    print("gone")
elif case == "bad-chunked":
    s = conn()
    s.sendall(head("PATCH", args[0], "Transfer-Encoding: chunked\r\n") + b"10\r\n0123456789abcdef\r\nzz\r\n")
    st, h, b, rest = read_response(s)
    print(st, h.get("connection", ""), closed(s))
elif case == "too-large":
    # a chunked body past http.max_body_size (700 MiB here): 413 and the connection closes
    s = conn()
    s.sendall(head("PATCH", args[0], "Transfer-Encoding: chunked\r\n"))
    chunk = b"%x\r\n" % (8 << 20) + b"q" * (8 << 20) + b"\r\n"
    try:
        for _ in range(100):
            s.sendall(chunk)
    except (BrokenPipeError, ConnectionResetError):
        pass
    try:
        st, h, b, rest = read_response(s)
        print(st)
    except (EOFError, ConnectionResetError):
        print("closed")
elif case == "stall":
    # a body that stops arriving: closed by the watchdog (min rate over header_timeout), well before idle_timeout
    s = conn()
    s.sendall(head("PATCH", args[0], "Content-Length: 1000000\r\n") + b"w" * 100000)
    t = time.time()
    print(closed(s, 20), int(time.time() - t < 15))
PY
}

start_upload big/five || fail "start upload"
five=$UPLOAD_URL
read -r st n st2 <<<"$(raw refused-then-reuse "/v2/big/five/blobs/uploads/00000000-0000-4000-8000-000000000000")"
is "a body for an unknown session: 404" "$st" 404
is "with the spec's error code" "$n" 1
is "the body was thrown away and the connection serves the next request" "$st2" 200

read -r st conn closed <<<"$(raw refused-expect "/v2/big/five/blobs/uploads/00000000-0000-4000-8000-000000000000")"
is "Expect and an unknown session: 404 at once" "$st" 404
is "and the connection closes after it" "$closed" True

read -r st range st2 range2 <<<"$(raw pipelined "$(path_of "$five")")"
is "pipelined PATCH" "$st" 202
is "its Range" "$range" "0-299999"
is "pipelined GET after it" "$st2" 204
is "sees the chunk" "$range2" "0-299999"

raw vanish "$(path_of "$five")" >/dev/null
sleep 0.5
api GET "$five"
is "a client that vanished mid-chunk: the session is where it was" "$(hdr Range)" "0-299999"
head -c 300000 /dev/zero | tr '\0' y >"$T/ys"
head -c 100000 /dev/urandom >"$T/tail"
cat "$T/ys" "$T/tail" >"$T/five"
api PATCH "$five" -H 'Content-Type: application/octet-stream' -H 'Content-Range: 300000-399999' \
    --data-binary "@$T/tail"
is "the chunk can be sent again" "$STATUS" 202
api PUT "$(with_query "$five" "digest=$(sha256_of "$T/five")")"
is "and the upload finishes with the right digest" "$STATUS" 201

start_upload big/six || fail "start upload"
read -r st conn closed <<<"$(raw bad-chunked "$(path_of "$UPLOAD_URL")")"
is "a broken chunked encoding: 400" "$st" 400
is "and the connection closes" "$closed" True
api GET "$UPLOAD_URL"
is "nothing of it was kept" "$(hdr Range)" "0-0"

start_upload big/seven || fail "start upload"
is "a chunked body over http.max_body_size is refused" "$(raw too-large "$(path_of "$UPLOAD_URL")")" 413
api GET "$UPLOAD_URL"
is "and nothing of it kept" "$(hdr Range)" "0-0"

start_upload big/eight || fail "start upload"
read -r closed quick <<<"$(raw stall "$(path_of "$UPLOAD_URL")")"
is "a stalled body is closed by the watchdog" "$closed" True
is "within the min-rate window" "$quick" 1
sleep 0.3
api GET "$UPLOAD_URL"
is "and its partial chunk is not kept" "$(hdr Range)" "0-0"

# --- HTTP/1.0 and HTTP/2 uploads still go through h2o
start_upload big/nine || fail "start upload"
api PUT "$(with_query "$UPLOAD_URL" "digest=$ds")" --http1.0 --data-binary "@$small"
is "an HTTP/1.0 upload (buffered by h2o)" "$STATUS" 201
start_upload big/ten || fail "start upload"
api PUT "$(with_query "$UPLOAD_URL" "digest=$ds")" --http2-prior-knowledge --data-binary "@$small"
is "an HTTP/2 upload (buffered by h2o)" "$STATUS" 201

done_testing
