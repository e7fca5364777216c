#!/usr/bin/env bash
# The container image (deploy/image/build.sh, docs/container.md), as a user gets it, everything on 127.0.0.1:
#   - built from the build tree's berth: one layer, its configuration (non-root user, entry point, environment,
#     volume) and content (berth stripped, no shell, apt, dpkg or compiler, the CA bundle), its size;
#   - pushed with buildah into a berth started from the build tree, pulled back with podman (same image ID);
#   - run: it serves a push and a pull (skopeo, byte-compared), and stops on SIGTERM with status 0 in time;
#   - run again as a pull-through mirror with Docker Hub's configuration whose upstream, standing in for Docker Hub,
#     is a second berth over HTTPS (anonymous token dance): libcurl, TLS and the CA file work inside the image, and
#     an upstream whose CA is not in the image's bundle is refused.
# How it runs: `podman run` with crun. Two things stop podman's defaults on this machine, and the test works around
# both (docs/container.md): crun refuses a cgroup "hybrid mode" host whose cgroup2 hierarchy holds a controller
# ("cgroups in hybrid mode not supported, drop all controllers from cgroupv2"; here hugetlb), so the test runs in a
# mount namespace of its own without the cgroup2 mount, where crun sees cgroup v1 only; and the sandbox has no
# CAP_SYS_RESOURCE, so podman's default RLIMIT_NOFILE and RLIMIT_NPROC of 1048576 fail ("setrlimit `RLIMIT_NOFILE`:
# Operation not permitted"): the containers get limits within ours. Where podman cannot run a container at all, or with
# IMAGE_RUNNER=chroot, the image's root file system runs with unshare and chroot as the image's user, with its
# entry point and environment.
# Needs root, mmdebstrap, buildah, podman, skopeo and the Debian archive (the image is built from it).
if ((EUID == 0)) && [[ -z ${IMAGE_NS:-} && -n $(cat /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null) ]]; then
    exec env IMAGE_NS=1 unshare --mount --propagation private \
        bash -c 'umount /sys/fs/cgroup/unified && exec bash "$0"' "$0"
fi
. "$(dirname "$0")/../integration/lib.sh"

((EUID == 0)) || skip_all "needs root (mmdebstrap's root mode, podman)"
for tool in mmdebstrap buildah podman skopeo openssl; do
    command -v $tool >/dev/null || skip_all "$tool is not installed"
done

IMAGE=localhost/berth:test
UID_GID=65532:65532
NOTLS=(--src-tls-verify=false --dest-tls-verify=false)
# containers storage of the test's own (vfs: no overlay mounts to leave behind)
cat >"$T/storage.conf" <<EOF
[storage]
driver = "vfs"
graphroot = "$T/storage"
runroot = "$T/run"
EOF
export CONTAINERS_STORAGE_CONF=$T/storage.conf
P=(podman --storage-driver vfs --root "$T/storage" --runroot "$T/run" --tmpdir "$T/podman-tmp")
# the caller's limits (no CAP_SYS_RESOURCE to raise them); no cgroup of the container's own: it stays in ours
RUN_OPTS=(--cgroups=disabled --ulimit "nofile=$(ulimit -Hn):$(ulimit -Hn)" --ulimit nproc=4096:4096)
CTRS=()
cleanup_all() {
    local c
    for c in "${CTRS[@]}"; do "${P[@]}" rm -f -t 0 "$c" >/dev/null 2>&1; done
    [[ -n ${CHROOT_PID:-} ]] && kill -KILL "$CHROOT_PID" 2>/dev/null
    "${P[@]}" unmount -a >/dev/null 2>&1
    _cleanup
}
trap cleanup_all EXIT

