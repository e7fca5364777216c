#!/usr/bin/env bash
# Mode private (the default) with real clients: nothing without credentials, not even /v2/; every account pulls
# (auth.private_default_pull); push needs a grant (the administrator pushes anything); robots' access tokens;
# with private_default_pull off, another account's repository is closed until a team grant opens it.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/authlib.bash"

command -v skopeo >/dev/null || skip_all "skopeo is not installed"
start_berth BERTH_MODE=private BERTH_ADMIN_PASSWORD="$ADMIN_PW"

L=$T/layout
MD=$(oci_layout "$L" v1 2)
MD2=$(oci_layout "$L" v2 1)

# ------------------------------------------------------------ anonymous: nothing at all
api GET /v2/
is "anonymous GET /v2/ -> 401" "$STATUS" 401
is "... challenge names the token realm and service, no scope" "$(challenge)" \
    "Bearer realm=\"$URL/token\",service=\"berth\""
is_error "... UNAUTHORIZED error body" 401 UNAUTHORIZED
api GET /v2/_catalog
is "anonymous GET /v2/_catalog -> 401" "$STATUS" 401
like "... challenge asks for registry:catalog:*" "$(challenge)" 'scope="registry:catalog:\*"'
api GET /v2/team/app/manifests/v1
is "anonymous GET /v2/team/app/manifests/v1 -> 401" "$STATUS" 401
is "... challenge with scope, without error= (no credentials were sent)" "$(challenge)" \
    "Bearer realm=\"$URL/token\",service=\"berth\",scope=\"repository:team/app:pull\""
get_token "" "" "repository:team/app:pull"
is "anonymous GET /token -> 200 (an empty grant is a valid answer)" "$STATUS" 200
is "... the anonymous token grants nothing" "$(granted "$TOKEN")" ""
bearer GET /v2/ "$TOKEN"
is "anonymous token on GET /v2/ -> 401" "$STATUS" 401
bearer GET /v2/team/app/tags/list "$TOKEN"
is "anonymous token on GET /v2/team/app/tags/list -> 401" "$STATUS" 401

# ------------------------------------------------------------ accounts
check "berth user add alice" adduser alice alice-pw1
check "berth user add bob" adduser bob bob-pw1
api GET /v2/ -u alice:wrong-pw
is "Basic with a wrong password on /v2/ -> 401" "$STATUS" 401
api GET /v2/ -u nobody:alice-pw1
is "Basic for an unknown user -> 401" "$STATUS" 401
api GET /v2/ -u alice:alice-pw1
is "Basic alice on /v2/ (curl -u) -> 200" "$STATUS" 200

# ------------------------------------------------------------ the administrator pushes, accounts pull
refused "skopeo login with a wrong password fails" sko_login admin not-the-password
check "skopeo login admin" sko_login admin "$ADMIN_PW"
check "admin: skopeo copy oci:L:v1 -> team/app:v1" push_as admin "$L" v1 team/app:v1
api GET /v2/team/app/manifests/v1 -u "admin:$ADMIN_PW"
is "... the manifest is there (Basic admin)" "$STATUS $(hdr Docker-Content-Digest)" "200 $MD"
token_requests | grep '[?&]account=admin\(&\|$\)' | grep -q '[?&]scope=repository:team/app:pull,push\(&\|$\)'
is "... skopeo fetched a pull,push token for admin" "$?" 0

refused "anonymous: skopeo inspect team/app:v1 is refused" inspect_as anon team/app:v1
refused "anonymous: skopeo copy team/app:v1 -> oci: is refused" pull_as anon team/app:v1 "$T/anon-out"
refused "anonymous: skopeo copy oci: -> team/app:anon is refused" push_as anon "$L" v1 team/app:anon

check "skopeo login alice" sko_login alice alice-pw1
is "alice: skopeo inspect team/app:v1 (every account pulls)" "$(inspect_as alice team/app:v1 2>/dev/null)" "$MD"
check "alice: skopeo copy team/app:v1 -> oci:" pull_as alice team/app:v1 "$T/alice-out"
is "... the same manifest" "$(layout_ref "$T/alice-out" pulled)" "$MD"
refused "alice: push to team/app:v2 is refused (no grant)" push_as alice "$L" v2 team/app:v2
refused "alice: push to alice/own:v1 is refused (namespaces own nothing in mode private)" \
    push_as alice "$L" v1 alice/own:v1
api GET /v2/team/app/manifests/v2 -u "admin:$ADMIN_PW"
is "... team/app:v2 was not created" "$STATUS" 404
api GET /v2/alice/own/tags/list -u "admin:$ADMIN_PW"
is "... alice/own was not created" "$STATUS" 404

api PUT /v2/team/app/manifests/v3 -u alice:alice-pw1 -H "Content-Type: $MT_OCI_MANIFEST" \
    --data-binary "@$(layout_blob "$L" "$MD")"
is "alice, Basic: PUT manifest without a grant -> 401" "$STATUS" 401
is "... challenge with the push scope and error=insufficient_scope" "$(challenge)" \
    "Bearer realm=\"$URL/token\",service=\"berth\",scope=\"repository:team/app:push\",error=\"insufficient_scope\""
api DELETE "/v2/team/app/manifests/$MD" -u alice:alice-pw1
is "alice, Basic: DELETE manifest -> 401 (delete needs a grant)" "$STATUS" 401
like "... challenge with the delete scope" "$(challenge)" 'scope="repository:team/app:delete",error="insufficient_scope"'
get_token alice alice-pw1 "repository:team/app:pull,push"
is "alice: a pull,push token for team/app grants pull only" "$(granted "$TOKEN")" "team/app:pull"

