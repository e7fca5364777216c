#!/bin/sh
# Build the libFuzzer targets (clang with -fsanitize=fuzzer,address,undefined) as $OUT/<name>_fuzz, and optionally
# run each for a while. Needs clang and its runtime libraries (Debian: clang libclang-rt-dev).
#
#   fuzz/build.sh                      build every target
#   fuzz/build.sh list                 print the targets' names
#   fuzz/build.sh run [SECONDS] [T..]  build, then fuzz each target (or those named) for SECONDS (default 30; 0: no
#                                      limit, for FUZZ_ARGS=-runs=N), starting from fuzz/corpus/<name>; new inputs
#                                      go to a scratch folder, a crash to fuzz/crash-<name>-*. Prints one line per
#                                      target, "PASS name (N executions in S s)" or "FAIL name" with the end of its
#                                      log, then "N passed, M failed"; the exit status is non-zero iff a target
#                                      failed (or did not build).
#   fuzz/build.sh merge DIR [T..]      add to fuzz/corpus/<name> the inputs of DIR/<name> that reach code or
#                                      features it does not (libFuzzer's -merge=1), after a campaign with FUZZ_WORK
#
# Environment: CC (default clang), CFLAGS (extra flags), OUT (output folder, default fuzz/), FUZZ_ARGS (more
# libFuzzer flags for run), FUZZ_SUMMARY (a file that run writes "N M" to: targets passed and failed), FUZZ_WORK (a
# folder that keeps each target's new inputs, DIR/<name>, and log, DIR/<name>.log, instead of a scratch folder).
set -eu

cd "$(dirname "$0")/.."
CC=${CC:-clang}
OUT=${OUT:-fuzz}
FLAGS="-std=gnu11 -g -O1 -fno-omit-frame-pointer -fno-sanitize-recover=undefined -Wall -Wextra -Werror
    -Wno-unused-parameter -Wno-missing-field-initializers -D_GNU_SOURCE -DH2O_USE_EPOLL=1 -Isrc -Ifuzz ${CFLAGS:-}"

TARGETS="digest name reference range manifest config scope jwt jwks route framing accept form basic forwarded challenge"

# target: the sources it tests and the libraries they need, beyond fuzz/fuzz_<target>.c
OCI="src/oci/name.c src/oci/digest.c"
PARSE="src/http/parse.c src/store/upload.c src/store/blobstore.c src/util/log.c $OCI -lh2o-evloop -lcrypto"
TOKEN="src/auth/token.c src/oci/scope.c $OCI -ljwt -ljansson -lcrypto"
sources() {
    case $1 in
    digest) echo "src/oci/digest.c -lcrypto" ;;
    name | reference) echo "$OCI -lcrypto" ;;
    range) echo "src/oci/range.c" ;;
    manifest) echo "src/oci/manifest.c src/oci/digest.c -ljansson -lcrypto" ;;
    config) echo "src/config/config.c $OCI -lyaml -lpcre2-8 -lcrypto" ;;
    scope) echo "src/oci/scope.c $OCI -lcrypto" ;;
    jwt | jwks) echo "$TOKEN" ;;
    route | framing | accept | basic) echo "$PARSE" ;;
    form) echo "src/http/response.c src/oci/errors.c src/util/log.c -lh2o-evloop -ljansson" ;;
    forwarded) echo "src/auth/limiter.c" ;;
    challenge) echo "src/mirror/challenge.c" ;;
    *) echo "unknown fuzz target $1" >&2; exit 2 ;;
    esac
}

