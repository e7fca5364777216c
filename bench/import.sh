#!/usr/bin/env bash
# berth import throughput: a docker-registry store of about SIZE_MIB, filled with skopeo, imported into empty berth roots
# on the same file system, hard-linking (the default) and copying (--copy), RUNS times each, alternating.
#   bench/import.sh [SIZE_MIB] [IMAGES] [RUNS]      (defaults: 1024 MiB, 64 images of 4 layers, 3 runs)
# Environment: BERTH (default ./berth), REGISTRY (default docker-registry), WORK (a folder on the storage volume;
# default ./bench-tmp), JOBS (berth import --jobs; default berth's). Prints each run's summary line and the median GB/s and images/s of each method. The source
# stays in the page cache between runs (as it is after a pass that read it); `sync` runs before each import so that
# the copies' writeback of one run does not weigh on the next.
set -u
SIZE_MIB=${1:-1024}
IMAGES=${2:-64}
RUNS=${3:-3}
BERTH=${BERTH:-$PWD/berth}
REGISTRY=${REGISTRY:-docker-registry}
WORK=${WORK:-$PWD/bench-tmp}
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
mkdir -p "$WORK" || exit 1
WORK=$(cd "$WORK" && pwd)
SRC=$WORK/import-src
PORT=${PORT:-15711}
pid=
trap '[[ -n $pid ]] && kill "$pid" 2>/dev/null; wait 2>/dev/null' EXIT
die() {
    echo "bench/import.sh: $*" >&2
    exit 1
}

if [[ ! -f $SRC/.done-$SIZE_MIB-$IMAGES ]]; then
    rm -rf "$SRC" "$WORK/import-layouts"
    mkdir -p "$SRC/data"
    cat >"$SRC/config.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $SRC/data
http:
  addr: 127.0.0.1:$PORT
EOF
    "$REGISTRY" serve "$SRC/config.yml" >"$WORK/import-registry.log" 2>&1 &
    pid=$!
    for ((i = 0; i < 100; i++)); do
        curl -sf -o /dev/null "http://127.0.0.1:$PORT/v2/" && break
        sleep 0.1
    done
    # IMAGES OCI layouts of 4 layers of random bytes each (not compressible, as real layers), SIZE_MIB in all
    python3 - "$WORK/import-layouts" "$SIZE_MIB" "$IMAGES" <<'EOF' || die "cannot make the layouts"
import hashlib, json, os, sys
out, size_mib, images = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
per_layer = size_mib * (1 << 20) // (images * 4)
for i in range(images):
    d = "%s/img%03d" % (out, i)
    os.makedirs(d + "/blobs/sha256")
    def put(data):
        h = hashlib.sha256(data).hexdigest()
        with open(d + "/blobs/sha256/" + h, "wb") as f:
            f.write(data)
        return {"digest": "sha256:" + h, "size": len(data)}
    layers = [dict(mediaType="application/vnd.oci.image.layer.v1.tar+gzip", **put(os.urandom(per_layer))) for _ in range(4)]
    cfg = put(json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}, "n": i}).encode())
    m = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": dict(mediaType="application/vnd.oci.image.config.v1+json", **cfg), "layers": layers}).encode()
    md = put(m)
    json.dump({"schemaVersion": 2, "manifests": [dict(mediaType="application/vnd.oci.image.manifest.v1+json",
               annotations={"org.opencontainers.image.ref.name": "v1"}, **md)]}, open(d + "/index.json", "w"))
    json.dump({"imageLayoutVersion": "1.0.0"}, open(d + "/oci-layout", "w"))
EOF
    for ((i = 0; i < IMAGES; i++)); do
        n=$(printf '%03d' "$i")
        skopeo --insecure-policy copy --dest-tls-verify=false "oci:$WORK/import-layouts/img$n:v1" \
            "docker://127.0.0.1:$PORT/bench/img$n:v1" >/dev/null || die "skopeo copy img$n failed"
    done
    kill "$pid"
    wait "$pid" 2>/dev/null
    pid=
    rm -rf "$WORK/import-layouts"
    touch "$SRC/.done-$SIZE_MIB-$IMAGES"
fi
bytes=$(du -sb --apparent-size "$SRC/data/docker/registry/v2/blobs" | cut -f1)
echo "# source: $IMAGES images, $((bytes >> 20)) MiB of blobs in $SRC/data ($(df -T "$WORK" | awk 'NR==2 {print $2}'))"
find "$SRC/data" -type f -exec cat {} + >/dev/null

declare -A gbs ips
for ((r = 1; r <= RUNS; r++)); do
    for method in link copy; do
        dst=$WORK/import-dst
        rm -rf "$dst"
        sync
        args=()
        [[ $method == copy ]] && args=(--copy)
        [[ -n ${JOBS:-} ]] && args+=(--jobs "$JOBS")
        t0=$(date +%s.%N)
        out=$(BERTH_STORAGE_ROOT=$dst BERTH_LOG_LEVEL=warn "$BERTH" import "${args[@]}" "$SRC/data") ||
            die "berth import failed: $out"
        t1=$(date +%s.%N)
        line=$(printf '%s\n' "$out" | grep '^import: [0-9]* repositories')
        echo "run $r $method: $line"
        s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
        gbs[$method]+="$(awk -v b="$bytes" -v s="$s" 'BEGIN { printf "%.3f", b / s / 1e9 }') "
        ips[$method]+="$(awk -v n="$IMAGES" -v s="$s" 'BEGIN { printf "%.1f", n / s }') "
    done
done
# the limits, for reference: hashing every blob (openssl dgst -sha256, two at a time: the machine's cores), and copying them with
# cp then sync
for ((r = 1; r <= RUNS; r++)); do
    t0=$(date +%s.%N)
    find "$SRC/data/docker/registry/v2/blobs" -name data -print0 | xargs -0 -n 16 -P 2 openssl dgst -sha256 >/dev/null
    t1=$(date +%s.%N)
    rm -rf "$WORK/import-dst"
    sync
    t2=$(date +%s.%N)
    cp -r "$SRC/data/docker/registry/v2/blobs" "$WORK/import-dst" && sync
    t3=$(date +%s.%N)
    gbs[sha256sum]+="$(awk -v b="$bytes" -v a="$t0" -v c="$t1" 'BEGIN { printf "%.3f", b / (c - a) / 1e9 }') "
    gbs[cp+sync]+="$(awk -v b="$bytes" -v a="$t2" -v c="$t3" 'BEGIN { printf "%.3f", b / (c - a) / 1e9 }') "
done
rm -rf "$WORK/import-dst"
med() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
for method in link copy; do
    echo "median $method: $(echo "${gbs[$method]}" | med) GB/s, $(echo "${ips[$method]}" | med) images/s (wall clock, the process's start included)"
done
echo "median openssl dgst -sha256 of every blob (2 at a time): $(echo "${gbs[sha256sum]}" | med) GB/s; cp -r + sync: $(echo "${gbs[cp+sync]}" | med) GB/s"
