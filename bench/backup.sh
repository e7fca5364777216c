#!/usr/bin/env bash
# bench/backup.sh - berth backup and berth restore against plain tar and zstd of the same storage root.
#
# Usage: bench/backup.sh [--mib N] [--reps N] [--keep]
#   --mib N    blob bytes in the store, in MiB (default 1536): 80 % in 64 MiB blobs, the rest in 16-256 KiB ones,
#              random bytes (as incompressible as gzip'd layers); pushed with curl into a berth serve
#   --reps N   runs of each of the four, interleaved (default 3)
#   --keep     keep the work folder
# Env: BERTH (default: ./berth of the current folder), TMPDIR (where the store and the archives go: the disk measured)
# Prints a markdown table: seconds and MiB/s (blob bytes over wall time) of each run, then the median.
#   berth backup FILE                     (server running, idle; zstd level 3, one worker per CPU; the archive fsynced)
#   tar -C ROOT -cf - . | zstd -T0        (the same data, zstd's default level 3; not fsynced)
#   berth restore FILE                    (every blob hashed, every file and folder fsynced)
#   zstd -dc | tar -x ; sync              (and the same without the sync)
set -Eeuo pipefail
export LC_ALL=C
MIB=1536 REPS=3 KEEP=0
while [ $# -gt 0 ]; do
    case $1 in
    --mib) MIB=${2:?}; shift ;;
    --reps) REPS=${2:?}; shift ;;
    --keep) KEEP=1 ;;
    *) echo "usage: bench/backup.sh [--mib N] [--reps N] [--keep]" >&2; exit 2 ;;
    esac
    shift
done
BERTH=${BERTH:-$PWD/berth}
[[ -x $BERTH ]] || { echo "bench/backup.sh: no berth at $BERTH (set BERTH)" >&2; exit 1; }
command -v zstd >/dev/null || { echo "bench/backup.sh: zstd is needed" >&2; exit 1; }
W=$(mktemp -d "${TMPDIR:-/tmp}/berth-bench-backup.XXXXXX")
PID=
cleanup() {
    [[ -n $PID ]] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
    if ((KEEP)); then echo "# kept $W" >&2; else rm -rf "$W"; fi
}
trap cleanup EXIT
log() { echo "# $(date +%T) $*" >&2; }
now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END{ if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2 }'; }

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export BERTH_STORAGE_ROOT=$W/root BERTH_MODE=open BERTH_HTTP_ADDR=127.0.0.1:$PORT
"$BERTH" serve >"$W/serve.log" 2>&1 &
PID=$!
for ((i = 0; i < 100; i++)); do
    curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break
    sleep 0.1
done

push() { # FILE
    local d loc
    d=sha256:$(sha256sum "$1" | cut -d' ' -f1)
    loc=$(curl -sf -D - -o /dev/null -X POST "http://127.0.0.1:$PORT/v2/bench/data/blobs/uploads/" |
        tr -d '\r' | awk 'tolower($1) == "location:" {print $2}')
    curl -sf -o /dev/null -X PUT -T "$1" "http://127.0.0.1:$PORT$loc?digest=$d"
}
log "filling the store with $MIB MiB of blobs"
big=$((MIB * 8 / 10 / 64)) small_bytes=$((MIB * 1024 * 1024 / 5)) n_small=0
for ((i = 0; i < big; i++)); do
    head -c $((64 << 20)) /dev/urandom >"$W/blob"
    push "$W/blob"
done
while ((small_bytes > 0)); do
    s=$(((RANDOM % 241 + 16) * 1024))
    head -c "$s" /dev/urandom >"$W/blob"
    push "$W/blob"
    small_bytes=$((small_bytes - s))
    n_small=$((n_small + 1))
done
rm -f "$W/blob"
BYTES=$(find "$W/root/blobs" -type f -printf '%s\n' | awk '{s+=$1} END{print s}')
NBLOBS=$(find "$W/root/blobs" -type f | wc -l)
log "store: $NBLOBS blobs ($big of 64 MiB, $n_small small), $BYTES bytes"

declare -A T
run() { # NAME CMD...
    local name=$1 t0 t1
    shift
    sync
    t0=$(now)
    "$@" >/dev/null 2>"$W/err" || { cat "$W/err" >&2; exit 1; }
    t1=$(now)
    T[$name]+="$(awk "BEGIN{print $t1 - $t0}") "
}
berth_backup() { rm -f "$W/b.tar.zst"; "$BERTH" backup "$W/b.tar.zst"; }
tar_backup() { tar -C "$W/root" -cf - . | zstd -q -T0 >"$W/t.tar.zst"; }
berth_restore() { rm -rf "$W/r"; BERTH_STORAGE_ROOT=$W/r "$BERTH" restore "$W/b.tar.zst"; }
tar_restore() { rm -rf "$W/x"; mkdir "$W/x"; zstd -dc "$W/t.tar.zst" | tar -x -C "$W/x"; }
tar_restore_sync() { tar_restore; sync; }
for ((r = 1; r <= REPS; r++)); do
    log "run $r of $REPS"
    run "berth backup" berth_backup
    run "tar | zstd -T0" tar_backup
    run "berth restore" berth_restore
    run "zstd -dc | tar -x" tar_restore
    run "zstd -dc | tar -x; sync" tar_restore_sync
done

echo "Store: $NBLOBS blobs, $(awk "BEGIN{printf \"%.2f\", $BYTES / 2^30}") GiB; archives: berth" \
    "$(stat -c %s "$W/b.tar.zst") bytes, tar $(stat -c %s "$W/t.tar.zst") bytes; $(nproc) CPUs; TMPDIR ${TMPDIR:-/tmp}"
echo
echo "| | runs (s) | median (s) | MiB/s (median) |"
echo "|---|---|---|---|"
for name in "berth backup" "tar | zstd -T0" "berth restore" "zstd -dc | tar -x" "zstd -dc | tar -x; sync"; do
    m=$(tr ' ' '\n' <<<"${T[$name]}" | grep . | median)
    printf '| `%s` | %s | %.2f | %.0f |\n' "${name//|/\\|}" "$(printf '%.2f ' ${T[$name]})" "$m" \
        "$(awk "BEGIN{print $BYTES / 1048576 / $m}")"
done
