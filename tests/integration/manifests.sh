#!/usr/bin/env bash
# Manifests: the four types berth stores, GET/HEAD by tag and digest, exact bytes, references that must
# exist in the repository, malformed bodies, size limits, tags list, catalog.
. "$(dirname "$0")/lib.sh"

# sized_manifest SIZE OUT CONFIG_FILE LAYER_FILE : a valid OCI manifest of exactly SIZE bytes (padded
# with an annotation).
sized_manifest() {
    "$PYTHON" - "$@" <<'EOF'
import hashlib, json, os, sys
size, out, cfg, layer = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
def desc(mt, path):
    data = open(path, "rb").read()
    return {"mediaType": mt, "digest": "sha256:" + hashlib.sha256(data).hexdigest(), "size": len(data)}
m = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
     "config": desc("application/vnd.oci.image.config.v1+json", cfg),
     "layers": [desc("application/vnd.oci.image.layer.v1.tar+gzip", layer)],
     "annotations": {"pad": ""}}
base = len(json.dumps(m, separators=(",", ":")).encode())
m["annotations"]["pad"] = "x" * (size - base)
data = json.dumps(m, separators=(",", ":")).encode()
assert len(data) == size, (len(data), size)
open(out, "wb").write(data)
EOF
}

start_berth

# blobs of two images in m/img, one in m/other
d=$T/blobs
mkdir -p "$d"
for i in 1 2 3 4; do
    printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"n":%d}' $i >"$d/cfg$i"
    mkrand "$d/l$i" $((1000 * i))
done
for f in cfg1 l1 cfg2 l2 cfg3 l3; do
    push_blob m/img "$d/$f" || fail "push blob $f to m/img" "status $STATUS"
done
for f in cfg4 l4; do
    push_blob m/other "$d/$f" || fail "push blob $f to m/other" "status $STATUS"
done

# --------------------------------------------------------------- OCI image manifest
# Formatted with tabs and a trailing blank line: berth must store and serve the bytes as pushed.
image_manifest oci "$T/m1.tmp" "$d/cfg1" "$d/l1" "$d/l2"
jq --tab '. + {annotations: {"org.example.note": "exact bytes \u00e9"}}' "$T/m1.tmp" >"$T/m1"
printf '\n' >>"$T/m1"
M1=$(sha256_of "$T/m1")

api PUT /v2/m/img/manifests/v1 -H "Content-Type: $MT_OCI_MANIFEST" --data-binary "@$T/m1"
is "PUT OCI manifest by tag -> 201" "$STATUS" 201
is "... Docker-Content-Digest is the sha256 of the body" "$(hdr Docker-Content-Digest)" "$M1"
loc=$(hdr Location)
isnt "... Location" "$loc" ""
api GET "$(resolve "$loc")"
is "... Location is a pullable manifest URL" "$STATUS" 200
check "... and serves the manifest" same_bytes "$BODY" "$T/m1"

for ref in v1 "$M1"; do
    api GET "/v2/m/img/manifests/$ref"
    is "GET OCI manifest by ${ref:0:12} -> 200" "$STATUS" 200
    check "... exact bytes as pushed" same_bytes "$BODY" "$T/m1"
    is "... Content-Type" "$(hdr Content-Type)" "$MT_OCI_MANIFEST"
    is "... Docker-Content-Digest" "$(hdr Docker-Content-Digest)" "$M1"
    is "... Content-Length" "$(hdr Content-Length)" "$(size_of "$T/m1")"
    api HEAD "/v2/m/img/manifests/$ref"
    is "HEAD OCI manifest by ${ref:0:12} -> 200" "$STATUS" 200
    is "... Content-Type" "$(hdr Content-Type)" "$MT_OCI_MANIFEST"
    is "... Docker-Content-Digest" "$(hdr Docker-Content-Digest)" "$M1"
    is "... Content-Length" "$(hdr Content-Length)" "$(size_of "$T/m1")"
