#!/usr/bin/env bash
# Retention (docs/lifecycle.md): the rules of the configuration's retention list remove the tags they do not keep —
# beyond the N most recently pushed, pushed longer ago than D, unless a pattern keeps them — from the repositories
# their pattern covers, and from no other; immutable tags are always kept; `berth retention run --dry-run` lists
# exactly what the real run removes; the removed tags' manifests stay pullable by digest until garbage collection
# takes them; the server applies the rules before each scheduled collection and counts them in /metrics. Bad rules
# are refused at start with the file and line.
. "$(dirname "$0")/lib.sh"

cat >"$T/berth.yaml" <<'EOF'
retention:
  - repositories: ci/*
    keep_last: 2
    keep_tags: '^v\d+\.\d+\.\d+$|^latest$'
  - repositories: team/*
    tags: '^pr-'
    keep_within: 2d
  - repositories: '*'
    keep_last: 1
    tags: '^nightly-'
immutable_tags:
  - repositories: ci/app
    tags: '^b1$'
EOF

# ret ARGS... : berth retention on the server's data; sets RC, OUT, ERR
ret() {
    env -u BERTH_ADMIN_PASSWORD BERTH_CONFIG="$T/berth.yaml" BERTH_STORAGE_ROOT="$DATA" BERTH_LOG_LEVEL=warn \
        "$BERTH" retention "$@" >"$T/ret.out" 2>"$T/ret.err"
    RC=$?
    OUT=$(cat "$T/ret.out")
    ERR=$(cat "$T/ret.err")
}
# removed : "REPO:TAG" of each tag the last run removed (or would), sorted
removed() { sed -nE 's/^(removed|would remove) tag ([^ ]+) .*/\2/p' <<<"$OUT" | sort; }
tags_of() { curl -s "$URL/v2/$1/tags/list" | jq -r '.tags // [] | sort | join(" ")'; }
# pushed_ago REPO TAG SECONDS : make TAG look pushed SECONDS ago (what the database records at a push)
pushed_ago() {
    sqlite3 "$DATA/berth.db" "UPDATE tag SET updated_at = unixepoch() - $3 WHERE name = '$2' AND
        repository_id = (SELECT id FROM repository WHERE name = '$1')"
}
# tag_all REPO MANIFEST TAG... : point each TAG at MANIFEST (one image, many tags)
tag_all() {
    local repo=$1 mf=$2 t
    shift 2
    for t in "$@"; do push_manifest "$repo" "$t" "$mf" || return 1; done
}

start_berth BERTH_CONFIG="$T/berth.yaml" BERTH_GC_INTERVAL=0
DAY=86400

# ci/app: b1..b5 pushed 5..1 days ago, a release and latest long ago; ci/lib: two builds; team/web: pull-request tags
# of different ages and a branch tag the rule does not judge; other/app: only nightly-* are judged ("*" rule)
push_image ci/app b1 oci && IMG1=$IMG_MANIFEST D1=$IMG_DIGEST
push_image ci/app b2 oci && IMG2=$IMG_MANIFEST D2=$IMG_DIGEST
tag_all ci/app "$IMG1" b3 b4 b5 v1.2.3 latest
i=5
for t in b1 b2 b3 b4 b5; do pushed_ago ci/app "$t" $((i * DAY)) && i=$((i - 1)); done
pushed_ago ci/app v1.2.3 $((90 * DAY))
pushed_ago ci/app latest $((60 * DAY))
push_image ci/lib old oci && tag_all ci/lib "$IMG_MANIFEST" new && pushed_ago ci/lib old 100
push_image team/web pr-1 oci && tag_all team/web "$IMG_MANIFEST" pr-2 main
pushed_ago team/web pr-1 $((5 * DAY))
pushed_ago team/web pr-2 $((1 * DAY))
pushed_ago team/web main $((30 * DAY))
push_image other/app nightly-1 oci && tag_all other/app "$IMG_MANIFEST" nightly-2 stable
pushed_ago other/app nightly-1 $((3 * DAY))
pushed_ago other/app nightly-2 $((2 * DAY))
pushed_ago other/app stable $((400 * DAY))
is "the store holds ci/app's seven tags" "$(tags_of ci/app)" "b1 b2 b3 b4 b5 latest v1.2.3"

# --- list: the rules and what they cover
ret list
is "berth retention list: exit 0" "$RC" 0
like "... shows the first rule" "$OUT" 'retention rule 0: repositories ci/\*, tags \(all\): keep_last 2, keep_within -, keep_tags \^v'
like "... and the immutable rule" "$OUT" 'immutable rule 0: repositories ci/app, tags \^b1\$'
like "... ci/app is covered by rule 0" "$OUT" '  ci/app: rule 0'
like "... team/web by rule 1" "$OUT" '  team/web: rule 1'
like "... other/app by rule 2 (the first rule covering a repository applies)" "$OUT" '  other/app: rule 2'
like "... counts" "$OUT" 'rule 0 covers 2 repositories'

# --- dry run: what would go, and nothing goes
ret run --dry-run
is "retention run --dry-run: exit 0" "$RC" 0
dry=$OUT
# ci/app newest first: b5 b4 (the last two), b3 b2 (go), b1 (immutable), latest and v1.2.3 (keep_tags);
# ci/lib: both within the last two; team/web: pr-1 (older than 2 days) goes, pr-2 stays, main is not judged;
# other/app: nightly-2 is the last one, nightly-1 goes, stable is not judged
is "--dry-run lists the tags the rules do not keep" "$(removed)" \
    "$(printf '%s\n' ci/app:b2 ci/app:b3 other/app:nightly-1 team/web:pr-1 | sort)"
