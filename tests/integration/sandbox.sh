#!/usr/bin/env bash
# berth works in berth.service's sandbox. No systemd runs as process 1 here (so no systemctl, no systemd-run): the
# sandbox is made by hand from the unit's own settings, each as systemd sets it up: the system call filter, its error
# number, the socket families and the W^X rule (sandbox.py, with libseccomp), no_new_privs, an unprivileged user with
# no capability left in any set (setpriv), and every file system read-only but the storage root (a mount namespace:
# ProtectSystem=strict with ReadWritePaths=). Not made: the namespaces of PrivateTmp, PrivateDevices, PrivateUsers,
# ProtectProc and the like (they hide things from berth; berth uses none of them). In it berth serves pushes and pulls
# (HTTP/1 and HTTP/2, a body over 1 MiB spooled to <root>/tmp), issues and checks tokens, fetches from an upstream as a
# mirror (libcurl opened at run time, its threads) and stops cleanly; nothing forbidden is refused in its log. And the
# sandbox holds: what it forbids fails in it.
. "$(dirname "$0")/lib.sh"

((EUID == 0)) || skip_all "needs root (a mount namespace, setpriv)"
for c in systemd-analyze unshare setpriv; do command -v "$c" >/dev/null || skip_all "no $c"; done
/usr/bin/python3 -c 'import seccomp' 2>/dev/null || skip_all "no python3-seccomp (Debian package; .ci/run installs it)"
unshare --mount true 2>/dev/null || skip_all "cannot make a mount namespace here"

