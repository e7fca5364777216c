#!/usr/bin/env bash
# berth import: a real docker-registry (CNCF distribution 2.8.2, Debian's package) on loopback with its filesystem
# storage in this test's folder, filled with skopeo (single-platform OCI and Docker schema 2 images, an OCI index and a
# Docker manifest list, several tags, nested repository names, an SBOM artifact tagged the cosign way and a signature
# pushed by digest, both with a `subject`); its rootdirectory imported into berth
#   - into an empty root with berth stopped, then everything pulled from berth with skopeo and compared byte for byte
#     with what docker-registry serves (manifests, digests, blobs, tag lists, catalog), referrers listed, blobs hard-linked;
#   - while berth serves (what it served before stays, the new repositories appear at once), and a second pass after
#     more pushes to docker-registry picks up only what is new;
#   - killed mid-way (after a blob is in place, before the database records it; and SIGKILL during a large copy),
#     then run again: it completes;
#   - from a tree with a corrupt blob (reported, its image left out, the rest imported, exit status 1);
#   - from a hostile tree (symbolic links out of the tree, invalid names): nothing outside is read.
. "$(dirname "$0")/lib.sh"

command -v skopeo >/dev/null || skip_all "skopeo is not installed"
command -v docker-registry >/dev/null || skip_all "docker-registry (Debian package docker-registry) is not installed"
NOTLS=(--src-tls-verify=false --dest-tls-verify=false)

# ---------------------------------------------------------------- docker-registry

DR_PID=
# start_dr ROOT : docker-registry on a free loopback port with filesystem storage at ROOT; sets DR (host:port)
start_dr() {
    local port i
    port=$(free_port)
    DR=127.0.0.1:$port
    mkdir -p "$1"
    cat >"$T/dr.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $1
  delete:
    enabled: true
http:
  addr: $DR
EOF
    docker-registry serve "$T/dr.yml" >>"$T/dr.log" 2>&1 &
    DR_PID=$!
    for ((i = 0; i < 100; i++)); do
        [[ $(curl -s -o /dev/null -w '%{http_code}' "http://$DR/v2/") == 200 ]] && return 0
        sleep 0.1
    done
    echo "Bail out! docker-registry did not start: $(tail -5 "$T/dr.log")"
    exit 1
}
stop_dr() {
    [[ -n $DR_PID ]] && kill "$DR_PID" 2>/dev/null && wait "$DR_PID" 2>/dev/null
    DR_PID=
}
trap 'stop_dr; _cleanup' EXIT

# next_data : the data folder the next start_berth will use
next_data() { printf '%s/srv%d/data' "$T" $((_nsrv + 1)); }

# import_into DATA ARGS... : berth import into DATA; sets RC, and the output in $T/imp.out, $T/imp.err
import_into() {
    local data=$1
    shift
    env BERTH_STORAGE_ROOT="$data" BERTH_MODE=open "$BERTH" import "$@" >"$T/imp.out" 2>"$T/imp.err"
    RC=$?
}
imp_summary() { grep '^import: [0-9]* repositories' "$T/imp.out"; }

# raw REGISTRY REF : skopeo inspect --raw of docker://REGISTRY/REF into stdout
raw() { sko inspect --raw --tls-verify=false "docker://$1/$2"; }

# same_raw REF : the manifest bytes berth ($REG) serves for REF equal docker-registry's ($DR)
same_raw() {
    raw "$DR" "$1" >"$T/a.raw" && raw "$REG" "$1" >"$T/b.raw" && cmp "$T/a.raw" "$T/b.raw"
}

# pull_all REGISTRY REF OUT : skopeo copy --all (every platform) of REF into the folder OUT (dir:, which keeps every
# manifest and blob as it comes, named by digest)
pull_all() {
    rm -rf "$3"
    sko copy --all --preserve-digests --src-tls-verify=false "docker://$1/$2" "dir:$3" >/dev/null
}