like "... with digest, push time and rule" "$dry" "would remove tag ci/app:b2 \\($D2, pushed [0-9-]+T[0-9:]+Z, rule 0\\)"
like "... and a summary" "$dry" 'retention --dry-run: would remove 4 tags of 13 judged in 4 repositories'
is "... and removes nothing" "$(tags_of ci/app)" "b1 b2 b3 b4 b5 latest v1.2.3"

# --- the real run removes exactly that
ret run
is "retention run: exit 0" "$RC" 0
is "the run removes what the dry run listed, line for line" \
    "$(grep -v '^retention' <<<"$OUT")" "$(sed 's/^would remove/removed/' <<<"$dry" | grep -v '^retention')"
is "ci/app keeps the last two, the immutable b1, the release and latest" "$(tags_of ci/app)" "b1 b4 b5 latest v1.2.3"
is "ci/lib keeps both" "$(tags_of ci/lib)" "new old"
is "team/web keeps the recent pull request and the branch" "$(tags_of team/web)" "main pr-2"
is "other/app keeps the last nightly and the tag no rule judges" "$(tags_of other/app)" "nightly-2 stable"
api GET "/v2/ci/app/manifests/b2"
is "a removed tag answers 404" "$STATUS" 404
is_error "... MANIFEST_UNKNOWN" 404 MANIFEST_UNKNOWN
api GET "/v2/ci/app/manifests/$D2" -H "Accept: $MT_OCI_MANIFEST"
is "its manifest (untagged now) is pullable by digest until garbage collection takes it" "$STATUS" 200
ret run
like "a second run removes nothing" "$OUT" '^retention: removed 0 tags of '
is "... and lists nothing" "$(removed)" ""

# --- a hosted repository no rule covers is never touched
push_image keep/me t1 oci && tag_all keep/me "$IMG_MANIFEST" t2 t3
pushed_ago keep/me t1 $((999 * DAY))
ret run
is "no rule covers keep/me: its tags stay" "$(tags_of keep/me)" "t1 t2 t3"

# --- garbage collection then takes the untagged manifest (b2's image had only b2)
sleep 2 # its untagged grace below is 1 s, counted from the removal (times are whole seconds)
env -u BERTH_CONFIG BERTH_STORAGE_ROOT="$DATA" BERTH_LOG_LEVEL=warn "$BERTH" gc --untagged-grace 1s --blob-grace 0 \
    >"$T/gc.out" 2>&1
like "gc then removes the manifest only the removed tag pointed at" "$(cat "$T/gc.out")" "removed manifest ci/app@$D2"
api GET "/v2/ci/app/manifests/b1" -H "Accept: $MT_OCI_MANIFEST"
is "... and b1 (another image, immutable) is still pullable" "$STATUS" 200
stop_berth

# --- the server applies the rules before each scheduled collection; /metrics counts them
start_berth BERTH_CONFIG="$T/berth.yaml" BERTH_GC_INTERVAL=1s
push_image ci/svc a oci && tag_all ci/svc "$IMG_MANIFEST" b c
pushed_ago ci/svc a $((3 * DAY))
for _ in $(seq 50); do [[ $(tags_of ci/svc) == "b c" ]] && break; sleep 0.2; done
is "the server's schedule removes the tag beyond the last two" "$(tags_of ci/svc)" "b c"
metrics=$(curl -s "$URL/metrics")
is "/metrics counts the removed tag" "$(grep '^berth_retention_removed_total ' <<<"$metrics")" \
    "berth_retention_removed_total 1"
like "... and the judged ones" "$(grep '^berth_retention_examined_total ' <<<"$metrics")" ' [3-9]$'
is "... no failures" "$(grep '^berth_retention_failures_total ' <<<"$metrics")" "berth_retention_failures_total 0"
like "the log says what the rules removed" "$(cat "$SRV/berth.log")" 'retention: removed 1 tag\(s\) of 3 judged'
stop_berth

# --- bad rules are refused at start, naming the file and line
bad() { # DESC YAML REGEX
    printf '%s\n' "$2" >"$T/bad.yaml"
    env BERTH_CONFIG="$T/bad.yaml" BERTH_STORAGE_ROOT="$T/none" "$BERTH" config >"$T/bad.out" 2>&1
    local rc=$?
    is "$1: refused (exit 1)" "$rc" 1
    like "... saying why" "$(cat "$T/bad.out")" "$3"
}
bad "an invalid pattern" $'retention:\n  - repositories: ci/*\n    keep_tags: "v(1"\n' \
    'bad.yaml:3: retention: keep_tags: "v\(1" is not a valid pattern: missing closing parenthesis'
bad "a rule that keeps nothing" $'retention:\n  - repositories: ci/*\n    tags: x\n' \
    'bad.yaml:2: retention: a rule keeps something: set keep_last, keep_within or keep_tags'
bad "a repository pattern that is not one" $'retention:\n  - repositories: "ci/*/x"\n    keep_last: 1\n' \
    'bad.yaml:2: retention: repositories: "ci/\*/x" is not a repository name'
bad "an unknown key" $'immutable_tags:\n  - repositories: a\n    tag: x\n' \
    'bad.yaml:3: immutable_tags: unknown key "tag" \(repositories, tags\)'
bad "keep_last not a count" $'retention:\n  - repositories: a\n    keep_last: many\n' \
    'retention: keep_last: "many" is not a count'

done_testing
