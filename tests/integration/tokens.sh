#!/usr/bin/env bash
# The token service driven with curl as docker drives it (challenge, GET /token with Basic and offline_token,
# POST /token refresh_token and password grants, JWKS), tokens that must be refused (expired, not yet valid, wrong
# audience, issuer or key, tampered, alg none, HS256 with the public key, another repository, pull used to push,
# disabled user, revoked access token), scope challenges, and the failed-login rate limit. Mode private.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/authlib.bash"

start_berth BERTH_MODE=private BERTH_ADMIN_PASSWORD="$ADMIN_PW" BERTH_AUTH_LOGIN_FAILURES=3 BERTH_AUTH_LOGIN_BACKOFF=2s

for u in alice bob carol rl1 rl2 rl3 rl4; do check "berth user add $u" adduser $u "$u-pw1"; done
check "berth repo grant 'x/*' alice pull,push" b repo grant 'x/*' alice pull,push
mkrand "$T/blob" 5000
D=$(sha256_of "$T/blob")
api POST "/v2/x/y/blobs/uploads/?digest=$D" -u "admin:$ADMIN_PW" -H 'Content-Type: application/octet-stream' \
    --data-binary "@$T/blob"
is "admin, Basic: a blob into x/y -> 201" "$STATUS" 201
api POST "/v2/x/z/blobs/uploads/?digest=$D" -u "admin:$ADMIN_PW" -H 'Content-Type: application/octet-stream' \
    --data-binary "@$T/blob"
is "admin, Basic: the blob into x/z -> 201" "$STATUS" 201
api POST "/v2/w/q/blobs/uploads/?digest=$D" -u "admin:$ADMIN_PW" -H 'Content-Type: application/octet-stream' \
    --data-binary "@$T/blob"
is "admin, Basic: the blob into w/q -> 201" "$STATUS" 201

# ------------------------------------------------------------ the flow, as docker does it
api GET /v2/
is "GET /v2/ -> 401" "$STATUS" 401
is "... WWW-Authenticate: Bearer realm, service" "$(challenge)" "Bearer realm=\"http://127.0.0.1:$PORT/token\",service=\"berth\""
REALM=$(challenge | sed -n 's/.*realm="\([^"]*\)".*/\1/p')
api GET "$REALM?service=berth&scope=repository:x/y:pull,push&offline_token=true" -u alice:alice-pw1
is "GET realm?service=berth&scope=repository:x/y:pull,push&offline_token=true, Basic -> 200" "$STATUS" 200
like "... Content-Type JSON" "$(hdr Content-Type)" '^application/json'
is "... Cache-Control: no-store" "$(hdr Cache-Control)" no-store
cp "$BODY" "$T/token.json"
TOK=$(jq -r .token "$T/token.json")
like "... token: a compact JWS" "$TOK" '^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$'
is "... access_token equals token" "$(jq -r .access_token "$T/token.json")" "$TOK"
is "... expires_in is a number >= 60" "$(jq -r '.expires_in | type == "number" and . >= 60' "$T/token.json")" true
ISSUED=$(jq -r .issued_at "$T/token.json")
like "... issued_at is RFC 3339" "$ISSUED" '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$'
skew=$(($(date +%s) - $(date -d "$ISSUED" +%s)))
is "... and now (within 30 s)" "$((skew >= -30 && skew <= 30))" 1
RT=$(jq -r '.refresh_token // empty' "$T/token.json")
like "... refresh_token: an opaque secret" "$RT" '^[A-Za-z0-9_-]{20,}$'
HDR=$(jwt_part "$TOK" 0)
PAY=$(jwt_part "$TOK" 1)
is "JWT header: alg ES256" "$(jq -r .alg <<<"$HDR")" ES256
is "JWT: iss, aud, sub" "$(jq -r '[.iss, .aud, .sub] | join(" ")' <<<"$PAY")" "berth berth alice"
is "JWT: access is exactly repository x/y pull,push" "$(jq -c .access <<<"$PAY")" \
    '[{"actions":["pull","push"],"name":"x/y","type":"repository"}]'
is "JWT: exp - iat is expires_in, nbf <= iat" \
    "$(jq -r '(.exp - .iat | tostring) + " " + (.nbf <= .iat | tostring)' <<<"$PAY")" \
    "$(jq -r .expires_in "$T/token.json") true"
like "JWT: jti" "$(jq -r .jti <<<"$PAY")" '^[0-9a-f]{32}$'

