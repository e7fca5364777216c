#!/usr/bin/env bash
# TLS: berth serves HTTPS with the configured certificate and key, negotiates HTTP/2 by ALPN, and real
# clients that verify the certificate (curl --cacert, skopeo --cert-dir) push and pull over it.
. "$(dirname "$0")/lib.sh"

PKI=$T/pki
mkdir -p "$PKI/certs" "$PKI/other"
# self_signed DIR : a self-signed P-256 certificate for 127.0.0.1 (DIR/cert.pem, DIR/key.pem)
self_signed() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -keyout "$1/key.pem" -out "$1/cert.pem" -subj /CN=127.0.0.1 \
        -addext subjectAltName=IP:127.0.0.1 >"$1/openssl.log" 2>&1
}
check "(setup) make a self-signed certificate for IP 127.0.0.1" self_signed "$PKI"
self_signed "$PKI/other"
cp "$PKI/cert.pem" "$PKI/certs/ca.crt"

# (under ASan, a small quarantine: TLS reads allocate and free h2o's buffers of encrypted input, which ASan would
# otherwise hold on to, up to 256 MiB, in the memory measured below)
start_berth BERTH_HTTP_TLS_CERTIFICATE="$PKI/cert.pem" BERTH_HTTP_TLS_KEY="$PKI/key.pem" \
    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=16"
like "(self-check) the harness talks https" "$URL" '^https://127\.0\.0\.1:'

api GET /v2/
is "GET https://…/v2/ verified against the certificate -> 200" "$STATUS" 200
is "... Docker-Distribution-Api-Version" "$(hdr Docker-Distribution-Api-Version)" registry/2.0
proto=$(curl -sS --cacert "$PKI/cert.pem" --http2 -o /dev/null -w '%{http_version}' "$URL/v2/")
is "curl --http2 negotiates HTTP/2 by ALPN" "$proto" 2
proto=$(curl -sS --cacert "$PKI/cert.pem" --http1.1 -o /dev/null -w '%{http_version}' "$URL/v2/")
is "curl --http1.1 gets HTTP/1.1" "$proto" 1.1
curl -sS --cacert "$PKI/other/cert.pem" -o /dev/null "$URL/v2/" 2>/dev/null
is "a client trusting another certificate refuses the connection (curl exit 60)" "$?" 60
served=$(openssl s_client -connect "$REG" -servername 127.0.0.1 </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256)
is "the served certificate is the configured one" "$served" "$(openssl x509 -in "$PKI/cert.pem" -noout -fingerprint -sha256)"
code=$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' "http://$REG/v2/")
isnt "plain HTTP to the TLS port does not get a 200" "$code" 200

# --- curl push and pull over HTTP/2 + TLS
mkrand "$T/blob" $((5 * 1024 * 1024 + 3))
D=$(sha256_of "$T/blob")
start_upload tls/curl --http2
is "POST upload over h2+TLS -> 202" "$STATUS" 202
like "... answered over HTTP/2" "$(head -n 1 "$HDRS")" '^HTTP/2 '
api PUT "$(with_query "$UPLOAD_URL" "digest=$D")" --http2 -H 'Content-Type: application/octet-stream' --data-binary "@$T/blob"
is "PUT 5 MiB over h2+TLS -> 201" "$STATUS" 201
api GET "/v2/tls/curl/blobs/$D" --http2
is "GET it over h2+TLS -> 200" "$STATUS" 200
check "... same bytes" same_bytes "$BODY" "$T/blob"
api GET "/v2/tls/curl/blobs/$D" --http1.1 -H 'Range: bytes=5242880-'
is "Range over HTTP/1.1+TLS -> 206" "$STATUS" 206
check "... the last 3 bytes" cmp "$BODY" <(tail -c 3 "$T/blob")

mkrand "$T/chunk" 300000
DC=$(sha256_of "$T/chunk")
start_upload tls/curl --http2
api PATCH "$UPLOAD_URL" --http2 -H 'Content-Type: application/octet-stream' --data-binary "@$T/chunk"
is "PATCH over h2+TLS -> 202 Range: 0-299999" "$STATUS $(hdr Range)" "202 0-299999"
api PUT "$(with_query "$(resolve "$(hdr Location)")" "digest=$DC")" --http2 -H 'Content-Length: 0'
is "closing PUT over h2+TLS -> 201" "$STATUS" 201

