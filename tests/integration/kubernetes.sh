#!/usr/bin/env bash
# deploy/kubernetes/: each kustomization renders (kubectl kustomize, $KUBECTL), every object rendered validates
# against the Kubernetes API's schemas (tests/deploy/validate.mjs: the npm packages kubernetes-models and
# @kubernetes-models/validate, installed with npm ci into the build tree), and a broken object is refused; what berth
# needs of the pods holds (probes, security context, grace period, storage root, Secret and ConfigMap references,
# the ingress settings); and berth runs with each overlay's berth.yaml and the Secret's environment: the private
# overlay's logs the Secret's admin in and signs with the Secret's key, answers /readyz 503 at once on SIGTERM and
# exits within the grace period; the mirror overlay's, on its own port, serves containerd pulling docker.io images
# through the overlay's hosts.toml.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ctrlib.bash"

KUBECTL=${KUBECTL:-kubectl}
K8S=$(cd "$SRCDIR/deploy/kubernetes" && pwd)
command -v "$KUBECTL" >/dev/null || skip_all "no kubectl (.ci/run installs Debian's kubernetes-client)"
command -v node >/dev/null && command -v npm >/dev/null || skip_all "no node and npm (.ci/run installs them)"
diag "$("$KUBECTL" version --client 2>/dev/null | head -n 2 | tr '\n' ' ')"

# ------------------------------------------------------------ the validator, in the build tree (the source tree may
# be read-only: make distcheck); npm ci again only when the lock file changed
V=$BUILDDIR/tests/deploy
mkdir -p "$V"
[[ $V -ef $SRCDIR/tests/deploy ]] || install -m 0644 "$SRCDIR/tests/deploy/validate.mjs" "$V/"
if [[ ! -d $V/node_modules ]] || ! cmp -s "$SRCDIR/tests/deploy/package-lock.json" "$V/package-lock.json"; then
    [[ $V -ef $SRCDIR/tests/deploy ]] ||
        install -m 0644 "$SRCDIR/tests/deploy/package.json" "$SRCDIR/tests/deploy/package-lock.json" "$V/"
    check "npm ci: kubernetes-models and @kubernetes-models/validate (tests/deploy/package-lock.json)" \
        npm ci --prefix "$V" --no-audit --no-fund --loglevel=error || {
        echo "Bail out! npm ci failed"
        exit 1
    }
fi
validate() { node "$V/validate.mjs" "$@"; }

# ------------------------------------------------------------ render and validate
for o in base private public mirror; do
    check "$o: kubectl kustomize renders" bash -c '"$1" kustomize "$2" >"$3"' _ "$KUBECTL" "$K8S/$o" "$T/$o.yaml"
    check "$o: every object validates against the Kubernetes schemas" validate --json "$T/$o.json" "$T/$o.yaml"
    diag "$o: $(jq -r '[.[] | .kind] | join(", ")' "$T/$o.json" 2>/dev/null)"
done

# the validator can fail: a Deployment whose replicas is a string and whose capabilities.drop is not a list
jq '.[] | select(.kind == "Deployment") | .spec.replicas = "1" |
    .spec.template.spec.containers[0].securityContext.capabilities.drop = "ALL"' "$T/private.json" >"$T/broken.json"
validate "$T/broken.json" >"$T/broken.out" 2>&1
is "a broken Deployment is refused (exit status 1)" "$?" 1
like "... saying what is wrong" "$(cat "$T/broken.out")" 'invalid Deployment berth: .*replicas must be integer.*drop must be array'
# ... and one with a misspelt field (which the schemas alone let through, as the API server's lax decoding would)
jq '.[] | select(.kind == "Deployment") | .spec.template.spec.containers[0].securityContext.readOnlyRootFilesystm = true |
    .sepc = {}' "$T/private.json" >"$T/misspelt.json"