# same_pull REF : pulled from berth and from docker-registry, the two folders hold the same files, byte for byte
same_pull() {
    pull_all "$DR" "$1" "$T/pa" && pull_all "$REG" "$1" "$T/pb" || return 1
    diff <(cd "$T/pa" && sha256sum -- * | sort) <(cd "$T/pb" && sha256sum -- * | sort)
}

tags_of() { sko list-tags --tls-verify=false "docker://$1/$2" | jq -c '.Tags | sort'; }
catalog_of() { curl -s "http://$1/v2/_catalog?n=1000" | jq -c '.repositories | sort'; }
src_blob() { printf '%s/docker/registry/v2/blobs/sha256/%s/%s/data' "$SRC" "${1:7:2}" "${1#sha256:}"; }

# ---------------------------------------------------------------- fill docker-registry

SRC=$T/dr
start_dr "$SRC"
L=$T/layout
IDX=$(oci_layout "$L" multi 2 amd64 arm64)
ONE=$(oci_layout "$L" one 2)
TWO=$(oci_layout "$L" two 3)
DEEP=$(oci_layout "$L" deep 1)
check "skopeo copy --all: an OCI index (amd64, arm64) -> docker-registry team/sub/app:1.0" \
    sko copy --all "${NOTLS[@]}" "oci:$L:multi" "docker://$DR/team/sub/app:1.0"
check "skopeo copy --all --format v2s2: the same as a Docker manifest list -> team/sub/app:1.0-docker" \
    sko copy --all --format v2s2 "${NOTLS[@]}" "oci:$L:multi" "docker://$DR/team/sub/app:1.0-docker"
check "an OCI image manifest -> one:oci" sko copy "${NOTLS[@]}" "oci:$L:one" "docker://$DR/one:oci"
check "the same as a Docker schema 2 manifest -> one:docker" \
    sko copy --format v2s2 "${NOTLS[@]}" "oci:$L:one" "docker://$DR/one:docker"
check "more tags: one:latest, one:v1 (as one:oci)" sh -c "skopeo --insecure-policy copy --src-tls-verify=false \
    --dest-tls-verify=false docker://$DR/one:oci docker://$DR/one:latest >/dev/null &&
    skopeo --insecure-policy copy --src-tls-verify=false --dest-tls-verify=false docker://$DR/one:oci docker://$DR/one:v1 >/dev/null"
check "a three-layer image -> team/two:2.0" sko copy "${NOTLS[@]}" "oci:$L:two" "docker://$DR/team/two:2.0"
check "a nested name -> a/b/c/d/deep:x" sko copy "${NOTLS[@]}" "oci:$L:deep" "docker://$DR/a/b/c/d/deep:x"
check "a repository with another inside it -> a/b:parent" sko copy "${NOTLS[@]}" "oci:$L:deep" "docker://$DR/a/b:parent"

# An SBOM artifact whose subject is one:oci, in an OCI layout pushed with skopeo under the cosign-style tag; a signature
# whose subject is the index, pushed by digest only (what an OCI 1.1 client does), with curl.
ONE_RAW=$T/one.raw
raw "$DR" one:oci >"$ONE_RAW"
ONE_OCI=$(sha256_of "$ONE_RAW")
A=$T/artifact
mkdir -p "$A/blobs/sha256"
printf '{}' >"$A/blobs/sha256/44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
printf '{"spdxVersion":"SPDX-2.3","name":"one","nonce":"%s"}' "$RANDOM$RANDOM" >"$T/sbom.json"
SBOM_LAYER=$(sha256_of "$T/sbom.json")
cp "$T/sbom.json" "$A/blobs/sha256/${SBOM_LAYER#sha256:}"
jq -cn --arg l "$SBOM_LAYER" --argjson ls "$(size_of "$T/sbom.json")" --arg s "$ONE_OCI" \
    --argjson ss "$(size_of "$ONE_RAW")" '{schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
    artifactType: "application/spdx+json", config: {mediaType: "application/vnd.oci.empty.v1+json",
    digest: "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", size: 2},
    layers: [{mediaType: "application/spdx+json", digest: $l, size: $ls}],
    subject: {mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $s, size: $ss}}' >"$T/sbom-manifest.json"
