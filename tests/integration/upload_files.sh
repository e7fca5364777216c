#!/usr/bin/env bash
# An upload session is one file, uploads/<uuid>.<key of its repository>, that becomes the blob: a single-request
# upload (POST ?digest=, or POST then one PUT) leaves no folder and nothing behind; a session survives a restart and
# answers only its own repository; an older berth's session folder is still resumed. Then berth is killed at each
# step of a single-request upload (through the power-loss shim's BERTH_TRACE_KILL): after each crash fsck finds
# no error, only what an unacknowledged push may leave (its session's file, or its blob file with no row yet), the
# push can be done again, and the session's file goes at storage.upload_ttl.
. "$(dirname "$0")/lib.sh"

OCTET=(-H 'Content-Type: application/octet-stream')
key() { printf %s "$1" | sha256sum | cut -c1-32; } # key REPO : the key in its sessions' file names
# uploads_dir : what uploads/ holds, "name" per file and "name/" per folder, sorted, on one line
uploads_dir() { find "$DATA/uploads" -mindepth 1 -maxdepth 1 -printf '%f%Y\n' | sed 's/f$//; s/d$/\//' | sort | xargs; }
# fsck ARGS... : berth fsck on the server's data (storage.upload_ttl as the server's); sets RC and OUT
fsck() {
    OUT=$(env -u BERTH_CONFIG BERTH_STORAGE_ROOT="$DATA" BERTH_LOG_LEVEL=warn BERTH_STORAGE_UPLOAD_TTL=2s \
        "$BERTH" fsck "$@" 2>&1)
    RC=$?
}
findings() { grep -E '^(error|orphan|pending) ' <<<"$OUT" | sed -E 's/^([a-z]+) ([a-z]+) ([^ ]+): .*/\1 \2 \3/' | sort | xargs; }
sumline() { grep '^fsck: ' <<<"$OUT"; }

start_berth BERTH_STORAGE_UPLOAD_TTL=2s

# ------------------------------------------------------------ the layout
start_upload lib/one
ID=$(hdr Docker-Upload-UUID)
is "POST starts a session: one file named by its id and its repository's key, no folder" "$(uploads_dir)" \
    "$ID.$(key lib/one)"
mkrand "$T/a" 5000
api PUT "$(with_query "$UPLOAD_URL" "digest=$(sha256_of "$T/a")")" "${OCTET[@]}" --data-binary "@$T/a"
is "PUT with the whole blob -> 201" "$STATUS" 201
is "... the session's file became the blob: uploads/ is empty" "$(uploads_dir)" ""
check "... and the blob file holds its bytes" same_bytes "$T/a" "$(blob_path "$(sha256_of "$T/a")")"

mkrand "$T/b" 3000
api POST "/v2/lib/one/blobs/uploads/?digest=$(sha256_of "$T/b")" "${OCTET[@]}" --data-binary "@$T/b"
is "a single POST ?digest= -> 201" "$STATUS" 201
is "... leaves nothing in uploads/" "$(uploads_dir)" ""
api GET "/v2/lib/one/blobs/$(sha256_of "$T/b")"
check "... and the blob is served" test "$STATUS" = 200 -a "$(sha256_of "$BODY")" = "$(sha256_of "$T/b")"

api POST "/v2/lib/one/blobs/uploads/?digest=$(sha256_of "$T/a")" "${OCTET[@]}" --data-binary "@$T/b"
is_error "a single POST whose body is not its digest -> 400 DIGEST_INVALID" 400 DIGEST_INVALID
is "... leaves nothing in uploads/ either" "$(uploads_dir)" ""

# a chunked session across a restart, seen from another repository
mkrand "$T/c" 8000
start_upload lib/one
api PATCH "$UPLOAD_URL" "${OCTET[@]}" --data-binary "@$T/c"
is "a chunk into a new session -> 202" "$STATUS" 202
C_URL=$(resolve "$(hdr Location)")
C_ID=$(hdr Docker-Upload-UUID)
restart_berth
api GET "$C_URL"
is "after a restart the session answers: 204 Range: 0-7999" "$STATUS $(hdr Range)" "204 0-7999"
api GET "/v2/lib/two/blobs/uploads/$C_ID"
is_error "... another repository does not find it" 404 BLOB_UPLOAD_UNKNOWN
api PUT "$(with_query "$C_URL" "digest=$(sha256_of "$T/c")")" "${OCTET[@]}" -H 'Content-Length: 0'
is "... it finishes -> 201" "$STATUS" 201
is "... uploads/ is empty" "$(uploads_dir)" ""

