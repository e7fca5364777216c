#!/usr/bin/env bash
# berth backup and berth restore: a full backup taken while a client keeps pushing, restored into an empty root and
# served again (skopeo pulls every image, digests compared with the originals); an incremental backup that holds only
# the new blobs, restored after the full one; a damaged or cut archive refused with the root left empty; a root that
# is not empty refused; plain tar reads the archives; the garbage collector leaves the blob files a backup holds.
. "$(dirname "$0")/lib.sh"

command -v skopeo >/dev/null || skip_all "skopeo is not installed"
command -v zstd >/dev/null || skip_all "zstd is not installed"
command -v sqlite3 >/dev/null || skip_all "sqlite3 is not installed"
NOTLS=(--src-tls-verify=false --dest-tls-verify=false)

start_berth
ORIG=$DATA
ORIG_URL=$URL

# bk ARGS... : berth on the original root
bk() { env BERTH_STORAGE_ROOT="$ORIG" "$BERTH" "$@"; }

# restore_into DIR ARCHIVE... : berth restore with DIR as the storage root; its stderr in $T/restore.err
restore_into() {
    local dir=$1
    shift
    env BERTH_STORAGE_ROOT="$dir" "$BERTH" restore "$@" 2>"$T/restore.err"
}

# members ARCHIVE : the archive's member names, one a line (plain zstd and tar)
members() { zstd -dc "$1" | tar -tf -; }

# pulled_same REG_REPO:TAG LAYOUT TAG : skopeo copies the image (every platform) out of the registry into a new OCI
# layout; what the tag names is the original's digest, and every blob it got has the original's bytes
pulled_same() {
    local out=$T/pull.$RANDOM$RANDOM f want
    want=$(layout_ref "$2" "$3")
    sko copy --all "${NOTLS[@]}" "docker://$REG/$1" "oci:$out:x" >/dev/null || return 1
    [[ $(layout_ref "$out" x) == "$want" ]] || {
        echo "pulled $(layout_ref "$out" x), pushed $want"
        return 1
    }
    for f in "$out"/blobs/sha256/*; do
        cmp "$f" "$2/blobs/sha256/${f##*/}" || return 1
    done
}

# ------------------------------------------------------------ images: single platform, multi-arch index, tags
L1=$T/l1 L2=$T/l2 L3=$T/l3
oci_layout "$L1" v1 3 >/dev/null
oci_layout "$L2" multi 2 amd64 arm64 >/dev/null
check "skopeo pushes a/one:v1" sko copy "${NOTLS[@]}" "oci:$L1:v1" "docker://$REG/a/one:v1"
check "skopeo pushes a/one:latest (the same image)" sko copy "${NOTLS[@]}" "oci:$L1:v1" "docker://$REG/a/one:latest"
check "skopeo pushes the index a/multi:v1 --all" sko copy --all "${NOTLS[@]}" "oci:$L2:multi" "docker://$REG/a/multi:v1"
# a 48 MiB blob, so that the backup takes a while beside the pushes
mkrand "$T/big" $((48 << 20))
check "a 48 MiB blob pushed to a/big" push_blob a/big "$T/big"
BIG=$(sha256_of "$T/big")

# ------------------------------------------------------------ a full backup while a client keeps pushing
# The pusher pushes small images by curl, one after another, and appends each acknowledged tag to $ACKED.
ACKED=$T/acked
: >"$ACKED"
(
    BODY=$T/pusher.body HDRS=$T/pusher.headers # its own response files: the main shell makes requests too
    i=0
    while [[ ! -e $T/stop ]]; do
        i=$((i + 1))
        if push_image "busy/img$((i % 3))" "t$i" oci >/dev/null 2>&1; then
            echo "busy/img$((i % 3)) t$i $IMG_DIGEST" >>"$ACKED"
        fi
    done
) &
PUSHER=$!
for ((i = 0; i < 100; i++)); do
    (($(wc -l <"$ACKED") >= 5)) && break
    sleep 0.1
done
cp "$ACKED" "$T/acked.before" # acknowledged before the backup began
check "berth backup while a client pushes (exit 0)" bk backup "$T/full.tar.zst"
ACK_AFTER_START=$(wc -l <"$ACKED")
# A second one through standard output into a slow pipe (nothing read for 2 s, then 20 MiB/s; zstd on one thread, so
# that the backup reads its blob files only as fast as the pipe takes them), still with pushes going on, and a
# collection meanwhile that removes blobs its snapshot names: 20 blobs pushed with no manifest, collectable at once
# with --blob-grace 0 (so are the pusher's layers until its manifest is in: some of its pushes fail then). Without
# the hold on blob files the backup would find some of them gone.
for ((i = 0; i < 20; i++)); do
    mkrand "$T/loose$i" $((256 << 10))
    push_blob gcx/loose "$T/loose$i" || fail "a loose blob pushed"