done
api GET /v2/m/img/manifests/v1 -H "Accept: $MT_OCI_MANIFEST, $MT_OCI_INDEX"
is "GET with an Accept header listing OCI types -> 200" "$STATUS" 200
api GET /v2/m/img/manifests/v1 --http2-prior-knowledge
is "GET manifest over h2c -> 200" "$STATUS" 200
check "... exact bytes" same_bytes "$BODY" "$T/m1"

# an OCI manifest without mediaType in the body: the Content-Type says what it is
image_manifest oci "$T/m1b" "$d/cfg1" "$d/l1"
jq 'del(.mediaType)' "$T/m1b" >"$T/m1nomt"
api PUT /v2/m/img/manifests/nomt -H "Content-Type: $MT_OCI_MANIFEST" --data-binary "@$T/m1nomt"
is "PUT OCI manifest without a mediaType field -> 201" "$STATUS" 201
api GET /v2/m/img/manifests/nomt
is "... GET: Content-Type from the request" "$STATUS $(hdr Content-Type)" "200 $MT_OCI_MANIFEST"

# --------------------------------------------------------------- OCI manifest by digest (no tag)
image_manifest oci "$T/m3" "$d/cfg3" "$d/l3"
M3=$(sha256_of "$T/m3")
push_manifest m/img "$M3" "$T/m3"
is "PUT OCI manifest by digest -> 201" "$STATUS" 201
is "... Docker-Content-Digest" "$(hdr Docker-Content-Digest)" "$M3"
api GET "/v2/m/img/manifests/$M3"
check "GET it by digest: exact bytes" same_bytes "$BODY" "$T/m3"

image_manifest oci "$T/m3b" "$d/cfg3" "$d/l3" "$d/l1"
api PUT "/v2/m/img/manifests/$M3" -H "Content-Type: $MT_OCI_MANIFEST" --data-binary "@$T/m3b"
is_error "PUT by digest with a body of another digest -> 400 DIGEST_INVALID" 400 DIGEST_INVALID
api GET "/v2/m/img/manifests/$(sha256_of "$T/m3b")"
is "... the body was not stored" "$STATUS" 404

# --------------------------------------------------------------- Docker schema 2 manifest
image_manifest docker "$T/m2" "$d/cfg2" "$d/l2"
M2=$(sha256_of "$T/m2")
push_manifest m/img docker "$T/m2"
is "PUT Docker schema 2 manifest -> 201" "$STATUS" 201
is "... Docker-Content-Digest" "$(hdr Docker-Content-Digest)" "$M2"
api GET /v2/m/img/manifests/docker
is "GET Docker manifest -> 200" "$STATUS" 200
check "... exact bytes" same_bytes "$BODY" "$T/m2"
is "... Content-Type" "$(hdr Content-Type)" "$MT_DOCKER_MANIFEST"
is "... Docker-Content-Digest" "$(hdr Docker-Content-Digest)" "$M2"

# --------------------------------------------------------------- OCI index
index_manifest oci "$T/i1" "$T/m1" "$T/m3"
I1=$(sha256_of "$T/i1")
push_manifest m/img multi "$T/i1"
is "PUT OCI index -> 201" "$STATUS" 201
is "... Docker-Content-Digest" "$(hdr Docker-Content-Digest)" "$I1"
api GET /v2/m/img/manifests/multi
is "GET OCI index -> 200" "$STATUS" 200
check "... exact bytes" same_bytes "$BODY" "$T/i1"
is "... Content-Type" "$(hdr Content-Type)" "$MT_OCI_INDEX"
api HEAD "/v2/m/img/manifests/$I1"
is "HEAD OCI index by digest: Content-Type" "$STATUS $(hdr Content-Type)" "200 $MT_OCI_INDEX"

# --------------------------------------------------------------- Docker manifest list
image_manifest docker "$T/m4" "$d/cfg1" "$d/l3"
push_manifest m/img "$(sha256_of "$T/m4")" "$T/m4"
is "PUT second Docker manifest by digest -> 201" "$STATUS" 201
index_manifest docker "$T/list" "$T/m2" "$T/m4"
push_manifest m/img list "$T/list"
is "PUT Docker manifest list -> 201" "$STATUS" 201
is "... Docker-Content-Digest" "$(hdr Docker-Content-Digest)" "$(sha256_of "$T/list")"
api GET /v2/m/img/manifests/list
is "GET Docker manifest list -> 200" "$STATUS" 200
check "... exact bytes" same_bytes "$BODY" "$T/list"
is "... Content-Type" "$(hdr Content-Type)" "$MT_DOCKER_LIST"

