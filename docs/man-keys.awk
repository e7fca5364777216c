# The CONFIGURATION KEYS section of berth(8), in roff, from conf/berth.yaml (the one place every key is written
# with its default, its variable and what it does; tests/unit/config_test.c checks the file against the defaults,
# tests/integration/install.sh checks that every key berth accepts comes out here). Run by make: docs/berth.8.
#   awk -f docs/man-keys.awk conf/berth.yaml
# A key is a line "KEY: VALUE  # BERTH_VARIABLE ..." under its sections ("http:", "  tls:"); the comment lines
# right above it (no blank line between) describe it. From the first comment line that is YAML or indented on, the
# rest of a description is an example, shown as it is.

function esc(s) {
    gsub(/\\/, "\\e", s)
    sub(/^[.']/, "\\\\\\&&", s)
    return s
}

function flush_desc(    i) {
    for (i = 1; i <= ndesc; i++) {
        if (!pre && (desc[i] ~ /^ / || desc[i] ~ /^[a-z_]+:( |$)/)) {
            pre = 1
            print ".IP"
            print ".nf"
        }
        print esc(desc[i])
    }
    if (pre)
        print ".fi"
    pre = 0
    ndesc = 0
}

BEGIN { ndesc = 0; pre = 0 }

/^[ ]*#/ {
    line = $0
    sub(/^[ ]*# ?/, "", line)
    desc[++ndesc] = line
    next
}

/^[ ]*$/ { ndesc = 0; next }

{
    match($0, /^ */)
    depth = RLENGTH / 2
    line = $0
    sub(/^ */, "", line)
    key = line
    sub(/:.*/, "", key)
    rest = line
    sub(/^[^:]*:[ ]*/, "", rest)
    note = ""
    if (index(rest, "#") > 0) {
        note = substr(rest, index(rest, "#") + 1)
        rest = substr(rest, 1, index(rest, "#") - 1)
        sub(/^ */, "", note)
    }
    sub(/ *$/, "", rest)
    section[depth] = key
    full = key
    for (d = depth - 1; d >= 0; d--)
        full = section[d] "." full
    if (rest == "" && note == "") { # a section: its comment, if any, as an entry of its own
        if (ndesc > 0) {
            print ".TP"
            print ".B " full ".*"
            flush_desc()
        }
        next
    }
    var = note
    sub(/ .*/, "", var)
    extra = note
    if (extra ~ / /) {
        sub(/^[^ ]* */, "", extra)
    } else
        extra = ""
    print ".TP"
    print ".B " full
    if (rest == "~")
        dflt = (var ~ /^BERTH_/) ? "unset" : "none"
    else
        dflt = rest
    if (var ~ /^BERTH_/)
        print "Default \\fB" esc(dflt) "\\fR; variable \\fB" var "\\fR." (extra != "" ? " " esc(extra) : "")
    else
        print "Default: " esc(dflt) " (in the file only, no variable)."
    if (ndesc > 0)
        print ".br"
    flush_desc()
}
