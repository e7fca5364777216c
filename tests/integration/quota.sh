#!/usr/bin/env bash
# Quotas per namespace and berth du (docs/lifecycle.md): usage counts each blob once per namespace however many of its
# repositories link it; an upload that would take a namespace over its quota is refused at its end with 403 DENIED
# and a detail (its bytes are collected), a mount likewise, a manifest put while the namespace is over quota too;
# other namespaces are not affected; deleting images and collecting brings pushes back; `berth quota list|set` beside
# the running server; `berth du` with unique and shared bytes, checked against the blobs' sizes; the quota visible to
# those who may push in the namespace (GET /api/v1/namespaces/NS) and to no one else; skopeo shows the refusal.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/authlib.bash"

start_berth BERTH_GC_INTERVAL=0 BERTH_ADMIN_PASSWORD="$ADMIN_PW"
# q ARGS... : berth on the server's data; sets RC, OUT, ERR
q() {
    b "$@" >"$T/q.out" 2>"$T/q.err"
    RC=$?
    OUT=$(cat "$T/q.out")
    ERR=$(cat "$T/q.err")
}
used_of() { b quota list | awk -F'\t' -v n="$1" '$1 == n { print $3 }'; }
du_row() { b du "$@" | awk -F'\t' 'NR > 1 { sub(/^ +/, "", $1); print $1, $2, $3, $4 }'; }
sizes() { local s=0 f; for f in "$@"; do s=$((s + $(size_of "$f"))); done; echo "$s"; }

q quota set acme 200KiB
is "berth quota set acme 200KiB (the server runs): exit 0" "$RC" 0
is "... says so" "$OUT" "acme: quota 200.0 KiB, 0 B used"
push_image acme/app v1 oci && A_BLOBS=("${IMG_BLOBS[@]}") && A_MF=$IMG_MANIFEST
is "a push into acme within its quota -> 201" "$STATUS" 201
is "acme uses the bytes of its blobs" "$(used_of acme)" "$(sizes "${A_BLOBS[@]}")"
# the same blobs in a second repository of acme (a push of the same bytes, and a mount) count once
push_blob acme/other "${A_BLOBS[0]}"
api POST "/v2/acme/other/blobs/uploads/?mount=$(sha256_of "${A_BLOBS[1]}")&from=acme/app"
is "a mount within acme -> 201" "$STATUS" 201
is "... blobs linked by two repositories of acme count once" "$(used_of acme)" "$(sizes "${A_BLOBS[@]}")"

# --- an upload that would go over: refused at its end, nothing linked, its bytes collected
mkrand "$T/big" 150000
BIG=$(sha256_of "$T/big")
push_blob acme/app "$T/big"
is "a monolithic upload taking acme over 200 KiB -> 403" "$STATUS" 403
is_error "... DENIED" 403 DENIED
like "... saying why" "$(jq -r '.errors[0].message' "$BODY")" \
    '^namespace acme is over its quota: 71\.[0-9] KiB of 200\.0 KiB used, and this blob needs 146\.5 KiB more$'
is "... with the numbers in the detail" "$(jq -c '.errors[0].detail | [.namespace, .quota, .size]' "$BODY")" \
    "[\"acme\",204800,150000]"
api HEAD "/v2/acme/app/blobs/$BIG"
is "... the blob is not in the repository" "$STATUS" 404
is "... and acme's usage did not move" "$(used_of acme)" "$(sizes "${A_BLOBS[@]}")"
start_upload acme/app
api PATCH "$UPLOAD_URL" -H 'Content-Type: application/octet-stream' --data-binary "@$T/big"
is "a chunked upload of it: the chunk is taken (202)" "$STATUS" 202
api PUT "$(with_query "$(resolve "$(hdr location)")" "digest=$BIG")"
is "... and refused when it finishes (403)" "$STATUS" 403
is_error "... DENIED" 403 DENIED
b gc --blob-grace 1h >"$T/gc.out" 2>&1
like "the next collection removes the refused blob's bytes" "$(cat "$T/gc.out")" "removed blob $BIG \\(150000 bytes\\)"
check "... its file is gone" test ! -e "$(blob_path "$BIG")"
push_image other/app v1 oci
is "another namespace is not affected -> 201" "$STATUS" 201
push_blob other/app "$T/big"
is "... even with the blob acme was refused" "$STATUS" 201
api POST "/v2/acme/app/blobs/uploads/?mount=$BIG&from=other/app"
is "a mount taking acme over its quota -> 403" "$STATUS" 403
like "... saying why" "$(jq -r '.errors[0].message' "$BODY")" 'namespace acme is over its quota'