# --------------------------------------------------------------- references that must exist in the repository
image_manifest oci "$T/nolayer" "$d/cfg1" "$d/l1" "$d/l4" # l4 is only in m/other
api PUT /v2/m/img/manifests/bad1 -H "Content-Type: $MT_OCI_MANIFEST" --data-binary "@$T/nolayer"
is_error "manifest with a layer that is only in another repository -> 400 MANIFEST_BLOB_UNKNOWN" 400 MANIFEST_BLOB_UNKNOWN
mkrand "$T/neverpushed" 100
image_manifest oci "$T/nolayer2" "$d/cfg1" "$T/neverpushed"
api PUT /v2/m/img/manifests/bad2 -H "Content-Type: $MT_OCI_MANIFEST" --data-binary "@$T/nolayer2"
is_error "manifest with a layer never pushed -> 400 MANIFEST_BLOB_UNKNOWN" 400 MANIFEST_BLOB_UNKNOWN
image_manifest oci "$T/nocfg" "$d/cfg4" "$d/l1"
api PUT /v2/m/img/manifests/bad3 -H "Content-Type: $MT_OCI_MANIFEST" --data-binary "@$T/nocfg"
is_error "manifest whose config is missing from the repository -> 400 MANIFEST_BLOB_UNKNOWN" 400 MANIFEST_BLOB_UNKNOWN
image_manifest docker "$T/nolayer3" "$d/cfg2" "$T/neverpushed"
api PUT /v2/m/img/manifests/bad4 -H "Content-Type: $MT_DOCKER_MANIFEST" --data-binary "@$T/nolayer3"
is_error "Docker manifest with a missing layer -> 400 MANIFEST_BLOB_UNKNOWN" 400 MANIFEST_BLOB_UNKNOWN
for t in bad1 bad2 bad3 bad4; do
    api GET "/v2/m/img/manifests/$t"
    is_error "... rejected manifest left no tag $t" 404 MANIFEST_UNKNOWN
done

image_manifest oci "$T/m5" "$d/cfg4" "$d/l4"
push_manifest m/other "$(sha256_of "$T/m5")" "$T/m5"
is "PUT a manifest to m/other -> 201" "$STATUS" 201
index_manifest oci "$T/i2" "$T/m1" "$T/m5"
api PUT /v2/m/img/manifests/bad5 -H "Content-Type: $MT_OCI_INDEX" --data-binary "@$T/i2"
is_error "index with a child manifest only in another repository -> 400 MANIFEST_BLOB_UNKNOWN" 400 MANIFEST_BLOB_UNKNOWN
image_manifest oci "$T/m6" "$d/cfg1" "$d/l2" # never pushed
index_manifest oci "$T/i3" "$T/m1" "$T/m6"
api PUT /v2/m/img/manifests/bad6 -H "Content-Type: $MT_OCI_INDEX" --data-binary "@$T/i3"
is_error "index with a child manifest never pushed -> 400 MANIFEST_BLOB_UNKNOWN" 400 MANIFEST_BLOB_UNKNOWN
index_manifest docker "$T/list2" "$T/m2" "$T/m6"
api PUT /v2/m/img/manifests/bad7 -H "Content-Type: $MT_DOCKER_LIST" --data-binary "@$T/list2"
is_error "manifest list with a missing child -> 400 MANIFEST_BLOB_UNKNOWN" 400 MANIFEST_BLOB_UNKNOWN

api GET "/v2/m/other/manifests/$M1"
is_error "a manifest is not served from another repository -> 404 MANIFEST_UNKNOWN" 404 MANIFEST_UNKNOWN