SBOM=$(sha256_of "$T/sbom-manifest.json")
cp "$T/sbom-manifest.json" "$A/blobs/sha256/${SBOM#sha256:}"
jq -cn --arg d "$SBOM" --argjson s "$(size_of "$T/sbom-manifest.json")" '{schemaVersion: 2, manifests: [{mediaType:
    "application/vnd.oci.image.manifest.v1+json", digest: $d, size: $s,
    annotations: {"org.opencontainers.image.ref.name": "sbom"}}]}' >"$A/index.json"
printf '{"imageLayoutVersion":"1.0.0"}' >"$A/oci-layout"
SBOM_TAG=sha256-${ONE_OCI#sha256:}.sbom
check "skopeo copy: an SBOM artifact (subject one:oci) -> one:$SBOM_TAG" \
    sko copy "${NOTLS[@]}" "oci:$A:sbom" "docker://$DR/one:$SBOM_TAG"

URL_BERTHLESS=$URL
URL=http://$DR # lib.sh's push helpers speak to docker-registry for this part
printf '{"critical":{"image":{"docker-manifest-digest":"%s"},"type":"cosign container image signature"}}' "$IDX" \
    >"$T/sig-payload.json"
printf '{}' >"$T/empty.json"
push_blob team/sub/app "$T/empty.json" && push_blob team/sub/app "$T/sig-payload.json"
is "push the signature's blobs to docker-registry with curl" "$STATUS" 201
jq -cn --argjson cfg "$(descriptor application/vnd.oci.empty.v1+json "$T/empty.json")" \
    --argjson l "$(descriptor application/vnd.dev.cosign.simplesigning.v1+json "$T/sig-payload.json")" \
    --arg s "$IDX" --argjson ss "$(size_of "$(layout_blob "$L" "$IDX")")" \
    '{schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
      artifactType: "application/vnd.dev.cosign.artifact.sig.v1+json", config: $cfg, layers: [$l],
      subject: {mediaType: "application/vnd.oci.image.index.v1+json", digest: $s, size: $ss}}' >"$T/sig.json"
SIG=$(sha256_of "$T/sig.json")
push_manifest team/sub/app "$SIG" "$T/sig.json"
is "push the signature manifest (subject: the index) by digest to docker-registry" "$STATUS" 201
URL=$URL_BERTHLESS
REFS=(team/sub/app:1.0 team/sub/app:1.0-docker one:oci one:docker one:latest one:v1 "one:$SBOM_TAG" team/two:2.0
    a/b/c/d/deep:x a/b:parent "team/sub/app@$SIG")
REPOS=(a/b a/b/c/d/deep one team/sub/app team/two)
# an upload left unfinished in docker-registry: not imported, and said so
api POST "http://$DR/v2/one/blobs/uploads/" -H 'Content-Length: 0'
is "(an upload session left open in docker-registry)" "$STATUS" 202

# ---------------------------------------------------------------- into an empty root, berth stopped

mkdir -p "$T/not-a-registry"
import_into "$T/nowhere" "$T/not-a-registry"
is "berth import of a folder that is no registry's: exit status 2" "$RC" 2
like "... and says why" "$(cat "$T/imp.err")" 'not-a-registry is not a docker-registry rootdirectory \(no docker/registry/v2 in it\)'
check "... and creates nothing" test ! -e "$T/nowhere"
import_into "$T/nowhere"
is "berth import without a folder: a usage error (exit status 2)" "$RC" 2


D1=$(next_data)
import_into "$D1" "$SRC"
is "berth import DIR into an empty root: exit status 0" "$RC" 0 || diag "$(cat "$T/imp.err")"
like "... the summary counts 5 repositories, 13 manifests, 10 tags" "$(imp_summary)" \
    '^import: 5 repositories, 13 manifests, 10 tags, '
