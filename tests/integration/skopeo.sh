#!/usr/bin/env bash
# A real client: skopeo copies images in and out (OCI layout, dir:, registry to registry), inspects,
# lists tags, copies a multi-platform index with --all and converts to Docker schema 2.
. "$(dirname "$0")/lib.sh"

command -v skopeo >/dev/null || skip_all "skopeo is not installed"
start_berth
NOTLS=(--src-tls-verify=false --dest-tls-verify=false)

# same_layout_blobs A B : every blob of layout A is in layout B with the same bytes
same_layout_blobs() {
    local f
    for f in "$1"/blobs/sha256/*; do
        cmp "$f" "$2/blobs/sha256/${f##*/}" || return 1
    done
}
# registry_has_blobs REPO DIGEST... : every blob downloads from REPO and matches its digest
registry_has_blobs() {
    local dg
    for dg in "${@:2}"; do
        api GET "/v2/$1/blobs/$dg"
        [[ $STATUS == 200 && $(sha256_of "$BODY") == "$dg" ]] || {
            echo "blob $dg in $1: status $STATUS"
            return 1
        }
    done
}

# ------------------------------------------------------------ a single-platform image, 3 layers
L=$T/layout
MD=$(oci_layout "$L" v1 3)
CFG=$(jq -r .config.digest "$(layout_blob "$L" "$MD")")
mapfile -t LAYERS < <(jq -r '.layers[].digest' "$(layout_blob "$L" "$MD")")
is "(self-check) the layout has 3 layers" "${#LAYERS[@]}" 3

check "skopeo copy oci:L:v1 -> docker://REG/test/img:v1" \
    sko copy "${NOTLS[@]}" "oci:$L:v1" "docker://$REG/test/img:v1"

api GET /v2/test/img/manifests/v1
is "GET the pushed manifest -> 200" "$STATUS" 200
is "... Docker-Content-Digest is the layout's manifest digest" "$(hdr Docker-Content-Digest)" "$MD"
check "... exact bytes of the layout's manifest" same_bytes "$BODY" "$(layout_blob "$L" "$MD")"
is "... Content-Type" "$(hdr Content-Type)" "$MT_OCI_MANIFEST"
check "config and every layer are in test/img" registry_has_blobs test/img "$CFG" "${LAYERS[@]}"
ok_disk=1
for dg in "$CFG" "${LAYERS[@]}"; do
    cmp -s "$(blob_path "$dg")" "$(layout_blob "$L" "$dg")" || ok_disk=0
done
is "every blob file under \$DATA/blobs equals the layout's blob" "$ok_disk" 1

sko inspect --tls-verify=false "docker://$REG/test/img:v1" >"$T/inspect.json" 2>"$T/inspect.err"
is "skopeo inspect exits 0" "$?" 0 || diag "$(cat "$T/inspect.err")"
is "... Digest" "$(jq -r .Digest "$T/inspect.json")" "$MD"
is "... Layers" "$(jq -c .Layers "$T/inspect.json")" "$(printf '%s\n' "${LAYERS[@]}" | jq -R . | jq -sc .)"
is "... Architecture (from the config blob)" "$(jq -r .Architecture "$T/inspect.json")" amd64
sko inspect --raw --tls-verify=false "docker://$REG/test/img:v1" >"$T/raw.json" 2>"$T/inspect.err"
check "skopeo inspect --raw: the exact manifest bytes" same_bytes "$T/raw.json" "$(layout_blob "$L" "$MD")"
sko inspect --config --raw --tls-verify=false "docker://$REG/test/img:v1" >"$T/config.json" 2>"$T/inspect.err"
check "skopeo inspect --config --raw: the exact config bytes" same_bytes "$T/config.json" "$(layout_blob "$L" "$CFG")"

# ------------------------------------------------------------ pull back: OCI layout and dir:
check "skopeo copy docker://REG/test/img:v1 -> oci:OUT:v1" \
    sko copy "${NOTLS[@]}" "docker://$REG/test/img:v1" "oci:$T/out:v1"
is "... the pulled manifest has the same digest" "$(layout_ref "$T/out" v1)" "$MD"
check "... every blob (manifest, config, layers) byte for byte" same_layout_blobs "$L" "$T/out"

check "skopeo copy docker://REG/test/img:v1 -> dir:D" sko copy "${NOTLS[@]}" "docker://$REG/test/img:v1" "dir:$T/dir"
check "... dir:D/manifest.json is the exact manifest" same_bytes "$T/dir/manifest.json" "$(layout_blob "$L" "$MD")"
ok_dir=1
for dg in "$CFG" "${LAYERS[@]}"; do
    cmp -s "$T/dir/${dg#sha256:}" "$(layout_blob "$L" "$dg")" || ok_dir=0
done
is "... dir:D holds the config and every layer byte for byte" "$ok_dir" 1

# ------------------------------------------------------------ another repository, another tag
check "skopeo copy registry -> registry: test/img:v1 -> test/img2:v1 (mount or re-upload)" \
    sko copy "${NOTLS[@]}" "docker://$REG/test/img:v1" "docker://$REG/test/img2:v1"
