#!/usr/bin/env bash
# Concurrency, end to end, as clients see it (.ci/run runs it under ThreadSanitizer too: tests/README):
#   1. a SIGTERM that arrives while berth starts (pending when the loops start) stops it cleanly;
#   2. parallel pushes: writers pushing images by every upload method into their own repositories and all into one,
#      one blob common to all, one tag that all move, while readers pull everything acknowledged, list tags and the
#      catalog, ask for the status of uploads in progress, and the CLI writes to the database from another
#      process; every object read back right after its 201 (read-your-writes across event loops); the chores
#      thread removes abandoned upload sessions meanwhile; then one blob uploaded into 24 repositories at once as
#      24 HTTP/2 streams of one connection;
#   3. the same in mode private, one client logging in with Basic on every request and one with Bearer tokens,
#      while wrong passwords are tried (the worker pool for password checks, the per-loop credential caches, the
#      limiter);
#   4. shutdown under load: SIGTERM while clients push and pull over keep-alive connections and slow uploads are
#      in flight: every request answered as expected or closed without an answer (never a 5xx, never a cut
#      answer), berth exits 0, and after a restart everything acknowledged is there byte for byte;
#   5. the mirror's single flight while berth stops: cold GETs of one blob from a slow upstream, SIGTERM mid-fetch:
#      all of them get the whole blob, one upstream GET; and with a grace shorter than the fetch, berth still exits 0.
# load.py is the client (threads, keep-alive connections); each step asserts its summary.
. "$(dirname "$0")/lib.sh"

LOAD=("$PYTHON" "$(dirname "$0")/load.py")
# kv KEY LINE : the value of KEY in a "k=v k=v" summary line
kv() { awk -v k="$1" '{ for (i = 1; i <= NF; i++) if (index($i, k "=") == 1) print substr($i, length(k) + 2) }' <<<"$2"; }

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

# ---------------------------------------------------------------- 2. parallel pushes, mode open
# three loops for two cores, a small I/O pool, and the chores thread removing idle upload sessions meanwhile
# (scanning every 1.5 s for sessions idle 6 s: four abandoned ones)
start_berth BERTH_HTTP_THREADS=3 BERTH_WORKERS=4 BERTH_STORAGE_UPLOAD_TTL=6s BERTH_LOG_ACCESS=
mkrand "$T/chunk" 1000
abandoned=()
for i in 1 2 3 4; do
    start_upload "load/abandoned$i" && api PATCH "$UPLOAD_URL" -H 'Content-Type: application/octet-stream' \
        --data-binary "@$T/chunk"
    [[ $STATUS == 202 ]] && abandoned+=("$(resolve "$(hdr Location)")")
done
is "4 upload sessions started and abandoned" "${#abandoned[@]}" 4
# the CLI writes from another process meanwhile: the generation moves under the read caches
(
    for i in $(seq 1 8); do
        env -u BERTH_CONFIG BERTH_STORAGE_ROOT="$DATA" BERTH_LOG_LEVEL=warn "$BERTH" user add "cli$i" \
            --password-stdin <<<"cli-pw-$i" >/dev/null 2>&1 || echo "user add cli$i failed"
        sleep 0.2
    done >"$T/cli.out"
) &
cli=$!
OUT=$("${LOAD[@]}" push "$URL" "$T/ack.open" --workers 6 --images 3 --readers 3 2>"$T/push.err")
rc=$?
wait "$cli"
is "6 writers and 3 readers at once (mode open): no failure" "$rc $(kv failures "$OUT")" "0 0" ||
    diag "$(head -n 25 "$T/push.err")"
diag "$OUT"
is "... 6 x 3 images: 90 blobs and 78 manifests acknowledged" "$(kv blobs "$OUT") $(kv manifests "$OUT")" "90 78"
is "... the CLI's 8 writes meanwhile succeeded" "$(cat "$T/cli.out")" ""
OUT=$("${LOAD[@]}" verify "$URL" "$T/ack.open" 2>"$T/verify.err")
is "... afterwards, every acknowledged object is served byte for byte" "$? $(kv failures "$OUT")" "0 0" ||
    diag "$(head -n 25 "$T/verify.err")"
for ((i = 0; i < 100; i++)); do
    gone=0
    for u in "${abandoned[@]}"; do
        api GET "$u"
        [[ $STATUS == 404 ]] && gone=$((gone + 1))
    done
    ((gone == 4)) && break
    sleep 0.2
done
is "... and the chores thread removed the 4 abandoned sessions (404)" "$gone" 4
is "... with their folders" "$(find "$DATA/uploads" -mindepth 1 -maxdepth 1 | wc -l)" 0

