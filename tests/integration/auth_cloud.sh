#!/usr/bin/env bash
# Mode cloud with real clients: new repositories are private to their owner; another tenant can neither pull nor
# see them (skopeo inspect fails, the catalog does not list them, a request answers as for a repository that does
# not exist, a cross-repository mount from them is a normal upload); `berth repo visibility … public` opens
# anonymous pulls; a grant to a user or a team opens it; organisations' teams; access tokens pull but not push.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/authlib.bash"

command -v skopeo >/dev/null || skip_all "skopeo is not installed"
start_berth BERTH_MODE=cloud BERTH_ADMIN_PASSWORD="$ADMIN_PW"

L=$T/layout
MD=$(oci_layout "$L" v1 2)
MD2=$(oci_layout "$L" v2 1)
LAYER=$(jq -r '.layers[0].digest' "$(layout_blob "$L" "$MD")")
LAYER2=$(jq -r '.layers[1].digest' "$(layout_blob "$L" "$MD")")

api GET /v2/
is "anonymous GET /v2/ -> 401" "$STATUS" 401
is "... challenge names the token realm and service" "$(challenge)" "Bearer realm=\"$URL/token\",service=\"berth\""

for u in alice bob carol; do check "berth user add $u" adduser $u "$u-pw1"; done
check "skopeo login alice" sko_login alice alice-pw1
check "skopeo login bob" sko_login bob bob-pw1
check "skopeo login carol" sko_login carol carol-pw1

# ------------------------------------------------------------ new repositories are private
check "alice: skopeo copy oci:L:v1 -> alice/app:v1" push_as alice "$L" v1 alice/app:v1
is "alice: skopeo inspect alice/app:v1" "$(inspect_as alice alice/app:v1 2>/dev/null)" "$MD"
check "alice: skopeo copy alice/app:v1 -> oci:" pull_as alice alice/app:v1 "$T/alice-out"
is "... the same manifest" "$(layout_ref "$T/alice-out" pulled)" "$MD"
refused "bob: skopeo inspect alice/app:v1 is refused" inspect_as bob alice/app:v1
refused "bob: skopeo copy alice/app:v1 -> oci: is refused" pull_as bob alice/app:v1 "$T/bob-out"
refused "bob: push to alice/app:bob is refused" push_as bob "$L" v2 alice/app:bob
refused "anonymous: skopeo inspect alice/app:v1 is refused" inspect_as anon alice/app:v1
refused "anonymous: skopeo copy alice/app:v1 -> oci: is refused" pull_as anon alice/app:v1 "$T/anon-out"
check "bob: push to bob/app:v1 (his namespace)" push_as bob "$L" v2 bob/app:v1
refused "alice: skopeo inspect bob/app:v1 is refused" inspect_as alice bob/app:v1

api GET /v2/_catalog -u bob:bob-pw1
is "bob's catalog lists his repository only" "$STATUS $(jq -c .repositories "$BODY")" '200 ["bob/app"]'
api GET /v2/_catalog -u alice:alice-pw1
is "alice's catalog lists hers only" "$STATUS $(jq -c .repositories "$BODY")" '200 ["alice/app"]'
api GET /v2/_catalog
is "anonymous catalog is empty" "$STATUS $(jq -c .repositories "$BODY")" '200 []'
api GET /v2/_catalog -u "admin:$ADMIN_PW"
is "admin's catalog lists both" "$STATUS $(jq -c .repositories "$BODY")" '200 ["alice/app","bob/app"]'
get_token bob bob-pw1 "registry:catalog:*"
bearer GET /v2/_catalog "$TOKEN"
is "bob's catalog with a Bearer token: his only" "$STATUS $(jq -c .repositories "$BODY")" '200 ["bob/app"]'

# ------------------------------------------------------------ a private repository answers as one that does not exist
for p in manifests/v1 "manifests/$MD" tags/list "blobs/$LAYER" "referrers/$MD"; do
    same_as_missing "bob, Basic: GET alice/app/$p answers as alice/nothing" \
        GET "/v2/alice/app/$p" "/v2/alice/nothing/$p" alice/app alice/nothing -u bob:bob-pw1
