#!/usr/bin/env bash
# Tag lists of mirrored repositories are the upstream's (as distribution's proxy mode gives them), not only what
# the mirror happens to have stored:
#   - the upstream is a second berth; between it and the mirror the fault-injecting proxy (mirror_proxy.py) makes
#     the upstream page its tag lists by 2 (Link headers), and fails or goes away on demand;
#   - the upstream has tags the mirror never pulled, and the client sees them, every page of them, sorted;
#   - the client's own ?n= and ?last= page the result, with a Link header;
#   - the list is kept for the mirror's tag_ttl (a new upstream tag shows after it, not before), served from the
#     kept copy when the upstream answers 500 or is gone, and a repository the upstream lacks is 404 NAME_UNKNOWN.
. "$(dirname "$0")/lib.sh"

TTL=3 # the mirror's tag_ttl, seconds
now() { date +%s.%N; }
sleep_past() { # sleep_past T SECONDS : sleep until SECONDS (+0.3) after the date +%s.%N value T
    sleep "$(awk -v t="$1" -v s="$2" -v n="$(date +%s.%N)" 'BEGIN { d = t + s + 0.3 - n; printf "%.2f", (d > 0 ? d : 0) }')"
}

# ---------------------------------------------------------------- the upstream: berth, tags t1..t5 of one image
start_berth
UP_PID=$BERTH_PID UP_URL=$URL UP_REG=$REG UP_SRV=$SRV
check "upstream: push an image as app:t1" push_image app t1 oci
M=$IMG_MANIFEST
for t in t2 t3 t4 t5; do push_manifest app "$t" "$M" || fail "upstream: tag app:$t"; done
push_image solo a oci && push_manifest solo b "$IMG_MANIFEST"
is "upstream: push an image as solo:a, and tag it solo:b" "$STATUS" 201
api GET "$UP_URL/v2/app/tags/list"
is "upstream: app has t1..t5" "$(jq -c .tags "$BODY")" '["t1","t2","t3","t4","t5"]'

PROXY_PID=
trap '[[ -n $PROXY_PID ]] && kill -TERM "$PROXY_PID" 2>/dev/null; [[ -n ${UP_PID:-} ]] && kill -KILL "$UP_PID" 2>/dev/null; _cleanup' EXIT
FAULT=$T/fault
echo page2 >"$FAULT"
"$PYTHON" "$(dirname "$0")/mirror_proxy.py" "$T/proxy.port" "$UP_REG" "$FAULT" "$T/proxy.log" 2>"$T/proxy.err" &
PROXY_PID=$!
for ((i = 0; i < 100; i++)); do
    [[ -s $T/proxy.port ]] && break
    sleep 0.05
done
PROXY=127.0.0.1:$(cat "$T/proxy.port" 2>/dev/null)
api GET "http://$PROXY/v2/app/tags/list"
is "the proxy makes the upstream page tag lists by 2 (Link header)" "$STATUS $(jq -c .tags "$BODY") $(hdr Link)" \
    '200 ["t1","t2"] </v2/app/tags/list?n=2&last=t2>; rel="next"'

# ---------------------------------------------------------------- the mirror
cat >"$T/mirror.yaml" <<EOF
mirrors:
  - prefix: ""
    upstream: http://$PROXY
    ns: upstream.test
    tag_ttl: ${TTL}s
    timeout: 5s
EOF
start_berth BERTH_MODE=public BERTH_ADMIN_PASSWORD=mirror-pw-5 BERTH_CONFIG="$T/mirror.yaml"
tag_gets() { grep -c '^GET /v2/app/tags/list' "$T/proxy.log"; }

api GET /v2/app/manifests/t1 -H "Accept: $MT_OCI_MANIFEST"
is "mirror: pull app:t1 (the only tag it stores)" "$STATUS" 200
api GET /v2/solo/manifests/a -H "Accept: $MT_OCI_MANIFEST"
is "mirror: pull solo:a (its tags never listed)" "$STATUS" 200
before=$(tag_gets)
t0=$(now)
api GET /v2/app/tags/list
is "mirror: GET app/tags/list -> 200, the upstream's t1..t5 (four it never pulled)" \
    "$STATUS $(jq -c . "$BODY")" '200 {"name":"app","tags":["t1","t2","t3","t4","t5"]}'
is "... fetched in the upstream's 3 pages of 2, following its Link" "$(($(tag_gets) - before))" 3
like "... as JSON" "$(hdr Content-Type)" '^application/json'
check "... no Link: the client asked for everything" bash -c "! grep -qi '^link:' '$HDRS'"

