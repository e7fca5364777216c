#!/usr/bin/env bash
# Real clients end to end, beyond skopeo.sh:
#   - skopeo copy --all of a two-platform OCI index, signature artifacts attached to it with curl (the
#     referrers API, its artifactType filter, and cosign's sha256-<hex>.sig tag schema), and the index
#     copied out again with every digest compared;
#   - skopeo inspect (--raw, --config), list-tags, delete, sync;
#   - podman (pull, tag, push, pull of an index, manifest push --all, load of an OCI archive and push, berth
#     as a registries.conf mirror), when installed and able to run here (as root, vfs storage under $T);
#   - containerd's ctr (pull, push to another repository, the same for an index, hosts.toml for berth and
#     for berth as a mirror), when installed and able to run here (as root: containerd is started with its
#     own config, root, state and socket under $T).
# Missing podman or containerd is a TAP "# SKIP" point, not a failure. Mirrors are set up for the made-up
# name upstream.example.com whose own address is a dead loopback port: nothing is sent off this machine.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ctrlib.bash"

command -v skopeo >/dev/null || skip_all "skopeo is not installed"
start_berth
NOTLS=(--src-tls-verify=false --dest-tls-verify=false)
TLS=(--tls-verify=false)

MT_EMPTY=application/vnd.oci.empty.v1+json
AT_COSIGN=application/vnd.dev.cosign.artifact.sig.v1+json
AT_NOTARY=application/vnd.cncf.notary.signature
AT_SBOM=application/spdx+json

# skip_test DESC REASON : a TAP point that is skipped
skip_test() { pass "$1 # SKIP $2"; }

# elapsed SINCE : seconds (one decimal) since the date +%s.%N value SINCE
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

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

# same_layout_blobs A B : every blob of layout A is in layout B with the same bytes
same_layout_blobs() {
    local f
    for f in "$1"/blobs/sha256/*; do
        cmp "$f" "$2/blobs/sha256/${f##*/}" || return 1
    done
}

# tree_digests DIR DIGEST [LABEL] : one line "label digest sha256-of-content" for DIGEST and everything it references in the
# OCI layout DIR (index -> manifests by platform -> config and layers); "MISSING" for an absent blob.
tree_digests() {
    local dir=$1 d=$2 label=${3:-top} f cd arch label2
    f=$(layout_blob "$dir" "$d")
    if [[ ! -f $f ]]; then
        echo "$label $d MISSING"
        return
    fi
    echo "$label $d $(sha256_of "$f")"
    if jq -e 'has("manifests")' "$f" >/dev/null; then
        while read -r cd arch; do
            tree_digests "$dir" "$cd" "$label/$arch"
        done < <(jq -r '.manifests[] | "\(.digest) \(.platform.architecture // "-")"' "$f")
    else
        while read -r label2 cd; do
            if [[ -f $(layout_blob "$dir" "$cd") ]]; then
                echo "$label2 $cd $(sha256_of "$(layout_blob "$dir" "$cd")")"
            else
                echo "$label2 $cd MISSING"
            fi
        done < <(jq -r --arg l "$label" '"\($l)/config \(.config.digest)", (.layers | to_entries[] | "\($l)/layer\(.key) \(.value.digest)")' "$f")
    fi
}

# access_log_has TEXT : berth's access log has a line containing TEXT
access_log_has() { grep -qF -- "$1" "$SRV/access.log"; }

# referrers_list : the referrers response in $BODY as a compact sorted list of {mediaType,digest,size,artifactType}
referrers_list() { jq -c '[.manifests[] | {mediaType, digest, size, artifactType}] | sort_by(.digest)' "$BODY"; }
# entry MT FILE ARTIFACT_TYPE : the descriptor the referrers API must give for a manifest file
entry() { jq -cn --arg mt "$1" --arg d "$(sha256_of "$2")" --argjson s "$(size_of "$2")" --arg at "$3" \
    '{mediaType: $mt, digest: $d, size: $s, artifactType: $at}'; }
sorted_entries() { printf '%s\n' "$@" | jq -sc 'sort_by(.digest)'; }

t_all=$(date +%s.%N)

# ================================================================ a two-platform index with signatures
M=$T/multi
ID=$(oci_layout "$M" app 2 amd64 arm64)
IDX=$(layout_blob "$M" "$ID")
AMD=$(jq -r '.manifests[] | select(.platform.architecture == "amd64") | .digest' "$IDX")
ARM=$(jq -r '.manifests[] | select(.platform.architecture == "arm64") | .digest' "$IDX")
AMD_CFG=$(jq -r .config.digest "$(layout_blob "$M" "$AMD")")
ARM_CFG=$(jq -r .config.digest "$(layout_blob "$M" "$ARM")")
mapfile -t ARM_LAYERS < <(jq -r '.layers[].digest' "$(layout_blob "$M" "$ARM")")

check "skopeo copy --all oci:M:app (amd64 + arm64 index) -> docker://REG/sig/app:1.0" \
    sko copy --all "${NOTLS[@]}" "oci:$M:app" "docker://$REG/sig/app:1.0"
api GET /v2/sig/app/manifests/1.0
is "GET sig/app:1.0 -> 200, the index's digest" "$STATUS $(hdr Docker-Content-Digest)" "200 $ID"
check "... exact bytes of the index" same_bytes "$BODY" "$IDX"

