#!/usr/bin/env bash
# The server's caches never answer older data than the database holds, whoever wrote it: a repository the CLI
# creates (another process) shows in a catalog page the server had cached; a tag pushed over HTTP shows in a
# tags list the server had cached.
. "$(dirname "$0")/lib.sh"

start_berth
printf cfg >"$T/cfg"
printf layer >"$T/layer"
push_blob cache/app "$T/cfg" && push_blob cache/app "$T/layer" || fail "push two blobs" "status $STATUS"
api GET /v2/_catalog
is "the catalog -> 200 [cache/app]" "$STATUS $(jq -c .repositories "$BODY")" '200 ["cache/app"]'
api GET /v2/_catalog
is "again (from the cache) -> the same" "$STATUS $(jq -c .repositories "$BODY")" '200 ["cache/app"]'

BERTH_STORAGE_ROOT="$DATA" "$BERTH" repo visibility cache/made-by-cli public >"$T/cli.out" 2>&1 ||
    fail "berth repo visibility cache/made-by-cli public" "$(cat "$T/cli.out")"
api GET /v2/_catalog
is "after the CLI made a repository -> listed" "$STATUS $(jq -c .repositories "$BODY")" \
    '200 ["cache/app","cache/made-by-cli"]'

image_manifest oci "$T/m.json" "$T/cfg" "$T/layer"
push_manifest cache/app v1 "$T/m.json" || fail "push cache/app:v1" "status $STATUS"
api GET /v2/cache/app/tags/list
is "tags of cache/app -> [v1]" "$STATUS $(jq -c .tags "$BODY")" '200 ["v1"]'
api GET /v2/cache/app/tags/list
is "again (from the cache) -> [v1]" "$STATUS $(jq -c .tags "$BODY")" '200 ["v1"]'
push_manifest cache/app v2 "$T/m.json" || fail "push cache/app:v2" "status $STATUS"
api GET /v2/cache/app/tags/list
is "after a push of v2 -> [v1, v2]" "$STATUS $(jq -c .tags "$BODY")" '200 ["v1","v2"]'

done_testing
