#!/usr/bin/env bash
# The administration CLI (berth user|org|robot|team|repo|token): exit statuses, output, what it stores, htpasswd
# import, the -c option, and running while `berth serve` uses the same data folder.
. "$(dirname "$0")/lib.sh"

ROOT=$T/data
SAN_PAT='AddressSanitizer|LeakSanitizer|ThreadSanitizer|runtime error:'

# b ARGS... : berth on $ROOT, without the caller's configuration or admin password
b() {
    env -u BERTH_CONFIG -u BERTH_ADMIN_PASSWORD BERTH_STORAGE_ROOT="$ROOT" BERTH_LOG_LEVEL=warn "$BERTH" "$@"
}
# run CMD... : sets RC, OUT (stdout) and ERR (stderr); a sanitizer report fails at once
run() {
    "$@" >"$T/out" 2>"$T/err"
    RC=$?
    OUT=$(cat "$T/out")
    ERR=$(cat "$T/err")
    if grep -qE "$SAN_PAT" "$T/err"; then
        fail "no sanitizer report from: $*" "$(grep -E -A 30 -m 1 "$SAN_PAT" "$T/err")"
    fi
}
# sql QUERY [DB] : rows of a query, columns separated by tabs (python's sqlite3: no sqlite3 binary needed)
sql() {
    "$PYTHON" - "${2:-$ROOT/berth.db}" "$1" <<'EOF'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], timeout=10)
for row in c.execute(sys.argv[2]):
    print("\t".join("" if v is None else str(v) for v in row))
EOF
}
gen() { sql "SELECT value FROM auth_generation"; }
hash_of() { sql "SELECT password_hash FROM account WHERE name = '$1'"; }
# verifies PASSWORD HASH : libcrypt through python's crypt module (exit 2 if that module is missing)
HAVE_CRYPT=0
"$PYTHON" -W ignore -c 'import crypt' 2>/dev/null && HAVE_CRYPT=1
verifies() {
    "$PYTHON" -W ignore - "$1" "$2" <<'EOF'
import crypt, sys
sys.exit(0 if crypt.crypt(sys.argv[1], sys.argv[2]) == sys.argv[2] else 1)
EOF
}
check_password() { # DESC NAME PASSWORD
    local h
    h=$(hash_of "$2")
    if ((HAVE_CRYPT)); then
        check "$1" verifies "$3" "$h"
    else
        like "$1 (stored as yescrypt; python crypt missing, not verified)" "$h" '^\$(y|2[aby])\$'
    fi
}

# ---------------------------------------------------------------- the admin account
run b user list
is "user list on a new data folder: exit 0" "$RC" 0
is "prints only the header" "$OUT" $'NAME\tKIND\tADMIN\tDISABLED'
is "without BERTH_ADMIN_PASSWORD the CLI creates no admin" "$(sql "SELECT count(*) FROM account")" 0
is "the database is created 0600" "$(stat -c %a "$ROOT/berth.db")" 600

run env BERTH_ADMIN_PASSWORD=admin-pw1 BERTH_STORAGE_ROOT="$ROOT" BERTH_LOG_LEVEL=warn "$BERTH" user list
is "with BERTH_ADMIN_PASSWORD: exit 0" "$RC" 0
like "admin is listed as an administrator" "$OUT" $'\nadmin\tuser\tyes\tno'
like "and its creation is reported on stderr" "$ERR" 'created the site administrator'
check_password "admin's password is BERTH_ADMIN_PASSWORD" admin admin-pw1
run env BERTH_ADMIN_PASSWORD=admin-pw2 BERTH_STORAGE_ROOT="$ROOT" BERTH_LOG_LEVEL=warn "$BERTH" user list
is "a second run with another password: exit 0" "$RC" 0
is "says nothing" "$ERR" ""
check_password "and never overwrites admin's password" admin admin-pw1

