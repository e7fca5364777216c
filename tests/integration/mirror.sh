#!/usr/bin/env bash
# berth as a pull-through mirror (the `mirrors` list), end to end, everything on 127.0.0.1:
#   - the upstream is a second berth in mode private (the mirror does the token dance with the configured
#     credentials), seeded by skopeo with single images and a two-platform index;
#   - the mirror runs in mode public with two mirrors: the catch-all "" (ns docker.io, library/ for one-word names)
#     straight to the upstream, and "flaky" (ns flaky.test) through a fault-injecting proxy (mirror_proxy.py) that
#     answers 429 or 500 on demand;
#   - cold pulls (skopeo, --all), every digest as upstream, stored in the mirror's database and blob store; one-word
#     names; misses (404 MANIFEST_UNKNOWN / BLOB_UNKNOWN); pushes to mirrored names refused, to a new name hosted;
#     single flight (16 concurrent cold GETs of a 200 MiB blob, one upstream GET); tag_ttl (a moved tag is seen
#     after it, not before); stale copies served while the upstream answers 429/500 or is gone, and misses then
#     answered 429 (with the upstream's Retry-After) or 503; credentials never in a response;
#   - containerd (hosts.toml for docker.io: ?ns=docker.io) and podman (registries.conf mirror of docker.io), when
#     they can run here. Their fallback to the real docker.io goes to a dead proxy: nothing leaves this machine.
# Also prints (diag) the wall time of a warm pull through the mirror against a direct pull from the upstream.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ctrlib.bash"

command -v skopeo >/dev/null || skip_all "skopeo is not installed"

UP_PW=upstream-Secret-93   # the upstream's admin password: the mirror's upstream credentials
MR_PW=mirror-Secret-17     # the mirror's own admin password (pushes of hosted repositories)
TTL=5                      # tag_ttl of the catch-all mirror, seconds
FTTL=3                     # tag_ttl of the flaky mirror
NOTLS=(--src-tls-verify=false --dest-tls-verify=false)
TLS=(--tls-verify=false)
DEAD_PROXY=http://127.0.0.1:9 # for the real clients: a fallback to docker.io fails here, it never goes out

skip_test() { pass "$1 # SKIP $2"; }
# elapsed SINCE : seconds (one decimal) since the date +%s.%N value SINCE
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
now() { date +%s.%N; }
# sleep_until T : sleep until the date +%s.%N value T
sleep_until() {
    local s
    s=$(awk -v t="$1" -v n="$(date +%s.%N)" 'BEGIN { d = t - n; printf "%.2f", (d > 0 ? d : 0) }')
    sleep "$s"
}

# ---------------------------------------------------------------- two servers, one harness
# lib.sh knows one current server (BERTH_PID, SRV, DATA, PORT, REG, URL, BERTH_ENV); use SERVER switches it.
CUR=
use() {
    case $CUR in
    up) UP_PID=$BERTH_PID UP_SAN=$_san_off ;;
    mirror) MR_PID=$BERTH_PID MR_SAN=$_san_off ;;
    esac
    CUR=$1
    if [[ $1 == up ]]; then
        BERTH_PID=$UP_PID SRV=$UP_SRV DATA=$UP_DATA PORT=$UP_PORT REG=$UP_REG URL=$UP_URL _san_off=$UP_SAN
        BERTH_ENV=("${UP_ENV[@]}")
    else
        BERTH_PID=$MR_PID SRV=$MR_SRV DATA=$MR_DATA PORT=$MR_PORT REG=$MR_REG URL=$MR_URL _san_off=$MR_SAN
        BERTH_ENV=("${MR_ENV[@]}")
    fi
}

PROXY_PID=
cleanup_all() {
    stop_containerd
    [[ -n $PROXY_PID ]] && kill -TERM "$PROXY_PID" 2>/dev/null
    # the server that is not current (the current one is _cleanup's)
    local other=
    [[ $CUR == mirror ]] && other=${UP_PID:-}
    [[ $CUR == up ]] && other=${MR_PID:-}
    [[ -n $other ]] && kill -KILL "$other" 2>/dev/null
    _cleanup
}
trap cleanup_all EXIT

# up_api METHOD PATH [curl args] : api on the upstream as its administrator (Basic)
up_api() {
    local m=$1 p=$2
    shift 2
    api "$m" "$UP_URL$p" -u "admin:$UP_PW" "$@"
}

# tree_digests DIR DIGEST : one line "label digest sha256-of-content" for DIGEST and everything it references in
# the OCI layout DIR (index -> manifests by platform -> config and layers); MISSING for an absent blob.
tree_digests() {
    "$PYTHON" - "$1" "$2" <<'EOF2'
import hashlib, json, os, sys
d = sys.argv[1]
def line(label, dg):
    p = os.path.join(d, "blobs", *dg.split(":", 1))
    if not os.path.exists(p):
        print(label, dg, "MISSING")
        return None
    data = open(p, "rb").read()
    print(label, dg, "sha256:" + hashlib.sha256(data).hexdigest())
    return data
def walk(dg, label):
    data = line(label, dg)
    if data is None:
        return
    j = json.loads(data)
    if "manifests" in j:
        for m in j["manifests"]:
            walk(m["digest"], label + "/" + m.get("platform", {}).get("architecture", "-"))
    else:
        line(label + "/config", j["config"]["digest"])
        for i, l in enumerate(j["layers"]):
            line("%s/layer%d" % (label, i), l["digest"])
walk(sys.argv[2], "top")
EOF2
}
# all_digests DIR DIGEST : DIGEST and every digest under it (manifests, configs, layers), one a line
all_digests() { tree_digests "$1" "$2" | awk '{ print $2 }'; }

# mirror_serves REPO DIGEST : the mirror's API serves DIGEST (of the layout $SRC) and everything under it by digest
# (manifests and blobs: 200, exact bytes, Docker-Content-Digest), and each blob is in the mirror's blob store.
mirror_serves() {
    local repo=$1 label d rest ok=0 f
    while read -r label d rest; do
        f=$(layout_blob "$SRC" "$d")
        if [[ $label == */config || $label == */layer* ]]; then
            api GET "$MR_URL/v2/$repo/blobs/$d"
            [[ -f $(blob_path "$d") ]] || {
                echo "blob $d is not at $(blob_path "$d")"
                ok=1
            }
        else
            api GET "$MR_URL/v2/$repo/manifests/$d" -H "Accept: $MT_OCI_MANIFEST, $MT_OCI_INDEX"
        fi
        if [[ $STATUS != 200 ]] || ! cmp -s "$BODY" "$f" || [[ $(hdr Docker-Content-Digest) != "$d" ]]; then
            echo "$repo@$d ($label): status $STATUS, digest header '$(hdr Docker-Content-Digest)'"
            ok=1
        fi
    done < <(tree_digests "$SRC" "$2")
    return $ok
}

