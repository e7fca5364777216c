#!/usr/bin/env bash
# README's first command (install, build, start) works as root on a machine without sudo (a fresh Debian
# container) and as a user with sudo. It runs here with every program it and tests/deps.sh call replaced by a stub
# that records its arguments: apt-get, sudo (when present), autoreconf, make, nproc, ./configure and ./berth.
# TAP: the calls each way, in order.
set -u
SRCDIR=${SRCDIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
T=$(mktemp -d "${TMPDIR:-/tmp}/berth-readme.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT
n=0 fail=0
point() { # point OK DESCRIPTION [DETAIL...]
    n=$((n + 1))
    if [[ $1 == 0 ]]; then
        echo "ok $n - $2"
    else
        fail=$((fail + 1))
        echo "not ok $n - $2"
        shift 2
        printf '#   %s\n' "$@"
    fi
}

echo "1..4"
# The first indented line after "On a fresh Debian": the command.
cmd=$(awk '/^On a fresh Debian/ { f = 1 } f && /^    [^ ]/ { sub(/^    /, ""); print; exit }' "$SRCDIR/README")
[[ -n $cmd ]]
point $? "README has a first command" "no indented line after 'On a fresh Debian' in README"
[[ $cmd == *"tests/deps.sh"* && $cmd == *"./configure"* && $cmd == *"./berth serve"* ]]
point $? "it installs, builds and starts berth" "command: $cmd"

stub() { # stub PATH NAME-TO-RECORD [exec "$@" after recording]
    printf '#!/bin/bash\necho "%s $*" >>"$CALLS"\n%s\n' "$2" "${3:-}" >"$1"
    chmod +x "$1"
}
# run WITH_SUDO : the command in a fresh folder holding tests/deps.sh, with only the stubs (and bash) on PATH; its
# calls in $T/calls.<WITH_SUDO>
run() {
    local d=$T/run$1
    mkdir -p "$d/bin" "$d/src/tests"
    for p in apt-get autoreconf make; do stub "$d/bin/$p" "$p"; done
    printf '#!/bin/bash\necho 2\n' >"$d/bin/nproc"
    chmod +x "$d/bin/nproc"
    ln -s /bin/bash "$d/bin/bash"
    ((${1})) && stub "$d/bin/sudo" sudo 'exec "$@"'
    stub "$d/src/configure" ./configure
    stub "$d/src/berth" ./berth
    cp "$SRCDIR/tests/deps.sh" "$d/src/tests/deps.sh"
    (cd "$d/src" && env -i PATH="$d/bin" HOME="$d" CALLS="$T/calls.$1" /bin/bash -c "$cmd") >"$T/out.$1" 2>&1
}

# what tests/deps.sh installs on a machine with none of the tools it looks for (the stubs' PATH)
install='apt-get install -y --no-install-recommends'
pkgs=$(sed -n '/^install build-essential/,/[^\\]$/p' "$SRCDIR/tests/deps.sh" | tr -d '\\\n' | tr -s ' ' |
    sed 's/^install //; s/ *$//')
deps=$'apt-get update\n'"$install $pkgs"$'\n'"$install kubernetes-client"$'\n'"$install nodejs npm"$'\n'
deps+="$install systemd"$'\n'"$install man-db groff-base"
build=$'autoreconf -fi\n./configure \nmake -j2\n./berth serve'

run 0
rc=$?
got=$(cat "$T/calls.0" 2>/dev/null)
[[ $rc == 0 && $got == "$deps"$'\n'"$build" && $pkgs == *libh2o-evloop-dev* && $pkgs == *skopeo* ]]
point $? "as root without sudo: tests/deps.sh's apt-get runs directly, then the build and berth" "exit status $rc" \
    "$(head -c 400 "$T/out.0")" "calls:" "$got"

run 1
rc=$?
got=$(cat "$T/calls.1" 2>/dev/null)
[[ $rc == 0 && $got == "sudo bash tests/deps.sh"$'\n'"$deps"$'\n'"$build" ]]
point $? "as a user with sudo: tests/deps.sh through sudo, the build and berth as the user" "exit status $rc" \
    "$(head -c 400 "$T/out.1")" "calls:" "$got"

exit $((fail > 0))
