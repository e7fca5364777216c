#!/usr/bin/env bash
# Blobs: GET/HEAD/Range, the upload flows (monolithic, single POST, chunked), digests, the bytes on
# disk, repository isolation, mounts, limits.
. "$(dirname "$0")/lib.sh"

OCTET=(-H 'Content-Type: application/octet-stream')
# slice FILE START LEN : bytes START..START+LEN-1 of FILE
slice() { tail -c +$(($2 + 1)) "$1" | head -c "$3"; }
# no_blob_file DIGEST : nothing named after DIGEST under $DATA/blobs
no_blob_file() { ! find "$DATA/blobs" -name "${1#*:}" 2>/dev/null | grep -q .; }

start_berth

mkrand "$T/b1" 1024
mkrand "$T/b2" 3145739 # 3 MiB + 11
: >"$T/empty"
D1=$(sha256_of "$T/b1")
D2=$(sha256_of "$T/b2")
DE=$(sha256_of "$T/empty")
S2=$(size_of "$T/b2")

# ------------------------------------------------------------ monolithic: POST, then PUT with the body
api POST /v2/blobs/one/blobs/uploads/ -H 'Content-Length: 0'
is "POST /blobs/uploads/ -> 202" "$STATUS" 202
isnt "POST upload: Location header" "$(hdr Location)" ""
uuid=$(hdr Docker-Upload-UUID)
isnt "POST upload: Docker-Upload-UUID header" "$uuid" ""
is "POST upload: Range: 0-0" "$(hdr Range)" 0-0
up=$(resolve "$(hdr Location)")

api GET "$up"
is "GET a new upload session -> 204" "$STATUS" 204

api PUT "$(with_query "$up" "digest=$D1")" "${OCTET[@]}" --data-binary "@$T/b1"
is "PUT <location>?digest= with the whole body -> 201" "$STATUS" 201
is "PUT upload: Location is /v2/<name>/blobs/<digest>" "$(path_of "$(hdr Location)")" "/v2/blobs/one/blobs/$D1"
is "PUT upload: Docker-Content-Digest" "$(hdr Docker-Content-Digest)" "$D1"

api GET "$up"
is_error "a finished upload session is gone: GET -> 404 BLOB_UPLOAD_UNKNOWN" 404 BLOB_UPLOAD_UNKNOWN
api PUT "$(with_query "$up" "digest=$D1")" "${OCTET[@]}" --data-binary "@$T/b1"
is_error "PUT to a finished upload session -> 404 BLOB_UPLOAD_UNKNOWN" 404 BLOB_UPLOAD_UNKNOWN

api HEAD "/v2/blobs/one/blobs/$D1"
is "HEAD blob -> 200" "$STATUS" 200
is "HEAD blob: Content-Length" "$(hdr Content-Length)" 1024
is "HEAD blob: Docker-Content-Digest" "$(hdr Docker-Content-Digest)" "$D1"
is "HEAD blob: Content-Type" "$(hdr Content-Type)" application/octet-stream

api GET "/v2/blobs/one/blobs/$D1"
is "GET blob -> 200" "$STATUS" 200
check "GET blob: body is the pushed bytes" same_bytes "$BODY" "$T/b1"
is "GET blob: Content-Length" "$(hdr Content-Length)" 1024
is "GET blob: Docker-Content-Digest" "$(hdr Docker-Content-Digest)" "$D1"
is "GET blob: Content-Type" "$(hdr Content-Type)" application/octet-stream
check "blob file at \$DATA/blobs/sha256/<2 hex>/<hex> holds the pushed bytes" same_bytes "$(blob_path "$D1")" "$T/b1"

api GET "/v2/blobs/one/blobs/$D1" --http2-prior-knowledge
is "GET blob over h2c -> 200" "$STATUS" 200
check "GET blob over h2c: body is the pushed bytes" same_bytes "$BODY" "$T/b1"