# a session folder an older berth left (info and data files), resumed after an upgrade
OLD=01234567-89ab-4cde-8f01-23456789abcd
mkdir "$DATA/uploads/$OLD"
printf 'lib/one\nsha256\n1700000000\n' >"$DATA/uploads/$OLD/info"
head -c 4000 "$T/c" >"$DATA/uploads/$OLD/data"
api GET "/v2/lib/one/blobs/uploads/$OLD"
is "an older berth's session folder is resumed: 204 Range: 0-3999" "$STATUS $(hdr Range)" "204 0-3999"
tail -c +4001 "$T/c" >"$T/c2"
mkrand "$T/d" 1
cat "$T/c" "$T/d" >"$T/cd"
api PATCH "/v2/lib/one/blobs/uploads/$OLD" "${OCTET[@]}" -H 'Content-Range: 4000-7999' --data-binary "@$T/c2"
is "... it takes the next chunk -> 202" "$STATUS" 202
api PUT "/v2/lib/one/blobs/uploads/$OLD?digest=$(sha256_of "$T/cd")" "${OCTET[@]}" --data-binary "@$T/d"
is "... and finishes with the last byte -> 201" "$STATUS" 201
is "... its folder is gone" "$(uploads_dir)" ""
check "... the blob holds its bytes" same_bytes "$T/cd" "$(blob_path "$(sha256_of "$T/cd")")"
fsck
is "fsck: exit 0, nothing found" "$RC $(findings)" "0 "
stop_berth

# ------------------------------------------------------------ crashes
SHIM=$BUILDDIR/tests/crash/trace.so
if [[ ! -f $SHIM ]]; then # run outside `make check`: build it here
    SHIM=$T/trace.so
    ${CC:-cc} -shared -fPIC -O2 -o "$SHIM" "$SRCDIR/tests/crash/trace.c" -ldl -lpthread
fi
TTL=3s
# crash_at POINT : berth started again under the shim, which kills it right after the operation POINT
crash_at() {
    BERTH_ENV=(BERTH_STORAGE_UPLOAD_TTL=$TTL BERTH_TRACE="$T/trace" BERTH_TRACE_ROOT="$DATA" BERTH_TRACE_KILL="$1"
        LD_PRELOAD="$SHIM" ASAN_OPTIONS="verify_asan_link_order=0:${ASAN_OPTIONS:-}")
    start_berth_again
}
# killed : berth died (of the shim's SIGKILL) within 10 s
killed() {
    local i pid=$BERTH_PID
    for ((i = 0; i < 100; i++)); do
        _alive "$pid" || break
        sleep 0.1
    done
    _alive "$pid" && return 1
    wait "$pid" 2>/dev/null
    BERTH_PID=
    _sanitizer_check
}
# after_crash : berth started again without the shim, then fsck --grace 0 (storage.upload_ttl as the server's)
after_crash() {
    BERTH_ENV=(BERTH_STORAGE_UPLOAD_TTL=$TTL)
    start_berth_again
    fsck --grace 0
}
# unclean : fsck's findings other than what an unacknowledged push may leave (its session's file, expired or not;
# its blob file with no row), and an exit status other than 0, or 1 with such orphans
unclean() {
    grep -E '^(error|orphan|pending) ' <<<"$OUT" | grep -vE '^(orphan|pending) (upload|blob) ' | xargs
    [[ $RC == 0 || ($RC == 1 && -n $(findings)) ]] || echo "exit status $RC"
    [[ -n $(sumline) ]] || echo "no summary line"
}
rel() { local p; p=$(blob_path "$1"); printf '%s' "${p#"$DATA"/}"; }
SESSION_FILE="^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.$(key lib/crash)$"