# ---------------------------------------------------------------- users
run b user add alice --password-stdin <<<"alice-pw"
is "user add alice --password-stdin: exit 0" "$RC" 0
is "says so" "$OUT" "added user alice"
like "the stored hash is yescrypt" "$(hash_of alice)" '^\$y\$'
check_password "it verifies the line without its newline" alice alice-pw
run b user add carl --password-stdin < <(printf 'carl-pw\r\n')
is "a CRLF line: exit 0" "$RC" 0
check_password "CR and LF are both stripped" carl carl-pw
run b user add root --admin --password-stdin <<<"root-pw"
is "user add root --admin: exit 0" "$RC" 0
is "says administrator" "$OUT" "added user root (administrator)"
run b user add alice --password-stdin <<<"x"
is "a taken name: exit 1" "$RC" 1
like "says it is taken" "$ERR" 'taken'
run b user add dora </dev/null
is "no --password-stdin and stdin not a terminal: exit 2" "$RC" 2
like "says to use --password-stdin" "$ERR" 'password-stdin'
run b user add dora --password-stdin </dev/null
is "--password-stdin with nothing on stdin: exit 1" "$RC" 1
run b user add dora --password-stdin <<<""
is "an empty password: exit 1" "$RC" 1
like "refused as empty" "$ERR" 'empty'
is "dora was not created" "$(sql "SELECT count(*) FROM account WHERE name = 'dora'")" 0
run b user add Dora --password-stdin <<<"x"
is "an invalid name: exit 2" "$RC" 2
run b user add dora secret-on-argv
is "a password on the command line is an extra argument: exit 2" "$RC" 2
run b user add dora --pasword-stdin
is "an unknown option: exit 2" "$RC" 2
run b user frobnicate
is "an unknown subcommand: exit 2" "$RC" 2
run b user
is "no subcommand: exit 2" "$RC" 2
run b user add
is "missing arguments: exit 2" "$RC" 2

# on a terminal: the password is asked twice, with echo off
tty_run() { # ANSWER1 ANSWER2 CMD... : exit status on the first line, then what the terminal showed
    "$PYTHON" - "$@" <<'EOF'
import os, pty, sys, time
a1, a2, cmd = sys.argv[1], sys.argv[2], sys.argv[3:]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(cmd[0], cmd)
out = b""
def read(until=None, limit=10):
    global out
    end = time.time() + limit
    while (until is None or until not in out) and time.time() < end:
        try:
            chunk = os.read(fd, 1024)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
read(b"Password: ")
os.write(fd, a1.encode() + b"\n")
read(b"Retype password: ")
os.write(fd, a2.encode() + b"\n")
read()
done, status = os.waitpid(pid, os.WNOHANG)
if done == 0:  # stuck: say so rather than hang
    os.kill(pid, 9)
    _, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status))
sys.stdout.write(out.decode(errors="replace"))
EOF
}
out=$(tty_run tty-pw-1 tty-pw-1 env BERTH_STORAGE_ROOT="$ROOT" BERTH_LOG_LEVEL=warn "$BERTH" user add tina)
is "user add on a terminal, the same password twice: exit 0" "$(head -n 1 <<<"$out")" 0
like "it prompted twice" "$out" 'Password: .*Retype password: '
check "the password was not echoed" bash -c '! grep -qF tty-pw-1 <<<"$1"' _ "$out"
check_password "the typed password is stored" tina tty-pw-1
out=$(tty_run tty-pw-1 tty-pw-2 env BERTH_STORAGE_ROOT="$ROOT" BERTH_LOG_LEVEL=warn "$BERTH" user add tony)
is "two different passwords: exit 1" "$(head -n 1 <<<"$out")" 1
like "says they do not match" "$out" 'do not match'
is "tony was not created" "$(sql "SELECT count(*) FROM account WHERE name = 'tony'")" 0

