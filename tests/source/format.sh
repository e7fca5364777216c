#!/usr/bin/env bash
# Every C file of src/, tests/unit/, tests/crash/ and fuzz/ is formatted as .clang-format says
# (clang-format -i FILE fixes one).
# TAP: one point per file, with the diff of a file that is not. Skipped where clang-format is not installed.
set -u
SRCDIR=${SRCDIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
cd "$SRCDIR" || exit 1
if ! command -v clang-format >/dev/null; then
    echo "1..0 # SKIP clang-format is not installed"
    exit 0
fi
mapfile -t files < <(find src tests/unit tests/crash fuzz -name '*.[ch]' | sort)
echo "1..${#files[@]}"
n=0 fail=0
for f in "${files[@]}"; do
    n=$((n + 1))
    if d=$(clang-format --style=file "$f" | diff -u "$f" -); then
        echo "ok $n - $f"
    else
        fail=$((fail + 1))
        echo "not ok $n - $f is not formatted (clang-format -i $f)"
        printf '%s\n' "$d" | head -n 40 | sed 's/^/#   /'
    fi
done
exit $((fail > 0))
