#!/usr/bin/env bash
# `stockroom migrate` as a deploy script meets it: the exit status of each state, the
# JSON of `status --json` and `plan --rehearse --json`, and the rolling-deploy contract
# between two binaries' folders (an older folder is a binary rolled back). Against a
# database of its own.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BASE_URL="${DATABASE_URL:-postgres://stockroom:stockroom@127.0.0.1:54320/stockroom}"
DB="stockroom_cli_$$"
URL="${BASE_URL%/*}/$DB"
[[ "$BASE_URL" == *\?* ]] && URL="${BASE_URL%%\?*}" && URL="${URL%/*}/$DB?${BASE_URL#*\?}"
BIN="$ROOT/.build/debug/stockroom"
WORK="$(mktemp -d)"

fail() { echo "test-cli-migrate: $*" >&2; exit 1; }
psql -X -q -v ON_ERROR_STOP=1 "$BASE_URL" -c "CREATE DATABASE $DB" >/dev/null
trap 'psql -X -q "$BASE_URL" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null; rm -rf "$WORK"' EXIT

mkdir -p "$WORK/old" "$WORK/new"
printf 'CREATE TABLE a (id int, note text);\n' > "$WORK/old/1_a.up.sql"
cp "$WORK/old/1_a.up.sql" "$WORK/new/"
printf -- '-- stockroom:breaks-older-binaries\nALTER TABLE a DROP COLUMN note;\n' > "$WORK/new/2_contract.up.sql"

# expect STATUS COMMAND…: runs it, fails unless it exits with STATUS; output in $out.
expect() {
    local want=$1; shift
    local got=0
    out="$("$@" 2>&1)" || got=$?
    [[ $got == "$want" ]] || fail "\`${*#$BIN }\` exited $got, expected $want: $out"
}
migrate() { "$BIN" migrate "$@" --database-url "$URL"; }

expect 3 migrate status --json --dir "$WORK/old"
[[ "$out" == *'"state":"pending"'* && "$out" == *'"version":"1"'* ]] || fail "status --json: $out"
expect 0 migrate up --dir "$WORK/old"
expect 0 migrate status --dir "$WORK/old"
# The new deploy migrates; the old binary's folder now lacks the newest version.
expect 0 migrate up --dir "$WORK/new"
expect 6 migrate status --json --dir "$WORK/old"
[[ "$out" == *'"breaks_older_binaries":true'* && "$out" == *'"state":"newer"'* ]] || fail "status --json: $out"
expect 6 migrate up --dir "$WORK/old"
[[ "$out" == *"newer binary"* ]] || fail "up: $out"
# plan: nothing pending is fine; a rehearsal reports a rewrite under ACCESS EXCLUSIVE,
# refuses it above --max-exclusive-rows, and leaves the file pending.
expect 0 migrate plan --dir "$WORK/new"
[[ "$out" == *"nothing pending"* ]] || fail "plan: $out"
expect 0 migrate plan --rehearse --json --dir "$WORK/new"
[[ "$out" == *'"rehearsals":[]'* && "$out" == *'"status":"ok"'* ]] || fail "plan --rehearse --json: $out"
mkdir -p "$WORK/plan" && cp "$WORK/new/"*.sql "$WORK/plan/"
printf 'ALTER TABLE a ALTER COLUMN id TYPE bigint;\n' > "$WORK/plan/3_widen.up.sql"
psql -X -q -v ON_ERROR_STOP=1 "$URL" -c "INSERT INTO a VALUES (1), (2), (3)" >/dev/null
expect 0 migrate plan --rehearse --json --dir "$WORK/plan"
[[ "$out" == *'"mode":"AccessExclusiveLock","relation":"public.a","rewritten":true,"rows":3'* && "$out" == *'"rewritten":["public.a"]'* ]] || fail "plan --rehearse --json: $out"
expect 7 migrate plan --rehearse --max-exclusive-rows 0 --dir "$WORK/plan"
[[ "$out" == *"refused by --max-exclusive-rows 0: 3 takes AccessExclusiveLock on public.a (3 rows, rewritten)"* ]] || fail "plan --max-exclusive-rows: $out"
expect 7 migrate plan --rehearse --json --max-exclusive-rows 2 --dir "$WORK/plan"
[[ "$out" == *'"status":"refused"'* ]] || fail "plan --json --max-exclusive-rows: $out"
expect 0 migrate plan --rehearse --max-exclusive-rows 3 --dir "$WORK/plan"
expect 3 migrate status --dir "$WORK/plan"
[[ "$(psql -X -At "$URL" -c "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'a'::regclass AND attname = 'id'")" == integer ]] || fail "plan changed the table"
# A file changed after it was applied.
printf 'CREATE TABLE a (id bigint, note text);\n' > "$WORK/new/1_a.up.sql"
expect 5 migrate status --dir "$WORK/new"
expect 5 migrate up --dir "$WORK/new"

# lint: no database; exit 1 on findings, 0 once they are silenced or older than --start-after.
expect 1 "$BIN" migrate lint --dir "$ROOT/migrations"
[[ "$out" == *"0005_product_rules_as_domains.up.sql:24: alter-column-type"* && "$out" == *"instead:"* ]] || fail "lint: $out"
expect 0 "$BIN" migrate lint --dir "$ROOT/migrations" --start-after 5
mkdir -p "$WORK/lint"
printf 'CREATE INDEX a_id ON a (id);\n' > "$WORK/lint/1_index.up.sql"
expect 1 "$BIN" migrate lint --dir "$WORK/lint" --json
[[ "$out" == *'"rule":"index-not-concurrent"'* && "$out" == *'"line":1'* && "$out" == *'"files":1'* ]] || fail "lint --json: $out"
printf -- '-- stockroom:lint-ignore index-not-concurrent (a has ten rows)\nCREATE INDEX a_id ON a (id);\n' > "$WORK/lint/1_index.up.sql"
expect 0 "$BIN" migrate lint --dir "$WORK/lint"
expect 64 "$BIN" migrate lint --dir "$WORK/lint" --start-after x
echo "cli-migrate: ok"