g=$(gen)
run b user passwd alice --password-stdin <<<"alice-pw2"
is "user passwd: exit 0" "$RC" 0
check_password "the new password verifies" alice alice-pw2
is "the account's generation moved" "$(sql "SELECT generation FROM account WHERE name = 'alice'")" 2
isnt "the auth generation moved" "$(gen)" "$g"
run b user passwd nobody --password-stdin <<<"x"
is "passwd of a missing user: exit 1" "$RC" 1

g=$(gen)
run b user disable alice
is "user disable: exit 0" "$RC" 0
like "listed as disabled" "$(b user list)" $'\nalice\tuser\tno\tyes'
isnt "disable bumps the auth generation" "$(gen)" "$g"
run b user enable alice
is "user enable: exit 0" "$RC" 0
like "listed as enabled" "$(b user list)" $'\nalice\tuser\tno\tno'
run b user disable nobody
is "disable a missing user: exit 1" "$RC" 1
g=$(gen)
run b user del carl
is "user del: exit 0" "$RC" 0
is "carl is gone" "$(sql "SELECT count(*) FROM account WHERE name = 'carl'")" 0
isnt "delete bumps the auth generation" "$(gen)" "$g"
run b user del carl
is "delete again: exit 1" "$RC" 1

# ---------------------------------------------------------------- organisations, robots, teams
run b org add acme
is "org add: exit 0" "$RC" 0
run b robot add ci
is "robot add: exit 0" "$RC" 0
run b org add alice
is "an organisation named like a user: exit 1" "$RC" 1
run b robot add acme
is "a robot named like an organisation: exit 1" "$RC" 1
like "user list shows every kind" "$(b user list)" $'acme\torg\tno\tno\n.*ci\trobot\tno\tno'
run b team add acme dev --permission pull,push
is "team add --permission pull,push: exit 0" "$RC" 0
is "stored as pull|push" "$(sql "SELECT permission FROM team WHERE name = 'dev'")" 3
run b team add acme ops
is "team add without --permission: exit 0" "$RC" 0
is "pull by default" "$(sql "SELECT permission FROM team WHERE name = 'ops'")" 1
run b team add acme dev
is "the same team again: exit 1" "$RC" 1
run b team add nope dev
is "a team of a missing organisation: exit 1" "$RC" 1
run b team add alice dev
is "a team of a user: exit 1" "$RC" 1
run b team add acme qa --permission fly
is "an unknown permission: exit 2" "$RC" 2
run b team member acme dev alice
is "team member: exit 0" "$RC" 0
run b team member acme dev ci
is "a robot as a member: exit 0" "$RC" 0
is "two members" "$(sql "SELECT count(*) FROM team_member")" 2
run b team member acme dev nobody
is "a missing user: exit 1" "$RC" 1
run b team member acme nope alice
is "a missing team: exit 1" "$RC" 1
g=$(gen)
run b team member acme dev alice --remove
is "team member --remove: exit 0" "$RC" 0
isnt "removal bumps the auth generation" "$(gen)" "$g"
run b team member acme dev alice --remove
is "removing a non-member: exit 1" "$RC" 1
like "says so" "$ERR" 'not a member'

# ---------------------------------------------------------------- repositories
run b repo visibility acme/app public
is "repo visibility public: exit 0" "$RC" 0
is "stored" "$(sql "SELECT public FROM repository WHERE name = 'acme/app'")" 1
g=$(gen)
run b repo visibility acme/app private
is "repo visibility private: exit 0" "$RC" 0
is "stored" "$(sql "SELECT public FROM repository WHERE name = 'acme/app'")" 0
isnt "private bumps the auth generation" "$(gen)" "$g"
run b repo visibility acme/app hidden
is "neither public nor private: exit 2" "$RC" 2
run b repo visibility Acme/app public
is "an invalid repository name: exit 2" "$RC" 2

run b repo grant 'acme/*' alice pull,push
is "repo grant acme/* alice pull,push: exit 0" "$RC" 0
is "stored" "$(sql "SELECT g.pattern, g.actions FROM repo_grant g JOIN account a ON a.id = g.account_id WHERE a.name = 'alice'")" \
    $'acme/*\t3'
