#!/usr/bin/env bash
# External token issuers (auth.external_issuer, auth.external_keys, auth.external_keys_refresh), end to end:
#   - berth I issues tokens (issuer idp-one); berth W another issuer's (idp-two), with its own key;
#   - berth T trusts I through I's JWKS URL (/token/jwks), berth P through I's public key in a PEM file;
#   - I's tokens are honoured for what their access claim grants, and no more; W's tokens, and tokens signed with
#     I's key but naming another issuer, are refused;
#   - I's key changes (I restarts with a new one): T picks the new key up from the URL, and P from its rewritten
#     file, within the refresh interval and without a restart; tokens of the old key are refused from then on,
#     also those T had verified and cached; with I gone, T keeps the keys it read.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/authlib.bash"

REFRESH=2 # auth.external_keys_refresh, seconds
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done; _cleanup' EXIT

# save NAME : remember the current server as NAME_PID, NAME_URL, NAME_SRV, NAME_DATA; use NAME : make it current
save() {
    printf -v "${1}_PID" '%s' "$BERTH_PID"
    printf -v "${1}_URL" '%s' "$URL"
    printf -v "${1}_SRV" '%s' "$SRV"
    printf -v "${1}_DATA" '%s' "$DATA"
    printf -v "${1}_PORT" '%s' "$PORT"
    eval "${1}_ENV=(\"\${BERTH_ENV[@]}\")"
    PIDS+=("$BERTH_PID")
}
use() {
    local v=${1}_PID
    BERTH_PID=${!v}
    v=${1}_URL URL=${!v}
    v=${1}_SRV SRV=${!v}
    v=${1}_DATA DATA=${!v}
    v=${1}_PORT PORT=${!v}
    REG=127.0.0.1:$PORT
    eval "BERTH_ENV=(\"\${${1}_ENV[@]}\")"
    _san_off=$(size_of "$SRV/berth.log")
}
# token_from URL SCOPE : a token of the berth at URL for its admin (sets TOKEN)
token_from() {
    api GET "$1/token?service=berth&scope=$2" -u "admin:$ADMIN_PW"
    TOKEN=$(jq -r '.token // empty' "$BODY")
}
# on URL DESC WANT TOKEN : GET the blob of x/y on the berth at URL with TOKEN -> WANT
on() {
    bearer GET "$1/v2/x/y/blobs/$D" "$4"
    is "$2 -> $3" "$STATUS" "$3"
}
# forge ISS KEYFILE KID SCOPE_JSON : an ES256 token signed with KEYFILE, for the service berth
forge() {
    local t
    t=$(date +%s)
    "${JWT[@]}" sign ES256 "$2" "{\"alg\":\"ES256\",\"typ\":\"JWT\",\"kid\":\"$3\"}" \
        "{\"iss\":\"$1\",\"sub\":\"robot\",\"aud\":\"berth\",\"iat\":$t,\"nbf\":$t,\"exp\":$((t + 300)),\"access\":$4}"
}
XY_PULL='[{"type":"repository","name":"x/y","actions":["pull"]}]'

# ---------------------------------------------------------------- the issuers
start_berth BERTH_MODE=private BERTH_ADMIN_PASSWORD="$ADMIN_PW" BERTH_AUTH_ISSUER=idp-one \
    BERTH_AUTH_KEY="$T/i-key1.pem"
save I
start_berth BERTH_MODE=private BERTH_ADMIN_PASSWORD="$ADMIN_PW" BERTH_AUTH_ISSUER=idp-two
save W
KID1=$(jwt_part "$(token_from "$I_URL" repository:x/y:pull && echo "$TOKEN")" 0 | jq -r .kid)
check "I's key: a P-256 PEM public key" bash -c "openssl ec -in '$T/i-key1.pem' -pubout -out '$T/i-pub.pem' 2>/dev/null"

# ---------------------------------------------------------------- T: I's JWKS by URL; P: I's PEM public key
start_berth BERTH_MODE=private BERTH_ADMIN_PASSWORD="$ADMIN_PW" BERTH_AUTH_EXTERNAL_ISSUER=idp-one \
    BERTH_AUTH_EXTERNAL_KEYS="$I_URL/token/jwks" BERTH_AUTH_EXTERNAL_KEYS_REFRESH=${REFRESH}s
save T
start_berth BERTH_MODE=private BERTH_ADMIN_PASSWORD="$ADMIN_PW" BERTH_AUTH_EXTERNAL_ISSUER=idp-one \
    BERTH_AUTH_EXTERNAL_KEYS="$T/i-pub.pem" BERTH_AUTH_EXTERNAL_KEYS_REFRESH=${REFRESH}s
