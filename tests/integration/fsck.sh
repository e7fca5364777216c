#!/usr/bin/env bash
# berth fsck while berth serve runs: a store damaged in each way fsck knows (a blob file deleted, truncated, with a
# byte flipped; a manifest's blob link row removed; a tag left pointing at nothing; orphan blob files, stray and
# temporary files, expired and broken upload sessions) gives one finding of each, with the exit status that says so;
# --repair removes only what nothing references, and nothing young; pushes running during fsck --repair lose nothing.
# Then the background scrub (storage.scrub_rate): its pace, and a flipped byte in the log and /metrics.
. "$(dirname "$0")/lib.sh"

SAN_PAT='AddressSanitizer|LeakSanitizer|ThreadSanitizer|runtime error:'
OCTET=(-H 'Content-Type: application/octet-stream')

# fsck ARGS... : berth fsck on the server's data; sets RC, OUT (stdout) and ERR (stderr)
fsck() {
    env -u BERTH_CONFIG BERTH_STORAGE_ROOT="$DATA" BERTH_LOG_LEVEL=warn ${FSCK_ENV[@]+"${FSCK_ENV[@]}"} \
        "$BERTH" fsck "$@" >"$T/fsck.out" 2>"$T/fsck.err"
    RC=$?
    OUT=$(cat "$T/fsck.out")
    ERR=$(cat "$T/fsck.err")
    if grep -qE "$SAN_PAT" "$T/fsck.err"; then
        fail "no sanitizer report from: fsck $*" "$(grep -E -A 30 -m 1 "$SAN_PAT" "$T/fsck.err")"
    fi
}
FSCK_ENV=()
# findings CLASS : the "KIND SUBJECT" of each finding of that class in the last output, sorted, one per line
findings() { grep "^$1 " <<<"$OUT" | sed -E 's/^[a-z]+ ([a-z]+) ([^ ]+): .*/\1 \2/' | sort; }
sumline() { grep '^fsck: ' <<<"$OUT"; }
summary() { sumline | sed 's/.*: \([0-9]* errors\)/\1/'; }
# sql QUERY : python's sqlite3 on the server's database (foreign keys off, as in the sqlite3 shell)
sql() {
    "$PYTHON" - "$DATA/berth.db" "$1" <<'EOF'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], timeout=10)
for row in c.execute(sys.argv[2]):
    print("\t".join("" if v is None else str(v) for v in row))
c.commit()
EOF
}
rel() { local p; p=$(blob_path "$1"); printf '%s' "${p#"$DATA"/}"; }
# backdate FILE : mtime two days ago (the ctime cannot be moved: grace periods are tested with short ones)
backdate() { touch -d '2 days ago' "$1"; }
# flip FILE : add one to the value of its first byte (same size, other bytes)
flip() {
    "$PYTHON" -c 'import sys
with open(sys.argv[1], "r+b") as f:
    b = f.read(1)
    f.seek(0)
    f.write(bytes([(b[0] + 1) % 256]))' "$1"
}

start_berth

# ------------------------------------------------------------ a healthy store
push_image r/one v1 oci amd64
A=("${IMG_BLOBS[@]}") AM=$IMG_MANIFEST
push_image r/one v2 oci arm64
B=("${IMG_BLOBS[@]}") BM=$IMG_MANIFEST
index_manifest oci "$T/index" "$AM" "$BM"
push_manifest r/one multi "$T/index"
push_image r/two v1 docker
C=("${IMG_BLOBS[@]}") CM=$IMG_MANIFEST CD=$IMG_DIGEST
push_image r/three v1 oci
DD=$IMG_DIGEST
is "(setup) four images and an index pushed" "$STATUS" 201

fsck
is "fsck of a healthy store: exit 0" "$RC" 0
like "... summary: 12 blobs, 5 manifests, 5 tags, nothing found" "$OUT" \
    '^fsck: 12 blobs \([0-9]+ bytes\), 5 manifests, 5 tags, 0 uploads in progress: 0 errors, 0 orphans \(0 removed\), 0 pending$'
fsck --verify
is "fsck --verify of a healthy store: exit 0, one line" "$RC $(wc -l <<<"$OUT")" "0 1"
like "... every blob byte hashed" "$OUT" "^fsck: 12 blobs \(([0-9]+) bytes, \1 hashed\)"