run b repo grant '*' acme/ops pull
is "repo grant * to a team: exit 0" "$RC" 0
is "stored for the team" "$(sql "SELECT count(*) FROM repo_grant WHERE pattern = '*' AND team_id IS NOT NULL")" 1
run b repo grant acme/app ci delete
is "repo grant of an exact name to a robot: exit 0" "$RC" 0
run b repo grant 'acme/*' acme pull
is "a grant to an organisation: exit 1" "$RC" 1
like "says to name a team" "$ERR" 'organisation'
run b repo grant 'acme/*' nobody pull
is "a grant to a missing user: exit 1" "$RC" 1
run b repo grant 'acme/**' alice pull
is "an invalid pattern: exit 2" "$RC" 2
run b repo grant 'acme/*' alice fly
is "invalid actions: exit 2" "$RC" 2
g=$(gen)
run b repo revoke 'acme/*' alice
is "repo revoke: exit 0" "$RC" 0
is "gone" "$(sql "SELECT count(*) FROM repo_grant WHERE pattern = 'acme/*'")" 0
isnt "revoke bumps the auth generation" "$(gen)" "$g"
run b repo revoke 'acme/*' alice
is "revoke a missing grant: exit 1" "$RC" 1

# ---------------------------------------------------------------- access tokens
now=$(date +%s)
run b token create alice laptop --scope "repository:acme/*:pull registry:catalog:*" --expires 30d
is "token create: exit 0" "$RC" 0
like "stdout is the secret alone" "$OUT" '^berth_[0-9]+_[A-Za-z0-9_-]{43}$'
like "stderr says it will not be shown again" "$ERR" 'not be shown again'
secret=$OUT
tid=${secret#berth_}
tid=${tid%%_*}
part=${secret#berth_*_}
is "the SHA-256 of the secret is stored" "$(sql "SELECT secret_sha256 FROM access_token WHERE id = $tid")" \
    "$(printf '%s' "$part" | sha256sum | cut -d' ' -f1)"
check "the secret itself is nowhere in the data folder" bash -c '! grep -rqF -- "$1" "$2"' _ "$part" "$ROOT"
exp=$(sql "SELECT expires_at FROM access_token WHERE id = $tid")
check "--expires 30d: 30 days from now" test $((exp - now - 30 * 86400)) -ge 0 -a $((exp - now - 30 * 86400)) -le 5
run b token create ci deploy --scope "repository:acme/app:pull,push"
is "a robot's token without expiry: exit 0" "$RC" 0
is "expires never" "$(sql "SELECT expires_at FROM access_token WHERE name = 'deploy'")" 0
run b token create alice x
is "no --scope: exit 2" "$RC" 2
run b token create alice x --scope "repository:acme/*:fly"
is "an invalid scope: exit 2" "$RC" 2
run b token create alice x --scope "repository:acme/*:pull" --expires soon
is "an invalid --expires: exit 2" "$RC" 2
run b token create acme x --scope "repository:acme/*:pull"
is "a token for an organisation: exit 1" "$RC" 1
run b token create nobody x --scope "repository:acme/*:pull"
is "a token for a missing account: exit 1" "$RC" 1

run b token list
is "token list: exit 0" "$RC" 0
like "lists id, owner, name, scope, expiry, revoked" "$OUT" \
    "^ID	OWNER	NAME	SCOPE	EXPIRES	REVOKED
$tid	alice	laptop	repository:acme/\\*:pull registry:catalog:\\*	[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z	no
[0-9]+	ci	deploy	repository:acme/app:pull,push	never	no$"
check "no secret in the list" bash -c '! grep -qF -- "$1" <<<"$2"' _ "$part" "$OUT"
run b token list ci
is "token list OWNER: only that owner's" "$(tail -n +2 <<<"$OUT" | cut -f2 | sort -u)" ci
run b token list nobody
is "token list of a missing account: exit 1" "$RC" 1
g=$(gen)
run b token revoke "$tid"
is "token revoke: exit 0" "$RC" 0
like "listed as revoked" "$(b token list alice)" $'\tyes$'
isnt "revoke bumps the auth generation" "$(gen)" "$g"
run b token revoke 99999
is "revoke a missing token: exit 1" "$RC" 1
run b token revoke abc
is "revoke a malformed id: exit 2" "$RC" 2

# ---------------------------------------------------------------- htpasswd import
# bcrypt of "s3cret" (cost 4): htpasswd -B writes $2y$; python's crypt, when present, makes a fresh one
BCRYPT='$2y$04$U1bjRzpf89669ybC5RFMe.9w/qBuxP3rNQhK6buEwpOLGx4VXttDu'
if ((HAVE_CRYPT)); then
    BCRYPT2=$("$PYTHON" -W ignore -c 'import crypt; print(crypt.crypt("an0ther", crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16)))')
else
    BCRYPT2='$2b$04$U1bjRzpf89669ybC5RFMe.9w/qBuxP3rNQhK6buEwpOLGx4VXttDu'
fi
cat >"$T/htpasswd" <<EOF
# exported from nginx
hugo:$BCRYPT
alice:$BCRYPT2
md5user:\$apr1\$r31.....\$HqJZimcKQFAMYayBlzkrA/

shauser:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=
Bad.Name:$BCRYPT
acme:$BCRYPT
EOF
run b user import-htpasswd "$T/htpasswd"
is "import with unsupported lines: exit 1" "$RC" 1
like "the \$apr1\$ line is reported by number" "$ERR" "htpasswd:4: "
like "the {SHA} line too" "$ERR" "htpasswd:6: "
like "an invalid user name too" "$ERR" "htpasswd:7: "
like "an organisation's name too" "$ERR" "htpasswd:8: acme is an organisation"
check "no hash is printed" bash -c '! grep -qF -- "HqJZim" <<<"$1"' _ "$ERR"
is "the summary" "$OUT" "imported $T/htpasswd: 1 added, 1 updated, 0 unchanged, 4 skipped"
is "the bcrypt hash is imported as it is" "$(hash_of hugo)" "$BCRYPT"
is "an existing user is updated" "$(hash_of alice)" "$BCRYPT2"
is "skipped lines created nobody" "$(sql "SELECT count(*) FROM account WHERE name IN ('md5user', 'shauser')")" 0
((HAVE_CRYPT)) && check "the imported hash verifies" verifies s3cret "$(hash_of hugo)"
grep -E '^(hugo|alice):' "$T/htpasswd" >"$T/htpasswd.clean"
g=$(gen)
run b user import-htpasswd "$T/htpasswd.clean"
is "importing the same users again: exit 0" "$RC" 0
is "nothing changes" "$OUT" "imported $T/htpasswd.clean: 0 added, 0 updated, 2 unchanged, 0 skipped"
is "and the generation stays" "$(gen)" "$g"
run b user import-htpasswd - <"$T/htpasswd.clean"
is "import from standard input (-): exit 0" "$RC" 0
run b user import-htpasswd "$T/missing"
is "a missing file: exit 1" "$RC" 1

# ---------------------------------------------------------------- -c FILE anywhere
printf 'storage:\n  root: %s\nlog:\n  level: warn\n' "$T/other" >"$T/berth.yaml"
run env -u BERTH_STORAGE_ROOT -u BERTH_CONFIG "$BERTH" -c "$T/berth.yaml" org add first
is "-c FILE before the command: exit 0" "$RC" 0
run env -u BERTH_STORAGE_ROOT -u BERTH_CONFIG "$BERTH" org add second -c "$T/berth.yaml"
is "-c FILE after it: exit 0" "$RC" 0
run env -u BERTH_STORAGE_ROOT -u BERTH_CONFIG "$BERTH" org --config "$T/berth.yaml" add third
is "--config FILE in the middle: exit 0" "$RC" 0
is "all three went to the configured storage root" "$(sql "SELECT group_concat(name, ' ') FROM account" "$T/other/berth.db")" \
    "first second third"
run env -u BERTH_STORAGE_ROOT BERTH_CONFIG="$T/berth.yaml" "$BERTH" user list
like "BERTH_CONFIG too" "$OUT" $'\nthird\torg'
run env -u BERTH_STORAGE_ROOT "$BERTH" user list -c "$T/missing.yaml"
is "a missing configuration file: exit 1" "$RC" 1

# ---------------------------------------------------------------- while the server runs
start_berth BERTH_MODE=private BERTH_ADMIN_PASSWORD=admin-pw BERTH_HTTP_THREADS=2
srv() { env -u BERTH_CONFIG -u BERTH_ADMIN_PASSWORD BERTH_STORAGE_ROOT="$DATA" BERTH_LOG_LEVEL=warn "$BERTH" "$@"; }
# pushes in the background as admin (the server's writer busy) while the CLI writes
(
    for i in $(seq 1 15); do
        head -c 20000 /dev/urandom >"$T/bg.$i"
        d=$(sha256_of "$T/bg.$i")
        loc=$(curl -s --noproxy '*' -u admin:admin-pw -o /dev/null -D - -X POST "$URL/v2/admin/bg/blobs/uploads/" |
            tr -d '\r' | awk 'tolower($1) == "location:" { print $2 }')
        [[ $loc == /* ]] && loc=$URL$loc
        [[ $loc == *\?* ]] && sep='&' || sep='?'
        curl -s --noproxy '*' -u admin:admin-pw -o /dev/null -w '%{http_code}\n' -X PUT \
            -H 'Content-Type: application/octet-stream' --data-binary "@$T/bg.$i" "$loc${sep}digest=$d"
    done >"$T/bg.status"
) &
bg=$!
ok_all=1
for i in $(seq 1 15); do
    srv user add "u$i" --password-stdin <<<"pw-$i" >/dev/null 2>"$T/err" || { ok_all=0; cat "$T/err" >&2; }
    srv token create "u$i" t --scope "repository:u$i/*:pull" >/dev/null 2>"$T/err" || { ok_all=0; cat "$T/err" >&2; }
    srv repo visibility "u$i/app" public >/dev/null 2>&1 || ok_all=0
done
wait "$bg"
is "30 CLI writes while the server runs and pushes: all exit 0" "$ok_all" 1
is "the concurrent pushes all succeeded" "$(sort -u "$T/bg.status")" 201
is "every user is there" "$(sql "SELECT count(*) FROM account WHERE name LIKE 'u%'" "$DATA/berth.db")" 15

# what the CLI changes, the running server sees
run srv user add zoe --password-stdin <<<"zoe-pw"
api GET /v2/ -u zoe:zoe-pw
is "a user added by the CLI logs in to the running server" "$STATUS" 200
api GET /v2/ -u zoe:wrong
is "with her password only" "$STATUS" 401
run srv user disable zoe
api GET /v2/ -u zoe:zoe-pw
is "once disabled by the CLI she is refused" "$STATUS" 401
run srv user enable zoe
run srv user passwd zoe --password-stdin <<<"zoe-pw2"
api GET /v2/ -u zoe:zoe-pw
is "after a password change by the CLI the old password is refused" "$STATUS" 401
api GET /v2/ -u zoe:zoe-pw2
is "and the new one accepted" "$STATUS" 200
run srv token create zoe ci --scope "repository:zoe/*:pull"
tok=$OUT
api GET /v2/ -u "zoe:$tok"
is "an access token made by the CLI works as a password" "$STATUS" 200
run srv token revoke "$(tok=${tok#berth_} && echo "${tok%%_*}")"
api GET /v2/ -u "zoe:$tok"
is "once revoked by the CLI it is refused" "$STATUS" 401
stop_berth

done_testing
