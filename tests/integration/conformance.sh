#!/usr/bin/env bash
# OCI distribution-spec conformance: tests/conformance.py run against a fresh berth, then against one with
# storage.sparse_manifests on (--sparse: the suite's sparse workflow).
# The Python program's TAP (its test points and its 1..N plan) is passed through untouched. lib.sh's
# own checks (berth starts and serves /healthz; it exits 0 on SIGTERM; no sanitizer report in its log)
# would print TAP lines numbered on their own, so they are shown as "# berth: ..." diagnostics instead,
# and a failure among them makes this file exit non-zero (which tests/run counts as a failure).
. "$(dirname "$0")/lib.sh"

LIBOUT=$T/lib.out
: >"$LIBOUT"
exec 3>&1 # the real standard output, also for the EXIT trap when start_berth exits with its output redirected

# Show what lib.sh printed as diagnostics (a "Bail out!" stays a bail-out).
lib_output() {
    [[ -s $LIBOUT ]] || return 0
    sed -e '/^Bail out!/b' -e 's/^/# berth: /' "$LIBOUT" >&3
    : >"$LIBOUT"
}
trap 'lib_output; _cleanup' EXIT

start_berth >"$LIBOUT" 2>&1 # exits (through the trap above) if berth does not come up
lib_output

# run_suite [FLAG] : the suite against the server running; its TAP numbered from 1, its plan dropped (one plan below)
total=0
rc=0
run_suite() {
    "$PYTHON" "$SRCDIR/tests/conformance.py" "$URL" "$@" >"$T/suite.out"
    local r=$?
    awk -v base=$total '/^(not )?ok [0-9]+/ { n = $0; sub(/^(not )?ok [0-9]+/, "", n); pre = ($1 == "not") ? "not ok" : "ok";
        num = ($1 == "not") ? $3 : $2; print pre " " (num + base) n; next } /^1\.\.[0-9]+$/ { next } { print }' "$T/suite.out"
    total=$((total + $(grep -cE '^(not )?ok [0-9]+' "$T/suite.out")))
    if ((r != 0)); then
        rc=1
        [[ -s $SRV/berth.log ]] && diag "last lines of $SRV/berth.log:" "$(tail -n 25 "$SRV/berth.log")"
    fi
}
run_suite
stop_berth >"$LIBOUT" 2>&1
lib_output

start_berth BERTH_STORAGE_SPARSE_MANIFESTS=true >"$LIBOUT" 2>&1
lib_output
run_suite --sparse
stop_berth >"$LIBOUT" 2>&1
lib_output
echo "1..$total"
((_failed > 0)) && rc=1
exit "$rc"