bearer GET /v2/ "$TOK"
is "Bearer token on GET /v2/ -> 200" "$STATUS" 200
bearer GET "/v2/x/y/blobs/$D" "$TOK"
is "Bearer token: GET the blob of x/y -> 200" "$STATUS $(sha256_of "$BODY")" "200 $D"
mkrand "$T/blob2" 3000
D2=$(sha256_of "$T/blob2")
bearer POST "/v2/x/y/blobs/uploads/?digest=$D2" "$TOK" -H 'Content-Type: application/octet-stream' --data-binary "@$T/blob2"
is "Bearer token: push a blob to x/y -> 201" "$STATUS" 201

# the OAuth2 form: refresh_token grant
api POST "$REALM" -H 'Content-Type: application/x-www-form-urlencoded' --data-urlencode grant_type=refresh_token \
    --data-urlencode "refresh_token=$RT" --data-urlencode service=berth --data-urlencode scope=repository:x/y:pull \
    --data-urlencode client_id=docker
is "POST /token grant_type=refresh_token -> 200" "$STATUS" 200
cp "$BODY" "$T/refresh.json"
is "... the same refresh_token back" "$(jq -r .refresh_token "$T/refresh.json")" "$RT"
is "... scope names what was granted" "$(jq -r .scope "$T/refresh.json")" "repository:x/y:pull"
RTOK=$(jq -r .token "$T/refresh.json")
is "... access_token equals token" "$(jq -r .access_token "$T/refresh.json")" "$RTOK"
is "... expires_in >= 60" "$(jq -r '.expires_in >= 60' "$T/refresh.json")" true
is "... the JWT: sub alice, x/y pull only" "$(jwt_part "$RTOK" 1 | jq -c '[.sub, .access]')" \
    '["alice",[{"actions":["pull"],"name":"x/y","type":"repository"}]]'
bearer GET "/v2/x/y/blobs/$D" "$RTOK"
is "... it pulls" "$STATUS" 200
bearer POST /v2/x/y/blobs/uploads/ "$RTOK" -H 'Content-Length: 0'
is "... it does not push: 401" "$STATUS" 401
is "... challenge: scope x/y push, error=insufficient_scope" "$(challenge)" \
    "Bearer realm=\"$REALM\",service=\"berth\",scope=\"repository:x/y:push\",error=\"insufficient_scope\""
is_error "... UNAUTHORIZED body" 401 UNAUTHORIZED
api POST "$REALM" --data-urlencode grant_type=refresh_token --data-urlencode "refresh_token=${RT}x" \
    --data-urlencode service=berth --data-urlencode scope=repository:x/y:pull --data-urlencode client_id=docker
is "POST /token with an unknown refresh token -> 401" "$STATUS" 401

# the OAuth2 form: password grant
pw_grant() { # USER PASSWORD [more form fields...]
    local u=$1 p=$2
    shift 2
    local extra=() f
    for f in "$@"; do extra+=(--data-urlencode "$f"); done
    api POST "$REALM" --data-urlencode grant_type=password --data-urlencode "username=$u" \
        --data-urlencode "password=$p" --data-urlencode service=berth --data-urlencode client_id=docker "${extra[@]}"
}
pw_grant alice alice-pw1 "scope=repository:x/y:pull,push" access_type=offline
is "POST /token grant_type=password -> 200" "$STATUS" 200
is "... scope" "$(jq -r .scope "$BODY")" "repository:x/y:pull,push"
is "... token = access_token, expires_in >= 60" "$(jq -r '.token == .access_token and .expires_in >= 60' "$BODY")" true
like "... access_type=offline: a refresh_token" "$(jq -r '.refresh_token // empty' "$BODY")" '^[A-Za-z0-9_-]{20,}$'
is "... the JWT grants x/y pull,push" "$(granted "$(jq -r .token "$BODY")")" "x/y:pull,push"
pw_grant alice alice-pw1 "scope=repository:x/y:pull repository:x/z:pull,delete"
is "POST password grant with two scopes (space-separated) -> 200" "$STATUS" 200
is "... scope: both, delete dropped (no grant)" "$(jq -r .scope "$BODY")" "repository:x/y:pull repository:x/z:pull"
pw_grant alice wrong-pw "scope=repository:x/y:pull"
is "POST password grant, wrong password -> 401" "$STATUS" 401
api GET "$REALM?service=berth&scope=repository:x/y:pull" -u alice:wrong-pw
is "GET /token, wrong password -> 401" "$STATUS" 401
api GET "$REALM?service=berth&scope=repository:x/y:pull" -u nobody:alice-pw1
is "GET /token, unknown user -> 401" "$STATUS" 401
api POST "$REALM" --data-urlencode grant_type=client_credentials
is "POST /token, unsupported grant_type -> 400" "$STATUS" 400

