#!/usr/bin/env bash
# The module layers of docs/architecture.md, checked on every #include of src/:
#   util < oci < config < store < {auth, mirror, notify} < replicate < {http, cli} < main.c
# A file may include headers of its own module and of modules on lower layers only: never one above it, never a
# sibling on its own layer. Beside that: only http/ includes h2o, and only store/ includes SQLite.
# TAP: one test point per rule and module.
set -u
SRCDIR=${SRCDIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
cd "$SRCDIR/src" || exit 1

declare -A rank=([util]=0 [oci]=1 [config]=2 [store]=3 [auth]=4 [mirror]=4 [notify]=4 [replicate]=5 [http]=6 [cli]=6 [main]=7)
modules=(util oci config store auth mirror notify replicate http cli main)
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

module_of() { # a path under src/ -> its module
    case $1 in
    main.c) echo main ;;
    */*) echo "${1%%/*}" ;;
    *) echo "?" ;;
    esac
}

echo "1..$((${#modules[@]} * 3))"
for m in "${modules[@]}"; do
    if [[ $m == main ]]; then files=(main.c); else mapfile -t files < <(find "$m" -name '*.[ch]' | sort); fi
    bad=() h2o=() sql=()
    for f in "${files[@]}"; do
        while IFS= read -r inc; do
            to=$(module_of "$inc")
            if [[ -z ${rank[$to]:-} ]]; then
                bad+=("$f includes \"$inc\", which is in no module")
            elif [[ $to != "$m" ]] && ((rank[$to] >= rank[$m])); then
                bad+=("$f includes \"$inc\" ($to is not below $m)")
            fi
        done < <(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f")
        if [[ $m != http ]] && grep -Eq '^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]h2o' "$f"; then h2o+=("$f"); fi
        if [[ $m != store ]] && grep -Eq '^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]sqlite3' "$f"; then sql+=("$f"); fi
    done
    point $((${#bad[@]} > 0)) "$m includes only its own and lower layers" "${bad[@]}"
    point $((${#h2o[@]} > 0)) "$m: only http/ includes h2o" "${h2o[@]}"
    point $((${#sql[@]} > 0)) "$m: only store/ includes SQLite" "${sql[@]}"
done
exit $((fail > 0))
