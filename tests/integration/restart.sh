#!/usr/bin/env bash
# Graceful shutdown and restart: everything acknowledged before a SIGTERM (or a SIGKILL) is there,
# byte for byte, when berth starts again on the same data; in-flight requests finish; an upload
# session can be resumed.
. "$(dirname "$0")/lib.sh"

OCTET=(-H 'Content-Type: application/octet-stream')
slice() { tail -c +$(($2 + 1)) "$1" | head -c "$3"; }

# snapshot DIR : what a client sees of every object pushed so far (bodies, types, digests), and the blob
# files on disk, one file per object
snapshot() {
    local dir=$1 ref repo dg i
    mkdir -p "$dir"
    for ref in "${REFS[@]}"; do # repo:reference
        repo=${ref%%:*}
        api GET "/v2/$repo/manifests/${ref#*:}"
        { echo "$STATUS $(hdr Content-Type) $(hdr Docker-Content-Digest)"; cat "$BODY"; } >"$dir/manifest ${ref//\//_}"
    done
    for i in "${!BLOBS[@]}"; do # repo@digest
        repo=${BLOBS[$i]%@*} dg=${BLOBS[$i]#*@}
        api GET "/v2/$repo/blobs/$dg"
        { echo "$STATUS $(hdr Content-Length) $(hdr Docker-Content-Digest)"; cat "$BODY"; } >"$dir/blob ${repo//\//_} ${dg:7:16}"
        cp "$(blob_path "$dg")" "$dir/disk ${dg:7:16}" 2>/dev/null || echo missing >"$dir/disk ${dg:7:16}"
    done
    for repo in r/one r/two; do
        api GET "/v2/$repo/tags/list"
        { echo "$STATUS"; cat "$BODY"; } >"$dir/tags ${repo//\//_}"
    done
    api GET /v2/_catalog
    { echo "$STATUS"; cat "$BODY"; } >"$dir/catalog"
}

REFS=()
BLOBS=()
# remember_image REPO TAG : record what push_image pushed
remember_image() {
    local f
    REFS+=("$1:$2" "$1:$IMG_DIGEST")
    for f in "${IMG_BLOBS[@]}"; do BLOBS+=("$1@$(sha256_of "$f")"); done
}

start_berth

# ------------------------------------------------------------ content, then a restart
push_image r/one v1 oci amd64
is "push image r/one:v1 (OCI) -> 201" "$STATUS" 201
remember_image r/one v1
M_AMD=$IMG_MANIFEST
push_image r/one v2 oci arm64
is "push image r/one:v2 (OCI) -> 201" "$STATUS" 201
remember_image r/one v2
index_manifest oci "$T/index" "$M_AMD" "$IMG_MANIFEST"
push_manifest r/one multi "$T/index"
is "push index r/one:multi -> 201" "$STATUS" 201
REFS+=(r/one:multi "r/one:$(sha256_of "$T/index")")
push_image r/two latest docker
is "push image r/two:latest (Docker) -> 201" "$STATUS" 201
remember_image r/two latest

# a blob uploaded in three chunks and finished
mkrand "$T/ch" 500000
start_upload r/one
for r in 0:200000 200000:200000 400000:100000; do
    s=${r%:*} n=${r#*:}
    slice "$T/ch" "$s" "$n" >"$T/part"
    api PATCH "$UPLOAD_URL" "${OCTET[@]}" -H "Content-Range: $s-$((s + n - 1))" --data-binary "@$T/part"
    UPLOAD_URL=$(resolve "$(hdr Location)")
done
api PUT "$(with_query "$UPLOAD_URL" "digest=$(sha256_of "$T/ch")")" -H 'Content-Length: 0'
is "chunked upload finished -> 201" "$STATUS" 201
BLOBS+=("r/one@$(sha256_of "$T/ch")")

# an upload left open: two chunks of three
mkrand "$T/open" 300000
start_upload r/two
slice "$T/open" 0 100000 >"$T/o1"
slice "$T/open" 100000 100000 >"$T/o2"
slice "$T/open" 200000 100000 >"$T/o3"
api PATCH "$UPLOAD_URL" "${OCTET[@]}" -H 'Content-Range: 0-99999' --data-binary "@$T/o1"
api PATCH "$(resolve "$(hdr Location)")" "${OCTET[@]}" -H 'Content-Range: 100000-199999' --data-binary "@$T/o2"
is "open upload at offset 200000 -> 202 Range: 0-199999" "$STATUS $(hdr Range)" "202 0-199999"
OPEN_URL=$(resolve "$(hdr Location)")

snapshot "$T/before"
check "(self-check) every object is readable before the restart" \
    bash -c '! grep -L "^20[06] " "$0"/manifest* "$0"/blob* | grep -q .' "$T/before"

restart_berth
api GET /readyz
is "after restart: /readyz -> 200" "$STATUS" 200
snapshot "$T/after"
for f in "$T/before"/*; do
    check "after restart: ${f##*/} is identical" cmp "$f" "$T/after/${f##*/}"
done

api GET "$OPEN_URL"
is "after restart: the open upload is still there -> 204 Range: 0-199999" "$STATUS $(hdr Range)" "204 0-199999"
api PATCH "$OPEN_URL" "${OCTET[@]}" -H 'Content-Range: 200000-299999' --data-binary "@$T/o3"
is "... resumed with the third chunk -> 202 Range: 0-299999" "$STATUS $(hdr Range)" "202 0-299999"
api PUT "$(with_query "$(resolve "$(hdr Location)")" "digest=$(sha256_of "$T/open")")" -H 'Content-Length: 0'
is "... finished -> 201" "$STATUS" 201
api GET "/v2/r/two/blobs/$(sha256_of "$T/open")"
check "... the blob has all three chunks" same_bytes "$BODY" "$T/open"

# ------------------------------------------------------------ a manifest pushed just before SIGTERM
push_image r/late now oci
is "push r/late:now -> 201" "$STATUS" 201
LATE=$IMG_MANIFEST
kill -TERM "$BERTH_PID"
wait_berth
start_berth_again
api GET /v2/r/late/manifests/now
is "the manifest pushed just before SIGTERM is there" "$STATUS" 200
check "... exact bytes" same_bytes "$BODY" "$LATE"

# ------------------------------------------------------------ an upload in flight when SIGTERM arrives
mkrand "$T/slow" $((3 * 1024 * 1024))
DS=$(sha256_of "$T/slow")
start_upload r/slow
# about 3 s at 1 MiB/s; SIGTERM after 1 s: berth must finish the request before it exits
curl -sS -o /dev/null -w '%{http_code}' --max-time 60 --limit-rate 1M -H 'Expect:' "${OCTET[@]}" \
    -X PUT --data-binary "@$T/slow" "$(with_query "$UPLOAD_URL" "digest=$DS")" >"$T/slow.status" 2>"$T/slow.err" &
cpid=$!
sleep 1
kill -TERM "$BERTH_PID"
wait "$cpid"
is "an upload in flight during SIGTERM completes -> 201" "$(cat "$T/slow.status")" 201 || diag "$(cat "$T/slow.err")"
wait_berth
start_berth_again
api GET "/v2/r/slow/blobs/$DS"
is "... after restart the blob is there" "$STATUS" 200
check "... same bytes" same_bytes "$BODY" "$T/slow"

# ------------------------------------------------------------ SIGKILL right after the 201s
push_image r/crash v1 oci
is "push r/crash:v1 -> 201" "$STATUS" 201
CRASH=$IMG_MANIFEST
CRASH_BLOBS=("${IMG_BLOBS[@]}")
kill_berth
start_berth_again
api GET /v2/r/crash/manifests/v1
is "a manifest acknowledged just before SIGKILL is there" "$STATUS" 200
check "... exact bytes" same_bytes "$BODY" "$CRASH"
ok_blobs=1
for f in "${CRASH_BLOBS[@]}"; do
    api GET "/v2/r/crash/blobs/$(sha256_of "$f")"
    cmp -s "$BODY" "$f" || ok_blobs=0
done
is "... and so are its blobs" "$ok_blobs" 1
api GET /v2/r/crash/tags/list
is "... and its tag" "$(jq -c .tags "$BODY")" '["v1"]'

# everything from before is still there after all that
snapshot "$T/final"
same=1
for f in "$T/before"/*; do
    [[ ${f##*/} == catalog ]] && continue # new repositories since
    cmp -s "$f" "$T/final/${f##*/}" || { same=0; diag "differs: ${f##*/}"; }
done
is "after four starts, every object from the first run is unchanged" "$same" 1

done_testing