# the client's paging, applied to the upstream's list
api GET "/v2/app/tags/list?n=2"
is "?n=2 -> t1,t2 with a Link to the next page" "$STATUS $(jq -c .tags "$BODY") $(hdr Link)" \
    '200 ["t1","t2"] </v2/app/tags/list?n=2&last=t2>; rel="next"'
api GET "$(resolve "$(hdr Link | sed 's/^<\([^>]*\)>.*/\1/')")"
is "... following it -> t3,t4 and a Link" "$STATUS $(jq -c .tags "$BODY") $(hdr Link)" \
    '200 ["t3","t4"] </v2/app/tags/list?n=2&last=t4>; rel="next"'
api GET "/v2/app/tags/list?n=2&last=t4"
is "... then t5, no Link" "$STATUS $(jq -c .tags "$BODY") $(hdr Link)" '200 ["t5"] '
api GET "/v2/app/tags/list?last=t2"
is "?last=t2 -> t3,t4,t5" "$(jq -c .tags "$BODY")" '["t3","t4","t5"]'
api GET "/v2/app/tags/list?last=t35&n=1"
is "?last=t35&n=1 (not a tag of the list) -> t4, Link" "$(jq -c .tags "$BODY") $(hdr Link)" \
    '["t4"] </v2/app/tags/list?n=1&last=t4>; rel="next"'
api GET "/v2/app/tags/list?n=0"
is "?n=0 -> no tags" "$STATUS $(jq -c .tags "$BODY")" '200 []'
api GET "/v2/app/tags/list?n=x"
is_error "?n=x -> 400 UNSUPPORTED, as for a hosted repository" 400 UNSUPPORTED
is "these pages came from the kept list: no upstream request" "$(($(tag_gets) - before))" 3

# tag_ttl: a tag made upstream is seen after it, not before
api PUT "$UP_URL/v2/app/manifests/t6" -H "Content-Type: $MT_OCI_MANIFEST" --data-binary "@$M"
is "upstream: tag app:t6" "$STATUS" 201
api GET /v2/app/tags/list
is "within tag_ttl: the kept list, without t6" "$(jq -c .tags "$BODY")" '["t1","t2","t3","t4","t5"]'
sleep_past "$t0" "$TTL"
t0=$(now)
api GET /v2/app/tags/list
is "after tag_ttl: the upstream's list again, with t6" "$(jq -c .tags "$BODY")" '["t1","t2","t3","t4","t5","t6"]'

# a repository the upstream does not have
api GET /v2/nosuch/tags/list
is_error "a repository the upstream lacks -> 404 NAME_UNKNOWN" 404 NAME_UNKNOWN

# the upstream failing: the kept list
echo 500 >"$FAULT"
sleep_past "$t0" "$TTL"
api GET /v2/app/tags/list
is "upstream answers 500, tag_ttl over: the kept list -> 200, t1..t6" "$STATUS $(jq -c .tags "$BODY")" \
    '200 ["t1","t2","t3","t4","t5","t6"]'
check "... and the mirror logged it" grep -q 'serving the cached tag list of app' "$SRV/berth.log"

# the upstream gone (and the proxy in front of it)
kill -TERM "$UP_PID" 2>/dev/null
wait "$UP_PID"
is "the upstream exits 0 after SIGTERM" "$?" 0
UP_PID=
kill -TERM "$PROXY_PID" 2>/dev/null
wait "$PROXY_PID" 2>/dev/null
PROXY_PID=
api GET "http://$PROXY/v2/"
is "the upstream is gone (nothing answers)" "$STATUS" 000
api GET "/v2/app/tags/list?n=3"
is "upstream gone: the kept list, paged -> t1..t3 and a Link" "$STATUS $(jq -c .tags "$BODY") $(hdr Link)" \
    '200 ["t1","t2","t3"] </v2/app/tags/list?n=3&last=t3>; rel="next"'
api GET /v2/app/manifests/t1 -H "Accept: $MT_OCI_MANIFEST"
is "... and app:t1, stored, still served" "$STATUS" 200
# a list never fetched while the upstream was there: what the mirror stores
api GET /v2/solo/tags/list
is "upstream gone, solo's list never fetched: the tags the mirror stores -> 200, a" "$STATUS $(jq -c . "$BODY")" \
    '200 {"name":"solo","tags":["a"]}'
api GET /v2/other/tags/list
is_error "upstream gone, a repository neither stored nor listed before -> 404 NAME_UNKNOWN" 404 NAME_UNKNOWN

grep -qE 'AddressSanitizer|runtime error:' "$UP_SRV/berth.log" &&
    fail "no sanitizer report in the upstream's log" "$(grep -m1 -A30 -E 'AddressSanitizer|runtime error:' "$UP_SRV/berth.log")"
done_testing
