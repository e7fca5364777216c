#!/usr/bin/env bash
# Mirror cache eviction (docs/lifecycle.md): a berth upstream, a berth mirror (prefix hub) and, on the mirror, a
# hosted repository that shares a layer with a mirrored image. `berth gc` with the mirror's max_age evicts the images
# last pulled too long ago (an index with its children), with max_size the least recently pulled until the mirror
# fits; a pull moves an image's last pull forward (in the background, at most once per granularity); --dry-run
# prints exactly what the real run then does; the blob files go in the same run (the one the hosted repository
# shares stays) and the bytes on disk drop by what the run reports; the hosted repository is untouched; an evicted
# image pulled again is fetched again. Then the server's own collector evicts (log, /metrics).
. "$(dirname "$0")/lib.sh"

SAN_PAT='AddressSanitizer|LeakSanitizer|ThreadSanitizer|runtime error:'
ACCEPT="Accept: $MT_OCI_MANIFEST, $MT_OCI_INDEX"

# ---------------------------------------------------------------- two servers
UP_PID=
cleanup_all() {
    [[ -n $UP_PID ]] && kill -KILL "$UP_PID" 2>/dev/null
    _cleanup
}
trap cleanup_all EXIT

# sql QUERY : rows of a query on the mirror's database, columns separated by tabs
sql() {
    "$PYTHON" - "$MR_DATA/berth.db" "$1" <<'EOF'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], timeout=10)
for row in c.execute(sys.argv[2]):
    print("\t".join("" if v is None else str(v) for v in row))
c.commit()
EOF
}
# gc CONFIG ARGS... : berth gc on the mirror's data with that configuration; sets RC, OUT
gc() {
    local cfg=$1
    shift
    env BERTH_CONFIG="$cfg" BERTH_STORAGE_ROOT="$MR_DATA" BERTH_LOG_LEVEL=warn "$BERTH" gc "$@" >"$T/gc.out" 2>"$T/gc.err"
    RC=$?
    OUT=$(cat "$T/gc.out")
    if grep -qE "$SAN_PAT" "$T/gc.err"; then
        fail "no sanitizer report from: gc $*" "$(grep -E -A 30 -m 1 "$SAN_PAT" "$T/gc.err")"
    fi
}
# lines : the last run's lines but its summaries, a dry run's verbs as a real run's
lines() { grep -v '^gc' <<<"$OUT" | sed -E 's/^would evict /evicted /; s/^would remove /removed /'; }
evicted() { grep -E '^(evicted|would evict) ' <<<"$OUT" | sed -E 's/^(evicted|would evict) //; s/@.*//' | sort | tr '\n' ' '; }
# disk : bytes of the mirror's blob files
disk() { find "$MR_DATA/blobs" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }'; }
# freed : bytes of the blob files the last run removed, as it reports them
freed() { grep -E '^removed blob ' <<<"$OUT" | sed -E 's/.*\(([0-9]+) bytes\)$/\1/' | awk '{ s += $1 } END { print s + 0 }'; }
on_disk() { [[ -f $(DATA=$MR_DATA blob_path "$1") ]]; }
# age REPO SECONDS : every manifest of mirrored repository REPO was last pulled SECONDS ago
age() {
    sql "UPDATE manifest SET pulled_at = unixepoch() - $2 WHERE repository_id = (SELECT id FROM repository WHERE name = '$1')"
}
manifests_of() { sql "SELECT count(*) FROM manifest m JOIN repository r ON r.id = m.repository_id WHERE r.name = '$1'"; }
# pull REPO REF : through the mirror, the manifest (an index's children too) and every blob, each with its digest
pull() {
    local repo=$1 ref=$2 f=$T/pulled.$RANDOM$RANDOM d
    curl -sf -H "$ACCEPT" -o "$f" "$MR_URL/v2/$repo/manifests/$ref" || return 1
    [[ $ref != sha256:* || $(sha256_of "$f") == "$ref" ]] || return 1
    for d in $(jq -r '.manifests[]?.digest' "$f"); do pull "$repo" "$d" || return 1; done
    for d in $(jq -r '.config.digest // empty, .layers[]?.digest' "$f"); do
        [[ "sha256:$(curl -sf "$MR_URL/v2/$repo/blobs/$d" | sha256sum | cut -c1-64)" == "$d" ]] || return 1
    done
}
# image_size REPO : the mirror's bytes for repository REPO (its manifests and the blobs it links)
image_size() {
    sql "SELECT (SELECT COALESCE(SUM(b.size), 0) FROM blob b JOIN repository_blob l ON l.digest = b.digest JOIN
         repository r ON r.id = l.repository_id WHERE r.name = '$1') + (SELECT COALESCE(SUM(m.size), 0) FROM manifest m
         JOIN repository r ON r.id = m.repository_id WHERE r.name = '$1')"
}