# up_log_count REGEX : lines of the upstream's access log matching REGEX (grep -E)
up_log_count() { grep -cE -- "$1" "$UP_SRV/access.log"; }
# stale_count : how many times the mirror logged that it served a cached copy
stale_count() { grep -c 'serving the cached' "$MR_SRV/berth.log"; }

t_all=$(now)
_sec= _sec_t=
# section NAME : diag the time the previous section took, start timing NAME
section() {
    [[ -n $_sec ]] && diag "($_sec: $(elapsed "$_sec_t") s)"
    _sec=$1 _sec_t=$(now)
}

# ================================================================ the upstream: berth in mode private
section "the upstream: berth in mode private"
# (http.shutdown_timeout short: the mirror keeps idle keep-alive connections to it, which berth waits for, see below)
start_berth BERTH_MODE=private BERTH_ADMIN_PASSWORD="$UP_PW" BERTH_HTTP_SHUTDOWN_TIMEOUT=2s
UP_PID=$BERTH_PID UP_URL=$URL UP_SRV=$SRV UP_REG=$REG UP_DATA=$DATA UP_PORT=$PORT UP_SAN=$_san_off
UP_ENV=("${BERTH_ENV[@]}")
CUR=up

api GET "$UP_URL/v2/library/app/manifests/v1"
is "the upstream (mode private) refuses anonymous pulls: 401" "$STATUS" 401

SRC=$T/src # one OCI layout holds every image pushed upstream
APP=$(oci_layout "$SRC" app 2)
MULTI=$(oci_layout "$SRC" multi 2 amd64 arm64)
SOLO=$(oci_layout "$SRC" solo 1)
MOVA=$(oci_layout "$SRC" mova 1)
MOVB=$(oci_layout "$SRC" movb 1)
FLX=$(oci_layout "$SRC" flx 1)
CTRI=$(oci_layout "$SRC" ctri 1)
PODI=$(oci_layout "$SRC" podi 1)
OWNUP=$(oci_layout "$SRC" ownup 1)
SHARED=$(oci_layout "$SRC" shared 1)
seed_ok=1
seed() { # LAYOUT_TAG REPO:TAG [--all]
    sko copy "${@:3}" "${NOTLS[@]}" --dest-creds "admin:$UP_PW" "oci:$SRC:$1" "docker://$UP_REG/$2" >"$T/seed.out" 2>&1 || {
        seed_ok=0
        diag "seeding $2: $(tail -n 3 "$T/seed.out")"
    }
}
seed app library/app:v1
seed multi library/multi:1.0 --all
seed solo library/solo:1
seed mova library/moving:t
seed movb library/moving:b
seed flx library/x:tag
seed flx library/x:uncached
seed ctri library/ctrimg:1
seed podi library/podimg:1
seed ownup library/own:1
seed shared team/shared:1
is "skopeo (as the upstream's admin) seeds the upstream: app, multi (index), solo, moving, x, ctrimg, podimg, own, team/shared" "$seed_ok" 1
up_api GET /v2/library/multi/manifests/1.0 -H "Accept: $MT_OCI_INDEX"
is "... the upstream serves library/multi:1.0 (the index) to its admin" "$STATUS $(hdr Docker-Content-Digest)" "200 $MULTI"

# ================================================================ the fault-injecting proxy
section "the fault-injecting proxy"
FAULT=$T/fault
: >"$FAULT"
"$PYTHON" "$(dirname "$0")/mirror_proxy.py" "$T/proxy.port" "$UP_REG" "$FAULT" "$T/proxy.log" 2>"$T/proxy.err" &
PROXY_PID=$!
for ((i = 0; i < 100; i++)); do
    [[ -s $T/proxy.port ]] && break
    sleep 0.05
done
PROXY=127.0.0.1:$(cat "$T/proxy.port" 2>/dev/null)
api GET "http://$PROXY/v2/"
is "the fault-injecting proxy forwards to the upstream (GET /v2/ -> the upstream's 401)" "$STATUS" 401
is "... whose challenge names the proxy as the token realm (Host passed on)" "$(hdr WWW-Authenticate)" \
    "Bearer realm=\"http://$PROXY/token\",service=\"berth\""

# ================================================================ the mirror: berth in mode public
section "the mirror: berth in mode public"
cat >"$T/mirror.yaml" <<EOF
mirrors:
  - prefix: ""
    upstream: http://$UP_REG
    ns: docker.io
    username: admin
    password: $UP_PW
    tag_ttl: ${TTL}s
    timeout: 10s
  - prefix: flaky
    upstream: http://$PROXY
    ns: flaky.test
    username: admin
    password: $UP_PW
    tag_ttl: ${FTTL}s
    timeout: 10s
EOF
UP_SAN=$_san_off
start_berth BERTH_MODE=public BERTH_ADMIN_PASSWORD="$MR_PW" BERTH_CONFIG="$T/mirror.yaml"
MR_PID=$BERTH_PID MR_URL=$URL MR_SRV=$SRV MR_REG=$REG MR_DATA=$DATA MR_PORT=$PORT MR_SAN=$_san_off
MR_ENV=("${BERTH_ENV[@]}")
CUR=mirror
env -u BERTH_ADMIN_PASSWORD BERTH_CONFIG="$T/mirror.yaml" "$BERTH" config >"$T/config.out" 2>&1
like "berth config lists both mirrors" "$(grep -c '^mirrors\[' "$T/config.out")" '^2$'
check "... and does not print the upstream password" bash -c "! grep -qF -- '$UP_PW' '$T/config.out'"

# ================================================================ 2. a cold pull with skopeo
section "2. a cold pull with skopeo"
t0=$(now)
check "cold: skopeo copy docker://MIRROR/library/app:v1 -> oci: (anonymous)" \
    sko copy "${NOTLS[@]}" "docker://$MR_REG/library/app:v1" "oci:$T/cold:app"
diag "cold pull of library/app:v1 through the mirror: $(elapsed "$t0") s"
is "... the pulled tag has the upstream's manifest digest" "$(layout_ref "$T/cold" app)" "$APP"
tree_digests "$SRC" "$APP" >"$T/tree.src"
tree_digests "$T/cold" "$APP" >"$T/tree.out"
is "... manifest, config and layers: same digests and content hashes as upstream" "$(cat "$T/tree.out")" "$(cat "$T/tree.src")"
t0=$(now)
check "cold: skopeo copy --all docker://MIRROR/library/multi:1.0 -> oci: (a two-platform index)" \
    sko copy --all "${NOTLS[@]}" "docker://$MR_REG/library/multi:1.0" "oci:$T/cold:multi"
