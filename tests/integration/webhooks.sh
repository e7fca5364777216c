#!/usr/bin/env bash
# Webhooks (notifications.endpoints) against a local receiver (hook_receiver.py) that can answer 500, stall beyond the
# timeout and recover: a push's event arrives in distribution's envelope with the exact fields; CloudEvents; pulls
# only to the endpoint that opted in; filters by action and repository; a failing receiver gets every event at least
# once and in order once it recovers; a stalled one does not slow pushes; events queued when berth stops are
# delivered after it starts again; the secret header is sent and never logged. Last, the drain after an outage of
# WEBHOOK_OUTAGE seconds (default 8; 30 for the report) with WEBHOOK_EVENTS events (default 200) queued meanwhile.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/authlib.bash"

OUTAGE=${WEBHOOK_OUTAGE:-8}
NEVENTS=${WEBHOOK_EVENTS:-200}
LOG=$T/hooks.jsonl
: >"$LOG"
mkdir -p "$T/modes"
mode() { echo "$2" >"$T/modes/mode-$1"; }
"$PYTHON" "$(dirname "$0")/hook_receiver.py" "$LOG" "$T/modes" 3 >"$T/receiver.port" &
RECEIVER=$!
trap 'kill $RECEIVER 2>/dev/null' EXIT
for _ in $(seq 50); do [[ -s $T/receiver.port ]] && break; sleep 0.1; done
RPORT=$(cat "$T/receiver.port")
[[ -n $RPORT ]] || skip_all "the receiver did not start"
HOOK=http://127.0.0.1:$RPORT