# --------------------------------------------------------------- descriptor sizes must match what is stored
size_l1=$(size_of "$d/l1")
jq -c --argjson s $((size_l1 + 1)) '.layers[0].size = $s' "$T/m1" >"$T/bigger"
api PUT /v2/m/img/manifests/size1 -H "Content-Type: $MT_OCI_MANIFEST" --data-binary "@$T/bigger"
is_error "a layer descriptor one byte larger than the blob -> 400 MANIFEST_INVALID" 400 MANIFEST_INVALID
is "... the detail names the layer, the size given and the size stored" \
    "$(jq -c '.errors[0].detail | [.digest, .size, .stored]' "$BODY")" \
    "[\"$(sha256_of "$d/l1")\",$((size_l1 + 1)),$size_l1]"
jq -c '.config.size = 1' "$T/m1" >"$T/smallcfg"
api PUT /v2/m/img/manifests/size2 -H "Content-Type: $MT_OCI_MANIFEST" --data-binary "@$T/smallcfg"
is_error "a config descriptor with the wrong size -> 400 MANIFEST_INVALID" 400 MANIFEST_INVALID
jq -c '.manifests[0].size += 10' "$T/i1" >"$T/badindex"
api PUT /v2/m/img/manifests/size3 -H "Content-Type: $MT_OCI_INDEX" --data-binary "@$T/badindex"
is_error "an index whose child descriptor has the wrong size -> 400 MANIFEST_INVALID" 400 MANIFEST_INVALID
for t in size1 size2 size3; do
    api GET "/v2/m/img/manifests/$t"
    is_error "... rejected manifest left no tag $t" 404 MANIFEST_UNKNOWN
done

# --------------------------------------------------------------- malformed manifests
printf '{"schemaVersion": 2, "mediaType": "%s", "config": ' "$MT_OCI_MANIFEST" >"$T/trunc"
api PUT /v2/m/img/manifests/junk -H "Content-Type: $MT_OCI_MANIFEST" --data-binary "@$T/trunc"
is_error "truncated JSON -> 400 MANIFEST_INVALID" 400 MANIFEST_INVALID
api PUT /v2/m/img/manifests/junk -H "Content-Type: $MT_OCI_MANIFEST" --data-binary 'this is not json'
is_error "not JSON at all -> 400 MANIFEST_INVALID" 400 MANIFEST_INVALID
api PUT /v2/m/img/manifests/junk -H "Content-Type: $MT_OCI_MANIFEST" --data-binary '[1,2,3]'
is_error "a JSON array -> 400 MANIFEST_INVALID" 400 MANIFEST_INVALID
api PUT /v2/m/img/manifests/junk -H "Content-Type: $MT_OCI_MANIFEST" \
    --data-binary "{\"schemaVersion\":2,\"mediaType\":\"$MT_OCI_MANIFEST\",\"layers\":[]}"
is_error "OCI manifest without config -> 400 MANIFEST_INVALID" 400 MANIFEST_INVALID
jq '.layers[0].digest = "sha256:not-a-digest"' "$T/m1b" >"$T/baddigest"
api PUT /v2/m/img/manifests/junk -H "Content-Type: $MT_OCI_MANIFEST" --data-binary "@$T/baddigest"
is_error "layer with a malformed digest -> 400 MANIFEST_INVALID (or DIGEST_INVALID)" \
    400 MANIFEST_INVALID 400 DIGEST_INVALID
# found by fuzz/fuzz_manifest.c: without a Content-Type, a mediaType with parameters was stored and served as one
jq '.mediaType += ";x=1"' "$T/m1b" >"$T/mtparam"
api PUT /v2/m/img/manifests/junk -H "Content-Type:" --data-binary "@$T/mtparam"
is_error "a mediaType with a parameter (no Content-Type) -> 400 MANIFEST_INVALID" 400 MANIFEST_INVALID
jq '.layers[0].size = "big"' "$T/m1b" >"$T/badsize"
api PUT /v2/m/img/manifests/junk -H "Content-Type: $MT_OCI_MANIFEST" --data-binary "@$T/badsize"
is_error "layer size that is not a number -> 400 MANIFEST_INVALID" 400 MANIFEST_INVALID
api PUT /v2/m/img/manifests/junk -H "Content-Type: $MT_OCI_INDEX" \
    --data-binary "{\"schemaVersion\":2,\"mediaType\":\"$MT_OCI_INDEX\",\"manifests\":{}}"