# ---------------------------------------------------------------- the upstream: images a, b, c, d and an index m
start_berth BERTH_GC_INTERVAL=0
UP_PID=$BERTH_PID UP_REG=$REG
for x in a b c d; do
    push_image "library/$x" 1 oci || fail "push library/$x:1 to the upstream"
    declare "DIG_$x=$IMG_DIGEST"
    [[ $x == a ]] && A_BLOBS=("${IMG_BLOBS[@]}")
done
children=()
for arch in amd64 arm64; do
    push_image library/m "tmp-$arch" oci "$arch" && children+=("$IMG_MANIFEST") && M_BLOBS+=("${IMG_BLOBS[@]}")
done
index_manifest oci "$T/index.json" "${children[@]}"
push_manifest library/m 1 "$T/index.json"
is "the upstream holds library/a..d:1 and the index library/m:1" "$STATUS" 201

# ---------------------------------------------------------------- the mirror, and a hosted repository on it
cat >"$T/mirror.yaml" <<EOF
mirrors:
  - prefix: hub
    upstream: http://$UP_REG
    ns: up.test
    library: false
    tag_ttl: 1h
EOF
sed 's/^    tag_ttl: 1h$/&\n    max_age: 1d/' "$T/mirror.yaml" >"$T/age.yaml"
start_berth BERTH_GC_INTERVAL=0 BERTH_CONFIG="$T/mirror.yaml"
MR_URL=$URL MR_DATA=$DATA
for x in a b c d m; do check "pull hub/library/$x:1 through the mirror (manifests and blobs)" pull "hub/library/$x" 1; done
# hosted: its own config and layer, and a's first layer (the same bytes, one blob file)
printf '{"hosted":true}' >"$T/h-config"
mkrand "$T/h-layer" 5000
image_manifest oci "$T/h.json" "$T/h-config" "${A_BLOBS[1]}" "$T/h-layer"
for f in "$T/h-config" "${A_BLOBS[1]}" "$T/h-layer"; do push_blob local/app "$f"; done
push_manifest local/app v1 "$T/h.json"
is "push local/app:v1 (hosted) to the mirror, sharing a layer of library/a" "$STATUS" 201
H=$(sha256_of "$T/h.json")
SHARED=$(sha256_of "${A_BLOBS[1]}")
# the hosted repository's manifest looks older than anything: eviction must not even look at it
sql "UPDATE manifest SET pulled_at = 1 WHERE repository_id = (SELECT id FROM repository WHERE name = 'local/app')"
is "(self-check) the mirror holds 5 mirrored repositories and 1 hosted one" \
    "$(sql 'SELECT mirror, count(*) FROM repository GROUP BY mirror ORDER BY mirror' | tr '\t\n' ': ')" "0:1 1:5 "
is "mirrored manifests start as pulled when fetched; the hosted one as set" \
    "$(sql "SELECT count(*) FROM manifest WHERE pulled_at >= unixepoch() - 120") $(sql 'SELECT count(*) FROM manifest WHERE pulled_at = 1')" "7 1"

gc "$T/mirror.yaml" --dry-run
is "without max_size or max_age nothing is evicted" "$RC $(evicted)" "0 "

# ---------------------------------------------------------------- a pull moves the last pull forward
age hub/library/c $((5 * 3600))
age hub/library/d 1800
curl -sf -o /dev/null -H "$ACCEPT" "$MR_URL/v2/hub/library/c/manifests/1"
curl -sf -o /dev/null -I -H "$ACCEPT" "$MR_URL/v2/hub/library/d/manifests/1"
for ((i = 0; i < 50; i++)); do
    [[ $(sql "SELECT pulled_at >= unixepoch() - 60 FROM manifest WHERE digest = '$DIG_c'") == 1 ]] && break
    sleep 0.1
done
is "a pull of c (last pulled 5 h ago) records the pull, in the background" \
    "$(sql "SELECT pulled_at >= unixepoch() - 60 FROM manifest WHERE digest = '$DIG_c'")" 1
is "a HEAD of d (last pulled 30 min ago, within the hour's granularity) writes nothing" \
    "$(sql "SELECT unixepoch() - pulled_at BETWEEN 1790 AND 1830 FROM manifest WHERE digest = '$DIG_d'")" 1

# ---------------------------------------------------------------- by age
age hub/library/a $((2 * 86400))
age hub/library/m $((3 * 86400))
age hub/library/b $((3 * 3600))
age hub/library/c 60
age hub/library/d 3600
D0=$(disk)
gc "$T/age.yaml" --dry-run
DRY=$(lines)
is "gc --dry-run with max_age 1d: would evict a and m (an index and its children), last pulled 2 and 3 days ago" \
    "$RC $(evicted)" "0 hub/library/a hub/library/m "
like "... one line per image: tags, bytes, last pull, the limit" "$(grep '^would evict hub/library/a@' <<<"$OUT")" \
    "^would evict hub/library/a@$DIG_a tags 1 \\([0-9]+ bytes, last pulled 20[0-9-]+T[0-9:]+Z, max_age\\)$"