# HTTP/2 (nghttp: curl 7.88 cannot multiplex with prior knowledge, curl/curl#10634): one blob uploaded at once into 24
# repositories as 24 streams of one connection (24 sessions, 24 renames onto the same file, 24 links), read back alike
# h2_codes : "CODE SIZE" of each stream in nghttp's statistics, counted
h2_codes() { awk '$1 ~ /^[0-9]+$/ && $2 ~ /^\+/ { print $5, $6 }' | sort | uniq -c | awk '{ $1 = $1 } 1'; }
if command -v nghttp >/dev/null; then
    mkrand "$T/h2" 300000
    DH2=$(sha256_of "$T/h2")
    urls=()
    for i in $(seq 1 24); do urls+=("$URL/v2/load/h2-$i/blobs/uploads/?digest=$DH2"); done
    is "HTTP/2: one blob POSTed into 24 repositories over one connection at once: 24 x 201" \
        "$(nghttp -ns -d "$T/h2" "${urls[@]}" 2>"$T/h2.err" | h2_codes)" "24 201 0" || diag "$(head -n 5 "$T/h2.err")"
    urls=()
    for i in $(seq 1 24); do urls+=("$URL/v2/load/h2-$i/blobs/$DH2"); done
    is "... and read back from the 24 at once: 24 x 200, 292K each" "$(nghttp -ns "${urls[@]}" 2>"$T/h2.err" | h2_codes)" \
        "24 200 292K" || diag "$(head -n 5 "$T/h2.err")"
    same=0
    for i in $(seq 1 24); do
        api GET "/v2/load/h2-$i/blobs/$DH2"
        cmp -s "$BODY" "$T/h2" && same=$((same + 1))
    done
    is "... byte for byte" "$same" 24
else
    pass "HTTP/2 multiplexed uploads # SKIP nghttp (nghttp2-client) is not installed"
fi
stop_berth

# ---------------------------------------------------------------- 3. parallel pushes, mode private
start_berth BERTH_MODE=private BERTH_ADMIN_PASSWORD=admin-pw BERTH_HTTP_THREADS=2 BERTH_LOG_ACCESS=
# wrong passwords meanwhile: each one a yescrypt on the same pool, then the limiter's 429s
(
    for i in $(seq 1 12); do
        curl -s --noproxy '*' -o /dev/null -w '%{http_code}\n' -u "mallory:guess-$i" "$URL/v2/"
    done >"$T/wrong.status"
) &
wrong=$!
"${LOAD[@]}" push "$URL" "$T/ack.basic" --workers 3 --images 2 --readers 2 --user admin:admin-pw --prefix basic \
    >"$T/basic.out" 2>"$T/basic.err" &
basic=$!
OUT=$("${LOAD[@]}" push "$URL" "$T/ack.bearer" --workers 3 --images 2 --readers 2 --user admin:admin-pw --bearer \
    --prefix bearer 2>"$T/bearer.err")
rc=$?
wait "$basic"
is "mode private, Basic on every request (3 writers, 2 readers): no failure" "$? $(kv failures "$(cat "$T/basic.out")")" \
    "0 0" || diag "$(head -n 25 "$T/basic.err")"
is "... Bearer tokens fetched from /token at the same time: no failure" "$rc $(kv failures "$OUT")" "0 0" ||
    diag "$(head -n 25 "$T/bearer.err")"
wait "$wrong"
like "... 12 wrong passwords meanwhile: 401, then 429 once the limiter holds them back" \
    "$(uniq -c <"$T/wrong.status" | awk '{ printf "%s:%s ", $2, $1 }')" '^401:5 429:[0-9]+ (401:1 429:[0-9]+ )*(401:1 )?$'
cat "$T/ack.basic" "$T/ack.bearer" >"$T/ack.private"
OUT=$("${LOAD[@]}" verify "$URL" "$T/ack.private" --user admin:admin-pw 2>"$T/verify.err")
is "... everything both acknowledged is served" "$? $(kv failures "$OUT")" "0 0" || diag "$(head -n 25 "$T/verify.err")"
stop_berth

# ---------------------------------------------------------------- 4. shutdown under load
start_berth BERTH_HTTP_THREADS=2 BERTH_LOG_ACCESS=
rm -f "$T/ack.storm"*
"${LOAD[@]}" storm "$URL" "$T/ack.storm" --workers 6 --slow 2 --seconds 120 >"$T/storm.out" 2>"$T/storm.err" &
storm=$!
for ((i = 0; i < 600; i++)); do
    [[ -e $T/ack.storm.started ]] || ! _alive "$storm" && break
    sleep 0.1
done
sleep 2 # a slow upload takes about 3 s: one is in flight now
date +%s.%N >"$T/ack.storm.term"
t0=$(date +%s.%N)
kill -TERM "$BERTH_PID"
wait_berth
diag "berth stopped $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s after SIGTERM"
wait "$storm"
rc=$?
OUT=$(cat "$T/storm.out")
diag "$OUT"
is "SIGTERM under load: every request answered as expected or closed without an answer" \
    "$rc $(kv failures "$OUT")" "0 0" || diag "$(head -n 25 "$T/storm.err")"
