#!/usr/bin/env bash
# Garbage collection (docs/lifecycle.md): `berth gc` while berth serve runs removes exactly what nothing references
# (an untagged manifest past its grace that no index or subject keeps, then blobs no manifest of a repository
# references, then files no repository links), --dry-run lists the same and removes nothing, the graces hold, and
# what is left on disk is what the live manifests need. Then the server's own schedule (gc.interval, /metrics), a
# mount racing the collector, and SIGKILLs of a collection at three points: nothing referenced is lost and what the
# collection had committed is finished at the next start.
. "$(dirname "$0")/lib.sh"

SAN_PAT='AddressSanitizer|LeakSanitizer|ThreadSanitizer|runtime error:'
OCTET=(-H 'Content-Type: application/octet-stream')

# gc ARGS... : berth gc on the server's data; sets RC, OUT (stdout), ERR (stderr)
gc() {
    env -u BERTH_CONFIG BERTH_STORAGE_ROOT="$DATA" BERTH_LOG_LEVEL=warn ${GC_ENV[@]+"${GC_ENV[@]}"} \
        "$BERTH" gc "$@" >"$T/gc.out" 2>"$T/gc.err"
    RC=$?
    OUT=$(cat "$T/gc.out")
    if grep -qE "$SAN_PAT" "$T/gc.err"; then
        fail "no sanitizer report from: gc $*" "$(grep -E -A 30 -m 1 "$SAN_PAT" "$T/gc.err")"
    fi
}
GC_ENV=()
# removed KIND : what the last run removed (or would) of KIND: "REPO@DIGEST" or "DIGEST", sorted
removed() { grep -E "^(removed|would remove) $1 " <<<"$OUT" | awk '{print $NF == "bytes)" ? $(NF-2) : $NF}' | sort; }
summary() { grep '^gc' <<<"$OUT"; }
fsck_clean() {
    env -u BERTH_CONFIG BERTH_STORAGE_ROOT="$DATA" BERTH_LOG_LEVEL=warn "$BERTH" fsck >"$T/fsck.out" 2>&1
}
# files : the digests of the blob files on disk, sorted
files() { find "$DATA/blobs" -type f | sed -E 's|.*/blobs/([a-z0-9]+)/../|\1:|' | sort; }
# needed : the blobs the live content needs, found through the API alone: every tag of every repository, its
# manifest, an index's children, every manifest's referrers, their configs and layers
needed() {
    "$PYTHON" - "$URL" <<'EOF'
import json, sys, urllib.request
base = sys.argv[1]
ACCEPT = ", ".join(["application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json",
                    "application/vnd.docker.distribution.manifest.v2+json",
                    "application/vnd.docker.distribution.manifest.list.v2+json"])
def get(path):
    req = urllib.request.Request(base + path, headers={"Accept": ACCEPT})
    with urllib.request.urlopen(req) as r:
        return json.load(r)
blobs, seen = set(), set()
def walk(repo, ref):
    m = get("/v2/%s/manifests/%s" % (repo, ref))
    for c in m.get("manifests", []):
        if c["digest"] not in seen:
            seen.add(c["digest"])
            walk(repo, c["digest"])
    if "config" in m:
        blobs.add(m["config"]["digest"])
    for l in m.get("layers", []):
        blobs.add(l["digest"])
    if ref.startswith("sha256:"):
        for r in get("/v2/%s/referrers/%s" % (repo, ref)).get("manifests", []):
            if r["digest"] not in seen:
                seen.add(r["digest"])
                walk(repo, r["digest"])
for repo in get("/v2/_catalog")["repositories"]:
    for tag in get("/v2/%s/tags/list" % repo).get("tags") or []:
        m = urllib.request.urlopen(urllib.request.Request(base + "/v2/%s/manifests/%s" % (repo, tag),
                                                          method="HEAD", headers={"Accept": ACCEPT}))
        d = m.headers["Docker-Content-Digest"]
        if d not in seen:
            seen.add(d)
            walk(repo, d)
print("\n".join(sorted(blobs)))
EOF
}
# pullable REPO REF : the manifest and every blob it names answer 200 with the right bytes
pullable() {
    local repo=$1 ref=$2 d
    api GET "/v2/$repo/manifests/$ref" -H "Accept: $MT_OCI_MANIFEST" || return 1
    [[ $STATUS == 200 ]] || return 1
    for d in $(jq -r '.config.digest, .layers[].digest' "$BODY"); do
        curl -s -o "$T/pulled" "$URL/v2/$repo/blobs/$d" && [[ "sha256:$(sha256sum <"$T/pulled" | cut -c1-64)" == "$d" ]] ||
            return 1
    done
}
status_of() { curl -s -o /dev/null -w '%{http_code}' -H "Accept: $MT_OCI_MANIFEST, $MT_OCI_INDEX" "$URL$1"; }