MODE=build
SECONDS_EACH=30
case ${1:-} in
list) echo "$TARGETS"; exit 0 ;;
run)
    MODE=run
    shift
    if [ $# -gt 0 ]; then SECONDS_EACH=$1; shift; fi
    if [ $# -gt 0 ]; then TARGETS="$*"; fi
    ;;
merge)
    MODE=merge
    MERGE_FROM=${2:?merge needs the folder of a campaign (FUZZ_WORK)}
    shift 2
    if [ $# -gt 0 ]; then TARGETS="$*"; fi
    ;;
esac

# Each source is compiled once (instrumented for libFuzzer, not linked with its main), then each target is linked.
OBJ=$OUT/obj
mkdir -p "$OBJ"
built=
for t in $TARGETS; do
    objs=
    libs=
    for s in fuzz/fuzz_$t.c $(sources "$t"); do
        case $s in
        -l*) libs="$libs $s"; continue ;;
        esac
        o=$OBJ/$(echo "$s" | tr / _).o
        case " $built " in
        *" $o "*) ;;
        *)
            # shellcheck disable=SC2086 # word splitting of the flags is intended
            $CC $FLAGS -fsanitize=fuzzer-no-link,address,undefined -c "$s" -o "$o"
            built="$built $o"
            ;;
        esac
        objs="$objs $o"
    done
    echo "building $OUT/${t}_fuzz"
    # shellcheck disable=SC2086
    $CC $FLAGS -fsanitize=fuzzer,address,undefined $objs $libs -o "$OUT/${t}_fuzz"
done
[ $MODE = build ] && exit 0
if [ $MODE = merge ]; then
    # By edges and hit counts; a corpus that would grow beyond 200 files is merged by edges alone instead.
    SAVED=$(mktemp -d)
    trap 'rm -rf "$SAVED"' EXIT
    for t in $TARGETS; do
        before=$(find "fuzz/corpus/$t" -type f | wc -l)
        rm -rf "${SAVED:?}/$t" && cp -R "fuzz/corpus/$t" "$SAVED/$t"
        "$OUT/${t}_fuzz" -merge=1 "fuzz/corpus/$t" "$MERGE_FROM/$t" > "$MERGE_FROM/$t.merge.log" 2>&1
        by="edges and counts"
        if [ "$(find "fuzz/corpus/$t" -type f | wc -l)" -gt 200 ]; then
            rm -rf "fuzz/corpus/$t" && cp -R "$SAVED/$t" "fuzz/corpus/$t"
            "$OUT/${t}_fuzz" -merge=1 -use_counters=0 "fuzz/corpus/$t" "$MERGE_FROM/$t" > "$MERGE_FROM/$t.merge.log" 2>&1
            by="edges"
        fi
        echo "$t: $before -> $(find "fuzz/corpus/$t" -type f | wc -l) inputs (merged by $by)"
    done
    exit 0
fi

