#!/usr/bin/env bash
# make install (into a DESTDIR): the binary, the configuration file (kept when one is there), the man page berth(8),
# the systemd unit with the install's paths and the sysusers.d file of its user; make uninstall removes them. The unit
# passes `systemd-analyze verify` and `systemd-analyze security --offline=yes` rates its exposure at most 1.5, with no
# weakness but the network a registry needs. The man page renders without a warning and names every command of
# `berth --help` and every key berth accepts.
. "$(dirname "$0")/lib.sh"

command -v make >/dev/null || skip_all "no make"
[[ -f $BUILDDIR/Makefile ]] || skip_all "no Makefile in BUILDDIR=$BUILDDIR"
# make of its own, not the sub-make of make check's (its flags would print "Entering directory")
mk() { env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make --no-print-directory -C "$BUILDDIR" "$@"; }
# the install's folders, as make sees them
read -r BINDIR SYSCONFDIR MAN8DIR UNITDIR SYSUSERSDIR < <(mk -s -f Makefile -f <(printf '%s\n' \
    'print-install-dirs:' \
    '	@echo $(bindir) $(sysconfdir) $(man8dir) $(systemdsystemunitdir) $(sysusersdir)') print-install-dirs)
D=$T/root
mk install DESTDIR="$D" >"$T/install.out" 2>&1
is "make install DESTDIR=... succeeds" "$?" 0 || diag "$(tail -n 20 "$T/install.out")"

check "bin: $BINDIR/berth runs (berth version)" "$D$BINDIR/berth" version
check "configuration: $SYSCONFDIR/berth/berth.yaml is conf/berth.yaml" cmp "$D$SYSCONFDIR/berth/berth.yaml" "$SRCDIR/conf/berth.yaml"
check "man page: $MAN8DIR/berth.8" test -s "$D$MAN8DIR/berth.8"
UNIT=$D$UNITDIR/berth.service
check "systemd unit: $UNITDIR/berth.service" test -s "$UNIT"
check "sysusers.d: $SYSUSERSDIR/berth.conf creates the user berth" grep -qE '^u berth ' "$D$SYSUSERSDIR/berth.conf"
is "the unit runs the installed berth with the installed configuration" "$(sed -n 's/^ExecStart=//p' "$UNIT")" \
    "$BINDIR/berth serve -c $SYSCONFDIR/berth/berth.yaml"
is "nothing else is installed" "$(cd "$D" && find . -type f | sort | tr '\n' ' ')" \
    "$(printf '%s\n' ".$BINDIR/berth" ".$SYSCONFDIR/berth/berth.yaml" ".$MAN8DIR/berth.8" ".$UNITDIR/berth.service" \
        ".$SYSUSERSDIR/berth.conf" | sort | tr '\n' ' ')"

# an administrator's configuration survives a new install
echo "# edited" >>"$D$SYSCONFDIR/berth/berth.yaml"
mk install DESTDIR="$D" >"$T/install2.out" 2>&1
check "make install again keeps an edited berth.yaml" grep -q '^# edited' "$D$SYSCONFDIR/berth/berth.yaml"
like "... and says so" "$(cat "$T/install2.out")" "keeping .*/berth/berth.yaml"

# ------------------------------------------------------------ the unit
if ! command -v systemd-analyze >/dev/null; then
    pass "systemd-analyze verify and security # SKIP no systemd-analyze (Debian package systemd)"