# ------------------------------------------------------------ bodies large enough to be spilled to a file
# (berth's HTTP layer keeps request bodies over 1 MiB in a temporary file): fresh content each time,
# through the upload session, over HTTP/1.1 and h2c
for proto in --http1.1 --http2-prior-knowledge; do
    mkrand "$T/spill" $((3 * 1024 * 1024 + 5))
    DS=$(sha256_of "$T/spill")
    start_upload blobs/spill "$proto"
    api PUT "$(with_query "$UPLOAD_URL" "digest=$DS")" "$proto" "${OCTET[@]}" --data-binary "@$T/spill"
    is "monolithic PUT of 3 MiB ($proto) -> 201" "$STATUS" 201
    api GET "/v2/blobs/spill/blobs/$DS"
    is "... GET -> 200" "$STATUS" 200
    check "... same bytes" same_bytes "$BODY" "$T/spill"
    check "... bytes on disk" same_bytes "$(blob_path "$DS")" "$T/spill"

    mkrand "$T/spill" $((3 * 1024 * 1024 + 7))
    DS=$(sha256_of "$T/spill")
    start_upload blobs/spill "$proto"
    api PATCH "$UPLOAD_URL" "$proto" "${OCTET[@]}" --data-binary "@$T/spill"
    is "PATCH of 3 MiB ($proto) -> 202 Range: 0-3145734" "$STATUS $(hdr Range)" "202 0-3145734"
    api PUT "$(with_query "$(resolve "$(hdr Location)")" "digest=$DS")" "$proto" -H 'Content-Length: 0'
    is "... closing PUT -> 201" "$STATUS" 201
    api GET "/v2/blobs/spill/blobs/$DS"
    is "... GET -> 200" "$STATUS" 200
    check "... same bytes" same_bytes "$BODY" "$T/spill"
done

# ------------------------------------------------------------ single POST with ?digest=
api POST "/v2/blobs/one/blobs/uploads/?digest=$D2" "${OCTET[@]}" --data-binary "@$T/b2"
is "single POST ?digest= with a 3 MiB body -> 201" "$STATUS" 201
is "single POST: Location is /v2/<name>/blobs/<digest>" "$(path_of "$(hdr Location)")" "/v2/blobs/one/blobs/$D2"
is "single POST: Docker-Content-Digest" "$(hdr Docker-Content-Digest)" "$D2"
api GET "/v2/blobs/one/blobs/$D2"
is "GET blob pushed by single POST -> 200" "$STATUS" 200
check "... same bytes" same_bytes "$BODY" "$T/b2"
is "... Content-Length" "$(hdr Content-Length)" "$S2"
check "... bytes on disk" same_bytes "$(blob_path "$D2")" "$T/b2"

mkrand "$T/b3" 2000
D3=$(sha256_of "$T/b3")
wrong=$(random_digest)
api POST "/v2/blobs/one/blobs/uploads/?digest=$wrong" "${OCTET[@]}" --data-binary "@$T/b3"
is_error "single POST with a wrong digest -> 400 DIGEST_INVALID" 400 DIGEST_INVALID
api HEAD "/v2/blobs/one/blobs/$wrong"
is "... HEAD <wrong digest> -> 404" "$STATUS" 404
api HEAD "/v2/blobs/one/blobs/$D3"
is "... HEAD <digest of the content> -> 404" "$STATUS" 404
check "... no file under \$DATA/blobs for either digest" eval 'no_blob_file "$wrong" && no_blob_file "$D3"'

# ------------------------------------------------------------ monolithic PUT with a wrong digest
start_upload blobs/one
api PUT "$(with_query "$UPLOAD_URL" "digest=$wrong")" "${OCTET[@]}" --data-binary "@$T/b3"
is_error "PUT upload with a wrong digest -> 400 DIGEST_INVALID" 400 DIGEST_INVALID
api HEAD "/v2/blobs/one/blobs/$wrong"
is "... HEAD <wrong digest> -> 404" "$STATUS" 404
api HEAD "/v2/blobs/one/blobs/$D3"
is "... HEAD <digest of the content> -> 404" "$STATUS" 404
check "... no file under \$DATA/blobs for either digest" eval 'no_blob_file "$wrong" && no_blob_file "$D3"'

