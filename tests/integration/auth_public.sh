#!/usr/bin/env bash
# Mode public with real clients: anonymous pulls of public repositories (skopeo without login does the token dance
# itself), users push to their own namespace <user>/… and not to another's, organisations' teams with push
# permission let members push to <org>/…, a private repository is closed to others until a team grant opens it,
# an access token with a pull scope pulls but does not push.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/authlib.bash"

command -v skopeo >/dev/null || skip_all "skopeo is not installed"
start_berth BERTH_MODE=public BERTH_ADMIN_PASSWORD="$ADMIN_PW"

L=$T/layout
MD=$(oci_layout "$L" v1 2)
MD2=$(oci_layout "$L" v2 1)

# ------------------------------------------------------------ anonymous, before anything exists
api GET /v2/
is "anonymous GET /v2/ -> 401 (clients must fetch a token)" "$STATUS" 401
is "... challenge names the token realm and service" "$(challenge)" "Bearer realm=\"$URL/token\",service=\"berth\""
get_token "" "" "repository:alice/app:pull"
is "anonymous GET /token -> 200" "$STATUS" 200
is "... nothing granted on a repository that does not exist" "$(granted "$TOKEN")" ""
bearer GET /v2/ "$TOKEN"
is "anonymous token on GET /v2/ -> 200" "$STATUS" 200

for u in alice bob carol dave; do check "berth user add $u" adduser $u "$u-pw1"; done
check "berth org add acme" b org add acme
check "berth team add acme devs --permission pull,push" b team add acme devs --permission pull,push
check "berth team member acme devs carol" b team member acme devs carol

# ------------------------------------------------------------ own namespace; anonymous pulls
check "skopeo login alice" sko_login alice alice-pw1
check "alice: skopeo copy oci:L:v1 -> alice/app:v1 (her namespace)" push_as alice "$L" v1 alice/app:v1
is "alice: skopeo inspect alice/app:v1" "$(inspect_as alice alice/app:v1 2>/dev/null)" "$MD"

is "anonymous (no login): skopeo inspect alice/app:v1 (new repositories are public)" \
    "$(inspect_as anon alice/app:v1 2>/dev/null)" "$MD"
check "anonymous: skopeo copy alice/app:v1 -> oci:" pull_as anon alice/app:v1 "$T/anon-out"
is "... the same manifest" "$(layout_ref "$T/anon-out" pulled)" "$MD"
check "... every blob byte for byte" cmp "$(layout_blob "$L" "$MD")" "$(layout_blob "$T/anon-out" "$MD")"
token_requests | grep -v '[?&]account=' | grep -q '[?&]scope=repository:alice/app:pull\(&\|$\)'
is "... skopeo fetched an anonymous pull token (no account=)" "$?" 0
refused "anonymous: push to alice/app:anon is refused" push_as anon "$L" v1 alice/app:anon
refused "anonymous: push to anon/app:v1 is refused" push_as anon "$L" v1 anon/app:v1
api GET /v2/alice/app/manifests/v1
is "anonymous, no token at all: GET a public manifest -> 200 (curl needs no token dance)" \
    "$STATUS $(hdr Docker-Content-Digest)" "200 $MD"
api PUT /v2/alice/app/manifests/anon -H "Content-Type: $MT_OCI_MANIFEST" --data-binary "@$(layout_blob "$L" "$MD")"
is "anonymous, no token: PUT a manifest -> 401" "$STATUS" 401
is "... challenge with the push scope, no error= (no credentials were sent)" "$(challenge)" \
    "Bearer realm=\"$URL/token\",service=\"berth\",scope=\"repository:alice/app:push\""
get_token "" "" "repository:alice/app:pull,push"
is "anonymous: a pull,push token for alice/app grants pull" "$(granted "$TOKEN")" "alice/app:pull"
bearer GET /v2/alice/app/manifests/v1 "$TOKEN"
is "... which GETs the manifest" "$STATUS $(hdr Docker-Content-Digest)" "200 $MD"
bearer PUT /v2/alice/app/manifests/anon "$TOKEN" -H "Content-Type: $MT_OCI_MANIFEST" \
    --data-binary "@$(layout_blob "$L" "$MD")"
