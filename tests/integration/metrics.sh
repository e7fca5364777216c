#!/usr/bin/env bash
# /metrics (docs/metrics.md) after real traffic, in mode private: requests by route, method and status class equal
# what this test sent (pushes monolithic and chunked, pulls, 404s, 401s, a 429 of the login rate limiter); latency
# histograms consistent with the request counts; body bytes in and out at least the blobs' sizes; an upload in flight
# while a chunked PATCH is open, none after; connections; cache hits; failed logins; the store's blob totals, also
# after a restart and a garbage collection that freed a blob, the collections the database counts (berth gc's too); skopeo's push and pull; `promtool check metrics` on
# every scrape; the Grafana dashboard's queries checked by promtool against what berth serves. /metrics itself answers
# without credentials, as before.
. "$(dirname "$0")/lib.sh"

command -v promtool >/dev/null || skip_all "promtool not installed (Debian package prometheus)"

PW=metrics-test-password-$$
# every curl of this test (the harness's too) authenticates as admin, unless started with -q
mkdir -p "$T/curlhome"
printf 'user = "admin:%s"\n' "$PW" >"$T/curlhome/.curlrc"
export CURL_HOME=$T/curlhome

start_berth BERTH_MODE=private BERTH_ADMIN_PASSWORD="$PW" BERTH_AUTH_LOGIN_FAILURES=3 BERTH_GC_INTERVAL=0

# scrape : GET /metrics (anonymously) into $T/m.txt; fails unless 200 and promtool accepts it.
NSCRAPE=0
scrape() {
    NSCRAPE=$((NSCRAPE + 1))
    local code
    code=$(curl -q -s -o "$T/m.txt" -w '%{http_code}' "$URL/metrics")
    [[ $code == 200 ]] || return 1
    promtool check metrics <"$T/m.txt" >"$T/promtool.out" 2>&1
}
# m SERIES : its value in the last scrape ("" if absent). SERIES as berth prints it, labels in order.
m() { awk -v s="$1" '$1 == s { print $2 }' "$T/m.txt"; }
req() { m "berth_http_requests_total{route=\"$1\",method=\"$2\",code=\"$3\"}"; }
# settle SERIES VALUE [TENTHS] : scrape until SERIES has VALUE (a request is counted as its answer ends), at most
# TENTHS tenths of a second (50).
settle() {
    local i
    for ((i = 0; i < ${3:-50}; i++)); do
        scrape && [[ $(m "$1") == "$2" ]] && return 0
        sleep 0.1
    done
    return 1
}
ge() { [[ $1 =~ ^[0-9]+$ ]] && (($1 >= $2)); }
# settle_ge SERIES MIN : the same until SERIES is at least MIN.
settle_ge() {
    local i
    for ((i = 0; i < 50; i++)); do
        scrape && ge "$(m "$1")" "$2" && return 0
        sleep 0.1
    done
    return 1
}

check "/metrics answers without credentials (200) and promtool accepts it" scrape
is "... and has no request counted for /metrics itself before it ends" "$(req metrics GET 2xx)" ""

# --- errors: 401 anonymous, 401 wrong password (3, then the limiter's 429), 404s
code() { curl -q -s -o /dev/null -w '%{http_code}' "$@"; }
is "anonymous GET /v2/: 401" "$(code "$URL/v2/")" 401
api GET /v2/
is "GET /v2/ as admin: 200" "$STATUS" 200
api GET /v2/
is "again (a cached password): 200" "$STATUS" 200
for i in 1 2 3; do
    is "wrong password $i: 401" "$(code -u "admin:wrong-$i" "$URL/v2/")" 401
done
is "wrong password 4: 429 (auth.login_failures 3)" "$(code -u admin:wrong-4 "$URL/v2/")" 429
sleep 1.2 # the backoff (auth.login_backoff 1s), should admin's cached password expire before the end
api GET "/v2/met/app/manifests/nope"
is "GET a manifest that does not exist: 404" "$STATUS" 404
api GET "/v2/met/app/blobs/$(random_digest)"
is "GET a blob that does not exist: 404" "$STATUS" 404
api GET "/v2/met/app/nothing/here"
is "GET an unknown endpoint: 404" "$STATUS" 404