validate "$T/misspelt.json" >"$T/misspelt.out" 2>&1
is "a misspelt field is refused (exit status 1)" "$?" 1
like "... naming it" "$(cat "$T/misspelt.out")" \
    'unknown field sepc, spec.template.spec.containers\[0\].securityContext.readOnlyRootFilesystm$'
printf 'apiVersion: apps/v1\nkind: Deploymnet\nmetadata: {name: x}\n' >"$T/unknown.yaml"
validate "$T/unknown.yaml" >"$T/unknown.out" 2>&1
is "an unknown kind is refused" "$?" 1

# the image name is a placeholder that kustomize's images: replaces
mkdir -p "$T/site"
printf 'bases:\n  - %s\nimages:\n  - name: berth\n    newName: localhost:5000/berth\n    newTag: "1.0"\n' \
    "$(realpath --relative-to="$T/site" "$K8S/private")" >"$T/site/kustomization.yaml" # (kustomize: no absolute path)
"$KUBECTL" kustomize "$T/site" >"$T/site.yaml" 2>"$T/site.err"
is "private: the image is berth:latest" "$(jq -r '.[] | select(.kind == "Deployment") |
    .spec.template.spec.containers[0].image' "$T/private.json")" berth:latest
like "... which an overlay's images: replaces (localhost:5000/berth:1.0)" "$(cat "$T/site.yaml" "$T/site.err")" \
    'image: localhost:5000/berth:1.0'

# ------------------------------------------------------------ what the pods need
# q OVERLAY FILTER : jq on the overlay's objects; $pod is the pod spec of its Deployment or DaemonSet, $c its container
q() {
    jq -r '(.[] | select(.kind == "Deployment" or .kind == "DaemonSet") | .spec.template.spec) as $pod |
        $pod.containers[0] as $c | '"$2" "$T/$1.json"
}
# the pods' environment alone: none of the test's own BERTH_ variables (but the sanitizers' options, which tests/run sets)
NO_BERTH_ENV=()
for v in $(compgen -e | grep '^BERTH_'); do NO_BERTH_ENV+=(-u "$v"); done
# pod_env OVERLAY : the container's variables that have a value (NAME=VALUE lines); BERTH_CONFIG is the ConfigMap's
# berth.yaml, taken out of the rendered objects
pod_env() {
    q "$1" '$c.env[] | select(.value != null and .name != "BERTH_CONFIG") | "\(.name)=\(.value)"'
    echo "BERTH_CONFIG=$T/$1.berth.yaml"
}
# conf OVERLAY KEY : the value in effect in the pod, its ConfigMap's berth.yaml and its variables (berth config)
conf() {
    local env
    mapfile -t env < <(pod_env "$1")
    env "${NO_BERTH_ENV[@]}" "${env[@]}" "$BERTH" config | awk -v k="$2" '$1 == k { print $3 }'
}
# secs DURATION : whole seconds of a duration as berth config prints it (0, 5s, 1m, 1h)
secs() {
    case $1 in
    0) echo 0 ;;
    *ms) echo $(((${1%ms} + 999) / 1000)) ;;
    *s) echo "${1%s}" ;;
    *m) echo $((${1%m} * 60)) ;;
    *h) echo $((${1%h} * 3600)) ;;
    *) echo "bad duration $1" ;;
    esac
}

