#!/usr/bin/env bash
# Calls into the Swift runtime and malloc per point query, through LibPQ: counts that are
# the same on every run, where time on these shared machines scatters by more than a
# change to the wrapper moves it. Uses uprobes, so it needs root and perf (linux-perf).
#
#   scripts/runtime-calls.sh [BIN] [CONNECTIONS]     default .build/release/stockroom, 1
#
# Each probe is counted over 4,000 and over 8,000 queries (`stockroom bench point-query`
# against make bench's database); the difference divided by 4,000 is the count per query,
# with connecting and warming up taken out. Exact on one connection; on more, the
# watchdog's ticks add a few hundredths.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${1:-$ROOT/.build/release/stockroom}"
POOL="${2:-1}"
BASE_URL="${DATABASE_URL:-postgres://stockroom:stockroom@127.0.0.1:54320/stockroom}"
URL="${BASE_URL%/*}/${BENCH_DB:-stockroom_bench}"

die() { echo "runtime-calls: $*" >&2; exit 1; }
command -v perf >/dev/null 2>&1 || die "perf is not installed (apt-get install linux-perf)"
[[ -x "$BIN" ]] || die "no $BIN; build it with swift build -c release --product stockroom"
psql -X -Atqc 'SELECT 1 FROM pgbench_accounts LIMIT 1' "$URL" >/dev/null 2>&1 ||
    die "no pgbench tables in $URL; run make bench once, which creates them"

library() { ldd "$BIN" | awk -v name="$1" 'index($1, name) == 1 { print $3; exit }'; }
CORE="$(library libswiftCore.so)" CONCURRENCY="$(library libswift_Concurrency.so)" LIBC="$(library libc.so)"
PROBES=(
    "$LIBC malloc" "$CORE swift_allocObject" "$CORE swift_retain" "$CORE swift_release"
    "$CORE swift_bridgeObjectRetain" "$CORE swift_bridgeObjectRelease" "$CORE swift_beginAccess"
    "$CONCURRENCY swift_task_switch" "$CONCURRENCY swift_task_alloc"
)
# Our own probe group, removed on exit, so that the system's other probes are left alone.
GROUP=stockroom_calls
trap 'perf probe -q -d "$GROUP:*" 2>/dev/null || true' EXIT
perf probe -q -d "$GROUP:*" 2>/dev/null || true
EVENTS=()
for probe in "${PROBES[@]}"; do
    read -r file symbol <<<"$probe"
    perf probe -q -x "$file" --add "$GROUP:$symbol=$symbol" >/dev/null 2>&1 || die "perf could not place a probe on $symbol in $file (uprobes need root)"
    EVENTS+=("$GROUP:$symbol")
done
events="$(IFS=,; echo "${EVENTS[*]}")"
counts() {
    perf stat -x, -e "$events" "$BIN" bench point-query --database-url "$URL" --queries "$1" --pool "$POOL" 2>&1 >/dev/null |
        awk -F, '$3 ~ /:/ { sub(/.*:/, "", $3); print $3, $1 }' | sort
}
echo "calls per query, $POOL connection(s), $(basename "$BIN")"
join <(counts 4000) <(counts 8000) | awk '{ printf "  %-28s %6.2f\n", $1, ($3 - $2) / 4000 }'
