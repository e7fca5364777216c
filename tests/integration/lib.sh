# Harness for berth's integration tests; each tests/integration/*.sh sources it.
# Runs alone too:  BERTH=/path/berth bash tests/integration/blobs.sh   (SRCDIR/BUILDDIR are guessed)
#
# TAP:     check DESC CMD...   is DESC GOT WANT   isnt DESC GOT UNWANTED   like DESC GOT REGEX
#          (a DESC with "# TODO reason" marks a known problem: reported "not ok", not counted as a failure)
#          pass DESC   fail DESC [DIAG...]   diag TEXT...   is_error DESC STATUS CODE   done_testing
# Server:  start_berth [VAR=VALUE...]   stop_berth   restart_berth   kill_berth   wait_berth
#          start_berth_again
#          sets REG (127.0.0.1:PORT), URL, BERTH_PID, DATA, SRV (the server's folder)
# HTTP:    api METHOD PATH|URL [curl args...]  -> STATUS, $HDRS, $BODY;  hdr NAME;  has_hdr NAME
#          resolve LOCATION -> absolute URL;  with_query URL QUERY
# Content: mkrand FILE SIZE, sha256_of FILE, sha512_of FILE, blob_path DIGEST, start_upload REPO,
#          push_blob REPO FILE, push_manifest REPO REF FILE [TYPE], image_manifest, index_manifest,
#          push_image REPO TAG KIND, same_bytes A B, oci_layout DIR TAG NLAYERS [ARCH...],
#          layout_blob DIR DIGEST, layout_ref DIR TAG, sko (skopeo without a policy file)
# Other:   skip_all REASON; $PYTHON (the system python3); KEEP_TMP=1 keeps the temporary folder $T
set -u

: "${SRCDIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${BUILDDIR:=$SRCDIR}"
: "${BERTH:=$BUILDDIR/berth}"
# pyenv's shim costs a second a call; the system python3 (stdlib only is needed) does not.
PYTHON=python3
[[ -x /usr/bin/python3 ]] && PYTHON=/usr/bin/python3
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY

MT_OCI_MANIFEST=application/vnd.oci.image.manifest.v1+json
MT_OCI_INDEX=application/vnd.oci.image.index.v1+json
MT_DOCKER_MANIFEST=application/vnd.docker.distribution.manifest.v2+json
MT_DOCKER_LIST=application/vnd.docker.distribution.manifest.list.v2+json
# The error codes the distribution spec allows ("The code field MUST be one of the following").
SPEC_ERROR_CODES='BLOB_UNKNOWN BLOB_UPLOAD_INVALID BLOB_UPLOAD_UNKNOWN DIGEST_INVALID MANIFEST_BLOB_UNKNOWN
MANIFEST_INVALID MANIFEST_UNKNOWN NAME_INVALID NAME_UNKNOWN SIZE_INVALID UNAUTHORIZED DENIED UNSUPPORTED
TOOMANYREQUESTS'

TEST_NAME=$(basename "$0" .sh)
T=$(mktemp -d "${TMPDIR:-/tmp}/berth-$TEST_NAME.XXXXXX") || {
    echo "Bail out! cannot make a temporary folder"
    exit 1
}
BODY=$T/body
HDRS=$T/headers
STATUS=
CURL_RC=0
CURL_TLS=()
BERTH_PID=
BERTH_ENV=()
SRV=
DATA=
PORT=
REG=
URL=
_n=0
_failed=0
_nsrv=0
_san_off=0
_last_req=

# ---------------------------------------------------------------- TAP

diag() {
    local l
    for l in "$@"; do printf '%s\n' "$l" | sed 's/^/# /'; done
}