for o in private public mirror; do
    jq -r '.[] | select(.kind == "ConfigMap") | .data["berth.yaml"]' "$T/$o.json" >"$T/$o.berth.yaml"
    mapfile -t env < <(pod_env "$o")
    check "$o: berth accepts the ConfigMap's berth.yaml and the pod's variables (berth config)" \
        env "${NO_BERTH_ENV[@]}" "${env[@]}" "$BERTH" config
    is "$o: the pod names BERTH_HTTP_ADDR and BERTH_STORAGE_ROOT (the image sets them; a variable wins over the file)" \
        "$(q "$o" '[$c.env[].name | select(. == "BERTH_HTTP_ADDR" or . == "BERTH_STORAGE_ROOT")] | length')" 2
    addr=$(conf "$o" http.addr)
    port=${addr##*:}
    for p in startupProbe:/healthz livenessProbe:/healthz readinessProbe:/readyz; do
        is "$o: ${p%%:*} on ${p#*:}" "$(q "$o" "\$c.${p%%:*}.httpGet.path")" "${p#*:}"
        is "$o: ... on the port berth listens on (http.addr $addr)" "$(q "$o" "\$c.${p%%:*}.httpGet.port as \$x |
            if (\$x | type) == \"string\" then (\$c.ports[] | select(.name == \$x) | .containerPort) else \$x end")" "$port"
    done
    if [[ ${addr%:*} == 127.0.0.1 ]]; then
        is "$o: berth on the node's loopback: hostNetwork" "$(q "$o" '$pod.hostNetwork')" true
        is "$o: ... and the probes ask 127.0.0.1" "$(q "$o" '[$c.startupProbe, $c.livenessProbe, $c.readinessProbe] |
            map(.httpGet.host) | unique | join(" ")')" 127.0.0.1
    fi
    is "$o: pod runAsNonRoot" "$(q "$o" '$pod.securityContext.runAsNonRoot')" true
    is "$o: pod seccompProfile RuntimeDefault" "$(q "$o" '$pod.securityContext.seccompProfile.type')" RuntimeDefault
    is "$o: container readOnlyRootFilesystem" "$(q "$o" '$c.securityContext.readOnlyRootFilesystem')" true
    is "$o: container allowPrivilegeEscalation false" "$(q "$o" '$c.securityContext.allowPrivilegeEscalation')" false
    is "$o: container capabilities drop ALL, add none" \
        "$(q "$o" '$c.securityContext.capabilities | "\(.drop) \(.add)"' | tr -d ' ')" '["ALL"]null'
    is "$o: no user 0 named" "$(q "$o" '[$pod.securityContext.runAsUser, $c.securityContext.runAsUser] | any(. == 0)')" false
    is "$o: requests and limits of cpu and memory" "$(q "$o" '[$c.resources.requests.cpu, $c.resources.requests.memory,
        $c.resources.limits.cpu, $c.resources.limits.memory] | map(select(. != null)) | length')" 4
    is "$o: no service account token, no service links (BERTH_PORT=...) in berth's environment" \
        "$(q "$o" '"\($pod.automountServiceAccountToken) \($pod.enableServiceLinks)"')" "false false"
    is "$o: /tmp is a writable volume (the root file system is not; SQLite's temporary files)" \
        "$(q "$o" '$c.volumeMounts[] | select(.mountPath == "/tmp") | .name as $n | $pod.volumes[] | select(.name == $n) |
            has("emptyDir")')" true

    delay=$(secs "$(conf "$o" http.shutdown_delay)") timeout=$(secs "$(conf "$o" http.shutdown_timeout)")
    is "$o: terminationGracePeriodSeconds = http.shutdown_delay ${delay}s + http.shutdown_timeout ${timeout}s + 5s" \
        "$(q "$o" '$pod.terminationGracePeriodSeconds')" $((delay + timeout + 5))

    root=$(conf "$o" storage.root)
    vol=$(q "$o" "\$c.volumeMounts[] | select(.mountPath == \"$root\") | .name as \$n | \$pod.volumes[] | select(.name == \$n)")
    if [[ $o == mirror ]]; then
        is "$o: the storage root ($root) is a volume (emptyDir: the node's cache)" "$(jq -r 'has("emptyDir")' <<<"$vol")" true
    else
        claim=$(jq -r '.persistentVolumeClaim.claimName' <<<"$vol")
        is "$o: the storage root ($root) is the PersistentVolumeClaim's volume" \
            "$(jq -r --arg n "$claim" '.[] | select(.kind == "PersistentVolumeClaim" and .metadata.name == $n) |
                .metadata.name' "$T/$o.json")" berth-data
    fi

    cfg=$(q "$o" '$c.env[] | select(.name == "BERTH_CONFIG") | .value')
    cm=$(jq -r '.[] | select(.kind == "ConfigMap") | .metadata.name' "$T/$o.json")
    is "$o: BERTH_CONFIG ($cfg) is in the mount of the ConfigMap ($cm)" "$(q "$o" "\$c.volumeMounts[] |
        select(.mountPath == \"${cfg%/*}\") | .name as \$n | \$pod.volumes[] | select(.name == \$n) | .configMap.name")" "$cm"
    is "$o: ... which holds ${cfg##*/}" "$(jq -r --arg k "${cfg##*/}" '.[] | select(.kind == "ConfigMap") | .data | has($k)' \
        "$T/$o.json")" true
