#!/usr/bin/env bash
# The base endpoint, health endpoints, the error format, and the repository name grammar.
. "$(dirname "$0")/lib.sh"

start_berth

# --- /v2/
api GET /v2/
is "GET /v2/ -> 200" "$STATUS" 200
is "GET /v2/ has Docker-Distribution-Api-Version: registry/2.0" "$(hdr Docker-Distribution-Api-Version)" registry/2.0
is "GET /v2/ body is the JSON object {}" "$(jq -c . "$BODY" 2>&1)" '{}'

api HEAD /v2/
is "HEAD /v2/ -> 200" "$STATUS" 200

api GET /v2/ --http2-prior-knowledge
is "GET /v2/ over cleartext HTTP/2 -> 200" "$STATUS" 200
like "GET /v2/ over HTTP/2 answers with HTTP/2" "$(head -n 1 "$HDRS")" '^HTTP/2 200'

# --- health
api GET /healthz
is "GET /healthz -> 200" "$STATUS" 200
api GET /readyz
is "GET /readyz -> 200 (database and storage usable)" "$STATUS" 200

# --- the version header is on every response, errors included
api GET /v2/nope/blobs/sha256:0000000000000000000000000000000000000000000000000000000000000000
is "Docker-Distribution-Api-Version on a 404" "$(hdr Docker-Distribution-Api-Version)" registry/2.0
api GET /v2/Bad/tags/list
is "Docker-Distribution-Api-Version on a 400" "$(hdr Docker-Distribution-Api-Version)" registry/2.0
mkrand "$T/small" 100
push_blob base/ver "$T/small"
is "Docker-Distribution-Api-Version on a 201" "$(hdr Docker-Distribution-Api-Version)" registry/2.0

# --- error bodies: the spec's JSON shape, a JSON content type
api GET /v2/base/unknown/manifests/latest
is_error "unknown manifest in unknown repository -> 404 MANIFEST_UNKNOWN or NAME_UNKNOWN" \
    404 MANIFEST_UNKNOWN 404 NAME_UNKNOWN
like "error responses are JSON (Content-Type)" "$(hdr Content-Type)" '^application/json'
check "error has a non-empty message" jq -e '.errors[0].message | type == "string" and length > 0' "$BODY"

api GET /v2/base/ver/blobs/sha256:1111111111111111111111111111111111111111111111111111111111111111
is_error "unknown blob -> 404 BLOB_UNKNOWN" 404 BLOB_UNKNOWN

api HEAD /v2/base/ver/blobs/sha256:1111111111111111111111111111111111111111111111111111111111111111
is "HEAD unknown blob -> 404" "$STATUS" 404

api GET /v2/base/ver/tags/list
like "repository with only a blob: tags/list -> 200 or 404 (unspecified which, but no server error)" \
    "$STATUS" '^(200|404)$'

api GET /v2/never/pushed/tags/list
is_error "tags/list of an unknown repository -> 404 NAME_UNKNOWN" 404 NAME_UNKNOWN

# --- paths outside the API
api GET /v2/a/b/unknownthing/x
is "unknown endpoint under /v2/ -> 404" "$STATUS" 404
api GET /nothing-here
is "unknown path -> 404" "$STATUS" 404

# --- repository names. The grammar (distribution-spec):
#   [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*
# A valid name gets past the name check: a manifest GET answers 404 MANIFEST_UNKNOWN (or NAME_UNKNOWN).
for name in a abc/def a/b/c/d/e a.b a_b a__b a-b a---b 0/9 x1.y2_z3-w4__v5 library/ubuntu; do
    api GET "/v2/$name/manifests/latest"
    is_error "valid name '$name' is accepted (404 MANIFEST_UNKNOWN/NAME_UNKNOWN)" \
        404 MANIFEST_UNKNOWN 404 NAME_UNKNOWN
done

long255=$(printf 'a%.0s' {1..127})/$(printf 'b%.0s' {1..127})
is "(self-check) 255-character name" "${#long255}" 255
api GET "/v2/$long255/manifests/latest"
is_error "255-character name is accepted" 404 MANIFEST_UNKNOWN 404 NAME_UNKNOWN

# Invalid names -> 400 NAME_INVALID, on every kind of endpoint. --path-as-is keeps curl from
# squashing "/../" and "//".
invalid_names=(A/b a/B 'a/../b' 'a//b' '-a/b' 'a-/b' '_a' 'a_' 'a.' '.a' 'a..b' 'a___b' 'a.-b' 'a/./b'
    'a/b/' 'a%20b' 'a:b' 'a@b')
for name in "${invalid_names[@]}"; do
    api GET "/v2/$name/tags/list" --path-as-is
    is_error "invalid name '$name': GET tags/list -> 400 NAME_INVALID" 400 NAME_INVALID
done
for name in A/b 'a/../b' 'a//b'; do
    api GET "/v2/$name/manifests/latest" --path-as-is
    is_error "invalid name '$name': GET manifest -> 400 NAME_INVALID" 400 NAME_INVALID
    api GET "/v2/$name/blobs/sha256:1111111111111111111111111111111111111111111111111111111111111111" --path-as-is
    is_error "invalid name '$name': GET blob -> 400 NAME_INVALID" 400 NAME_INVALID
    api POST "/v2/$name/blobs/uploads/" --path-as-is -H 'Content-Length: 0'
    is_error "invalid name '$name': POST upload -> 400 NAME_INVALID" 400 NAME_INVALID
    api PUT "/v2/$name/manifests/latest" --path-as-is -H "Content-Type: $MT_OCI_MANIFEST" --data-binary '{}'
    is_error "invalid name '$name': PUT manifest -> 400 NAME_INVALID" 400 NAME_INVALID
done
long256=$(printf 'a%.0s' {1..128})/$(printf 'b%.0s' {1..127})
api GET "/v2/$long256/manifests/latest"
is_error "256-character name -> 400 NAME_INVALID" 400 NAME_INVALID

# --- the catalog is a JSON object with a sorted list
api GET /v2/_catalog
is "GET /v2/_catalog -> 200" "$STATUS" 200
check "catalog is {\"repositories\": [...]} sorted" \
    jq -e '(.repositories | type == "array") and (.repositories == (.repositories | sort))' "$BODY"

# --- the access log records requests
stop_berth
check "access log exists and is not empty" test -s "$SRV/access.log"
check "access log names the requested paths" grep -q '/v2/base/ver/blobs/uploads/' "$SRV/access.log"
check "access log records a status" grep -qE '(^|[^0-9])(200|201|202|404)([^0-9]|$)' "$SRV/access.log"

done_testing