_result() { # OK? DESC
    _n=$((_n + 1))
    if [[ $1 == 1 ]]; then
        printf 'ok %d - %s\n' "$_n" "$2"
    else
        # TAP: a failing point marked "# TODO" is a known problem, not a failure of the file (as tests/run counts it)
        [[ $2 =~ \#[[:space:]]*[Tt][Oo][Dd][Oo] ]] || _failed=$((_failed + 1))
        printf 'not ok %d - %s\n' "$_n" "$2"
        # The caller's caller is the test file line that made the assertion.
        local i
        for ((i = 1; i < ${#BASH_SOURCE[@]}; i++)); do
            if [[ ${BASH_SOURCE[$i]} != "${BASH_SOURCE[0]}" ]]; then
                diag "at ${BASH_SOURCE[$i]##*/} line ${BASH_LINENO[$((i - 1))]}"
                break
            fi
        done
    fi
}

pass() { _result 1 "$1"; }
fail() {
    _result 0 "$1"
    shift
    (($# > 0)) && diag "$@"
    return 1
}

# check DESC CMD... : ok if CMD exits 0 (its output is shown only on failure).
check() {
    local desc=$1 rc
    shift
    "$@" >"$T/check.out" 2>&1
    rc=$?
    if ((rc == 0)); then
        _result 1 "$desc"
    else
        _result 0 "$desc"
        diag "command: $*" "exit status $rc" "$(tail -n 20 "$T/check.out")"
        _response_diag
    fi
    return $rc
}

is() {
    if [[ $2 == "$3" ]]; then
        _result 1 "$1"
    else
        _result 0 "$1"
        diag "got:      '$2'" "expected: '$3'"
        _response_diag
        return 1
    fi
}

isnt() {
    if [[ $2 != "$3" ]]; then
        _result 1 "$1"
    else
        _result 0 "$1"
        diag "got:      '$2'" "expected anything else"
        _response_diag
        return 1
    fi
}

like() {
    if [[ $2 =~ $3 ]]; then
        _result 1 "$1"
    else
        _result 0 "$1"
        diag "got:      '$2'" "expected to match: $3"
        _response_diag
        return 1
    fi
}

# The last response, for diagnostics of a failed assertion about it.
_response_diag() {
    [[ -n ${_last_req:-} ]] || return 0
    diag "last request: $_last_req" "response: $STATUS (curl exit $CURL_RC)"
    [[ -s $HDRS ]] && diag "$(tr -d '\r' <"$HDRS" | head -n 20)"
    if [[ -s $BODY ]]; then
        if LC_ALL=C grep -q '[^[:print:][:space:]]' <(head -c 600 "$BODY"); then
            diag "body: $(stat -c %s "$BODY") bytes (binary)"
        else
            diag "body: $(head -c 600 "$BODY")"
        fi
    fi
    [[ -s $T/curl.err ]] && diag "curl: $(head -c 300 "$T/curl.err")"
    return 0
}

# The error body the spec asks for: {"errors":[{"code":"…","message":"…","detail":…},…]}.
error_body_ok() {
    jq -e '(.errors | type == "array" and length >= 1)
        and all(.errors[]; (.code | type == "string" and test("^[A-Z_]+$"))
                           and ((.message // "") | type == "string"))' "$BODY" >/dev/null 2>&1
}

# Code of the first error in the body ("" if none).
err_code() { jq -r '.errors[0].code // empty' "$BODY" 2>/dev/null; }

# is_error DESC STATUS CODE [STATUS CODE...] : the response is one of the given (status, code) pairs,
# with a well-formed error body whose code is one of the spec's.
is_error() {
    local desc=$1 code
    shift
    code=$(err_code)
    if error_body_ok && [[ " $(echo $SPEC_ERROR_CODES) " == *" $code "* ]]; then
        while (($# >= 2)); do
            if [[ $STATUS == "$1" && $code == "$2" ]]; then
                _result 1 "$desc"
                return 0
            fi
            shift 2
        done
    fi
    _result 0 "$desc"
    diag "got: $STATUS ${code:-(no valid error body)}"
    _response_diag
    return 1
}

done_testing() {
    [[ -n $BERTH_PID ]] && stop_berth
    if ((_failed > 0)) && [[ -n $SRV && -s $SRV/berth.log ]]; then
        diag "last lines of $SRV/berth.log:" "$(tail -n 25 "$SRV/berth.log")"
    fi
    echo "1..$_n"
    ((_failed == 0)) || exit 1
    exit 0
}

# skip_all REASON : the whole file is skipped (TAP "1..0 # SKIP").
skip_all() {
    echo "1..0 # SKIP $1"
    exit 0
}

# ---------------------------------------------------------------- server

free_port() {
    "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

_alive() {
    local st
    st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
    [[ -n $st && $st != Z && $st != X ]]
}

# start_berth [VAR=VALUE...] : a new server on a fresh data folder and a free port.
start_berth() {
    _nsrv=$((_nsrv + 1))
    SRV=$T/srv$_nsrv
    DATA=$SRV/data
    mkdir -p "$SRV"
    PORT=$(free_port)
    BERTH_ENV=("$@")
    _san_off=0
    _launch
}

_launch() {
    local kv scheme=http
    CURL_TLS=()
    for kv in "${BERTH_ENV[@]}"; do
        case $kv in
        BERTH_HTTP_TLS_CERTIFICATE=*)
            scheme=https
            CURL_TLS=(--cacert "${kv#*=}")
            ;;
        esac
    done
    REG=127.0.0.1:$PORT
    URL=$scheme://$REG
    if [[ ! -x $BERTH ]]; then
        fail "berth binary exists" "no executable at BERTH=$BERTH"
        echo "Bail out! no berth binary"
        exit 1
    fi
    echo "--- $(date +%T) start: ${BERTH_ENV[*]}" >>"$SRV/berth.log"
    # BERTH_MODE=open: these tests speak the distribution API without credentials (a test may override it)
    env BERTH_HTTP_ADDR="$REG" BERTH_STORAGE_ROOT="$DATA" BERTH_LOG_ACCESS="$SRV/access.log" BERTH_MODE=open \
        "${BERTH_ENV[@]}" "$BERTH" serve >>"$SRV/berth.log" 2>&1 &
    BERTH_PID=$!
    local i code
    for ((i = 0; i < 100; i++)); do
        code=$(curl -s --noproxy '*' "${CURL_TLS[@]}" --max-time 2 -o /dev/null -w '%{http_code}' "$URL/healthz")
        [[ $code == 200 ]] && break
        if ! _alive "$BERTH_PID"; then
            break
        fi
        sleep 0.1
    done
    if [[ $code == 200 ]]; then
        pass "berth serves /healthz on $URL"
    else
        fail "berth serves /healthz on $URL within 10 s" "last status: $code" "$(tail -n 30 "$SRV/berth.log")"
        echo "Bail out! berth did not start"
        exit 1
    fi
}

# stop_berth : SIGTERM; berth must exit 0 within 30 s with no sanitizer report in its log.
stop_berth() {
    [[ -n $BERTH_PID ]] || return 0
    kill -TERM "$BERTH_PID" 2>/dev/null
    wait_berth
}

# wait_berth : after a SIGTERM sent by the caller: berth must exit 0 within 30 s, with no sanitizer
# report in its log.
wait_berth() {
    local pid=$BERTH_PID i rc
    [[ -n $pid ]] || return 0
    BERTH_PID=
    for ((i = 0; i < 300; i++)); do
        _alive "$pid" || break
        sleep 0.1
    done
    _last_req= # diagnostics below are about the server, not the last response
    if _alive "$pid"; then
        fail "berth exits within 30 s of SIGTERM" "$(tail -n 20 "$SRV/berth.log")"
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    else
        wait "$pid"
        rc=$?
        is "berth exits with status 0 after SIGTERM" "$rc" 0 || diag "$(tail -n 5 "$SRV/berth.log")"
    fi
    _sanitizer_check
}

# kill_berth : SIGKILL (a crash); no exit status to check.
kill_berth() {
    local pid=$BERTH_PID
    [[ -n $pid ]] || return 0
    BERTH_PID=
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    _sanitizer_check
}

# A sanitizer report in the part of berth's log not checked yet (each report fails once).
_sanitizer_check() {
    local log=$SRV/berth.log pat='AddressSanitizer|LeakSanitizer|ThreadSanitizer|runtime error:'
    [[ -f $log ]] || return 0
    if tail -c +$((_san_off + 1)) "$log" | grep -qE "$pat"; then
        _last_req=
        fail "no sanitizer report in berth's log" "$(tail -c +$((_san_off + 1)) "$log" | grep -E -A 40 -m 1 "$pat")"
    fi
    _san_off=$(size_of "$log")
}

# restart_berth : stop, then start again on the same data folder, port and settings.
restart_berth() {
    stop_berth
    _launch
}

# start_berth_again : start again on the same data folder, port and settings (after kill_berth or
# wait_berth).
start_berth_again() { _launch; }

_cleanup() {
    if [[ -n $BERTH_PID ]]; then
        kill -TERM "$BERTH_PID" 2>/dev/null
        local i
        for ((i = 0; i < 50; i++)); do
            _alive "$BERTH_PID" || break
            sleep 0.1
        done
        kill -KILL "$BERTH_PID" 2>/dev/null
    fi
    if [[ ${KEEP_TMP:-0} == 1 ]]; then
        echo "# kept $T" >&2
    else
        rm -rf "$T"
    fi
}
trap _cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

# ---------------------------------------------------------------- HTTP

# api METHOD PATH|URL [curl args...] : one request. Sets STATUS (000 if no response), CURL_RC,
# and writes the headers to $HDRS and the body to $BODY.
api() {
    local method=$1 url=$2
    shift 2
    [[ $url == http://* || $url == https://* ]] || url=$URL$url
    local m=(-X "$method")
    [[ $method == HEAD ]] && m=(--head)
    : >"$BODY"
    : >"$HDRS"
    _last_req="$method $url"
    STATUS=$(curl -sS --noproxy '*' "${CURL_TLS[@]}" --max-time "${API_TIMEOUT:-60}" "${m[@]}" \
        -o "$BODY" -D "$HDRS" -w '%{http_code}' "$@" "$url" 2>"$T/curl.err")
    CURL_RC=$?
    [[ -n $STATUS ]] || STATUS=000
    return 0
}

# hdr NAME [FILE] : the value of a response header (last response block, first occurrence), trimmed.
hdr() {
    awk -v want="$(printf '%s' "$1" | tr 'A-Z' 'a-z')" '
        /^HTTP\// { v = ""; found = 0; next }
        { sub(/\r$/, ""); i = index($0, ":"); if (i == 0) next
          k = tolower(substr($0, 1, i - 1))
          if (k == want && !found) { v = substr($0, i + 1); sub(/^[ \t]+/, "", v); sub(/[ \t]+$/, "", v); found = 1 } }
        END { printf "%s", v }' "${2:-$HDRS}"
}

# has_hdr NAME : the last response block has that header.
has_hdr() {
    awk -v want="$(printf '%s' "$1" | tr 'A-Z' 'a-z')" '
        /^HTTP\// { found = 0; next }
        { i = index($0, ":"); if (i > 0 && tolower(substr($0, 1, i - 1)) == want) found = 1 }
        END { exit !found }' "$HDRS"
}

# resolve LOCATION : an absolute URL for a Location header value (absolute, or relative to the server).
resolve() {
    case $1 in
    http://* | https://*) printf '%s' "$1" ;;
    /*) printf '%s%s' "$URL" "$1" ;;
    *) printf '%s/%s' "$URL" "$1" ;;
    esac
}

# with_query URL QUERY : URL with "QUERY" appended after ? or &.
with_query() {
    if [[ $1 == *\?* ]]; then printf '%s&%s' "$1" "$2"; else printf '%s?%s' "$1" "$2"; fi
}

# path_of URL-or-path : the path (and query) part.
path_of() {
    local u=$1
    u=${u#http://}
    u=${u#https://}
    [[ $1 == http://* || $1 == https://* ]] && u=/${u#*/}
    printf '%s' "$u"
}

# ---------------------------------------------------------------- content

mkrand() { head -c "$2" /dev/urandom >"$1"; }
sha256_of() { printf 'sha256:%s' "$(sha256sum <"$1" | cut -d' ' -f1)"; }
sha512_of() { printf 'sha512:%s' "$(sha512sum <"$1" | cut -d' ' -f1)"; }
size_of() { stat -c %s "$1"; }
random_digest() { printf 'sha256:%s' "$(head -c 32 /dev/urandom | sha256sum | cut -d' ' -f1)"; }
# Where berth keeps a blob: $DATA/blobs/<algo>/<first two hex>/<hex>.
blob_path() {
    local algo=${1%%:*} hex=${1#*:}
    printf '%s/blobs/%s/%s/%s' "$DATA" "$algo" "${hex:0:2}" "$hex"
}

# start_upload REPO [curl args] : POST an upload session; sets UPLOAD_URL (absolute) on 202.
start_upload() {
    local repo=$1
    shift
    UPLOAD_URL=
    api POST "/v2/$repo/blobs/uploads/" -H 'Content-Length: 0' "$@"
    [[ $STATUS == 202 ]] || return 1
    UPLOAD_URL=$(resolve "$(hdr Location)")
    [[ -n $(hdr Location) ]]
}

# push_blob REPO FILE [DIGEST] : monolithic POST + PUT; returns 0 on 201.
push_blob() {
    local repo=$1 file=$2 d=${3:-}
    [[ -n $d ]] || d=$(sha256_of "$file")
    start_upload "$repo" || return 1
    api PUT "$(with_query "$UPLOAD_URL" "digest=$d")" -H 'Content-Type: application/octet-stream' \
        --data-binary "@$file"
    [[ $STATUS == 201 ]]
}

# push_manifest REPO REF FILE [MEDIA_TYPE] : PUT a manifest (type default: the body's mediaType).
push_manifest() {
    local repo=$1 ref=$2 file=$3 mt=${4:-}
    [[ -n $mt ]] || mt=$(jq -r '.mediaType // empty' "$file")
    api PUT "/v2/$repo/manifests/$ref" -H "Content-Type: $mt" --data-binary "@$file"
    [[ $STATUS == 201 ]]
}

# descriptor MEDIA_TYPE FILE : an OCI descriptor (compact JSON) for FILE's bytes.
descriptor() {
    jq -cn --arg mt "$1" --arg d "$(sha256_of "$2")" --argjson s "$(size_of "$2")" \
        '{mediaType: $mt, digest: $d, size: $s}'
}

# image_manifest KIND OUT CONFIG LAYER... : write an image manifest (KIND oci or docker) for those blobs.
image_manifest() {
    local kind=$1 out=$2 cfg=$3 mt cmt lmt f layers=()
    shift 3
    if [[ $kind == docker ]]; then
        mt=$MT_DOCKER_MANIFEST cmt=application/vnd.docker.container.image.v1+json
        lmt=application/vnd.docker.image.rootfs.diff.tar.gzip
    else
        mt=$MT_OCI_MANIFEST cmt=application/vnd.oci.image.config.v1+json
        lmt=application/vnd.oci.image.layer.v1.tar+gzip
    fi
    for f in "$@"; do layers+=("$(descriptor "$lmt" "$f")"); done
    jq -n --arg mt "$mt" --argjson cfg "$(descriptor "$cmt" "$cfg")" \
        --argjson layers "[$(
            IFS=,
            echo "${layers[*]}"
        )]" \
        '{schemaVersion: 2, mediaType: $mt, config: $cfg, layers: $layers}' >"$out"
}

# index_manifest KIND OUT MANIFEST... : write an index (oci) or manifest list (docker) of those manifests,
# with platforms linux/amd64, linux/arm64, linux/s390x... in order.
index_manifest() {
    local kind=$1 out=$2 mt f i=0 items=() archs=(amd64 arm64 s390x ppc64le riscv64 386)
    shift 2
    [[ $kind == docker ]] && mt=$MT_DOCKER_LIST || mt=$MT_OCI_INDEX
    for f in "$@"; do
        items+=("$(descriptor "$(jq -r .mediaType "$f")" "$f" |
            jq -c --arg a "${archs[$i]}" '. + {platform: {architecture: $a, os: "linux"}}')")
        i=$((i + 1))
    done
    jq -n --arg mt "$mt" --argjson m "[$(
        IFS=,
        echo "${items[*]}"
    )]" '{schemaVersion: 2, mediaType: $mt, manifests: $m}' >"$out"
}

# push_image REPO TAG KIND [ARCH] : push a config and two random layers, then a KIND (oci|docker)
# manifest under TAG. Sets IMG_MANIFEST (file), IMG_DIGEST, IMG_BLOBS (config and layer files).
push_image() {
    local repo=$1 tag=$2 kind=$3 arch=${4:-amd64} d=$T/img.$RANDOM$RANDOM f
    mkdir -p "$d"
    printf '{"architecture":"%s","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"nonce":"%s"}' \
        "$arch" "$RANDOM$RANDOM" >"$d/config.json"
    mkrand "$d/layer1" 3000
    mkrand "$d/layer2" 70000
    IMG_BLOBS=("$d/config.json" "$d/layer1" "$d/layer2")
    for f in "${IMG_BLOBS[@]}"; do push_blob "$repo" "$f" || return 1; done
    IMG_MANIFEST=$d/manifest.json
    image_manifest "$kind" "$IMG_MANIFEST" "${IMG_BLOBS[@]}"
    IMG_DIGEST=$(sha256_of "$IMG_MANIFEST")
    push_manifest "$repo" "$tag" "$IMG_MANIFEST"
}

# same_bytes FILE1 FILE2 : cmp, for check.
same_bytes() { cmp -- "$1" "$2"; }

# oci_layout DIR TAG NLAYERS [ARCH...] : add to the OCI image layout DIR (made if needed) an image of
# NLAYERS gzip'd tar layers of random data, tagged TAG; with two or more ARCHs, one image per
# architecture under an image index tagged TAG. Manifests are pretty-printed (to catch re-serialising).
# Prints the digest of what TAG points at.
oci_layout() {
    "$PYTHON" - "$@" <<'EOF'
import gzip, hashlib, io, json, os, random, sys, tarfile
d, tag, nlayers = sys.argv[1], sys.argv[2], int(sys.argv[3])
archs = sys.argv[4:] or ["amd64"]
os.makedirs(d + "/blobs/sha256", exist_ok=True)
def put(data):
    h = hashlib.sha256(data).hexdigest()
    with open(d + "/blobs/sha256/" + h, "wb") as f:
        f.write(data)
    return "sha256:" + h
def image(arch):
    layers, diff_ids = [], []
    for i in range(nlayers):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
            data = os.urandom(random.randint(20000, 300000))
            ti = tarfile.TarInfo("data/%s-%s-%d.bin" % (tag, arch, i))
            ti.size, ti.mtime, ti.mode = len(data), 0, 0o644
            tf.addfile(ti, io.BytesIO(data))
        raw = buf.getvalue()
        gz = gzip.compress(raw, mtime=0)
        diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
        layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": put(gz), "size": len(gz)})
    cfg = json.dumps({"architecture": arch, "os": "linux", "config": {"Cmd": ["/bin/true"]},
                      "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    m = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
         "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": put(cfg), "size": len(cfg)},
         "layers": layers}
    mb = json.dumps(m, indent=3).encode() + b"\n"
    return {"mediaType": m["mediaType"], "digest": put(mb), "size": len(mb),
            "platform": {"architecture": arch, "os": "linux"}}
if len(archs) == 1:
    top = image(archs[0])
    del top["platform"]
else:
    idx = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
           "manifests": [image(a) for a in archs]}
    ib = json.dumps(idx, indent=3).encode() + b"\n"
    top = {"mediaType": idx["mediaType"], "digest": put(ib), "size": len(ib)}
top["annotations"] = {"org.opencontainers.image.ref.name": tag}
index = {"schemaVersion": 2, "manifests": []}
if os.path.exists(d + "/index.json"):
    index = json.load(open(d + "/index.json"))
index["manifests"].append(top)
json.dump(index, open(d + "/index.json", "w"))
json.dump({"imageLayoutVersion": "1.0.0"}, open(d + "/oci-layout", "w"))
print(top["digest"])
EOF
}

# layout_blob DIR DIGEST : path of a blob in an OCI layout
layout_blob() { printf '%s/blobs/%s/%s' "$1" "${2%%:*}" "${2#*:}"; }

# layout_ref DIR TAG : the digest an OCI layout's index.json gives for TAG
layout_ref() {
    jq -r --arg t "$2" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $t) | .digest' "$1/index.json"
}

# skopeo with no signature policy file needed
sko() { skopeo --insecure-policy "$@"; }
