/// A rule of `stockroom migrate lint`: a statement shape that locks a busy table for a
/// long time or breaks the binary still running during a rolling deploy, on PostgreSQL
/// 14 and later. Chosen from squawk's and strong_migrations' rules, keeping those that
/// hold for this runner (it already sets `lock_timeout` itself, for instance, so a file
/// without one is not a finding, but a file that turns it off is).
///
/// Rules look at the SQL only. Whatever a rule cannot know from the text (the table's
/// size, whether a type change is binary-compatible), `migrate plan --rehearse`
/// measures; silence the rule for that statement once the rehearsal says it is cheap.
public struct LintRule: Sendable, Hashable, Codable {
    /// Stable; what a silencing comment names.
    public let id: String
    /// Why the statement is risky, in one line.
    public let reason: String
    /// What to write instead.
    public let alternative: String

    /// `-- stockroom:lint-ignore <rule id>[, <rule id>…]` in the comments just before a
    /// statement (or inside it) silences those rules for that statement only.
    public static let ignoreDirective = "stockroom:lint-ignore"

    public static let indexNotConcurrent = LintRule(
        id: "index-not-concurrent",
        reason: "CREATE INDEX without CONCURRENTLY blocks every write to the table until the index is built",
        alternative: "CREATE INDEX CONCURRENTLY, alone in a file marked -- stockroom:no-transaction (the runner recovers it if it fails)")
    public static let dropIndexNotConcurrent = LintRule(
        id: "drop-index-not-concurrent",
        reason: "DROP INDEX without CONCURRENTLY takes an ACCESS EXCLUSIVE lock on the table, queueing every read behind it",
        alternative: "DROP INDEX CONCURRENTLY, alone in a file marked -- stockroom:no-transaction")
    public static let reindexNotConcurrent = LintRule(
        id: "reindex-not-concurrent",
        reason: "REINDEX without CONCURRENTLY blocks writes to the table (and reads that would use the index) until it finishes",
        alternative: "REINDEX … CONCURRENTLY, alone in a file marked -- stockroom:no-transaction")
    public static let alterColumnType = LintRule(
        id: "alter-column-type",
        reason: "ALTER COLUMN … TYPE holds an ACCESS EXCLUSIVE lock while it rewrites the table and its indexes, or at least checks every row (a domain, a narrower type)",
        alternative: "expand/contract: add a column of the new type, backfill it in batches, switch the binary, drop the old column in a later deploy; or show with `migrate plan --rehearse` that nothing is rewritten and the table is small, then silence the rule")
    public static let addColumnNotNullWithoutDefault = LintRule(
        id: "add-column-not-null-without-default",
        reason: "ADD COLUMN … NOT NULL without a DEFAULT fails on a table that has rows, and the running binary's INSERTs fail once it succeeds",
        alternative: "ADD COLUMN with a constant DEFAULT (no rewrite since PostgreSQL 11), or add it nullable, backfill, then add NOT NULL through a validated CHECK")
    public static let addColumnRewrites = LintRule(
        id: "add-column-rewrites",
        reason: "ADD COLUMN with a volatile default (random(), gen_random_uuid(), clock_timestamp()), a serial or identity column, or a STORED generated column rewrites the whole table under an ACCESS EXCLUSIVE lock",
        alternative: "add the column without the default, set the default for new rows, backfill old rows in batches")
    public static let constraintNotValid = LintRule(
        id: "constraint-not-valid",
        reason: "ADD CONSTRAINT … FOREIGN KEY or CHECK without NOT VALID scans the whole table while holding a lock that blocks writes (ACCESS EXCLUSIVE for a CHECK)",
        alternative: "ADD CONSTRAINT … NOT VALID (checks new rows only, at once), then VALIDATE CONSTRAINT in a later statement (a lock that lets reads and writes go on)")
    public static let constraintBuildsIndex = LintRule(
        id: "constraint-builds-index",
        reason: "ADD UNIQUE, PRIMARY KEY or EXCLUDE builds an index under an ACCESS EXCLUSIVE lock",
        alternative: "CREATE UNIQUE INDEX CONCURRENTLY in a no-transaction file, then ADD CONSTRAINT … UNIQUE USING INDEX (or PRIMARY KEY USING INDEX)")
    public static let setNotNull = LintRule(
        id: "set-not-null",
        reason: "SET NOT NULL scans the whole table under an ACCESS EXCLUSIVE lock, unless a validated CHECK (column IS NOT NULL) already proves it",
        alternative: "ADD CONSTRAINT c CHECK (column IS NOT NULL) NOT VALID; VALIDATE CONSTRAINT c; then SET NOT NULL (no scan) and DROP CONSTRAINT c")
    public static let rename = LintRule(
        id: "rename",
        reason: "renaming a table or column breaks the binary still running, which uses the old name, from the moment it commits",
        alternative: "expand/contract: add the new column (or a view under the new name), write both, switch the binary, drop the old one in a later deploy")
    public static let dropWithoutContract = LintRule(
        id: "drop-without-contract",
        reason: "dropping a table or column breaks any running binary that still uses it, and an older binary rolled back to would crash on it",
        alternative: "stop using it in one deploy, drop it in a later one from a file marked -- stockroom:breaks-older-binaries (older binaries then refuse to start instead of failing on requests)")
    public static let tableRewrite = LintRule(
        id: "table-rewrite",
        reason: "VACUUM FULL, CLUSTER, SET TABLESPACE, SET LOGGED/UNLOGGED and SET ACCESS METHOD rewrite the table under an ACCESS EXCLUSIVE lock",
        alternative: "pg_repack (online), or plain VACUUM; run maintenance outside migrations")
    public static let domainConstraintNotValid = LintRule(
        id: "domain-constraint-not-valid",
        reason: "ALTER DOMAIN … ADD CONSTRAINT without NOT VALID checks every column of that domain in every table, under locks that block writes",
        alternative: "ALTER DOMAIN … ADD CONSTRAINT … NOT VALID, then ALTER DOMAIN … VALIDATE CONSTRAINT")
    public static let refreshNotConcurrent = LintRule(
        id: "refresh-not-concurrent",
        reason: "REFRESH MATERIALIZED VIEW without CONCURRENTLY blocks every read of the view until it finishes",
        alternative: "REFRESH MATERIALIZED VIEW CONCURRENTLY (needs a unique index on the view), outside migrations")
    public static let lockTimeoutDisabled = LintRule(
        id: "lock-timeout-disabled",
        reason: "a lock_timeout of 0 or over 10 s lets a statement queue behind a long transaction while every query on the table queues behind it",
        alternative: "keep the runner's lock_timeout (--lock-timeout, 5 s by default): a file that fails on it is retried with backoff")

    /// Every rule, in the order the documentation lists them.
    public static let all: [LintRule] = [
        indexNotConcurrent, dropIndexNotConcurrent, reindexNotConcurrent, alterColumnType,
        addColumnNotNullWithoutDefault, addColumnRewrites, constraintNotValid, constraintBuildsIndex,
        setNotNull, rename, dropWithoutContract, tableRewrite, domainConstraintNotValid,
        refreshNotConcurrent, lockTimeoutDisabled,
    ]
}