# everything berth reads as nobody must be reachable: $T is 0700
chmod 0711 "$T"
UNIT=$T/berth.service
install -m 0644 "$SRCDIR/deploy/berth.service.in" "$UNIT"
install -m 0755 "$SRCDIR/tests/integration/sandbox.py" "$T/sandbox.py"
REAL=$BERTH
# $T/sandboxed COMMAND... : COMMAND in the sandbox; the only places it may write are BERTH_STORAGE_ROOT and the folder
# of BERTH_LOG_ACCESS (the unit's StateDirectory and LogsDirectory), made and given to nobody here
cat >"$T/sandboxed" <<'EOF'
#!/bin/bash
set -euo pipefail
# an ASan build: LeakSanitizer stops the threads with ptrace at exit, which the filter refuses (as it should); the
# other tests check for leaks
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
rw=("${BERTH_STORAGE_ROOT:?}")
[[ ${BERTH_LOG_ACCESS:-} == /* ]] && rw+=("$(dirname "$BERTH_LOG_ACCESS")")
mkdir -p "${rw[@]}"
chown nobody:nogroup "${rw[@]}"
exec unshare --mount --propagation private -- bash -c '
    set -euo pipefail
    dir=$1 n=$2
    shift 2
    rw=("${@:1:n}")
    shift "$n"
    for d in "${rw[@]}"; do mount --bind "$d" "$d"; done
    while read -r mp; do
        case $mp in /proc | /proc/* | /sys | /sys/* | /dev | /dev/*) continue ;; esac
        for d in "${rw[@]}"; do [[ $mp == "$d" ]] && continue 2; done
        mount -o remount,bind,ro "$mp"
    done < <(awk "{ print \$5 }" /proc/self/mountinfo | grep -v "\\\\" | sort -u)
    exec setpriv --reuid=nobody --regid=nogroup --clear-groups --bounding-set=-all --inh-caps=-all --ambient-caps=-all \
        --no-new-privs -- /usr/bin/python3 "$dir/sandbox.py" "$dir/berth.service" "$@"
' _ "$(dirname "$0")" "${#rw[@]}" "${rw[@]}" "$@"
EOF
chmod 0755 "$T/sandboxed"
printf '#!/bin/bash\nexec "%s" "%s" "$@"\n' "$T/sandboxed" "$REAL" >"$T/berth"
chmod 0755 "$T/berth"

# ------------------------------------------------------------ the sandbox holds
export BERTH_STORAGE_ROOT=$T/probe
unset BERTH_LOG_ACCESS
try() { "$T/sandboxed" /usr/bin/python3 -c "$1" 2>&1; }
is "in the sandbox: running as nobody, no capability" \
    "$(try 'import os; print(os.getuid(), open("/proc/self/status").read().split("CapEff:\t")[1].split()[0])')" \
    "65534 0000000000000000"
like "... a file outside the storage root cannot be written (ProtectSystem=strict)" \
    "$(try 'open("/var/tmp/berth-sandbox-probe", "w")')" 'Read-only file system'
like "... the storage root can" "$(try 'import os; open(os.environ["BERTH_STORAGE_ROOT"] + "/probe", "w"); print("written")')" \
    '^written$'
like "... no netlink socket (RestrictAddressFamilies)" "$(try 'import socket; socket.socket(socket.AF_NETLINK, socket.SOCK_RAW)')" \
    'Address family not supported'
like "... no memory writable and executable (MemoryDenyWriteExecute)" \
    "$(try 'import mmap; mmap.mmap(-1, 4096, prot=mmap.PROT_WRITE | mmap.PROT_EXEC)')" 'Operation not permitted'
like "... no system call outside the filter (SystemCallFilter: swapoff, @privileged)" \
    "$(try 'import ctypes; l = ctypes.CDLL(None, use_errno=True); print(l.swapoff(b"/x"), ctypes.get_errno())')" '^-1 1$'
like "... no setrlimit beyond the limits (@resources is out, prlimit64 is in)" \
    "$(try 'import resource; s, h = resource.getrlimit(resource.RLIMIT_NOFILE); resource.setrlimit(resource.RLIMIT_NOFILE, (h, h)); print("ok")')" \
    '^ok$'
unset BERTH_STORAGE_ROOT

# ------------------------------------------------------------ berth in it
BERTH=$T/berth
start_berth BERTH_LOG_ACCESS="$T/log1/access.log" # as the unit: a file in its LogsDirectory
check "berth runs as nobody" bash -c '[[ $(stat -c %U "/proc/$1") == nobody ]]' _ "$BERTH_PID"
api GET /readyz
is "GET /readyz -> 200" "$STATUS" 200
push_image sb/app v1 oci
is "push an image (blobs, manifest)" "$STATUS" 201
api GET /v2/sb/app/manifests/v1
is "pull its manifest" "$STATUS" 200
check "... the same bytes" same_bytes "$BODY" "$IMG_MANIFEST"
mkrand "$T/big" $((3 * 1024 * 1024))
D=$(sha256_of "$T/big")
api POST "/v2/sb/big/blobs/uploads/?digest=$D" --http2-prior-knowledge -H 'Content-Type: application/octet-stream' \
    --data-binary "@$T/big"
is "HTTP/2 push of 3 MiB (h2o spools it to <root>/tmp, mmapped)" "$STATUS" 201
api GET "/v2/sb/big/blobs/$D"
check "... pulled back" same_bytes "$BODY" "$T/big"
stop_berth
like "berth's log: no refusal" "$(grep -icE 'not permitted|permission denied|read-only file system|EPERM|EACCES' \
    "$SRV/berth.log")" '^0$'
check "the access log, in the unit's LogsDirectory, has the requests" \
    grep -qF '"GET /v2/sb/app/manifests/v1 HTTP/1.1" 200 ' "$T/log1/access.log"

start_berth BERTH_LOG_ACCESS="$T/log2/access.log" BERTH_MODE=private BERTH_ADMIN_PASSWORD=sandbox-pw
api GET "/token?service=berth&scope=repository:admin/x:push,pull" -u admin:sandbox-pw
is "mode private: a token for the admin (password hashing, ES256 signing)" "$STATUS" 200
TOKEN=$(jq -r .token "$BODY")
api GET /v2/ -H "Authorization: Bearer $TOKEN"
is "... which berth accepts" "$STATUS" 200
stop_berth

# the mirror: an upstream berth outside the sandbox, the mirror in it
BERTH=$REAL
start_berth
UP_URL=$URL UP_PID=$BERTH_PID UP_SRV=$SRV
push_image library/app v1 oci
UP_DIGEST=$IMG_DIGEST
printf 'mirrors:\n  - prefix: ""\n    upstream: %s\n    ns: docker.io\n' "$UP_URL" >"$T/mirror.yaml"
chmod 0644 "$T/mirror.yaml"
BERTH=$T/berth
start_berth BERTH_LOG_ACCESS="$T/log3/access.log" BERTH_CONFIG="$T/mirror.yaml"
api GET "/v2/library/app/manifests/v1?ns=docker.io"
is "mirror: a pull fetched from the upstream (libcurl, the fetch threads)" "$STATUS" 200
is "... the upstream's manifest" "$(hdr Docker-Content-Digest)" "$UP_DIGEST"
check "... and its layers" bash -c 'for d in $(jq -r ".layers[].digest" "$1"); do
    curl -sf -o /dev/null "$2/v2/library/app/blobs/$d?ns=docker.io" || exit 1; done' _ "$BODY" "$URL"
stop_berth
like "berth's log: no refusal" "$(grep -icE 'not permitted|permission denied|read-only file system|EPERM|EACCES' \
    "$SRV/berth.log")" '^0$'
BERTH_PID=$UP_PID SRV=$UP_SRV
stop_berth

# journald gives a service a socket as standard output: with log.access "-" berth writes to its descriptor 1 (h2o
# alone would reopen /dev/stdout by its path, which a socket refuses with ENXIO, and berth would not start)
/usr/bin/python3 - "$REAL" "$T/sock" >"$T/sock.out" 2>&1 <<'EOF'
import os, socket, subprocess, sys, time
a, b = socket.socketpair()
s = socket.socket()
s.bind(("127.0.0.1", 0))
port = s.getsockname()[1]
s.close()
env = dict(os.environ, BERTH_STORAGE_ROOT=sys.argv[2], BERTH_HTTP_ADDR="127.0.0.1:%d" % port, BERTH_LOG_ACCESS="-")
p = subprocess.Popen([sys.argv[1], "serve"], stdout=b, stderr=subprocess.STDOUT, env=env)
for _ in range(30):
    time.sleep(0.1)
    if p.poll() is not None:
        break
print("running" if p.poll() is None else "exited %d" % p.returncode)
if p.poll() is None:
    p.terminate()
    p.wait()
EOF
is "log.access \"-\" with a socket as standard output (journald's): berth starts" \
    "$(cat "$T/sock.out")" running

done_testing
