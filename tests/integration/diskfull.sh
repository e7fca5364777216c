#!/usr/bin/env bash
# A full storage volume: below storage.min_free pushes are refused with 507 (a clear error, nothing lost), pulls
# go on, /readyz and /metrics say so, and pushes are accepted again once space returns. With no margin at all, a
# write that hits ENOSPC is answered 507 too and the upload session survives it. Runs on a 64 MiB tmpfs.
. "$(dirname "$0")/lib.sh"

VOL=$T/vol
mkdir -p "$VOL"
mount -t tmpfs -o size=64m tmpfs "$VOL" 2>/dev/null || skip_all "cannot mount a tmpfs (needs root)"
trap 'umount -l "$VOL" 2>/dev/null' EXIT

free_bytes() { df -B1 --output=avail "$VOL" | tail -n 1 | tr -d ' '; }
# fill_to BYTES : leave about BYTES free on the volume
fill_to() {
    rm -f "$VOL/fill"
    fallocate -l $(($(free_bytes) - $1)) "$VOL/fill"
}

start_berth BERTH_STORAGE_ROOT="$VOL/data" BERTH_STORAGE_MIN_FREE=16MiB
DATA=$VOL/data
mkrand "$T/small" 20000
push_blob full/a "$T/small"
is "with space, a push -> 201" "$STATUS" 201
mkrand "$T/cfg" 300
push_blob full/a "$T/cfg"
image_manifest oci "$T/m1" "$T/cfg" "$T/small"
push_manifest full/a v1 "$T/m1"
is "... and a manifest -> 201" "$STATUS" 201

fill_to $((10 * 1024 * 1024))
api POST /v2/full/a/blobs/uploads/
is "10 MiB free, below storage.min_free (16 MiB): POST upload -> 507" "$STATUS $(err_code)" "507 UNAVAILABLE"
like "... saying why" "$(jq -r '.errors[0].message' "$BODY")" 'below storage.min_free'
check "... with the free space and the minimum in the detail" \
    jq -e '.errors[0].detail | (.free > 0) and (.min_free == 16777216)' "$BODY"
api POST "/v2/full/a/blobs/uploads/?digest=$(sha256_of "$T/small")" --data-binary "@$T/small"
is "... a monolithic POST -> 507" "$STATUS" 507
jq -c '.annotations = {"x": "y"}' "$T/m1" >"$T/m2"
api PUT /v2/full/a/manifests/v2 -H "Content-Type: $MT_OCI_MANIFEST" --data-binary "@$T/m2"
is "... a manifest PUT -> 507" "$STATUS" 507
api GET "/v2/full/a/blobs/$(sha256_of "$T/small")"
check "... a pull still gets the exact bytes" same_bytes "$BODY" "$T/small"
api GET /v2/full/a/manifests/v1
check "... and the manifest" same_bytes "$BODY" "$T/m1"
api GET /readyz
is "/readyz stays 200 (pulls are served)" "$STATUS" 200
like "... and says pushes are refused" "$(cat "$BODY")" 'pushes are refused'
api GET /metrics
like "/metrics: berth_storage_low 1" "$(cat "$BODY")" $'berth_storage_low 1'
like "/metrics: berth_storage_free_bytes" "$(cat "$BODY")" 'berth_storage_free_bytes [0-9]+'

rm -f "$VOL/fill"
push_manifest full/a v2 "$T/m2"
is "space back: the refused manifest -> 201" "$STATUS" 201
mkrand "$T/after" 30000
push_blob full/a "$T/after"
is "... and a blob -> 201" "$STATUS" 201
api GET /readyz
is "/readyz: ok again" "$(cat "$BODY")" "ok"
stop_berth

# No margin: the write itself fails with ENOSPC. A chunk small enough to stay in memory (under 1 MiB) reaches
# berth, which answers 507 and keeps the session as it was.
start_berth_again_with() { BERTH_ENV=("$@"); start_berth_again; }
start_berth_again_with BERTH_STORAGE_ROOT="$VOL/data" BERTH_STORAGE_MIN_FREE=0
start_upload full/a
mkrand "$T/c1" 100000
api PATCH "$UPLOAD_URL" -H 'Content-Type: application/octet-stream' --data-binary "@$T/c1"
is "a first chunk -> 202" "$STATUS" 202
UPLOAD_URL=$(resolve "$(hdr Location)")
fill_to $((100 * 1024))
mkrand "$T/c2" 400000
api PATCH "$UPLOAD_URL" -H 'Content-Type: application/octet-stream' --data-binary "@$T/c2"
is "a 400 KB chunk with 100 KiB free (ENOSPC) -> 507, not 500 or 404" "$STATUS $(err_code)" "507 UNAVAILABLE"
like "... saying why" "$(jq -r '.errors[0].message' "$BODY")" 'No space left on device'
check "... and it is logged" grep -q 'No space left on device (answered 507)' "$SRV/berth.log"
rm -f "$VOL/fill"
api GET "$UPLOAD_URL"
is "the session still stands at the first chunk (Range 0-99999)" "$STATUS $(hdr Range)" "204 0-99999"
api PATCH "$UPLOAD_URL" -H 'Content-Type: application/octet-stream' --data-binary "@$T/c2"
is "space back: the chunk again -> 202" "$STATUS" 202
cat "$T/c1" "$T/c2" >"$T/whole"
api PUT "$(with_query "$(resolve "$(hdr Location)")" "digest=$(sha256_of "$T/whole")")"
is "... and the upload finishes -> 201" "$STATUS" 201
api GET "/v2/full/a/blobs/$(sha256_of "$T/whole")"
check "... the blob is exactly both chunks" same_bytes "$BODY" "$T/whole"
stop_berth

done_testing
