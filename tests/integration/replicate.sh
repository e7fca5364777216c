#!/usr/bin/env bash
# Replication (the `replication:` rules, `berth replicate`), end to end, everything on 127.0.0.1:
#   - the source is a berth in mode open, seeded by skopeo (a single image, a two-platform index, a nested name, a
#     name no rule covers) and by curl (a referrer: an artifact whose subject is an image);
#   - destinations: a second berth in mode private (the token dance with the rule's credentials, from a
#     password_file), and a real docker-registry (CNCF distribution 2.8) with no auth;
#   - `berth replicate RULE [--dry-run]` beside the running source: what it prints, what the destination serves
#     (skopeo inspect --raw and copy --all: the same digests, byte for byte), and a second run that copies nothing
#     (the destination's access log: no POST, PUT or PATCH);
#   - a pull rule from docker-registry with a tag pattern and a local prefix, written into the running source, which
#     serves the pulled images at once;
#   - patterns: names and tags outside a rule's patterns stay behind;
#   - wrong credentials: a clear error, exit status 1, nothing written at the destination;
#   - resumable: the CLI killed (SIGKILL) in the middle of a large blob, sent through a slow proxy; run again, it
#     completes without sending the blobs it had finished.
. "$(dirname "$0")/lib.sh"

command -v skopeo >/dev/null || skip_all "skopeo is not installed"
command -v docker-registry >/dev/null || skip_all "docker-registry is not installed (Debian package docker-registry)"

DST_PW=dest-Secret-41
REPL_N=${REPL_N:-20}
REPL_LAYER_KB=${REPL_LAYER_KB:-1024}
NOTLS=(--src-tls-verify=false --dest-tls-verify=false)

# ---------------------------------------------------------------- servers
# lib.sh knows one current server; `use src|dst` switches it (as mirror.sh does).
CUR=
use() {
    case $CUR in
    src) SRC_PID=$BERTH_PID SRC_SAN=$_san_off ;;
    dst) DST_PID=$BERTH_PID DST_SAN=$_san_off ;;
    esac
    CUR=$1
    if [[ $1 == src ]]; then
        BERTH_PID=$SRC_PID SRV=$SRC_SRV DATA=$SRC_DATA PORT=$SRC_PORT REG=$SRC_REG URL=$SRC_URL _san_off=$SRC_SAN
        BERTH_ENV=("${SRC_ENV[@]}")
    else
        BERTH_PID=$DST_PID SRV=$DST_SRV DATA=$DST_DATA PORT=$DST_PORT REG=$DST_REG URL=$DST_URL _san_off=$DST_SAN
        BERTH_ENV=("${DST_ENV[@]}")
    fi
}
remember() { # the current server's settings, under its name
    local p=${CUR^^}
    eval "${p}_PID=\$BERTH_PID ${p}_SRV=\$SRV ${p}_DATA=\$DATA ${p}_PORT=\$PORT ${p}_REG=\$REG ${p}_URL=\$URL"
    eval "${p}_SAN=\$_san_off ${p}_ENV=(\"\${BERTH_ENV[@]}\")"
}

REGISTRY_PID= PROXY_PID= CLI_PID=
cleanup_all() {
    local p
    for p in $REGISTRY_PID $PROXY_PID $CLI_PID; do
        kill -KILL "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    [[ $CUR == src ]] && p=${DST_PID:-} || p=${SRC_PID:-}
    if [[ -n $p ]]; then
        kill -KILL "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    fi
    _cleanup
}
trap cleanup_all EXIT

# The destination berth: private, its administrator the rules' account.
CUR=dst
start_berth BERTH_MODE=private BERTH_ADMIN_PASSWORD=$DST_PW
remember
printf '%s\n' "$DST_PW" >"$T/dst.password"
chmod 600 "$T/dst.password"

# docker-registry, no auth, deletes enabled
RG_PORT=$(free_port)
RG=127.0.0.1:$RG_PORT
mkdir -p "$T/registry"
cat >"$T/registry/config.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: $T/registry/data
  delete:
    enabled: true