is_error "index whose manifests is not an array -> 400 MANIFEST_INVALID" 400 MANIFEST_INVALID
api GET /v2/m/img/manifests/junk
is_error "... no tag 'junk' was created" 404 MANIFEST_UNKNOWN

# --------------------------------------------------------------- size limit (4 MiB by default)
sized_manifest 4194304 "$T/exact4m" "$d/cfg1" "$d/l1"
api PUT /v2/m/img/manifests/big -H "Content-Type: $MT_OCI_MANIFEST" --data-binary "@$T/exact4m"
is "a manifest of exactly 4 MiB -> 201" "$STATUS" 201
api GET /v2/m/img/manifests/big
check "... GET returns all 4 MiB" same_bytes "$BODY" "$T/exact4m"
sized_manifest 4194305 "$T/over4m" "$d/cfg1" "$d/l1"
api PUT /v2/m/img/manifests/toobig -H "Content-Type: $MT_OCI_MANIFEST" --data-binary "@$T/over4m"
is "a manifest of 4 MiB + 1 byte -> 413" "$STATUS" 413
api GET /v2/m/img/manifests/toobig
is "... not stored" "$STATUS" 404

# --------------------------------------------------------------- unknown manifests, references
api GET /v2/m/img/manifests/nosuchtag
is_error "GET unknown tag -> 404 MANIFEST_UNKNOWN" 404 MANIFEST_UNKNOWN
api HEAD /v2/m/img/manifests/nosuchtag
is "HEAD unknown tag -> 404" "$STATUS" 404
api GET "/v2/m/img/manifests/$(random_digest)"
is_error "GET unknown digest -> 404 MANIFEST_UNKNOWN" 404 MANIFEST_UNKNOWN
api HEAD "/v2/m/img/manifests/$(random_digest)"
is "HEAD unknown digest -> 404" "$STATUS" 404
api GET "/v2/m/img/manifests/sha256:xyz"
is_error "GET by a malformed digest -> 400 DIGEST_INVALID/MANIFEST_INVALID or 404 MANIFEST_UNKNOWN" \
    400 DIGEST_INVALID 400 MANIFEST_INVALID 404 MANIFEST_UNKNOWN

# Tags: [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}. The distribution spec's error-code table has no TAG_INVALID
# (that code is only in the historical Docker API, for a schema-1 tag mismatch) and says the code MUST be
# one of its table, so a PUT to an invalid tag is an invalid manifest push: 400 MANIFEST_INVALID.
# (in a repository of their own, so that the mixed-case tags stay out of the ordering test below)
push_blob m/tags "$d/cfg3" && push_blob m/tags "$d/l3" || fail "push blobs to m/tags" "status $STATUS"
tag128=$(printf 'T%.0s' {1..128})
push_manifest m/tags "$tag128" "$T/m3"
is "128-character tag -> 201" "$STATUS" 201
push_manifest m/tags Release_1.0-RC.2 "$T/m3"
is "tag with upper case, '_', '.', '-' -> 201" "$STATUS" 201
push_manifest m/tags _under "$T/m3"
is "tag starting with '_' -> 201" "$STATUS" 201
for bad in "${tag128}X" -dash .dot 'a+b' 'a~b'; do
    api PUT "/v2/m/tags/manifests/$bad" -H "Content-Type: $MT_OCI_MANIFEST" --data-binary "@$T/m3"
    is_error "PUT to invalid tag '${bad:0:20}' -> 400 MANIFEST_INVALID" 400 MANIFEST_INVALID
done
api GET "/v2/m/tags/manifests/-dash"
is_error "GET invalid tag -> 400 MANIFEST_INVALID or 404 MANIFEST_UNKNOWN" 400 MANIFEST_INVALID 404 MANIFEST_UNKNOWN
api GET /v2/m/tags/tags/list
is "tags/list holds exactly the valid tags" "$(jq -c '.tags | sort' "$BODY")" \
    "$(printf '%s\n' "$tag128" Release_1.0-RC.2 _under | jq -R . | jq -sc 'sort')"