diag "cold pull --all of library/multi:1.0 through the mirror: $(elapsed "$t0") s"
is "... the pulled tag has the upstream's index digest" "$(layout_ref "$T/cold" multi)" "$MULTI"
tree_digests "$SRC" "$MULTI" >"$T/tree.src"
tree_digests "$T/cold" "$MULTI" >"$T/tree.out"
is "(self-check) the index's tree: index, 2 manifests, 2 configs, 4 layers" "$(grep -c . "$T/tree.src")" 9
is "... every digest (index, both manifests, configs, layers) and content hash as upstream" \
    "$(cat "$T/tree.out")" "$(cat "$T/tree.src")"
mapfile -t APP_ALL < <(all_digests "$SRC" "$APP")
check "the mirror now serves library/app's manifest, config, layers by digest (200, exact bytes; blobs on disk)" \
    mirror_serves library/app "$APP"
check "... and library/multi's index, manifests, configs, layers" mirror_serves library/multi "$MULTI"
api GET "$MR_URL/v2/library/app/manifests/v1"
is "GET library/app:v1 from the mirror -> 200, the upstream's digest" "$STATUS $(hdr Docker-Content-Digest)" "200 $APP"
api GET "$MR_URL/v2/library/app/tags/list"
is "... its tags list has v1" "$STATUS $(jq -c .tags "$BODY" 2>/dev/null)" '200 ["v1"]'
is "the mirror fetched through the upstream's token service: /token as admin by berth-mirror, 200" \
    "$(grep -F '"berth-mirror/' "$UP_SRV/access.log" | grep -cE '"GET /token\?[^ ]*scope=repository%3[Aa]library%2[Ff]app%3[Aa]pull[^ ]* HTTP/1.1" 200 ')" 1
like "... and the manifest with that token (GET library/app/manifests/v1 -> 200)" \
    "$(grep -F '"berth-mirror/' "$UP_SRV/access.log" | grep -cF '"GET /v2/library/app/manifests/v1 HTTP/1.1" 200 ')" '^1$'
check "... and no blob of library/app more than once (GET blobs -> 200 once each)" bash -c '
    for d in "${@:2}"; do n=$(grep -cF "\"GET /v2/library/app/blobs/$d HTTP/1.1\" 200 " "$1"); [[ $n -le 1 ]] || { echo "$d: $n"; exit 1; }; done' \
    _ "$UP_SRV/access.log" "${APP_ALL[@]:1}"

# ================================================================ 8. one-word names map to library/
section "8. one-word names map to library/"
sko inspect --raw "${TLS[@]}" "docker://$MR_REG/solo:1" >"$T/solo.raw" 2>"$T/err"
is "skopeo inspect --raw docker://MIRROR/solo:1 (one word, cold): exit 0" "$?" 0 || diag "$(cat "$T/err")"
up_api GET /v2/library/solo/manifests/1 -H "Accept: $MT_OCI_MANIFEST"
check "... the exact bytes of the upstream's library/solo:1" same_bytes "$T/solo.raw" "$BODY"
is "... whose digest is the pushed one" "$(sha256_of "$T/solo.raw")" "$SOLO"
api GET "$MR_URL/v2/library/solo/manifests/1"
is "... stored as library/solo in the mirror (GET library/solo:1 -> 200, digest)" "$STATUS $(hdr Docker-Content-Digest)" "200 $SOLO"
like "... the upstream was asked for library/solo" "$(grep -F '"berth-mirror/' "$UP_SRV/access.log" | grep -cF '"GET /v2/library/solo/manifests/1 HTTP/1.1" 200 ')" '^1$'
check "skopeo copy docker://MIRROR/solo:1 -> oci: (one word, its blobs)" \
    sko copy "${NOTLS[@]}" "docker://$MR_REG/solo:1" "oci:$T/solo:1"
tree_digests "$SRC" "$SOLO" >"$T/tree.src"
tree_digests "$T/solo" "$SOLO" >"$T/tree.out"
is "... every digest as upstream" "$(cat "$T/tree.out")" "$(cat "$T/tree.src")"

# ================================================================ 10. misses
section "10. misses"
api GET "$MR_URL/v2/library/app/manifests/no-such-tag"
is_error "unknown tag (library/app:no-such-tag) -> 404 MANIFEST_UNKNOWN" 404 MANIFEST_UNKNOWN
api HEAD "$MR_URL/v2/library/app/manifests/no-such-tag"
is "... HEAD -> 404" "$STATUS" 404
api GET "$MR_URL/v2/library/app/manifests/$(random_digest)"
is_error "unknown manifest digest -> 404 MANIFEST_UNKNOWN" 404 MANIFEST_UNKNOWN
RD=$(random_digest)
api GET "$MR_URL/v2/library/app/blobs/$RD"
is_error "unknown blob (library/app) -> 404 BLOB_UNKNOWN" 404 BLOB_UNKNOWN
api HEAD "$MR_URL/v2/library/app/blobs/$RD"
is "... HEAD -> 404" "$STATUS" 404
api GET "$MR_URL/v2/no/such-repo/manifests/latest"
is_error "a repository the upstream does not have (no/such-repo:latest) -> 404 MANIFEST_UNKNOWN" 404 MANIFEST_UNKNOWN
api GET "$MR_URL/v2/nosuch/blobs/$RD"
is_error "a blob of a one-word repository the upstream does not have -> 404 BLOB_UNKNOWN" 404 BLOB_UNKNOWN
api GET "$MR_URL/v2/library/app/manifests/v1"
is "... the misses left library/app:v1 alone (200, digest)" "$STATUS $(hdr Docker-Content-Digest)" "200 $APP"

# ================================================================ 7. pushes
section "7. pushes"
api POST "$MR_URL/v2/flaky/foo/blobs/uploads/" -H 'Content-Length: 0'
is_error "anonymous: POST /v2/flaky/foo/blobs/uploads/ (a mirrored prefix) -> 401 UNAUTHORIZED: challenged first" \
    401 UNAUTHORIZED
api POST "$MR_URL/v2/flaky/foo/blobs/uploads/" -H 'Content-Length: 0' -u "admin:$MR_PW"
is_error "the mirror's admin: POST /v2/flaky/foo/blobs/uploads/ -> 403 DENIED" 403 DENIED
api PUT "$MR_URL/v2/library/app/manifests/x" -u "admin:$MR_PW" -H "Content-Type: $MT_OCI_MANIFEST" \
    --data-binary "@$(layout_blob "$SRC" "$APP")"
is_error "admin: PUT /v2/library/app/manifests/x (mirrored under the catch-all) -> 403 DENIED" 403 DENIED
api PUT "$MR_URL/v2/app/manifests/x" -u "admin:$MR_PW" -H "Content-Type: $MT_OCI_MANIFEST" \
    --data-binary "@$(layout_blob "$SRC" "$APP")"