http:
  addr: $RG
EOF
docker-registry serve "$T/registry/config.yml" >"$T/registry/log" 2>&1 &
REGISTRY_PID=$!
for ((i = 0; i < 100; i++)); do
    [[ $(curl -s -o /dev/null -w '%{http_code}' "http://$RG/v2/") == 200 ]] && break
    sleep 0.1
done
is "docker-registry 2.8 serves /v2/ on $RG" "$(curl -s -o /dev/null -w '%{http_code}' "http://$RG/v2/")" 200

# A slow way to the destination berth (uploads at 8 MB/s), for the interrupted run.
"$PYTHON" "$(dirname "$0")/throttle_proxy.py" "$T/proxy.port" "$DST_REG" 8000000 &
PROXY_PID=$!
for ((i = 0; i < 50; i++)); do
    [[ -s $T/proxy.port ]] && break
    sleep 0.1
done
SLOW=127.0.0.1:$(cat "$T/proxy.port")

CONF=$T/berth.yaml
write_conf() { # the source's rules; $1: the on_push rule's extra lines, $2: the scheduled pull rule's
    cat >"$CONF" <<EOF
replication:
  - name: tob
    remote: http://$DST_REG
    username: admin
    password_file: $T/dst.password
    repositories: ["team/**"]
  - name: toreg
    remote: http://$RG
    repositories: team/app
    remote_prefix: backup/
  - name: fromreg
    direction: pull
    remote: http://$RG
    repositories: ["upstream/*"]
    tags: "1.*"
    local_prefix: pulled/
  - name: badcreds
    remote: http://$DST_REG
    username: admin
    password: not-the-password
    repositories: ["team/**"]
    remote_prefix: bad/
  - name: slow
    remote: http://$SLOW
    username: admin
    password_file: $T/dst.password
    repositories: big/*
${1:-}
${2:-}
EOF
}
write_conf

# The source berth: open (skopeo pushes without credentials), with the rules.
CUR=src
start_berth BERTH_CONFIG="$CONF"
remember

# replicate ARGS... : `berth replicate` on the source's storage, beside its server; output in $OUT, status in $RC
replicate() {
    OUT=$(env BERTH_STORAGE_ROOT="$SRC_DATA" BERTH_LOG_LEVEL=warn "$BERTH" -c "$CONF" replicate "$@" 2>&1)
    RC=$?
}
# dst_mark / dst_writes : the destination's access log from the mark on: requests that write (POST, PUT, PATCH)
dst_mark() { MARK=$(wc -l <"$DST_SRV/access.log"); }
dst_writes() { tail -n +$((MARK + 1)) "$DST_SRV/access.log" | grep -cE '"(POST|PUT|PATCH) ' || true; }
dst_inspect() { skopeo inspect --raw --tls-verify=false --creds "admin:$DST_PW" "docker://$DST_REG/$1"; }
raw_digest() { printf 'sha256:%s' "$(sha256sum | cut -d' ' -f1)"; }

# ---------------------------------------------------------------- seed the source
SRC_LAYOUT=$T/layout
D_ONE=$(oci_layout "$SRC_LAYOUT" one 2)
D_MULTI=$(oci_layout "$SRC_LAYOUT" multi 2 amd64 arm64)
D_TOOL=$(oci_layout "$SRC_LAYOUT" tool 1)
D_OTHER=$(oci_layout "$SRC_LAYOUT" other 1)
check "skopeo pushes team/app:v1 to the source" sko copy "${NOTLS[@]}" "oci:$SRC_LAYOUT:one" "docker://$SRC_REG/team/app:v1"
check "skopeo pushes the two-platform index team/app:multi" \
    sko copy --all "${NOTLS[@]}" "oci:$SRC_LAYOUT:multi" "docker://$SRC_REG/team/app:multi"
check "skopeo pushes team/sub/tool:v1" sko copy "${NOTLS[@]}" "oci:$SRC_LAYOUT:tool" "docker://$SRC_REG/team/sub/tool:v1"
check "skopeo pushes other/x:v1 (no rule covers it)" \
    sko copy "${NOTLS[@]}" "oci:$SRC_LAYOUT:other" "docker://$SRC_REG/other/x:v1"
# a referrer of team/app:v1: an artifact manifest whose subject is the image
printf '{"signature":"%s"}' "$RANDOM$RANDOM" >"$T/sig.json"
check "a referrer's blob is pushed" push_blob team/app "$T/sig.json"
empty_cfg='{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2}'
printf '{}' >"$T/empty.json"
push_blob team/app "$T/empty.json" >/dev/null
ONE_SIZE=$(sko inspect --raw --tls-verify=false "docker://$SRC_REG/team/app:v1" | wc -c)
jq -n --argjson cfg "$empty_cfg" --arg sig "$(sha256_of "$T/sig.json")" --argjson sigsize "$(size_of "$T/sig.json")" \
    --arg subj "$D_ONE" --argjson subjsize "$ONE_SIZE" \
    '{schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
      artifactType: "application/vnd.example.signature", config: $cfg,
      layers: [{mediaType: "application/octet-stream", digest: $sig, size: $sigsize}],
      subject: {mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $subj, size: $subjsize}}' \
    >"$T/referrer.json"
D_REFERRER=$(sha256_of "$T/referrer.json")
check "the referrer is pushed by digest" push_manifest team/app "$D_REFERRER" "$T/referrer.json"

# ---------------------------------------------------------------- berth -> berth, from the CLI
dst_mark
replicate tob --dry-run
is "replicate --dry-run: exit status 0" "$RC" 0 || diag "$OUT"
like "replicate --dry-run: lists the images it would push" "$OUT" "would push team/app:multi .*would push team/app:v1 "
like "replicate --dry-run: counts them" "$OUT" "would copy 3 images"
is "replicate --dry-run: the destination was not written to" "$(dst_writes)" 0

dst_mark
replicate tob
is "replicate tob: exit status 0" "$RC" 0 || diag "$OUT"
like "replicate tob: prints the images it pushed" "$OUT" "pushed team/app:multi \\($D_MULTI\\)"
like "replicate tob: prints a summary with images, blobs, bytes and time" "$OUT" \
    "replicate tob \\(push to http://$DST_REG\\): copied 3 images \\(6 manifests\\), [0-9]+ blobs, [0-9]+ bytes \\([0-9.]+ MB/s\\).* [0-9.]+ s"
is "the destination serves team/app:v1 byte for byte (same digest)" "$(dst_inspect team/app:v1 | raw_digest)" "$D_ONE"
is "the destination serves the index team/app:multi byte for byte" "$(dst_inspect team/app:multi | raw_digest)" "$D_MULTI"
is "the destination serves team/sub/tool:v1 (team/** covers nested names)" \
    "$(dst_inspect team/sub/tool:v1 | raw_digest)" "$D_TOOL"
check "skopeo copies team/app:multi --all back from the destination" \
    sko copy --all "${NOTLS[@]}" --src-creds "admin:$DST_PW" "docker://$DST_REG/team/app:multi" "oci:$T/back:multi"
is "what comes back is the same index" "$(layout_ref "$T/back" multi)" "$D_MULTI"
check "and every blob of both platforms came back" \
    bash -c "for f in $T/back/blobs/sha256/*; do [[ \$(sha256sum <\$f | cut -c1-64) == \${f##*/} ]] || exit 1; done"