done
is "... (the last one is a 401)" "$HIDDEN_STATUS" 401
same_as_missing "bob, Basic: HEAD alice/app blob answers as alice/nothing" \
    HEAD "/v2/alice/app/blobs/$LAYER" "/v2/alice/nothing/blobs/$LAYER" alice/app alice/nothing \
    -u bob:bob-pw1
same_as_missing "anonymous: GET alice/app manifest answers as alice/nothing" \
    GET /v2/alice/app/manifests/v1 /v2/alice/nothing/manifests/v1 alice/app alice/nothing
is "... a 401" "$HIDDEN_STATUS" 401
get_token bob bob-pw1 "repository:alice/app:pull" "repository:alice/nothing:pull"
is "bob's token for alice/app and alice/nothing grants nothing" "$(granted "$TOKEN")" ""
same_as_missing "bob, Bearer: GET alice/app manifest answers as alice/nothing" \
    GET /v2/alice/app/manifests/v1 /v2/alice/nothing/manifests/v1 alice/app alice/nothing \
    -H "Authorization: Bearer $TOKEN"
is "... 401 with scope and error=insufficient_scope" "$STATUS $(challenge)" \
    "401 Bearer realm=\"$URL/token\",service=\"berth\",scope=\"repository:alice/nothing:pull\",error=\"insufficient_scope\""

# ------------------------------------------------------------ cross-repository mount
mount() { # USER:PW REPO DIGEST [FROM]
    api POST "/v2/$2/blobs/uploads/?mount=$3${4:+&from=$4}" -u "$1" -H 'Content-Length: 0'
}
mount bob:bob-pw1 bob/x "$LAYER" alice/app
is "bob: mount from alice/app (may not pull) -> 202, a normal upload" "$STATUS" 202
like "... with an upload Location" "$(hdr Location)" '^/v2/bob/x/blobs/uploads/'
api HEAD "/v2/bob/x/blobs/$LAYER" -u bob:bob-pw1
is "... and bob/x does not have the blob" "$STATUS" 404
mount bob:bob-pw1 bob/x "$LAYER"
is "bob: automatic mount (no from) of alice's blob -> 202" "$STATUS" 202
api HEAD "/v2/bob/x/blobs/$LAYER" -u bob:bob-pw1
is "... bob/x still does not have it" "$STATUS" 404
mount alice:alice-pw1 alice/y "$LAYER" alice/app
is "alice: mount from alice/app into alice/y -> 201" "$STATUS" 201
is "... Docker-Content-Digest" "$(hdr Docker-Content-Digest)" "$LAYER"
mount alice:alice-pw1 alice/z "$LAYER2"
is "alice: automatic mount into alice/z -> 201" "$STATUS" 201

# ------------------------------------------------------------ visibility public opens anonymous pulls
check "berth repo visibility alice/app public" b repo visibility alice/app public
is "anonymous (no login): skopeo inspect alice/app:v1" "$(inspect_as anon alice/app:v1 2>/dev/null)" "$MD"
check "anonymous: skopeo copy alice/app:v1 -> oci:" pull_as anon alice/app:v1 "$T/anon-out"
is "... the same manifest" "$(layout_ref "$T/anon-out" pulled)" "$MD"
is "bob: skopeo inspect alice/app:v1 (public now)" "$(inspect_as bob alice/app:v1 2>/dev/null)" "$MD"
refused "anonymous: push to alice/app:anon still refused" push_as anon "$L" v2 alice/app:anon
refused "bob: push to alice/app:bob still refused" push_as bob "$L" v2 alice/app:bob
api GET /v2/_catalog
is "anonymous catalog lists alice/app" "$STATUS $(jq -c .repositories "$BODY")" '200 ["alice/app"]'
mount bob:bob-pw1 bob/x "$LAYER" alice/app
is "bob: mount from alice/app (public now) -> 201" "$STATUS" 201
check "berth repo visibility alice/app private" b repo visibility alice/app private
refused "anonymous: private again, skopeo inspect refused at once" inspect_as anon alice/app:v1
refused "bob: private again, skopeo inspect refused at once" inspect_as bob alice/app:v1