# ------------------------------------------------------------ the empty blob
start_upload blobs/one
api PUT "$(with_query "$UPLOAD_URL" "digest=$DE")" "${OCTET[@]}" --data-binary "@$T/empty"
is "push the empty blob -> 201" "$STATUS" 201
api GET "/v2/blobs/one/blobs/$DE"
is "GET the empty blob -> 200" "$STATUS" 200
is "... Content-Length: 0" "$(hdr Content-Length)" 0
is "... empty body" "$(size_of "$BODY")" 0
api HEAD "/v2/blobs/one/blobs/$DE"
is "HEAD the empty blob -> 200 Content-Length: 0" "$STATUS $(hdr Content-Length)" "200 0"
api GET "/v2/blobs/one/blobs/$DE" -H 'Range: bytes=0-0'
is "Range on the empty blob -> 416" "$STATUS" 416

# ------------------------------------------------------------ chunked upload
mkrand "$T/c" 300000
slice "$T/c" 0 100000 >"$T/c1"
slice "$T/c" 100000 100000 >"$T/c2"
slice "$T/c" 200000 100000 >"$T/c3"
DC=$(sha256_of "$T/c")

start_upload blobs/chunked
uuid=$(hdr Docker-Upload-UUID)
api PATCH "$UPLOAD_URL" "${OCTET[@]}" -H 'Content-Range: 0-99999' --data-binary "@$T/c1"
is "PATCH first chunk with Content-Range: 0-99999 -> 202" "$STATUS" 202
is "... Range: 0-99999" "$(hdr Range)" 0-99999
isnt "... Location" "$(hdr Location)" ""
is "... Docker-Upload-UUID unchanged" "$(hdr Docker-Upload-UUID)" "$uuid"
up=$(resolve "$(hdr Location)")

api GET "$up"
is "GET upload status -> 204" "$STATUS" 204
is "... Range: 0-99999" "$(hdr Range)" 0-99999
isnt "... Location" "$(hdr Location)" ""
is "... Docker-Upload-UUID" "$(hdr Docker-Upload-UUID)" "$uuid"

api PATCH "$up" "${OCTET[@]}" --data-binary "@$T/c2"
is "PATCH second chunk without Content-Range (streaming) -> 202" "$STATUS" 202
is "... Range: 0-199999" "$(hdr Range)" 0-199999
up=$(resolve "$(hdr Location)")

api PATCH "$up" "${OCTET[@]}" -H 'Content-Range: 0-99999' --data-binary "@$T/c1"
is "PATCH a chunk that restarts at 0 -> 416" "$STATUS" 416
slice "$T/c" 250000 50000 >"$T/gap"
api PATCH "$up" "${OCTET[@]}" -H 'Content-Range: 250000-299999' --data-binary "@$T/gap"
is "PATCH a chunk that leaves a gap -> 416" "$STATUS" 416
api GET "$up"
is "rejected chunks did not change the upload: Range still 0-199999" "$STATUS $(hdr Range)" "204 0-199999"

api PUT "$(with_query "$up" "digest=$DC")" "${OCTET[@]}" -H 'Content-Range: 200000-299999' --data-binary "@$T/c3"
is "closing PUT with the last chunk -> 201" "$STATUS" 201
is "... Location" "$(path_of "$(hdr Location)")" "/v2/blobs/chunked/blobs/$DC"
is "... Docker-Content-Digest" "$(hdr Docker-Content-Digest)" "$DC"
api GET "/v2/blobs/chunked/blobs/$DC"
check "chunked blob: GET returns the whole content" same_bytes "$BODY" "$T/c"
check "chunked blob: bytes on disk" same_bytes "$(blob_path "$DC")" "$T/c"

# every chunk by PATCH, then an empty closing PUT
mkrand "$T/d" 250001
slice "$T/d" 0 125000 >"$T/d1"
slice "$T/d" 125000 125001 >"$T/d2"
DD=$(sha256_of "$T/d")
start_upload blobs/chunked
api PATCH "$UPLOAD_URL" "${OCTET[@]}" -H 'Content-Range: 0-124999' --data-binary "@$T/d1"
up=$(resolve "$(hdr Location)")
api PATCH "$up" "${OCTET[@]}" -H 'Content-Range: 125000-250000' --data-binary "@$T/d2"
is "PATCH the last chunk -> 202 Range: 0-250000" "$STATUS $(hdr Range)" "202 0-250000"
up=$(resolve "$(hdr Location)")
api PUT "$(with_query "$up" "digest=$DD")" -H 'Content-Length: 0'
is "closing PUT without a body -> 201" "$STATUS" 201
api GET "/v2/blobs/chunked/blobs/$DD"
check "... GET returns the whole content" same_bytes "$BODY" "$T/d"

