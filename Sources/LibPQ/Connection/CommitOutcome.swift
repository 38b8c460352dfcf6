import Logging

/// What became of a COMMIT sent on a connection: committed, failed, or unknown because
/// the connection broke before its answer came — then the server is asked.
///
/// A broken connection during COMMIT does not mean the transaction failed: the server may
/// have committed it and lost only the reply. A client that takes the error for "not
/// done" and tries again does it twice. PostgreSQL made `txid_status` for exactly this:
/// the transaction's id, fetched before the COMMIT in the same round trip, tells a new
/// connection whether it committed.
enum CommitAttempt<Value: Sendable>: Sendable {
    case committed(Value)
    case failed(PostgresError)
    /// The connection broke after the transaction got its id; `value` is what its
    /// statements returned, good if it committed.
    case unknown(Transaction, value: Value, error: PostgresError)
    /// This end cut the connection (at a deadline whose cancel went unanswered) before
    /// the transaction's id came back. The backend lives on, unaware, and runs what it
    /// had received, its commit included: "no id, not committed" does not hold, so the
    /// server is asked about the backend itself. (When the server closes a connection,
    /// all it sent before arrives first: no id then means it never got to the commit.)
    /// `value` is the result when committing is all there is to know (a COMMIT's); nil
    /// when it was the statements' rows, lost with the connection.
    case cut(CutBackend, value: Value?, error: PostgresError)

    func resolve(connection: PostgresConnection) async throws -> Value {
        switch self {
        case .committed(let value):
            return value
        case .failed(let error):
            throw connection.refinedReadOnlyRefusal(error)
        case .unknown(let transaction, let value, let error):
            connection.logger.info("connection lost during COMMIT; asking the server whether it committed", metadata: ["postgres.txid": "\(transaction.id)"])
            if try await PostgresConnection.didCommit(transaction, configuration: connection.configuration, logger: connection.logger) {
                return value
            }
            var failure = error
            failure.message += " (the transaction did not commit)"
            throw failure
        case .cut(let cut, let value, let error):
            connection.logger.info("connection cut before the transaction's id came back; asking the server what became of it", metadata: ["postgres.backend_pid": "\(cut.backendPID)"])
            if try await PostgresConnection.didCommit(cut, configuration: connection.configuration, logger: connection.logger) {
                if let value { return value }
                var committed = PostgresError(code: .commitOutcomeUnknown, message: "the transaction committed, but the connection was cut before its results came back")
                committed.transactionIsOver = true
                throw committed
            }
            var failure = error
            failure.message += " (the transaction did not commit)"
            throw failure
        }
    }
}

/// A connection this end cut while the server may still run a transaction on it: the
/// backend, told from any other by its process id and this end's port.
struct CutBackend: Sendable {
    var backendPID: Int32
    /// This end's TCP port; 0 over a Unix socket or when unknown: the process id alone.
    var clientPort: Int32
}

/// A transaction whose COMMIT may or may not have happened, as the server identifies it.
struct Transaction: Sendable {
    /// `txid_current()`: the 32-bit xid with its epoch.
    var id: Int64
    var backendPID: Int32
    /// When the server last started. A crash can give an id away again: one the
    /// transaction got but never wrote to the WAL before the crash is handed to a new
    /// transaction after recovery, and `txid_status` then answers for that one.
    var serverStart: Double

    init(id: Int64, backendPID: Int32, serverStart: Double) {
        self.id = id
        self.backendPID = backendPID
        self.serverStart = serverStart
    }

    /// Reads `transactionIDQuery`'s row; nil when the transaction wrote nothing.
    init?(_ rows: PostgresRows, backendPID: Int32) {
        guard let row = rows.first, let id = try? row[0, as: Int64?.self], let start = try? row[1, as: Double.self] else { return nil }
        self.id = id
        self.backendPID = backendPID
        self.serverStart = start
    }
}

extension PostgresConnection {
    /// When this end cut the connection, the backend that was running the transaction,
    /// to be asked about. Part of what was sent may have reached the server even when
    /// sending had not finished, so any cut counts.
    var cutBackend: CutBackend? {
        socket.wasSevered ? CutBackend(backendPID: backendPID, clientPort: socket.localPort) : nil
    }

