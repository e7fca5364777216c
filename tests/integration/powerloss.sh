#!/usr/bin/env bash
# Power loss: berth's file-system operations during pushes are recorded (tests/crash/trace.c, an LD_PRELOAD shim),
# every state a power cut could leave is rebuilt from the record, and berth must open each one and serve every
# object it had acknowledged, byte-exact, and nothing corrupt (tests/crash/powerloss.py says how).
# POWERLOSS_LONG=1 runs the long variant (tests/README); POWERLOSS_ARGS adds options to powerloss.py.
. "$(dirname "$0")/lib.sh"

SHIM=$BUILDDIR/tests/crash/trace.so
if [[ ! -f $SHIM ]]; then # run outside `make check`: build it here
    SHIM=$T/trace.so
    ${CC:-cc} -shared -fPIC -O2 -o "$SHIM" "$SRCDIR/tests/crash/trace.c" -ldl -lpthread || {
        echo "Bail out! cannot build the tracing shim"
        exit 1
    }
fi
args=(--berth "$BERTH" --shim "$SHIM" --work "$T/work")
[[ ${KEEP_TMP:-0} == 1 ]] && args+=(--keep)
if [[ ${POWERLOSS_LONG:-0} == 1 ]]; then
    args+=(--long)
else
    args+=(--max-states 300 --budget 150) # a slow machine or build (ASan) checks fewer
fi
# powerloss.py writes the TAP; lib.sh's temporary folder is removed on exit
"$PYTHON" "$SRCDIR/tests/crash/powerloss.py" "${args[@]}" ${POWERLOSS_ARGS:-}