start_berth BERTH_MODE=open BERTH_GC_INTERVAL=0

# --- what the store holds: images A (v1) and B (v2); C (v3) shares A's first layer; a two-platform index (multi)
# whose children are pushed by digest; a signature (referrer) of A; a blob uploaded and never referenced
push_image app v1 oci && A=$IMG_DIGEST && A_BLOBS=("${IMG_BLOBS[@]}") && A_MF=$IMG_MANIFEST
push_image app v2 oci && B=$IMG_DIGEST && B_BLOBS=("${IMG_BLOBS[@]}")
mkrand "$T/c-layer" 5000
image_manifest oci "$T/c.json" "${A_BLOBS[0]}" "${A_BLOBS[1]}" "$T/c-layer"
push_blob app "$T/c-layer" && push_manifest app v3 "$T/c.json"
C=$(sha256_of "$T/c.json")
children=() child_blobs=()
for arch in amd64 arm64; do
    push_image app "tmp-$arch" oci "$arch" || break
    children+=("$IMG_MANIFEST")
    child_blobs+=("${IMG_BLOBS[@]}")
    api DELETE "/v2/app/manifests/tmp-$arch" # leaves the manifest untagged: the index will keep it
done
index_manifest oci "$T/index.json" "${children[@]}"
push_manifest app multi "$T/index.json"
INDEX=$(sha256_of "$T/index.json")
printf '{}' >"$T/empty"
printf 'signature of A' >"$T/sig"
push_blob app "$T/empty" && push_blob app "$T/sig"
jq -n --argjson subj "$(descriptor "$MT_OCI_MANIFEST" "$A_MF")" --argjson cfg "$(descriptor application/vnd.oci.empty.v1+json "$T/empty")" \
    --argjson sig "$(descriptor application/vnd.example.sig "$T/sig")" \
    '{schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json", artifactType: "application/vnd.example.sig",
      config: $cfg, layers: [$sig], subject: $subj}' >"$T/sig.json"
SIG=$(sha256_of "$T/sig.json")
push_manifest app "$SIG" "$T/sig.json"
is "the store holds A, B, C, an index of two, a signature of A" "$(status_of /v2/app/manifests/"$SIG")" 200
mkrand "$T/orphan" 4096
push_blob app "$T/orphan"
ORPHAN=$(sha256_of "$T/orphan")
sleep 2 # the untagged grace below is 1 s (times are whole seconds)

# --- a blob no manifest references goes once its grace is over; nothing else does
gc --dry-run --blob-grace 1h --untagged-grace 1s
is "gc --dry-run --blob-grace 1h: exit 0" "$RC" 0
like "... the orphan blob's link is younger than the grace: nothing to remove" "$(summary)" \
    '^gc --dry-run: would remove 0 manifests, 0 links, 0 blobs: 0 bytes to free \('

gc --dry-run --blob-grace 0 --untagged-grace 1s
dry=$OUT
is "gc --dry-run --blob-grace 0: would remove the orphan's link and blob, and nothing else" \
    "$(removed link) $(removed blob) $(removed manifest)" "app@$ORPHAN $ORPHAN "
like "... with its size in the summary" "$(summary)" 'would remove 0 manifests, 1 links, 1 blobs: 4096 bytes to free'
check "... and removed nothing: the file is there" test -f "$(blob_path "$ORPHAN")"
gc --blob-grace 0 --untagged-grace 1s
is "gc: exit 0" "$RC" 0
is "gc removes what the dry run listed, line for line" "$(sed 's/^would remove/removed/' <<<"$dry" | grep -v '^gc')" \
    "$(grep -v '^gc' <<<"$OUT")"
check "... the orphan's file is gone" test ! -e "$(blob_path "$ORPHAN")"
is "... and HEAD of it answers 404" "$(curl -s -o /dev/null -w '%{http_code}' -I "$URL/v2/app/blobs/$ORPHAN")" 404
gc --blob-grace 0 --untagged-grace 1s
like "a second run finds nothing" "$(summary)" \
    '^gc: removed 0 manifests, 0 links, 0 blobs: 0 bytes freed \(0 queued items looked at in 0\.[0-9]{3} s\)$'