    /// The transaction's id — NULL when it wrote nothing (then there is nothing to lose) —
    /// and when the server started, to tell a crash since.
    static let transactionIDQuery: PostgresQuery = "SELECT txid_current_if_assigned(), extract(epoch FROM pg_postmaster_start_time())::float8"

    /// The questions about a commit go on connections of their own: each short-lived,
    /// quick to give up, without prepared statements, never reconnecting by itself.
    static func checkerConfiguration(_ configuration: Configuration) -> Configuration {
        var configuration = configuration
        configuration.reconnectWhenDroppedIdle = false
        configuration.connectTimeout = 2
        configuration.operationTimeout = .seconds(2)
        configuration.statementCacheCapacity = 0
        return configuration
    }

    /// Asks the server, on new connections, whether transaction `id` committed; waits for
    /// the database to come back (a restart, a failover) up to
    /// `configuration.commitOutcomeTimeout`, then throws `.commitOutcomeUnknown`.
    ///
    /// A transaction still in progress belongs to a session whose client is gone. If that
    /// session sits idle in the transaction (the COMMIT never reached it), it is ended
    /// (`pg_terminate_backend`, only if it still runs that very transaction), which
    /// settles the outcome at once instead of after `idle_in_transaction_session_timeout`.
    /// One still busy — running the COMMIT, waiting for a synchronous standby — is left
    /// to finish, and asked about again.
    ///
    /// If the server restarted meanwhile (a crash, a failover), "aborted" still holds —
    /// a commit that reached the disk survives the crash — but "committed" may be about
    /// another transaction that got the same id after recovery: that is
    /// `.commitOutcomeUnknown`, for the caller to settle with what it knows (an
    /// idempotency key, say).
    static func didCommit(_ transaction: Transaction, configuration: Configuration, logger: Logger, deadline: ContinuousClock.Instant? = nil) async throws -> Bool {
        let (id, pid) = (transaction.id, transaction.backendPID)
        let deadline = deadline ?? ContinuousClock.now + configuration.commitOutcomeTimeout
        let configuration = checkerConfiguration(configuration)
        while ContinuousClock.now < deadline {
            do {
                let checker = try await connect(configuration, logger: logger)
                do {
                    while ContinuousClock.now < deadline {
                        let started = try await checker.query("SELECT extract(epoch FROM pg_postmaster_start_time())::float8")
                        let restarted = try started.first?[0, as: Double.self] != transaction.serverStart
                        let status: String?
                        do {
                            status = try await checker.query("SELECT txid_status(\(id))").first?[0, as: String?.self]
                        } catch let error as PostgresError where error.sqlState == .invalidParameterValue {
                            // "in the future": after a failover, a new primary that never
                            // saw the id (its WAL did not reach the standby).
                            status = "future"
                        }
                        switch status {
                        case "aborted"?:
                            await checker.close()
                            return false
                        case _ where restarted:
                            // Anything but "aborted" may be about another transaction that
                            // got the id after recovery; ours is surely over.
                            await checker.close()
                            var error = PostgresError(code: .commitOutcomeUnknown, message: "the connection broke during COMMIT and the server restarted since, so its record of transaction \(id) may be another's")
                            error.transactionIsOver = true
                            throw error
                        case "committed"?:
                            await checker.close()
                            return true
                        case "in progress"?:
                            try await checker.query("""
                                SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                                WHERE pid = \(pid) AND backend_xid::text::int8 = \(id % (1 << 32))
                                  AND state LIKE 'idle in transaction%'
                                """)
                            try await Task.sleep(for: .milliseconds(20))
                        default:
                            // NULL: too old to be known any more — not a transaction of a moment ago.
                            await checker.close()
                            throw PostgresError(code: .commitOutcomeUnknown, message: "the server no longer knows transaction \(id)")
                        }
                    }
                    await checker.close()
                } catch let error as PostgresError where error.code != .commitOutcomeUnknown {
                    await checker.close()
                    throw error
                }
            } catch let error as PostgresError where error.code != .commitOutcomeUnknown {
                // Unreachable for now (restarting, failing over): ask again shortly.
                logger.debug("cannot ask about a commit yet", metadata: ["error": "\(error)"])
                try await Task.sleep(for: .milliseconds(200))
            }
        }
        throw PostgresError(code: .commitOutcomeUnknown, message: "the connection broke during COMMIT and the database could not be asked within \(configuration.commitOutcomeTimeout.readable) whether it committed")
    }
}

