#!/usr/bin/env bash
# HTTP framing (RFC 9110/9112) that h2o leaves to berth: Host and Content-Length rules, 405 with Allow.
. "$(dirname "$0")/lib.sh"

start_berth

# raw REQUEST... : send each request (Python escapes such as \r\n) on one new connection, half-close, and print
# what came back until the server closed it (or 3 s passed); "closed" or "open" on the last line.
raw() {
    "$PYTHON" - "$PORT" "$@" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
for r in sys.argv[2:]:
    s.sendall(r.encode().decode("unicode_escape").encode("latin-1"))
s.settimeout(3)
out, state = b"", "open"
try:
    while True:
        d = s.recv(65536)
        if not d:
            state = "closed"
            break
        out += d
except socket.timeout:
    pass
sys.stdout.write(out.decode("latin-1") + "\n" + state + "\n")
PY
}
# status OUTPUT : the status codes of the answers, space-separated
statuses() { grep -oE '^HTTP/1\.[01] [0-9]+' <<<"$1" | cut -d' ' -f2 | tr '\n' ' ' | sed 's/ $//'; }

out=$(raw 'GET /v2/ HTTP/1.1\r\nHost: a\r\n\r\n')
is "HTTP/1.1 with a Host -> 200, connection kept" "$(statuses "$out") $(tail -n 1 <<<"$out")" "200 open"

out=$(raw 'GET /v2/ HTTP/1.1\r\nUser-Agent: x\r\n\r\n')
is "HTTP/1.1 without Host -> 400" "$(statuses "$out")" 400
like "... in the spec's error format" "$out" '"code":"UNSUPPORTED","message":"an HTTP/1.1 request needs a Host header"'
is "... and the connection is closed" "$(tail -n 1 <<<"$out")" closed

out=$(raw 'GET /v2/ HTTP/1.0\r\n\r\n')
is "HTTP/1.0 without Host -> 200" "$(statuses "$out")" 200

out=$(raw 'GET /v2/ HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\nGET /v2/ HTTP/1.1\r\nHost: a\r\n\r\n')
is "two Host headers -> 400, and the pipelined request after it is not read" "$(statuses "$out")" 400
like "... saying why" "$out" 'more than one Host header'

mkrand "$T/five" 5
out=$(raw 'POST /v2/framing/a/blobs/uploads/?digest=sha256:0 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!')
is "two different Content-Lengths -> 400" "$(statuses "$out")" 400
like "... saying why" "$out" 'conflicting Content-Length headers'

out=$(raw 'POST /v2/framing/a/blobs/uploads/ HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n')
is "Content-Length beside Transfer-Encoding -> 400" "$(statuses "$out")" 400
is "... and the connection is closed" "$(tail -n 1 <<<"$out")" closed

out=$(raw 'POST /v2/framing/a/blobs/uploads/ HTTP/1.1\r\nHost: a\r\nContent-Length: 5+10\r\n\r\nhello')
is "Content-Length: 5+10 -> 400" "$(statuses "$out")" 400
api GET /v2/framing/a/tags/list
is "nothing was created by the refused requests" "$STATUS" 404

# the same request, correctly framed, works (so the tests above fail for the framing alone)
out=$(raw 'POST /v2/framing/a/blobs/uploads/ HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\nGET /v2/ HTTP/1.1\r\nHost: a\r\n\r\n')
is "a well-framed POST and a pipelined GET -> 202 200" "$(statuses "$out")" "202 200"

# --- 405 names the allowed methods
allow_is() { # METHOD PATH ALLOW
    api "$1" "$2"
    is "$1 $2 -> 405" "$STATUS" 405
    is "$1 $2: Allow: $3" "$(hdr Allow)" "$3"
}
allow_is POST /v2/ "GET, HEAD"
allow_is PUT /v2/framing/a/tags/list "GET, HEAD"
allow_is GET /v2/framing/a/blobs/uploads/ "POST"
allow_is PUT "/v2/framing/a/blobs/$(random_digest)" "GET, HEAD, DELETE"
allow_is POST /v2/framing/a/manifests/latest "GET, HEAD, PUT, DELETE"
allow_is POST /healthz "GET, HEAD"
allow_is DELETE /metrics "GET, HEAD"
allow_is PUT /token "GET, POST"
api POST /v2/ --http2-prior-knowledge
is "HTTP/2: POST /v2/ -> 405 with Allow" "$STATUS $(hdr Allow)" "405 GET, HEAD"

done_testing