save P
mkrand "$T/blob" 3000
D=$(sha256_of "$T/blob")
for s in T P; do
    use $s
    api POST "/v2/x/y/blobs/uploads/?digest=$D" -u "admin:$ADMIN_PW" -H 'Content-Type: application/octet-stream' \
        --data-binary "@$T/blob"
    is "$s: its admin pushes a blob to x/y -> 201" "$STATUS" 201
done
like "T read I's JWKS at start (logged)" "$(grep 'auth.external_keys' "$T_SRV/berth.log")" \
    "auth.external_keys $I_URL/token/jwks: 1 key of issuer idp-one"

token_from "$I_URL" "repository:x/y:pull"
I1=$TOKEN
is "I's token carries iss idp-one and I's kid" "$(jwt_part "$I1" 1 | jq -r .iss) $(jwt_part "$I1" 0 | jq -r .kid)" \
    "idp-one $KID1"
token_from "$W_URL" "repository:x/y:pull"
W1=$TOKEN
for s in T P; do
    v=${s}_URL
    U=${!v}
    on "$U" "$s: I's token for pull on x/y" 200 "$I1"
    bearer GET "$U/v2/x/z/blobs/$D" "$I1"
    is "$s: ... on x/z, which it does not name -> 401" "$STATUS" 401
    bearer POST "$U/v2/x/y/blobs/uploads/" "$I1" -H 'Content-Length: 0'
    is "$s: ... to push to x/y (pull only) -> 401" "$STATUS" 401
    on "$U" "$s: W's token (issuer idp-two, a key it does not know)" 401 "$W1"
    on "$U" "$s: a token signed with I's key but naming issuer idp-two" 401 \
        "$(forge idp-two "$T/i-key1.pem" "$KID1" "$XY_PULL")"
    on "$U" "$s: ... the same naming idp-one (the control)" 200 "$(forge idp-one "$T/i-key1.pem" "$KID1" "$XY_PULL")"
    token_from "$U" "repository:x/y:pull"
    on "$U" "$s: its own tokens still work" 200 "$TOKEN"
done
api GET "$T_URL/v2/x/y/blobs/$D" -H "Authorization: Bearer $W1"
like "a refusal is the spec's 401 with a Bearer challenge" "$STATUS $(err_code) $(challenge)" \
    "^401 UNAUTHORIZED Bearer realm="

# ---------------------------------------------------------------- I's key changes
use I
stop_berth
BERTH_ENV=("${I_ENV[@]/#BERTH_AUTH_KEY=*/BERTH_AUTH_KEY=$T/i-key2.pem}")
start_berth_again
save I
token_from "$I_URL" "repository:x/y:pull"
I2=$TOKEN
KID2=$(jwt_part "$I2" 0 | jq -r .kid)
isnt "I restarted with a new key: its tokens have another kid" "$KID2" "$KID1"
check "I's new public key into P's file (rewritten in place)" bash -c \
    "openssl ec -in '$T/i-key2.pem' -pubout -out '$T/i-pub.new' 2>/dev/null && cat '$T/i-pub.new' >'$T/i-pub.pem'"
t0=$(now)
# within the refresh interval (and a second for the poll), both take the new key, without a restart
for s in T P; do
    v=${s}_URL
    U=${!v}
    got=
    while awk -v e="$(elapsed "$t0")" -v r="$REFRESH" 'BEGIN { exit !(e < r + 1.5) }'; do
        bearer GET "$U/v2/x/y/blobs/$D" "$I2"
        [[ $STATUS == 200 ]] && got=$(elapsed "$t0") && break
        sleep 0.1
    done
    if [[ -n $got ]]; then
        pass "$s: I's token of the new key accepted ${got}s after the change (refresh every ${REFRESH}s)"
    else
        fail "$s: I's token of the new key accepted within $((REFRESH + 1))s" "last status $STATUS" \
            "$(grep 'external_keys' "$(eval echo "\$${s}_SRV")/berth.log" | tail -n 3)"
    fi
    on "$U" "$s: I's token of the old key (verified and cached before) is refused now" 401 "$I1"
done
like "T logged the new key" "$(grep 'auth.external_keys' "$T_SRV/berth.log" | tail -n 1)" "1 key of issuer idp-one"

# the issuer gone: T keeps what it read
use I
stop_berth
sleep $((REFRESH + 1))
on "$T_URL" "I stopped, a refresh later: T still accepts I's token (the keys read before stay)" 200 "$I2"
check "... and logged that it could not fetch them" grep -q "cannot fetch it" "$T_SRV/berth.log"

for s in W T P; do
    use $s
    stop_berth
done
done_testing