for ref in v1 v2 v3; do check "$ref is pullable" pullable app "$ref"; done
for f in "${children[@]}"; do
    is "the index's untagged child $(sha256_of "$f" | cut -c1-19) is kept" "$(status_of "/v2/app/manifests/$(sha256_of "$f")")" 200
done
is "the signature of A (untagged, its subject here) is kept" "$(status_of "/v2/app/manifests/$SIG")" 200

# --- a deleted tag: its manifest goes after the untagged grace, with the blobs only it used
api DELETE /v2/app/manifests/v2
is "DELETE tag v2 -> 202" "$STATUS" 202
gc --blob-grace 0 --untagged-grace 1h
is "within the untagged grace B stays" "$(removed manifest)" ""
sleep 2
gc --blob-grace 0 --untagged-grace 1s
is "after it: B goes" "$(removed manifest)" "app@$B"
is "... with its three blobs" "$(removed blob)" "$(for f in "${B_BLOBS[@]}"; do sha256_of "$f"; echo; done | sort)"
is "B answers 404" "$(status_of "/v2/app/manifests/$B")" 404
check "v1 is still pullable" pullable app v1

# --- an index deleted: it goes, and its children with it in the same run
api DELETE /v2/app/manifests/multi
sleep 2
gc --blob-grace 0 --untagged-grace 1s
is "the index and both children go in one run" "$(removed manifest)" \
    "$(printf '%s\n' "app@$INDEX" "app@$(sha256_of "${children[0]}")" "app@$(sha256_of "${children[1]}")" | sort)"
is "... with the six blobs only they used" "$(removed blob | wc -l)" 6

# --- A deleted by digest: its signature goes with it; the layer C shares stays
api DELETE "/v2/app/manifests/$A"
is "DELETE A by digest -> 202" "$STATUS" 202
gc --blob-grace 0 --untagged-grace 1s
like "A's signature goes (its subject is gone)" "$(removed manifest)" "app@$SIG"
is "... A's config and second layer and the signature's blobs go; the layer C shares stays" \
    "$(removed blob)" "$(for f in "${A_BLOBS[2]}" "$T/empty" "$T/sig"; do sha256_of "$f"; echo; done | sort)"
check "v3 (C) is pullable, with A's config and first layer" pullable app v3

# --- untagged_grace 0 keeps untagged manifests forever
push_image app keep oci && K=$IMG_DIGEST
api DELETE /v2/app/manifests/keep
sleep 2
gc --blob-grace 0 --untagged-grace 0
is "--untagged-grace 0: an untagged manifest stays" "$(removed manifest)" ""
is "... and so do its blobs" "$(removed blob)" ""
gc --blob-grace 0 --untagged-grace 1s
is "with a grace it goes" "$(removed manifest)" "app@$K"

# --- what is left on disk is what the live content needs, and fsck agrees
is "the blob files on disk are exactly the blobs the live manifests reference" "$(files)" "$(needed)"
check "fsck finds nothing" fsck_clean

# --- bad options
gc --blob-grace soon
is "gc --blob-grace soon: a usage error (exit 2)" "$RC" 2
like "... saying why" "$(cat "$T/gc.err")" 'invalid --blob-grace soon'
stop_berth

# --- the server's own schedule: gc.interval, its log and /metrics
start_berth BERTH_MODE=open BERTH_GC_INTERVAL=1s BERTH_GC_BLOB_GRACE=0 BERTH_GC_UNTAGGED_GRACE=1s
mkrand "$T/orphan2" 10000
push_blob lib "$T/orphan2"
O2=$(sha256_of "$T/orphan2")
for _ in $(seq 50); do [[ -e $(blob_path "$O2") ]] || break; sleep 0.2; done
check "the server collects an unreferenced blob on its own within seconds" test ! -e "$(blob_path "$O2")"
api GET /metrics
like "/metrics counts the blob removed" "$(cat "$BODY")" 'berth_gc_removed_total\{kind="blob"\} [1-9]'
like "... and the bytes freed" "$(cat "$BODY")" 'berth_gc_freed_bytes_total [1-9][0-9]{4}'
like "... and the runs" "$(cat "$BODY")" 'berth_gc_runs_total [1-9]'
check "the log says what it removed" grep -q 'gc: removed 0 manifest(s), 1 link(s), 1 blob(s): 10000 bytes freed' "$SRV/berth.log"

