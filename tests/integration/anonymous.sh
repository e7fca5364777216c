#!/usr/bin/env bash
# What a client without credentials can make berth hold (mode private). An upload's body on HTTP/1 is read by
# berth only once the request was allowed (src/http/stream.h): a refused one is answered 401 at once, before its
# body. Other bodies h2o reads whole before berth sees the request; there the connection watchdog refuses an
# HTTP/1 body without valid credentials once 1 MiB of it has arrived, instead of after all of it. An authenticated
# client pushing (token or cached password) at the same rate is not cut, and pushes and pulls go on meanwhile.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/authlib.bash"

start_berth BERTH_MODE=private BERTH_ADMIN_PASSWORD="$ADMIN_PW" BERTH_HTTP_THREADS=4
adduser alice alice-pw-1 >/dev/null
b repo grant 'alice/*' alice pull,push >/dev/null
mkrand "$T/big" $((80 * 1024 * 1024))

# slow_put AUTH... : PUT 80 MiB at 16 MB/s (5 s) to a new upload session; prints "status bytes-sent seconds"
slow_put() {
    local url=$1
    shift
    curl -s -o /dev/null -w '%{http_code} %{size_upload} %{time_total}' --limit-rate 16M -X PATCH -H 'Expect:' \
        -H 'Content-Type: application/octet-stream' --data-binary "@$T/big" "$@" "$url"
}

# --- anonymous: an upload is answered 401 before its body; another body is cut at about 1 MiB
read -r st sent secs < <(slow_put "$URL/v2/alice/x/blobs/uploads/00000000-0000-4000-8000-000000000000")
is "an anonymous 80 MiB PATCH at 16 MB/s is answered 401 at once" "$st" 401
check "... after less than a third of it was sent ($sent bytes, $secs s)" test "$sent" -lt $((28 * 1024 * 1024))
st=$(curl -s -o /dev/null -w '%{http_code}' --limit-rate 16M -X PUT -H 'Expect:' \
    -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' --data-binary "@$T/big" \
    "$URL/v2/alice/x/manifests/v1")
is "an anonymous 80 MiB manifest PUT gets no answer: its connection is closed" "$st" 000
api GET /metrics -u admin:"$ADMIN_PW"
like "/metrics counts it" "$(cat "$BODY")" 'berth_connections_closed_total\{reason="anonymous_body"\} 1'
check "the log says why" grep -q 'a request body without valid credentials' "$SRV/berth.log"

# --- a wrong Bearer token is no better
read -r st sent secs < <(slow_put "$URL/v2/alice/x/blobs/uploads/00000000-0000-4000-8000-000000000000" \
    -H 'Authorization: Bearer eyJhbGciOiJFUzI1NiJ9.e30.AAAA')
is "a forged Bearer token: refused the same way" "$st" 401
check "... early ($sent bytes)" test "$sent" -lt $((28 * 1024 * 1024))

# --- with a valid token the same upload goes through
get_token alice alice-pw-1 "repository:alice/x:pull,push"
check "alice gets a push token" test -n "$TOKEN"
bearer POST /v2/alice/x/blobs/uploads/ "$TOKEN"
is "alice starts an upload -> 202" "$STATUS" 202
loc=$(resolve "$(hdr Location)")
read -r st sent secs < <(slow_put "$loc" -H "Authorization: Bearer $TOKEN")
is "alice's 80 MiB PATCH at 16 MB/s with her token -> 202" "$st" 202
is "... all of it sent" "$sent" $((80 * 1024 * 1024))

# --- Basic credentials that berth has verified (cached) pass too, whichever event loop checked them and whichever
# gets the upload's connection (4 loops, 6 connections); unverified ones are refused early
api GET /v2/ -u alice:alice-pw-1
is "alice's password checked once (GET /v2/ -> 200)" "$STATUS" 200
mkrand "$T/mid" $((6 * 1024 * 1024))
pids=()
for i in 1 2 3 4 5 6; do
    api POST /v2/alice/y/blobs/uploads/ -u alice:alice-pw-1
    loc=$(resolve "$(hdr Location)")
    curl -s -o /dev/null -w '%{http_code} %{size_upload}\n' --limit-rate 3M -X PATCH -H 'Expect:' \
        -H 'Content-Type: application/octet-stream' --data-binary "@$T/mid" -u alice:alice-pw-1 "$loc" >"$T/patch.$i" &
    pids+=($!)
done
wait "${pids[@]}"
for i in 1 2 3 4 5 6; do
    is "PATCH $i of 6 MiB at 3 MB/s with her (cached) password -> 202, all sent" "$(cat "$T/patch.$i")" "202 $((6 * 1024 * 1024))"
done
read -r st sent secs < <(slow_put "$loc" -u alice:not-her-password)
is "a PATCH with a wrong password: refused early" "$st" 401
check "... before a third of it was sent ($sent bytes)" test "$sent" -lt $((28 * 1024 * 1024))

done_testing
