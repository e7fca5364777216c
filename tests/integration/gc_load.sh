#!/usr/bin/env bash
# Garbage collection under load: the server collects every second (blob grace 5 s, untagged grace 1 s) and
# `berth gc` runs in a loop beside it, while 8 clients push new tags, move "latest", delete tags and manifests and
# pull live tags, byte for byte (load.py churn). No pull of a live tag fails and no push is refused; afterwards fsck
# finds nothing, every live tag is served, and the blob files on disk are exactly what the live manifests reference.
# GC_LOAD_SECONDS sets the length (default 20; the long run of docs/lifecycle.md uses 120 or more).
. "$(dirname "$0")/lib.sh"

LOAD=("$PYTHON" "$(dirname "$0")/load.py")
SECONDS_LOAD=${GC_LOAD_SECONDS:-20}
start_berth BERTH_MODE=open BERTH_GC_INTERVAL=1s BERTH_GC_BLOB_GRACE=5s BERTH_GC_UNTAGGED_GRACE=1s BERTH_LOG_ACCESS=

gcenv=(env -u BERTH_CONFIG BERTH_STORAGE_ROOT="$DATA" BERTH_LOG_LEVEL=warn)
(
    end=$((SECONDS + SECONDS_LOAD))
    while ((SECONDS < end)); do
        "${gcenv[@]}" "$BERTH" gc --blob-grace 5s --untagged-grace 1s >>"$T/cli-gc.out" 2>>"$T/cli-gc.err" ||
            echo "exit $?" >>"$T/cli-gc.fail"
        sleep 0.3
    done
) &
cli_loop=$!
"${LOAD[@]}" churn "$URL" "$T/live" --workers 8 --seconds "$SECONDS_LOAD" >"$T/churn.out" 2>"$T/churn.err"
rc=$?
wait "$cli_loop"
is "8 clients churning for ${SECONDS_LOAD} s beside the collector: no failure" "$rc" 0
diag "$(cat "$T/churn.out")"
[[ $rc == 0 ]] || diag "$(cat "$T/churn.err")"
like "... they pushed, moved, deleted and pulled" "$(cat "$T/churn.out")" \
    'digest_deletes=[1-9][0-9]* moves=[1-9][0-9]* pulls=[1-9][0-9]* pushes=[1-9][0-9]* tag_deletes=[1-9][0-9]*'
check "berth gc beside the server never failed" test ! -e "$T/cli-gc.fail"
removed=$(grep -c '^removed blob' "$T/cli-gc.out")
api GET /metrics
srv=$(sed -n 's/^berth_gc_removed_total{kind="blob"} //p' "$BODY")
check "blobs were collected meanwhile (server $srv, berth gc $removed)" test $((srv + removed)) -gt 0

# let the graces run out, then collect what is left and compare the disk with what the live content needs
sleep 6
"${gcenv[@]}" "$BERTH" gc --blob-grace 5s --untagged-grace 1s >"$T/last.out" 2>&1
is "a last berth gc: exit 0" "$?" 0
"${LOAD[@]}" verify "$URL" "$T/live" >"$T/verify.out" 2>&1
is "every live tag is served, byte for byte" "$?" 0
"${gcenv[@]}" "$BERTH" fsck >"$T/fsck.out" 2>&1
is "fsck finds nothing" "$?" 0
[[ -s $T/fsck.out ]] && diag "$(tail -5 "$T/fsck.out")"
files=$(find "$DATA/blobs" -type f | sed -E 's|.*/blobs/([a-z0-9]+)/../|\1:|' | sort)
needed=$("$PYTHON" - "$T/live" "$URL" <<'PY'
import json, sys, urllib.request
blobs = set()
for line in open(sys.argv[1]):
    rec = json.loads(line)
    if rec["kind"] != "manifest":
        continue
    req = urllib.request.Request("%s/v2/%s/manifests/%s" % (sys.argv[2], rec["repo"], rec["tag"]),
                                 headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
    m = json.load(urllib.request.urlopen(req))
    blobs.add(m["config"]["digest"])
    blobs.update(l["digest"] for l in m["layers"])
print("\n".join(sorted(blobs)))
PY
)
is "the blob files on disk are exactly what the live tags reference ($(wc -l <<<"$files") files)" "$files" "$needed"
stop_berth
done_testing