is "... and removes nothing" "$(disk) $(manifests_of hub/library/a) $(manifests_of hub/library/m)" "$D0 1 3"
gc "$T/age.yaml"
is "gc with max_age 1d: evicts a and m" "$RC $(evicted)" "0 hub/library/a hub/library/m "
is "... every line as the dry run printed it" "$(lines)" "$DRY"
is "... their manifests are gone (the index with both children)" \
    "$(manifests_of hub/library/a) $(manifests_of hub/library/m)" "0 0"
is "... b, c, d stay" "$(manifests_of hub/library/b) $(manifests_of hub/library/c) $(manifests_of hub/library/d)" "1 1 1"
is "... the bytes on disk dropped by what the run reports freed, in the same run" "$((D0 - $(disk)))" "$(freed)"
like "... which is a's and m's blobs but the shared layer" "$(freed)" '^[1-9][0-9]+$'
gone=0
for f in "${A_BLOBS[0]}" "${A_BLOBS[2]}" "${M_BLOBS[@]}"; do on_disk "$(sha256_of "$f")" || gone=$((gone + 1)); done
is "... the files of a's config and second layer and of m's six blobs are gone" "$gone" 8
check "... the layer a shared with the hosted repository stays" on_disk "$SHARED"
is "the hosted repository is untouched: its manifest, tag, links" \
    "$(manifests_of local/app) $(sql "SELECT count(*) FROM tag t JOIN repository r ON r.id = t.repository_id WHERE r.name = 'local/app'") $(sql "SELECT count(*) FROM repository_blob l JOIN repository r ON r.id = l.repository_id WHERE r.name = 'local/app'")" \
    "1 1 3"
check "... and pullable, every blob with its digest" pull local/app v1

# ---------------------------------------------------------------- by size: the least recently pulled first
# last pulls: b 3 h ago, d 1 h ago, c just now; room for c and d only
age hub/library/b $((3 * 3600))
age hub/library/d 3600
MAX=$(($(image_size hub/library/c) + $(image_size hub/library/d)))
sed "s/^    tag_ttl: 1h\$/&\\n    max_size: $MAX/" "$T/mirror.yaml" >"$T/size.yaml"
diag "max_size $MAX"
D0=$(disk)
gc "$T/size.yaml" --dry-run
DRY=$(lines)
is "gc --dry-run with a max_size that holds two of the three: would evict b, the least recently pulled" \
    "$RC $(evicted)" "0 hub/library/b "
gc "$T/size.yaml"
is "gc with that max_size evicts b alone" "$RC $(evicted)" "0 hub/library/b "
like "... as max_size" "$(grep '^evicted ' <<<"$OUT")" ', max_size\)$'
is "... every line as the dry run printed it" "$(lines)" "$DRY"
is "... c and d stay, b is gone" \
    "$(manifests_of hub/library/b) $(manifests_of hub/library/c) $(manifests_of hub/library/d)" "0 1 1"
is "... the bytes on disk dropped by what the run reports freed" "$((D0 - $(disk)))" "$(freed)"
gc "$T/size.yaml"
is "a second run evicts nothing: the mirror fits" "$RC $(evicted)" "0 "
is "the hosted repository is still untouched" "$(manifests_of local/app)" 1
check "... and pullable" pull local/app v1

# ---------------------------------------------------------------- evicted, then pulled again
check "an evicted image pulled again is fetched again: hub/library/a:1, every blob with its digest" \
    pull hub/library/a 1
check "... its files are back" on_disk "$(sha256_of "${A_BLOBS[0]}")"
check "... and the index m with its children" pull hub/library/m 1
is "... stored again as pulled now" \
    "$(sql "SELECT count(*) FROM manifest WHERE digest = '$DIG_a' AND pulled_at >= unixepoch() - 120")" 1

# ---------------------------------------------------------------- the server's collector
stop_berth
age hub/library/d $((2 * 86400))
BERTH_ENV=(BERTH_GC_INTERVAL=1s BERTH_CONFIG="$T/age.yaml")
start_berth_again
for ((i = 0; i < 100; i++)); do
    [[ $(manifests_of hub/library/d) == 0 ]] && break
    sleep 0.1
done
is "berth serve with max_age 1d and gc.interval 1s evicts d (last pulled 2 days ago) by itself" \
    "$(manifests_of hub/library/d) $(manifests_of hub/library/c) $(manifests_of local/app)" "0 1 1"
check "... logged" grep -q "gc: evicted hub/library/d@$DIG_d tagged 1 (" "$SRV/berth.log"
api GET /metrics
like "... counted in /metrics" "$(grep '^berth_mirror_evicted_total' "$BODY")" \
    "^berth_mirror_evicted_total\\{upstream=\"http://$UP_REG\",prefix=\"hub\"\\} 1$"
like "... with its bytes" "$(grep '^berth_mirror_evicted_bytes_total' "$BODY")" ' [1-9][0-9]+$'
stop_berth
done_testing
