#!/usr/bin/env bash
# OCI distribution-spec conformance: tests/conformance.py run against a fresh berth.
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

"$PYTHON" "$SRCDIR/tests/conformance.py" "$URL"
rc=$?

if ((rc != 0)) && [[ -s $SRV/berth.log ]]; then
    diag "last lines of $SRV/berth.log:" "$(tail -n 25 "$SRV/berth.log")"
fi
stop_berth >"$LIBOUT" 2>&1
lib_output
((_failed > 0)) && rc=1
exit "$rc"
