#!/usr/bin/env bash
# What a client can make berth hold, and failures that must reach the client as an answer:
#   - upload sessions left waiting hold no file descriptor (hundreds of them under a limit of 160 descriptors);
#   - out of descriptors is answered 503 UNAVAILABLE (with Retry-After), never 404, and logged.
. "$(dirname "$0")/lib.sh"

# A small descriptor limit, soft and hard (berth raises its soft limit to the hard one at start-up).
ulimit -n 160 || skip_all "cannot lower the descriptor limit"
start_berth
is "berth runs with 160 descriptors at most" "$(awk '/Max open files/ {print $4}' "/proc/$BERTH_PID/limits")" 160

mkrand "$T/blob" 5000
push_blob res/a "$T/blob"
is "a blob pushed" "$STATUS" 201
D=$(sha256_of "$T/blob")

# 400 sessions started and left waiting, over one keep-alive connection
"$PYTHON" - "$PORT" 400 >"$T/sessions" <<'PY'
import http.client, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]))
for i in range(int(sys.argv[2])):
    c.request("POST", "/v2/res/a/blobs/uploads/", body=b"", headers={"Content-Length": "0"})
    r = c.getresponse(); r.read()
    print(r.status, r.getheader("Location"))
PY
is "400 upload sessions started -> 202 each" "$(cut -d' ' -f1 "$T/sessions" | sort | uniq -c | xargs)" "400 202"
nfd=$(find "/proc/$BERTH_PID/fd" -mindepth 1 | wc -l)
check "... and berth holds fewer than 100 descriptors ($nfd): waiting sessions hold none" test "$nfd" -lt 100

api GET "/v2/res/a/blobs/$D"
is "GET of the blob -> 200" "$STATUS" 200
check "... the exact bytes" same_bytes "$BODY" "$T/blob"

for n in 1 400; do
    loc=$(sed -n "${n}p" "$T/sessions" | cut -d' ' -f2)
    mkrand "$T/chunk$n" 3000
    api PATCH "$loc" -H 'Content-Type: application/octet-stream' --data-binary "@$T/chunk$n"
    is "session $n: a chunk -> 202" "$STATUS" 202
    api PUT "$(with_query "$(resolve "$(hdr Location)")" "digest=$(sha256_of "$T/chunk$n")")"
    is "session $n: finished -> 201" "$STATUS" 201
    api GET "/v2/res/a/blobs/$(sha256_of "$T/chunk$n")"
    check "session $n: the blob is served" same_bytes "$BODY" "$T/chunk$n"
done
stop_berth

# Out of descriptors when opening the blob (strace makes that one open fail with EMFILE): 503, not 404.
if command -v strace >/dev/null && strace -f -qq -o /dev/null true 2>/dev/null; then
    blobfile=$(blob_path "$D")
    real=$BERTH
    cat >"$T/emfile" <<EOS
#!/bin/sh
# LeakSanitizer cannot run under ptrace: in a sanitizer build, leaks are checked by the other tests
exec env ASAN_OPTIONS="\${ASAN_OPTIONS:+\$ASAN_OPTIONS:}detect_leaks=0" \\
    strace -I never -f -qq -o /dev/null -P "$blobfile" -e trace=openat -e inject=openat:error=EMFILE "$real" "\$@"
EOS
    chmod +x "$T/emfile"
    BERTH=$T/emfile
    start_berth_again
    BERTH=$real
    api GET "/v2/res/a/blobs/$D"
    is "GET of a blob whose file cannot be opened (EMFILE) -> 503 UNAVAILABLE, not 404" "$STATUS $(err_code)" \
        "503 UNAVAILABLE"
    like "... saying why" "$(jq -r '.errors[0].message' "$BODY")" 'Too many open files'
    like "... with Retry-After" "$(hdr Retry-After)" '^[0-9]+$'
    api HEAD "/v2/res/a/blobs/$D"
    is "HEAD (answered from the database) -> 200" "$STATUS" 200
    check "the failure is logged" grep -q 'cannot open the blob: Too many open files' "$SRV/berth.log"
    kill -TERM "$(pgrep -P "$BERTH_PID")" # berth itself: strace ignores signals and exits with berth's status
    wait_berth
else
    pass "EMFILE on a blob: # SKIP strace cannot trace here"
    for i in 1 2 3 4 5; do pass "# SKIP"; done
fi

done_testing