# ---- signature artifacts (what cosign and notation push), subject = the index
printf '{}' >"$T/empty.json"
is "(self-check) the empty config's digest" "$(sha256_of "$T/empty.json")" \
    sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a
printf '{"critical":{"identity":{"docker-reference":"%s/sig/app"},"image":{"docker-manifest-digest":"%s"},"type":"cosign container image signature"},"optional":null}' \
    "$REG" "$ID" >"$T/cosign-payload.json"
printf 'eyJhbGciOiJQUzI1NiJ9.%s.c2lnbmF0dXJl' "$(printf '{"targetArtifact":{"digest":"%s"}}' "$ID" | base64 -w0)" \
    >"$T/notary.jws"
printf '{"spdxVersion":"SPDX-2.3","name":"arm64 image","nonce":"%s"}' "$RANDOM$RANDOM" >"$T/sbom.json"
blobs_ok=1
for f in "$T/empty.json" "$T/cosign-payload.json" "$T/notary.jws" "$T/sbom.json"; do
    push_blob sig/app "$f" || blobs_ok=0
done
is "push the artifacts' blobs (empty config, cosign payload, notation JWS, SBOM) with curl" "$blobs_ok" 1

CFG_EMPTY=$(descriptor "$MT_EMPTY" "$T/empty.json")
subject_of() { jq -cn --arg mt "$1" --arg d "$2" --argjson s "$3" '{mediaType: $mt, digest: $d, size: $s}'; }
SUBJ_IDX=$(subject_of "$MT_OCI_INDEX" "$ID" "$(size_of "$IDX")")
SUBJ_ARM=$(subject_of "$MT_OCI_MANIFEST" "$ARM" "$(size_of "$(layout_blob "$M" "$ARM")")")
# artifact AT LAYER_MT LAYER_FILE SUBJECT ANNOTATIONS OUT : an OCI image manifest used as an artifact
artifact() {
    jq -n --arg at "$1" --argjson cfg "$CFG_EMPTY" --argjson l "$(descriptor "$2" "$3")" --argjson subj "$4" \
        --argjson ann "$5" \
        '{schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json", artifactType: $at,
          config: $cfg, layers: [$l + {annotations: $ann.layer}], subject: $subj, annotations: $ann.manifest}' >"$6"
}
artifact "$AT_COSIGN" application/vnd.dev.cosign.simplesigning.v1+json "$T/cosign-payload.json" "$SUBJ_IDX" \
    '{"layer":{"dev.cosignproject.cosign/signature":"MEUCIQDxVbVyq1a3d0Zm5o2Xb4b0ZQ=="},"manifest":{"org.opencontainers.image.created":"2024-05-01T00:00:00Z"}}' \
    "$T/sig-cosign.json"
artifact "$AT_NOTARY" application/jose+json "$T/notary.jws" "$SUBJ_IDX" \
    '{"layer":{},"manifest":{"io.cncf.notary.x509chain.thumbprint#S256":"[\"0a1b2c\"]"}}' "$T/sig-notary.json"
artifact "$AT_SBOM" "$AT_SBOM" "$T/sbom.json" "$SUBJ_ARM" '{"layer":{},"manifest":{"org.example.kind":"sbom"}}' \
    "$T/sbom-arm.json"
SIG_C=$(sha256_of "$T/sig-cosign.json")
SIG_N=$(sha256_of "$T/sig-notary.json")
SBOM=$(sha256_of "$T/sbom-arm.json")

api PUT "/v2/sig/app/manifests/$SIG_C" -H "Content-Type: $MT_OCI_MANIFEST" --data-binary "@$T/sig-cosign.json"
is "PUT the cosign signature (subject: the index) by digest -> 201" "$STATUS" 201
is "... OCI-Subject: the index's digest" "$(hdr OCI-Subject)" "$ID"
is "... Docker-Content-Digest" "$(hdr Docker-Content-Digest)" "$SIG_C"
api PUT "/v2/sig/app/manifests/$SIG_N" -H "Content-Type: $MT_OCI_MANIFEST" --data-binary "@$T/sig-notary.json"
is "PUT the notation signature (subject: the index) by digest -> 201, OCI-Subject: the index" \
    "$STATUS $(hdr OCI-Subject)" "201 $ID"
api PUT "/v2/sig/app/manifests/$SBOM" -H "Content-Type: $MT_OCI_MANIFEST" --data-binary "@$T/sbom-arm.json"
is "PUT an SBOM (subject: the arm64 manifest) by digest -> 201, OCI-Subject: the arm64 manifest" \
    "$STATUS $(hdr OCI-Subject)" "201 $ARM"

api GET "/v2/sig/app/referrers/$ID"
is "GET referrers of the index -> 200" "$STATUS" 200
is "... Content-Type: OCI index" "$(hdr Content-Type)" "$MT_OCI_INDEX"
is "... an image index (schemaVersion 2, mediaType)" "$(jq -c '[.schemaVersion, .mediaType]' "$BODY")" "[2,\"$MT_OCI_INDEX\"]"
is "... lists both signatures: mediaType, digest, size, artifactType" "$(referrers_list)" \
    "$(sorted_entries "$(entry "$MT_OCI_MANIFEST" "$T/sig-cosign.json" "$AT_COSIGN")" \
        "$(entry "$MT_OCI_MANIFEST" "$T/sig-notary.json" "$AT_NOTARY")")"