# JWKS
api GET /token/jwks
is "GET /token/jwks -> 200" "$STATUS" 200
cp "$BODY" "$T/jwks.json"
is "... one key" "$(jq '.keys | length' "$T/jwks.json")" 1
is "... EC P-256, for ES256 signatures" "$(jq -r '.keys[0] | [.kty, .crv, (.alg // "ES256"), (.use // "sig")] | join(" ")' "$T/jwks.json")" \
    "EC P-256 ES256 sig"
is "... x and y are 32-byte base64url coordinates" \
    "$(jq -r '.keys[0] | [.x, .y] | map(test("^[A-Za-z0-9_-]{43}$")) | all' "$T/jwks.json")" true
is "... no private part (d)" "$(jq -r '.keys[0] | has("d")' "$T/jwks.json")" false
KID=$(jq -r '.keys[0].kid' "$T/jwks.json")
is "... kid equals the JWT header's kid" "$(jq -r .kid <<<"$HDR")" "$KID"
is "... kid is the RFC 7638 thumbprint" "$("${JWT[@]}" thumbprint "$T/jwks.json")" "$KID"
check "the token's signature verifies with the JWKS key" "${JWT[@]}" verify "$T/jwks.json" "$TOK"
api GET /.well-known/jwks.json
is "GET /.well-known/jwks.json: the same document" "$STATUS $(cat "$BODY")" "200 $(cat "$T/jwks.json")"

# Basic credentials straight on /v2/
api GET "/v2/x/y/blobs/$D" -u alice:alice-pw1
is "Basic (curl -u) on GET /v2/x/y/blobs/D -> 200" "$STATUS" 200
api POST "/v2/x/y/blobs/uploads/" -u alice:alice-pw1 -H 'Content-Length: 0'
is "Basic: start an upload on x/y (granted push) -> 202" "$STATUS" 202
api POST "/v2/w/y/blobs/uploads/" -u alice:alice-pw1 -H 'Content-Length: 0'
is "Basic: start an upload on w/y (no grant) -> 401" "$STATUS" 401
is "... challenge: scope w/y push, error=insufficient_scope" "$(challenge)" \
    "Bearer realm=\"$REALM\",service=\"berth\",scope=\"repository:w/y:push\",error=\"insufficient_scope\""

# ------------------------------------------------------------ tokens that must be refused
NOW=$(date +%s)
# resign PAYLOAD_JQ_FILTER [HEADER_JQ_FILTER] [KEY] [ALG] : the payload and header of $TOK changed by jq, signed
resign() {
    local p h
    p=$(jq -c --argjson now "$NOW" "$1" <<<"$PAY")
    h=$(jq -c "${2:-.}" <<<"$HDR")
    "${JWT[@]}" sign "${4:-ES256}" "${3:-$DATA/keys/token.pem}" "$h" "$p"
}
# try DESC WANT TOKEN : GET the blob of x/y with TOKEN; the status must be WANT
try() {
    bearer GET "/v2/x/y/blobs/$D" "$3"
    is "$1 -> $2" "$STATUS" "$2"
}
refuse() { # DESC TOKEN: 401 with an UNAUTHORIZED body and a Bearer challenge
    bearer GET "/v2/x/y/blobs/$D" "$2"
    if [[ $STATUS == 401 && $(err_code) == UNAUTHORIZED && $(challenge) == "Bearer realm=\"$REALM\""* ]]; then
        pass "$1 -> 401"
    else
        fail "$1 -> 401" "got $STATUS $(err_code), challenge: $(challenge)" "token payload: $(jwt_part "$2" 1 2>&1)"
    fi
}
# controls: a token made here with berth's key is accepted, so each refusal below is the change made
try "control: the token as issued" 200 "$TOK"
try "control: re-signed here with berth's key, unchanged" 200 "$(resign .)"
try "control: re-signed with iat, nbf, exp moved by a few seconds" 200 "$(resign '.iat = $now - 5 | .nbf = $now - 5 | .exp = $now + 100')"
try "control: exp 30 s ago (within the 60 s leeway)" 200 "$(resign '.exp = $now - 30')"
try "control: aud as an array containing the service" 200 "$(resign '.aud = ["other", "berth"]')"
refuse "expired (exp an hour ago)" "$(resign '.iat = $now - 4000 | .nbf = $now - 4000 | .exp = $now - 3600')"
refuse "expired (exp 2 minutes ago, beyond the leeway)" "$(resign '.exp = $now - 120')"
refuse "no exp" "$(resign 'del(.exp)')"
refuse "not yet valid (nbf in 10 minutes)" "$(resign '.nbf = $now + 600')"
refuse "issued in the future (iat in 10 minutes)" "$(resign '.iat = $now + 600 | .nbf = $now')"
refuse "wrong audience" "$(resign '.aud = "other-registry"')"
refuse "wrong audience (array without the service)" "$(resign '.aud = ["other", "registry"]')"
refuse "no audience" "$(resign 'del(.aud)')"
refuse "wrong issuer" "$(resign '.iss = "evil"')"
refuse "no issuer" "$(resign 'del(.iss)')"
openssl ecparam -genkey -name prime256v1 -noout -out "$T/wrong.pem" 2>/dev/null
refuse "wrong key (a fresh P-256 key, berth's kid)" "$(resign . . "$T/wrong.pem")"
refuse "wrong key, no kid" "$(resign . 'del(.kid)' "$T/wrong.pem")"
refuse "unknown kid" "$(resign . '.kid = "not-a-known-key"')"
IFS=. read -r th tp ts <<<"$TOK"
tampered=$("$PYTHON" -c 'import base64,sys; print(base64.urlsafe_b64encode(sys.argv[1].encode()).rstrip(b"=").decode())' \
    "$(jq -c '.access[0].actions += ["delete"]' <<<"$PAY")")
