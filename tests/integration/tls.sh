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

start_berth BERTH_HTTP_TLS_CERTIFICATE="$PKI/cert.pem" BERTH_HTTP_TLS_KEY="$PKI/key.pem"
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