# ------------------------------------------------------------ damage, one of each
rm "$(blob_path "$(sha256_of "${A[2]}")")"                  # a blob file deleted
truncate -s 10 "$(blob_path "$(sha256_of "${C[1]}")")"       # one truncated
flip "$(blob_path "$(sha256_of "${B[1]}")")"               # one with a byte flipped: same size
sql "DELETE FROM repository_blob WHERE digest = '$(sha256_of "${C[0]}")'" # a manifest's config link row removed
sql "DELETE FROM manifest WHERE digest = '$DD'"             # r/three:v1 left pointing at nothing, and its
                                                            # references at a manifest row that is gone
api DELETE "/v2/r/one/manifests/$(sha256_of "$AM")"         # an index's child deleted (by a client)
IDX=$(sha256_of "$T/index")
# orphans: a blob file no row names (named by its bytes), one whose bytes are not its name, a stray file, a
# temporary file, an upload session that expired, one without its data file; and one upload in progress
mkrand "$T/orphan" 5000
O1=$(sha256_of "$T/orphan") O2=$(random_digest)
mkdir -p "$(dirname "$(blob_path "$O1")")" "$(dirname "$(blob_path "$O2")")"
cp "$T/orphan" "$(blob_path "$O1")"
cp "$T/orphan" "$(blob_path "$O2")"
echo notes >"$DATA/blobs/sha256/notes.txt"
echo body >"$DATA/tmp/body.Xy12zz"
mkrand "$T/part" 1000
start_upload r/one
api PATCH "$UPLOAD_URL" "${OCTET[@]}" --data-binary "@$T/part"
EXPIRED=${UPLOAD_URL##*/uploads/}
EXPIRED=${EXPIRED%%\?*}.$(printf %s r/one | sha256sum | cut -c1-32) # the session's file: <uuid>.<key of the repository>
backdate "$DATA/uploads/$EXPIRED"
start_upload r/one
api PATCH "$UPLOAD_URL" "${OCTET[@]}" --data-binary "@$T/part"
LIVE_URL=$(resolve "$(hdr Location)")
BROKEN=01234567-89ab-4cde-8f01-23456789abcd
mkdir "$DATA/uploads/$BROKEN"
printf 'r/one\nsha256\n1\n' >"$DATA/uploads/$BROKEN/info"

fsck
is "fsck of the damaged store: exit 1" "$RC" 1
is "... the errors: the missing file, the truncated one, the unlinked config, the index's child, the tag, the rows" \
    "$(findings error)" "$(printf '%s\n' "missing $(sha256_of "${A[2]}")" "reference r/one@$IDX" \
        "reference r/two@$CD" "size $(sha256_of "${C[1]}")" "tag r/three:v1" "database manifest_ref" | sort)"
like "... the rows left behind by the manifest deleted by hand" "$OUT" \
    "error database manifest_ref: 3 rows refer to a manifest row that does not exist"
like "... the index's reference names the child" "$OUT" \
    "error reference r/one@$IDX: its manifest $(sha256_of "$AM") is not in the repository"
like "... the reference names the config that is not linked" "$OUT" \
    "error reference r/two@$CD: its config $(sha256_of "${C[0]}") is not linked to the repository"
like "... the missing file says how many repositories link it" "$OUT" "No such file or directory \(linked to 1 repositories\)"
like "... the truncated file: its size and the database's" "$OUT" "10 bytes, the database says 3000"
is "... the expired upload session is an orphan" "$(findings orphan)" "upload uploads/$EXPIRED"
is "... what changed within the grace period (1h) is pending: listed, left alone" "$(findings pending)" \
    "$(printf '%s\n' "blob $(rel "$O1")" "blob $(rel "$O2")" "stray blobs/sha256/notes.txt" "temp tmp/body.Xy12zz" \
        "upload uploads/$BROKEN" | sort)"
like "... the summary counts them, and the upload in progress" "$(sumline)" \
    '^fsck: 12 blobs .*, 3 manifests, 4 tags, 1 uploads in progress: 6 errors, 1 orphans \(0 removed\), 5 pending$'
isnt "... the flipped byte is not seen without --verify" "$(grep -c "digest $(sha256_of "${B[1]}")" <<<"$OUT")" 1

fsck --verify
is "fsck --verify: exit 1" "$RC" 1
like "... finds the flipped byte" "$OUT" \
    "error digest $(sha256_of "${B[1]}"): $(rel "$(sha256_of "${B[1]}")"): its bytes hash to sha256:"
like "... and the orphan whose bytes are not its name" "$OUT" "pending blob $(rel "$O2"): no database row names it yet, and its bytes hash to $O1"
is "... seven errors in all" "$(findings error | wc -l)" 7

sleep 2
fsck --grace 1s
is "with --grace 1s the young leftovers are orphans too" "$(findings orphan)" \
    "$(printf '%s\n' "blob $(rel "$O1")" "blob $(rel "$O2")" "stray blobs/sha256/notes.txt" "temp tmp/body.Xy12zz" \
        "upload uploads/$BROKEN" "upload uploads/$EXPIRED" | sort)"
like "... the session without data says so" "$OUT" "orphan upload uploads/$BROKEN: an upload session without its data file"
check "... and nothing was removed without --repair" test -f "$(blob_path "$O1")" -a -f "$DATA/tmp/body.Xy12zz"

# ------------------------------------------------------------ repair
fsck --repair --grace 1s
is "fsck --repair: exit 1 (the errors remain)" "$RC" 1
is "... each orphan removed" "$(grep -c '^orphan .*: removed$' <<<"$OUT")" 6
like "... summary" "$(sumline)" ': 6 errors, 6 orphans \(6 removed\), 0 pending$'
gone=1
for p in "$(blob_path "$O1")" "$(blob_path "$O2")" "$DATA/blobs/sha256/notes.txt" "$DATA/tmp/body.Xy12zz" \
    "$DATA/uploads/$BROKEN" "$DATA/uploads/$EXPIRED"; do
    [[ -e $p ]] && gone=0 && diag "still there: $p"
done
is "... and gone from the disk" "$gone" 1
kept=1
for f in "${A[@]:0:2}" "${B[@]}" "${C[@]}"; do
    [[ -f $(blob_path "$(sha256_of "$f")") ]] || kept=0
done
is "... every blob file a row names is kept, damaged or not" "$kept" 1
api PATCH "$LIVE_URL" "${OCTET[@]}" --data-binary "@$T/part"
cat "$T/part" "$T/part" >"$T/whole"
api PUT "$(with_query "$(resolve "$(hdr Location)")" "digest=$(sha256_of "$T/whole")")" -H 'Content-Length: 0'
is "... the upload in progress is kept and finishes -> 201" "$STATUS" 201
fsck --verify --grace 0
is "... after it only the errors are left" "$(findings orphan)$(findings pending)|$(findings error | wc -l)" "|7"

# ------------------------------------------------------------ the errors mended (the rows by hand, the rest by a client)
sql "DELETE FROM manifest_ref WHERE manifest_id NOT IN (SELECT id FROM manifest)"
for f in "${A[2]}" "${C[1]}" "${B[1]}"; do push_blob r/one "$f"; done
push_blob r/two "${C[0]}"
push_manifest r/one "$(sha256_of "$AM")" "$AM"
api DELETE /v2/r/three/manifests/v1
is "(pushing the damaged blobs and the child manifest again, deleting the dangling tag)" "$STATUS" 202
fsck --verify
is "then fsck --verify: exit 0" "$RC" 0
like "... nothing found" "$(sumline)" ': 0 errors, 0 orphans \(0 removed\), 0 pending$'
api GET "/v2/r/one/blobs/$(sha256_of "${B[1]}")"
check "... the blob with the flipped byte serves its bytes again" same_bytes "$BODY" "${B[1]}"

# ------------------------------------------------------------ concurrent pushes during repairs
# a client pushes small blobs in a loop (its own curl, its own files) while fsck --repair runs again and again
pusher() {
    local i f d code
    for ((i = 0; i < 40; i++)); do
        f=$T/push.$i
        mkrand "$f" $((RANDOM * 3 + 1))
        d=$(sha256_of "$f")
        code=$(curl -s -o /dev/null -w '%{http_code}' "${OCTET[@]}" --data-binary "@$f" \
            -X POST "$URL/v2/r/busy/blobs/uploads/?digest=$d")
        [[ $code == 201 ]] && echo "$d $f" >>"$T/pushed"
    done
}
: >"$T/pushed"
pusher &
ppid=$!
runs=0 bad=0
while kill -0 "$ppid" 2>/dev/null; do
    fsck --repair --grace 1s
    runs=$((runs + 1))
    [[ $RC == 0 ]] || { bad=1; diag "$OUT"; }
done
wait "$ppid"
is "fsck --repair ran $runs times while 40 blobs were pushed, each run clean" "$bad" 0
served=0
while read -r d f; do
    api GET "/v2/r/busy/blobs/$d"
    [[ $STATUS == 200 ]] && cmp -s "$BODY" "$f" && served=$((served + 1))
done <"$T/pushed"
is "every blob acknowledged during the repairs is served, byte for byte" "$served/$(wc -l <"$T/pushed")" "40/40"
fsck --verify --grace 0
is "... and fsck --verify --grace 0 finds nothing" "$RC $(summary)" "0 0 errors, 0 orphans (0 removed), 0 pending"

# ------------------------------------------------------------ exit status 2, usage
DATA_SAVED=$DATA
DATA=$T/nowhere
fsck
is "fsck of a folder with no database: exit 2" "$RC" 2
like "... and says so" "$ERR" "no database at $T/nowhere/berth.db"
check "... and creates nothing there" test ! -e "$T/nowhere"
DATA=$DATA_SAVED
fsck --fast
is "an unknown option: exit 2" "$RC" 2

stop_berth

# ------------------------------------------------------------ the scrub
metric() { curl -s "$URL/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }
# wait_metric NAME VALUE [-ge] : until the metric has that value (or at least it), at most 15 s
wait_metric() {
    local i v
    for ((i = 0; i < 150; i++)); do
        v=$(metric "$1")
        [[ $v == "$2" || (${3:-} == -ge && -n $v && $v -ge $2) ]] && return 0
        sleep 0.1
    done
    echo "$1 is $v"
    return 1
}
start_berth BERTH_STORAGE_SCRUB_RATE=1MiB
mkrand "$T/s1" $((3 * 1024 * 1024))
push_blob r/s "$T/s1"
S1=$(sha256_of "$T/s1")
sleep 2
# at 1 MiB/s with at most a second's worth of credit: after 2 s, at most about 3 MiB of the 3 MiB blob
b=$(metric berth_scrub_bytes_checked_total)
check "scrub at 1MiB/s: $b bytes hashed after about 2 s (at most 3 MiB + one read)" \
    test "$b" -le $((3 * 1024 * 1024 + 131072))
check "... and some" test "$b" -gt 0
stop_berth

start_berth BERTH_STORAGE_SCRUB_RATE=256MiB
for f in "$T/orphan" "$T/part"; do push_blob r/s "$f"; done
check "scrub at 256MiB/s: passes go on" wait_metric berth_scrub_passes_total 3 -ge
is "... no damage" "$(metric berth_scrub_corrupt_blobs)" 0
F=$(blob_path "$(sha256_of "$T/orphan")")
flip "$F"
check "a byte flipped: berth_scrub_corrupt_blobs becomes 1" wait_metric berth_scrub_corrupt_blobs 1
like "... the log names the blob" "$(cat "$SRV/berth.log")" \
    "error scrub: blob $(sha256_of "$T/orphan"): $F is corrupt, its bytes hash to sha256:"
p=$(metric berth_scrub_passes_total)
check "... more passes" wait_metric berth_scrub_passes_total $((p + 2)) -ge
is "... logged once, not once per pass" "$(grep -c "scrub: blob $(sha256_of "$T/orphan")" "$SRV/berth.log")" 1
like "... blobs and bytes counted" "$(curl -s "$URL/metrics")" \
    $'# TYPE berth_scrub_blobs_checked_total counter\nberth_scrub_blobs_checked_total [1-9]'
push_blob r/s "$T/orphan"
check "pushed again: the gauge goes back to 0" wait_metric berth_scrub_corrupt_blobs 0
stop_berth

start_berth
is "without storage.scrub_rate the scrub is off: nothing checked" \
    "$(metric berth_scrub_blobs_checked_total) $(metric berth_scrub_passes_total)" "0 0"

done_testing
