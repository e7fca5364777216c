#!/usr/bin/env bash
# http.addr: ":PORT" listens on every address, IPv4 and IPv6; "0.0.0.0:PORT", "[::]:PORT" and "[::1]:PORT" keep
# their meaning (IPv4 only; the IPv6 wildcard, which takes IPv4 too as the system's net.ipv6.bindv6only says;
# the IPv6 loopback only).
. "$(dirname "$0")/lib.sh"

# Does this machine have an IPv6 loopback to test with?
has_v6=0
"$PYTHON" -c 'import socket; s = socket.socket(socket.AF_INET6); s.bind(("::1", 0))' 2>/dev/null && has_v6=1
bindv6only=$(cat /proc/sys/net/ipv6/bindv6only 2>/dev/null || echo 0)

# serve_on ADDR [VAR=VALUE...] : start berth with http.addr ADDR (the string "PORT" replaced by a free port); sets
# LPID, LPORT, LLOG.
n=0
serve_on() {
    n=$((n + 1))
    LPORT=$(free_port)
    LLOG=$T/listen$n.log
    local addr=${1//PORT/$LPORT}
    shift
    env BERTH_HTTP_ADDR="$addr" BERTH_STORAGE_ROOT="$T/data$n" BERTH_LOG_ACCESS= BERTH_MODE=private \
        BERTH_ADMIN_PASSWORD=pw-listen-test "$@" "$BERTH" serve >"$LLOG" 2>&1 &
    LPID=$!
    local i
    for ((i = 0; i < 100; i++)); do
        grep -q 'listening on' "$LLOG" && return 0
        _alive "$LPID" || return 1
        sleep 0.1
    done
    return 1
}

stop_serve() {
    kill -TERM "$LPID" 2>/dev/null
    wait "$LPID"
    is "berth exits 0 after SIGTERM" "$?" 0
    if grep -qE 'Sanitizer|runtime error:' "$LLOG"; then fail "no sanitizer report" "$(grep -A 30 -m 1 -E 'Sanitizer|runtime error:' "$LLOG")"; fi
}

# reach HOST : the status of GET http://HOST:LPORT/v2/ (000 when nothing answers)
reach() {
    curl -s --noproxy '*' --max-time 5 -o /dev/null -w '%{http_code}' "http://$1:$LPORT/v2/"
}

# --- ":PORT": every address
# (an IPv4 client arrives as ::ffff:127.0.0.1 on the dual-stack socket: auth.trusted_proxies' 127.0.0.1 must still
# name it, or the limiter would key every client behind the proxy on the proxy's address)
if check "berth starts with http.addr :PORT" serve_on ":PORT" BERTH_AUTH_TRUSTED_PROXIES=127.0.0.1 \
    BERTH_AUTH_LOGIN_FAILURES=2 BERTH_AUTH_LOGIN_BACKOFF=30s; then
    like "the log says every IPv4 and IPv6 address" "$(grep 'listening on' "$LLOG")" \
        "listening on :$LPORT \(every IPv4 and IPv6 address\)"
    is "reached on 127.0.0.1 (401: private mode challenges)" "$(reach 127.0.0.1)" 401
    if ((has_v6)); then
        is "reached on [::1]" "$(reach '[::1]')" 401
    else
        pass "reached on [::1] # SKIP this machine has no IPv6 loopback"
    fi
    login() { # login PASSWORD XFF : the status of GET /v2/ as admin from the proxy 127.0.0.1 for client XFF
        curl -s --noproxy '*' --max-time 30 -o /dev/null -w '%{http_code}' -u "admin:$1" -H "X-Forwarded-For: $2" \
            "http://127.0.0.1:$LPORT/v2/"
    }
    is "two wrong passwords for admin from 10.9.9.1 behind the trusted proxy 127.0.0.1 -> 401 401" \
        "$(login wrong1 10.9.9.1) $(login wrong2 10.9.9.1)" "401 401"
    is "... then 10.9.9.1 backs off -> 429" "$(login pw-listen-test 10.9.9.1)" 429
    is "... and 10.9.9.2 behind the same proxy does not: the proxy was recognised (IPv4 as ::ffff:) -> 200" \
        "$(login pw-listen-test 10.9.9.2)" 200
    stop_serve
else
    diag "$(tail -n 20 "$LLOG")"
fi

# --- "0.0.0.0:PORT": IPv4 only
if check "berth starts with http.addr 0.0.0.0:PORT" serve_on "0.0.0.0:PORT"; then
    is "0.0.0.0: reached on 127.0.0.1" "$(reach 127.0.0.1)" 401
    if ((has_v6)); then
        is "0.0.0.0: nothing answers on [::1]" "$(reach '[::1]')" 000
    else
        pass "0.0.0.0: nothing answers on [::1] # SKIP this machine has no IPv6 loopback"
    fi
    stop_serve
fi

if ((has_v6)); then
    # --- "[::]:PORT": the IPv6 wildcard, as it always was (IPv4 too only where bindv6only is 0)
    if check "berth starts with http.addr [::]:PORT" serve_on "[::]:PORT"; then
        is "[::]: reached on [::1]" "$(reach '[::1]')" 401
        if [[ $bindv6only == 0 ]]; then
            is "[::]: reached on 127.0.0.1 (net.ipv6.bindv6only is 0)" "$(reach 127.0.0.1)" 401
        else
            is "[::]: nothing answers on 127.0.0.1 (net.ipv6.bindv6only is 1)" "$(reach 127.0.0.1)" 000
        fi
        stop_serve
    fi
    # --- "[::1]:PORT": the IPv6 loopback only
    if check "berth starts with http.addr [::1]:PORT" serve_on "[::1]:PORT"; then
        is "[::1]: reached on [::1]" "$(reach '[::1]')" 401
        is "[::1]: nothing answers on 127.0.0.1" "$(reach 127.0.0.1)" 000
        stop_serve
    fi
else
    pass "[::]:PORT and [::1]:PORT # SKIP this machine has no IPv6 loopback"
fi

# --- the forms that stay refused, with the key named
for bad in ":" ":0" "::PORT" "[]:PORT"; do
    out=$(env BERTH_HTTP_ADDR="${bad//PORT/5000}" BERTH_STORAGE_ROOT="$T/bad" "$BERTH" config 2>&1)
    rc=$?
    isnt "http.addr '$bad' is refused" "$rc" 0
    like "http.addr '$bad': the error names the variable" "$out" "BERTH_HTTP_ADDR"
done

done_testing