is_error "admin: PUT /v2/app/manifests/x (one word for mirrored library/app) -> 403 DENIED" 403 DENIED
api POST "$MR_URL/v2/library/app/blobs/uploads/" -H 'Content-Length: 0' -u "admin:$MR_PW"
is_error "admin: POST /v2/library/app/blobs/uploads/ -> 403 DENIED" 403 DENIED
api GET "$MR_URL/v2/library/app/manifests/x"
is_error "... no tag x was made (GET library/app:x -> 404 MANIFEST_UNKNOWN)" 404 MANIFEST_UNKNOWN

mkrand "$T/hosted.bin" 5000
HB=$(sha256_of "$T/hosted.bin")
api POST "$MR_URL/v2/hosted/app/blobs/uploads/?digest=$HB" -u "admin:$MR_PW" -H 'Content-Type: application/octet-stream' \
    --data-binary "@$T/hosted.bin"
is "admin: a monolithic blob push to hosted/app (a new name under the catch-all) -> 201" "$STATUS" 201
check "admin: skopeo copy oci:SRC:solo -> docker://MIRROR/hosted/app:1 (a hosted repository)" \
    sko copy "${NOTLS[@]}" --dest-creds "admin:$MR_PW" "oci:$SRC:solo" "docker://$MR_REG/hosted/app:1"
api GET "$MR_URL/v2/hosted/app/manifests/1"
is "... GET hosted/app:1 -> 200, the pushed digest" "$STATUS $(hdr Docker-Content-Digest)" "200 $SOLO"
api GET "$MR_URL/v2/hosted/app/blobs/$HB"
is "... GET the pushed blob -> 200, its digest" "$STATUS $(sha256_of "$BODY")" "200 $HB"
api GET "$MR_URL/v2/hosted/app/manifests/nope"
is_error "... an unknown tag of the hosted repository -> 404 MANIFEST_UNKNOWN" 404 MANIFEST_UNKNOWN
check "skopeo copy docker://MIRROR/hosted/app:1 -> oci: (anonymous; hosted repositories are public in mode public)" \
    sko copy "${NOTLS[@]}" "docker://$MR_REG/hosted/app:1" "oci:$T/hosted:1"
is "... same digest" "$(layout_ref "$T/hosted" 1)" "$SOLO"
is "... and the upstream never heard of hosted/app (served locally)" "$(up_log_count 'hosted/app')" 0
check "admin: a second push to hosted/app (hosted, so accepted) -> skopeo copy oci:SRC:app -> hosted/app:2" \
    sko copy "${NOTLS[@]}" --dest-creds "admin:$MR_PW" "oci:$SRC:app" "docker://$MR_REG/hosted/app:2"
# a hosted library/NAME and the one-word NAME: "own" is library/own, which is berth's own, not the upstream's
check "admin: skopeo copy oci:SRC:solo -> docker://MIRROR/library/own:1 (new here; the upstream has another library/own:1)" \
    sko copy "${NOTLS[@]}" --dest-creds "admin:$MR_PW" "oci:$SRC:solo" "docker://$MR_REG/library/own:1"
api GET "$MR_URL/v2/own/manifests/1"
is "GET own:1 (one word) -> 200, the hosted library/own:1, not the upstream's" "$STATUS $(hdr Docker-Content-Digest)" "200 $SOLO"
api GET "$MR_URL/v2/library/own/manifests/1"
is "... and library/own:1 still points at what was pushed here (a pull never rewrites a hosted tag)" \
    "$STATUS $(hdr Docker-Content-Digest)" "200 $SOLO"
is "... the upstream was never asked for library/own's manifests" \
    "$(grep -F '"berth-mirror/' "$UP_SRV/access.log" | grep -c 'library/own/manifests')" 0
# a client pushing checks its blobs first (HEAD): under the catch-all, a HEAD of a blob of a name not here yet is
# answered from here (404), never fetched, or the name would become a mirrored repository and the push be refused
api HEAD "$MR_URL/v2/team/shared/blobs/$(jq -r '.layers[0].digest' "$(layout_blob "$SRC" "$SHARED")")"
is "HEAD a blob of team/shared (not here; the upstream has it) -> 404, nothing fetched" "$STATUS" 404
check "admin: skopeo copy oci:SRC:shared -> MIRROR/team/shared:1 (new here; the upstream has the same image)" \
    sko copy "${NOTLS[@]}" --dest-creds "admin:$MR_PW" "oci:$SRC:shared" "docker://$MR_REG/team/shared:1"
is "... the mirror asked the upstream for none of team/shared's blobs" \
    "$(grep -F '"berth-mirror/' "$UP_SRV/access.log" | grep -c 'team/shared/blobs')" 0
api PUT "$MR_URL/v2/myone/manifests/1" -u "admin:$MR_PW" -H "Content-Type: $MT_OCI_MANIFEST" \
    --data-binary "@$(layout_blob "$SRC" "$SOLO")"
is "admin: PUT /v2/myone/manifests/1 (a new one-word name, blobs not there) -> 400 MANIFEST_BLOB_UNKNOWN, not 403" \
    "$STATUS $(err_code)" "400 MANIFEST_BLOB_UNKNOWN"

# ================================================================ containerd's ?ns=: which mirror, by registry host
section "containerd ?ns="
api GET "$MR_URL/v2/library/app/manifests/v1?ns=docker.io"
is "GET library/app:v1?ns=docker.io (the catch-all's ns) -> 200, the cached copy" "$STATUS $(hdr Docker-Content-Digest)" "200 $APP"
api GET "$MR_URL/v2/library/app/manifests/v1?ns=flaky.test"
is "GET library/app:v1?ns=flaky.test -> 200 through the flaky mirror (the upstream name, via the proxy)" \
    "$STATUS $(hdr Docker-Content-Digest)" "200 $APP"
check "... fetched through the proxy" grep -qF 'GET /v2/library/app/manifests/v1 200' "$T/proxy.log"
api GET "$MR_URL/v2/flaky/library/app/manifests/v1"
is "... and stored as flaky/library/app (GET it without ?ns= -> 200)" "$STATUS $(hdr Docker-Content-Digest)" "200 $APP"
api GET "$MR_URL/v2/library/app/manifests/v1?ns=quay.io"
is_error "GET library/app:v1?ns=quay.io (no mirror for quay.io) -> 404 NAME_UNKNOWN, not docker.io's copy" 404 NAME_UNKNOWN
api GET "$MR_URL/v2/library/app/blobs/${APP_ALL[1]}?ns=quay.io"
is_error "... a blob of it ?ns=quay.io -> 404 NAME_UNKNOWN" 404 NAME_UNKNOWN
api GET "$MR_URL/v2/hosted/app/manifests/1?ns=quay.io"
is "GET hosted/app:1?ns=quay.io (a hosted repository) -> 200: berth's own names still answer" \
    "$STATUS $(hdr Docker-Content-Digest)" "200 $SOLO"