# ---------------------------------------------------------------- build
t0=$(date +%s)
check "deploy/image/build.sh builds $IMAGE from the build tree's berth" \
    bash "$SRCDIR/deploy/image/build.sh" "$BERTH" "$IMAGE" || {
    echo "Bail out! no image"
    exit 1
}
diag "$(tail -n 1 "$T/check.out") in $(($(date +%s) - t0)) s"
"${P[@]}" image inspect "$IMAGE" >"$T/inspect.json"
cfg() { jq -c ".[0].Config.$1" "$T/inspect.json"; }
is "one layer" "$(jq '.[0].RootFS.Layers | length' "$T/inspect.json")" 1
is "runs as the non-root user $UID_GID" "$(cfg User)" "\"$UID_GID\""
is "entry point: berth serve" "$(cfg Entrypoint)" '["/usr/bin/berth","serve"]'
like "environment: BERTH_HTTP_ADDR=0.0.0.0:5000" "$(cfg Env)" '"BERTH_HTTP_ADDR=0\.0\.0\.0:5000"'
like "environment: BERTH_STORAGE_ROOT=/var/lib/berth" "$(cfg Env)" '"BERTH_STORAGE_ROOT=/var/lib/berth"'
is "volume /var/lib/berth" "$(cfg Volumes)" '{"/var/lib/berth":{}}'
IMAGE_ID=$(jq -r '.[0].Id' "$T/inspect.json")