like "... every blob hard-linked (same file system)" "$(imp_summary)" 'blobs placed \([0-9]+ bytes: [0-9]+ hard-linked, 0 reflinked, 0 copied\)'
like "... it says the upload in progress was not imported" "$(cat "$T/imp.out")" '1 uploads in progress in the source were not imported'
like "... one line per repository: team/sub/app" "$(cat "$T/imp.out")" $'(^|\n)team/sub/app: 7 manifests, 2 tags, '
is "... a/b (with a/b/c/d/deep inside it) once" "$(grep -c '^a/b: ' "$T/imp.out")" 1
is "... nothing on stderr but the schema's creation" "$(grep -v 'applying schema' "$T/imp.err")" ""

start_berth
is "(berth's data folder is the one imported into)" "$DATA" "$D1"
for ref in "${REFS[@]}"; do
    check "$ref: skopeo inspect --raw gives the same bytes from berth as from docker-registry" same_raw "$ref"
done
for ref in team/sub/app:1.0 team/sub/app:1.0-docker one:docker team/two:2.0 a/b/c/d/deep:x; do
    check "$ref: skopeo copy --all from berth and from docker-registry give the same blobs and index" same_pull "$ref"
done
api GET /v2/team/sub/app/manifests/1.0-docker
is "the Docker manifest list keeps its media type" "$(hdr Content-Type)" "$MT_DOCKER_LIST"
api GET /v2/one/manifests/docker
is "the Docker schema 2 manifest keeps its media type" "$(hdr Content-Type)" "$MT_DOCKER_MANIFEST"
for r in "${REPOS[@]}"; do
    is "$r: tags list equal to docker-registry's" "$(tags_of "$REG" "$r")" "$(tags_of "$DR" "$r")"
done
is "the catalog equals docker-registry's" "$(catalog_of "$REG")" "$(catalog_of "$DR")"
api GET "/v2/one/referrers/$ONE_OCI"
is "referrers of one:oci list the SBOM" "$STATUS $(jq -c '[.manifests[] | [.digest, .artifactType]]' "$BODY")" \
    "200 [[\"$SBOM\",\"application/spdx+json\"]]"
api GET "/v2/team/sub/app/referrers/$IDX"
is "referrers of the index list the signature pushed by digest" \
    "$STATUS $(jq -c '[.manifests[] | .digest]' "$BODY")" "200 [\"$SIG\"]"
l1=$(jq -r '.layers[0].digest' "$(layout_blob "$L" "$TWO")")
is "a layer of team/two is the same file as docker-registry's (hard link: same inode)" \
    "$(stat -c %i "$(blob_path "$l1")")" "$(stat -c %i "$(src_blob "$l1")")"
check "berth fsck finds nothing to do" env BERTH_STORAGE_ROOT="$DATA" "$BERTH" fsck

# again: nothing to do, nothing changes
sqlite3 "$DATA/berth.db" 'SELECT r.name, m.digest FROM manifest m JOIN repository r ON r.id = m.repository_id
    ORDER BY 1, 2' >"$T/manifests.before"