is "... and PUT a manifest -> 401" "$STATUS" 401
is "... challenge with the push scope and error=insufficient_scope" "$(challenge)" \
    "Bearer realm=\"$URL/token\",service=\"berth\",scope=\"repository:alice/app:push\",error=\"insufficient_scope\""

# ------------------------------------------------------------ another user's namespace
check "skopeo login bob" sko_login bob bob-pw1
refused "bob: push to alice/app:bob is refused" push_as bob "$L" v2 alice/app:bob
refused "bob: push to alice/new:v1 is refused" push_as bob "$L" v2 alice/new:v1
api GET /v2/alice/app/manifests/bob -u bob:bob-pw1
is "... alice/app:bob was not created (bob may pull alice/app: the honest 404)" "$STATUS" 404
get_token bob bob-pw1 "repository:alice/app:pull,push" "repository:bob/app:pull,push"
is "bob: token for alice/app and bob/app pull,push grants pull on alice's, all asked on his" \
    "$(granted "$TOKEN")" "alice/app:pull bob/app:pull,push"
bearer PUT /v2/alice/app/manifests/bob "$TOKEN" -H "Content-Type: $MT_OCI_MANIFEST" \
    --data-binary "@$(layout_blob "$L" "$MD")"
is "bob's token: PUT alice/app manifest -> 401" "$STATUS" 401
like "... with error=insufficient_scope" "$(challenge)" 'scope="repository:alice/app:push",error="insufficient_scope"'
check "bob: push to bob/app:v1 (his namespace)" push_as bob "$L" v2 bob/app:v1
is "... anonymous can pull it" "$(inspect_as anon bob/app:v1 2>/dev/null)" "$MD2"

# ------------------------------------------------------------ organisations: a team with push
check "skopeo login carol (acme/devs, pull,push)" sko_login carol carol-pw1
check "carol: push to acme/app:v1 (her team's organisation)" push_as carol "$L" v1 acme/app:v1
is "... anonymous can pull it" "$(inspect_as anon acme/app:v1 2>/dev/null)" "$MD"
refused "bob (not in acme): push to acme/app:bob is refused" push_as bob "$L" v2 acme/app:bob
refused "carol: push to alice/app:carol is refused (acme/devs covers acme/* only)" push_as carol "$L" v2 alice/app:carol
check "berth team add acme readers --permission pull" b team add acme readers --permission pull
check "berth team member acme readers dave" b team member acme readers dave
check "skopeo login dave (acme/readers, pull)" sko_login dave dave-pw1
refused "dave: push to acme/app:dave is refused (his team may pull only)" push_as dave "$L" v2 acme/app:dave
api GET /v2/acme/app/tags/list -u "admin:$ADMIN_PW"
is "... acme/app has only the tag carol pushed" "$STATUS $(jq -c .tags "$BODY")" '200 ["v1"]'

# ------------------------------------------------------------ a private repository, and a team grant that opens it
check "alice: push to alice/secret:v1" push_as alice "$L" v2 alice/secret:v1
check "berth repo visibility alice/secret private" b repo visibility alice/secret private
refused "anonymous: skopeo inspect alice/secret:v1 is refused" inspect_as anon alice/secret:v1
refused "bob: skopeo inspect alice/secret:v1 is refused" inspect_as bob alice/secret:v1
refused "bob: skopeo copy alice/secret:v1 -> oci: is refused" pull_as bob alice/secret:v1 "$T/bob-secret"
is "alice: skopeo inspect alice/secret:v1 (hers)" "$(inspect_as alice alice/secret:v1 2>/dev/null)" "$MD2"
same_as_missing "bob, Basic: alice/secret answers as a repository that does not exist" \
    GET /v2/alice/secret/manifests/v1 /v2/alice/nothing/manifests/v1 alice/secret alice/nothing -u bob:bob-pw1
is "... which is 401" "$HIDDEN_STATUS" 401
same_as_missing "anonymous: alice/secret answers as a repository that does not exist" \
    GET /v2/alice/secret/tags/list /v2/alice/nothing/tags/list alice/secret alice/nothing