api GET /v2/test/img2/manifests/v1
is "GET test/img2:v1 -> 200 with the same digest" "$STATUS $(hdr Docker-Content-Digest)" "200 $MD"
check "... every blob is in test/img2" registry_has_blobs test/img2 "$CFG" "${LAYERS[@]}"
check "skopeo copy oci:L:v1 -> docker://REG/other/place:v1 (third repository)" \
    sko copy "${NOTLS[@]}" "oci:$L:v1" "docker://$REG/other/place:v1"
check "... every blob is in other/place" registry_has_blobs other/place "$CFG" "${LAYERS[@]}"

check "skopeo copy oci:L:v1 -> docker://REG/test/img:v2 (blobs already there)" \
    sko copy "${NOTLS[@]}" "oci:$L:v1" "docker://$REG/test/img:v2"
check "skopeo copy oci:L:v1 -> docker://REG/test/img:latest" \
    sko copy "${NOTLS[@]}" "oci:$L:v1" "docker://$REG/test/img:latest"
sko list-tags --tls-verify=false "docker://$REG/test/img" >"$T/tags.json" 2>"$T/tags.err"
is "skopeo list-tags exits 0" "$?" 0 || diag "$(cat "$T/tags.err")"
is "... tags" "$(jq -c '.Tags | sort' "$T/tags.json")" '["latest","v1","v2"]'

# ------------------------------------------------------------ Docker schema 2 (skopeo converts)
check "skopeo copy --format v2s2 oci:L:v1 -> docker://REG/test/docker:v1" \
    sko copy "${NOTLS[@]}" --format v2s2 "oci:$L:v1" "docker://$REG/test/docker:v1"
api GET /v2/test/docker/manifests/v1
is "GET the converted manifest: Content-Type is Docker schema 2" "$STATUS $(hdr Content-Type)" "200 $MT_DOCKER_MANIFEST"
is "... its digest is the sha256 of the body" "$(hdr Docker-Content-Digest)" "$(sha256_of "$BODY")"
cp "$BODY" "$T/docker-manifest.json"
check "skopeo copy docker://REG/test/docker:v1 -> dir:" sko copy "${NOTLS[@]}" "docker://$REG/test/docker:v1" "dir:$T/ddir"
check "... manifest.json is what the registry stored" same_bytes "$T/ddir/manifest.json" "$T/docker-manifest.json"
ok_dl=1
for dg in "${LAYERS[@]}"; do cmp -s "$T/ddir/${dg#sha256:}" "$(layout_blob "$L" "$dg")" || ok_dl=0; done
is "... every layer byte for byte" "$ok_dl" 1

# ------------------------------------------------------------ a two-platform index with --all
M=$T/multi
ID=$(oci_layout "$M" multi 2 amd64 arm64)
mapfile -t CHILDREN < <(jq -r '.manifests[].digest' "$(layout_blob "$M" "$ID")")
check "skopeo copy --all oci:M:multi -> docker://REG/test/multi:v1" \
    sko copy --all "${NOTLS[@]}" "oci:$M:multi" "docker://$REG/test/multi:v1"
api GET /v2/test/multi/manifests/v1
is "GET the index -> 200" "$STATUS" 200
is "... Content-Type is the OCI index type" "$(hdr Content-Type)" "$MT_OCI_INDEX"
is "... Docker-Content-Digest is the layout's index digest" "$(hdr Docker-Content-Digest)" "$ID"
check "... exact bytes" same_bytes "$BODY" "$(layout_blob "$M" "$ID")"
for c in "${CHILDREN[@]}"; do
    api GET "/v2/test/multi/manifests/$c"
    is "child manifest ${c:7:12} -> 200, OCI manifest" "$STATUS $(hdr Content-Type)" "200 $MT_OCI_MANIFEST"
    check "... exact bytes" same_bytes "$BODY" "$(layout_blob "$M" "$c")"
    mapfile -t cblobs < <(jq -r '.config.digest, .layers[].digest' "$BODY")
    check "... its config and layers are in test/multi" registry_has_blobs test/multi "${cblobs[@]}"
done
check "skopeo copy --all docker://REG/test/multi:v1 -> oci:MOUT:v1" \
    sko copy --all "${NOTLS[@]}" "docker://$REG/test/multi:v1" "oci:$T/mout:v1"
is "... the pulled index has the same digest" "$(layout_ref "$T/mout" v1)" "$ID"
check "... every blob of both platforms byte for byte" same_layout_blobs "$M" "$T/mout"
check "skopeo copy --override-arch arm64 (one platform from the index)" \
    sko --override-arch arm64 copy "${NOTLS[@]}" "docker://$REG/test/multi:v1" "oci:$T/arm:v1"
is "... picked the arm64 manifest" "$(layout_ref "$T/arm" v1)" \
    "$(jq -r '.manifests[] | select(.platform.architecture == "arm64") | .digest' "$(layout_blob "$M" "$ID")")"

# ------------------------------------------------------------ catalog
api GET /v2/_catalog
is "catalog lists every pushed repository, sorted" "$(jq -c '.repositories' "$BODY")" \
    '["other/place","test/docker","test/img","test/img2","test/multi"]'

done_testing