# Dictionaries of the tokens each grammar cares about help libFuzzer past them quickly.
SCRATCH=$(mktemp -d)
trap 'rm -rf "$SCRATCH"' EXIT
WORK=${FUZZ_WORK:-$SCRATCH}
cat > "$SCRATCH/manifest.dict" <<'DICT'
"\"schemaVersion\""
"\"mediaType\""
"\"config\""
"\"layers\""
"\"manifests\""
"\"digest\""
"\"size\""
"\"urls\""
"\"subject\""
"\"artifactType\""
"\"annotations\""
"\"application/vnd.oci.image.manifest.v1+json\""
"\"application/vnd.oci.image.index.v1+json\""
"\"application/vnd.docker.distribution.manifest.v2+json\""
"\"application/vnd.docker.distribution.manifest.list.v2+json\""
"\"application/vnd.docker.distribution.manifest.v1+json\""
"foreign"
"nondistributable"
"\"sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\""
"\\u0000"
"null"
"true"
DICT
cat > "$SCRATCH/range.dict" <<'DICT'
"bytes="
"bytes "
"-"
","
"/*"
"18446744073709551615"
"18446744073709551616"
DICT
cat > "$SCRATCH/digest.dict" <<'DICT'
"sha256:"
"sha512:"
"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
DICT
cp "$SCRATCH/digest.dict" "$SCRATCH/reference.dict"
cat > "$SCRATCH/name.dict" <<'DICT'
"/"
"__"
"--"
"."
DICT
cat > "$SCRATCH/scope.dict" <<'DICT'
"repository:"
"registry:catalog:"
"pull"
"push"
"delete"
"*"
","
" "
DICT
cat > "$SCRATCH/route.dict" <<'DICT'
"/v2/"
"/blobs/"
"/blobs/uploads/"
"/manifests/"
"/tags/list"
"/referrers/"
"/token"
"_catalog"
"0123abcd-0123-4567-89ab-0123456789ab"
"sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
DICT
cat > "$SCRATCH/framing.dict" <<'DICT'
"GET / HTTP/1.1\x0d\x0a"
"GET / HTTP/1.0\x0d\x0a"
"Host: a\x0d\x0a"
"Content-Length: 5\x0d\x0a"
"Transfer-Encoding: chunked\x0d\x0a"
"\x0d\x0a"
"\x0a"
DICT
cat > "$SCRATCH/accept.dict" <<'DICT'
"application/vnd.oci.image.manifest.v1+json"
"application/vnd.oci.image.index.v1+json"
"application/vnd.docker.distribution.manifest.v2+json"
"application/*"
"*/*"
";q=0.5"
","
DICT
cat > "$SCRATCH/form.dict" <<'DICT'
"scope="
"grant_type="
"username="
"&"
"%3A"
"%00"
"+"
DICT
cat > "$SCRATCH/challenge.dict" <<'DICT'
"realm="
"service="
"scope="
"error="
"\""
"\\"
","
DICT
cat > "$SCRATCH/jwt.dict" <<'DICT'
"\"alg\""
"\"ES256\""
"\"kid\""
"\"ext-1\""
"\"crit\""
"\"iss\""
"\"https://idp.example\""
"\"berth\""
"\"aud\""
"\"registry.test\""
"\"exp\""
"\"nbf\""
"\"iat\""
"\"sub\""
"\"jti\""
"\"gen\""
"\"tid\""
"\"access\""
"\"type\""
"\"repository\""
"\"registry\""
"\"catalog\""
"\"name\""
"\"actions\""
"\"pull\""
"2000000000"
"1700000000"
"1e15"
"\\u0000"
DICT
cat > "$SCRATCH/jwks.dict" <<'DICT'
"\"keys\""
"\"kty\""
"\"EC\""
"\"RSA\""
"\"crv\""
"\"P-256\""
"\"x\""
"\"y\""
"\"kid\""
"\"use\""
"\"sig\""
"\"alg\""
"\"ES256\""
"-----BEGIN PUBLIC KEY-----"
DICT
cat > "$SCRATCH/config.dict" <<'DICT'
"http:"
"addr:"
"max_body_size:"
"storage:"
"manifest_max_size:"
"auth:"
"token_ttl:"
"trusted_proxies:"
"mirrors:"
"- prefix:"
"upstream:"
"https://"
"timeout:"
"tag_ttl:"
"library:"
"KiB"
"MiB"
"GiB"
"ms"
"18446744073709551615"
DICT

passed=0 failed=0
for t in $TARGETS; do
    mkdir -p "$WORK/$t"
    dict=
    [ -f "$SCRATCH/$t.dict" ] && dict="-dict=$SCRATCH/$t.dict"
    start=$(date +%s)
    # shellcheck disable=SC2086 # $dict and $FUZZ_ARGS are empty or words
    if "$OUT/${t}_fuzz" -max_total_time="$SECONDS_EACH" -print_final_stats=1 -artifact_prefix="fuzz/crash-$t-" \
        $dict ${FUZZ_ARGS:-} "$WORK/$t" "fuzz/corpus/$t" > "$WORK/$t.log" 2>&1; then
        passed=$((passed + 1))
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$WORK/$t.log" | tail -n 1)
        echo "PASS $t (${execs:-?} executions in $(($(date +%s) - start)) s)"
    else
        failed=$((failed + 1))
        echo "FAIL $t (log follows)"
        tail -n 60 "$WORK/$t.log"
    fi
done
[ -n "${FUZZ_SUMMARY:-}" ] && echo "$passed $failed" > "$FUZZ_SUMMARY"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