else
    # the unit as installed, with the paths under DESTDIR (verify wants ExecStart's binary; man:berth(8) is looked up
    # through MANPATH)
    mkdir -p "$T/unit"
    sed -e "s|^ExecStart=$BINDIR/|ExecStart=$D$BINDIR/|" -e "s| -c $SYSCONFDIR/| -c $D$SYSCONFDIR/|" "$UNIT" \
        >"$T/unit/berth.service"
    check "systemd-analyze verify berth.service: no error, no warning" bash -c \
        'out=$(MANPATH="$1" systemd-analyze verify "$2" 2>&1) && [[ -z $out ]] || { echo "$out"; exit 1; }' \
        _ "$D${MAN8DIR%/man8}" "$T/unit/berth.service"
    systemd-analyze security --offline=yes "$T/unit/berth.service" >"$T/security.out" 2>&1
    score=$(sed -n 's/.*Overall exposure level for berth.service: \([0-9.]*\) .*/\1/p' "$T/security.out")
    diag "systemd-analyze security: $(grep 'Overall exposure' "$T/security.out")"
    # What stays exposed is the network a registry serves and fetches on (PrivateNetwork 0.5, AF_INET/AF_INET6 0.3,
    # IPAddressDeny 0.2), AF_UNIX for the resolver (0.1), the host's root directory (0.1), the clock device that
    # ProtectClock itself leaves readable (0.1), and setpriority of @resources (0.2: the collector lowers its
    # threads' priority): 1.2. 1.5 leaves room for no real weakness: without the system call filter the score is 2.6,
    # without the empty capability bounding set 2.8.
    like "exposure at most 1.5 ($score)" "$score" '^(0\.[0-9]|1\.[0-5])$'
    is "no weakness but the network, the resolver's socket, the root directory, the clock device and setpriority" \
        "$(grep '^✗' "$T/security.out" | awk '{print $2}' | grep -vxE 'PrivateNetwork=|RestrictAddressFamilies=~AF_\(INET\|INET6\)|IPAddressDeny=|RestrictAddressFamilies=~AF_UNIX|RootDirectory=/RootImage=|DeviceAllow=|SystemCallFilter=~@resources' |
            tr '\n' ' ')" ""
    for o in NoNewPrivileges= PrivateTmp= ProtectSystem= ProtectHome= User=/DynamicUser= MemoryDenyWriteExecute= \
        SystemCallFilter=~@privileged CapabilityBoundingSet=~CAP_SYS_ADMIN RestrictNamespaces=~user ProtectProc=; do
        check "security: $o" grep -qE "^✓ ${o//\?/\\?}" "$T/security.out"
    done
fi

# ------------------------------------------------------------ the man page
MAN=$D$MAN8DIR/berth.8
if command -v groff >/dev/null; then
    check "groff -man renders berth.8 without a warning (-ww)" bash -c \
        'out=$(groff -man -Tutf8 -ww -z "$1" 2>&1) && [[ -z $out ]] || { echo "$out"; exit 1; }' _ "$MAN"
fi
if command -v man >/dev/null; then
    check "man -l berth.8 renders without a warning" bash -c \
        'out=$(MANWIDTH=100 man --warnings -l "$1" 2>&1 >/dev/null) && [[ -z $out ]] || { echo "$out"; exit 1; }' _ "$MAN"
fi
# every command of berth's usage (its words up to the first argument: berth user add, berth du, ...) opens an entry
# of the rendered page
groff -man -Tascii -P-cbou "$MAN" >"$T/berth.txt" 2>/dev/null
missing=
while read -r cmd; do
    grep -qE "^ {7}${cmd//|/\\|}( |$)" "$T/berth.txt" || missing+="$cmd; "
done < <("$BERTH" --help 2>&1 | sed -n 's/^\(usage:\)\? *\(berth .*\)/\2/p' |
    awk '{ c = $1; for (i = 2; i <= NF && $i ~ /^[a-z][a-z|-]*$/; i++) c = c " " $i; print c }' | sort -u)
is "every command of berth --help is in the man page" "$missing" ""
# every key berth accepts: the scalar keys berth config lists, the lists, and the keys of their entries (config.c)
keys=$("$BERTH" config | awk 'NR > 1 { print $1 }')
keys+=" $(grep -o 'rule_lists\[\] = {.*' -A4 "$SRCDIR/src/config/config.c" | grep -o '{"[a-z_]*"' | tr -d '{"') mirrors"
missing=
for k in $keys; do grep -qxF ".B $k" "$MAN" || missing+="$k "; done
is "every key berth config prints, and every list, is an entry of the man page ($(wc -w <<<"$keys") keys)" "$missing" ""
entry_keys=$(grep -o 'strcmp(key, "[a-z_]*")' "$SRCDIR/src/config/config.c" | sed 's/.*"\(.*\)".*/\1/' | sort -u)
missing=
for k in $entry_keys; do grep -qE "^ +(- )?$k:" "$MAN" || missing+="$k "; done
is "every key of a list's entries is in the man page ($(wc -w <<<"$entry_keys") keys)" "$missing" ""

# ------------------------------------------------------------ uninstall
mk uninstall DESTDIR="$D" >"$T/uninstall.out" 2>&1
is "make uninstall removes every file" "$(cd "$D" && find . -type f | tr '\n' ' ')" ""

done_testing