isnt "... requests were in flight when the signal came" "$(kv in_flight_at_term "$OUT")" 0
isnt "... and berth answered them" "$(kv answered_of_those "$OUT")" 0
start_berth_again
OUT=$("${LOAD[@]}" verify "$URL" "$T/ack.storm" 2>"$T/verify.err")
is "... after a restart, the $(kv objects "$OUT") acknowledged objects are there byte for byte" \
    "$? $(kv failures "$OUT")" "0 0" || diag "$(head -n 25 "$T/verify.err")"
stop_berth

# ---------------------------------------------------------------- 5. the mirror's single flight while berth stops
# the upstream: berth in mode open with two 16 MiB blobs; the mirror reaches it through a forwarder at 4 MiB/s
start_berth BERTH_LOG_ACCESS="$T/up.access"
UP_URL=$URL UP_PID=$BERTH_PID UP_SRV=$SRV UP_SAN=$_san_off
mkrand "$T/big" $((16 * 1024 * 1024))
mkrand "$T/big2" $((16 * 1024 * 1024))
BIG=$(sha256_of "$T/big") BIG2=$(sha256_of "$T/big2")
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' >"$T/big.cfg"
push_blob library/big "$T/big" && push_blob library/big "$T/big2" && push_blob library/big "$T/big.cfg" &&
    image_manifest oci "$T/big.json" "$T/big.cfg" "$T/big" && push_manifest library/big 1 "$T/big.json"
is "the upstream holds library/big:1 (a 16 MiB layer) and another 16 MiB blob" "$STATUS" 201
"${LOAD[@]}" throttle "$T/throttle.port" "$REG" $((4 * 1024 * 1024)) 2>"$T/throttle.err" &
THROTTLE=$!
for ((i = 0; i < 100; i++)); do
    [[ -s $T/throttle.port ]] && break
    sleep 0.1
done
cat >"$T/mirror.yaml" <<EOF
mirrors:
  - prefix: ""
    upstream: http://127.0.0.1:$(cat "$T/throttle.port")
    ns: docker.io
    timeout: 60s
EOF
# the mirror: lib.sh's current server from here on (the upstream is stopped by hand at the end)
BERTH_PID=
start_berth BERTH_MODE=public BERTH_ADMIN_PASSWORD=mirror-pw BERTH_CONFIG="$T/mirror.yaml" BERTH_HTTP_THREADS=2
cold_gets() { # N DIGEST : N concurrent GETs of the blob through the mirror, in the background (pids in GETS)
    local i
    GETS=()
    for ((i = 1; i <= $1; i++)); do
        curl -sS --noproxy '*' --max-time 120 -D "$T/get.$i.h" -o "$T/get.$i" "$URL/v2/library/big/blobs/$2" \
            2>"$T/get.$i.err" &
        GETS+=($!)
    done
}
# got N : "STATUS SIZE DIGEST|" for each of the N GETs
got() {
    local i
    for ((i = 1; i <= $1; i++)); do
        printf '%s %s %s|' "$(awk 'NR == 1 { print $2 }' "$T/get.$i.h")" "$(size_of "$T/get.$i")" "$(sha256_of "$T/get.$i")"
    done
}
cold_gets 6 "$BIG"
sleep 2 # the fetch takes about 4 s: all six follow it now
kill -TERM "$BERTH_PID"
for p in "${GETS[@]}"; do wait "$p"; done
wait_berth
is "6 cold GETs of a blob the mirror fetches (single flight), SIGTERM mid-fetch: all get the whole blob" "$(got 6)" \
    "$(for i in 1 2 3 4 5 6; do printf '200 %s %s|' $((16 * 1024 * 1024)) "$BIG"; done)"
is "... from one upstream GET" "$(grep -c "GET /v2/library/big/blobs/$BIG HTTP/1.1\" 200 " "$T/up.access")" 1

# a grace shorter than the fetch: the loops stop with the followers still waiting, the fetch is cancelled; berth
# must still exit 0 (the clients see their answers cut: that is what the grace is for)
BERTH_ENV+=(BERTH_HTTP_SHUTDOWN_TIMEOUT=1s)
start_berth_again
cold_gets 3 "$BIG2"
sleep 2
kill -TERM "$BERTH_PID"
for p in "${GETS[@]}"; do wait "$p"; done
wait_berth
start_berth_again
api GET "/v2/library/big/blobs/$BIG2"
is "... after that, the blob is fetched again and served whole" "$STATUS $(size_of "$BODY") $(sha256_of "$BODY")" \
    "200 $((16 * 1024 * 1024)) $BIG2"
# (the fetch that served the GET renames its temporary file into blobs/ just after the answer ends: a moment's wait)
for _ in $(seq 50); do
    [[ -z $(find "$DATA/tmp" -name 'mirror.*') ]] && break
    sleep 0.1
done
is "... and no half-fetched temporary file was left" "$(find "$DATA/tmp" -name 'mirror.*' | wc -l)" 0
stop_berth

kill -TERM "$THROTTLE" 2>/dev/null
wait "$THROTTLE" 2>/dev/null
BERTH_PID=$UP_PID SRV=$UP_SRV _san_off=$UP_SAN
stop_berth

done_testing