done
throttle() {
    "$PYTHON" -c '
import sys, time
i, o = sys.stdin.buffer, sys.stdout.buffer
time.sleep(2)
while True:
    b = i.read(1 << 20)
    if not b:
        break
    o.write(b)
    o.flush()
    time.sleep(0.05)'
}
cp "$ACKED" "$T/acked.before2"
(
    bk backup - --threads 1 2>"$T/stdout.err" | throttle >"$T/stdout.tar.zst"
    echo "${PIPESTATUS[0]}" >"$T/stdout.rc"
) &
SLOW=$!
sleep 0.5
bk gc --blob-grace 0 >"$T/gc-during.out" 2>&1
still=0
kill -0 "$SLOW" 2>/dev/null && still=1
wait "$SLOW"
is "(self-check) the backup was still running when the collection ended" "$still" 1
like "berth gc during the backup removed the loose blobs' rows" "$(tail -n 1 "$T/gc-during.out")" \
    "removed .* ([2-9][0-9]|[0-9]{3,}) blobs"
is "berth backup - (standard output) exits 0 beside the collection" "$(cat "$T/stdout.rc")" 0
touch "$T/stop"
wait "$PUSHER"
diag "pushes acknowledged: $(wc -l <"$T/acked.before") before the backup, $ACK_AFTER_START when it ended, $(wc -l <"$ACKED") in all"
(($(wc -l <"$T/acked.before") >= 5)) && pass "(self-check) pushes were acknowledged before the backup" ||
    fail "(self-check) pushes were acknowledged before the backup"

members "$T/full.tar.zst" >"$T/full.list"
is "plain tar --zstd -t reads the archive" "$(tar --zstd -tf "$T/full.tar.zst" | head -n 3 | tr '\n' ' ')" \
    "berth-backup.json berth-blobs.txt berth.db "
check "the archive holds the 48 MiB blob under its path in the storage root" \
    grep -qx "blobs/sha256/${BIG:7:2}/${BIG#sha256:}" "$T/full.list"
check "the archive holds the signing key" grep -qx keys/token.pem "$T/full.list"
zstd -dc "$T/full.tar.zst" | tar -xOf - berth-backup.json >"$T/meta.json"
is "berth-backup.json: a full backup of format version 1" \
    "$(jq -r '[.format, .version, .kind, .previous // "null"] | @tsv' "$T/meta.json")" "$(printf 'berth-backup\t1\tfull\tnull')"
is "berth-blobs.txt lists as many blobs as the archive holds" \
    "$(zstd -dc "$T/full.tar.zst" | tar -xOf - berth-blobs.txt | wc -l)" "$(grep -c '^blobs/' "$T/full.list")"
check "standard output's archive is a berth backup too" grep -q "^berth: backup .* (full)" "$T/stdout.err"
is "the backup on standard output holds a database" "$(members "$T/stdout.tar.zst" | grep -c '^berth.db$')" 1

# ------------------------------------------------------------ backup refusals
check "berth backup refuses to overwrite a file" bash -c "! env BERTH_STORAGE_ROOT='$ORIG' '$BERTH' backup '$T/full.tar.zst'"
bk backup "$T/none.tar.zst" --since "$T/missing.tar.zst" 2>"$T/since.err"
is "--since a missing file: exit 1" "$?" 1
like "  and says why" "$(cat "$T/since.err")" "cannot open .*missing.tar.zst"
check "  and leaves no file behind" bash -c "! ls '$T'/none.tar.zst*"
echo "not a backup" | zstd -q >"$T/junk.tar.zst"
bk backup "$T/none.tar.zst" --since "$T/junk.tar.zst" 2>"$T/since.err"
like "--since an archive that is no berth backup: refused" "$? $(cat "$T/since.err")" "^1 .*not a berth backup"