# --- pushes: A monolithic (POST ?digest=), B chunked (POST, PATCH, PUT), the config monolithic; a manifest
mkrand "$T/a" 1048576
mkrand "$T/b" 307200
echo '{"architecture":"amd64","os":"linux"}' >"$T/cfg"
DA=$(sha256_of "$T/a") DB=$(sha256_of "$T/b") DC=$(sha256_of "$T/cfg")
api POST "/v2/met/app/blobs/uploads/?digest=$DA" -H 'Content-Type: application/octet-stream' --data-binary "@$T/a"
is "push A in one POST: 201" "$STATUS" 201
api POST "/v2/met/app/blobs/uploads/?digest=$DC" -H 'Content-Type: application/octet-stream' --data-binary "@$T/cfg"
is "push the config in one POST: 201" "$STATUS" 201
start_upload met/app
is "push B: POST: 202" "$STATUS" 202
api PATCH "$UPLOAD_URL" -H 'Content-Type: application/octet-stream' --data-binary "@$T/b"
is "push B: PATCH: 202" "$STATUS" 202
api PUT "$(with_query "$(resolve "$(hdr Location)")" "digest=$DB")" -H 'Content-Length: 0'
is "push B: PUT: 201" "$STATUS" 201
image_manifest oci "$T/man" "$T/cfg" "$T/a" "$T/b"
check "PUT the manifest: 201" push_manifest met/app v1 "$T/man"

# --- pulls
api GET /v2/met/app/manifests/v1 -H "Accept: $MT_OCI_MANIFEST"
is "GET the manifest: 200" "$STATUS" 200
api GET /v2/met/app/manifests/v1 -H "Accept: $MT_OCI_MANIFEST"
is "GET it again: 200" "$STATUS" 200
api HEAD /v2/met/app/manifests/v1 -H "Accept: $MT_OCI_MANIFEST"
is "HEAD it: 200" "$STATUS" 200
api GET "/v2/met/app/blobs/$DA"
is "GET A: 200" "$STATUS" 200
check "... its bytes" same_bytes "$BODY" "$T/a"
api GET "/v2/met/app/blobs/$DB"
is "GET B: 200" "$STATUS" 200
api GET /v2/met/app/tags/list
is "GET the tag list: 200" "$STATUS" 200

# --- what /metrics says
check "the last request is counted once it ended" settle \
    'berth_http_requests_total{route="tags_list",method="GET",code="2xx"}' 1