# chunks over HTTP/2
mkrand "$T/h" 70000
DH=$(sha256_of "$T/h")
slice "$T/h" 0 40000 >"$T/h1"
slice "$T/h" 40000 30000 >"$T/h2"
start_upload blobs/h2 --http2-prior-knowledge
api PATCH "$UPLOAD_URL" --http2-prior-knowledge "${OCTET[@]}" --data-binary "@$T/h1"
is "PATCH over h2c -> 202 Range: 0-39999" "$STATUS $(hdr Range)" "202 0-39999"
up=$(resolve "$(hdr Location)")
api PUT "$(with_query "$up" "digest=$DH")" --http2-prior-knowledge "${OCTET[@]}" --data-binary "@$T/h2"
is "closing PUT over h2c -> 201" "$STATUS" 201
api GET "/v2/blobs/h2/blobs/$DH" --http2-prior-knowledge
check "... GET over h2c returns the content" same_bytes "$BODY" "$T/h"

# wrong digest after chunks: nothing stored
mkrand "$T/w" 5000
DW=$(sha256_of "$T/w")
start_upload blobs/chunked
api PATCH "$UPLOAD_URL" "${OCTET[@]}" --data-binary "@$T/w"
up=$(resolve "$(hdr Location)")
wrong=$(random_digest)
api PUT "$(with_query "$up" "digest=$wrong")" -H 'Content-Length: 0'
is_error "closing PUT with a wrong digest -> 400 DIGEST_INVALID" 400 DIGEST_INVALID
api HEAD "/v2/blobs/chunked/blobs/$wrong"
is "... HEAD <wrong digest> -> 404" "$STATUS" 404
api HEAD "/v2/blobs/chunked/blobs/$DW"
is "... HEAD <digest of the content> -> 404" "$STATUS" 404
check "... no file under \$DATA/blobs for either digest" eval 'no_blob_file "$wrong" && no_blob_file "$DW"'

# closing PUT without a digest
start_upload blobs/chunked
api PUT "$UPLOAD_URL" "${OCTET[@]}" --data-binary "@$T/w"
is_error "closing PUT without ?digest= -> 400 DIGEST_INVALID" 400 DIGEST_INVALID

# ------------------------------------------------------------ unknown upload sessions
nouuid=2b4f3a10-9c1e-4d5e-8f00-000000000000
api GET "/v2/blobs/one/blobs/uploads/$nouuid"
is_error "GET unknown upload -> 404 BLOB_UPLOAD_UNKNOWN" 404 BLOB_UPLOAD_UNKNOWN
api PATCH "/v2/blobs/one/blobs/uploads/$nouuid" "${OCTET[@]}" --data-binary "@$T/b1"
is_error "PATCH unknown upload -> 404 BLOB_UPLOAD_UNKNOWN" 404 BLOB_UPLOAD_UNKNOWN
api PUT "/v2/blobs/one/blobs/uploads/$nouuid?digest=$D1" "${OCTET[@]}" --data-binary "@$T/b1"
is_error "PUT unknown upload -> 404 BLOB_UPLOAD_UNKNOWN" 404 BLOB_UPLOAD_UNKNOWN

