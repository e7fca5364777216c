#!/usr/bin/env bash
# A 2 GiB blob, pushed monolithically (POST, then one PUT with the body) and as one streaming PATCH
# followed by an empty PUT, over HTTP/1.1 and over cleartext HTTP/2; each time on a fresh data folder,
# pulled back and compared by sha256.
# LARGE_BLOB_SIZE (default 2G, any `head -c` size) makes it smaller for a quick run; SKIP_LARGE=1 skips.
. "$(dirname "$0")/lib.sh"

[[ ${SKIP_LARGE:-0} == 1 ]] && skip_all "SKIP_LARGE=1"
SIZE_SPEC=${LARGE_BLOB_SIZE:-2G}
API_TIMEOUT=1800 # ASan builds are slow; curl gives up after 30 min per request

BIG=$T/big
# The source file, the stored blob, berth's temporary copy of the request body and its upload data can
# all exist at once: about 4x the size.
need_kib=$(($(numfmt --from=iec "$SIZE_SPEC") * 4 / 1024))
avail_kib=$(df --output=avail -k "$T" | tail -n 1)
((avail_kib > need_kib)) || skip_all "needs $((need_kib / 1024 / 1024)) GiB free under $T, has $((avail_kib / 1024 / 1024))"

openssl enc -aes-128-ctr -pass pass:berth -nosalt </dev/zero 2>/dev/null | head -c "$SIZE_SPEC" >"$BIG"
SIZE=$(size_of "$BIG")
is "(setup) made the large file" "$SIZE" "$(numfmt --from=iec "$SIZE_SPEC")"
D=$(sha256_of "$BIG")
TAIL=$T/tail
tail -c 1000 "$BIG" >"$TAIL"

# pull_and_verify LABEL REPO PROTO... : GET streamed into sha256sum, HEAD, a Range at the end, bytes on disk
pull_and_verify() {
    local label=$1 repo=$2 sum
    shift 2
    sum=$(curl -sS --noproxy '*' --max-time "$API_TIMEOUT" "$@" -D "$HDRS" "$URL/v2/$repo/blobs/$D" | sha256sum | cut -d' ' -f1)
    is "$label: GET -> 200" "$(awk '/^HTTP\// { s = $2 } END { print s }' "$HDRS")" 200
    is "$label: GET body has the pushed sha256" "sha256:$sum" "$D"
    api HEAD "/v2/$repo/blobs/$D" "$@"
    is "$label: HEAD Content-Length" "$STATUS $(hdr Content-Length)" "200 $SIZE"
    api GET "/v2/$repo/blobs/$D" "$@" -H "Range: bytes=$((SIZE - 1000))-"
    is "$label: Range over the last 1000 bytes -> 206" "$STATUS $(hdr Content-Range)" "206 bytes $((SIZE - 1000))-$((SIZE - 1))/$SIZE"
    check "$label: ... the last 1000 bytes" same_bytes "$BODY" "$TAIL"
    check "$label: the blob file on disk equals the source" same_bytes "$(blob_path "$D")" "$BIG"
}

for proto in --http1.1 --http2-prior-knowledge; do
    p=${proto#--}
    p=${p%-prior-knowledge}

    # ---- monolithic: POST, then one PUT with the whole body
    start_berth
    start_upload large/mono "$proto"
    t0=$SECONDS
    api PUT "$(with_query "$UPLOAD_URL" "digest=$D")" "$proto" -H 'Expect:' \
        -H 'Content-Type: application/octet-stream' -T "$BIG"
    is "$p monolithic PUT of $SIZE_SPEC -> 201" "$STATUS" 201
    diag "$p monolithic PUT took $((SECONDS - t0)) s"
    is "$p monolithic: Docker-Content-Digest" "$(hdr Docker-Content-Digest)" "$D"
    pull_and_verify "$p monolithic" large/mono "$proto"
    stop_berth
    rm -rf "$DATA"

    # ---- one streaming PATCH with the whole body, then an empty PUT
    start_berth
    start_upload large/patch "$proto"
    t0=$SECONDS
    api PATCH "$UPLOAD_URL" "$proto" -H 'Expect:' -H 'Content-Type: application/octet-stream' -T "$BIG"
    is "$p PATCH of $SIZE_SPEC -> 202 Range: 0-$((SIZE - 1))" "$STATUS $(hdr Range)" "202 0-$((SIZE - 1))"
    diag "$p PATCH took $((SECONDS - t0)) s"
    api PUT "$(with_query "$(resolve "$(hdr Location)")" "digest=$D")" "$proto" -H 'Content-Length: 0'
    is "$p closing PUT -> 201" "$STATUS" 201
    pull_and_verify "$p PATCH" large/patch "$proto"
    stop_berth
    rm -rf "$DATA"
done

done_testing