is "base GET 4xx: 1 anonymous + 3 wrong passwords + 1 rate-limited" "$(req base GET 4xx)" 5
is "base GET 2xx: 2" "$(req base GET 2xx)" 2
is "manifest_get GET 4xx: 1" "$(req manifest_get GET 4xx)" 1
is "manifest_get GET 2xx: 2" "$(req manifest_get GET 2xx)" 2
is "manifest_get HEAD 2xx: 1" "$(req manifest_get HEAD 2xx)" 1
is "blob_get GET 4xx: 1" "$(req blob_get GET 4xx)" 1
is "blob_get GET 2xx: 2" "$(req blob_get GET 2xx)" 2
is "unknown GET 4xx: 1 (the route, never the path)" "$(req unknown GET 4xx)" 1
is "upload_start POST 2xx: 3" "$(req upload_start POST 2xx)" 3
is "upload_patch PATCH 2xx: 1" "$(req upload_patch PATCH 2xx)" 1
is "upload_put PUT 2xx: 1" "$(req upload_put PUT 2xx)" 1
is "manifest_put PUT 2xx: 1" "$(req manifest_put PUT 2xx)" 1
is "metrics GET 2xx: the scrapes so far but this one" "$(req metrics GET 2xx)" $((NSCRAPE - 1))
is "no 5xx" "$(grep -c '^berth_http_requests_total{.*code="5xx"}' "$T/m.txt")" 0
like "the route label holds endpoint names only" \
    "$(grep -o '^berth_http_requests_total{route="[^"]*"' "$T/m.txt" | sort -u | cut -d'"' -f2 | tr '\n' ' ')" \
    '^((base|catalog|token|jwks|healthz|readyz|metrics|tags_list|upload_start|upload_status|upload_patch|upload_put|upload_delete|blob_get|blob_delete|manifest_get|manifest_put|manifest_delete|referrers|namespace|unknown) )+$'

# histograms: per route, buckets never decrease, +Inf == _count == the route's requests, _sum >= 0
histo_ok() {
    awk '
    /^berth_http_requests_total\{/ { match($1, /route="[^"]*"/); r = substr($1, RSTART + 7, RLENGTH - 8); reqs[r] += $2 }
    /^berth_http_request_duration_seconds_bucket\{/ {
        match($1, /route="[^"]*"/); r = substr($1, RSTART + 7, RLENGTH - 8)
        if (r in last && $2 < last[r]) { print "decreasing bucket: " $0; bad = 1 }
        last[r] = $2; if ($1 ~ /le="\+Inf"/) inf[r] = $2 }
    /^berth_http_request_duration_seconds_count\{/ { match($1, /route="[^"]*"/); cnt[substr($1, RSTART + 7, RLENGTH - 8)] = $2 }
    /^berth_http_request_duration_seconds_sum\{/ { if ($2 < 0) { print "negative sum: " $0; bad = 1 } }
    END {
        for (r in reqs) if (inf[r] != reqs[r] || cnt[r] != reqs[r]) { print r ": requests " reqs[r] ", +Inf " inf[r] ", count " cnt[r]; bad = 1 }
        for (r in cnt) if (!(r in reqs)) { print r ": a histogram without requests"; bad = 1 }
        exit bad }' "$T/m.txt"
}
check "histograms: buckets cumulative, +Inf = _count = the route's requests" histo_ok
is "blob_get histogram count: 3" "$(m 'berth_http_request_duration_seconds_count{route="blob_get"}')" 3
SA=$(size_of "$T/a") SB=$(size_of "$T/b") SC=$(size_of "$T/cfg") SM=$(size_of "$T/man")
check "bytes received >= A + B + config + manifest" ge "$(m berth_http_received_bytes_total)" $((SA + SB + SC + SM))
check "bytes sent >= A + B (blob GETs)" ge "$(m berth_http_sent_bytes_total)" $((SA + SB))
is "uploads in flight: 0" "$(m berth_http_uploads_in_flight)" 0
check "connections accepted >= the requests sent (one curl each)" ge "$(m berth_http_connections_accepted_total)" 24
check "connections open >= 1 (the scrape's own)" ge "$(m berth_http_connections_open)" 1
is "storage: 3 blobs" "$(m berth_storage_blobs)" 3
is "storage: their bytes" "$(m berth_storage_blob_bytes)" $((SA + SB + SC))
is "failed logins: 3 wrong passwords" "$(m 'berth_auth_failures_total{kind="password"}')" 3
is "rate-limited logins: 1" "$(m berth_auth_rate_limited_total)" 1
check "credentials cache: hits (a password checked once, then cached)" ge \
    "$(m 'berth_cache_hits_total{cache="credentials"}')" 1
check "metadata cache: hits (the manifest read twice)" ge "$(m 'berth_cache_hits_total{cache="metadata"}')" 1
check "metadata cache: misses" ge "$(m 'berth_cache_misses_total{cache="metadata"}')" 1
check "the collector's counters are there" grep -q '^berth_gc_runs_total 0$' "$T/m.txt"

# --- an upload in flight: a chunked PATCH whose body is held open
start_upload met/app
mkfifo "$T/fifo"
curl -s -o "$T/patch.out" -w '%{http_code}' -X PATCH -T "$T/fifo" -H 'Content-Type: application/octet-stream' \
    "$UPLOAD_URL" >"$T/patch.code" &
CURL_PID=$!
exec 3>"$T/fifo"
head -c 100000 /dev/urandom >&3
check "uploads in flight: 1 while a chunked PATCH is open" settle berth_http_uploads_in_flight 1
check "... bytes received grow as it arrives" settle_ge berth_http_received_bytes_total $((SA + SB + SC + SM + 100000))
exec 3>&-
wait "$CURL_PID"
is "the PATCH ends: 202" "$(cat "$T/patch.code")" 202
check "uploads in flight: 0 after" settle berth_http_uploads_in_flight 0
is "upload_patch PATCH 2xx: 2" "$(req upload_patch PATCH 2xx)" 2

# --- skopeo: a push and a pull, then promtool and the counters again
if command -v skopeo >/dev/null; then
    oci_layout "$T/layout" v1 2 >/dev/null
    check "skopeo copy into berth" sko copy --quiet --dest-tls-verify=false --dest-creds "admin:$PW" \
        "oci:$T/layout:v1" "docker://$REG/met/sko:v1"
    check "skopeo copy out of berth" sko copy --quiet --src-tls-verify=false --src-creds "admin:$PW" \
        "docker://$REG/met/sko:v1" "oci:$T/out:v1"
    check "a scrape after skopeo: promtool accepts it" scrape
    check "skopeo's manifest put counted" ge "$(req manifest_put PUT 2xx)" 2
    check "skopeo's blob pulls counted" ge "$(req blob_get GET 2xx)" 4
    check "histograms still consistent" histo_ok
fi
BLOBS=$(m berth_storage_blobs) BYTES=$(m berth_storage_blob_bytes)

# --- a restart with the collector every second: the totals come from the database; a blob nobody references goes
BERTH_ENV+=(BERTH_GC_INTERVAL=1s BERTH_GC_BLOB_GRACE=0s)
restart_berth
check "after a restart: promtool accepts the scrape" scrape
is "... the blob count is the database's" "$(m berth_storage_blobs)" "$BLOBS"
is "... and their bytes" "$(m berth_storage_blob_bytes)" "$BYTES"
mkrand "$T/c" 200000
api POST "/v2/met/app/blobs/uploads/?digest=$(sha256_of "$T/c")" -H 'Content-Type: application/octet-stream' \
    --data-binary "@$T/c"
is "push C (no manifest references it): 201" "$STATUS" 201
check "the collector removes C: blobs back to $BLOBS" settle berth_storage_blobs "$BLOBS" 200
is "... bytes back too" "$(m berth_storage_blob_bytes)" "$BYTES"
check "... berth_gc_runs_total > 0" ge "$(m berth_gc_runs_total)" 1
check "... berth_gc_freed_bytes_total >= C's size" ge "$(m berth_gc_freed_bytes_total)" 200000
is "... a blob removed" "$(m 'berth_gc_removed_total{kind="blob"}')" 1
check "... the database counts the runs too" ge "$(m berth_storage_gc_runs_total)" "$(m berth_gc_runs_total)"
check "... and what they freed" ge "$(m berth_storage_gc_freed_bytes_total)" 200000
check "berth gc beside the server" env BERTH_STORAGE_ROOT="$DATA" "$BERTH" gc
check "a scrape after it" scrape
check "the database counts berth gc's run beside the server's" ge "$(m berth_storage_gc_runs_total)" \
    $(($(m berth_gc_runs_total) + 1))
is "the totals are what counting the blob rows gives" "$(m berth_storage_blobs) $(m berth_storage_blob_bytes)" \
    "$("$PYTHON" -c 'import sqlite3, sys
print(*sqlite3.connect(sys.argv[1]).execute("SELECT count(*), coalesce(sum(size), 0) FROM blob").fetchone())' \
        "$DATA/berth.db")"

# --- the Grafana dashboard (deploy/grafana/berth.json): every query is PromQL promtool accepts (its variables
# replaced), and every metric it names is one berth serves
DASH=$SRCDIR/deploy/grafana/berth.json
"$PYTHON" - "$DASH" >"$T/rules.yml" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
exprs = [t["expr"] for p in d["panels"] for t in p["targets"]]
exprs = [e.replace("$__rate_interval", "5m").replace("$job", ".*").replace("$instance", ".*") for e in exprs]
print(json.dumps({"groups": [{"name": "dashboard", "rules": [{"record": "dashboard:q%d" % i, "expr": e} for i, e in enumerate(exprs)]}]}))
PY
check "the dashboard's queries are valid PromQL (promtool check rules)" promtool check rules "$T/rules.yml"
served=$(awk '$1 == "#" && $2 == "TYPE" { print $3 }' "$T/m.txt" | sort -u)
missing=$(grep -o 'berth_[a-z_]*' "$DASH" | sed -E 's/_(bucket|sum|count)$//' | sort -u | comm -23 - <(echo "$served"))
is "every metric the dashboard names is served" "$missing" ""

done_testing