# --------------------------------------------------------------- tags
for t in latest 1.0 10 2 a b-c; do
    push_manifest m/img "$t" "$T/m1" || fail "push tag $t" "status $STATUS"
done
push_manifest m/img v1 "$T/m3"
is "re-tag v1 to another manifest -> 201" "$STATUS" 201
api GET /v2/m/img/manifests/v1
check "... GET v1 returns the new manifest" same_bytes "$BODY" "$T/m3"
api GET "/v2/m/img/manifests/$M1"
is "... the old manifest is still there by digest" "$STATUS" 200

# (lower case only: the same order whether "lexical" is read case-sensitively or not)
all_tags=$(printf '%s\n' 1.0 10 2 a b-c big docker latest list multi nomt v1 | LC_ALL=C sort |
    jq -R . | jq -sc .)
api GET /v2/m/img/tags/list
is "GET tags/list -> 200" "$STATUS" 200
is "... name" "$(jq -r .name "$BODY")" m/img
is "... every tag, sorted, no digests, no rejected tags" "$(jq -c .tags "$BODY")" "$all_tags"

api GET '/v2/m/img/tags/list?n=2'
is "tags/list?n=2 -> the first 2 tags" "$STATUS $(jq -c .tags "$BODY")" "200 $(jq -c '.[0:2]' <<<"$all_tags")"
second=$(jq -r '.[1]' <<<"$all_tags")
api GET "/v2/m/img/tags/list?n=3&last=$second"
is "tags/list?n=3&last=<2nd> -> the 3rd to 5th tags" "$STATUS $(jq -c .tags "$BODY")" "200 $(jq -c '.[2:5]' <<<"$all_tags")"
api GET "/v2/m/img/tags/list?last=$second"
is "tags/list?last=<2nd> -> every tag after it" "$STATUS $(jq -c .tags "$BODY")" "200 $(jq -c '.[2:]' <<<"$all_tags")"
api GET '/v2/m/img/tags/list?n=0'
is "tags/list?n=0 -> empty list" "$STATUS $(jq -c '.tags // []' "$BODY")" "200 []"

api GET /v2/m/other/tags/list
is "tags/list of a repository with only untagged manifests -> 200 with no tags" \
    "$STATUS $(jq -c '.tags // []' "$BODY")" "200 []"
api GET /v2/m/nothing/tags/list
is_error "tags/list of an unknown repository -> 404 NAME_UNKNOWN" 404 NAME_UNKNOWN

# --------------------------------------------------------------- catalog
api GET /v2/_catalog
is "GET /v2/_catalog -> 200" "$STATUS" 200
check "... lists m/img and m/other" jq -e '.repositories | index("m/img") != null and index("m/other") != null' "$BODY"
check "... sorted, without duplicates" jq -e '.repositories == (.repositories | unique)' "$BODY"

# --------------------------------------------------------------- a raised manifest limit
stop_berth
start_berth BERTH_STORAGE_MANIFEST_MAX_SIZE=8MiB
push_blob m/img "$d/cfg1" && push_blob m/img "$d/l1"
is "(new server) push blobs -> 201" "$STATUS" 201
sized_manifest $((6 * 1024 * 1024)) "$T/six" "$d/cfg1" "$d/l1"
api PUT /v2/m/img/manifests/six -H "Content-Type: $MT_OCI_MANIFEST" --data-binary "@$T/six"
is "storage.manifest_max_size=8MiB: a 6 MiB manifest -> 201" "$STATUS" 201
api GET /v2/m/img/manifests/six
check "... GET returns it" same_bytes "$BODY" "$T/six"
sized_manifest $((8 * 1024 * 1024 + 1)) "$T/nine" "$d/cfg1" "$d/l1"
api PUT /v2/m/img/manifests/nine -H "Content-Type: $MT_OCI_MANIFEST" --data-binary "@$T/nine"
is "storage.manifest_max_size=8MiB: 8 MiB + 1 byte -> 413" "$STATUS" 413

done_testing
