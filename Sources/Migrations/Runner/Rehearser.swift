import LibPQ

/// Runs the pending files one after another inside the transaction `Migrator.rehearse`
/// opened, and says what each did (see `Rehearsal`).
///
/// The rules it keeps:
/// - Nothing it runs may end the transaction. A file that runs outside one (its mode is
///   not `.transaction`), or has a statement that controls transactions, is not run at
///   all. Each statement goes alone through the extended protocol, which refuses a text
///   of two statements, so a COMMIT the lexer did not see cannot ride in behind another
///   (and a COMMIT inside a DO block or procedure is refused by the server inside a
///   transaction block). After each statement the session must still be inside the
///   transaction, or the rehearsal stops there.
/// - It never queues behind other sessions: `lock_timeout` (and `statement_timeout`) are
///   set again before each statement, in case the file changed them.
/// - After a failure nothing more runs: the transaction is aborted, and a later file
///   could not tell its own failures from the consequences.
struct Rehearser {
    let connection: PostgresConnection
    let watch: LockWaitWatch
    let lockTimeout: Duration
    let statementTimeout: Duration
    /// The relations before the first file.
    let original: RelationSnapshot
    /// Why the files left are not run, once one failed.
    private(set) var stopped: String?

    /// Tables this small (by the planner's estimate) are counted exactly; a count of a
    /// bigger one would hold the rehearsal's locks longer, for a number the estimate
    /// gives well enough.
    static let exactCountRows = 100_000.0
    /// A table never analyzed (no estimate) is counted when its heap is at most this big.
    static let exactCountBytes: Int64 = 64 << 20

    init(connection: PostgresConnection, watch: LockWaitWatch, lockTimeout: Duration, statementTimeout: Duration, original: RelationSnapshot) {
        self.connection = connection
        self.watch = watch
        self.lockTimeout = lockTimeout
        self.statementTimeout = statementTimeout
        self.original = original
    }

    mutating func rehearse(_ migration: Migration) async throws -> Rehearsal {
        let script = migration.up
        var rehearsal = Rehearsal(version: migration.version, title: migration.title, path: script.path, outcome: .rehearsed)
        if let reason = stopped ?? Self.refusal(of: script) {
            rehearsal.outcome = .notRehearsed(reason: reason)
            return rehearsal
        }
        let clock = ContinuousClock()
        let start = clock.now
        let before = try await RelationSnapshot.take(on: connection)
        // The locks held already, by earlier files and by this rehearsal's own reads.
        let heldBefore = try await RelationSnapshot.heldLocks(on: connection)
        var taken: [RelationSnapshot.HeldLock: Int] = [:]
        for statement in script.statements {
            try await applyTimeouts()
            let (result, duration, blockers) = await watch.observe { try await connection.query(PostgresQuery(unsafeSQL: statement.text)) }
            rehearsal.statements.append(Rehearsal.Statement(line: statement.line, command: Self.command(of: statement), durationMilliseconds: duration.inMilliseconds))
            if case .failure(let error) = result {
                // A lost connection or a cancelled run is the rehearsal's failure, not the file's.
                guard let error = error as? PostgresError, error.code == .server || error.code == .unsupported else { throw error }
                rehearsal.outcome = .failed(Self.failure(error, at: statement, in: script, blockers: blockers))
                stopped = "an earlier file (\(migration.version)) failed"
                rehearsal.locks = try await locks(taken, before: before, after: nil, rewritten: [])
                rehearsal.durationMilliseconds = (clock.now - start).inMilliseconds
                return rehearsal
            }
            guard !connection.isIdle else {
                // Cannot happen with the checks above; if it does, say so loudly.
                let message = "\(script.path):\(statement.line): this statement ended the rehearsal's transaction, so what it and the files before it did may have been committed; inspect the database"
                rehearsal.outcome = .failed(Rehearsal.Failure(line: statement.line, sqlState: nil, message: message, waitsForLock: false, blockers: []))
                stopped = "an earlier file (\(migration.version)) ended the rehearsal's transaction"
                rehearsal.durationMilliseconds = (clock.now - start).inMilliseconds
                return rehearsal
            }
            for lock in try await RelationSnapshot.heldLocks(on: connection).subtracting(heldBefore) where taken[lock] == nil {
                taken[lock] = statement.line
            }
        }
        let after = try await RelationSnapshot.take(on: connection)
        let rewritten = before.rewritten(in: after).filter { original[$0.oid] != nil }
        rehearsal.rewritten = rewritten.map { original[$0.oid]!.qualifiedName }.sorted()
        rehearsal.locks = try await locks(taken, before: before, after: after, rewritten: Set(rewritten.map(\.oid)))
        rehearsal.durationMilliseconds = (clock.now - start).inMilliseconds
        return rehearsal
    }