is "the referrer went with its subject" "$(dst_inspect "team/app@$D_REFERRER" | raw_digest)" "$D_REFERRER"
api GET "$DST_URL/v2/team/app/referrers/$D_ONE" -u "admin:$DST_PW"
is "the destination lists it as a referrer of team/app:v1" "$(jq -r '.manifests[0].digest' "$BODY")" "$D_REFERRER"
api GET "$DST_URL/v2/other/x/tags/list" -u "admin:$DST_PW"
is "other/x, outside the rule's patterns, is not at the destination" "$STATUS" 404

dst_mark
replicate tob
is "a second run: exit status 0" "$RC" 0 || diag "$OUT"
like "a second run copies nothing" "$OUT" "copied 0 images \\(0 manifests\\), 0 blobs, 0 bytes.* 3 tags up to date"
is "a second run writes nothing at the destination (no POST, PUT or PATCH in its access log)" "$(dst_writes)" 0

# ---------------------------------------------------------------- berth -> docker-registry
replicate toreg
is "replicate toreg (to docker-registry): exit status 0" "$RC" 0 || diag "$OUT"
like "it pushed the two tags of team/app under the remote prefix backup/" "$OUT" "copied 2 images"
is "docker-registry serves backup/team/app:v1 with the same digest" \
    "$(sko inspect --raw --tls-verify=false "docker://$RG/backup/team/app:v1" | raw_digest)" "$D_ONE"
