#!/usr/bin/env bash
# Blob push throughput: berth vs docker-registry vs the disk, in one run.
#   bench/push-phases.sh [SIZE_MIB] [RUNS]        (defaults: 1024 MiB, 3 runs; median reported)
# Environment: BERTH (default ./berth), REGISTRY (default docker-registry), WORK (a folder on the storage
# volume; default ./bench-tmp), CHUNK_MIB (PATCH chunk size, default 64), BERTH_ENV (extra VAR=VALUE words for
# berth). Each server runs pinned to CPU 1 with a fresh storage root per push, curl runs on CPU 0; the runs
# alternate berth / docker-registry / disk. berth runs with log.level=debug and its per-phase line (receive,
# copy+hash, fsync, rename, db) is printed after each of its pushes.
set -u
SIZE_MIB=${1:-1024}
RUNS=${2:-3}
CHUNK_MIB=${CHUNK_MIB:-64}
BERTH=${BERTH:-$PWD/berth}
REGISTRY=${REGISTRY:-docker-registry}
WORK=${WORK:-$PWD/bench-tmp}
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
mkdir -p "$WORK" || exit 1
WORK=$(cd "$WORK" && pwd)
PORT_B=${PORT_B:-15701}
PORT_R=${PORT_R:-15702}
BLOB=$WORK/blob.$SIZE_MIB
pid=
trap '[[ -n $pid ]] && kill "$pid" 2>/dev/null; wait 2>/dev/null' EXIT

if [[ ! -s $BLOB ]]; then
    openssl enc -aes-128-ctr -pass pass:berth -nosalt -pbkdf2 </dev/zero 2>/dev/null | head -c $((SIZE_MIB << 20)) >"$BLOB"
fi
DIGEST=sha256:$(sha256sum "$BLOB" | cut -d' ' -f1)
rm -rf "$WORK/chunks" && mkdir "$WORK/chunks" && split -b "${CHUNK_MIB}M" -a 4 -d "$BLOB" "$WORK/chunks/c"
cat "$BLOB" "$WORK"/chunks/c* >/dev/null # warm the page cache for every reader alike

now() { date +%s.%N; }
wait_port() {
    for _ in $(seq 200); do
        curl -s -o /dev/null "http://127.0.0.1:$1/v2/" && return 0
        sleep 0.05
    done
    echo "server on port $1 did not start" >&2
    return 1
}

start_berth() {
    rm -rf "$WORK/berth-root"
    mkdir -p "$WORK/berth-root"
    env BERTH_MODE=open BERTH_HTTP_ADDR=127.0.0.1:$PORT_B BERTH_STORAGE_ROOT="$WORK/berth-root" BERTH_LOG_LEVEL=debug \
        ${BERTH_ENV:-} taskset -c 1 "$BERTH" serve >"$WORK/berth.log" 2>&1 &
    pid=$!
    wait_port $PORT_B
}
start_registry() {
    rm -rf "$WORK/reg-root"
    mkdir -p "$WORK/reg-root"
    cat >"$WORK/reg.yml" <<EOF
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $WORK/reg-root}, delete: {enabled: true}}
http: {addr: 127.0.0.1:$PORT_R}
EOF
    taskset -c 1 "$REGISTRY" serve "$WORK/reg.yml" >"$WORK/reg.log" 2>&1 &
    pid=$!
    wait_port $PORT_R
}
stop_server() {
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    pid=
}

# post PORT -> upload URL
post() {
    local loc
    loc=$(curl -sS -D - -o /dev/null -X POST "http://127.0.0.1:$1/v2/bench/r/blobs/uploads/" | tr -d '\r' |
        sed -n 's/^[Ll]ocation: //p')
    [[ $loc == http* ]] || loc=http://127.0.0.1:$1$loc
    echo "$loc"
}
q() { [[ $1 == *\?* ]] && echo "$1&$2" || echo "$1?$2"; }
# the upload URL from the Location header of the last response in file $1
next_loc() {
    local loc
    loc=$(tr -d '\r' <"$1" | sed -n 's/^[Ll]ocation: //p' | tail -1)
    [[ $loc == http* ]] || loc=http://127.0.0.1:$2$loc
    echo "$loc"
}