done

# ------------------------------------------------------------ the hosted registry's objects
for o in private public; do
    d='.[] | select(.kind == "Deployment")'
    is "$o: one replica, Recreate (one pod opens the database)" \
        "$(jq -r "$d | \"\(.spec.replicas) \(.spec.strategy.type)\"" "$T/$o.json")" "1 Recreate"
    is "$o: BERTH_ADMIN_PASSWORD from the Secret berth, key admin-password" "$(q "$o" '$c.env[] |
        select(.name == "BERTH_ADMIN_PASSWORD") | .valueFrom.secretKeyRef | "\(.name) \(.key)"')" "berth admin-password"
    key=$(q "$o" '$c.env[] | select(.name == "BERTH_AUTH_KEY") | .value')
    is "$o: BERTH_AUTH_KEY ($key) is the Secret berth's token.pem, mounted" "$(q "$o" "\$c.volumeMounts[] |
        select(.mountPath == \"${key%/*}\") | .name as \$n | \$pod.volumes[] | select(.name == \$n) | .secret |
        \"\(.secretName) \(.items[] | select(.path == \"${key##*/}\") | .key)\"")" "berth token.pem"
    # every label a selector names is on the pod
    labels=$(jq -c "$d | .spec.template.metadata.labels" "$T/$o.json")
    for s in 'Service .spec.selector' 'PodDisruptionBudget .spec.selector.matchLabels' 'Deployment .spec.selector.matchLabels'; do
        is "$o: the ${s%% *}'s selector selects the pod" "$(jq -r --argjson l "$labels" ".[] | select(.kind == \"${s%% *}\") |
            ${s#* } | length > 0 and (to_entries | all(\$l[.key] == .value))" "$T/$o.json")" true
    done
    is "$o: the Service's targetPort is the container's port" "$(q "$o" '$c.ports[].name')" \
        "$(jq -r '.[] | select(.kind == "Service") | .spec.ports[0].targetPort' "$T/$o.json")"
    is "$o: a PodDisruptionBudget keeps the pod (a drain waits)" \
        "$(jq -r '.[] | select(.kind == "PodDisruptionBudget") | .spec.minAvailable' "$T/$o.json")" 1
    ing='.[] | select(.kind == "Ingress")'
    is "$o: ingress: no body size limit, bodies streamed to berth, not buffered" "$(jq -r "$ing | .metadata.annotations |
        \"\(.[\"nginx.ingress.kubernetes.io/proxy-body-size\"]) \(.[\"nginx.ingress.kubernetes.io/proxy-request-buffering\"])\"" \
        "$T/$o.json")" "0 off"
    is "$o: ingress: read and send timeouts of at least 10 minutes (slow layers)" "$(jq -r "$ing | .metadata.annotations |
        [.[\"nginx.ingress.kubernetes.io/proxy-read-timeout\"], .[\"nginx.ingress.kubernetes.io/proxy-send-timeout\"]] |
        map(tonumber >= 600) | all" "$T/$o.json")" true
    is "$o: ingress: its backend is the Service's port" "$(jq -r "$ing | .spec.rules[0].http.paths[0].backend.service |
        \"\(.name) \(.port.name)\"" "$T/$o.json")" "$(jq -r '.[] | select(.kind == "Service") |
        "\(.metadata.name) \(.spec.ports[0].name)"' "$T/$o.json")"
    is "$o: external_url is the ingress's host with https (the token realm clients are sent to)" "$(conf "$o" external_url)" \
        "https://$(jq -r "$ing | .spec.rules[0].host" "$T/$o.json")"
done

# ------------------------------------------------------------ berth as the pods run it
# pod_berth OVERLAY [VAR=VALUE...] : berth serve with the overlay's ConfigMap berth.yaml and the pod's variables, and
# the given ones (the Secret's); the storage root is a folder of $T, and the listen address a free loopback port
# unless POD_ADDR is set (then the pod's own).
pod_berth() {
    local o=$1 i code addr=()
    shift
    _nsrv=$((_nsrv + 1))
    SRV=$T/srv$_nsrv DATA=$T/srv$_nsrv/data
    mkdir -p "$SRV"
    REG=${POD_ADDR:-127.0.0.1:$(free_port)}
    [[ -n ${POD_ADDR:-} ]] || addr=(BERTH_HTTP_ADDR="$REG")
    URL=http://$REG
    mapfile -t env < <(pod_env "$o")
    env "${NO_BERTH_ENV[@]}" "${env[@]}" BERTH_STORAGE_ROOT="$DATA" "${addr[@]}" "$@" "$BERTH" serve >>"$SRV/berth.log" 2>&1 &
    BERTH_PID=$!
    for ((i = 0; i < 100; i++)); do
        code=$(curl -s --noproxy '*' --max-time 2 -o /dev/null -w '%{http_code}' "$URL/healthz")
        [[ $code == 200 ]] && break
        _alive "$BERTH_PID" || break
        sleep 0.1
    done
    is "$o: berth serves with the ConfigMap's berth.yaml and the Secret's environment (/healthz)" "$code" 200 ||
        diag "$(tail -n 20 "$SRV/berth.log")"
}

# the Secret, made as docs/kubernetes.md says
mkdir -p "$T/secret"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/secret/token.pem" 2>"$T/openssl.err"
PW=pod-admin-$RANDOM$RANDOM
SECRET_ENV=(BERTH_ADMIN_PASSWORD="$PW" BERTH_AUTH_KEY="$T/secret/token.pem")
# the key's public point as a JWK's x (base64url of the 32 bytes after 04 in the DER public key)
KEY_X=$(openssl pkey -in "$T/secret/token.pem" -pubout -outform DER 2>/dev/null | tail -c 64 | head -c 32 | base64 |
    tr '+/' '-_' | tr -d '=\n')

for o in private public; do
    pod_berth "$o" "${SECRET_ENV[@]}"
    api GET /readyz
    is "$o: /readyz -> 200" "$STATUS" 200
    api GET /v2/_catalog
    if [[ $o == private ]]; then
        is "$o: mode private: nothing without credentials (GET /v2/_catalog -> 401)" "$STATUS" 401
    else
        is "$o: mode public: anonymous pulls (GET /v2/_catalog -> 200)" "$STATUS" 200
    fi
    api GET /v2/ -u "admin:$PW"
    is "$o: admin logs in with the Secret's admin-password" "$STATUS" 200
    mkrand "$T/blob" 1000
    api POST "/v2/admin/app/blobs/uploads/?digest=$(sha256_of "$T/blob")" -u "admin:$PW" \
        -H 'Content-Type: application/octet-stream' --data-binary "@$T/blob"
    is "$o: ... and pushes" "$STATUS" 201
    api GET /token/jwks
    is "$o: berth signs tokens with the Secret's token.pem (its public key in /token/jwks)" \
        "$(jq -r '.keys[0].x' "$BODY")" "$KEY_X"
    check "$o: ... and made no key of its own" test ! -e "$DATA/keys/token.pem"
    if [[ $o == private ]]; then
        pid=$BERTH_PID
        t0=$(date +%s)
        kill -TERM "$pid"
        sleep 0.3
        api GET /readyz
        is "$o: SIGTERM: /readyz -> 503 at once (http.shutdown_delay)" "$STATUS" 503
        grace=$(q "$o" '$pod.terminationGracePeriodSeconds')
        for ((i = 0; i < grace * 10; i++)); do
            _alive "$pid" || break
            sleep 0.1
        done
        t=$(($(date +%s) - t0))
        ((t < grace)) && pass "$o: ... and berth exits within terminationGracePeriodSeconds (${t}s < ${grace}s)" ||
            fail "$o: ... and berth exits within terminationGracePeriodSeconds (${t}s, not < ${grace}s)"
    fi
    stop_berth
done

# ------------------------------------------------------------ the node-local mirror, with containerd
# The overlay's berth.yaml as it is, on its own address (127.0.0.1:5050), but with a berth here as the upstream in
# place of Docker Hub; containerd reads the overlay's hosts.toml as it is, as /etc/containerd/certs.d/docker.io/.
HOSTS=$K8S/mirror/hosts.toml
MADDR=$(conf mirror http.addr)
is "mirror: hosts.toml sends docker.io pulls to the mirror's http.addr, and falls back to Docker Hub" \
    "$("$PYTHON" -c 'import sys, tomllib
t = tomllib.load(open(sys.argv[1], "rb"))
print(t["server"], *((h, sorted(v["capabilities"])) for h, v in t["host"].items()))' "$HOSTS" 2>&1)" \
    "https://registry-1.docker.io ('http://$MADDR', ['pull', 'resolve'])"
UP_PID='' MR_PID=''
trap '[[ -n $UP_PID ]] && kill -KILL "$UP_PID" 2>/dev/null; [[ -n $MR_PID ]] && kill -KILL "$MR_PID" 2>/dev/null; stop_containerd; _cleanup' EXIT
if curl -s --noproxy '*' --max-time 2 -o /dev/null "http://$MADDR/"; then
    skip_test "mirror: containerd pulls through the overlay's berth.yaml and hosts.toml" "$MADDR is taken here"
elif ! start_containerd env HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9; then
    skip_test "mirror: containerd pulls through the overlay's berth.yaml and hosts.toml" "$CTD_SKIP"
else
    start_berth
    UP_PID=$BERTH_PID UP_SRV=$SRV
    KIMG=$(oci_layout "$T/layout" kimg 1) # a real image: containerd unpacks it
    check "skopeo copies an image to the upstream: library/kimg:1" \
        sko copy --dest-tls-verify=false "oci:$T/layout:kimg" "docker://$REG/library/kimg:1"
    sed "s#upstream: https://registry-1.docker.io#upstream: $URL#" "$T/mirror.berth.yaml" >"$T/mirror.local.yaml"
    cp "$T/mirror.local.yaml" "$T/mirror.berth.yaml"
    POD_ADDR=$MADDR pod_berth mirror
    MR_PID=$BERTH_PID MR_SRV=$SRV
    mkdir -p "$K/hosts/docker.io"
    cp "$HOSTS" "$K/hosts/docker.io/hosts.toml"
    check "mirror: ctr images pull --hosts-dir (the overlay's hosts.toml): docker.io/library/kimg:1" \
        "${CT[@]}" images pull --hosts-dir "$K/hosts" docker.io/library/kimg:1
    is "... containerd has the upstream's manifest digest" \
        "$("${CT[@]}" images ls | awk '$1 == "docker.io/library/kimg:1" { print $3 }')" "$KIMG"
    check "... the mirror served it (?ns=docker.io)" \
        grep -qE '"GET /v2/library/kimg/manifests/sha256:[0-9a-f]{64}\?ns=docker.io HTTP/1.1" 200 ' "$MR_SRV/berth.log"
    check "... fetched from the upstream" grep -qF '"GET /v2/library/kimg/manifests/1 HTTP/1.1" 200 ' "$UP_SRV/access.log"
    stop_containerd
    stop_berth
    MR_PID=
    BERTH_PID=$UP_PID SRV=$UP_SRV
    stop_berth
    UP_PID=
fi

done_testing