cat >"$T/berth.yaml" <<YAML
notifications:
  endpoints:
    - name: main
      url: $HOOK/main
      headers:
        Authorization: [Bearer s3cret-hook-token]
        X-Team: registry
      timeout: 1s
      threshold: 2
      backoff: 100ms
      maxbackoff: 400ms
    - name: nodeletes
      url: $HOOK/nodeletes
      repositories: [acme/*]
      ignore:
        actions: [delete]
      ignoredmediatypes: [application/octet-stream]
    - name: ce
      url: $HOOK/ce
      format: cloudevents
      actions: [push]
    - name: pulls
      url: $HOOK/pulls
      actions: [pull]
YAML

# the events a path got with a 2xx answer the sender waited for, one JSON per line
got() {
    if [[ $1 == ce ]]; then
        jq -c 'select(.path == "ce" and .status == 200 and .mode != "stall") | .body' "$LOG"
    else
        jq -c --arg p "$1" 'select(.path == $p and .status == 200 and .mode != "stall") | .body.events[]' "$LOG"
    fi
}
# wait_for SECONDS CMD... : until CMD succeeds
wait_for() {
    local until=$((SECONDS + $1))
    shift
    while ((SECONDS < until)); do "$@" && return 0; sleep 0.1; done
    "$@"
}
has_tag() { got "$1" | jq -e --arg t "$2" 'select(.target.tag == $t)' >/dev/null; }
n_of() { got "$1" | jq -s "map(select($2)) | length"; }

start_berth BERTH_CONFIG="$T/berth.yaml" BERTH_MODE=private BERTH_ADMIN_PASSWORD="$ADMIN_PW"
check "berth user add alice" adduser alice alice-pw1
check "berth repo grant '*' alice pull,push,delete" b repo grant '*' alice pull,push,delete
CURL_TLS=(-u alice:alice-pw1 -A "hooktest/1.0")

# ------------------------------------------------------------ a push: the envelope and its fields
check "push acme/app:v1 (docker)" push_image acme/app v1 docker
D1=$IMG_DIGEST
SIZE1=$(size_of "$IMG_MANIFEST")
cp "$IMG_MANIFEST" "$T/acme.json"
wait_for 10 has_tag main v1
EV=$(got main | jq -c 'select(.target.tag == "v1")' | head -n1)
is "main: one push event for v1" "$(n_of main '.target.tag == "v1"')" 1
is "... action push" "$(jq -r .action <<<"$EV")" push
is "... target: mediaType, digest, size, length, repository, tag" \
    "$(jq -c '.target | [.mediaType, .digest, .size, .length, .repository, .tag]' <<<"$EV")" \
    "$(jq -nc --arg d "$D1" --argjson s "$SIZE1" --arg mt "$MT_DOCKER_MANIFEST" '[$mt, $d, $s, $s, "acme/app", "v1"]')"
is "... target.url" "$(jq -r .target.url <<<"$EV")" "$URL/v2/acme/app/manifests/$D1"
is "... actor.name alice" "$(jq -r .actor.name <<<"$EV")" alice
is "... request: method, useragent, host, addr" "$(jq -r '.request | [.method, .useragent, .host, .addr] | join(" ")' <<<"$EV")" \
    "PUT hooktest/1.0 $REG 127.0.0.1"
like "... request.id, id: UUIDs" "$(jq -r '[.id, .request.id] | join(" ")' <<<"$EV")" '^[0-9a-f-]{36} [0-9a-f-]{36}$'
like "... timestamp RFC 3339 UTC" "$(jq -r .timestamp <<<"$EV")" '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]+Z$'
like "... source: addr host:port, instanceID" "$(jq -r '.source | "\(.addr) \(.instanceID)"' <<<"$EV")" ":$PORT [0-9a-f-]{36}$"
REQ=$(jq -c 'select(.path == "main")' "$LOG" | head -n1)
is "Content-Type: distribution's events media type" "$(jq -r '.headers["Content-Type"]' <<<"$REQ")" \
    application/vnd.docker.distribution.events.v1+json
is "the configured headers are sent" "$(jq -r '.headers.Authorization + " / " + .headers["X-Team"]' <<<"$REQ")" \
    "Bearer s3cret-hook-token / registry"
is "the envelope is {events: [...]}" "$(jq -r '.body | keys | join(",")' <<<"$REQ")" events
wait_for 10 has_tag nodeletes v1
is "nodeletes (acme/*) got the push too" "$(n_of nodeletes '.target.tag == "v1"')" 1

# ------------------------------------------------------------ CloudEvents
wait_for 10 bash -c "[[ -n \$(jq -c 'select(.path == \"ce\")' '$LOG') ]]"
CE=$(got ce | head -n1)
is "ce: specversion 1.0" "$(jq -r .specversion <<<"$CE")" 1.0
is "ce: type" "$(jq -r .type <<<"$CE")" dev.berth.registry.push
is "ce: source is the registry's URL" "$(jq -r .source <<<"$CE")" "http://127.0.0.1:$PORT"
is "ce: id is the event's" "$(jq -r '.id == .data.id' <<<"$CE")" true
is "ce: datacontenttype application/json" "$(jq -r .datacontenttype <<<"$CE")" application/json
is "ce: subject repository:tag" "$(jq -r .subject <<<"$CE")" acme/app:v1
is "ce: data is distribution's event" "$(jq -r '.data.target.digest' <<<"$CE")" "$D1"
is "ce: Content-Type application/cloudevents+json" \
    "$(jq -r 'select(.path == "ce") | .headers["Content-Type"]' "$LOG" | head -n1)" application/cloudevents+json

# ------------------------------------------------------------ pulls: opt-in
api GET /v2/acme/app/manifests/v1 -H "Accept: $MT_DOCKER_MANIFEST"
is "pull acme/app:v1 -> 200" "$STATUS" 200
api HEAD /v2/acme/app/manifests/v1 -H "Accept: $MT_DOCKER_MANIFEST"
wait_for 10 bash -c "[[ -n \$(jq -c 'select(.path == \"pulls\")' '$LOG') ]]"
is "pulls: one pull event (GET; a HEAD is none)" "$(n_of pulls '.action == "pull"')" 1
is "... with its target" "$(got pulls | jq -r '[.target.repository, .target.tag, .target.digest, .request.method] | join(" ")')" \
    "acme/app v1 $D1 GET"
is "main (push, delete) got no pull" "$(n_of main '.action == "pull"')" 0

# ------------------------------------------------------------ deletes and the repository filter
check "push other/x:v1" push_image other/x v1 oci
IMG_MANIFEST=$T/acme.json # pushed again under other tags below
api DELETE /v2/acme/app/manifests/v1
is "delete tag acme/app:v1 -> 202" "$STATUS" 202
wait_for 10 bash -c "[[ \$(jq -c 'select(.path == \"main\") | .body.events[] | select(.action == \"delete\")' '$LOG') ]]"
is "main: the delete, naming the tag and what it pointed at" \
    "$(got main | jq -r 'select(.action == "delete") | [.target.repository, .target.tag, .target.digest] | join(" ")')" \
    "acme/app v1 $D1"
wait_for 10 has_tag main v1 # (already) and other/x's push
wait_for 10 bash -c "got main | jq -e 'select(.target.repository == \"other/x\")' >/dev/null" 2>/dev/null
is "main got other/x's push" "$(n_of main '.target.repository == "other/x"')" 1
sleep 1
is "nodeletes: no delete" "$(n_of nodeletes '.action == "delete"')" 0
is "nodeletes (acme/* only): nothing of other/x" "$(n_of nodeletes '.target.repository == "other/x"')" 0

# ------------------------------------------------------------ a receiver that fails, then recovers
mode main fail
for i in 1 2 3 4 5; do push_manifest acme/app "r$i" "$IMG_MANIFEST" || fail "push r$i while main fails"; done
pass "5 pushes answered 201 while main answers 500"
sleep 1.5
like "main was tried and failed" "$(jq -r 'select(.path == "main" and .status == 500) | .status' "$LOG" | head -n1)" 500
like "berth logs the failure by the endpoint's name" "$(cat "$SRV/berth.log")" 'webhook main: delivery failed \(status 500\)'
mode main ok
wait_for 15 has_tag main r5
is "after recovery main has r1..r5, in order, each at least once" \
    "$(got main | jq -r 'select(.target.tag // "" | test("^r[0-9]$")) | .target.tag' | awk '!seen[$0]++' | tr '\n' ' ')" \
    "r1 r2 r3 r4 r5 "
is "... exactly once here (the 500s were not 2xx)" "$(n_of main '.target.tag // "" | test("^r[0-9]$")')" 5

# ------------------------------------------------------------ a stalled receiver does not slow pushes
push_times() { # N TAGPREFIX -> total seconds for N pushes
    local start=$EPOCHREALTIME i
    for ((i = 0; i < $1; i++)); do push_manifest acme/app "$2$i" "$IMG_MANIFEST" || return 1; done
    echo "$EPOCHREALTIME - $start" | bc
}
HEALTHY=$(push_times 10 h)
mode main stall
STALLED=$(push_times 10 s)
diag "10 pushes: $HEALTHY s with the receivers healthy, $STALLED s with main stalled (3 s per request, timeout 1 s)"
is "pushes with main stalled take at most 3x + 0.5 s of the healthy ones" \
    "$(echo "$STALLED <= 3 * $HEALTHY + 0.5" | bc)" 1
mode main ok
wait_for 20 has_tag main s9
is "after the stall, main has s0..s9, in order (at least once)" \
    "$(got main | jq -r 'select(.target.tag // "" | test("^s[0-9]$")) | .target.tag' | awk '!seen[$0]++' | tr '\n' ' ')" \
    "s0 s1 s2 s3 s4 s5 s6 s7 s8 s9 "

# ------------------------------------------------------------ a restart keeps what was not delivered
mode main fail
check "push acme/app:restart while main fails" push_manifest acme/app restart "$IMG_MANIFEST"
sleep 0.5
stop_berth
q=$(sqlite3 "$DATA/berth.db" "SELECT count(*) FROM webhook_event WHERE event LIKE '%\"tag\":\"restart\"%'")
is "the undelivered event is in the database after berth stopped" "$q" 1
mode main ok
start_berth_again
CURL_TLS=(-u alice:alice-pw1 -A "hooktest/1.0")
wait_for 15 has_tag main restart
is "... and delivered after berth started again" "$(n_of main '.target.tag == "restart"')" 1
for _ in $(seq 30); do
    [[ $(sqlite3 "$DATA/berth.db" "SELECT count(*) FROM webhook_event") == 0 ]] && break
    sleep 0.2
done
is "events every endpoint has are deleted from the queue" "$(sqlite3 "$DATA/berth.db" "SELECT count(*) FROM webhook_event")" 0

# ------------------------------------------------------------ nothing secret in the log
isnt "the header's token is never logged" "$(grep -c s3cret-hook-token "$SRV/berth.log")" 1
is "... not at all" "$(grep -c s3cret-hook-token "$SRV/berth.log")" 0
b config -c "$T/berth.yaml" >"$T/config.out" 2>&1
is "berth config shows the endpoint without its header values" "$(grep -c s3cret "$T/config.out")" 0

# ------------------------------------------------------------ a bad configuration is refused
printf 'notifications:\n  endpoints:\n    - name: x\n      url: ftp://h/\n' >"$T/bad.yaml"
b config -c "$T/bad.yaml" >"$T/bad.out" 2>&1
like "url ftp:// refused" "$(cat "$T/bad.out")" 'url "ftp://h/" must be an http:// or https:// URL'
printf 'notifications:\n  endpoints:\n    - name: x\n      url: http://h/\n      actions: [pushes]\n' >"$T/bad.yaml"
b config -c "$T/bad.yaml" >"$T/bad.out" 2>&1
like "an unknown action refused" "$(cat "$T/bad.out")" 'unknown action "pushes"'

# ------------------------------------------------------------ the drain after an outage
mode main fail
t0=$EPOCHREALTIME
for ((i = 0; i < NEVENTS; i++)); do push_manifest acme/app "o$i" "$IMG_MANIFEST" || break; done
t1=$EPOCHREALTIME
left=$(echo "$OUTAGE - ($t1 - $t0)" | bc)
[[ $left == -* ]] || sleep "$left"
mode main ok
t2=$EPOCHREALTIME
wait_for 60 has_tag main "o$((NEVENTS - 1))"
t3=$EPOCHREALTIME
n=$(got main | jq -r 'select(.target.tag // "" | test("^o[0-9]+$")) | .target.tag' | sort -u | wc -l)
is "after a $OUTAGE s outage main got all $NEVENTS events queued during it" "$n" "$NEVENTS"
diag "$(printf 'outage drain: %d events pushed in %.1f s during a %s s outage; all delivered %.2f s after the receiver recovered' \
    "$NEVENTS" "$(echo "$t1 - $t0" | bc)" "$OUTAGE" "$(echo "$t3 - $t2" | bc)")"

# ------------------------------------------------------------ a full queue drops its oldest events, counted
sed 's/^notifications:$/notifications:\n  queue_size: 100/' "$T/berth.yaml" >"$T/small.yaml"
stop_berth
BERTH_ENV=(BERTH_CONFIG="$T/small.yaml" BERTH_MODE=private BERTH_ADMIN_PASSWORD="$ADMIN_PW")
start_berth_again
CURL_TLS=(-u alice:alice-pw1 -A "hooktest/1.0")
mode main fail
for i in $(seq 130); do push_manifest acme/app "full$i" "$IMG_MANIFEST" || break; done
dropped=$(curl -s "$URL/metrics" | awk '$1 == "berth_webhook_events_dropped_total" {print $2}')
check "with queue_size 100 and main failing, 130 pushes drop events, counted on /metrics ($dropped)" \
    test "${dropped:-0}" -ge 30
mode main ok
wait_for 30 has_tag main full130
check "... and main gets the newest once it recovers" has_tag main full130

done_testing
