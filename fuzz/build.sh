#!/bin/sh
# Build the libFuzzer targets (clang with -fsanitize=fuzzer,address,undefined) as fuzz/<name>_fuzz, and optionally run
# each for a while.
#
#   fuzz/build.sh                 build every target
#   fuzz/build.sh run [SECONDS]   build, then fuzz each target for SECONDS (default 30) starting from fuzz/corpus/<name>;
#                                 new inputs go to a scratch directory, crashes to fuzz/crash-<name>-*
#   fuzz/build.sh run 60 manifest only the targets named after the seconds
#
# Environment: CC (default clang), CFLAGS (extra flags), OUT (output directory, default fuzz/).
set -eu

cd "$(dirname "$0")/.."
CC=${CC:-clang}
OUT=${OUT:-fuzz}
CFLAGS_ALL="-std=gnu11 -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
    -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers -D_GNU_SOURCE -Isrc ${CFLAGS:-}"

# target: sources and libraries beyond fuzz/fuzz_<target>.c
sources() {
    case $1 in
    digest) echo "src/oci/digest.c -lcrypto" ;;
    name) echo "src/oci/name.c" ;;
    range) echo "src/oci/range.c" ;;
    manifest) echo "src/oci/manifest.c src/oci/digest.c -ljansson -lcrypto" ;;
    config) echo "src/config/config.c src/oci/name.c -lyaml" ;;
    *) echo "unknown fuzz target $1" >&2; exit 2 ;;
    esac
}

TARGETS="digest name range manifest"
# fuzz_config.c belongs to the config module and may not exist yet
[ -f fuzz/fuzz_config.c ] && TARGETS="$TARGETS config"

MODE=build
SECONDS_EACH=30
if [ "${1:-}" = run ]; then
    MODE=run
    shift
    if [ $# -gt 0 ]; then SECONDS_EACH=$1; shift; fi
    if [ $# -gt 0 ]; then TARGETS="$*"; fi
fi

mkdir -p "$OUT"
for t in $TARGETS; do
    echo "building $OUT/${t}_fuzz"
    # shellcheck disable=SC2046,SC2086 # word splitting of the flag and source lists is intended
    $CC $CFLAGS_ALL "fuzz/fuzz_$t.c" $(sources "$t") -o "$OUT/${t}_fuzz"
done
[ $MODE = build ] && exit 0

# A dictionary of the tokens the parsers care about helps libFuzzer past the grammar quickly.
SCRATCH=$(mktemp -d)
trap 'rm -rf "$SCRATCH"' EXIT
cat > "$SCRATCH/manifest.dict" <<'EOF'
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
"null"
"true"
EOF
cat > "$SCRATCH/range.dict" <<'EOF'
"bytes="
"bytes "
"-"
","
"/*"
"18446744073709551615"
"18446744073709551616"
EOF
cat > "$SCRATCH/digest.dict" <<'EOF'
"sha256:"
"sha512:"
"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
EOF
cat > "$SCRATCH/name.dict" <<'EOF'
"/"
"__"
"--"
"."
EOF

status=0
for t in $TARGETS; do
    echo "fuzzing $t for ${SECONDS_EACH}s"
    mkdir -p "$SCRATCH/$t"
    dict=
    [ -f "$SCRATCH/$t.dict" ] && dict="-dict=$SCRATCH/$t.dict"
    # shellcheck disable=SC2086 # $dict is empty or one word
    if ! "$OUT/${t}_fuzz" -max_total_time="$SECONDS_EACH" -print_final_stats=1 -artifact_prefix="fuzz/crash-$t-" \
        $dict "$SCRATCH/$t" "fuzz/corpus/$t" > "$SCRATCH/$t.log" 2>&1; then
        status=1
        echo "FAILED: $t (log follows)"
        tail -n 60 "$SCRATCH/$t.log"
    else
        grep -E '^(#[0-9]+.*DONE|stat::number_of_executed_units|stat::peak_rss_mb)' "$SCRATCH/$t.log" || true
    fi
done
exit $status