# progress: on a terminal only (script(1) gives the command one)
if command -v script >/dev/null; then
    script -qec "env BERTH_STORAGE_ROOT='$ORIG' '$BERTH' backup '$T/tty.tar.zst'" /dev/null >"$T/tty.out" 2>&1
    is "berth backup on a terminal: exit 0" "$?" 0
    like "  shows its progress: bytes, percentage, rate" "$(tr '\r' '\n' <"$T/tty.out" | grep '^backup: ' | tail -n 1)" \
        "^backup: [0-9.]+ MiB of [0-9.]+ MiB \(100%\), [0-9.]+ [KMG]?i?B/s"
    like "  and the time left while it runs" "$(tr '\r' '\n' <"$T/tty.out" | grep '^backup: ' | head -n 1)" ", [0-9]+:[0-9]{2} left"
    bk backup "$T/notty.tar.zst" 2>"$T/notty.err"
    is "  but not when standard error is no terminal (one summary line)" "$(tr -d '\n' <"$T/notty.err" | grep -c $'\r')" 0
    rm -f "$T/tty.tar.zst" "$T/notty.tar.zst"
fi

# ------------------------------------------------------------ restore refusals
mkdir -p "$T/nonempty"
echo keep >"$T/nonempty/precious"
restore_into "$T/nonempty" "$T/full.tar.zst"
is "restore into a root that is not empty: exit 1" "$?" 1
like "  with a clear message" "$(cat "$T/restore.err")" "is not empty \(it holds precious\)"
is "  and the root untouched" "$(ls "$T/nonempty")" precious