refuse "tampered payload (delete added, signature kept)" "$th.$tampered.$ts"
tampered=$("$PYTHON" -c 'import base64,sys; print(base64.urlsafe_b64encode(sys.argv[1].encode()).rstrip(b"=").decode())' \
    "$(jq -c '.sub = "admin"' <<<"$PAY")")
refuse "tampered payload (sub admin, signature kept)" "$th.$tampered.$ts"
refuse "signature of another token" "$th.$tp.$(cut -d. -f3 <<<"$RTOK")"
refuse "no signature" "$th.$tp."
refuse "alg none, empty signature" "$(resign . '.alg = "none"' - none)"
refuse "alg none, no kid" "$(resign . '{alg: "none", typ: "JWT"}' - none)"
openssl pkey -in "$DATA/keys/token.pem" -pubout -out "$T/public.pem" 2>/dev/null
refuse "HS256 signed with berth's public key (PEM)" "$(resign . '.alg = "HS256"' "$T/public.pem" HS256)"
refuse "HS256 signed with berth's public key, no kid" "$(resign . '{alg: "HS256", typ: "JWT"}' "$T/public.pem" HS256)"
refuse "ES384 in the header, ES256 signature" "$(resign . '.alg = "ES384"')"
refuse "sub an account that does not exist" "$(resign '.sub = "mallory"')"
refuse "gen not the account's generation" "$(resign '.gen = 99')"
refuse "garbage" "not.a.token"

# another repository; pull used to push
get_token alice alice-pw1 "repository:x/y:pull"
PULL=$TOKEN
is "a pull token for x/y" "$(granted "$PULL")" "x/y:pull"
bearer GET "/v2/x/z/blobs/$D" "$PULL"
is "token for x/y used on x/z -> 401" "$STATUS" 401
is "... challenge: scope x/z pull, error=insufficient_scope" "$(challenge)" \
    "Bearer realm=\"$REALM\",service=\"berth\",scope=\"repository:x/z:pull\",error=\"insufficient_scope\""
