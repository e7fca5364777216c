#!/usr/bin/env bash
# Readiness goes first on SIGTERM: with http.shutdown_delay, /readyz answers 503 at once while berth still accepts
# and serves new requests for that long (a Kubernetes Service or a load balancer takes a moment to stop sending);
# then it stops accepting and finishes what is in flight (http.shutdown_timeout). A second signal cuts the delay.
. "$(dirname "$0")/lib.sh"

OCTET=(-H 'Content-Type: application/octet-stream')
ms() { date +%s%3N; }
# code PATH : the status of a GET on a new connection (000: refused)
code() { curl -s --max-time 5 -o "$T/code.body" -w '%{http_code}' "$URL$1"; }

# ------------------------------------------------------------ with a delay, an upload in flight
start_berth BERTH_HTTP_SHUTDOWN_DELAY=3s
is "before SIGTERM: /readyz -> 200" "$(code /readyz)" 200

mkrand "$T/slow" $((5 * 1024 * 1024))
DS=$(sha256_of "$T/slow")
start_upload r/slow
# about 5 s at 1 MiB/s: it outlasts the delay and must still finish
curl -sS -o /dev/null -w '%{http_code}' --max-time 60 --limit-rate 1M -H 'Expect:' "${OCTET[@]}" \
    -X PUT --data-binary "@$T/slow" "$(with_query "$UPLOAD_URL" "digest=$DS")" >"$T/slow.status" 2>"$T/slow.err" &
upload=$!
sleep 0.5
pid=$BERTH_PID
kill -TERM "$pid"
t0=$(ms)
sleep 0.3
is "at once after SIGTERM: /readyz on a new connection -> 503" "$(code /readyz)" 503
is "... saying why" "$(cat "$T/code.body")" "shutting down"
is "... while /healthz -> 200 (alive)" "$(code /healthz)" 200
is "... and new requests are still served (GET /v2/ -> 200)" "$(code /v2/)" 200
check "berth still runs during the delay" _alive "$pid"

# after the delay it stops accepting: a new connection is refused
refused=
for ((i = 0; i < 100; i++)); do
    [[ $(code /healthz) == 000 ]] && refused=$(ms) && break
    sleep 0.1
done
isnt "after the delay, new connections are refused" "$refused" ""
t=$((${refused:-0} - t0))
((t >= 2900)) && pass "... not before the 3 s delay ($t ms)" || fail "... not before the 3 s delay ($t ms)"
wait "$upload"
is "the upload in flight during the delay and after it completes -> 201" "$(cat "$T/slow.status")" 201 ||
    diag "$(cat "$T/slow.err")"
wait_berth
like "the log says berth is not ready and still serving" "$(cat "$SRV/berth.log")" \
    'not ready, still serving for 3000 ms \(http.shutdown_delay\)'

start_berth_again
api GET "/v2/r/slow/blobs/$DS"
is "after restart: the upload is there" "$STATUS" 200
check "... same bytes" same_bytes "$BODY" "$T/slow"

# ------------------------------------------------------------ a second signal cuts a long delay short
restart_berth
stop_berth_pid=$BERTH_PID
kill -TERM "$BERTH_PID"
sleep 0.3
is "SIGTERM once: /readyz -> 503" "$(code /readyz)" 503
kill -TERM "$stop_berth_pid"
t0=$(ms)
for ((i = 0; i < 100; i++)); do
    _alive "$stop_berth_pid" || break
    sleep 0.1
done
t=$(($(ms) - t0))
((t < 5000)) && pass "a second SIGTERM ends the 3 s delay at once ($t ms)" ||
    fail "a second SIGTERM ends the 3 s delay at once ($t ms)"
wait_berth

# ------------------------------------------------------------ without a delay (the default): refused at once
start_berth
kill -TERM "$BERTH_PID"
sleep 0.3
is "no delay: after SIGTERM a new connection is refused" "$(code /readyz)" 000
wait_berth

done_testing