# a blob damaged inside the archive (re-packed with plain tar and zstd, one byte changed)
mkdir "$T/unpacked"
zstd -dc "$T/full.tar.zst" | tar -xf - -C "$T/unpacked"
BIGFILE=$T/unpacked/blobs/sha256/${BIG:7:2}/${BIG#sha256:}
printf '\x5a' | dd of="$BIGFILE" bs=1 seek=$((20 << 20)) conv=notrunc status=none
(cd "$T/unpacked" && tar -cf - berth-backup.json berth-blobs.txt berth.db keys blobs) | zstd -q -T0 >"$T/bad.tar.zst"
restore_into "$T/bad" "$T/bad.tar.zst"
is "restore of an archive with a damaged blob: exit 1" "$?" 1
like "  says which blob, and that nothing was restored" "$(cat "$T/restore.err")" \
    "blob $BIG is damaged: its $((48 << 20)) bytes hash to sha256:.*nothing was restored"
check "  and leaves no root behind" test ! -e "$T/bad"
mkdir "$T/bad2"
restore_into "$T/bad2" "$T/bad.tar.zst"
is "  into an empty folder: exit 1 too, the folder left empty" "$? $(ls -A "$T/bad2" | wc -l)" "1 0"

# an archive of a newer berth (a schema this one does not know)
jq '.schema = 999' "$T/unpacked/berth-backup.json" >"$T/meta999" && cp "$T/meta999" "$T/unpacked/berth-backup.json"
(cd "$T/unpacked" && tar -cf - berth-backup.json berth-blobs.txt berth.db keys blobs) | zstd -q -T0 >"$T/newer.tar.zst"
restore_into "$T/newer" "$T/newer.tar.zst"
like "restore of an archive whose database is of a newer schema: refused" "$? $(cat "$T/restore.err")" \
    "^1 .*schema version 999, made by a newer berth"

head -c $(($(size_of "$T/full.tar.zst") / 2)) "$T/full.tar.zst" >"$T/cut.tar.zst"
restore_into "$T/cut" "$T/cut.tar.zst"
like "restore of a cut archive: exit 1, says so" "$? $(cat "$T/restore.err")" "^1 .*cut short"
check "  and leaves no root behind" test ! -e "$T/cut"

# ------------------------------------------------------------ restore, serve, pull
stop_berth
# next_data : where the next start_berth keeps its data
next_data() { echo "$T/srv$((_nsrv + 1))/data"; }
R1=$(next_data)
check "berth restore into an empty root (exit 0)" restore_into "$R1" "$T/full.tar.zst"
diag "$(cat "$T/restore.err")"
check "fsck of the restored root: no error, no orphan" env BERTH_STORAGE_ROOT="$R1" "$BERTH" fsck --verify --grace 0
is "every blob a restored manifest references is linked in its repository" "$(sqlite3 "$R1/berth.db" \
    "SELECT count(*) FROM manifest_ref r JOIN manifest m ON m.id = r.manifest_id WHERE r.kind < 2 AND NOT EXISTS
     (SELECT 1 FROM repository_blob l WHERE l.repository_id = m.repository_id AND l.digest = r.digest)")" 0
is "every manifest an index lists is in its repository" "$(sqlite3 "$R1/berth.db" \
    "SELECT count(*) FROM manifest_ref r JOIN manifest m ON m.id = r.manifest_id WHERE r.kind = 2 AND NOT EXISTS
     (SELECT 1 FROM manifest c WHERE c.repository_id = m.repository_id AND c.digest = r.digest)")" 0
start_berth
check "skopeo pulls a/one:v1 from the restored registry, byte-exact" pulled_same a/one:v1 "$L1" v1
check "skopeo pulls a/one:latest" pulled_same a/one:latest "$L1" v1
check "skopeo pulls the index a/multi:v1 with both platforms, byte-exact" pulled_same a/multi:v1 "$L2" multi
api GET "/v2/a/big/blobs/$BIG"
is "the 48 MiB blob downloads, same digest" "$STATUS $(sha256_of "$BODY")" "200 $BIG"
missing=0
while read -r repo tag digest; do
    api GET "/v2/$repo/manifests/$tag" -H "Accept: $MT_OCI_MANIFEST"
    [[ $STATUS == 200 && $(sha256_of "$BODY") == "$digest" ]] || {
        missing=$((missing + 1))
        diag "$repo:$tag ($digest): $STATUS"
    }
done <"$T/acked.before"
is "every push acknowledged before the backup began is there ($(wc -l <"$T/acked.before"))" "$missing" 0
# pushes acknowledged while it ran may be in it or not, but whatever is tagged is whole: fsck above, and a pull
api GET /v2/busy/img1/tags/list
last_tag=$(jq -r '.tags | map(ltrimstr("t") | tonumber) | max' "$BODY")
check "the newest tag pushed meanwhile (busy/img1:t$last_tag) pulls whole" \
    sko copy "${NOTLS[@]}" "docker://$REG/busy/img1:t$last_tag" "oci:$T/busy:x"
stop_berth

# the backup the collection ran beside: whole, with the loose blobs it removed meanwhile
R0=$T/from-slow
check "berth restore of the backup taken beside the collection (exit 0)" restore_into "$R0" "$T/stdout.tar.zst"
check "  fsck --verify: no error, no orphan" env BERTH_STORAGE_ROOT="$R0" "$BERTH" fsck --verify --grace 0
n=0
for ((i = 0; i < 20; i++)); do
    f=$R0/blobs/sha256/$(sha256_of "$T/loose$i" | cut -c8-9)/$(sha256_of "$T/loose$i" | cut -c8-)
    [[ -f $f ]] && cmp -s "$f" "$T/loose$i" && n=$((n + 1))
done
is "  it holds the 20 blobs the collection removed while it ran" "$n" 20
missing=0
while read -r repo tag digest; do
    [[ $(sqlite3 "$R0/berth.db" "SELECT m.digest FROM tag t JOIN manifest m ON m.id = t.manifest_id JOIN repository r
        ON r.id = t.repository_id WHERE r.name = '$repo' AND t.name = '$tag'") == "$digest" ]] || missing=$((missing + 1))
done <"$T/acked.before2"
is "  and every push acknowledged before it began ($(wc -l <"$T/acked.before2"))" "$missing" 0

# ------------------------------------------------------------ incremental
BERTH_ENV=()
SRV=$T/srv1
DATA=$ORIG
PORT=${ORIG_URL##*:}
_launch
oci_layout "$L3" new 2 >/dev/null
check "skopeo pushes a/new:v1 after the full backup" sko copy "${NOTLS[@]}" "oci:$L3:new" "docker://$REG/a/new:v1"
check "berth backup --since the full backup (exit 0)" bk backup "$T/inc.tar.zst" --since "$T/full.tar.zst"
members "$T/inc.tar.zst" >"$T/inc.list"
grep '^blobs/' "$T/inc.list" | sed 's|.*/|sha256:|' | sort >"$T/inc.blobs"
# what the store holds now that the full backup's list does not: the new image's blobs (manifest, config, two
# layers) and those of the pushes acknowledged after the full backup's snapshot
zstd -dc "$T/full.tar.zst" | tar -xOf - berth-blobs.txt | cut -d' ' -f1 | sort >"$T/full.blobs"
sqlite3 "$ORIG/berth.db" "SELECT digest FROM blob" | sort | comm -23 - "$T/full.blobs" >"$T/new.blobs"
is "the incremental archive holds exactly the blobs the full one does not ($(wc -l <"$T/new.blobs"))" \
    "$(cat "$T/inc.blobs")" "$(cat "$T/new.blobs")"
NEWM=$(layout_blob "$L3" "$(layout_ref "$L3" new)")
is "  among them the new image's config and 2 layers (its manifest is in the database)" \
    "$(jq -r '.config.digest, .layers[].digest' "$NEWM" | sort | comm -23 - "$T/inc.blobs")" ""
is "  and none the full one holds" "$(grep '^blobs/' "$T/inc.list" | grep -cxFf - "$T/full.list")" 0
# (the pushes beside the backups add blobs to it, more on a loaded machine: a quarter of the full one is plenty of room,
# and far below what an archive holding the full one's layers again would weigh)
(($(size_of "$T/inc.tar.zst") * 4 < $(size_of "$T/full.tar.zst"))) &&
    pass "  so it is small: $(size_of "$T/inc.tar.zst") bytes against $(size_of "$T/full.tar.zst")" ||
    fail "  so it is small" "$(size_of "$T/inc.tar.zst") bytes against $(size_of "$T/full.tar.zst")"
zstd -dc "$T/inc.tar.zst" | tar -xOf - berth-backup.json >"$T/imeta.json"
is "  its berth-backup.json names the full backup as previous" "$(jq -r '.kind + " " + .previous' "$T/imeta.json")" \
    "incremental $(jq -r .id "$T/meta.json")"
check "berth gc and fsck are not disturbed by the backups" bk fsck --grace 0
stop_berth

restore_into "$T/r-inc-only" "$T/inc.tar.zst"
like "restore of the incremental one alone: refused" "$? $(cat "$T/restore.err")" \
    "^1 .*is an incremental backup .*give the full backup first"
restore_into "$T/r-swapped" "$T/inc.tar.zst" "$T/full.tar.zst"
is "restore of the two in the wrong order: exit 1" "$?" 1
restore_into "$T/r-wrongbase" "$T/stdout.tar.zst" "$T/inc.tar.zst"
like "restore of an incremental one after another full backup: refused" "$? $(cat "$T/restore.err")" \
    "^1 .*builds on backup .*not on the archive before it"
R2=$(next_data)
check "berth restore FULL INCREMENTAL (exit 0)" restore_into "$R2" "$T/full.tar.zst" "$T/inc.tar.zst"
diag "$(cat "$T/restore.err")"
check "fsck of that root: no error, no orphan" env BERTH_STORAGE_ROOT="$R2" "$BERTH" fsck --grace 0
start_berth
check "skopeo pulls a/new:v1 (pushed after the full backup), byte-exact" pulled_same a/new:v1 "$L3" new
check "skopeo pulls a/multi:v1 (from the full backup), byte-exact" pulled_same a/multi:v1 "$L2" multi
check "and a/one:v1" pulled_same a/one:v1 "$L1" v1
stop_berth

# restore reads one archive from standard input
R3=$T/from-stdin
env BERTH_STORAGE_ROOT="$R3" "$BERTH" restore - <"$T/full.tar.zst" 2>"$T/restore.err"
is "berth restore - (one archive on standard input): exit 0" "$?" 0
is "  the same blobs as from the file" "$(cd "$R3" && find blobs -type f | sort | md5sum)" \
    "$(cd "$R1" && find blobs -type f | sort | md5sum)"

# ------------------------------------------------------------ the collector leaves a backup's blob files
start_berth
mkrand "$T/loose" 5000
check "a blob pushed with no manifest (collectable at once with --blob-grace 0)" push_blob gcx/a "$T/loose"
LOOSE=$(blob_path "$(sha256_of "$T/loose")")
command -v flock >/dev/null || skip_all "flock is not installed"
# this shell holds the lock as a backup does (shared), on its descriptor 9
exec 9<"$DATA/blobs.lock"
check "(self-check) flock -s takes the lock" flock -s -w 10 9
env BERTH_STORAGE_ROOT="$DATA" "$BERTH" gc --blob-grace 0 >"$T/gc.out" 2>&1
like "berth gc while a backup holds the blob files: removes the blob's row" "$(cat "$T/gc.out")" \
    "removed blob $(sha256_of "$T/loose")"
check "  but leaves its file" test -f "$LOOSE"
exec 9<&- # the backup is done
env BERTH_STORAGE_ROOT="$DATA" "$BERTH" gc --blob-grace 0 >"$T/gc.out" 2>&1
check "the next run, once the backup is done, removes the file" test ! -e "$LOOSE"
check "fsck: nothing left over" env BERTH_STORAGE_ROOT="$DATA" "$BERTH" fsck --grace 0

done_testing