api GET "/v2/x/z/blobs/$D" -u alice:alice-pw1
is "... while alice may pull x/z (Basic -> 200)" "$STATUS" 200
bearer POST /v2/x/y/blobs/uploads/ "$PULL" -H 'Content-Length: 0'
is "pull token used to start an upload -> 401" "$STATUS" 401
like "... challenge: scope x/y push, error=insufficient_scope" "$(challenge)" 'scope="repository:x/y:push",error="insufficient_scope"'
bearer PUT /v2/x/y/manifests/t "$PULL" -H "Content-Type: $MT_OCI_MANIFEST" --data-binary '{}'
is "pull token used to PUT a manifest -> 401" "$STATUS" 401
bearer DELETE "/v2/x/y/blobs/$D" "$PULL"
is "pull token used to DELETE a blob -> 401" "$STATUS" 401
like "... challenge: scope x/y delete" "$(challenge)" 'scope="repository:x/y:delete",error="insufficient_scope"'
bearer GET /v2/_catalog "$PULL"
is "pull token (no catalog scope) on /v2/_catalog -> 401" "$STATUS" 401
like "... challenge: registry:catalog:*" "$(challenge)" 'scope="registry:catalog:\*",error="insufficient_scope"'
get_token alice alice-pw1 "registry:catalog:*"
bearer GET /v2/_catalog "$TOKEN"
is "a catalog token: /v2/_catalog -> 200, what alice may pull" "$STATUS $(jq -c .repositories "$BODY")" \
    '200 ["w/q","x/y","x/z"]'

# ------------------------------------------------------------ a disabled user
get_token carol carol-pw1 "repository:x/y:pull"
CT=$TOKEN
try "carol's token before" 200 "$CT"
api GET "$REALM?service=berth&scope=repository:x/y:pull&offline_token=true" -u carol:carol-pw1
CRT=$(jq -r '.refresh_token // empty' "$BODY")
api GET /v2/ -u carol:carol-pw1
is "carol, Basic on /v2/ before -> 200 (and now cached)" "$STATUS" 200
check "berth user disable carol" b user disable carol
try "carol's token, once she is disabled" 401 "$CT"
# (each refused login of carol counts as a failure: 2 here, below BERTH_AUTH_LOGIN_FAILURES=3)
get_token carol carol-pw1 "repository:x/y:pull"
is "carol (disabled): GET /token -> 401" "$STATUS" 401
api POST "$REALM" --data-urlencode grant_type=refresh_token --data-urlencode "refresh_token=$CRT" \
    --data-urlencode service=berth --data-urlencode scope=repository:x/y:pull
is "carol (disabled): POST refresh_token grant -> 401" "$STATUS" 401
api GET /v2/ -u carol:carol-pw1
is "carol (disabled): Basic on /v2/ -> 401 (the cached login is dropped)" "$STATUS" 401
check "berth user enable carol" b user enable carol
try "carol enabled again: the token issued before she was disabled stays refused" 401 "$CT"
pw_grant carol carol-pw1 "scope=repository:x/y:pull"
is "carol enabled again: POST password grant -> 200" "$STATUS" 200
try "... and the new token works" 200 "$(jq -r .token "$BODY")"

# a changed password ends earlier tokens and refresh tokens
get_token bob bob-pw1 "repository:x/y:pull"
BT=$TOKEN
api GET "$REALM?service=berth&offline_token=true" -u bob:bob-pw1
BRT=$(jq -r '.refresh_token // empty' "$BODY")
try "bob's token before his password changes" 200 "$BT"
check "berth user passwd bob" b user passwd bob --password-stdin <<<"bob-pw2"
try "bob's token after berth user passwd" 401 "$BT"
api POST "$REALM" --data-urlencode grant_type=refresh_token --data-urlencode "refresh_token=$BRT" \
    --data-urlencode service=berth --data-urlencode scope=repository:x/y:pull
is "bob's refresh token after berth user passwd -> 401" "$STATUS" 401
api GET /v2/ -u bob:bob-pw1
is "bob's old password -> 401" "$STATUS" 401
api GET /v2/ -u bob:bob-pw2
is "bob's new password -> 200" "$STATUS" 200

# ------------------------------------------------------------ refresh tokens: listed, and revoked one by one
check "berth user add dave" adduser dave dave-pw1
api GET "$REALM?service=berth&offline_token=true&client_id=docker" -u dave:dave-pw1
DRT1=$(jq -r '.refresh_token // empty' "$BODY")
like "dave: GET /token&offline_token=true&client_id=docker -> a refresh token" "$STATUS $DRT1" '^200 [A-Za-z0-9_-]{20,}$'
api POST "$REALM" -A 'skopeo/1.13.3 containers/image' --data-urlencode grant_type=password \
    --data-urlencode username=dave --data-urlencode password=dave-pw1 --data-urlencode service=berth \
    --data-urlencode access_type=offline
DRT2=$(jq -r '.refresh_token // empty' "$BODY")
like "dave: POST grant_type=password, access_type=offline, no client_id -> a second one" "$STATUS $DRT2" \
    '^200 [A-Za-z0-9_-]{20,}$'
