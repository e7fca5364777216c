#!/usr/bin/env bash
# Immutable tags (docs/lifecycle.md): a tag an immutable_tags rule covers, once pushed, never points elsewhere: a
# push that would move it is answered 403 DENIED with a detail saying why (with curl and with skopeo), a push of the
# same manifest again is fine, tags the rules do not cover move freely; deleting it (by tag, or its manifest by
# digest) needs an administrator.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/authlib.bash"

cat >"$T/berth.yaml" <<'EOF'
immutable_tags:
  - repositories: prod/*
    tags: '^v\d+\.\d+\.\d+$'
  - repositories: base
EOF

start_berth BERTH_CONFIG="$T/berth.yaml" BERTH_ADMIN_PASSWORD="$ADMIN_PW"
digest_of() { # REPO TAG
    curl -s -o /dev/null -D - -H "Accept: $MT_OCI_MANIFEST" "$URL/v2/$1/manifests/$2" |
        tr -d '\r' | awk 'tolower($1) == "docker-content-digest:" {print $2}'
}

push_image prod/app v1.0.0 oci && A=$IMG_DIGEST A_MF=$IMG_MANIFEST
is "the first push of prod/app:v1.0.0 -> 201" "$STATUS" 201
push_manifest prod/app v1.0.0 "$A_MF"
is "the same manifest pushed to it again -> 201 (nothing moves)" "$STATUS" 201
push_image prod/app v1.0.0 oci
B=$IMG_DIGEST B_MF=$IMG_MANIFEST
is "another manifest pushed to v1.0.0 -> 403" "$STATUS" 403
is_error "... DENIED" 403 DENIED
like "... saying why" "$(jq -r '.errors[0].message' "$BODY")" \
    '^tag v1.0.0 of prod/app is immutable: it points at another manifest and cannot be moved$'
is "... with the tag in the detail" "$(jq -r '.errors[0].detail.tag' "$BODY")" v1.0.0
is "v1.0.0 still points at the first manifest" "$(digest_of prod/app v1.0.0)" "$A"
api GET "/v2/prod/app/manifests/$B" -H "Accept: $MT_OCI_MANIFEST"
is "... and the refused manifest was not stored" "$STATUS" 404
push_manifest prod/app latest "$A_MF" && push_manifest prod/app latest "$B_MF"
is "a tag no rule covers (latest) moves freely" "$(digest_of prod/app latest)" "$B"
push_manifest prod/app v1.0.1 "$B_MF"
is "a new immutable tag is created -> 201" "$STATUS" 201
api PUT "/v2/prod/app/manifests/$A?tag=v2.0.0&tag=v1.0.1" -H "Content-Type: $MT_OCI_MANIFEST" --data-binary "@$A_MF"
is "a push by digest with ?tag= naming an immutable tag it would move -> 403" "$STATUS" 403
is "... which tag, in the detail" "$(jq -r '.errors[0].detail.tag' "$BODY")" v1.0.1
api GET /v2/prod/app/manifests/v2.0.0
is "... and none of its tags was set" "$STATUS" 404
push_image prod/lib v1.0.0 oci
is "other repositories under prod/ are covered: a different repository, its own first push -> 201" "$STATUS" 201
push_image base latest oci; push_image base latest oci
is "a rule without tags covers every tag of its repository: base:latest does not move" "$STATUS" 403
push_image dev/app v1.0.0 oci; push_image dev/app v1.0.0 oci
is "a repository no rule covers: v1.0.0 moves" "$STATUS" 201

# --- skopeo: the client shows the refusal
L=$T/layout
oci_layout "$L" v9 1 >/dev/null
if sko copy --dest-tls-verify=false "oci:$L:v9" "docker://$REG/prod/app:v1.0.0" >"$T/sko.out" 2>&1; then
    fail "skopeo copy of another image to prod/app:v1.0.0 fails"
else
    like "skopeo copy of another image to prod/app:v1.0.0 fails, showing why" "$(cat "$T/sko.out")" \
        'denied: tag v1.0.0 of prod/app is immutable'
fi
is "... and v1.0.0 did not move" "$(digest_of prod/app v1.0.0)" "$A"
check "skopeo copy to a new immutable tag works" sko copy --dest-tls-verify=false "oci:$L:v9" \
    "docker://$REG/prod/app:v3.0.0"
stop_berth

# --- deleting: only an administrator
BERTH_ENV=(BERTH_CONFIG="$T/berth.yaml" BERTH_MODE=private BERTH_ADMIN_PASSWORD="$ADMIN_PW")
start_berth_again
check "berth user add alice" adduser alice alice-pw1
check "alice may push and delete prod/*" b repo grant 'prod/*' alice pull,push,delete
api DELETE /v2/prod/app/manifests/v1.0.0 -u alice:alice-pw1
is "alice DELETE tag v1.0.0 -> 403" "$STATUS" 403
is_error "... DENIED" 403 DENIED
like "... saying why" "$(jq -r '.errors[0].message' "$BODY")" 'tag v1.0.0 of prod/app is immutable: only an administrator may delete it'
api DELETE "/v2/prod/app/manifests/$A" -u alice:alice-pw1
is "alice DELETE of the manifest it points at, by digest -> 403" "$STATUS" 403
like "... saying which tag" "$(jq -r '.errors[0].message' "$BODY")" 'only an administrator may delete it or the manifest it points at'
api DELETE /v2/prod/app/manifests/latest -u alice:alice-pw1
is "alice DELETE of a tag no rule covers -> 202" "$STATUS" 202
api DELETE /v2/prod/app/manifests/v7.7.7 -u alice:alice-pw1
is "alice DELETE of an immutable tag that does not exist -> 404" "$STATUS" 404
is_error "... MANIFEST_UNKNOWN" 404 MANIFEST_UNKNOWN
api GET /v2/prod/app/manifests/v1.0.0 -u alice:alice-pw1 -H "Accept: $MT_OCI_MANIFEST"
is "v1.0.0 is still there" "$STATUS" 200
api DELETE /v2/prod/app/manifests/v1.0.0 -u "admin:$ADMIN_PW"
is "the administrator DELETE tag v1.0.0 -> 202" "$STATUS" 202
api GET /v2/prod/app/manifests/v1.0.0 -u alice:alice-pw1
is "... it is gone" "$STATUS" 404
api PUT /v2/prod/app/manifests/v1.0.0 -u alice:alice-pw1 -H "Content-Type: $MT_OCI_MANIFEST" --data-binary "@$B_MF"
is "... and may be pushed anew (to another manifest) -> 201" "$STATUS" 201
api DELETE "/v2/prod/app/manifests/$B" -u "admin:$ADMIN_PW"
is "the administrator DELETE by digest of a manifest with immutable tags -> 202" "$STATUS" 202

done_testing