# ------------------------------------------------------------ a grant to a user
check "alice: push to alice/shared:v1" push_as alice "$L" v2 alice/shared:v1
refused "bob: skopeo inspect alice/shared:v1 refused before the grant" inspect_as bob alice/shared:v1
check "berth repo grant alice/shared bob pull" b repo grant alice/shared bob pull
is "bob: skopeo inspect alice/shared:v1 with the grant" "$(inspect_as bob alice/shared:v1 2>/dev/null)" "$MD2"
check "bob: skopeo copy alice/shared:v1 -> oci:" pull_as bob alice/shared:v1 "$T/bob-shared"
is "... the same manifest" "$(layout_ref "$T/bob-shared" pulled)" "$MD2"
refused "bob: push to alice/shared:bob refused (pull grant)" push_as bob "$L" v1 alice/shared:bob
refused "carol: skopeo inspect alice/shared:v1 refused (the grant is bob's)" inspect_as carol alice/shared:v1
refused "anonymous: alice/shared refused" inspect_as anon alice/shared:v1
api GET /v2/_catalog -u bob:bob-pw1
is "bob's catalog now lists alice/shared" "$STATUS $(jq -c .repositories "$BODY")" '200 ["alice/shared","bob/app","bob/x"]'
check "berth repo revoke alice/shared bob" b repo revoke alice/shared bob
refused "bob: revoked, skopeo inspect refused at once" inspect_as bob alice/shared:v1

# ------------------------------------------------------------ a grant to a team; organisations
check "berth org add acme" b org add acme
check "berth team add acme devs --permission pull,push" b team add acme devs --permission pull,push
check "berth team member acme devs carol" b team member acme devs carol
check "berth repo grant alice/shared acme/devs pull,push" b repo grant alice/shared acme/devs pull,push
is "carol: skopeo inspect alice/shared:v1 through her team" "$(inspect_as carol alice/shared:v1 2>/dev/null)" "$MD2"
check "carol: push to alice/shared:v2 through her team" push_as carol "$L" v1 alice/shared:v2
api GET /v2/alice/shared/manifests/v2 -u alice:alice-pw1
is "... alice sees carol's tag" "$STATUS $(hdr Docker-Content-Digest)" "200 $MD"
refused "bob: alice/shared still refused (not in acme/devs)" inspect_as bob alice/shared:v1
check "carol: push to acme/lib:v1 (her team's organisation)" push_as carol "$L" v1 acme/lib:v1
refused "bob: skopeo inspect acme/lib:v1 refused (new repositories are private)" inspect_as bob acme/lib:v1
refused "alice: skopeo inspect acme/lib:v1 refused" inspect_as alice acme/lib:v1
refused "bob: push to acme/lib:bob refused" push_as bob "$L" v1 acme/lib:bob
api GET /v2/_catalog -u carol:carol-pw1
is "carol's catalog: acme/lib and alice/shared" "$STATUS $(jq -c .repositories "$BODY")" '200 ["acme/lib","alice/shared"]'

# ------------------------------------------------------------ access tokens: pull, not push
check "berth robot add ci" b robot add ci
check "berth repo grant 'alice/*' ci pull,push" b repo grant 'alice/*' ci pull,push
RO=$(mktoken ci ro 'repository:alice/*:pull')
check "skopeo login ci (robot) with a pull token" sko_login ci "$RO"
is "ci: skopeo inspect alice/app:v1 (private, granted)" "$(inspect_as ci alice/app:v1 2>/dev/null)" "$MD"
check "ci: skopeo copy alice/app:v1 -> oci:" pull_as ci alice/app:v1 "$T/ci-out"
refused "ci: push to alice/app:ci refused (pull token)" push_as ci "$L" v2 alice/app:ci
refused "ci: skopeo inspect bob/app:v1 refused (no grant)" inspect_as ci bob/app:v1
RW=$(mktoken ci rw 'repository:alice/*:pull,push')
check "skopeo login ci with a pull,push token" sko_login ci "$RW"
check "ci: push to alice/app:ci with it" push_as ci "$L" v2 alice/app:ci
PT=$(mktoken bob mine 'repository:bob/*:pull')
check "skopeo login bob with a personal pull token" sko_login bob "$PT"
is "bob (token): skopeo inspect bob/app:v1" "$(inspect_as bob bob/app:v1 2>/dev/null)" "$MD2"
refused "bob (token): push to bob/app:tok refused" push_as bob "$L" v1 bob/app:tok

done_testing