    /// Why `script` cannot be rehearsed, if it cannot.
    static func refusal(of script: MigrationScript) -> String? {
        switch script.mode {
        case .noTransaction(let reason):
            return "it runs outside a transaction (\(reason)), so a rehearsal could not roll it back"
        case .ownTransaction:
            return "it has its own BEGIN/COMMIT, which would end the rehearsal's transaction"
        case .transaction:
            break
        }
        if let statement = script.statements.first(where: controlsTransaction) {
            let command = statement.words.first == "PREPARE" ? "PREPARE TRANSACTION" : statement.words[0]
            return "line \(statement.line): \(command) would end or change the rehearsal's transaction"
        }
        return nil
    }

    /// Transaction control, more widely than `TransactionMode` counts it: a savepoint
    /// released or rolled back to, or a PREPARE TRANSACTION, would end or change ours.
    static func controlsTransaction(_ statement: SQLStatement) -> Bool {
        switch statement.words.first {
        case "BEGIN", "START", "COMMIT", "END", "ROLLBACK", "ABORT", "SAVEPOINT", "RELEASE": true
        case "PREPARE": statement.words.dropFirst().first == "TRANSACTION"
        default: false
        }
    }

    /// "ALTER TABLE", "CREATE UNIQUE INDEX", "CREATE OR REPLACE FUNCTION".
    static func command(of statement: SQLStatement) -> String {
        let words = statement.words
        let count = switch words.dropFirst().first {
        case "OR": 4
        case "UNIQUE", "TEMP", "TEMPORARY", "UNLOGGED", "MATERIALIZED": 3
        default: 2
        }
        return words.prefix(count).joined(separator: " ")
    }

    static func failure(_ error: PostgresError, at statement: SQLStatement, in script: MigrationScript, blockers: [LockBlocker]) -> Rehearsal.Failure {
        let line = Migrator.line(of: error, sentText: statement.text, firstLine: statement.line) ?? statement.line
        var message = "\(script.path):\(line): "
        if let state = error.sqlState { message += "SQLSTATE \(state.rawValue): " }
        message += error.message
        if let hint = error.hint { message += " (hint: \(hint))" }
        let waits = error.sqlState == .lockNotAvailable
        if waits {
            message += blockers.isEmpty
                ? "; the migration would wait for a lock another session holds (it was not seen which)"
                : "; the migration would wait for a lock: blocked by \(blockers.listed)"
        }
        return Rehearsal.Failure(line: line, sqlState: error.sqlState?.rawValue, message: message, waitsForLock: waits, blockers: blockers)
    }

    /// Set before every statement: a file's own `SET lock_timeout` must not make the
    /// rehearsal wait behind other sessions. Local to the transaction, like all it does.
    private func applyTimeouts() async throws {
        try await connection.query("""
            SELECT pg_catalog.set_config('lock_timeout', \(String(lockTimeout.wholeMilliseconds)), true),
                   pg_catalog.set_config('statement_timeout', \(String(statementTimeout.wholeMilliseconds)), true)
            """)
    }