check "berth repo grant 'team/*' alice push" b repo grant 'team/*' alice push
check "alice: push to team/app:v2 now works" push_as alice "$L" v2 team/app:v2
api GET /v2/team/app/manifests/v2 -u alice:alice-pw1
is "... team/app:v2 is there" "$STATUS $(hdr Docker-Content-Digest)" "200 $MD2"
refused "alice: push to alice/own:v1 is still refused (the grant covers team/*)" push_as alice "$L" v1 alice/own:v1

api GET /v2/_catalog -u alice:alice-pw1
is "alice's catalog (Basic) lists team/app" "$STATUS $(jq -c .repositories "$BODY")" '200 ["team/app"]'

# ------------------------------------------------------------ a robot's access token: pull, not push
check "berth robot add ci" b robot add ci
check "berth repo grant 'team/*' ci pull,push" b repo grant 'team/*' ci pull,push
RO=$(mktoken ci ro 'repository:team/*:pull')
like "berth token create ci ro: a secret" "$RO" '^berth_[0-9]+_'
RW=$(mktoken ci rw 'repository:team/*:pull,push')
check "skopeo login ci with the pull token" sko_login ci "$RO"
check "ci (pull token): skopeo copy team/app:v1 -> oci:" pull_as ci team/app:v1 "$T/ci-out"
is "... the same manifest" "$(layout_ref "$T/ci-out" pulled)" "$MD"
refused "ci (pull token): push to team/app:robot is refused" push_as ci "$L" v1 team/app:robot
api GET /v2/team/app/manifests/robot -u "admin:$ADMIN_PW"
is "... team/app:robot was not created" "$STATUS" 404
api PUT /v2/team/app/manifests/robot -u "ci:$RO" -H "Content-Type: $MT_OCI_MANIFEST" \
    --data-binary "@$(layout_blob "$L" "$MD")"
is "ci, Basic with the pull token: PUT manifest -> 401" "$STATUS" 401
check "skopeo login ci with the pull,push token" sko_login ci "$RW"
check "ci (pull,push token): push to team/app:robot works (so the scope made the difference)" \
    push_as ci "$L" v1 team/app:robot

# ------------------------------------------------------------ disabled user: stops at once
check "bob: skopeo login" sko_login bob bob-pw1
is "bob: skopeo inspect team/app:v1" "$(inspect_as bob team/app:v1 2>/dev/null)" "$MD"
check "berth user disable bob" b user disable bob
refused "bob (disabled): skopeo inspect is refused" inspect_as bob team/app:v1
refused "bob (disabled): skopeo login fails" sko_login bob bob-pw1
check "berth user enable bob" b user enable bob

# ------------------------------------------------------------ private_default_pull off: closed until granted
stop_berth
BERTH_ENV+=(BERTH_AUTH_PRIVATE_DEFAULT_PULL=false)
start_berth_again
check "admin: skopeo copy oci:L:v1 -> acme/lib:v1" push_as admin "$L" v1 acme/lib:v1
refused "bob: skopeo inspect team/app:v1 is refused without default pull" inspect_as bob team/app:v1
refused "bob: skopeo copy team/app:v1 -> oci: is refused" pull_as bob team/app:v1 "$T/bob-out"
api GET /v2/_catalog -u bob:bob-pw1
is "bob's catalog is empty" "$STATUS $(jq -c .repositories "$BODY")" '200 []'
same_as_missing "bob, Basic: team/app manifest answers as a repository that does not exist" \
    GET /v2/team/app/manifests/v1 /v2/team/nothing/manifests/v1 team/app team/nothing -u bob:bob-pw1
is "... which is 401" "$HIDDEN_STATUS" 401
api GET /v2/_catalog -u alice:alice-pw1
is "alice's catalog: nothing (her push grant on team/* gives no pull)" "$STATUS $(jq -c .repositories "$BODY")" '200 []'

check "berth org add acme" b org add acme
check "berth team add acme readers --permission pull" b team add acme readers --permission pull
check "berth team member acme readers bob" b team member acme readers bob
refused "bob: a team of acme opens nothing of acme/lib in mode private (no namespaces)" inspect_as bob acme/lib:v1
check "berth repo grant team/app acme/readers pull" b repo grant team/app acme/readers pull
is "bob: skopeo inspect team/app:v1 after the team grant" "$(inspect_as bob team/app:v1 2>/dev/null)" "$MD"
check "bob: skopeo copy team/app:v1 -> oci:" pull_as bob team/app:v1 "$T/bob-out"
is "... the same manifest" "$(layout_ref "$T/bob-out" pulled)" "$MD"
refused "bob: push to team/app:bob is still refused (the team has pull)" push_as bob "$L" v1 team/app:bob
api GET /v2/_catalog -u bob:bob-pw1
is "bob's catalog lists team/app only" "$STATUS $(jq -c .repositories "$BODY")" '200 ["team/app"]'
check "berth team member acme readers bob --remove" b team member acme readers bob --remove
refused "bob: out of the team, skopeo inspect team/app:v1 is refused again" inspect_as bob team/app:v1

# the realm comes from the Host header only when it is a plain host[:port]: never a way to send clients elsewhere
api GET /v2/ -H 'Host: evil.example",x="y'
is "a Host header with quotes -> 401" "$STATUS" 401
is "... and the realm falls back to the listen address" "$(hdr WWW-Authenticate)" \
    "Bearer realm=\"http://$REG/token\",service=\"berth\""
api GET /v2/ -H 'Host: registry.example:5000'
like "a plain Host header names the realm" "$(hdr WWW-Authenticate)" '^Bearer realm="http://registry\.example:5000/token"'

done_testing