# ================================================================ 5. a tag moved upstream: seen after tag_ttl, not before
section "5. a tag moved upstream: seen after tag_ttl, not before"
api GET "$MR_URL/v2/library/moving/manifests/t"
t_cached=$(now)
is "GET library/moving:t through the mirror (cold) -> 200, digest A" "$STATUS $(hdr Docker-Content-Digest)" "200 $MOVA"
up_api GET /v2/library/moving/manifests/b -H "Accept: $MT_OCI_MANIFEST"
cp "$BODY" "$T/movb.json"
up_api PUT /v2/library/moving/manifests/t -H "Content-Type: $MT_OCI_MANIFEST" --data-binary "@$T/movb.json"
is "move library/moving:t upstream to B (PUT as the upstream's admin) -> 201" "$STATUS $(hdr Docker-Content-Digest)" "201 $MOVB"
api GET "$MR_URL/v2/library/moving/manifests/t"
e=$(elapsed "$t_cached")
got=$(hdr Docker-Content-Digest)
if awk -v e="$e" -v t="$TTL" 'BEGIN { exit !(e < t - 0.5) }'; then
    is "within tag_ttl ($e s < ${TTL} s since caching): the mirror still answers A" "$STATUS $got" "200 $MOVA"
else
    fail "within tag_ttl: the mirror still answers A" "too slow: $e s passed since caching, tag_ttl is ${TTL} s; cannot tell"
fi
sleep_until "$(awk -v a="$t_cached" -v t="$TTL" 'BEGIN { printf "%.3f", a + t + 0.3 }')"
api GET "$MR_URL/v2/library/moving/manifests/t"
is "after tag_ttl: the mirror answers B" "$STATUS $(hdr Docker-Content-Digest)" "200 $MOVB"
check "... it revalidated with HEAD library/moving/manifests/t (200)" \
    grep -qF '"HEAD /v2/library/moving/manifests/t HTTP/1.1" 200 ' "$UP_SRV/access.log"
check "skopeo copy docker://MIRROR/library/moving:t -> oci: (B's blobs fetched on demand)" \
    sko copy "${NOTLS[@]}" "docker://$MR_REG/library/moving:t" "oci:$T/moving:t"
tree_digests "$SRC" "$MOVB" >"$T/tree.src"
tree_digests "$T/moving" "$MOVB" >"$T/tree.out"
is "... every digest of B as upstream" "$(cat "$T/tree.out")" "$(cat "$T/tree.src")"
api GET "$MR_URL/v2/library/moving/manifests/$MOVA"
is "... A stays available by digest" "$STATUS $(hdr Docker-Content-Digest)" "200 $MOVA"

# ================================================================ 4. single flight: 16 cold GETs of a 200 MiB blob
section "4. single flight: 16 cold GETs of a 200 MiB blob"
use up
mkrand "$T/big.bin" $((200 * 1024 * 1024))
BIG=$(sha256_of "$T/big.bin")
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"big":1}' >"$T/big-config.json"
big_ok=1
push_blob_up() {
    start_upload library/big -u "admin:$UP_PW" || return 1
    api PUT "$(with_query "$UPLOAD_URL" "digest=$(sha256_of "$1")")" -u "admin:$UP_PW" \
        -H 'Content-Type: application/octet-stream' --data-binary "@$1"
    [[ $STATUS == 201 ]]
}
push_blob_up "$T/big.bin" || big_ok=0
push_blob_up "$T/big-config.json" || big_ok=0
# an uncompressed layer type: the bytes are random, and a client that sees "gzip" data that is not would recompress it
image_manifest oci "$T/big-manifest.json" "$T/big-config.json" "$T/big.bin"
jq '.layers[0].mediaType = "application/vnd.oci.image.layer.v1.tar"' "$T/big-manifest.json" >"$T/big-manifest.tmp" &&
    mv "$T/big-manifest.tmp" "$T/big-manifest.json"
BIGM=$(sha256_of "$T/big-manifest.json")
up_api PUT /v2/library/big/manifests/1 -H "Content-Type: $MT_OCI_MANIFEST" --data-binary "@$T/big-manifest.json"
[[ $STATUS == 201 ]] || big_ok=0
use mirror
is "push a 200 MiB random blob, a config and a manifest (library/big:1) to the upstream" "$big_ok" 1
pids=()
for i in $(seq 8); do
    curl -sS --noproxy '*' --max-time 60 -D "$T/bigm.$i.h" -o "$T/bigm.$i" "$MR_URL/v2/library/big/manifests/1" 2>/dev/null &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
got=
for i in $(seq 8); do got+="$(awk 'NR == 1 { print $2 }' "$T/bigm.$i.h") $(hdr Docker-Content-Digest "$T/bigm.$i.h") $(sha256_of "$T/bigm.$i")|"; done
is "8 concurrent cold GETs of library/big:1 (manifest) through the mirror: all 200 with its digest" "$got" \
    "$(for i in $(seq 8); do printf '200 %s %s|' "$BIGM" "$BIGM"; done)"
is "... and one upstream GET of /v2/library/big/manifests/1 (200)" \
    "$(up_log_count '"GET /v2/library/big/manifests/1 HTTP/1.1" 200 ')" 1
t0=$(now)
pids=()
for i in $(seq 16); do
    curl -sS --noproxy '*' --max-time 300 -D "$T/big.$i.h" "$MR_URL/v2/library/big/blobs/$BIG" 2>"$T/big.$i.err" |
        sha256sum | cut -d' ' -f1 >"$T/big.$i.sum" &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
diag "16 concurrent cold GETs of the 200 MiB blob through the mirror: $(elapsed "$t0") s"
got=
for i in $(seq 16); do
    got+="$(hdr Content-Length "$T/big.$i.h") sha256:$(cat "$T/big.$i.sum")|"
    awk 'NR == 1 { exit !($2 == 200) }' "$T/big.$i.h" || got+="(status $(head -n 1 "$T/big.$i.h" | tr -d '\r'))"
done
is "all 16 got 200, Content-Length 200 MiB and the blob's digest" "$got" "$(for i in $(seq 16); do printf '%s %s|' $((200 * 1024 * 1024)) "$BIG"; done)"
is "the upstream's access log: exactly one 200 GET of /v2/library/big/blobs/<digest>" \
    "$(up_log_count "\"GET /v2/library/big/blobs/$BIG HTTP/1.1\" 200 ")" 1
check "... the blob is in the mirror's blob store with the right content" \
    bash -c '[[ $(sha256sum <"$1" | cut -d" " -f1) == "${2#sha256:}" ]]' _ "$(blob_path "$BIG")" "$BIG"
api HEAD "$MR_URL/v2/library/big/blobs/$BIG"
is "... HEAD from the mirror now: 200, Content-Length, digest" \
    "$STATUS $(hdr Content-Length) $(hdr Docker-Content-Digest)" "200 $((200 * 1024 * 1024)) $BIG"
