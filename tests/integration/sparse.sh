#!/usr/bin/env bash
# Sparse manifests (storage.sparse_manifests; docs/lifecycle.md) beside garbage collection, quotas and fsck: what a
# sparse manifest references and is there is kept as for any manifest, what is absent costs nothing and breaks
# nothing; a missing blob pushed later is served; fsck accepts the absent references when the setting is on and
# reports them when it is off; deleting the image gives back what was there. (tests/conformance.py --sparse, run by
# conformance.sh, walks the API side.)
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/authlib.bash"

start_berth BERTH_STORAGE_SPARSE_MANIFESTS=true BERTH_GC_INTERVAL=0
b quota set acme 1MiB >/dev/null
mkdir -p "$T/img"
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' >"$T/img/config"
mkrand "$T/img/l1" 4000
mkrand "$T/img/l2" 6000
push_blob acme/app "$T/img/config" && push_blob acme/app "$T/img/l2"
image_manifest oci "$T/sparse.json" "$T/img/config" "$T/img/l1" "$T/img/l2"
push_manifest acme/app v1 "$T/sparse.json"
is "a manifest whose first layer is absent -> 201" "$STATUS" 201
D=$(sha256_of "$T/sparse.json")
is "the quota counts what is there, not what is absent" \
    "$(b quota list | awk -F'\t' '$1 == "acme" { print $3 }')" "$(($(size_of "$T/img/config") + 6000))"
gcout=$(b gc --blob-grace 0 --untagged-grace 1s 2>&1)
like "gc: nothing of the tagged sparse image goes" "$gcout" 'removed 0 manifests, 0 links, 0 blobs'
for f in config l2; do
    api GET "/v2/acme/app/blobs/$(sha256_of "$T/img/$f")"
    is "its $f is pullable after the collection" "$STATUS" 200
done
fsck_with() { env -u BERTH_CONFIG BERTH_STORAGE_ROOT="$DATA" BERTH_LOG_LEVEL=warn "$@" "$BERTH" fsck >"$T/fsck.out" 2>&1; }
fsck_with env BERTH_STORAGE_SPARSE_MANIFESTS=true
is "fsck with sparse manifests on: clean (exit 0)" "$?" 0
fsck_with env BERTH_STORAGE_SPARSE_MANIFESTS=false
is "fsck with them off: a finding (exit 1)" "$?" 1
like "... the absent layer, named" "$(cat "$T/fsck.out")" "acme/app@$D.*layer $(sha256_of "$T/img/l1") is not linked"

push_blob acme/app "$T/img/l1"
api GET "/v2/acme/app/blobs/$(sha256_of "$T/img/l1")"
is "the absent layer pushed later is served" "$STATUS" 200
check "... byte for byte" cmp -s "$BODY" "$T/img/l1"
fsck_with env BERTH_STORAGE_SPARSE_MANIFESTS=false
is "... and now fsck finds nothing even with sparse manifests off" "$?" 0

api DELETE "/v2/acme/app/manifests/$D"
sleep 2
gcout=$(b gc --blob-grace 0 --untagged-grace 1s 2>&1)
like "deleting the image by digest: the collection then removes its three blobs" "$gcout" \
    'removed 0 manifests, 3 links, 3 blobs: 10078 bytes freed'
is "acme uses nothing" "$(b quota list | awk -F'\t' '$1 == "acme" { print $3 }')" 0
stop_berth

start_berth BERTH_GC_INTERVAL=0
push_blob acme/app "$T/img/config"
push_manifest acme/app v1 "$T/sparse.json"
is "with sparse manifests off (the default) the same push -> 400" "$STATUS" 400
is_error "... MANIFEST_BLOB_UNKNOWN" 400 MANIFEST_BLOB_UNKNOWN
done_testing
