#!/usr/bin/env bash
# Concurrency, end to end, as clients see it (.ci/run runs it under ThreadSanitizer too: tests/README):
#   1. a SIGTERM that arrives while berth starts (pending when the loops start) stops it cleanly;
. "$(dirname "$0")/lib.sh"

# ---------------------------------------------------------------- 1. SIGTERM during start-up
# berth blocks SIGTERM before it starts any thread and takes it with sigwait once the loops run; one sent in between
# waits, pending, and is taken at once. The test sends it as soon as /proc shows berth's own mask (SIGTERM blocked,
# SIGHUP not: glibc blocks everything for a moment while it starts a thread).
early_term() { # THREADS N
    local dir=$T/early.$1.$2 port pid i k v blk= name= st before=0
    mkdir -p "$dir"
    port=$(free_port)
    env BERTH_HTTP_ADDR="127.0.0.1:$port" BERTH_STORAGE_ROOT="$dir/data" BERTH_LOG_ACCESS= BERTH_MODE=open \
        BERTH_HTTP_THREADS="$1" "$BERTH" serve >"$dir/log" 2>&1 &
    pid=$!
    for ((i = 0; i < 20000; i++)); do
        name= blk=
        while read -r k v; do
            case $k in Name:) name=$v ;; SigBlk:) blk=$v ;; esac
        done <"/proc/$pid/status" 2>/dev/null
        [[ $name == berth && -n $blk ]] && (((0x$blk >> 14) & 1 && !(0x$blk & 1))) && break
        _alive "$pid" || break
    done
    grep -q 'listening' "$dir/log" || before=1
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < 300; i++)); do
        _alive "$pid" || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid"
    st=$?
    EARLY_BEFORE=$((EARLY_BEFORE + before))
    if ((st != 0)) || grep -qE 'Sanitizer|runtime error:' "$dir/log"; then
        diag "http.threads $1, try $2: exit status $st" "$(tail -n 40 "$dir/log")"
        return 1
    fi
}
EARLY_BEFORE=0
early_ok=1
for n in 1 2 3; do
    early_term 2 "$n" || early_ok=0
    early_term 16 "$n" || early_ok=0
done
is "SIGTERM while berth starts (6 times, 2 and 16 loops): it exits 0 each time" "$early_ok" 1
isnt "... and at least once the signal came before berth was listening" "$EARLY_BEFORE" 0

done_testing