is "docker-registry serves the index backup/team/app:multi with the same digest" \
    "$(sko inspect --raw --tls-verify=false "docker://$RG/backup/team/app:multi" | raw_digest)" "$D_MULTI"
check "skopeo pulls backup/team/app:multi --all back from docker-registry" \
    sko copy --all "${NOTLS[@]}" "docker://$RG/backup/team/app:multi" "oci:$T/back2:multi"
is "the same index comes back" "$(layout_ref "$T/back2" multi)" "$D_MULTI"
api GET "http://$RG/v2/backup/team/sub/tool/tags/list"
is "team/sub/tool is not there: the rule names team/app only" "$STATUS" 404
replicate toreg
like "a second run to docker-registry copies nothing" "$OUT" "copied 0 images .* 2 tags up to date"

# ---------------------------------------------------------------- docker-registry -> berth (pull rule)
U_LAYOUT=$T/upstream
D_U10=$(oci_layout "$U_LAYOUT" u10 2)
D_U11=$(oci_layout "$U_LAYOUT" u11 1 amd64 arm64)
D_U20=$(oci_layout "$U_LAYOUT" u20 1)
sko copy "${NOTLS[@]}" "oci:$U_LAYOUT:u10" "docker://$RG/upstream/base:1.0" >/dev/null 2>&1
sko copy --all "${NOTLS[@]}" "oci:$U_LAYOUT:u11" "docker://$RG/upstream/base:1.1" >/dev/null 2>&1
sko copy "${NOTLS[@]}" "oci:$U_LAYOUT:u20" "docker://$RG/upstream/base:2.0" >/dev/null 2>&1
check "skopeo seeds docker-registry with upstream/base:1.0, 1.1 (an index) and 2.0" \
    sko inspect --raw --tls-verify=false "docker://$RG/upstream/base:2.0"
replicate fromreg
is "replicate fromreg (a pull rule): exit status 0" "$RC" 0 || diag "$OUT"
like "it pulled the tags matching 1.* into pulled/upstream/base" "$OUT" \
    "pulled pulled/upstream/base:1.0 $D_U10 from http://$RG/upstream/base.*copied 2 images"
is "the running source serves pulled/upstream/base:1.0 at once, same digest" \
    "$(sko inspect --raw --tls-verify=false "docker://$SRC_REG/pulled/upstream/base:1.0" | raw_digest)" "$D_U10"
check "skopeo copies pulled/upstream/base:1.1 --all from the source" \
    sko copy --all "${NOTLS[@]}" "docker://$SRC_REG/pulled/upstream/base:1.1" "oci:$T/back3:u11"
is "the same index" "$(layout_ref "$T/back3" u11)" "$D_U11"
api GET "/v2/pulled/upstream/base/manifests/2.0"
is "2.0, outside the tag pattern, was not pulled" "$STATUS" 404
replicate fromreg
like "a second pull copies nothing" "$OUT" "copied 0 images \\(0 manifests\\), 0 blobs.* 2 tags up to date"
check "berth fsck --verify finds the pulled content whole" env BERTH_STORAGE_ROOT="$SRC_DATA" "$BERTH" fsck --verify

