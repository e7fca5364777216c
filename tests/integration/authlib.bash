# Helpers for the authentication tests (auth_private.sh, auth_public.sh, auth_cloud.sh, tokens.sh); source it
# after lib.sh. Not a test file itself (tests/run runs *.sh only).
#
# CLI:     b ARGS...  (berth on $DATA while the server runs)   adduser NAME PASSWORD [--admin]
#          mktoken OWNER NAME SCOPE -> prints the access token's secret    token_id NAME -> its id
# skopeo:  as USER CMD...  (CMD with USER's auth file $T/auth-USER.json; "anon" has none)
#          sko_login USER PASSWORD   push_as USER LAYOUT TAG REPO:TAG   pull_as USER REPO:TAG DIR
#          inspect_as USER REPO:TAG  (digest on stdout)   refused DESC CMD... (fails with an auth error)
# Tokens:  get_token USER PASSWORD SCOPE...  (USER "" = anonymous; sets TOKEN, "" unless 200)
#          granted JWT -> "name:actions ..." of its access claim     jwt_part JWT N    JWT=(jwt.py command)
#          bearer METHOD PATH TOKEN [curl args...]  (api with Authorization: Bearer)
#          token_requests [AGENT] -> the /token requests of skopeo (AGENT) in the access log, decoded
# Checks:  challenge -> the WWW-Authenticate header of the last response
#          same_as_missing DESC METHOD HIDDEN_PATH MISSING_PATH HIDDEN_NAME MISSING_NAME [curl args...]

JWT=("$PYTHON" "$(dirname "${BASH_SOURCE[0]}")/jwt.py")
ADMIN_PW=admin-Secret-7
NOTLS=(--src-tls-verify=false --dest-tls-verify=false)
REFUSED_RE='denied|unauthorized|authentication required|insufficient_scope|invalid username/password|401'

b() {
    env -u BERTH_CONFIG -u BERTH_ADMIN_PASSWORD BERTH_STORAGE_ROOT="$DATA" BERTH_LOG_LEVEL=warn "$BERTH" "$@"
}
adduser() {
    local name=$1 pw=$2
    shift 2
    b user add "$name" "$@" --password-stdin <<<"$pw"
}
mktoken() {
    b token create "$1" "$2" --scope "$3" 2>/dev/null
}
token_id() {
    b token list 2>/dev/null | awk -F'\t' -v n="$1" '$3 == n { print $1 }'
}

as() {
    local u=$1
    shift
    REGISTRY_AUTH_FILE=$T/auth-$u.json "$@"
}
sko_login() {
    as "$1" skopeo login --tls-verify=false -u "$1" --password-stdin "$REG" <<<"$2"
}
push_as() {
    as "$1" sko copy "${NOTLS[@]}" "oci:$2:$3" "docker://$REG/$4"
}
pull_as() {
    rm -rf "$3"
    as "$1" sko copy "${NOTLS[@]}" "docker://$REG/$2" "oci:$3:pulled"
}
inspect_as() {
    local out
    out=$(as "$1" sko inspect --tls-verify=false "docker://$REG/$2") || return
    jq -er .Digest <<<"$out"
}

# refused DESC CMD... : CMD fails, and for an authentication or authorization reason (not, say, a crash).
refused() {
    local desc=$1 rc
    shift
    "$@" >"$T/refused.out" 2>&1
    rc=$?
    if ((rc != 0)) && grep -qiE "$REFUSED_RE" "$T/refused.out"; then
        _result 1 "$desc"
        return 0
    fi
    _result 0 "$desc"
    if ((rc == 0)); then
        diag "command: $*" "succeeded; it should have been refused" "$(tail -n 5 "$T/refused.out")"
    else
        diag "command: $*" "exit status $rc, but not with an authentication error:" "$(tail -n 10 "$T/refused.out")"
    fi
    return 1
}

get_token() {
    local user=$1 pw=$2 s q="service=berth"
    shift 2
    for s in "$@"; do q+="&scope=$s"; done
    if [[ -n $user ]]; then
        api GET "/token?$q" -u "$user:$pw"
    else
        api GET "/token?$q"
    fi
    TOKEN=
    [[ $STATUS == 200 ]] && TOKEN=$(jq -r .token "$BODY")
    return 0
}
jwt_part() { "${JWT[@]}" part "$1" "$2"; }
granted() {
    jwt_part "$1" 1 | jq -r '[.access[]? | "\(.name):\(.actions | join(","))"] | join(" ")'
}
bearer() {
    local m=$1 p=$2 tok=$3
    shift 3
    api "$m" "$p" -H "Authorization: Bearer $tok" "$@"
}
challenge() { hdr WWW-Authenticate; }
# token_requests [AGENT] : the /token requests skopeo (or AGENT) made, from the access log: their queries
# percent-decoded, one a line
token_requests() {
    grep "\"${1:-skopeo}/" "$SRV/access.log" | grep -o '"[A-Z]* /token?[^ ]*' |
        sed 's/%3[Aa]/:/g; s/%2[Ff]/\//g; s/%2[Cc]/,/g; s/%2[Aa]/*/g'
}

# same_as_missing DESC METHOD HIDDEN_PATH MISSING_PATH HIDDEN_NAME MISSING_NAME [curl args...] : a request on a
# repository the caller may not pull answers exactly as the same request on one that does not exist: same status,
# same headers (but Date and X-Request-Id) and body once the repository names are swapped. Sets HIDDEN_STATUS; STATUS is the other's.
_response_text() { cat "$HDRS" "$BODY" | tr -d '\r' | grep -viE '^(date|x-request-id):'; } # (curl --head puts headers in both)
same_as_missing() {
    local desc=$1 m=$2 hp=$3 mp=$4 hn=$5 mn=$6 r1
    shift 6
    api "$m" "$hp" "$@"
    HIDDEN_STATUS=$STATUS
    r1=$(_response_text)
    api "$m" "$mp" "$@"
    is "$desc" "${r1//$hn/$mn}" "$(_response_text)"
}