run_list() { b token list "$@" 2>&1; }
run() { # run CMD... : OUT (stdout and stderr) and RC
    OUT=$("$@" 2>&1)
    RC=$?
}
LIST=$(run_list dave)
refresh_rows() { awk -F'\t' '$1 ~ /^r[0-9]+$/' <<<"$LIST"; }
is "berth token list dave: the REFRESH table's header" "$(grep '^REFRESH' <<<"$LIST")" \
    $'REFRESH\tOWNER\tCLIENT\tCREATED\tLAST USED\tEXPIRES'
is "... two refresh tokens, owner dave, clients docker and skopeo/1.13.3 (its User-Agent)" \
    "$(refresh_rows | cut -f2,3 | tr '\t\n' ': ')" "dave:docker dave:skopeo/1.13.3 "
like "... created now, never used, expiring in 30 days" "$(refresh_rows | head -n 1 | cut -f4-6)" \
    "^$(date -u +%Y-%m-%d)T[0-9:]{8}Z"$'\t'"never"$'\t'"$(date -u -d '+30 days' +%Y-%m-%d)T[0-9:]{8}Z$"
R1=$(refresh_rows | awk -F'\t' '$3 == "docker" { print $1 }')
R2=$(refresh_rows | awk -F'\t' '$3 != "docker" { print $1 }')
like "berth token list (everyone's) lists them too" "$(run_list)" "(^|"$'\n'")$R1"$'\t'"dave"$'\t'"docker"
refresh_grant() { # REFRESH_TOKEN : POST the refresh_token grant for pull on x/y; TOKEN is the access token, or ""
    api POST "$REALM" --data-urlencode grant_type=refresh_token --data-urlencode "refresh_token=$1" \
        --data-urlencode service=berth --data-urlencode scope=repository:x/y:pull
    TOKEN=$(jq -r '.access_token // empty' "$BODY" 2>/dev/null)
}
refresh_grant "$DRT1"
DJ1=$TOKEN
is "dave's refresh token $R1: grant_type=refresh_token -> 200" "$STATUS" 200
like "... the access token minted from it names it (rid)" "$(jwt_part "$DJ1" 1 | jq -c .rid)" "^${R1#r}$"
refresh_grant "$DRT2"
DJ2=$TOKEN
try "the access token minted from $R1" 200 "$DJ1"
try "the access token minted from $R2" 200 "$DJ2"
LIST=$(run_list dave)
like "berth token list: $R1 was used now" "$(refresh_rows | awk -F'\t' -v r="$R1" '$1 == r { print $5 }')" \
    "^$(date -u +%Y-%m-%d)T[0-9:]{8}Z$"
run b token revoke "$R1"
is "berth token revoke $R1 (while serve runs): exit 0" "$RC" 0
is "... says so" "$OUT" "revoked refresh token $R1"
refresh_grant "$DRT1"
is_error "$R1 revoked: grant_type=refresh_token with it -> 401 UNAUTHORIZED" 401 UNAUTHORIZED
refuse "$R1 revoked: the access token minted from it before (and cached) is refused at once" "$DJ1"
refresh_grant "$DRT2"
is "$R2: grant_type=refresh_token -> 200" "$STATUS" 200
try "the access token minted from $R2 still works" 200 "$DJ2"
LIST=$(run_list dave)
is "berth token list dave: only $R2 left" "$(refresh_rows | cut -f1)" "$R2"
run b token revoke "$R1"
is "berth token revoke $R1 again: exit 1" "$RC" 1
like "... no refresh token $R1" "$OUT" "no refresh token $R1"
for bad in r0 rx r-1 r 1r r01; do
    run b token revoke "$bad"
    is "berth token revoke $bad: a usage error (exit 2)" "$RC" 2
done

# ------------------------------------------------------------ access tokens, revoked
AT=$(mktoken alice ci 'repository:x/*:pull registry:catalog:*')
like "berth token create alice ci --scope 'repository:x/*:pull registry:catalog:*'" "$AT" '^berth_[0-9]+_'
ATID=$(token_id ci)
api GET "/v2/x/y/blobs/$D" -u "alice:$AT"
is "the access token as a Basic password: pull x/y -> 200" "$STATUS" 200
api POST /v2/x/y/blobs/uploads/ -u "alice:$AT" -H 'Content-Length: 0'
is "... push x/y -> 401 (its scope is pull; alice herself may push)" "$STATUS" 401
get_token alice "$AT" "repository:x/y:pull,push"
JT=$TOKEN
is "GET /token with the access token: pull only" "$(granted "$JT")" "x/y:pull"
is "... the JWT names the access token (tid)" "$(jwt_part "$JT" 1 | jq -r .tid)" "$ATID"
try "the JWT issued from the access token" 200 "$JT"
api GET /v2/_catalog -u "alice:$AT"
is "the access token as a Basic password: the catalog lists x/* only" "$STATUS $(jq -c .repositories "$BODY")" \
    '200 ["x/y","x/z"]'