start_berth BERTH_STORAGE_UPLOAD_TTL=$TTL
stop_berth
n=0
# a single POST ?digest=, killed: right after its session's file is made; after the file is written and fsynced
# (when its blob's new shard folder is made, just before the rename); right after the rename, before the shard
# folder's fsync and the database's commit
for point in "OPEN:/uploads/" "MKDIR:/blobs/sha256/" "RENAME:/uploads/"; do
    n=$((n + 1))
    while :; do # a blob whose shard folder is not there yet (MKDIR: the kill point)
        mkrand "$T/s$n" 20000
        S=$(sha256_of "$T/s$n")
        [[ -d $(dirname "$(blob_path "$S")") ]] || break
    done
    crash_at "$point"
    api POST "/v2/lib/crash/blobs/uploads/?digest=$S" "${OCTET[@]}" --data-binary "@$T/s$n"
    check "single POST, killed at $point: no answer" test "$STATUS" = 000
    check "... berth was killed" killed
    if [[ $point == RENAME:* ]]; then
        is "... nothing is left in uploads/" "$(uploads_dir)" ""
        check "... the blob file is in place, whole" same_bytes "$T/s$n" "$(blob_path "$S")"
    else
        like "... the session's file is left in uploads/, nothing else" "$(uploads_dir)" "$SESSION_FILE"
        check "... no blob file" test ! -e "$(blob_path "$S")"
    fi
    after_crash
    is "... fsck after the restart: no error, nothing but the push's leftover" "$(unclean)" ""
    if [[ $point == RENAME:* ]]; then
        is "... which is the blob file with no row" "$(findings)" "orphan blob $(rel "$S")"
    fi
    api HEAD "/v2/lib/crash/blobs/$S"
    is "... the blob is not served (the push was not acknowledged)" "$STATUS" 404
    api POST "/v2/lib/crash/blobs/uploads/?digest=$S" "${OCTET[@]}" --data-binary "@$T/s$n"
    is "... the push again -> 201" "$STATUS" 201
    api GET "/v2/lib/crash/blobs/$S"
    check "... the blob is served" test "$STATUS" = 200 -a "$(sha256_of "$BODY")" = "$S"
    sleep 4.5 # storage.upload_ttl 3s; the expiry runs every second
    is "... the crash's leftover in uploads/ expired" "$(uploads_dir)" ""
    fsck --grace 0
    is "... fsck: exit 0, nothing found" "$RC $(findings)" "0 "
    stop_berth
done

# POST, killed right after it made the session's file (before the client heard 202): the file expires
crash_at "OPEN:/uploads/"
api POST "/v2/lib/crash/blobs/uploads/" -H 'Content-Length: 0'
check "POST, killed when its session's file is made: no answer" test "$STATUS" = 000
check "... berth was killed" killed
like "... the session's file is left in uploads/" "$(uploads_dir)" "$SESSION_FILE"
after_crash
is "... fsck: no error" "$(unclean)" ""
sleep 4.5
is "... the session nobody heard of expired" "$(uploads_dir)" ""
stop_berth

# POST answered, then killed as the PUT renames the session's file into the blob store: the push again works
mkrand "$T/p" 30000
P=$(sha256_of "$T/p")
crash_at "RENAME:/uploads/"
start_upload lib/crash
is "POST -> 202" "$STATUS" 202
api PUT "$(with_query "$UPLOAD_URL" "digest=$P")" "${OCTET[@]}" --data-binary "@$T/p"
check "... PUT, killed right after the rename: no answer" test "$STATUS" = 000
check "... berth was killed" killed
after_crash
is "... fsck: no error; the blob file with no row is an orphan" "$(unclean) $(findings)" " orphan blob $(rel "$P")"
api GET "$UPLOAD_URL"
is_error "... the session is gone with its file" 404 BLOB_UPLOAD_UNKNOWN
check "... the push again works" push_blob lib/crash "$T/p"
fsck --grace 0
is "... fsck: exit 0, nothing found" "$RC $(findings)" "0 "
stop_berth

done_testing
