#!/usr/bin/env bash
# Builds each program under Examples/ (its own package, depending on Stockroom by path, as
# another service would) and runs it against a freshly migrated database of its own.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BASE_URL="${DATABASE_URL:-postgres://stockroom:stockroom@127.0.0.1:54320/stockroom}"
DB="stockroom_examples_$$"
# The same server and credentials, another database.
URL="${BASE_URL%/*}/$DB"
[[ "$BASE_URL" == *\?* ]] && URL="${BASE_URL%%\?*}" && URL="${URL%/*}/$DB?${BASE_URL#*\?}"

fail() { echo "test-examples: $*" >&2; exit 1; }

psql -X -q -v ON_ERROR_STOP=1 "$BASE_URL" -c "CREATE DATABASE $DB" >/dev/null
trap 'psql -X -q "$BASE_URL" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null' EXIT

swift build --package-path "$ROOT" --product stockroom >/dev/null
"$ROOT/.build/debug/stockroom" migrate up --database-url "$URL" --dir "$ROOT/migrations" >/dev/null

for example in "$@"; do
    echo "== $example"
    swift build --package-path "$ROOT/$example" 2>&1 | tail -n 1
done

# LowStockAlert: two products below the threshold, one above, one inactive and low.
psql -X -q -v ON_ERROR_STOP=1 "$URL" <<'SQL'
INSERT INTO products (sku, name, description, price_cents, currency, stock, active) VALUES
  ('LOW-1', 'Nearly gone', '', 100, 'EUR', 1, true),
  ('LOW-0', 'Sold out', '', 100, 'EUR', 0, true),
  ('PLENTY', 'Plenty', '', 100, 'EUR', 50, true),
  ('RETIRED', 'Retired', '', 100, 'EUR', 0, false);
SQL
set +e
output="$(DATABASE_URL="$URL" swift run --skip-build --package-path "$ROOT/Examples/LowStockAlert" LowStockAlert 5)"
status=$?
set -e
echo "$output"
[[ $status -eq 2 ]] || fail "LowStockAlert exited $status, expected 2 (low stock found)"
expected=$'LOW-0\t0\tSold out\nLOW-1\t1\tNearly gone\n2 product(s) below 5 in stock'
[[ "$output" == "$expected" ]] || fail "LowStockAlert printed something else than expected:"$'\n'"$expected"
set +e
DATABASE_URL="$URL" swift run --skip-build --package-path "$ROOT/Examples/LowStockAlert" LowStockAlert 1 >/dev/null
status=$?
set -e
[[ $status -eq 2 ]] || fail "LowStockAlert 1 exited $status, expected 2 (the sold-out product)"
psql -X -q -v ON_ERROR_STOP=1 "$URL" -c "UPDATE products SET stock = 100" >/dev/null
DATABASE_URL="$URL" swift run --skip-build --package-path "$ROOT/Examples/LowStockAlert" LowStockAlert 5 >/dev/null ||
    fail "LowStockAlert should exit 0 when nothing is low"
echo "examples: ok"
