#!/usr/bin/env bash
# Stale upload sessions expire: after storage.upload_ttl without activity the session answers 404 and its
# files are gone; a session still in use survives.
. "$(dirname "$0")/lib.sh"

start_berth BERTH_STORAGE_UPLOAD_TTL=3s

mkrand "$T/chunk" 1000
start_upload ex/stale || fail "start an upload" "status $STATUS"
stale=$UPLOAD_URL
stale_id=$(hdr Docker-Upload-UUID)
api PATCH "$stale" -H 'Content-Type: application/octet-stream' --data-binary "@$T/chunk"
is "a chunk into the session -> 202" "$STATUS" 202
stale_file=$DATA/uploads/$stale_id.$(printf %s ex/stale | sha256sum | cut -c1-32)
check "its file is under uploads/" test -f "$stale_file"

start_upload ex/live || fail "start a second upload" "status $STATUS"
live=$UPLOAD_URL
# keep the second session busy with a chunk every second while the first one ages
for i in 1 2 3 4 5 6; do
    sleep 1
    api PATCH "$live" -H 'Content-Type: application/octet-stream' --data-binary "@$T/chunk"
    live=$(resolve "$(hdr Location)")
done
is "the session in use still takes chunks -> 202 Range: 0-5999" "$STATUS $(hdr Range)" "202 0-5999"

api GET "$stale"
is_error "the stale session -> 404 BLOB_UPLOAD_UNKNOWN" 404 BLOB_UPLOAD_UNKNOWN
check "its file was removed" test ! -e "$stale_file"
api PATCH "$stale" -H 'Content-Type: application/octet-stream' --data-binary "@$T/chunk"
is_error "a chunk for it -> 404 BLOB_UPLOAD_UNKNOWN" 404 BLOB_UPLOAD_UNKNOWN

cat "$T/chunk" "$T/chunk" "$T/chunk" "$T/chunk" "$T/chunk" "$T/chunk" >"$T/all"
api PUT "$(with_query "$live" "digest=$(sha256_of "$T/all")")"
is "the live session finishes -> 201" "$STATUS" 201

stop_berth
done_testing