is "... with each manifest's annotations" \
    "$(jq -c --arg d "$SIG_C" '.manifests[] | select(.digest == $d) | .annotations' "$BODY")" \
    '{"org.opencontainers.image.created":"2024-05-01T00:00:00Z"}'
check "... no OCI-Filters-Applied header without a filter" bash -c "! grep -qi '^oci-filters-applied:' '$HDRS'"

api GET "/v2/sig/app/referrers/$ID?artifactType=application/vnd.dev.cosign.artifact.sig.v1%2Bjson"
is "GET referrers ?artifactType=<cosign> -> 200" "$STATUS" 200
is "... OCI-Filters-Applied: artifactType" "$(hdr OCI-Filters-Applied)" artifactType
is "... only the cosign signature" "$(referrers_list)" \
    "$(sorted_entries "$(entry "$MT_OCI_MANIFEST" "$T/sig-cosign.json" "$AT_COSIGN")")"
api GET "/v2/sig/app/referrers/$ID?artifactType=$AT_NOTARY"
is "GET referrers ?artifactType=<notation> -> only the notation signature, filter applied" \
    "$STATUS $(hdr OCI-Filters-Applied) $(referrers_list)" \
    "200 artifactType $(sorted_entries "$(entry "$MT_OCI_MANIFEST" "$T/sig-notary.json" "$AT_NOTARY")")"
api GET "/v2/sig/app/referrers/$ID?artifactType=application/vnd.example.none"
is "GET referrers ?artifactType=<none of them> -> 200, empty list, filter applied" \
    "$STATUS $(hdr OCI-Filters-Applied) $(jq -c .manifests "$BODY")" "200 artifactType []"
api GET "/v2/sig/app/referrers/$ARM"
is "GET referrers of the arm64 manifest -> only the SBOM" "$STATUS $(referrers_list)" \
    "200 $(sorted_entries "$(entry "$MT_OCI_MANIFEST" "$T/sbom-arm.json" "$AT_SBOM")")"
api GET "/v2/sig/app/referrers/$AMD"
is "GET referrers of the amd64 manifest (none) -> 200, empty list" "$STATUS $(jq -c .manifests "$BODY")" "200 []"