# mono PORT -> seconds for POST + PUT with the whole body
mono() {
    local t0 loc code
    t0=$(now)
    loc=$(post "$1")
    code=$(taskset -c 0 curl -sS -o /dev/null -w '%{http_code}' -H 'Content-Type: application/octet-stream' \
        -T "$BLOB" -X PUT "$(q "$loc" "digest=$DIGEST")")
    [[ $code == 201 ]] || echo "monolithic push to $1: HTTP $code" >&2
    echo "$(now) - $t0" | bc
}
# chunked PORT -> seconds for POST, PATCH per chunk (Content-Range), PUT ?digest=
chunked() {
    local t0 loc code off=0 n f
    t0=$(now)
    loc=$(post "$1")
    for f in "$WORK"/chunks/c*; do
        n=$(stat -c %s "$f")
        code=$(taskset -c 0 curl -sS -D "$WORK/h" -o /dev/null -w '%{http_code}' -H 'Content-Type: application/octet-stream' \
            -H "Content-Range: $off-$((off + n - 1))" -T "$f" -X PATCH "$loc")
        [[ $code == 202 ]] || echo "PATCH to $1 at $off: HTTP $code" >&2
        loc=$(next_loc "$WORK/h" "$1")
        off=$((off + n))
    done
    code=$(taskset -c 0 curl -sS -o /dev/null -w '%{http_code}' -X PUT "$(q "$loc" "digest=$DIGEST")")
    [[ $code == 201 ]] || echo "final PUT to $1: HTTP $code" >&2
    echo "$(now) - $t0" | bc
}
disk() {
    local t0
    sync
    t0=$(now)
    dd if=/dev/zero of="$WORK/dd.out" bs=4M count=$((SIZE_MIB / 4)) conv=fsync status=none
    echo "$(now) - $t0" | bc
    rm -f "$WORK/dd.out"
}
# wait (up to 60 s) until the machine is idle: other jobs on a 2-core box would skew every figure
quiet() {
    local a b i
    for ((i = 0; i < 120; i++)); do
        a=($(head -1 /proc/stat))
        sleep 0.5
        b=($(head -1 /proc/stat))
        local busy=$(((b[1] + b[2] + b[3] + b[5] + b[6] + b[7]) - (a[1] + a[2] + a[3] + a[5] + a[6] + a[7])))
        local all=$((busy + b[4] - a[4]))
        ((all > 0 && busy * 100 / all < 10)) && return 0
    done
    echo "# machine still busy after 60 s; measuring anyway" >&2
}
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
mbs() { echo "scale=0; $SIZE_MIB * 1048576 / 1000000 / $1" | bc; }

declare -A T
for ((i = 1; i <= RUNS; i++)); do
    for kind in mono chunked; do
        sync
        cat "$BLOB" "$WORK"/chunks/c* >/dev/null
        quiet
        start_berth && T[berth_$kind]+="$($kind $PORT_B) "
        sleep 0.2
        stop_server
        grep -h "blob sha256\|chunk of" "$WORK/berth.log" | sed 's/^/#   berth: /' | grep -v "chunk of" | tail -1
        sync
        cat "$BLOB" "$WORK"/chunks/c* >/dev/null
        quiet
        start_registry && T[reg_$kind]+="$($kind $PORT_R) "
        stop_server
    done
    quiet
    T[disk]+="$(disk) "
    echo "# run $i: berth mono ${T[berth_mono]##* } ... " >/dev/null
done
rm -rf "$WORK/berth-root" "$WORK/reg-root"

printf '%-24s %10s %8s   %s\n' "push of $SIZE_MIB MiB" "median s" "MB/s" "runs (s)"
for k in berth_mono reg_mono berth_chunked reg_chunked disk; do
    m=$(echo ${T[$k]} | tr ' ' '\n' | median)
    printf '%-24s %10.3f %8s   %s\n' "$k" "$m" "$(mbs "$m")" "${T[$k]}"
done
dm=$(echo ${T[disk]} | tr ' ' '\n' | median)
for kind in mono chunked; do
    b=$(echo ${T[berth_$kind]} | tr ' ' '\n' | median)
    r=$(echo ${T[reg_$kind]} | tr ' ' '\n' | median)
    printf '%-8s berth/docker-registry %.2fx   berth/disk %.0f %%\n' "$kind" "$(echo "$r / $b" | bc -l)" \
        "$(echo "100 * $dm / $b" | bc -l)"
done