api GET /v2/_catalog
is "anonymous catalog lists the public repositories only" "$STATUS $(jq -c .repositories "$BODY")" \
    '200 ["acme/app","alice/app","bob/app"]'
api GET /v2/_catalog -u bob:bob-pw1
is "bob's catalog: the same" "$STATUS $(jq -c .repositories "$BODY")" '200 ["acme/app","alice/app","bob/app"]'
api GET /v2/_catalog -u alice:alice-pw1
is "alice's catalog also lists alice/secret" "$STATUS $(jq -c .repositories "$BODY")" \
    '200 ["acme/app","alice/app","alice/secret","bob/app"]'
get_token "" "" "registry:catalog:*"
is "anonymous catalog token grants registry:catalog:*" "$(granted "$TOKEN")" "catalog:*"
bearer GET /v2/_catalog "$TOKEN"
is "... the catalog with it: public repositories only" "$STATUS $(jq -c .repositories "$BODY")" \
    '200 ["acme/app","alice/app","bob/app"]'

check "berth team member acme readers bob" b team member acme readers bob
refused "bob in acme/readers: alice/secret still refused (no grant yet)" inspect_as bob alice/secret:v1
check "berth repo grant alice/secret acme/readers pull" b repo grant alice/secret acme/readers pull
is "bob: skopeo inspect alice/secret:v1 through the team grant" "$(inspect_as bob alice/secret:v1 2>/dev/null)" "$MD2"
check "bob: skopeo copy alice/secret:v1 -> oci:" pull_as bob alice/secret:v1 "$T/bob-secret"
is "... the same manifest" "$(layout_ref "$T/bob-secret" pulled)" "$MD2"
refused "bob: push to alice/secret:bob is refused (the grant is pull)" push_as bob "$L" v1 alice/secret:bob
refused "anonymous: alice/secret is still refused" inspect_as anon alice/secret:v1
refused "carol (acme/devs, not readers): alice/secret is refused" inspect_as carol alice/secret:v1

# ------------------------------------------------------------ access tokens: pull, not push
TOK=$(mktoken alice ci-pull 'repository:alice/*:pull')
like "berth token create alice ci-pull --scope repository:alice/*:pull" "$TOK" '^berth_[0-9]+_'
check "skopeo login alice with the access token" sko_login alice "$TOK"
is "alice (token): skopeo inspect alice/secret:v1" "$(inspect_as alice alice/secret:v1 2>/dev/null)" "$MD2"
check "alice (token): skopeo copy alice/app:v1 -> oci:" pull_as alice alice/app:v1 "$T/tok-out"
refused "alice (token): push to alice/app:tok is refused" push_as alice "$L" v2 alice/app:tok
api GET /v2/alice/app/manifests/tok -u alice:alice-pw1
is "... alice/app:tok was not created" "$STATUS" 404
get_token alice "$TOK" "repository:alice/app:pull,push"
is "the access token's JWT for alice/app pull,push grants pull only" "$(granted "$TOKEN")" "alice/app:pull"
like "... and names the access token (tid)" "$(jwt_part "$TOKEN" 1 | jq -r .tid)" '^[0-9]+$'

check "berth robot add ci" b robot add ci
check "berth repo grant 'acme/*' ci pull,push" b repo grant 'acme/*' ci pull,push
RO=$(mktoken ci ro 'repository:acme/*:pull')
check "skopeo login ci (robot) with a pull token" sko_login ci "$RO"
check "ci: skopeo copy acme/app:v1 -> oci:" pull_as ci acme/app:v1 "$T/ci-out"
refused "ci: push to acme/app:ci is refused" push_as ci "$L" v2 acme/app:ci
RW=$(mktoken ci rw 'repository:acme/*:pull,push')
check "skopeo login ci with a pull,push token" sko_login ci "$RW"
check "ci: push to acme/app:ci works with it" push_as ci "$L" v2 acme/app:ci
refused "ci: push to alice/app:ci is refused (outside its grant)" push_as ci "$L" v2 alice/app:ci

done_testing