import_into "$D1" "$SRC"
is "berth import again (berth serving): exit status 0" "$RC" 0 || diag "$(cat "$T/imp.err")"
like "... places no blob: all already here" "$(imp_summary)" '; 0 blobs placed \(0 bytes: .*\), [0-9]+ already here;'
check "... the same manifests in the database" diff "$T/manifests.before" \
    <(sqlite3 "$DATA/berth.db" 'SELECT r.name, m.digest FROM manifest m JOIN repository r ON r.id = m.repository_id
    ORDER BY 1, 2')
stop_berth

# ---------------------------------------------------------------- while berth serves; a second pass

start_berth
check "berth serves a repository of its own before the import" push_image mine/app v1 oci
api GET /v2/one/manifests/oci
is "one:oci is not in berth yet (404)" "$STATUS" 404
import_into "$DATA" "$SRC"
is "berth import while berth serves the same root: exit status 0" "$RC" 0 || diag "$(cat "$T/imp.err")"
api GET /v2/one/manifests/oci
is "one:oci is served at once after the import (the server's cache follows)" "$STATUS $(hdr Docker-Content-Digest)" \
    "200 $ONE_OCI"
check "team/sub/app:1.0 is byte-exact" same_raw team/sub/app:1.0
check "team/sub/app:1.0 pulls whole with skopeo" same_pull team/sub/app:1.0
api GET /v2/mine/app/manifests/v1
is "berth's own repository is still there" "$STATUS $(hdr Docker-Content-Digest)" "200 $IMG_DIGEST"
# the second pass: pushes made to docker-registry meanwhile, and a tag moved there
NEW=$(oci_layout "$L" new 1)
check "meanwhile: a new image -> docker-registry one:new" sko copy "${NOTLS[@]}" "oci:$L:new" "docker://$DR/one:new"
check "meanwhile: one:latest moved to team/two's image (pushed to one)" sko copy "${NOTLS[@]}" "oci:$L:two" \
    "docker://$DR/one:latest"
import_into "$DATA" "$SRC"
is "second pass: exit status 0" "$RC" 0 || diag "$(cat "$T/imp.err")"
like "... it places only the new blobs" "$(imp_summary)" '; [1-9][0-9]* blobs placed .*, [0-9]+ already here;'
check "one:new is served byte-exact" same_raw one:new
check "one:latest now points where docker-registry's does" same_raw one:latest
check "one:latest pulls whole" same_pull one:latest
is "one's tags list equal to docker-registry's" "$(tags_of "$REG" one)" "$(tags_of "$DR" one)"
stop_berth

# ---------------------------------------------------------------- readers first, through a mirror of docker-registry

# docs/migrate.md: berth as a pull-through mirror of docker-registry while pushes still go there; then the import,
# which makes the repositories the mirror created hosted ones
cat >"$T/mirror.yaml" <<EOF
mirrors:
  - prefix: ""
    upstream: http://$DR
    tag_ttl: 1s
EOF
start_berth BERTH_CONFIG="$T/mirror.yaml"
check "through berth's mirror: team/sub/app:1.0 pulls whole, from docker-registry" same_pull team/sub/app:1.0
api PUT /v2/team/sub/app/manifests/pushed -H "Content-Type: $MT_OCI_MANIFEST" --data-binary "@$T/sig.json"
is_error "a push to the repository the mirror created is refused: 403 DENIED" 403 DENIED
import_into "$DATA" "$SRC"
is "berth import into the mirror's root while it serves: exit status 0" "$RC" 0 || diag "$(cat "$T/imp.err")"
like "... it says team/sub/app is hosted from now on" "$(cat "$T/imp.out")" \
    "(^|"$'\n'")team/sub/app: [0-9]+ manifests, [0-9]+ tags, [0-9]+ blobs \\(a mirror's until now: hosted from now on\\)"
check "a push to team/sub/app is accepted now" push_image team/sub/app pushed oci
check "team/sub/app:1.0-docker is byte-exact" same_raw team/sub/app:1.0-docker
check "one:latest pulls whole" same_pull one:latest
stop_berth

# ---------------------------------------------------------------- interrupted, then run again

D3=$(next_data)
env BERTH_STORAGE_ROOT="$D3" BERTH_MODE=open BERTH_TEST_IMPORT_KILL_AFTER=5 "$BERTH" import --copy --jobs 1 "$SRC" \
    >"$T/imp.out" 2>"$T/imp.err"
is "an import killed (SIGKILL) after placing its 5th blob" "$?" 137
n=$(find "$D3/blobs" -type f | wc -l)
is "... 5 blob files are in place" "$n" 5
import_into "$D3" --copy "$SRC"
is "run again: exit status 0" "$RC" 0 || diag "$(cat "$T/imp.err")"
placed=$(imp_summary | sed -E 's/.*; ([0-9]+) blobs placed.*/\1/')
is "... the 5 blobs placed before are kept, the others placed now" "$(find "$D3/blobs" -type f | wc -l)" $((placed + 5))
like "... the others copied (--copy)" "$(imp_summary)" '[0-9]+ bytes: 0 hard-linked, 0 reflinked, [1-9][0-9]* copied'
start_berth
is "(berth's data folder is the interrupted one)" "$DATA" "$D3"
for ref in team/sub/app:1.0 team/sub/app:1.0-docker one:oci one:latest one:new "one:$SBOM_TAG" a/b/c/d/deep:x; do
    check "$ref: byte-exact after the interrupted import was completed" same_raw "$ref"
done
check "team/sub/app:1.0-docker pulls whole" same_pull team/sub/app:1.0-docker
is "the catalog equals docker-registry's" "$(catalog_of "$REG")" "$(catalog_of "$DR")"
l1=$(jq -r '.layers[0].digest' "$(layout_blob "$L" "$TWO")")
isnt "--copy: the blob is a file of berth's own (another inode)" \
    "$(stat -c %i "$(blob_path "$l1")")" "$(stat -c %i "$(src_blob "$l1")")"
check "berth fsck finds nothing to do" env BERTH_STORAGE_ROOT="$DATA" "$BERTH" fsck
stop_berth

# SIGKILL in the middle of copying a large blob: its temporary file stays, the next run removes it and finishes
BIG=$T/big
mkdir -p "$BIG"
head -c $((192 << 20)) /dev/urandom >"$BIG/layer"
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' >"$BIG/config.json"
image_manifest oci "$BIG/manifest.json" "$BIG/config.json" "$BIG/layer"
URL=http://$DR
push_blob big "$BIG/config.json" && push_blob big "$BIG/layer" && push_manifest big v1 "$BIG/manifest.json"
is "(a 192 MiB layer pushed to docker-registry big:v1)" "$STATUS" 201
URL=$URL_BERTHLESS
D4=$(next_data)
env BERTH_STORAGE_ROOT="$D4" BERTH_MODE=open "$BERTH" import --copy "$SRC" >"$T/imp.out" 2>"$T/imp.err" &
ipid=$!
big_tmp=
for ((i = 0; i < 400; i++)); do
    big_tmp=$(find "$D4/tmp" -name 'import.*' -size +1M 2>/dev/null | head -1)
    [[ -n $big_tmp ]] && break
    sleep 0.025
done
kill -KILL "$ipid" 2>/dev/null
wait "$ipid" 2>/dev/null
isnt "SIGKILL while the 192 MiB blob is being copied (its temporary file seen)" "$big_tmp" ""
import_into "$D4" --copy "$SRC"
is "run again: exit status 0" "$RC" 0 || diag "$(cat "$T/imp.err")"
is "... the killed run's temporary file is gone" "$(find "$D4/tmp" -name 'import.*' | wc -l)" 0
start_berth
check "big:v1 pulls whole from berth, the same as from docker-registry" same_pull big:v1
check "one:oci is byte-exact" same_raw one:oci
stop_berth

# ---------------------------------------------------------------- a corrupt blob in the source

BAD=$T/bad
cp -a "$SRC" "$BAD"
lbad=$(jq -r '.layers[1].digest' "$(layout_blob "$L" "$TWO")")
"$PYTHON" -c 'import sys; f = open(sys.argv[1], "r+b"); f.seek(100); b = f.read(1); f.seek(100); f.write(bytes([b[0] ^ 1]))' \
    "$BAD/docker/registry/v2/blobs/sha256/${lbad:7:2}/${lbad#sha256:}/data"
isnt "(one byte of a layer of team/two flipped in a copy of the source)" "$(sha256_of "$BAD/docker/registry/v2/blobs/sha256/${lbad:7:2}/${lbad#sha256:}/data")" "$lbad"
D5=$(next_data)
import_into "$D5" "$BAD"
is "a corrupt blob in the source: exit status 1" "$RC" 1
like "... stderr names it as corrupt" "$(cat "$T/imp.err")" "blob $lbad: its content hashes to sha256:[0-9a-f]{64} \\(corrupt in the source\\): skipped"
like "... and the manifest that needs it" "$(cat "$T/imp.err")" "team/two: manifest $TWO: blob $lbad could not be imported"
like "... and ends with the count of problems" "$(tail -1 "$T/imp.err")" '^berth: import: [0-9]+ problems \(above\)'
is "... the corrupt blob is not in berth's store" "$(ls "$(blob_path "$lbad" | sed "s|^$DATA|$D5|")" 2>/dev/null)" ""
start_berth
api GET /v2/team/two/manifests/2.0
is "team/two:2.0 (needs the corrupt blob) is not served: 404" "$STATUS" 404
check "the rest is imported: team/sub/app:1.0 byte-exact" same_raw team/sub/app:1.0
stop_berth

# ---------------------------------------------------------------- a hostile source tree

EVIL=$T/evil
cp -a "$SRC" "$EVIL"
R=$EVIL/docker/registry/v2/repositories
OUT=$T/outside
mkdir -p "$OUT/repo/_manifests" "$OUT/repo/_layers"
cp -a "$R/one/." "$OUT/repo/"
ln -s "$OUT/repo" "$R/escaped"        # a repository that is a symbolic link out of the tree
mkdir -p "$R/Bad..Name/_layers"       # not a repository name
mkdir -p "$R/_manifests/revisions"    # distribution's folder with no repository name
cp -a "$R/one" "$R/linked"
rm -rf "$R/linked/_manifests/tags/oci"
mkdir -p "$R/linked/_manifests/tags/oci"
ln -s "$R/one/_manifests/tags/oci/current" "$R/linked/_manifests/tags/oci/current" # a tag's folder is a link
mkdir -p "$R/linked/_manifests/tags/bad tag/current"
cp "$R/one/_manifests/tags/oci/current/link" "$R/linked/_manifests/tags/bad tag/current/link"
# a blob whose data is a symbolic link to a file outside, linked into a repository under that file's digest
printf 'secret outside the tree\n' >"$OUT/secret"
sec=$(sha256_of "$OUT/secret")
mkdir -p "$EVIL/docker/registry/v2/blobs/sha256/${sec:7:2}/${sec#sha256:}" "$R/linked/_layers/sha256/${sec#sha256:}"
ln -s "$OUT/secret" "$EVIL/docker/registry/v2/blobs/sha256/${sec:7:2}/${sec#sha256:}/data"
printf '%s' "$sec" >"$R/linked/_layers/sha256/${sec#sha256:}/link"
D6=$(next_data)
import_into "$D6" "$EVIL"
is "a hostile source: exit status 1 (problems reported)" "$RC" 1
like "... the symbolic link to a repository outside is refused" "$(cat "$T/imp.err")" 'repositories/escaped is a symbolic link: skipped'
like "... the invalid repository name is refused" "$(cat "$T/imp.err")" 'repositories/Bad\.\.Name: not a valid repository name: skipped'
like "... a _manifests folder outside any repository is refused" "$(cat "$T/imp.err")" \
    'repositories/_manifests: a folder of distribution.s outside any repository: skipped'
like "... the invalid tag is refused" "$(cat "$T/imp.err")" 'linked: tag folder bad\?tag: not a valid tag: skipped'
like "... the tag whose current/ is a symbolic link is refused" "$(cat "$T/imp.err")" \
    'linked: tag oci: its current/ is a symbolic link or not a folder: skipped'
like "... the blob whose data is a symbolic link is refused" "$(cat "$T/imp.err")" "blob $sec: cannot import .*: Too many levels of symbolic links"
start_berth
is "(berth's data folder is the hostile import's)" "$DATA" "$D6"
is "the catalog has neither escaped nor Bad..Name" "$(catalog_of "$REG")" \
    "$(catalog_of "$DR" | jq -c '. + ["linked"] | sort')"
api GET "/v2/linked/blobs/$sec"
is "the outside file is not served" "$STATUS" 404
is "... nor in berth's store" "$(find "$DATA/blobs" -name "${sec#sha256:}" | wc -l)" 0
api GET /v2/linked/manifests/oci
is "the tag whose folder is a symbolic link is not imported" "$STATUS" 404
check "the rest of the repository is: linked:latest byte-exact with one:latest" \
    sh -c "skopeo inspect --raw --tls-verify=false docker://$REG/linked:v1 | cmp - $T/one.raw"

stop_dr
done_testing