# --- HTTP/1.1 + TLS upload bodies are read as they arrive (src/http/stream.c) once the connection has had a first
# request: a PATCH of 256 MiB and a chunked PUT with Expect: 100-continue, on one kept-alive connection after a GET,
# leave berth's memory small and store the exact bytes. (h2o's buffer of encrypted input, a few MiB a read at most,
# may pass through a mapped temporary file: unlike plain HTTP/1, no test here counts those files.)
mkrand "$T/big" $((256 << 20))
mkrand "$T/tail" $((3 << 20))
cat "$T/big" "$T/tail" >"$T/whole"
DW=$(sha256_of "$T/whole")
hwm_before=$(awk '/VmHWM/ {print $2}' "/proc/$BERTH_PID/status")
# the POST on a connection of its own; then one curl, one connection: a GET first (a TLS connection's first request
# is read by h2o), then the PATCH and the chunked PUT
curl -sS --cacert "$PKI/cert.pem" --http1.1 -o /dev/null -D "$T/post.h" -X POST -H 'Content-Length: 0' \
    "$URL/v2/tls/stream/blobs/uploads/"
loc=$(resolve "$(awk 'tolower($1)=="location:" {print $2}' "$T/post.h" | tr -d '\r')")
codes=$(curl -sS --cacert "$PKI/cert.pem" --http1.1 -o /dev/null -w '%{http_code} %{num_connects}\n' \
    "$URL/v2/" \
    --next --http1.1 --cacert "$PKI/cert.pem" -o /dev/null -w '%{http_code} %{num_connects}\n' -X PATCH \
    -H 'Content-Type: application/octet-stream' -H 'Expect:' --data-binary "@$T/big" "$loc" \
    --next --http1.1 --cacert "$PKI/cert.pem" -o /dev/null -w '%{http_code} %{num_connects}\n' -X PUT \
    -H 'Transfer-Encoding: chunked' -H 'Expect: 100-continue' --data-binary "@$T/tail" \
    "$(with_query "$loc" "digest=$DW")")
is "GET, PATCH 256 MiB, chunked PUT over one HTTP/1.1+TLS connection -> 200, 202, 201 (one connect)" \
    "$(echo $codes)" "200 1 202 0 201 0"
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$BERTH_PID/status")
diag "VmHWM before ${hwm_before} kB, after ${hwm} kB"
check "berth's peak memory grew by less than 64 MiB for 259 MiB over TLS ($hwm_before -> $hwm kB)" \
    test $((hwm - hwm_before)) -lt 65536
check "the stored blob is byte-exact" cmp -s "$T/whole" "$(blob_path "$DW")"
rm -f "$T/big" "$T/whole"

# --- skopeo, verifying the certificate
L=$T/layout
MD=$(oci_layout "$L" v1 3)
check "skopeo copy oci: -> docker:// over TLS with --dest-cert-dir (verification on)" \
    sko copy --dest-cert-dir "$PKI/certs" "oci:$L:v1" "docker://$REG/tls/img:v1"
check "skopeo refuses the registry when it trusts another certificate" \
    bash -c '! skopeo --insecure-policy copy --dest-cert-dir "$0" "oci:$1:v1" "docker://$2/tls/img:bad"' \
    "$PKI/other" "$L" "$REG"
is "skopeo inspect --cert-dir: digest" \
    "$(sko inspect --cert-dir "$PKI/certs" "docker://$REG/tls/img:v1" 2>"$T/err" | jq -r .Digest)" "$MD"
api GET /v2/tls/img/manifests/v1 --http2
check "curl --cacert pulls the exact manifest" same_bytes "$BODY" "$(layout_blob "$L" "$MD")"
ok_blobs=1
for dg in $(jq -r '.config.digest, .layers[].digest' "$(layout_blob "$L" "$MD")"); do
    api GET "/v2/tls/img/blobs/$dg" --http2
    cmp -s "$BODY" "$(layout_blob "$L" "$dg")" || ok_blobs=0
done
is "curl --cacert pulls every blob byte for byte" "$ok_blobs" 1
check "skopeo copy docker:// -> oci: over TLS with --src-cert-dir" \
    sko copy --src-cert-dir "$PKI/certs" "docker://$REG/tls/img:v1" "oci:$T/out:v1"
is "... same manifest digest" "$(layout_ref "$T/out" v1)" "$MD"

done_testing
