#!/usr/bin/env bash
# The front SECURITY.md recommends where berth alone cannot bound what an anonymous client makes it hold (HTTP/2
# bodies, h2o's spooling): nginx asks berth (auth_request to /v2/) before it reads a request body, streams the
# bodies it lets through, and speaks HTTP/1 to berth. Checked: an anonymous 64 MiB upload is refused with 401
# (and berth's Bearer challenge) before its body is read; skopeo pushes and pulls through the front.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/authlib.bash"

command -v nginx >/dev/null || skip_all "nginx is not installed"
start_berth BERTH_MODE=private BERTH_ADMIN_PASSWORD="$ADMIN_PW"
adduser alice alice-pw-1 >/dev/null
b repo grant 'alice/*' alice pull,push >/dev/null
BERTH_URL=$URL
NPORT=$(free_port)
mkdir -p "$T/nginx"
sed -e "s|@PORT@|$NPORT|g" -e "s|@BERTH@|$REG|g" -e "s|@DIR@|$T/nginx|g" \
    "$SRCDIR/deploy/nginx/berth.conf" >"$T/nginx/nginx.conf"
nginx -c "$T/nginx/nginx.conf" -p "$T/nginx" 2>"$T/nginx/start.log"
trap 'kill "$(cat "$T/nginx/nginx.pid" 2>/dev/null)" 2>/dev/null' EXIT
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$NPORT/healthz" && break; sleep 0.1; done
URL=http://127.0.0.1:$NPORT
REG=127.0.0.1:$NPORT

api GET /v2/
is "through nginx, anonymous GET /v2/ -> 401" "$STATUS" 401
like "... with berth's Bearer challenge" "$(challenge)" '^Bearer realm="http://127\.0\.0\.1:'"$NPORT"'/token"'

mkrand "$T/big" $((64 * 1024 * 1024))
out=$(curl -s -o /dev/null -w '%{http_code} %{size_upload}' -X PATCH -H 'Expect:' --limit-rate 32M \
    -H 'Content-Type: application/octet-stream' --data-binary "@$T/big" \
    "$URL/v2/alice/x/blobs/uploads/00000000-0000-4000-8000-000000000000")
is "an anonymous 64 MiB PATCH -> 401" "${out% *}" 401
check "... answered before its body was read (${out#* } bytes sent)" test "${out#* }" -lt $((16 * 1024 * 1024))
check "berth never saw the PATCH (only nginx's auth requests)" bash -c "! grep -q 'PATCH' '$SRV/access.log'"

get_token alice alice-pw-1 "repository:alice/x:pull,push"
bearer POST /v2/alice/x/blobs/uploads/ "$TOKEN"
is "alice, with a token, starts an upload through nginx -> 202" "$STATUS" 202
loc=$(resolve "$(hdr Location)")
api PUT "$(with_query "$loc" "digest=$(sha256_of "$T/big")")" -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/octet-stream' --data-binary "@$T/big"
is "... and PUTs 64 MiB -> 201" "$STATUS" 201

oci_layout "$T/layout" img 2
sko_login alice alice-pw-1
push_as alice "$T/layout" img alice/app:v1
is "skopeo copy through nginx as alice -> ok" "$?" 0
pull_as alice "alice/app:v1" "$T/pulled"
is "skopeo pulls it back through nginx" "$?" 0
check "... the same manifest" cmp "$(layout_blob "$T/layout" "$(layout_ref "$T/layout" img)")" \
    "$(layout_blob "$T/pulled" "$(layout_ref "$T/pulled" pulled)")"

URL=$BERTH_URL
done_testing
