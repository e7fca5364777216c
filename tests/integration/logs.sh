#!/usr/bin/env bash
# The logs (docs/operations.md, "Logs"): with log.format json every line of the diagnostics and of the access log is
# one JSON object; a failing request's access line and its error line share a request id, which the answer carries in
# X-Request-Id (the client's own when valid); passwords, access-token secrets, Bearer tokens and Authorization headers
# never appear in either log. Then the text format: the id at the end of the access line and of the error line.
. "$(dirname "$0")/lib.sh"

PW=logs-test-password-$$
start_berth BERTH_MODE=private BERTH_ADMIN_PASSWORD="$PW" BERTH_LOG_FORMAT=json
ACCESS=$SRV/access.log
DIAG=$SRV/berth.log # berth's stderr (the harness also writes "--- start" lines into it)

# --- traffic with every kind of credential
api GET /v2/ -u "admin:$PW"
is "Basic login: 200" "$STATUS" 200
api GET /v2/ -u "admin:wrong-$PW"
is "a wrong password: 401" "$STATUS" 401
api GET "/token?service=berth&scope=repository:logs/app:pull,push" -u "admin:$PW"
is "a token: 200" "$STATUS" 200
TOKEN=$(jq -r .token "$BODY")
api POST /token --data-urlencode grant_type=password --data-urlencode username=admin \
    --data-urlencode "password=$PW" --data-urlencode service=berth --data-urlencode "scope=repository:logs/app:pull"
is "a token by the OAuth2 password grant: 200" "$STATUS" 200
BERTH_STORAGE_ROOT=$DATA "$BERTH" token create admin logs-ci --scope "repository:logs/*:pull" >"$T/token.out" 2>&1
SECRET=$(grep -m1 '^berth_' "$T/token.out")
like "an access token created" "$SECRET" '^berth_'
api GET /v2/ -u "admin:$SECRET"
is "Basic login with the access token: 200" "$STATUS" 200
mkrand "$T/blob" 4096
D=$(sha256_of "$T/blob")
api POST "/v2/logs/app/blobs/uploads/?digest=$D" -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/octet-stream' --data-binary "@$T/blob"
is "push a blob with the Bearer token: 201" "$STATUS" 201

# --- a failing request: the blob's file is gone, the database still has it
rm -f "$(blob_path "$D")"
api GET "/v2/logs/app/blobs/$D" -H "Authorization: Bearer $TOKEN" -H 'X-Request-Id: logs-test.req:1'
is "GET the damaged blob: 404" "$STATUS" 404
is "... the answer carries the client's X-Request-Id" "$(hdr X-Request-Id)" logs-test.req:1
api GET "/v2/logs/app/blobs/$D" -H "Authorization: Bearer $TOKEN"
is "again without an id: 404" "$STATUS" 404
RID=$(hdr X-Request-Id)
like "... berth's own id in X-Request-Id" "$RID" '^[0-9a-f]{20}$'
api GET /v2/ -u "admin:$PW" -H 'X-Request-Id: has spaces in it'
like "an invalid X-Request-Id is replaced" "$(hdr X-Request-Id)" '^[0-9a-f]{20}$'
api GET /v2/ -u "admin:$PW" -H "X-Request-Id: $(printf 'a%.0s' {1..65})"
like "a too long X-Request-Id is replaced" "$(hdr X-Request-Id)" '^[0-9a-f]{20}$'
api GET /v2/ -u "admin:$PW" -H "X-Request-Id: $(printf 'a%.0s' {1..64})"
is "one of 64 characters is kept" "$(hdr X-Request-Id)" "$(printf 'a%.0s' {1..64})"
stop_berth

# every line a JSON object (of the diagnostics: all but the harness's own lines)
json_lines() {
    grep -v '^--- ' "$1" | $PYTHON -c '
import json, sys
n = 0
for line in sys.stdin:
    obj = json.loads(line)
    assert isinstance(obj, dict), line
    assert "time" in obj and "level" in obj, line
    n += 1
print(n)
'
}
N=$(json_lines "$DIAG")
like "every diagnostic line parses as a JSON object ($N lines)" "$N" '^[1-9][0-9]*$'
N=$(json_lines "$ACCESS")
like "every access-log line parses as a JSON object ($N lines)" "$N" '^[1-9][0-9]*$'

# line_with FILE ID : the JSON lines of FILE whose request_id is ID, as "level status msg" for the checks below
line_with() {
    grep -v '^--- ' "$1" | $PYTHON -c '
import json, sys
for line in sys.stdin:
    o = json.loads(line)
    if o.get("request_id") == sys.argv[1]:
        print(o.get("level"), o.get("status", "-"), o.get("route", "-"), o.get("msg", "-"))
' "$2"
}
for id in logs-test.req:1 "$RID"; do
    like "the access line of the failing request ($id): 404, route blob_get" "$(line_with "$ACCESS" "$id")" \
        '^info 404 blob_get -$'
    like "its error line carries the same id" "$(line_with "$DIAG" "$id")" \
        '^error - - blob sha256:[0-9a-f]{64} is in the database but its file is missing'
done
is "the request ids of the access log are distinct but for the client's own" \
    "$(grep -o '"request_id":"[^"]*"' "$ACCESS" | sort | uniq -d)" ""

# no secret in either log (the harness's own "--- start" lines, which show the environment berth got, left out)
grep -v '^--- ' "$DIAG" >"$T/diag"
DIAG=$T/diag
for s in "$PW" "wrong-$PW" "$TOKEN" "$SECRET" "${SECRET#berth_}" "$(printf 'admin:%s' "$PW" | base64 -w0)" \
    "$(printf 'admin:%s' "$SECRET" | base64 -w0)"; do
    check "a secret (${#s} characters) is in no log" bash -c '! grep -qF -- "$1" "$2" "$3"' _ "$s" "$ACCESS" "$DIAG"
done
check "no Authorization header value in the logs" bash -c '! grep -qiE "(basic|bearer) [A-Za-z0-9+/=._-]{16}" "$1" "$2"' \
    _ "$ACCESS" "$DIAG"

# --- text, the default: the id ends the access line and the error line
start_berth
mkrand "$T/blob2" 2048
D2=$(sha256_of "$T/blob2")
check "push a blob" push_blob logs/text "$T/blob2"
rm -f "$(blob_path "$D2")"
api GET "/v2/logs/text/blobs/$D2"
is "GET the damaged blob: 404" "$STATUS" 404
RID=$(hdr X-Request-Id)
stop_berth
like "text: the access line ends with the request id" "$(grep -F "GET /v2/logs/text/blobs/$D2 " "$SRV/access.log")" \
    "\" 404 [0-9]+ .* $RID\$"
like "text: the error line too" "$(grep -F "$D2 is in the database" "$SRV/berth.log")" \
    "^[0-9T:.-]+Z error blob .* request_id=$RID\$"

done_testing