    /// One entry per relation: the strongest mode the file newly took on it, at the first
    /// statement that took any; plus the ACCESS EXCLUSIVE lock a rewrite shows it needed
    /// when an earlier file already held it. Named as the relation was before the
    /// rehearsal; measured when it existed then. `after` is nil when the file failed: the
    /// transaction is aborted and can be asked nothing more.
    private func locks(_ taken: [RelationSnapshot.HeldLock: Int], before: RelationSnapshot, after: RelationSnapshot?, rewritten: Set<Int64>) async throws -> [Rehearsal.Lock] {
        var strongest: [Int64: (mode: Rehearsal.Lock.Mode, line: Int)] = [:]
        for (lock, line) in taken {
            let known = strongest[lock.oid]
            strongest[lock.oid] = (max(known?.mode ?? lock.mode, lock.mode), min(known?.line ?? line, line))
        }
        var locks: [(oid: Int64, lock: Rehearsal.Lock)] = []
        for oid in Set(strongest.keys).union(rewritten) {
            // Not in any snapshot: a system relation, or one the file made and dropped.
            guard let relation = after?[oid] ?? before[oid] ?? original[oid] else { continue }
            let new = strongest[oid]
            let inferred = rewritten.contains(oid) && new?.mode != .accessExclusive
            locks.append((oid, Rehearsal.Lock(
                relation: (original[oid] ?? relation).qualifiedName, kind: relation.kind,
                mode: inferred ? .accessExclusive : new!.mode, line: new?.line,
                existedBefore: original[oid] != nil, rewritten: rewritten.contains(oid), heldByEarlierFile: inferred,
                rows: nil, rowsEstimated: false, bytes: nil)))
        }
        if let after { try await measure(&locks, after: after) }
        return locks.map(\.lock).sorted { ($0.line ?? .max, $0.relation) < ($1.line ?? .max, $1.relation) }
    }

    /// Rows and bytes of the relations that existed before the rehearsal. A relation the
    /// file dropped is gone from `after`: its planner statistics from before stand in.
    private func measure(_ locks: inout [(oid: Int64, lock: Rehearsal.Lock)], after: RelationSnapshot) async throws {
        let oids = locks.filter(\.lock.existedBefore).map(\.oid)
        guard !oids.isEmpty else { return }
        var sizes: [Int64: (total: Int64, heap: Int64)] = [:]
        for row in try await connection.query("""
            SELECT c.oid::int8, pg_catalog.pg_total_relation_size(c.oid), pg_catalog.pg_relation_size(c.oid)
            FROM pg_catalog.pg_class c WHERE c.oid = ANY(\(oids)::oid[])
            """) {
            sizes[try row[0, as: Int64.self]] = (try row[1, as: Int64.self], try row[2, as: Int64.self])
        }
        for index in locks.indices {
            guard let then = original[locks[index].oid] else { continue }
            let estimate = then.estimatedRows >= 0 ? Int64(then.estimatedRows) : nil
            var lock = locks[index].lock
            defer { locks[index].lock = lock }
            guard let size = sizes[then.oid], let now = after[then.oid] else {
                // Dropped by the file.
                lock.bytes = then.pages > 0 ? then.pages * 8192 : nil
                if then.kind == .table || then.kind == .materializedView, let estimate { (lock.rows, lock.rowsEstimated) = (estimate, true) }
                continue
            }
            lock.bytes = size.total
            switch now.kind {
            case .table:
                if estimate.map({ Double($0) < Self.exactCountRows }) ?? (size.heap <= Self.exactCountBytes) {
                    lock.rows = try await connection.query("SELECT count(*) FROM \(identifier: now.schema).\(identifier: now.name)").first![0, as: Int64.self]
                } else if let estimate {
                    (lock.rows, lock.rowsEstimated) = (estimate, true)
                }
            case .materializedView:
                // A count of one never populated would fail, and end the rehearsal.
                if let estimate { (lock.rows, lock.rowsEstimated) = (estimate, true) }
            default:
                break
            }
        }
    }
}

extension Duration {
    var inMilliseconds: Double {
        Double(components.seconds) * 1000 + Double(components.attoseconds) / 1e15
    }

    var wholeMilliseconds: Int64 {
        components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
    }
}