get_token alice "$AT" "registry:catalog:*"
bearer GET /v2/_catalog "$TOKEN"
is "a catalog JWT issued from the access token: the catalog lists x/* only too" \
    "$STATUS $(jq -c .repositories "$BODY")" '200 ["x/y","x/z"]'
# docker login with an access token asks for offline_token: the refresh token must not be worth more than the
# access token (its scope), nor outlive it
api GET "$REALM?service=berth&scope=repository:x/y:pull,push&offline_token=true" -u "alice:$AT"
is "GET /token&offline_token=true with the access token -> 200" "$STATUS" 200
ART=$(jq -r '.refresh_token // empty' "$BODY")
if [[ -n $ART ]]; then
    api POST "$REALM" --data-urlencode grant_type=refresh_token --data-urlencode "refresh_token=$ART" \
        --data-urlencode service=berth --data-urlencode "scope=repository:x/y:pull,push repository:w/q:pull"
    is "... its refresh token grants no more than the access token's scope (x/y pull)" "$STATUS $(jq -r .scope "$BODY")" \
        "200 repository:x/y:pull"
else
    pass "... its refresh token grants no more than the access token's scope (none was issued)"
fi
check "berth token revoke $ATID" b token revoke "$ATID"
try "the JWT issued from the access token, once it is revoked" 401 "$JT"
api GET "/v2/x/y/blobs/$D" -u "alice:$AT"
is "the revoked access token as a Basic password -> 401" "$STATUS" 401
get_token alice "$AT" "repository:x/y:pull"
is "GET /token with the revoked access token -> 401" "$STATUS" 401
try "alice's own (password) token is unaffected" 200 "$TOK"
if [[ -n $ART ]]; then
    api POST "$REALM" --data-urlencode grant_type=refresh_token --data-urlencode "refresh_token=$ART" \
        --data-urlencode service=berth --data-urlencode "scope=repository:x/y:pull"
    is "the refresh token obtained with the access token, once it is revoked -> 401" "$STATUS" 401
else
    pass "the refresh token obtained with the access token, once it is revoked (none was issued)"
fi

ET=$(b token create alice short --scope 'repository:x/*:pull' --expires 3s 2>/dev/null)
EXP=$(date -d "$(b token list alice 2>/dev/null | awk -F'\t' '$3 == "short" { print $5 }')" +%s)
get_token alice "$ET" "repository:x/y:pull"
EJT=$TOKEN
# statuses TOKEN N : the statuses of N GETs of the x/y blob with TOKEN, each on a new connection (so that every
# event loop thread, each with its own cache of verified tokens, sees it)
statuses() {
    local i out=()
    for ((i = 0; i < $2; i++)); do
        bearer GET "/v2/x/y/blobs/$D" "$1"
        out+=("$STATUS")
    done
    echo "${out[*]}"
}
is "a JWT from an access token that expires in 3 s, 8 times" "$(statuses "$EJT" 8)" "200 200 200 200 200 200 200 200"
while (($(date +%s) < EXP)); do sleep 0.1; done
api GET "/v2/x/y/blobs/$D" -u "alice:$ET"
is "the expired access token as a Basic password -> 401" "$STATUS" 401
is "the JWT issued from it, once it expired, 4 times -> 401" "$(statuses "$EJT" 4)" "401 401 401 401"

# a password that looks like an access token
if adduser dan berth_1_looks-like-a-token >/dev/null 2>&1; then
    api GET /v2/ -u dan:berth_1_looks-like-a-token
    is "a user whose password begins with berth_ can log in with it (or the CLI refuses such a password)" "$STATUS" 200
else
    pass "a user whose password begins with berth_ can log in with it (or the CLI refuses such a password)"
fi

# ------------------------------------------------------------ failed logins are rate-limited
for i in 1 2 3; do
    api GET "$REALM?service=berth" -u rl1:wrong-$i
    is "rl1: wrong password $i -> 401" "$STATUS" 401
