import ArgumentParser
import Foundation
import LibPQ
import Logging
import Migrations
import Stockroom

/// `stockroom migrate …`: apply, roll back and inspect the schema kept in migrations/.
struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Apply, roll back and inspect schema migrations.",
        discussion: "Files: migrations/<version>_<title>.up.sql and .down.sql. See docs/MIGRATIONS.md.",
        subcommands: [MigrateUp.self, MigrateDown.self, MigrateStatus.self, MigratePlan.self, MigrateVerify.self, MigrateResolve.self, MigrateBaseline.self, MigrateNew.self, MigrateLint.self]
    )
}

/// What every `migrate` subcommand that talks to the database takes.
struct MigrationOptions: ParsableArguments {
    @Option(name: .customLong("database-url"), help: "PostgreSQL URL or connection string (default: $DATABASE_URL, else the local database).")
    var databaseURL: String?

    @Option(help: "The folder of migration files.")
    var dir: String = "migrations"

    @Option(name: .customLong("lock-timeout"), help: "lock_timeout for the migrations' statements, e.g. 5s, 500ms; 0 for none.")
    var lockTimeout: String = "5s"

    @Option(name: .customLong("statement-timeout"), help: "statement_timeout for the migrations' statements, e.g. 10m; 0 for none.")
    var statementTimeout: String = "0"

    @Option(name: .customLong("lock-wait"), help: "How long to wait for another runner to finish.")
    var lockWait: String = "120s"

    @Option(name: .customLong("lock-retries"), help: "How many times a transactional migration that failed on --lock-timeout runs again (it rolled back, so this is safe), after pauses of 1 s, 2 s, 4 s…")
    var lockRetries = 3

    @Option(name: .customLong("history-schema"), help: "The schema of the history table, whatever the role's search_path; '' for the first schema of the search path (a history per schema).")
    var historySchema: String = "public"

    func validate() throws {
        for (name, value) in [("--lock-timeout", lockTimeout), ("--statement-timeout", statementTimeout), ("--lock-wait", lockWait)] where parseDuration(value) == nil {
            throw ValidationError("\(name): expected a duration like 5s, 500ms or 2m, got '\(value)'")
        }
    }

    func migrator(allowOutOfOrder: Bool = false) -> Migrator {
        var configuration = Migrator.Configuration(directory: URL(fileURLWithPath: dir))
        configuration.lockTimeout = parseDuration(lockTimeout).flatMap { $0 == .zero ? nil : $0 }
        configuration.statementTimeout = parseDuration(statementTimeout).flatMap { $0 == .zero ? nil : $0 }
        configuration.lockWait = parseDuration(lockWait) ?? .seconds(120)
        configuration.allowOutOfOrder = allowOutOfOrder
        configuration.historySchema = historySchema.isEmpty ? nil : historySchema
        configuration.lockRetries = max(0, lockRetries)
        let url = databaseURL ?? StockroomDatabase.urlFromEnvironment(ProcessInfo.processInfo.environment)
        // The command prints what it does; the library's log lines would only repeat it.
        var logger = Logger(label: "stockroom.migrate")
        logger.logLevel = .warning
        return Migrator(databaseURL: url, configuration: configuration, logger: logger)
    }
}

/// "5s", "500ms", "2m", "1h", or a bare number of seconds.
func parseDuration(_ text: String) -> Duration? {
    let units: [(String, Int64)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000)]
    for (suffix, milliseconds) in units where text.hasSuffix(suffix) {
        guard let value = Int64(text.dropLast(suffix.count)), value >= 0 else { return nil }
        return .milliseconds(value * milliseconds)
    }
    return Int64(text).flatMap { $0 >= 0 ? .seconds($0) : nil }
}

/// Runs `body`, turning the runner's and the database's errors into one line on stderr and
/// a failing exit status.
func reportingFailures(_ command: String, _ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch is CancellationError {
        fail(command, "interrupted; the statement running was cancelled and nothing of the migration in progress was kept", status: 130)
    } catch let error as MigrationError {
        fail(command, error.message, status: MigrationExit.status(for: error.code))
    } catch let error as PostgresError {
        fail(command, "\(error)")
    }
}

/// Prints one line to standard error (libpq's messages span several; scripts and logs
/// want one) and exits.
func fail(_ command: String, _ message: String, status: Int32 = 1) -> Never {
    let line = message.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }.joined(separator: " ")
    FileHandle.standardError.write(Data("stockroom \(command): \(line)\n".utf8))
    exit(status)
}

extension Duration {
    /// "12 ms", "3.4 s".
    var short: String {
        let ms = Double(components.seconds) * 1000 + Double(components.attoseconds) / 1e15
        return ms < 1000 ? "\(Int(ms.rounded())) ms" : String(format: "%.1f s", ms / 1000)
    }
}

/// Runs `body` in a task that SIGTERM and SIGINT cancel, instead of killing the process:
/// a killed runner would leave its statement running on the server, holding its locks.
/// Cancelled, LibPQ cancels the statement on the server, and the runner records where it
/// stopped (see `Migrator.up`).
func cancellableBySignals(_ body: @escaping @Sendable () async throws -> Void) async throws {
    let task = Task { try await body() }
    let sources = [SIGTERM, SIGINT].map { number -> any DispatchSourceSignal in
        signal(number, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
        source.setEventHandler { task.cancel() }
        source.resume()
        return source
    }
    defer { sources.forEach { $0.cancel() } }
    try await task.value
}

/// Exit statuses of `stockroom migrate`, for deploy scripts (docs/MIGRATIONS.md): one
/// per kind of trouble, the most serious when there are several. 64 is a usage error
/// (ArgumentParser's), 130 an interrupted run.
enum MigrationExit {
    static let ok: Int32 = 0
    static let error: Int32 = 1
    static let pending: Int32 = 3
    static let failed: Int32 = 4
    static let modifiedOrMissing: Int32 = 5
    static let newerBinaryRequired: Int32 = 6
    /// `plan --rehearse --max-exclusive-rows N`: a file would stop the readers and
    /// writers of a table bigger than the deploy allows.
    static let refusedByPlanLimits: Int32 = 7

    static func status(for code: MigrationError.Code) -> Int32 {
        switch code {
        case .needsResolution: failed
        case .modified, .missingFile: modifiedOrMissing
        case .newerBinaryRequired: newerBinaryRequired
        default: error
        }
    }

    /// For `status`: what its rows need, the most serious first.
    static func status(for statuses: [MigrationStatus]) -> Int32 {
        if statuses.contains(where: { $0.state == .newer && $0.breaksOlderBinaries }) { return newerBinaryRequired }
        if statuses.contains(where: { $0.state == .modified || $0.state == .missing }) { return modifiedOrMissing }
        if statuses.contains(where: { $0.state == .failed || $0.state == .running }) { return failed }
        if statuses.contains(where: { $0.state == .pending }) { return pending }
        return ok
    }
}
