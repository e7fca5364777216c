#!/usr/bin/env bash
# The audit log: a push, a tag move, deletes (tag, manifest, blob), a failed and a successful login at the token
# service, a failed Basic login on /v2/, a burst of failed logins folded into counted rows, token creation and
# revocation, a grant, a visibility change and a user added with the CLI: `berth audit` lists each with user, action,
# repository and address (the X-Forwarded-For of a trusted proxy); --repo, --user, --since and --json work;
# audit.retention prunes old rows when the server's chores run (at start). Mode private.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/authlib.bash"

start_berth BERTH_MODE=private BERTH_ADMIN_PASSWORD="$ADMIN_PW" BERTH_AUTH_TRUSTED_PROXIES=127.0.0.1 \
    BERTH_AUTH_LOGIN_FAILURES=3 BERTH_AUTH_LOGIN_BACKOFF=30s
ME=$(id -un)
check "berth user add alice" adduser alice alice-pw1
check "berth repo grant 'acme/*' alice pull,push,delete" b repo grant 'acme/*' alice pull,push,delete

# every request below as alice behind the trusted proxy, the client 203.0.113.7
as_alice() { CURL_TLS=(-u alice:alice-pw1 -H 'X-Forwarded-For: 203.0.113.7'); }
as_alice
check "alice pushes acme/app:v1" push_image acme/app v1 oci
D1=$IMG_DIGEST
check "alice pushes another manifest to acme/app:v1 (a tag move)" push_image acme/app v1 oci
D2=$IMG_DIGEST
L2=$(sha256_of "${IMG_BLOBS[1]}")
check "alice tags it v2 too" push_manifest acme/app v2 "$IMG_MANIFEST"
api DELETE /v2/acme/app/manifests/v2
is "alice deletes tag v2 -> 202" "$STATUS" 202
api DELETE "/v2/acme/app/manifests/$D1"
is "alice deletes manifest $D1 -> 202" "$STATUS" 202
api DELETE "/v2/acme/app/blobs/$L2"
is "alice deletes a blob -> 202" "$STATUS" 202
CURL_TLS=()

api GET "/token?service=berth&scope=repository:acme/app:pull" -u alice:wrong -H 'X-Forwarded-For: 198.51.100.9'
is "a wrong password at /token -> 401" "$STATUS" 401
api GET "/token?service=berth&scope=repository:acme/app:pull" -u alice:alice-pw1 -H 'X-Forwarded-For: 198.51.100.9'
is "alice logs in at /token -> 200" "$STATUS" 200
api GET /v2/ -u nobody:guess
is "Basic with an unknown user on /v2/ -> 401" "$STATUS" 401
burst=$SECONDS
for i in $(seq 1 12); do api GET /v2/ -u mallory:guess$i -H 'X-Forwarded-For: 192.0.2.66'; done
burst=$((SECONDS - burst + 1)) # seconds it lasted, rounded up: the queue is written about once a second
is "mallory's 12 failed logins end limited (429)" "$STATUS" 429

SECRET=$(mktoken alice ci "repository:acme/*:pull")
TID=$(token_id ci)
like "berth token create alice ci" "$TID" '^[0-9]+$'
check "berth token revoke $TID" b token revoke "$TID"
check "berth repo grant acme/app admin pull (a grant change)" b repo grant acme/app alice pull
check "berth repo visibility acme/app public" b repo visibility acme/app public
check "berth user add bob" adduser bob bob-pw1

# the queued records (logins) are written within about a second
sleep 2.5
b audit >"$T/audit.txt" 2>&1
is "berth audit exits 0" "$?" 0
b audit --json >"$T/audit.json"
row() { jq -c "select($1)" "$T/audit.json"; }
count() { jq -s "map(select($1)) | length" "$T/audit.json"; }
is "header line" "$(head -n1 "$T/audit.txt")" $'TIME\tUSER\tTOKEN\tACTION\tREPOSITORY\tREFERENCE\tADDRESS\tDIGEST\tDETAIL'
is "push of v1 ($D1): alice, from 203.0.113.7" \
    "$(count ".action == \"push\" and .user == \"alice\" and .repository == \"acme/app\" and .reference == \"v1\" and .digest == \"$D1\" and .address == \"203.0.113.7\"")" 1
is "tag move of v1 to $D2, from $D1" \
    "$(count ".action == \"tag.move\" and .user == \"alice\" and .reference == \"v1\" and .digest == \"$D2\" and .detail == \"from $D1\" and .address == \"203.0.113.7\"")" 1
is "no tag move for the first push nor for v2" "$(count '.action == "tag.move"')" 1
is "delete of tag v2 (names the manifest it pointed at)" \
    "$(count ".action == \"delete.tag\" and .reference == \"v2\" and .digest == \"$D2\" and .user == \"alice\"")" 1