# ---- cosign's tag schema (for registries without the referrers API): sha256-<hex>.sig
SIGTAG=sha256-${ID#sha256:}.sig
api PUT "/v2/sig/app/manifests/$SIGTAG" -H "Content-Type: $MT_OCI_MANIFEST" --data-binary "@$T/sig-cosign.json"
is "PUT the cosign signature under the tag $SIGTAG -> 201, same digest, OCI-Subject" \
    "$STATUS $(hdr Docker-Content-Digest) $(hdr OCI-Subject)" "201 $SIG_C $ID"
api GET "/v2/sig/app/manifests/$SIGTAG" -H "Accept: $MT_OCI_MANIFEST"
is "GET the signature by that tag -> 200, its digest, OCI manifest" \
    "$STATUS $(hdr Docker-Content-Digest) $(hdr Content-Type)" "200 $SIG_C $MT_OCI_MANIFEST"
check "... exact bytes" same_bytes "$BODY" "$T/sig-cosign.json"
sko inspect --raw "${TLS[@]}" "docker://$REG/sig/app:$SIGTAG" >"$T/sigraw.json" 2>"$T/err"
check "skopeo inspect --raw docker://REG/sig/app:$SIGTAG: the exact signature bytes" \
    same_bytes "$T/sigraw.json" "$T/sig-cosign.json"
sko list-tags "${TLS[@]}" "docker://$REG/sig/app" >"$T/tags.json" 2>"$T/err"
is "skopeo list-tags sig/app: the release tag and the signature tag" "$(jq -c .Tags "$T/tags.json")" "[\"1.0\",\"$SIGTAG\"]"
api GET "/v2/sig/app/referrers/$ID"
is "referrers still list the cosign signature once (tagging adds no entry)" \
    "$(jq --arg d "$SIG_C" '[.manifests[] | select(.digest == $d)] | length' "$BODY") $(jq '.manifests | length' "$BODY")" "1 2"

# ---- the index out again, every digest compared
check "skopeo copy --all docker://REG/sig/app:1.0 -> oci:OUT:1.0" \
    sko copy --all "${NOTLS[@]}" "docker://$REG/sig/app:1.0" "oci:$T/out:1.0"
is "... the pulled layout's tag points at the index digest" "$(layout_ref "$T/out" 1.0)" "$ID"
tree_digests "$M" "$ID" >"$T/tree.src"
tree_digests "$T/out" "$ID" >"$T/tree.out"
is "(self-check) the source tree: index, 2 manifests, 2 configs, 4 layers" "$(grep -c . "$T/tree.src")" 9
is "... every digest (index, both manifests, configs, layers) and its content hash as in the source" \
    "$(cat "$T/tree.out")" "$(cat "$T/tree.src")"
is "... the same set of blobs, nothing more" "$(ls "$T/out/blobs/sha256" | sort | tr '\n' ' ')" \
    "$(ls "$M/blobs/sha256" | sort | tr '\n' ' ')"
check "... every blob byte for byte" same_layout_blobs "$M" "$T/out"
check "skopeo copy --all registry -> registry: sig/app:1.0 -> sig/mirror:1.0" \
    sko copy --all "${NOTLS[@]}" "docker://$REG/sig/app:1.0" "docker://$REG/sig/mirror:1.0"
api GET /v2/sig/mirror/manifests/1.0
is "... the mirror's index has the same digest" "$STATUS $(hdr Docker-Content-Digest)" "200 $ID"
api GET "/v2/sig/mirror/manifests/$ARM"
is "... and so has its arm64 manifest" "$STATUS $(hdr Docker-Content-Digest)" "200 $ARM"
check "... whose config and layers are in sig/mirror" registry_has_blobs sig/mirror "$ARM_CFG" "${ARM_LAYERS[@]}"
check "skopeo copy the signature by its tag: sig/app:$SIGTAG -> sig/mirror (skopeo --all copies no referrers)" \
    sko copy "${NOTLS[@]}" "docker://$REG/sig/app:$SIGTAG" "docker://$REG/sig/mirror:$SIGTAG"
api GET "/v2/sig/mirror/manifests/$SIGTAG"
is "... same digest in sig/mirror" "$STATUS $(hdr Docker-Content-Digest)" "200 $SIG_C"
api GET "/v2/sig/mirror/referrers/$ID"
is "... and the mirror's referrers of the index list it (only it)" "$STATUS $(referrers_list)" \
    "200 $(sorted_entries "$(entry "$MT_OCI_MANIFEST" "$T/sig-cosign.json" "$AT_COSIGN")")"

# ================================================================ skopeo inspect
sko inspect --raw "${TLS[@]}" "docker://$REG/sig/app:1.0" >"$T/raw.json" 2>"$T/err"
check "skopeo inspect --raw of the index: the exact bytes pushed" same_bytes "$T/raw.json" "$IDX"
sko inspect --raw "${TLS[@]}" "docker://$REG/sig/app@$ARM" >"$T/raw.json" 2>"$T/err"
check "skopeo inspect --raw of the arm64 manifest by digest: the exact bytes" same_bytes "$T/raw.json" "$(layout_blob "$M" "$ARM")"
sko --override-arch arm64 inspect "${TLS[@]}" "docker://$REG/sig/app:1.0" >"$T/inspect.json" 2>"$T/err"
is "skopeo --override-arch arm64 inspect: exit 0" "$?" 0 || diag "$(cat "$T/err")"
is "... Digest (the index), Architecture, Layers of the arm64 image" \
    "$(jq -c '[.Digest, .Architecture, .Layers]' "$T/inspect.json")" \
    "$(jq -nc --arg d "$ID" '[$d, "arm64", $ARGS.positional]' --args "${ARM_LAYERS[@]}")"
sko --override-arch arm64 inspect --config --raw "${TLS[@]}" "docker://$REG/sig/app:1.0" >"$T/cfg.json" 2>"$T/err"
check "skopeo inspect --config --raw (arm64): the exact config blob" same_bytes "$T/cfg.json" "$(layout_blob "$M" "$ARM_CFG")"
sko --override-arch amd64 inspect --config "${TLS[@]}" "docker://$REG/sig/app:1.0" >"$T/cfg.json" 2>"$T/err"
is "skopeo inspect --config (amd64): the config, parsed (architecture, rootfs, config)" "$(jq -Sc . "$T/cfg.json")" \
    "$(jq -Sc . "$(layout_blob "$M" "$AMD_CFG")")"

# ================================================================ skopeo list-tags
S=$T/single
SD=$(oci_layout "$S" one 2)
SCFG=$(jq -r .config.digest "$(layout_blob "$S" "$SD")")
mapfile -t SLAYERS < <(jq -r '.layers[].digest' "$(layout_blob "$S" "$SD")")
SD2=$(oci_layout "$S" two 1)
S2CFG=$(jq -r .config.digest "$(layout_blob "$S" "$SD2")")
mapfile -t S2LAYERS < <(jq -r '.layers[].digest' "$(layout_blob "$S" "$SD2")")
TAGS=(v1.2 latest v1.10 1.0 V2 _build a-b.c z 10.0)
tags_ok=1
for t in "${TAGS[@]}"; do
    sko copy "${NOTLS[@]}" "oci:$S:one" "docker://$REG/tags/app:$t" >"$T/err" 2>&1 || {
        tags_ok=0
        diag "tag $t: $(tail -n 3 "$T/err")"
    }
done
is "skopeo copy the same image under ${#TAGS[@]} tags" "$tags_ok" 1
sko list-tags "${TLS[@]}" "docker://$REG/tags/app" >"$T/tags.json" 2>"$T/err"
is "skopeo list-tags exits 0" "$?" 0 || diag "$(cat "$T/err")"
is "... Repository" "$(jq -r .Repository "$T/tags.json")" "$REG/tags/app"
is "... every tag, in lexical (byte) order as served" "$(jq -c .Tags "$T/tags.json")" \
    "$(printf '%s\n' "${TAGS[@]}" | LC_ALL=C sort | jq -R . | jq -sc .)"
sko list-tags "${TLS[@]}" "docker://$REG/tags/nothing-here" >"$T/tags.json" 2>"$T/err"
isnt "skopeo list-tags of a repository that does not exist fails" "$?" 0
api GET /v2/tags/nothing-here/tags/list
is_error "... the registry answered 404 NAME_UNKNOWN" 404 NAME_UNKNOWN

# ================================================================ skopeo delete
check "skopeo copy oci:S:one -> del/app:a" sko copy "${NOTLS[@]}" "oci:$S:one" "docker://$REG/del/app:a"
check "skopeo copy oci:S:one -> del/app:a2 (same manifest, second tag)" sko copy "${NOTLS[@]}" "oci:$S:one" "docker://$REG/del/app:a2"
check "skopeo copy oci:S:two -> del/app:b (another manifest)" sko copy "${NOTLS[@]}" "oci:$S:two" "docker://$REG/del/app:b"
check "skopeo copy oci:S:one -> del/keep:a (same blobs, other repository)" sko copy "${NOTLS[@]}" "oci:$S:one" "docker://$REG/del/keep:a"
check "skopeo delete docker://REG/del/app:a" sko delete "${TLS[@]}" "docker://$REG/del/app:a"
check "... it sent DELETE /v2/del/app/manifests/<digest of a> and berth answered 202" \
    access_log_has "\"DELETE /v2/del/app/manifests/$SD HTTP/1.1\" 202"
api GET /v2/del/app/manifests/a
is_error "GET del/app:a -> 404 MANIFEST_UNKNOWN" 404 MANIFEST_UNKNOWN
api GET "/v2/del/app/manifests/$SD"
is_error "GET del/app@<digest of a> -> 404 MANIFEST_UNKNOWN" 404 MANIFEST_UNKNOWN
api HEAD /v2/del/app/manifests/a2
is "HEAD del/app:a2 (tag of the deleted manifest) -> 404" "$STATUS" 404
api GET /v2/del/app/manifests/b
is "GET del/app:b (another manifest) -> 200, its digest" "$STATUS $(hdr Docker-Content-Digest)" "200 $SD2"
check "... b's config and layers still download from del/app" registry_has_blobs del/app "$S2CFG" "${S2LAYERS[@]}"
sko list-tags "${TLS[@]}" "docker://$REG/del/app" >"$T/tags.json" 2>"$T/err"
is "skopeo list-tags del/app -> only b" "$(jq -c .Tags "$T/tags.json")" '["b"]'
api GET /v2/del/keep/manifests/a
is "GET del/keep:a (same manifest, other repository) -> 200, its digest" "$STATUS $(hdr Docker-Content-Digest)" "200 $SD"
check "... its config and layers still download from del/keep" registry_has_blobs del/keep "$SCFG" "${SLAYERS[@]}"
check "skopeo copy del/keep:a -> oci: still works" sko copy "${NOTLS[@]}" "docker://$REG/del/keep:a" "oci:$T/kept:a"
is "... with the same digest" "$(layout_ref "$T/kept" a)" "$SD"
sko inspect "${TLS[@]}" "docker://$REG/del/app:a" >/dev/null 2>"$T/err"
isnt "skopeo inspect del/app:a fails after the delete" "$?" 0
sko delete "${TLS[@]}" "docker://$REG/del/app:a" >/dev/null 2>"$T/err"
isnt "skopeo delete of the deleted tag fails" "$?" 0

# ================================================================ skopeo sync
if sko sync --help >/dev/null 2>&1; then
    sync_ok=1
    for t in one two; do
        sko copy "${NOTLS[@]}" "oci:$S:$t" "docker://$REG/sync/src:$t" >"$T/err" 2>&1 || sync_ok=0
    done
    sko copy --all "${NOTLS[@]}" "oci:$M:app" "docker://$REG/sync/src:multi" >"$T/err" 2>&1 || sync_ok=0
    is "push sync/src:one, :two and :multi (an index)" "$sync_ok" 1
    check "skopeo sync --all --src docker --dest docker REG/sync/src -> REG/sync/mirror" \
        sko sync --all --src docker --dest docker "${NOTLS[@]}" "$REG/sync/src" "$REG/sync/mirror"
    sko list-tags "${TLS[@]}" "docker://$REG/sync/mirror/src" >"$T/tags.json" 2>"$T/err"
    is "... sync/mirror/src has the three tags" "$(jq -c .Tags "$T/tags.json")" '["multi","one","two"]'
    got=
    for t in one two multi; do
        api HEAD "/v2/sync/mirror/src/manifests/$t" -H "Accept: $MT_OCI_MANIFEST, $MT_OCI_INDEX"
        got+="$t=$STATUS,$(hdr Docker-Content-Digest) "
    done
    is "... each tag has the source's digest" "$got" "one=200,$SD two=200,$SD2 multi=200,$ID "
    api GET "/v2/sync/mirror/src/manifests/$ARM"
    is "... and the index's arm64 manifest was copied" "$STATUS $(hdr Docker-Content-Digest)" "200 $ARM"

    check "skopeo sync --all --src docker --dest dir REG/sync/src -> DIR" \
        sko sync --all --src docker --dest dir --src-tls-verify=false "$REG/sync/src" "$T/sync"
    is "... one folder per tag" "$(cd "$T/sync" && ls -d src:* | tr '\n' ' ')" "src:multi src:one src:two "
    check "... src:one/manifest.json is the exact manifest" same_bytes "$T/sync/src:one/manifest.json" "$(layout_blob "$S" "$SD")"
    check "... src:two/manifest.json is the exact manifest" same_bytes "$T/sync/src:two/manifest.json" "$(layout_blob "$S" "$SD2")"
    check "... src:multi/manifest.json is the exact index" same_bytes "$T/sync/src:multi/manifest.json" "$IDX"
    ok_sync=1
    for dg in "$SCFG" "${SLAYERS[@]}"; do cmp -s "$T/sync/src:one/${dg#sha256:}" "$(layout_blob "$S" "$dg")" || ok_sync=0; done
    for dg in "$ARM_CFG" "${ARM_LAYERS[@]}"; do cmp -s "$T/sync/src:multi/${dg#sha256:}" "$(layout_blob "$M" "$dg")" || ok_sync=0; done
    is "... the blobs of :one and of :multi's arm64 image byte for byte" "$ok_sync" 1
else
    skip_test "skopeo sync" "this skopeo has no sync command"
fi
diag "skopeo sections took $(elapsed "$t_all") s"

# ================================================================ podman
PODMAN_SKIP=
if ! command -v podman >/dev/null; then
    PODMAN_SKIP="podman not installed"
elif ((EUID != 0)); then
    PODMAN_SKIP="podman tests run as root only"
else
    mkdir -p "$T/podman"
    P=(podman --storage-driver vfs --root "$T/podman/storage" --runroot "$T/podman/run" --tmpdir "$T/podman/tmp"
        --cgroup-manager cgroupfs --events-backend none)
    "${P[@]}" info >"$T/podman/info" 2>&1 || PODMAN_SKIP="podman cannot run here: $(tail -n 1 "$T/podman/info")"
fi
if [[ -n $PODMAN_SKIP ]]; then
    skip_test "podman pull, tag, push, manifest push, load + push" "$PODMAN_SKIP"
else
    t_pod=$(date +%s.%N)
    diag "$(podman --version)"
    check "skopeo copy oci:S:one -> docker://REG/pod/src:v1" sko copy "${NOTLS[@]}" "oci:$S:one" "docker://$REG/pod/src:v1"
    check "podman pull --tls-verify=false REG/pod/src:v1" "${P[@]}" pull -q "${TLS[@]}" "$REG/pod/src:v1"
    is "... image ID is the config digest, Digest the manifest's" \
        "$("${P[@]}" image inspect --format '{{.Id}} {{.Digest}}' "$REG/pod/src:v1" 2>&1)" "${SCFG#sha256:} $SD"
    check "podman tag REG/pod/src:v1 REG/pod/dst:v2" "${P[@]}" tag "$REG/pod/src:v1" "$REG/pod/dst:v2"
    check "podman push --tls-verify=false REG/pod/dst:v2" \
        "${P[@]}" push "${TLS[@]}" --digestfile "$T/podman/dg1" "$REG/pod/dst:v2"
    PD1=$(cat "$T/podman/dg1" 2>/dev/null)
    sko inspect "${TLS[@]}" "docker://$REG/pod/dst:v2" >"$T/inspect.json" 2>"$T/err"
    is "skopeo inspect pod/dst:v2: Digest is podman's --digestfile" "$(jq -r .Digest "$T/inspect.json")" "$PD1"
    is "... same layers as the skopeo-pushed source (podman reused the compressed blobs)" \
        "$(jq -c .Layers "$T/inspect.json")" "$(jq -nc '$ARGS.positional' --args "${SLAYERS[@]}")"
    api GET /v2/pod/dst/manifests/v2
    is "GET pod/dst:v2 -> 200, Docker-Content-Digest = sha256 of the body = podman's digest" \
        "$STATUS $(hdr Docker-Content-Digest) $(sha256_of "$BODY")" "200 $PD1 $PD1"
    is "... the same config blob" "$(jq -r .config.digest "$BODY")" "$SCFG"
    check "... its blobs download from pod/dst" registry_has_blobs pod/dst $(jq -r '.config.digest, .layers[].digest' "$BODY")

    check "podman pull --arch arm64 REG/sig/app:1.0 (the index)" "${P[@]}" pull -q --arch arm64 "${TLS[@]}" "$REG/sig/app:1.0"
    "${P[@]}" image inspect --format '{{.Id}} {{.Architecture}}{{range .RepoDigests}} {{.}}{{end}}' "$REG/sig/app:1.0" \
        >"$T/podman/insp" 2>&1
    is "... picked the arm64 image (its config as image ID)" "$(cut -d' ' -f1,2 "$T/podman/insp")" "${ARM_CFG#sha256:} arm64"
    is "... RepoDigests name the index and the arm64 manifest" \
        "$(cut -d' ' -f3- "$T/podman/insp" | tr ' ' '\n' | sort | tr '\n' ' ')" \
        "$(printf '%s\n' "$REG/sig/app@$ID" "$REG/sig/app@$ARM" | sort | tr '\n' ' ')"

    check "podman manifest create + add --all docker://REG/sig/app:1.0" bash -c '
        "${@:3}" manifest create localhost/berth-list && "${@:3}" manifest add --all --tls-verify=false localhost/berth-list "docker://$1/sig/app:1.0"' \
        _ "$REG" _ "${P[@]}"
    check "podman manifest push --all -> docker://REG/pod/list:1" \
        "${P[@]}" manifest push --all "${TLS[@]}" --digestfile "$T/podman/dg2" localhost/berth-list "docker://$REG/pod/list:1"
    PD2=$(cat "$T/podman/dg2" 2>/dev/null)
    api GET /v2/pod/list/manifests/1 -H "Accept: $MT_OCI_INDEX"
    is "GET pod/list:1 -> 200, an OCI index with podman's digest" "$STATUS $(hdr Content-Type) $(hdr Docker-Content-Digest)" \
        "200 $MT_OCI_INDEX $PD2"
    is "... the children are the source's manifests, unchanged (digest, size, platform)" \
        "$(jq -c '[.manifests[] | {digest, size, platform}]' "$BODY")" "$(jq -c '[.manifests[] | {digest, size, platform}]' "$IDX")"
    check "... both child manifests are in pod/list with their bytes" bash -c '
        for d in "$1" "$2"; do curl -sf "$3/v2/pod/list/manifests/$d" -H "Accept: $4" | cmp - "$5/blobs/sha256/${d#sha256:}" || exit 1; done' \
        _ "$AMD" "$ARM" "$URL" "$MT_OCI_MANIFEST" "$M"

    C=$T/archive
    CD=$(oci_layout "$C" c1 2)
    CCFG=$(jq -r .config.digest "$(layout_blob "$C" "$CD")")
    check "skopeo copy oci:C:c1 -> oci-archive:c.tar:archived/c:1" \
        sko copy "oci:$C:c1" "oci-archive:$T/c.tar:archived/c:1"
    check "podman load -i c.tar (OCI archive)" "${P[@]}" load -i "$T/c.tar"
    is "... loaded as localhost/archived/c:1 with the config as image ID" \
        "$("${P[@]}" image inspect --format '{{.Id}}' localhost/archived/c:1 2>&1)" "${CCFG#sha256:}"
    check "podman push localhost/archived/c:1 -> REG/pod/loaded:1" \
        "${P[@]}" push "${TLS[@]}" --digestfile "$T/podman/dg3" localhost/archived/c:1 "$REG/pod/loaded:1"
    PD3=$(cat "$T/podman/dg3" 2>/dev/null)
    sko inspect --raw "${TLS[@]}" "docker://$REG/pod/loaded:1" >"$T/raw.json" 2>"$T/err"
    is "skopeo inspect --raw pod/loaded:1: sha256 is podman's digest" "$(sha256_of "$T/raw.json")" "$PD3"
    is "... the config is the archive's" "$(jq -r .config.digest "$T/raw.json")" "$CCFG"
    # podman may recompress layers it loaded; what must hold is that each layer, as berth serves it,
    # matches its digest and unpacks to the config's diff_id
    diffs_ok=1
    mapfile -t DIFF_IDS < <(jq -r '.rootfs.diff_ids[]' "$(layout_blob "$C" "$CCFG")")
    mapfile -t PLAYERS < <(jq -r '.layers[].digest' "$T/raw.json")
    ((${#PLAYERS[@]} == ${#DIFF_IDS[@]})) || diffs_ok=0
    for i in "${!PLAYERS[@]}"; do
        api GET "/v2/pod/loaded/blobs/${PLAYERS[$i]}"
        [[ $STATUS == 200 && $(sha256_of "$BODY") == "${PLAYERS[$i]}" ]] || diffs_ok=0
        [[ sha256:$(gzip -dc <"$BODY" | sha256sum | cut -d' ' -f1) == "${DIFF_IDS[$i]:-}" ]] || diffs_ok=0
    done
    is "... every layer downloads, matches its digest and unpacks to the archive's diff_id" "$diffs_ok" 1
    check "skopeo copy docker://REG/pod/loaded:1 -> oci: (a client reads back what podman pushed)" \
        sko copy "${NOTLS[@]}" "docker://$REG/pod/loaded:1" "oci:$T/podout:1"
    is "... same manifest digest" "$(layout_ref "$T/podout" 1)" "$PD3"

    # berth as a pull-through mirror in registries.conf: upstream.example.com's primary location is a dead
    # loopback port, so a failing mirror can only fail the pull, never reach out
    check "skopeo copy oci:S:one -> docker://REG/library/app:1" sko copy "${NOTLS[@]}" "oci:$S:one" "docker://$REG/library/app:1"
    cat >"$T/podman/registries.conf" <<EOF2
[[registry]]
prefix = "upstream.example.com"
location = "127.0.0.1:1"
insecure = true

[[registry.mirror]]
location = "$REG"
insecure = true
EOF2
    check "podman pull upstream.example.com/library/app:1 with berth as its registries.conf mirror" \
        env CONTAINERS_REGISTRIES_CONF="$T/podman/registries.conf" "${P[@]}" pull -q upstream.example.com/library/app:1
    is "... the image's Digest is berth's manifest" \
        "$("${P[@]}" image inspect --format '{{.Digest}}' upstream.example.com/library/app:1 2>&1)" "$SD"
    check "... berth served it to podman (GET /v2/library/app/manifests/1 -> 200, user agent containers/...)" \
        bash -c "grep -F '\"GET /v2/library/app/manifests/1 HTTP/1.1\" 200 ' '$SRV/access.log' | grep -qF '\"containers/'"
    diag "podman section took $(elapsed "$t_pod") s"
fi

# ================================================================ containerd (ctr)
trap 'stop_containerd; _cleanup' EXIT

start_containerd
if [[ -n $CTD_SKIP ]]; then
    skip_test "ctr images pull/push" "$CTD_SKIP"
else
    t_ctd=$(date +%s.%N)
    diag "$(containerd --version)"
    # ctr_digest REF : the digest ctr records for an image
    ctr_digest() { "${CT[@]}" images ls | awk -v r="$1" '$1 == r { print $3 }'; }
    check "skopeo copy oci:S:two -> docker://REG/ctr/src:v1" sko copy "${NOTLS[@]}" "oci:$S:two" "docker://$REG/ctr/src:v1"
    check "ctr images pull --plain-http REG/ctr/src:v1 (fetch and unpack)" \
        "${CT[@]}" images pull --plain-http "$REG/ctr/src:v1"
    is "... containerd records the manifest digest" "$(ctr_digest "$REG/ctr/src:v1")" "$SD2"
    check "ctr images tag + push --plain-http -> REG/ctr/dst:v1" bash -c '
        "${@:3}" images tag "$1/ctr/src:v1" "$1/ctr/dst:v1" && "${@:3}" images push --plain-http "$1/ctr/dst:v1"' \
        _ "$REG" _ "${CT[@]}"
    api GET /v2/ctr/dst/manifests/v1
    is "GET ctr/dst:v1 -> 200, the same digest" "$STATUS $(hdr Docker-Content-Digest)" "200 $SD2"
    check "... exact bytes" same_bytes "$BODY" "$(layout_blob "$S" "$SD2")"
    check "... config and layers in ctr/dst" registry_has_blobs ctr/dst "$S2CFG" "${S2LAYERS[@]}"
    check "... containerd mounted the blobs from ctr/src (POST ?mount=&from= -> 201)" \
        access_log_has "\"POST /v2/ctr/dst/blobs/uploads/?mount=$S2CFG&from=ctr/src HTTP/1.1\" 201"

    check "ctr images pull --plain-http --all-platforms REG/sig/app:1.0 (the index)" \
        "${CT[@]}" images pull --plain-http --all-platforms "$REG/sig/app:1.0"
    is "... containerd records the index digest" "$(ctr_digest "$REG/sig/app:1.0")" "$ID"
    check "ctr images tag + push --plain-http -> REG/ctr/multi:1.0" bash -c '
        "${@:3}" images tag "$1/sig/app:1.0" "$1/ctr/multi:1.0" && "${@:3}" images push --plain-http "$1/ctr/multi:1.0"' \
        _ "$REG" _ "${CT[@]}"
    api GET /v2/ctr/multi/manifests/1.0
    is "GET ctr/multi:1.0 -> 200, the index digest" "$STATUS $(hdr Docker-Content-Digest)" "200 $ID"
    check "... exact bytes" same_bytes "$BODY" "$IDX"
    multi_ok=1
    for c in "$AMD" "$ARM"; do
        api GET "/v2/ctr/multi/manifests/$c"
        [[ $STATUS == 200 ]] && cmp -s "$BODY" "$(layout_blob "$M" "$c")" || multi_ok=0
        mapfile -t cb < <(jq -r '.config.digest, .layers[].digest' "$(layout_blob "$M" "$c")")
        registry_has_blobs ctr/multi "${cb[@]}" >/dev/null || multi_ok=0
    done
    is "... both platforms' manifests (exact bytes), configs and layers in ctr/multi" "$multi_ok" 1

    # hosts.toml (what a Kubernetes node's containerd reads from config_path): berth for its own name, with
    # push, so no --plain-http; and berth as the mirror of upstream.example.com (whose server is a dead
    # loopback port: a failing mirror can only fail the pull, never reach out)
    mkdir -p "$K/hosts/$REG" "$K/hosts/upstream.example.com"
    printf 'server = "http://%s"\n\n[host."http://%s"]\n  capabilities = ["pull", "resolve", "push"]\n' "$REG" "$REG" \
        >"$K/hosts/$REG/hosts.toml"
    printf 'server = "http://127.0.0.1:1"\n\n[host."http://%s"]\n  capabilities = ["pull", "resolve"]\n' "$REG" \
        >"$K/hosts/upstream.example.com/hosts.toml"
    check "skopeo copy oci:S:one -> docker://REG/library/app:1" sko copy "${NOTLS[@]}" "oci:$S:one" "docker://$REG/library/app:1"
    check "ctr images pull --hosts-dir: upstream.example.com/library/app:1 through berth as its mirror" \
        "${CT[@]}" images pull --hosts-dir "$K/hosts" upstream.example.com/library/app:1
    is "... containerd records berth's manifest digest" "$(ctr_digest upstream.example.com/library/app:1)" "$SD"
    check "... berth served GET /v2/library/app/manifests/<digest>?ns=upstream.example.com -> 200" \
        access_log_has "\"GET /v2/library/app/manifests/$SD?ns=upstream.example.com HTTP/1.1\" 200"
    check "ctr images tag + push --hosts-dir (berth's hosts.toml, no --plain-http) -> REG/ctr/hosts:1" bash -c '
        "${@:4}" images tag upstream.example.com/library/app:1 "$1/ctr/hosts:1" &&
        "${@:4}" images push --hosts-dir "$2" "$1/ctr/hosts:1"' _ "$REG" "$K/hosts" _ "${CT[@]}"
    api GET /v2/ctr/hosts/manifests/1
    is "GET ctr/hosts:1 -> 200, the same digest" "$STATUS $(hdr Docker-Content-Digest)" "200 $SD"
    stop_containerd
    diag "containerd section took $(elapsed "$t_ctd") s"
fi

diag "clients.sh took $(elapsed "$t_all") s"
done_testing