is "... no mirror temporary file left behind" "$(find "$MR_DATA/tmp" -name 'mirror.*' 2>/dev/null | wc -l)" 0

# ---- the warm pull through the mirror against a direct pull from the upstream (diag only: three runs each)
check "skopeo copy docker://MIRROR/library/big:1 -> oci: (warm: the 200 MiB layer cached)" \
    sko copy "${NOTLS[@]}" "docker://$MR_REG/library/big:1" "oci:$T/warm-big:1"
check "skopeo copy docker://UPSTREAM/library/big:1 -> oci: (direct, as the upstream's admin)" \
    sko copy "${NOTLS[@]}" --src-creds "admin:$UP_PW" "docker://$UP_REG/library/big:1" "oci:$T/direct-big:1"
check "... the same image either way (skopeo rewrites both alike: identical layouts)" diff -r "$T/warm-big" "$T/direct-big"
api GET "$MR_URL/v2/library/big/manifests/1"
is "GET library/big:1 from the mirror -> 200, the pushed manifest's digest" "$STATUS $(hdr Docker-Content-Digest)" "200 $BIGM"
# timed SRC ALL? : skopeo copy wall time of SRC (MIRROR or UPSTREAM) to a fresh oci: folder
timed() {
    local src=$1 t0 creds=() all=()
    [[ $src == "$UP_REG"/* ]] && creds=(--src-creds "admin:$UP_PW")
    [[ ${2:-} == all ]] && all=(--all)
    rm -rf "$T/timed"
    t0=$(now)
    sko copy "${all[@]}" "${NOTLS[@]}" "${creds[@]}" "docker://$src" "oci:$T/timed:x" >/dev/null 2>&1 || echo -n "FAILED "
    elapsed "$t0"
}
bm=() bu=() mm=() mu=()
for i in 1 2 3; do
    bm+=("$(timed "$MR_REG/library/big:1")") bu+=("$(timed "$UP_REG/library/big:1")")
    mm+=("$(timed "$MR_REG/library/multi:1.0" all)") mu+=("$(timed "$UP_REG/library/multi:1.0" all)")
done
diag "warm pull through the mirror vs direct pull from the upstream (skopeo copy to oci:, wall time, 3 runs):" \
    "  library/big:1 (200 MiB layer):         mirror ${bm[*]} s   direct ${bu[*]} s" \
    "  library/multi:1.0 --all (2 platforms): mirror ${mm[*]} s   direct ${mu[*]} s"

# ================================================================ 6. an upstream answering 429 / 500
section "6. an upstream answering 429 / 500"
check "skopeo copy docker://MIRROR/flaky/library/x:tag -> oci: (through the proxy; cached)" \
    sko copy "${NOTLS[@]}" "docker://$MR_REG/flaky/library/x:tag" "oci:$T/flaky:a"
is "... the upstream's digest" "$(layout_ref "$T/flaky" a)" "$FLX"
check "... the proxy carried the mirror's token request and the manifest (200)" \
    bash -c "grep -q '^GET /token?.* 200\$' '$T/proxy.log' && grep -qF 'GET /v2/library/x/manifests/tag 200' '$T/proxy.log'"
api GET "$MR_URL/v2/flaky/library/x/manifests/tag"
t_cached=$(now)
is "GET flaky/library/x:tag -> 200 from the mirror" "$STATUS $(hdr Docker-Content-Digest)" "200 $FLX"

echo 429 >"$FAULT"
api GET "http://$PROXY/v2/"
is "(self-check) the proxy now answers 429 with Retry-After: 7" "$STATUS $(hdr Retry-After)" "429 7"
api GET "$MR_URL/v2/flaky/library/x/manifests/uncached"
is_error "429 upstream, a miss (flaky/library/x:uncached, never pulled) -> 429 TOOMANYREQUESTS" 429 TOOMANYREQUESTS
is "... with the upstream's Retry-After: 7" "$(hdr Retry-After)" 7
RD2=$(random_digest)
api GET "$MR_URL/v2/flaky/library/x/blobs/$RD2"
is_error "429 upstream, a blob miss -> 429 TOOMANYREQUESTS" 429 TOOMANYREQUESTS
is "... with Retry-After: 7" "$(hdr Retry-After)" 7
sleep_until "$(awk -v a="$t_cached" -v t="$FTTL" 'BEGIN { printf "%.3f", a + t + 0.3 }')"
n_stale=$(stale_count)
n429=$(grep -c ' 429$' "$T/proxy.log")
check "429 upstream, the tag stale: skopeo copy flaky/library/x:tag still succeeds" \
    sko copy "${NOTLS[@]}" "docker://$MR_REG/flaky/library/x:tag" "oci:$T/flaky:b"
is "... same digest" "$(layout_ref "$T/flaky" b)" "$FLX"
check "... the mirror did ask (the proxy answered 429 again)" test "$(grep -c ' 429$' "$T/proxy.log")" -gt "$n429"
check "... and logged that it served the cached copy" test "$(stale_count)" -gt "$n_stale"
api GET "$MR_URL/v2/flaky/library/x/manifests/tag"
is "... GET flaky/library/x:tag -> 200 (stale copy)" "$STATUS $(hdr Docker-Content-Digest)" "200 $FLX"

echo 500 >"$FAULT"
api GET "$MR_URL/v2/flaky/library/x/manifests/uncached"
is "500 upstream, a miss -> 503" "$STATUS" 503
check "... with an error body in the spec's format, code UNAVAILABLE" bash -c '[[ $1 == UNAVAILABLE ]]' _ "$(error_body_ok && err_code)"
check "... and no Retry-After" bash -c "! grep -qi '^retry-after:' '$HDRS'"
api GET "$MR_URL/v2/flaky/library/x/blobs/$RD2"
is "500 upstream, a blob miss -> 503 UNAVAILABLE" "$STATUS $(error_body_ok && err_code)" "503 UNAVAILABLE"
n_stale=$(stale_count)
check "500 upstream, the tag stale: skopeo copy flaky/library/x:tag still succeeds" \
    sko copy "${NOTLS[@]}" "docker://$MR_REG/flaky/library/x:tag" "oci:$T/flaky:c"
is "... same digest" "$(layout_ref "$T/flaky" c)" "$FLX"
check "... and the mirror logged that it served the cached copy" test "$(stale_count)" -gt "$n_stale"

: >"$FAULT"
api GET "$MR_URL/v2/flaky/library/x/manifests/uncached"
is "the proxy healed: the miss now succeeds (flaky/library/x:uncached -> 200)" "$STATUS $(hdr Docker-Content-Digest)" "200 $FLX"
api GET "$MR_URL/v2/flaky/library/x/blobs/$RD2"
is_error "... and an unknown blob is 404 BLOB_UNKNOWN again" 404 BLOB_UNKNOWN

# ================================================================ 9. real mirror clients: podman, containerd
section "9. real mirror clients: podman, containerd"
if ! command -v podman >/dev/null; then
    skip_test "podman pull docker.io/... through the mirror" "podman not installed"
elif ((EUID != 0)); then
    skip_test "podman pull docker.io/... through the mirror" "podman needs root here"
else
    mkdir -p "$T/podman"
    cat >"$T/podman/registries.conf" <<EOF
[[registry]]
prefix = "docker.io"
location = "docker.io"

[[registry.mirror]]
location = "$MR_REG"
insecure = true
EOF
    P=(env CONTAINERS_REGISTRIES_CONF="$T/podman/registries.conf" HTTP_PROXY=$DEAD_PROXY HTTPS_PROXY=$DEAD_PROXY
        podman --root "$T/podman/root" --runroot "$T/podman/run" --storage-driver vfs --cgroup-manager cgroupfs
        --events-backend none --tmpdir "$T/podman/tmp")
    mkdir -p "$T/podman/tmp"
    if ! "${P[@]}" info >"$T/podman/info" 2>&1; then
        skip_test "podman pull docker.io/... through the mirror" "podman cannot run here: $(tail -n 1 "$T/podman/info")"
    else
        check "podman pull docker.io/library/podimg:1 (registries.conf: the mirror for docker.io; docker.io unreachable)" \
            "${P[@]}" pull -q docker.io/library/podimg:1
        is "... the image's Digest is the upstream's manifest digest" \
            "$("${P[@]}" image inspect --format '{{.Digest}}' docker.io/library/podimg:1 2>&1)" "$PODI"
        check "... the mirror served it to podman (GET /v2/library/podimg/manifests/1 -> 200, user agent containers/)" \
            bash -c "grep -F '\"GET /v2/library/podimg/manifests/1 HTTP/1.1\" 200 ' '$MR_SRV/access.log' | grep -qF '\"containers/'"
        check "... which the mirror fetched from the upstream" \
            grep -qF '"GET /v2/library/podimg/manifests/1 HTTP/1.1" 200 ' "$UP_SRV/access.log"
        "${P[@]}" rmi -a -f >/dev/null 2>&1
    fi
fi

if ! start_containerd env HTTP_PROXY="$DEAD_PROXY" HTTPS_PROXY="$DEAD_PROXY"; then
    skip_test "ctr images pull docker.io/... through the mirror" "$CTD_SKIP"
else
    mkdir -p "$K/hosts/docker.io"
    printf 'server = "https://registry-1.docker.io"\n\n[host."http://%s"]\n  capabilities = ["pull", "resolve"]\n' "$MR_REG" \
        >"$K/hosts/docker.io/hosts.toml"
    check "ctr images pull --hosts-dir: docker.io/library/ctrimg:1 through the mirror (?ns=docker.io)" \
        "${CT[@]}" images pull --hosts-dir "$K/hosts" docker.io/library/ctrimg:1
    is "... containerd records the upstream's manifest digest" \
        "$("${CT[@]}" images ls | awk '$1 == "docker.io/library/ctrimg:1" { print $3 }')" "$CTRI"
    check "... the mirror answered ?ns=docker.io requests with 200: the tag (HEAD) and the manifest by digest" bash -c "
        grep -qE '\"HEAD /v2/library/ctrimg/manifests/1\\?ns=docker.io HTTP/1.1\" 200 ' '$MR_SRV/access.log' &&
        grep -qF '\"GET /v2/library/ctrimg/manifests/$CTRI?ns=docker.io HTTP/1.1\" 200 ' '$MR_SRV/access.log'"
    mapfile -t CTR_BLOBS < <(all_digests "$SRC" "$CTRI" | tail -n +2)
    ok=1
    for d in "${CTR_BLOBS[@]}"; do
        grep -qF "\"GET /v2/library/ctrimg/blobs/$d?ns=docker.io HTTP/1.1\" 200 " "$MR_SRV/access.log" || ok=0
    done
    is "... and its config and layer (GET blobs/<digest>?ns=docker.io -> 200)" "$ok" 1
    check "... which the mirror fetched from the upstream as library/ctrimg" \
        grep -qF '"GET /v2/library/ctrimg/manifests/1 HTTP/1.1" 200 ' "$UP_SRV/access.log"
    stop_containerd
fi

# ================================================================ credentials never in a response
section "credentials never in a response"
: >"$T/responses"
for req in "/v2/" "/v2/library/app/manifests/v1" "/v2/library/app/manifests/nope" "/v2/library/app/blobs/$RD" \
    "/v2/flaky/library/x/manifests/tag" "/token?service=berth&scope=repository:library/app:pull" \
    "/v2/library/app/tags/list" "/v2/_catalog"; do
    api GET "$MR_URL$req"
    cat "$HDRS" "$BODY" >>"$T/responses"
    api GET "$MR_URL$req" -u "admin:$MR_PW"
    cat "$HDRS" "$BODY" >>"$T/responses"
done
echo 429 >"$FAULT"
api GET "$MR_URL/v2/flaky/library/x/manifests/uncached2"
cat "$HDRS" "$BODY" >>"$T/responses"
echo 500 >"$FAULT"
api GET "$MR_URL/v2/flaky/library/x/manifests/uncached2"
cat "$HDRS" "$BODY" >>"$T/responses"
: >"$FAULT"
B64=$(printf 'admin:%s' "$UP_PW" | base64 -w0)
check "the upstream password (and admin:password in base64) appear in no response of the mirror (incl. errors)" \
    bash -c "! grep -qF -e '$UP_PW' -e '$B64' '$T/responses'"
check "... nor in the mirror's access log or log" bash -c "! grep -qF -e '$UP_PW' -e '$B64' '$MR_SRV/access.log' '$MR_SRV/berth.log'"

# ================================================================ 3. the upstream gone: cached copies still served
section "3. the upstream gone: cached copies still served"
use up
t0=$(now)
stop_berth # SIGTERM: exit 0, no sanitizer report (checked by wait_berth)
e=$(elapsed "$t0")
use mirror
# the mirror keeps pooled keep-alive connections to the upstream: idle, they must not hold its exit
like "the upstream exits within 1.5 s of SIGTERM (took $e s), though the mirror keeps idle connections to it" \
    "$(awk -v e="$e" 'BEGIN { print (e < 1.5 ? "fast" : "slow") }')" '^fast$'

api GET "$UP_URL/v2/"
is "the upstream is down (GET /v2/ -> no answer)" "$STATUS" 000
t0=$(now)
check "upstream down: skopeo copy docker://MIRROR/library/app:v1 -> oci: still succeeds" \
    sko copy "${NOTLS[@]}" "docker://$MR_REG/library/app:v1" "oci:$T/down:app"
tree_digests "$T/down" "$APP" >"$T/tree.out"
tree_digests "$SRC" "$APP" >"$T/tree.src"
is "... same digests as upstream" "$(cat "$T/tree.out")" "$(cat "$T/tree.src")"
check "upstream down: skopeo copy --all docker://MIRROR/library/multi:1.0 -> oci: still succeeds" \
    sko copy --all "${NOTLS[@]}" "docker://$MR_REG/library/multi:1.0" "oci:$T/down:multi"
tree_digests "$T/down" "$MULTI" >"$T/tree.out"
tree_digests "$SRC" "$MULTI" >"$T/tree.src"
is "... same digests as upstream" "$(cat "$T/tree.out")" "$(cat "$T/tree.src")"
api GET "$MR_URL/v2/library/never-pulled/manifests/1"
is "upstream down, a miss -> 503 UNAVAILABLE" "$STATUS $(error_body_ok && err_code)" "503 UNAVAILABLE"
api GET "$MR_URL/v2/library/app/blobs/$RD"
is "upstream down, a blob miss -> 503 UNAVAILABLE" "$STATUS $(error_body_ok && err_code)" "503 UNAVAILABLE"
sleep_until "$(awk -v a="$t0" -v t="$TTL" 'BEGIN { printf "%.3f", a + t + 0.3 }')"
n_stale=$(stale_count)
check "upstream down, tag_ttl passed (stale): skopeo copy library/app:v1 still succeeds" \
    sko copy "${NOTLS[@]}" "docker://$MR_REG/library/app:v1" "oci:$T/stale:app"
is "... same manifest digest" "$(layout_ref "$T/stale" app)" "$APP"
check "upstream down, stale: skopeo copy --all library/multi:1.0 still succeeds" \
    sko copy --all "${NOTLS[@]}" "docker://$MR_REG/library/multi:1.0" "oci:$T/stale:multi"
tree_digests "$T/stale" "$MULTI" >"$T/tree.out"
is "... every digest as upstream" "$(cat "$T/tree.out")" "$(cat "$T/tree.src")"
check "... the mirror logged that it served the cached copies" test "$(stale_count)" -ge $((n_stale + 2))
sko inspect --raw "${TLS[@]}" "docker://$MR_REG/solo:1" >"$T/solo2.raw" 2>"$T/err"
check "upstream down, stale: skopeo inspect --raw MIRROR/solo:1 (one word) -> the same bytes" same_bytes "$T/solo2.raw" "$T/solo.raw"

# ================================================================ mode private: the caller is authenticated first
# Which names are mirrored (and which repositories are mirrored copies) is not for anonymous callers of a private
# registry: each name is challenged alike, before any mirror is asked about it.
section "mode private: authentication before the mirrors"
stop_berth
BERTH_ENV+=(BERTH_MODE=private)
MR_ENV=("${BERTH_ENV[@]}")
start_berth_again
# anon_same DESC METHOD PATH [curl args] : anonymous METHOD PATH is answered as the same request for a name no
# mirror and no repository knows (hosted/never/seen): 401 UNAUTHORIZED, the same body, the same challenge but for
# the name in its scope.
anon_same() {
    local desc=$1 method=$2 path=$3 other= name=
    shift 3
    if [[ $path =~ ^/v2/(.+)/(blobs/uploads/.*)$ || $path =~ ^/v2/(.+)/((manifests|blobs|tags)/.*)$ ]]; then
        name=${BASH_REMATCH[1]}
        other=/v2/hosted/never/seen/${BASH_REMATCH[2]}
    fi
    api "$method" "$MR_URL$other" "$@"
    local want_status=$STATUS want_body want_chal
    want_body=$(cat "$BODY")
    [[ $method == HEAD ]] && want_body=$(hdr Content-Length) # curl --head writes the head as the body
    want_chal=$(hdr WWW-Authenticate)
    api "$method" "$MR_URL$path" "$@"
    if [[ $method == HEAD ]]; then
        is "$desc -> 401" "$STATUS" 401
    else
        is "$desc -> 401 UNAUTHORIZED" "$STATUS $(err_code)" "401 UNAUTHORIZED"
    fi
    local got_body
    got_body=$(cat "$BODY")
    [[ $method == HEAD ]] && got_body=$(hdr Content-Length)
    is "... as for a name nothing knows: the same status and body" "$STATUS $got_body" "$want_status $want_body"
    is "... and the same challenge, but for the name" "$(hdr WWW-Authenticate)" "${want_chal//hosted\/never\/seen/$name}"
}
anon_same "anonymous GET library/app:v1?ns=quay.io (a mirrored copy; no mirror for quay.io)" \
    GET "/v2/library/app/manifests/v1?ns=quay.io"
anon_same "anonymous GET a blob of it ?ns=quay.io" GET "/v2/library/app/blobs/${APP_ALL[1]}?ns=quay.io"
anon_same "anonymous HEAD library/app:v1?ns=quay.io" HEAD "/v2/library/app/manifests/v1?ns=quay.io"
anon_same "anonymous GET library/app:v1 (mirrored, cached)" GET "/v2/library/app/manifests/v1"
anon_same "anonymous POST flaky/foo/blobs/uploads/ (a mirrored prefix)" POST "/v2/flaky/foo/blobs/uploads/" \
    -H 'Content-Length: 0'
anon_same "anonymous PUT library/app:x (mirrored under the catch-all)" PUT "/v2/library/app/manifests/x" \
    -H "Content-Type: $MT_OCI_MANIFEST" --data-binary "@$(layout_blob "$SRC" "$APP")"
# once authenticated, the mirrors answer as before
api GET "$MR_URL/v2/library/app/manifests/v1?ns=quay.io" -u "admin:$MR_PW"
is_error "admin: GET library/app:v1?ns=quay.io -> 404 NAME_UNKNOWN (no mirror for quay.io)" 404 NAME_UNKNOWN
api GET "$MR_URL/v2/library/app/manifests/v1" -u "admin:$MR_PW"
is "admin: GET library/app:v1 -> 200, the cached copy" "$STATUS $(hdr Docker-Content-Digest)" "200 $APP"
api POST "$MR_URL/v2/flaky/foo/blobs/uploads/" -H 'Content-Length: 0' -u "admin:$MR_PW"
is_error "admin: POST flaky/foo/blobs/uploads/ -> 403 DENIED" 403 DENIED
like "... saying which upstream it mirrors" "$(jq -r '.errors[0].message' "$BODY")" "^flaky/foo mirrors http://"

kill -TERM "$PROXY_PID" 2>/dev/null
wait "$PROXY_PID" 2>/dev/null
PROXY_PID=
if ((_failed > 0)) && [[ -s $UP_SRV/berth.log ]]; then
    diag "last lines of the upstream's log:" "$(tail -n 25 "$UP_SRV/berth.log")"
fi
section end
diag "mirror.sh took $(elapsed "$t_all") s"
done_testing