# an upload session belongs to its repository
start_upload blobs/owner
own=$(path_of "$UPLOAD_URL")
like "(self-check) upload location is /v2/blobs/owner/blobs/uploads/<id>" "$own" '^/v2/blobs/owner/blobs/uploads/[^/?]+'
other=${own/\/v2\/blobs\/owner\//\/v2\/blobs\/thief\/}
api PATCH "$(resolve "$other")" "${OCTET[@]}" --data-binary "@$T/b1"
is_error "another repository's upload session: PATCH -> 404 BLOB_UPLOAD_UNKNOWN" 404 BLOB_UPLOAD_UNKNOWN
api PUT "$(with_query "$(resolve "$other")" "digest=$D1")" "${OCTET[@]}" --data-binary "@$T/b1"
is_error "another repository's upload session: PUT -> 404 BLOB_UPLOAD_UNKNOWN" 404 BLOB_UPLOAD_UNKNOWN
api HEAD "/v2/blobs/thief/blobs/$D1"
is "... nothing landed in the other repository" "$STATUS" 404

# ------------------------------------------------------------ unknown query parameters, encoded digests
mkrand "$T/q" 777
DQ=$(sha256_of "$T/q")
api POST "/v2/blobs/ns/blobs/uploads/?ns=docker.io" -H 'Content-Length: 0'
is "POST upload ?ns=docker.io (unknown parameter ignored) -> 202" "$STATUS" 202
up=$(resolve "$(hdr Location)")
api PUT "$(with_query "$(with_query "$up" ns=docker.io)" "digest=$DQ")" "${OCTET[@]}" --data-binary "@$T/q"
is "PUT upload ?ns=docker.io&digest= -> 201" "$STATUS" 201
api GET "/v2/blobs/ns/blobs/$DQ?ns=docker.io"
is "GET blob ?ns=docker.io -> 200" "$STATUS" 200
check "... same bytes" same_bytes "$BODY" "$T/q"
api HEAD "/v2/blobs/ns/blobs/$DQ?ns=docker.io"
is "HEAD blob ?ns=docker.io -> 200" "$STATUS" 200

mkrand "$T/e" 999
DEnc=$(sha256_of "$T/e")
start_upload blobs/ns
api PUT "$(with_query "$UPLOAD_URL" "digest=sha256%3A${DEnc#sha256:}")" "${OCTET[@]}" --data-binary "@$T/e"
is "PUT upload with a percent-encoded digest (sha256%3A…, as Go clients send) -> 201" "$STATUS" 201
api GET "/v2/blobs/ns/blobs/$DEnc"
is "... GET -> 200" "$STATUS" 200

# ------------------------------------------------------------ ranges
B2=/v2/blobs/one/blobs/$D2
api GET "$B2" -H 'Range: bytes=0-9'
is "Range bytes=0-9 -> 206" "$STATUS" 206
is "... Content-Range: bytes 0-9/size" "$(hdr Content-Range)" "bytes 0-9/$S2"
is "... Content-Length: 10" "$(hdr Content-Length)" 10
check "... the first 10 bytes" cmp "$BODY" <(slice "$T/b2" 0 10)

api GET "$B2" -H 'Range: bytes=1048576-2097151'
is "Range bytes=1048576-2097151 -> 206" "$STATUS" 206
is "... Content-Range" "$(hdr Content-Range)" "bytes 1048576-2097151/$S2"
check "... the second MiB" cmp "$BODY" <(slice "$T/b2" 1048576 1048576)

api GET "$B2" -H "Range: bytes=$((S2 - 10))-"
is "Range bytes=<size-10>- -> 206" "$STATUS" 206
is "... Content-Range" "$(hdr Content-Range)" "bytes $((S2 - 10))-$((S2 - 1))/$S2"
check "... the last 10 bytes" cmp "$BODY" <(tail -c 10 "$T/b2")

api GET "$B2" -H 'Range: bytes=-7'
is "suffix Range bytes=-7 -> 206" "$STATUS" 206
is "... Content-Range" "$(hdr Content-Range)" "bytes $((S2 - 7))-$((S2 - 1))/$S2"
check "... the last 7 bytes" cmp "$BODY" <(tail -c 7 "$T/b2")

api GET "$B2" -H 'Range: bytes=100-999999999'
is "Range past the end is clamped -> 206" "$STATUS" 206
is "... Content-Range" "$(hdr Content-Range)" "bytes 100-$((S2 - 1))/$S2"
check "... bytes 100 to the end" cmp "$BODY" <(tail -c +101 "$T/b2")

api GET "$B2" -H "Range: bytes=$S2-"
is "Range starting at the size -> 416" "$STATUS" 416
api GET "$B2" -H "Range: bytes=$((S2 + 5))-$((S2 + 10))"
is "Range beyond the end -> 416" "$STATUS" 416

api GET "$B2" -H 'Range: bytes=0-1,5-6'
is "multi-range -> 200 with the whole blob" "$STATUS" 200
check "... the whole blob" same_bytes "$BODY" "$T/b2"

api GET "$B2" -H 'Range: bytes=0-9' --http2-prior-knowledge
is "Range over h2c -> 206" "$STATUS" 206
check "... the first 10 bytes" cmp "$BODY" <(slice "$T/b2" 0 10)

# ------------------------------------------------------------ unknown and malformed digests
unknown=$(random_digest)
api GET "/v2/blobs/one/blobs/$unknown"
is_error "GET unknown blob -> 404 BLOB_UNKNOWN" 404 BLOB_UNKNOWN
api HEAD "/v2/blobs/one/blobs/$unknown"
is "HEAD unknown blob -> 404" "$STATUS" 404

hex63=$(printf '%063d' 0)
for bad in notadigest 'sha256:xyz' "sha256:$hex63" 'sha256:' ':abc'; do
    api GET "/v2/blobs/one/blobs/$bad"
    is_error "GET blob with malformed digest '$bad' -> 400 DIGEST_INVALID or 404 BLOB_UNKNOWN" \
        400 DIGEST_INVALID 404 BLOB_UNKNOWN
    api HEAD "/v2/blobs/one/blobs/$bad"
    like "HEAD blob with malformed digest '$bad' -> 400 or 404" "$STATUS" '^(400|404)$'
done
for bad in notadigest "sha256:$hex63" 'sha256:'; do
    start_upload blobs/one
    api PUT "$(with_query "$UPLOAD_URL" "digest=$bad")" "${OCTET[@]}" --data-binary "@$T/b1"
    is_error "closing PUT with malformed digest '$bad' -> 400 DIGEST_INVALID" 400 DIGEST_INVALID
    api POST "/v2/blobs/one/blobs/uploads/?digest=$bad" "${OCTET[@]}" --data-binary "@$T/b1"
    is_error "single POST with malformed digest '$bad' -> 400 DIGEST_INVALID" 400 DIGEST_INVALID
done

# ------------------------------------------------------------ sha512
mkrand "$T/s5" 4321
D512=$(sha512_of "$T/s5")
start_upload blobs/sha512
api PUT "$(with_query "$UPLOAD_URL" "digest=$D512")" "${OCTET[@]}" --data-binary "@$T/s5"
is "push with a sha512 digest -> 201" "$STATUS" 201
is "... Docker-Content-Digest is the sha512 digest" "$(hdr Docker-Content-Digest)" "$D512"
api GET "/v2/blobs/sha512/blobs/$D512"
is "GET blob by sha512 digest -> 200" "$STATUS" 200
check "... same bytes" same_bytes "$BODY" "$T/s5"
is "... Docker-Content-Digest" "$(hdr Docker-Content-Digest)" "$D512"
check "... bytes on disk under \$DATA/blobs/sha512/" same_bytes "$(blob_path "$D512")" "$T/s5"

# ------------------------------------------------------------ repository isolation and mounts
mkrand "$T/iso" 3333
DI=$(sha256_of "$T/iso")
push_blob iso/a "$T/iso"
is "push blob to iso/a -> 201" "$STATUS" 201
api GET "/v2/iso/b/blobs/$DI"
is_error "GET it from iso/b -> 404 BLOB_UNKNOWN" 404 BLOB_UNKNOWN
api HEAD "/v2/iso/b/blobs/$DI"
is "HEAD it from iso/b -> 404" "$STATUS" 404
api GET "/v2/iso/blobs/$DI"
is_error "GET it from the parent path iso -> 404 BLOB_UNKNOWN" 404 BLOB_UNKNOWN
api GET "/v2/iso/a/x/blobs/$DI"
is_error "GET it from the child path iso/a/x -> 404 BLOB_UNKNOWN" 404 BLOB_UNKNOWN

api POST "/v2/iso/c/blobs/uploads/?mount=$DI&from=iso/nothere" -H 'Content-Length: 0'
is "mount from a repository without the blob -> 202 (an upload session instead)" "$STATUS" 202
api POST "/v2/iso/c/blobs/uploads/?mount=$DI&from=iso/b" -H 'Content-Length: 0'
is "mount from an existing repository that lacks the blob -> 202" "$STATUS" 202
api HEAD "/v2/iso/c/blobs/$DI"
is "... nothing was mounted: HEAD -> 404" "$STATUS" 404

api POST "/v2/iso/b/blobs/uploads/?mount=$DI&from=iso/a" -H 'Content-Length: 0'
mount_status=$STATUS
like "mount from iso/a to iso/b -> 201 (or 202 if berth declines to mount)" "$STATUS" '^(201|202)$'
if [[ $mount_status == 201 ]]; then
    is "... mount Location is /v2/iso/b/blobs/<digest>" "$(path_of "$(hdr Location)")" "/v2/iso/b/blobs/$DI"
    is "... mount Docker-Content-Digest" "$(hdr Docker-Content-Digest)" "$DI"
    api GET "/v2/iso/b/blobs/$DI"
    is "... GET from iso/b after the mount -> 200" "$STATUS" 200
    check "... same bytes" same_bytes "$BODY" "$T/iso"
else
    api HEAD "/v2/iso/b/blobs/$DI"
    is "... declined mount: still 404 in iso/b" "$STATUS" 404
    diag "berth declined the mount (202); re-uploading instead"
fi
push_blob iso/d "$T/iso"
is "push the same content to iso/d -> 201" "$STATUS" 201
api GET "/v2/iso/d/blobs/$DI"
is "GET from iso/d -> 200" "$STATUS" 200
is "one file on disk however many repositories hold the blob" "$(find "$DATA/blobs" -name "${DI#sha256:}" | wc -l)" 1

# two sessions finishing the same content
mkrand "$T/dup" 50000
DU=$(sha256_of "$T/dup")
start_upload dup/x
u1=$UPLOAD_URL
start_upload dup/y
u2=$UPLOAD_URL
api PATCH "$u1" "${OCTET[@]}" --data-binary "@$T/dup"
u1=$(resolve "$(hdr Location)")
api PATCH "$u2" "${OCTET[@]}" --data-binary "@$T/dup"
u2=$(resolve "$(hdr Location)")
api PUT "$(with_query "$u1" "digest=$DU")" -H 'Content-Length: 0'
is "two sessions with the same content: first PUT -> 201" "$STATUS" 201
api PUT "$(with_query "$u2" "digest=$DU")" -H 'Content-Length: 0'
is "... second PUT -> 201" "$STATUS" 201
api GET "/v2/dup/x/blobs/$DU"
check "... GET from the first repository" same_bytes "$BODY" "$T/dup"
api GET "/v2/dup/y/blobs/$DU"
check "... GET from the second repository" same_bytes "$BODY" "$T/dup"

stop_berth

# ------------------------------------------------------------ a configured body-size limit
# (http.max_body_size may not be below storage.manifest_max_size, 4 MiB)
start_berth BERTH_HTTP_MAX_BODY_SIZE=5MiB
mkrand "$T/big" $((6 * 1024 * 1024))
DB=$(sha256_of "$T/big")
start_upload lim/x
api PUT "$(with_query "$UPLOAD_URL" "digest=$DB")" "${OCTET[@]}" --data-binary "@$T/big"
is "http.max_body_size=5MiB: a 6 MiB PUT -> 413" "$STATUS" 413
start_upload lim/x
api PATCH "$UPLOAD_URL" "${OCTET[@]}" --data-binary "@$T/big"
is "http.max_body_size=5MiB: a 6 MiB PATCH -> 413" "$STATUS" 413
api HEAD "/v2/lim/x/blobs/$DB"
is "... the blob is not there" "$STATUS" 404
check "... no blob file" no_blob_file "$DB"
mkrand "$T/fits" $((4 * 1024 * 1024))
push_blob lim/x "$T/fits"
is "http.max_body_size=5MiB: a 4 MiB PUT -> 201" "$STATUS" 201

done_testing