extension PostgresConnection {
    /// Whether the transaction running on a connection this end cut committed, asked on new
    /// connections within `configuration.commitOutcomeTimeout`; throws
    /// `.commitOutcomeUnknown` when that cannot be known.
    ///
    /// The backend is looked up by process id and client port. Still there with a
    /// transaction id: that id settles it (`didCommit`, which also ends the backend if it
    /// sits idle in the transaction). Still running without an id: asked again shortly,
    /// since it may yet write. Idle in a transaction without an id (its commit never
    /// arrived): ended, and nothing was written. Idle outside a transaction, or gone: it
    /// finished what it received, and whether that included a commit cannot be known
    /// without an id — `.commitOutcomeUnknown` with `transactionIsOver`, for the caller
    /// to settle with what it knows (an idempotency key, say).
    static func didCommit(_ cut: CutBackend, configuration: Configuration, logger: Logger) async throws -> Bool {
        let deadline = ContinuousClock.now + configuration.commitOutcomeTimeout
        let original = configuration
        let configuration = checkerConfiguration(configuration)
        let port: Int32? = cut.clientPort == 0 ? nil : cut.clientPort
        while ContinuousClock.now < deadline {
            let checker: PostgresConnection
            do {
                checker = try await connect(configuration, logger: logger)
            } catch let error as PostgresError {
                logger.debug("cannot ask about a cut connection yet", metadata: ["error": "\(error)"])
                try await Task.sleep(for: .milliseconds(200))
                continue
            }
            do {
                while ContinuousClock.now < deadline {
                    // backend_xid is 32 bits; txid_status wants the id with its epoch,
                    // taken from the checker's snapshot: the one within 2^31 of its xmax
                    // (which running transactions may be past: it is the latest
                    // completed id plus one).
                    let row = try await checker.query("""
                        SELECT a.backend_xid::text::int8, a.state,
                               pg_snapshot_xmax(pg_current_snapshot())::text::int8,
                               extract(epoch FROM pg_postmaster_start_time())::float8
                        FROM pg_stat_activity a
                        WHERE a.pid = \(cut.backendPID) AND (\(port)::int4 IS NULL OR a.client_port = \(port))
                        """).first
                    guard let row else {
                        await checker.close()
                        var error = PostgresError(code: .commitOutcomeUnknown, message: "the connection was cut before the transaction's id came back, and its backend has ended: whether it committed is not known")
                        error.transactionIsOver = true
                        throw error
                    }
                    let state = try row[1, as: String?.self] ?? ""
                    if let xid = try row[0, as: Int64?.self] {
                        let next = try row[2, as: Int64.self]
                        var id = (next & ~0xFFFF_FFFF) | xid
                        if id - next > 1 << 31 { id -= 1 << 32 } else if next - id > 1 << 31 { id += 1 << 32 }
                        await checker.close()
                        let transaction = Transaction(id: id, backendPID: cut.backendPID, serverStart: try row[3, as: Double.self])
                        return try await didCommit(transaction, configuration: original, logger: logger, deadline: deadline)
                    }
                    if state.hasPrefix("idle in transaction") {
                        // Waiting for the rest of a pipeline that will never come, having
                        // written nothing: ended, it commits nothing.
                        let ended = try await checker.query("""
                            SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                            WHERE pid = \(cut.backendPID) AND (\(port)::int4 IS NULL OR client_port = \(port))
                              AND backend_xid IS NULL AND state LIKE 'idle in transaction%'
                            """).first
                        if ended != nil {
                            await checker.close()
                            return false
                        }
                        continue
                    }
                    if state == "active" {
                        try await Task.sleep(for: .milliseconds(20))
                        continue
                    }
                    await checker.close()
                    var error = PostgresError(code: .commitOutcomeUnknown, message: "the connection was cut before the transaction's id came back, and its backend has finished: whether it committed is not known")
                    error.transactionIsOver = true
                    throw error
                }
                await checker.close()
            } catch let error as PostgresError where error.code != .commitOutcomeUnknown {
                await checker.close()
                logger.debug("cannot ask about a cut connection yet", metadata: ["error": "\(error)"])
                try await Task.sleep(for: .milliseconds(200))
            }
        }
        throw PostgresError(code: .commitOutcomeUnknown, message: "the connection was cut before the transaction's id came back, and the database could not be asked within \(configuration.commitOutcomeTimeout.readable) whether it committed")
    }
}
