#!/usr/bin/env bash
# The crash test: SIGKILL berth at random moments while clients push concurrently (every upload style, manifests by
# tag and by digest, indexes, mounts, resumed sessions), then after each restart: every acknowledged object is served
# byte for byte, and berth fsck finds no error (the unreferenced leftovers of unacknowledged pushes are orphans, which
# fsck lists and --repair removes). tests/integration/crash.py does the work and writes the TAP; its docstring has
# the rules. Environment:
#   CRASH_KILLS         kills (default 20; the long run is CRASH_KILLS=500, see tests/README)
#   CRASH_CLIENTS       concurrent clients (default 4)
#   CRASH_SEED          the random choices (printed first; a seed replays the choices, not the timing)
#   CRASH_FULL_EVERY    rounds between checks of every acknowledged blob (1; 25 above 50 kills: in between, the
#                       blobs acknowledged since the last full check, and every manifest and tag, are checked)
#   CRASH_VERIFY_EVERY  rounds between fsck --verify (4; 25 above 50 kills: plain fsck in between, and --verify
#                       after the last kill)
. "$(dirname "$0")/lib.sh"

"$PYTHON" "$SRCDIR/tests/integration/crash.py" "$BERTH" "$T"