ROOT=$("${P[@]}" image mount "$IMAGE")
is "the only program is berth" "$(find "$ROOT" -type f -perm /111 -path '*/bin/*' | sed "s|^$ROOT||")" /usr/bin/berth
check "berth is stripped (no symbol table)" bash -c "! readelf -S '$ROOT/usr/bin/berth' | grep -q '\.symtab'"
unwanted=(bin/sh usr/bin/sh usr/bin/apt* usr/bin/dpkg* usr/bin/perl* usr/bin/*gcc* var/lib/dpkg var/lib/apt)
is "no shell, apt, dpkg, perl or compiler" "$(cd "$ROOT" && ls -d "${unwanted[@]}" 2>/dev/null)" ""
is "no documentation but the packages' copyright files" \
    "$(find "$ROOT/usr/share" -type f -not -path '*/doc/*/copyright' | head -n 3)" ""
is "/var/lib/berth belongs to the user" "$(stat -c %u:%g "$ROOT/var/lib/berth")" "$UID_GID"
openssl crl2pkcs7 -nocrl -certfile "$ROOT/etc/ssl/certs/ca-certificates.crt" | openssl pkcs7 -print_certs -noout |
    grep '^subject=' >"$T/cas"
is_ca() { grep -q "CN = $1\$" "$T/cas"; }
check "CA bundle: $(grep -c . "$T/cas") certificates (over 100)" test "$(grep -c . "$T/cas")" -gt 100
check "... Amazon Root CA 1 and ISRG Root X1 among them" eval 'is_ca "Amazon Root CA 1" && is_ca "ISRG Root X1"'
check "libcurl.so.4 (dlopened for the mirrors) is in the image" test -e "$ROOT/usr/lib/x86_64-linux-gnu/libcurl.so.4"
"${P[@]}" image unmount "$IMAGE" >/dev/null

# ---------------------------------------------------------------- push, pull back
start_berth
check "buildah push $IMAGE into berth" \
    buildah push --tls-verify=false "$IMAGE" "docker://$REG/berth/berth:test"
api GET /v2/berth/berth/manifests/test -H "Accept: $MT_OCI_MANIFEST"
is "berth serves its manifest (200)" "$STATUS" 200
LAYER=$(jq -r '.layers[0].digest' "$BODY")
GZ=$(jq -r '.layers[0].size' "$BODY")
api GET "/v2/berth/berth/blobs/$LAYER"
RAW=$(gzip -dc "$BODY" | wc -c)
is "the layer as pushed is the size the manifest says" "$(size_of "$BODY")" "$GZ"
diag "image size: $((GZ / 1024)) KiB compressed (the layer's gzip, as pushed), $((RAW / 1024)) KiB uncompressed"
check "small: under 16 MiB compressed, 40 MiB uncompressed" test "$GZ" -lt $((16 << 20)) -a "$RAW" -lt $((40 << 20))

"${P[@]}" rmi -f "$IMAGE" >/dev/null 2>&1
check "podman pull it back" "${P[@]}" pull -q --tls-verify=false "$REG/berth/berth:test"
IMG=$REG/berth/berth:test
is "same image ID as built" "$("${P[@]}" image inspect --format '{{.Id}}' "$IMG")" "$IMAGE_ID"
stop_berth

# ---------------------------------------------------------------- run it
# The runner: podman run, unless podman cannot run a container here or IMAGE_RUNNER=chroot.
RUNNER=${IMAGE_RUNNER:-podman}
if [[ $RUNNER == podman ]] &&
    ! "${P[@]}" run --rm "${RUN_OPTS[@]}" --entrypoint /usr/bin/berth "$IMG" version >"$T/probe" 2>&1; then
    diag "podman cannot run a container here, the root file system runs with unshare and chroot instead:" \
        "$(cat "$T/probe")"
    RUNNER=chroot
fi
diag "runner: $RUNNER"

# ctr_start NAME PORT [-n] [-v HOSTFILE:CTRFILE]... [-e VAR=VALUE]... [-- ARGS...] : run the image detached, its
# port 5000 published on 127.0.0.1:PORT (-n: the host's network, BERTH_HTTP_ADDR=127.0.0.1:PORT); a fresh volume
# on /var/lib/berth.
ctr_start() {
    local name=$1 port=$2 hostnet=0 mounts=() envs=()
    shift 2
    while (($# > 0)); do
        case $1 in
        -n) hostnet=1 ;;
        -v | -e)
            [[ $1 == -v ]] && mounts+=("$2") || envs+=("$2")
            shift
            ;;
        --)
            shift
            break
            ;;
        esac
        shift
    done
    if [[ $RUNNER == podman ]]; then
        local net=(-p "127.0.0.1:$port:5000") m e
        ((hostnet)) && net=(--network host -e "BERTH_HTTP_ADDR=127.0.0.1:$port")
        for m in "${mounts[@]}"; do net+=(-v "$m:ro"); done
        for e in "${envs[@]}"; do net+=(-e "$e"); done
        CTRS+=("$name")
        "${P[@]}" run -d --name "$name" "${RUN_OPTS[@]}" "${net[@]}" -v "$name:/var/lib/berth" "$IMG" "$@" >/dev/null
    else
        chroot_start "$name" "$port" "$@"
    fi
}

# The fallback: the image's root file system (a podman container's, not started), run in mount and PID namespaces
# of its own with /dev and /proc, as the image's user, with its entry point and environment, on the host's network;
# its output goes through a pipe the user owns, as a runtime's does (berth's access log "-" opens /dev/stdout).
#   chroot_start NAME PORT ARGS... (with ctr_start's mounts and envs)
chroot_start() {
    local name=$1 port=$2 root binds=("${mounts[@]}" "$T/$1.vol:/var/lib/berth") b env ep user
    shift 2
    "${P[@]}" create --name "$name" "$IMG" >/dev/null
    CTRS+=("$name")
    root=$("${P[@]}" mount "$name")
    mkdir -p "$root/proc" "$root/dev" "$T/$name.vol"
    chown "$UID_GID" "$T/$name.vol"
    # the image's environment, then the caller's
    mapfile -t env < <(image_config Env)
    env+=("${envs[@]}" "BERTH_HTTP_ADDR=127.0.0.1:$port")
    mapfile -t ep < <(image_config Entrypoint)
    user=$("${P[@]}" image inspect --format '{{.Config.User}}' "$IMG")
    for b in "${binds[@]}"; do # mount points for the files
        b=$root/${b#*:}
        [[ -e $b ]] || { mkdir -p "${b%/*}" && touch "$b"; }
    done
    # shellcheck disable=SC2016
    unshare --mount --pid --fork --kill-child bash -c '
        root=$1 user=$2 nb=$3
        shift 3
        mount --rbind /dev "$root/dev" && mount -t proc proc "$root/proc" || exit 125
        chown "$user" /proc/self/fd/1 /proc/self/fd/2 || exit 125 # as crun does with a container'"'"'s stdio
        for ((i = 0; i < nb; i++)); do mount --bind "${1%%:*}" "$root/${1#*:}" || exit 125; shift; done
        exec env -i "$@"
    ' bash "$root" "$user" "${#binds[@]}" "${binds[@]}" "${env[@]}" \
        "$(command -v chroot)" --userspec="$user" "$root" "${ep[@]}" "$@" > >(cat >"$T/$name.log") 2>&1 &
    CHROOT_PID=$!
}

# image_config FIELD : the pulled image's Env or Entrypoint, one item a line
image_config() { "${P[@]}" image inspect --format "{{range .Config.$1}}{{println .}}{{end}}" "$IMG" | grep .; }

# ctr_pid NAME : berth's process ID (as seen from here)
ctr_pid() {
    if [[ $RUNNER == podman ]]; then
        "${P[@]}" inspect --format '{{.State.Pid}}' "$1"
    else
        pgrep -x -P "$CHROOT_PID" berth # (its other child is the cat of its output)
    fi
}
ctr_logs() { if [[ $RUNNER == podman ]]; then "${P[@]}" logs "$1" 2>&1; else cat "$T/$1.log"; fi; }

# ctr_wait_up URL : the container's berth answers /healthz within 20 s
ctr_wait_up() {
    local i code
    for ((i = 0; i < 200; i++)); do
        code=$(curl -s --noproxy '*' --max-time 2 -o /dev/null -w '%{http_code}' "$1/healthz")
        [[ $code == 200 ]] && return 0
        sleep 0.1
    done
    return 1
}

# ctr_stop NAME : SIGTERM to berth (PID 1 in the container); sets STOP_RC (its exit status) and STOP_SECS
ctr_stop() {
    local t i
    t=$(date +%s.%N)
    STOP_RC=none
    if [[ $RUNNER == podman ]]; then
        "${P[@]}" kill --signal TERM "$1" >/dev/null
        STOP_RC=$(timeout 40 "${P[@]}" wait "$1")
    else
        # unshare passes no signal on: its child berth is PID 1 of the new PID namespace
        kill -TERM "$(ctr_pid "$1")"
        for ((i = 0; i < 400; i++)); do
            _alive "$CHROOT_PID" || break
            sleep 0.1
        done
        _alive "$CHROOT_PID" || { wait "$CHROOT_PID"; STOP_RC=$?; CHROOT_PID=; }
    fi
    STOP_SECS=$(awk -v a="$t" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
}

# ---------------------------------------------------------------- serve a push and a pull, stop
PORT=$(free_port)
ctr_start berth-serve "$PORT" -e BERTH_MODE=open
check "the container serves /healthz on 127.0.0.1:$PORT" ctr_wait_up "http://127.0.0.1:$PORT" ||
    diag "$(ctr_logs berth-serve | tail -n 20)"
like "berth listens as the image says (BERTH_HTTP_ADDR)" "$(ctr_logs berth-serve)" \
    "berth listening on (0\.0\.0\.0:5000|127\.0\.0\.1:$PORT)"
pid=$(ctr_pid berth-serve)
is "berth runs as $UID_GID" "$(awk '/^Uid:/ { u = $2 } /^Gid:/ { g = $2 } END { print u ":" g }' "/proc/$pid/status")" \
    "$UID_GID"
oci_layout "$T/src" small 2 >/dev/null
check "skopeo copy a small image into the container's berth" \
    sko copy -q "${NOTLS[@]}" "oci:$T/src:small" "docker://127.0.0.1:$PORT/demo/small:1"
check "skopeo copy it back out" sko copy -q "${NOTLS[@]}" "docker://127.0.0.1:$PORT/demo/small:1" "oci:$T/back:small"
M=$(layout_ref "$T/src" small)
is "same manifest digest back" "$(layout_ref "$T/back" small)" "$M"
n=0 same=0
for d in $M $(jq -r '.config.digest, .layers[].digest' "$(layout_blob "$T/src" "$M")"); do
    n=$((n + 1))
    cmp -s "$(layout_blob "$T/src" "$d")" "$(layout_blob "$T/back" "$d")" && same=$((same + 1))
done
is "manifest, config and 2 layers byte for byte ($same of $n)" "$same/$n" 4/4
ctr_stop berth-serve
is "SIGTERM: berth exits with status 0 (in $STOP_SECS s; shutdown timeout 30 s)" "$STOP_RC" 0
check "... within the shutdown timeout" awk -v s="$STOP_SECS" 'BEGIN { exit !(s < 30) }'

# ---------------------------------------------------------------- pull-through mirror over HTTPS
# The upstream stands in for Docker Hub: HTTPS with a certificate of its own CA, mode public (anonymous pulls of
# public repositories through the token dance, as Docker Hub does).
PKI=$T/pki
mkdir -p "$PKI/certs"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -keyout "$PKI/key.pem" \
    -out "$PKI/cert.pem" -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 >"$PKI/openssl.log" 2>&1
cp "$PKI/cert.pem" "$PKI/certs/ca.crt"
UP_PW=upstream-Secret-31
start_berth BERTH_MODE=public BERTH_ADMIN_PASSWORD="$UP_PW" \
    BERTH_HTTP_TLS_CERTIFICATE="$PKI/cert.pem" BERTH_HTTP_TLS_KEY="$PKI/key.pem"
check "seed the upstream: library/hello:1" sko copy -q --dest-cert-dir "$PKI/certs" --dest-creds "admin:$UP_PW" \
    "oci:$T/src:small" "docker://$REG/library/hello:1"
# Docker Hub's configuration (docs/mirror.md) with the upstream's address
cat >"$T/mirror.yaml" <<EOF
mode: public
mirrors:
  - prefix: ""
    upstream: https://$REG
    ns: docker.io
    timeout: 10s
EOF
chmod 644 "$T/mirror.yaml"

# without the upstream's CA: the image's bundle does not trust it
MPORT=$(free_port)
ctr_start berth-mirror-untrusted "$MPORT" -n -v "$T/mirror.yaml:/etc/berth/berth.yaml" -- -c /etc/berth/berth.yaml
check "the mirror container serves /healthz" ctr_wait_up "http://127.0.0.1:$MPORT"
api GET "http://127.0.0.1:$MPORT/v2/library/hello/manifests/1" -H "Accept: $MT_OCI_MANIFEST"
like "an upstream whose CA is not in the image's bundle: no manifest (5xx)" "$STATUS" '^5[0-9][0-9]$'
like "... the log says why (libcurl: the certificate)" "$(ctr_logs berth-mirror-untrusted)" "SSL certificate problem"
ctr_stop berth-mirror-untrusted
is "... SIGTERM: exit status 0 (in $STOP_SECS s)" "$STOP_RC" 0

# with the upstream's CA added to the image's bundle (as a site with its own CA would)
ROOT=$("${P[@]}" image mount "$IMG")
cat "$PKI/cert.pem" "$ROOT/etc/ssl/certs/ca-certificates.crt" >"$T/bundle.crt"
"${P[@]}" image unmount "$IMG" >/dev/null
chmod 644 "$T/bundle.crt"
MPORT=$(free_port)
ctr_start berth-mirror "$MPORT" -n -v "$T/mirror.yaml:/etc/berth/berth.yaml" \
    -v "$T/bundle.crt:/etc/ssl/certs/ca-certificates.crt" -- -c /etc/berth/berth.yaml
check "the mirror container serves /healthz" ctr_wait_up "http://127.0.0.1:$MPORT"
check "skopeo pulls library/hello:1 through the containerised mirror" \
    sko copy -q "${NOTLS[@]}" "docker://127.0.0.1:$MPORT/library/hello:1" "oci:$T/mirrored:hello"
is "... the upstream's manifest digest" "$(layout_ref "$T/mirrored" hello)" "$M"
n=0 same=0
for d in $M $(jq -r '.config.digest, .layers[].digest' "$(layout_blob "$T/src" "$M")"); do
    n=$((n + 1))
    cmp -s "$(layout_blob "$T/src" "$d")" "$(layout_blob "$T/mirrored" "$d")" && same=$((same + 1))
done
is "... manifest, config and layers byte for byte ($same of $n)" "$same/$n" 4/4
like "the upstream saw the mirror's fetches (berth-mirror/ user agent)" "$(cat "$SRV/access.log")" 'berth-mirror/'
ctr_stop berth-mirror
is "SIGTERM: the mirror exits with status 0 (in $STOP_SECS s)" "$STOP_RC" 0
stop_berth
diag "test time $(($(date +%s) - t0)) s"
done_testing