# --- a manifest put while over quota (the quota lowered below what is used)
q quota set acme 10KiB
like "lowering the quota below the usage says what follows" "$OUT" 'over: pushes are refused until images are deleted'
api PUT /v2/acme/app/manifests/v2 -H "Content-Type: $MT_OCI_MANIFEST" --data-binary "@$A_MF"
is "a manifest put in acme over its quota -> 403" "$STATUS" 403
like "... saying why" "$(jq -r '.errors[0].message' "$BODY")" \
    '^namespace acme is over its quota: 71\.[0-9] KiB of 10\.0 KiB used; delete images to push again$'
api GET /v2/acme/app/manifests/v1 -H "Accept: $MT_OCI_MANIFEST"
is "... pulls go on (200)" "$STATUS" 200
if command -v skopeo >/dev/null; then
    oci_layout "$T/layout" v1 1 >/dev/null
    sko copy --dest-tls-verify=false "oci:$T/layout:v1" "docker://$REG/acme/tool:v1" >"$T/sko.out" 2>&1
    like "skopeo copy into acme fails, showing why" "$(cat "$T/sko.out")" 'denied: namespace acme is over its quota'
fi

# --- deleting and collecting gives the space back
api DELETE /v2/acme/app/manifests/v1
b gc --blob-grace 0 --untagged-grace 1s >/dev/null 2>&1
sleep 2
b gc --blob-grace 0 --untagged-grace 1s >/dev/null 2>&1
is "after deleting acme's image and collecting, acme uses nothing" "$(used_of acme)" 0
q quota set acme 200KiB
push_image acme/app v3 oci
is "... and pushes are accepted again" "$STATUS" 201
is "... counted" "$(used_of acme)" "$(sizes "${IMG_BLOBS[@]}")"
q quota set acme none
is "berth quota set acme none removes it" "$OUT" "acme has no quota"
is "... quota list no longer shows it" "$(b quota list | awk -F'\t' '$1 == "acme"')" ""
q quota set acme/app 1GiB
is "a repository is not a namespace: exit 2" "$RC" 2
q quota set acme lots
is "an invalid size: exit 2" "$RC" 2
like "... saying why" "$ERR" 'invalid size lots'

# --- berth du: unique and shared bytes
S=$T/shared
mkrand "$S" 5000
push_blob acme/app "$S" && push_blob other/lib "$S" && push_blob other/app "$S"
ACME=$(sizes "${IMG_BLOBS[@]}")
is "du: acme's unique bytes are its image, shared the blob other has too" "$(du_row | grep '^acme ')" \
    "acme $ACME 5000 4"
like "du: other shares the same blob" "$(du_row | grep '^other ')" '^other [0-9]+ 5000 [0-9]+$'
is "du other: the namespace, then each repository (the blob in two of its repositories is shared between them)" \
    "$(du_row other | cut -d' ' -f1,3)" "$(printf '%s\n' 'other 5000' 'other/app 5000' 'other/lib 5000')"
is "du acme/app: the repository alone" "$(du_row acme/app)" "acme/app $ACME 5000 4"
q du nosuch
is "du of a namespace with nothing: exit 1" "$RC" 1
q quota set acme 1MiB
is "quota set counts what acme holds already" "$(used_of acme)" "$((ACME + 5000))"
stop_berth

# --- visible to those who may push in the namespace, and to no one else
BERTH_ENV=(BERTH_GC_INTERVAL=0 BERTH_MODE=private BERTH_ADMIN_PASSWORD="$ADMIN_PW")
start_berth_again
check "berth user add alice" adduser alice alice-pw1
check "berth user add bob" adduser bob bob-pw1
check "alice may push acme/*" b repo grant 'acme/*' alice pull,push
api GET /api/v1/namespaces/acme -u alice:alice-pw1
is "alice GET /api/v1/namespaces/acme -> 200" "$STATUS" 200
is "... with acme's quota and usage" "$(jq -c . "$BODY")" \
    "{\"name\":\"acme\",\"quota\":{\"bytes\":1048576,\"used\":$((ACME + 5000))}}"
api GET /api/v1/namespaces/acme -u "admin:$ADMIN_PW"
is "the administrator -> 200" "$STATUS" 200
api GET /api/v1/namespaces/other -u alice:alice-pw1
isnt "alice GET of another namespace is refused" "$STATUS" 200
api GET /api/v1/namespaces/acme -u bob:bob-pw1
isnt "bob (no push right in acme) is refused" "$STATUS" 200
api GET /api/v1/namespaces/acme
is "anonymous -> 401" "$STATUS" 401
api GET /api/v1/namespaces/other -u "admin:$ADMIN_PW"
is "a namespace without a quota: quota null" "$(jq -c . "$BODY")" '{"name":"other","quota":null}'
api GET /api/v1/namespaces/Bad..Name -u "admin:$ADMIN_PW"
is "an invalid namespace name -> 404" "$STATUS" 404
api DELETE /api/v1/namespaces/acme -u "admin:$ADMIN_PW"
is "DELETE -> 405" "$STATUS" 405

done_testing