is "delete of manifest $D1" "$(count ".action == \"delete.manifest\" and .reference == \"$D1\" and .address == \"203.0.113.7\"")" 1
is "delete of blob $L2" "$(count ".action == \"delete.blob\" and .reference == \"$L2\" and .repository == \"acme/app\"")" 1
is "failed login of alice at /token from 198.51.100.9" \
    "$(count '.action == "login.failed" and .user == "alice" and .address == "198.51.100.9"')" 1
is "successful login of alice at /token from 198.51.100.9" \
    "$(count '.action == "login" and .user == "alice" and .address == "198.51.100.9"')" 1
is "failed Basic login of nobody on /v2/ from 127.0.0.1" \
    "$(count '.action == "login.failed" and .user == "nobody" and .address == "127.0.0.1"')" 1
is "mallory's 12 failures: every one counted" "$(jq -s 'map(select(.user == "mallory") | .count) | add' "$T/audit.json")" 12
n=$(count '.user == "mallory"')
diag "mallory's burst: $burst s, $n rows"
is "... folded: at most 2 rows (wrong password, refused while limited) per second it lasted" \
    "$((n >= 1 && n <= 2 * (burst + 1) && n < 12))" 1
is "token create by the CLI (cli:$ME, local)" \
    "$(count ".action == \"token.create\" and .user == \"cli:$ME\" and .reference == \"alice\" and .address == \"local\" and (.detail | startswith(\"id $TID, ci\"))")" 1
is "token revoke $TID by the CLI" "$(count ".action == \"token.revoke\" and .reference == \"$TID\" and .user == \"cli:$ME\"")" 1
is "grant change by the CLI" \
    "$(count '.action == "grant" and .repository == "acme/app" and .reference == "alice" and .detail == "pull"')" 1
is "visibility change by the CLI" "$(count '.action == "visibility" and .repository == "acme/app" and .detail == "public"')" 1
is "user add by the CLI" "$(count '.action == "user.add" and .reference == "bob"')" 1
is "a push in the table: user, action, repository, reference, address" \
    "$(awk -F'\t' '$4 == "push" && $5 == "acme/app" && $6 == "v1" { print $2, $7; exit }' "$T/audit.txt")" "alice 203.0.113.7"
is "mallory in the table, with a count" "$(grep -c $'\tmallory\t.*times)' "$T/audit.txt")" "$(count '.user == "mallory" and .count > 1')"

# filters
is "--repo acme/app: only acme/app rows" "$(b audit --json --repo acme/app | jq -s 'map(.repository) | unique | join(",")')" '"acme/app"'
is "--repo 'acme/*': those and the grant on acme/*" "$(b audit --json --repo 'acme/*' | wc -l)" \
    "$(($(b audit --json --repo acme/app | wc -l) + 1))"
is "--repo other/x: none" "$(b audit --json --repo other/x | wc -l)" 0
is "--user alice: only alice" "$(b audit --json --user alice | jq -s 'map(.user) | unique | join(",")')" '"alice"'
is "--user alice: her 8 rows (3 pushes, a move, 3 deletes, a login; a failure is hers too)" \
    "$(b audit --json --user alice | jq -s 'map(select(.action | test("^(push|tag.move|delete.tag|delete.manifest|delete.blob|login)$"))) | length')" 8
is "--since 1h: everything" "$(b audit --json --since 1h | wc -l)" "$(wc -l <"$T/audit.json")"
is "--since tomorrow: nothing" "$(b audit --json --since "$(date -u -d tomorrow +%F)" | wc -l)" 0
b audit --since yesterday-ish >/dev/null 2>"$T/err"
is "--since garbage: usage error (2)" "$?" 2

# retention: rows older than audit.retention go when the chores run (at start, then hourly)
stop_berth
old=$(($(date +%s) - 40 * 86400))
sqlite3 "$DATA/berth.db" "INSERT INTO audit_log(at, actor, action, repository) VALUES ($old, 'ghost', 'push', 'acme/old'),
    ($((old + 20 * 86400)), 'ghost', 'push', 'acme/recent')"
is "two old rows inserted (40 and 20 days)" "$(b audit --json --user ghost | wc -l)" 2
BERTH_ENV+=(BERTH_AUDIT_RETENTION=30d)
start_berth_again
for _ in $(seq 50); do [[ $(b audit --json --user ghost | wc -l) == 1 ]] && break; sleep 0.2; done
is "audit.retention 30d: the 40-day-old row is pruned" "$(b audit --json --user ghost | jq -r .repository)" acme/recent
is "... the recent rows stay" "$(b audit --json --user alice | wc -l)" "$(jq -s 'map(select(.user == "alice")) | length' "$T/audit.json")"
like "... and the server says so in its log" "$(cat "$SRV/berth.log")" 'audit: removed 1 row'

done_testing