# ---------------------------------------------------------------- wrong credentials
dst_mark
replicate badcreds
is "wrong credentials: exit status 1" "$RC" 1
like "wrong credentials: the error says the remote refused them" "$OUT" "http://$DST_REG refused the credentials"
is "wrong credentials: nothing written at the destination" "$(dst_writes)" 0
[[ $OUT == *"$DST_PW"* || $OUT == *not-the-password* ]] && fail "no password in the output" "$OUT" ||
    pass "no password in the output"

# ---------------------------------------------------------------- resumable
BIG_LAYOUT=$T/big
D_BIG=$(oci_layout "$BIG_LAYOUT" big 3)
mkrand "$T/bigblob" $((48 << 20))
# add a 48 MiB layer last to the image of big: rewrite its manifest (the layout's helper makes small layers)
"$PYTHON" - "$BIG_LAYOUT" "$T/bigblob" <<'EOF'
import hashlib, json, os, sys
d, big = sys.argv[1], open(sys.argv[2], "rb").read()
def put(b):
    h = hashlib.sha256(b).hexdigest()
    open(f"{d}/blobs/sha256/{h}", "wb").write(b)
    return "sha256:" + h
idx = json.load(open(d + "/index.json"))
top = idx["manifests"][-1]
m = json.load(open(d + "/blobs/" + top["digest"].replace(":", "/")))
m["layers"].append({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": put(big), "size": len(big)})
mb = json.dumps(m).encode()
top["digest"], top["size"] = put(mb), len(mb)
json.dump(idx, open(d + "/index.json", "w"))
EOF
check "skopeo pushes big/img:v1 (a 48 MiB layer last) to the source" \
    sko copy "${NOTLS[@]}" "oci:$BIG_LAYOUT:big" "docker://$SRC_REG/big/img:v1"
# skopeo compresses the layer on the way: what the source holds is what must arrive
sko inspect --raw --tls-verify=false "docker://$SRC_REG/big/img:v1" >"$T/big.json"
D_BIG=$(raw_digest <"$T/big.json")
BIG_SIZE=$(jq '.layers[-1].size' "$T/big.json")
dst_mark
env BERTH_STORAGE_ROOT="$SRC_DATA" BERTH_LOG_LEVEL=warn "$BERTH" -c "$CONF" replicate slow >"$T/slow.out" 2>&1 &
CLI_PID=$!
# wait until the big blob is on its way (its upload started at the destination), then a little more
for ((i = 0; i < 200; i++)); do
    tail -n +$((MARK + 1)) "$DST_SRV/access.log" | grep -q '"PUT /v2/big/img/blobs/uploads/' && break
    [[ -n $(find "$DST_DATA/uploads" -type f -size +1M 2>/dev/null) ]] && break
    sleep 0.1
done
sleep 1
{
    kill -KILL "$CLI_PID"
    wait "$CLI_PID"
} 2>/dev/null
CLI_PID=
FIRST=$(tail -n +$((MARK + 1)) "$DST_SRV/access.log" | grep -cE '"PUT /v2/big/img/blobs/uploads/[^ ]*digest=[^ ]* HTTP/[0-9.]+" 201')
is "interrupted: the small blobs were sent, the big one was not finished" "$FIRST" 4
api HEAD "$DST_URL/v2/big/img/manifests/v1" -u "admin:$DST_PW"
is "interrupted: the image is not at the destination yet" "$STATUS" 404
dst_mark
replicate slow
is "run again: exit status 0" "$RC" 0 || diag "$OUT"
like "run again: the image arrives, with only the unfinished blob sent" "$OUT" \
    "pushed big/img:v1 .*: 1 blobs, $BIG_SIZE bytes.* 4 already there"
is "run again: one blob upload finished at the destination" \
    "$(tail -n +$((MARK + 1)) "$DST_SRV/access.log" | grep -cE '"PUT /v2/big/img/blobs/uploads/[^ ]* HTTP/[0-9.]+" 201')" 1
is "the destination serves big/img:v1 byte for byte" "$(dst_inspect big/img:v1 | raw_digest)" "$D_BIG"

# ---------------------------------------------------------------- the server: on_push, schedule, catch-up
write_conf "  - name: live
    remote: http://$DST_REG
    username: admin
    password_file: $T/dst.password
    repositories: [\"live/*\"]
    on_push: true" "  - name: sched
    direction: pull
    remote: http://$RG
    repositories: upstream/base
    tags: \"2.*\"
    local_prefix: sched/
    schedule: 2s"
restart_berth
src_log_mark=$(wc -l <"$SRC_SRV/berth.log")
D_LIVE=$(oci_layout "$T/live" live 2)
D_LIVE2=$(oci_layout "$T/live" live2 1 amd64 arm64)
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
t0=$(date +%s.%N)
check "skopeo pushes live/app:v1 to the source (an on_push rule covers it)" \
    sko copy "${NOTLS[@]}" "oci:$T/live:live" "docker://$SRC_REG/live/app:v1"
t1=$(date +%s.%N)
got=
for ((i = 0; i < 100; i++)); do
    got=$(dst_inspect live/app:v1 2>/dev/null | raw_digest)
    [[ $got == "$D_LIVE" ]] && break
    sleep 0.1
done
t2=$(date +%s.%N)
is "on_push: live/app:v1 is at the destination within 10 s of the push" "$got" "$D_LIVE"
diag "on_push: the push answered in $(secs "$t0" "$t1") s, the image at the destination $(secs "$t1" "$t2") s later"
check "skopeo pushes the index live/app:v2" \
    sko copy --all "${NOTLS[@]}" "oci:$T/live:live2" "docker://$SRC_REG/live/app:v2"
for ((i = 0; i < 100; i++)); do
    got=$(dst_inspect live/app:v2 2>/dev/null | raw_digest)
    [[ $got == "$D_LIVE2" ]] && break
    sleep 0.1
done
is "on_push: the index live/app:v2 follows, byte for byte" "$got" "$D_LIVE2"
like "the source's log says what it replicated" "$(tail -n +$((src_log_mark + 1)) "$SRC_SRV/berth.log")" \
    "replication live of live/app: 1 images"

# the schedule: 2.0 of upstream/base is pulled into sched/ within a few seconds, and a new 2.1 after it
for ((i = 0; i < 100; i++)); do
    api HEAD "/v2/sched/upstream/base/manifests/2.0"
    [[ $STATUS == 200 ]] && break
    sleep 0.1
done
is "schedule: the pull rule brought sched/upstream/base:2.0" "$(hdr docker-content-digest)" "$D_U20"
api HEAD "/v2/sched/upstream/base/manifests/1.0"
is "schedule: 1.0, outside its tag pattern, was not pulled" "$STATUS" 404
D_U21=$(oci_layout "$U_LAYOUT" u21 1)
sko copy "${NOTLS[@]}" "oci:$U_LAYOUT:u21" "docker://$RG/upstream/base:2.1" >/dev/null 2>&1
for ((i = 0; i < 100; i++)); do
    api HEAD "/v2/sched/upstream/base/manifests/2.1"
    [[ $STATUS == 200 ]] && break
    sleep 0.1
done
is "schedule: a tag pushed to the remote later arrives on the next run" "$(hdr docker-content-digest)" "$D_U21"

# the destination down: the push is answered all the same; the catch-up at the next start sends it
use dst
stop_berth
use src
D_LIVE3=$(oci_layout "$T/live" live3 1)
t0=$(date +%s.%N)
check "with the destination down, a push to the source is answered" \
    sko copy "${NOTLS[@]}" "oci:$T/live:live3" "docker://$SRC_REG/live/app:v3"
diag "the push with the destination down answered in $(secs "$t0" "$(date +%s.%N)") s"
for ((i = 0; i < 50; i++)); do
    grep -q "replication live of live/app: .*the next run tries again" "$SRC_SRV/berth.log" && break
    sleep 0.1
done
like "the source's log says the on_push replication failed and will be tried again" \
    "$(tail -n +$((src_log_mark + 1)) "$SRC_SRV/berth.log")" "replication live of live/app: .*the next run tries again"
stop_berth
use dst
start_berth_again
use src
start_berth_again
for ((i = 0; i < 100; i++)); do
    got=$(dst_inspect live/app:v3 2>/dev/null | raw_digest)
    [[ $got == "$D_LIVE3" ]] && break
    sleep 0.1
done
is "catch-up: at the source's next start, live/app:v3 reaches the destination" "$got" "$D_LIVE3"

# ---------------------------------------------------------------- throughput (diag only)
"$PYTHON" - "$T/perf" "$REPL_N" "$REPL_LAYER_KB" <<'PY'
import hashlib, json, os, sys
d, n, kb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
os.makedirs(d + "/blobs/sha256", exist_ok=True)
def put(b):
    h = hashlib.sha256(b).hexdigest()
    open(f"{d}/blobs/sha256/{h}", "wb").write(b)
    return {"digest": "sha256:" + h, "size": len(b)}
index = {"schemaVersion": 2, "manifests": []}
for i in range(n):
    cfg = put(json.dumps({"architecture": "amd64", "os": "linux", "n": i,
                          "rootfs": {"type": "layers", "diff_ids": []}}).encode())
    layers = [dict(put(os.urandom(kb * 1024)), mediaType="application/vnd.oci.image.layer.v1.tar+gzip")
              for _ in range(2)]
    m = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
         "config": dict(cfg, mediaType="application/vnd.oci.image.config.v1+json"), "layers": layers}
    index["manifests"].append(dict(put(json.dumps(m).encode()), mediaType=m["mediaType"],
                                   annotations={"org.opencontainers.image.ref.name": "t%d" % i}))
json.dump(index, open(d + "/index.json", "w"))
json.dump({"imageLayoutVersion": "1.0.0"}, open(d + "/oci-layout", "w"))
PY
for ((i = 0; i < REPL_N; i++)); do
    sko copy "${NOTLS[@]}" "oci:$T/perf:t$i" "docker://$SRC_REG/perf/img:t$i" >/dev/null 2>&1
done
cat >"$T/perf.yaml" <<EOF
replication:
  - name: perf-berth
    remote: http://$DST_REG
    username: admin
    password_file: $T/dst.password
    repositories: perf/img
  - name: perf-registry
    remote: http://$RG
    repositories: perf/img
EOF
for rule in perf-berth perf-registry; do
    out=$(env BERTH_STORAGE_ROOT="$SRC_DATA" BERTH_LOG_LEVEL=warn "$BERTH" -c "$T/perf.yaml" replicate "$rule" 2>&1)
    like "replication of $REPL_N images, $rule" "$out" "copied $REPL_N images"
    diag "$(grep "^replicate $rule" <<<"$out")"
done
if [[ ${REPL_COMPARE:-0} == 1 ]]; then # the same images copied by skopeo, one `skopeo copy` per tag
    for dest in "$DST_REG/skopeo/img" "$RG/skopeo/img"; do
        t0=$(date +%s.%N)
        for ((i = 0; i < REPL_N; i++)); do
            sko copy "${NOTLS[@]}" --dest-creds "admin:$DST_PW" "docker://$SRC_REG/perf/img:t$i" "docker://$dest:t$i" \
                >/dev/null 2>&1 || fail "skopeo copy to $dest:t$i"
        done
        diag "skopeo copy of the $REPL_N images to $dest: $(secs "$t0" "$(date +%s.%N)") s"
    done
fi

use dst
stop_berth
use src

done_testing