done
api GET "$REALM?service=berth" -u rl1:rl1-pw1
is "rl1: after 3 failures, even the right password -> 429" "$STATUS" 429
like "... Retry-After: the 2 s backoff" "$(hdr Retry-After)" '^[12]$'
is_error "... TOOMANYREQUESTS" 429 TOOMANYREQUESTS
api GET /v2/ -u rl1:rl1-pw1
is "rl1: Basic on /v2/ -> 429 too" "$STATUS" 429
has_hdr Retry-After
is "... with Retry-After" "$?" 0
pw_grant rl1 rl1-pw1
is "rl1: POST password grant -> 429 too" "$STATUS" 429
api GET "$REALM?service=berth" -u rl1:rl1-pw1 -H 'X-Forwarded-For: 192.0.2.7'
is "rl1: X-Forwarded-For from an untrusted peer changes nothing -> 429" "$STATUS" 429
api GET "$REALM?service=berth" -u rl2:rl2-pw1
is "rl2 from the same address, right password -> 200" "$STATUS" 200
api GET "$REALM?service=berth" -u rl2:wrong
is "rl2, one wrong password -> 401 (not 429)" "$STATUS" 401
api GET "$REALM?service=berth" -u admin:"$ADMIN_PW"
is "admin from the same address -> 200" "$STATUS" 200
if curl -s -o /dev/null --interface 127.0.0.2 "$URL/healthz" 2>/dev/null; then
    api GET "$REALM?service=berth" -u rl1:rl1-pw1 --interface 127.0.0.2
    is "rl1 from another address (127.0.0.2), right password -> 200" "$STATUS" 200
else
    pass "rl1 from another address: # SKIP cannot connect from 127.0.0.2"
fi
for u in rl3 rl4; do
    for i in 1 2 3; do api GET /v2/ -u $u:wrong-$i; done
    is "$u: 3 wrong passwords (Basic on /v2/), the 3rd -> 401" "$STATUS" 401
    api GET /v2/ -u $u:$u-pw1
    is "$u: then -> 429" "$STATUS" 429
done
sleep 2.2
api GET "$REALM?service=berth" -u rl4:rl4-pw1
is "rl4: the 2 s backoff over, right password -> 200" "$STATUS" 200
api GET "$REALM?service=berth" -u rl3:wrong-4
is "rl3: the backoff over, a 4th wrong password -> 401" "$STATUS" 401
api GET "$REALM?service=berth" -u rl3:rl3-pw1
is "rl3: then -> 429" "$STATUS" 429
like "... Retry-After: the doubled backoff, 4 s" "$(hdr Retry-After)" '^[34]$'

# ------------------------------------------------------------ password spraying: one address, many names
if curl -s -o /dev/null --interface 127.0.0.3 "$URL/healthz" 2>/dev/null; then
    codes=
    for i in $(seq 1 30); do
        api GET "$REALM?service=berth" -u "spray$i:guess" --interface 127.0.0.3
        codes+=" $STATUS"
    done
    is "127.0.0.3 tries 30 different names (auth.login_failures_per_address) -> 401 each" "$(tr ' ' '\n' <<<"$codes" |
        sort -u | xargs)" 401
    adduser sprayed sprayed-pw1 >/dev/null
    api GET "$REALM?service=berth" -u sprayed:sprayed-pw1 --interface 127.0.0.3
    is "then even a right password (not cached) from that address -> 429" "$STATUS" 429
    like "... with Retry-After" "$(hdr Retry-After)" '^[12]$'
    api GET "$REALM?service=berth" -u spray31:guess --interface 127.0.0.3
    is "... and a 31st name -> 429 (no password hash is computed)" "$STATUS" 429
    api GET "$REALM?service=berth" -u sprayed:sprayed-pw1
    is "the same login from 127.0.0.1 -> 200" "$STATUS" 200
else
    pass "password spraying: # SKIP cannot connect from 127.0.0.3"
fi

# ------------------------------------------------------------ a restart keeps the key; external_url names the realm
stop_berth
BERTH_ENV+=(BERTH_EXTERNAL_URL=https://registry.example/)
start_berth_again
try "after a restart, a token issued before (same key)" 200 "$TOK"
api GET /token/jwks
is "... the JWKS is the same" "$(cat "$BODY")" "$(cat "$T/jwks.json")"
api GET /v2/
is "external_url: the realm is <external_url>/token" "$STATUS $(challenge)" \
    "401 Bearer realm=\"https://registry.example/token\",service=\"berth\""

done_testing