# --- a mount from a repository whose blob was collected: a normal upload session, never a link to nothing
push_blob lib "$T/orphan2"
api POST "/v2/other/blobs/uploads/?mount=$O2&from=lib"
is "a mount of a blob lib still links -> 201" "$STATUS" 201
for _ in $(seq 50); do [[ -e $(blob_path "$O2") ]] || break; sleep 0.2; done
api POST "/v2/third/blobs/uploads/?mount=$O2&from=lib"
is "once collected, the same mount starts an upload instead -> 202" "$STATUS" 202
stop_berth

# --- SIGKILL in the middle of a collection, at three points; the next run finishes the job
SHIM=$BUILDDIR/tests/crash/trace.so
if [[ ! -f $SHIM ]]; then
    SHIM=$T/trace.so
    ${CC:-cc} -shared -fPIC -O2 -o "$SHIM" "$SRCDIR/tests/crash/trace.c" -ldl -lpthread
fi
start_berth BERTH_MODE=open BERTH_GC_INTERVAL=0
push_image keep v1 oci
# orphans N : push N small blobs no manifest references
orphans() {
    local i
    for i in $(seq "$1"); do
        printf 'orphan %d %s %s' "$i" "$RANDOM" "$RANDOM" >"$T/m"
        curl -s -o /dev/null -X POST -H 'Content-Length: 0' -D "$T/h" "$URL/v2/junk/blobs/uploads/"
        loc=$(tr -d '\r' <"$T/h" | sed -n 's/^[Ll]ocation: //p')
        curl -s -o /dev/null -X PUT "${OCTET[@]}" --data-binary "@$T/m" "$URL$loc?digest=$(sha256_of "$T/m")"
    done
}
# sql QUERY : python's sqlite3 on the server's database
sql() {
    "$PYTHON" - "$DATA/berth.db" "$1" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], timeout=10)
for row in c.execute(sys.argv[2]):
    print("\t".join(str(v) for v in row))
PY
}
# a collection deletes the rows of a batch of blobs, commits, and unlinks their files in its next transaction:
# killed at the first unlink, the 150th and the 250th. A batch lasts 25 ms at most (gc.c), so how many rows the kill
# finds deleted depends on the machine's speed: what must hold is that none is lost and the rest finishes.
# missing_files : the blob rows whose file is not on disk (none may be)
missing_files() {
    local d n=0
    for d in $(sql "SELECT digest FROM blob"); do [[ -f $(blob_path "$d") ]] || n=$((n + 1)); done
    echo "$n"
}
for point in "UNLINK:/blobs/sha256/" "UNLINK:/blobs/sha256/#150" "UNLINK:/blobs/sha256/#250"; do
    orphans 300
    is "300 unreferenced blobs pushed beside the image" "$(find "$DATA/blobs" -type f | wc -l)" 303
    GC_ENV=(BERTH_TRACE="$T/trace" BERTH_TRACE_ROOT="$DATA" BERTH_TRACE_KILL="$point" LD_PRELOAD="$SHIM"
        ASAN_OPTIONS="verify_asan_link_order=0:${ASAN_OPTIONS:-}")
    gc --blob-grace 0
    GC_ENV=()
    is "gc killed at $point: SIGKILL (137)" "$RC" 137
    rows=$(sql "SELECT count(*) FROM blob")
    listed=$(sql "SELECT count(*) FROM gc_unlink")
    check "... blob rows deleted and committed ($((303 - rows))), their files listed to unlink ($listed)" \
        test "$rows" -lt 303 -a "$listed" -gt 0 -a $((rows + listed)) -le 303
    is "... every blob row left has its file" "$(missing_files)" 0
    check "... some of the deleted rows' files are still there ($(find "$DATA/blobs" -type f | wc -l))" \
        test "$(find "$DATA/blobs" -type f | wc -l)" -gt "$rows"
    check "... the image is pullable meanwhile" pullable keep v1
    restart_berth
    is "... berth serve, restarted, unlinked them: only the files of the $rows rows left are on disk" \
        "$(find "$DATA/blobs" -type f | wc -l)" "$rows"
    is "... and emptied the list" "$(sql "SELECT count(*) FROM gc_unlink")" 0
    check "... fsck finds nothing" fsck_clean
    check "... the image is still pullable" pullable keep v1
    gc --blob-grace 0
    like "... the next run removes the rest" "$(summary)" "^gc: removed 0 manifests, 0 links, $((rows - 3)) blobs"
    is "... leaving the image's three blobs" "$(find "$DATA/blobs" -type f | wc -l)" 3
    gc --blob-grace 0
    like "... and the run after it has nothing left to do" "$(summary)" '^gc: removed 0 manifests, 0 links, 0 blobs'
done
stop_berth
done_testing
