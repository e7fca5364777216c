#!/usr/bin/env bash
# Every fuzz target is wired up: each fuzz/fuzz_<t>.c is built by fuzz/build.sh, replayed by `make check` (its
# fuzz/replay_<t> in Makefile.am's FUZZ_REPLAYS) and has a seed corpus fuzz/corpus/<t> of 1 to 200 files (kept
# small: minimized with -merge=1); and no list names a target that does not exist.
# TAP: one point per target, then one for the lists.
set -u
SRCDIR=${SRCDIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
cd "$SRCDIR" || exit 1

mapfile -t files < <(find fuzz -maxdepth 1 -name 'fuzz_*.c' | sed 's|^fuzz/fuzz_||; s|\.c$||' | sort)
built=" $(sh fuzz/build.sh list) "
# shellcheck disable=SC1003 # tr deletes backslashes: nothing is escaped
replayed=" $(sed -n '/^FUZZ_REPLAYS *=/,/[^\\]$/p' Makefile.am | tr -d '\\' | tr -s ' \t\n' ' ' |
    sed 's/^FUZZ_REPLAYS *= *//; s|fuzz/replay_||g') "

echo "1..$((${#files[@]} + 1))"
n=0 fail=0
for t in "${files[@]}"; do
    n=$((n + 1))
    why=()
    [[ $built == *" $t "* ]] || why+=("fuzz/build.sh does not build it")
    [[ $replayed == *" $t "* ]] || why+=("Makefile.am's FUZZ_REPLAYS has no fuzz/replay_$t")
    count=$(find "fuzz/corpus/$t" -maxdepth 1 -type f 2>/dev/null | wc -l)
    ((count >= 1 && count <= 200)) || why+=("fuzz/corpus/$t holds $count files (1 to 200)")
    if ((${#why[@]} == 0)); then
        echo "ok $n - fuzz target $t: built, replayed, $count seeds"
    else
        fail=$((fail + 1))
        echo "not ok $n - fuzz target $t"
        printf '#   %s\n' "${why[@]}"
    fi
done

n=$((n + 1))
extra=()
for t in $built $replayed; do
    [[ -f fuzz/fuzz_$t.c ]] || extra+=("$t is listed but fuzz/fuzz_$t.c does not exist")
done
for d in fuzz/corpus/*/; do
    d=${d%/}
    [[ -f fuzz/fuzz_${d##*/}.c ]] || extra+=("$d is the corpus of no target")
done
if ((${#extra[@]} == 0)); then
    echo "ok $n - the lists name only targets that exist"
else
    fail=$((fail + 1))
    echo "not ok $n - the lists name only targets that exist"
    printf '#   %s\n' "${extra[@]}"
fi
exit $((fail > 0))
