import ArgumentParser
import Foundation
import Migrations

struct MigratePlan: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "What `up` would apply; with --rehearse, run it in a transaction that is rolled back and report what it locks. Exits 1 when a rehearsal failed, 7 when --max-exclusive-rows refuses the plan.",
        discussion: """
            Without --rehearse: the pending files, how each would run and how many statements it has. Changes nothing and takes no lock.

            --rehearse runs the pending files against the database itself, in order, in one transaction that is always rolled back, with a short lock_timeout (--rehearsal-lock-timeout) so that it never queues behind other sessions: a file that would wait for a lock fails, naming who holds it. For each file it reports each statement's duration, the relations it locks and in which mode, the tables it rewrites, and their rows and size. Files that run outside a transaction, or bring their own BEGIN/COMMIT, are not rehearsed. The locks it gets are held until it rolls back: a rewrite of a big table stops that table's readers and writers as the migration would, so rehearse a busy database's copy. Sequences advanced by nextval() stay advanced. See docs/MIGRATIONS.md.

            Exit status: 0 when all is well (pending files included); 1 when a rehearsed file failed or would wait for a lock, or on any other error; 7 when --max-exclusive-rows refuses the plan; 64 a usage error; 130 interrupted (the rehearsal is rolled back).
            """
    )

    @OptionGroup var options: MigrationOptions

    @Flag(help: "Run the pending files in a transaction that is rolled back, and report their locks, rewrites and durations.")
    var rehearse = false

    @Flag(help: "One JSON document instead of the tables.")
    var json = false

    @Option(name: .customLong("rehearsal-lock-timeout"), help: "How long a rehearsed statement may wait for a lock before its file is reported as waiting (default 100ms).")
    var rehearsalLockTimeout: String?

    @Option(name: .customLong("rehearsal-statement-timeout"), help: "How long a rehearsed statement may run (default 60s).")
    var rehearsalStatementTimeout: String?

    @Option(name: .customLong("max-exclusive-rows"), help: ArgumentHelp("Exit 7 when a file takes ACCESS EXCLUSIVE on, or rewrites, an existing table of more than N rows (or of a number not known).", valueName: "N"))
    var maxExclusiveRows: Int64?

    @Option(help: "Plan up to and including this version.")
    var to: String?

    @Flag(name: .customLong("allow-out-of-order"), help: "Plan pending files older than the newest applied one, as `up --allow-out-of-order` would apply them.")
    var allowOutOfOrder = false

    func validate() throws {
        if let to, MigrationVersion(to) == nil { throw ValidationError("--to: expected a version number, got '\(to)'") }
        for (name, value) in [("--rehearsal-lock-timeout", rehearsalLockTimeout), ("--rehearsal-statement-timeout", rehearsalStatementTimeout)] {
            guard let value else { continue }
            guard rehearse else { throw ValidationError("\(name) needs --rehearse") }
            // 0 would be no limit: a rehearsal queued behind production traffic.
            guard let duration = parseDuration(value), duration > .zero else { throw ValidationError("\(name): expected a duration above zero like 100ms or 2s, got '\(value)'") }
        }
        if let maxExclusiveRows {
            guard rehearse else { throw ValidationError("--max-exclusive-rows needs --rehearse: only a rehearsal knows what a file locks") }
            guard maxExclusiveRows >= 0 else { throw ValidationError("--max-exclusive-rows: expected 0 or more, got \(maxExclusiveRows)") }
        }
    }

    func run() async throws {
        let migrator = options.migrator(allowOutOfOrder: allowOutOfOrder)
        let target = to.flatMap(MigrationVersion.init)
        let (rehearse, json, limit) = (self.rehearse, self.json, maxExclusiveRows)
        let lockTimeout = rehearsalLockTimeout.flatMap(parseDuration) ?? .milliseconds(100)
        let statementTimeout = rehearsalStatementTimeout.flatMap(parseDuration) ?? .seconds(60)
        try await reportingFailures("migrate plan") {
            try await cancellableBySignals {
                let pending = try await migrator.pending(to: target)
                var rehearsals: [Rehearsal]?
                if rehearse {
                    rehearsals = pending.isEmpty ? [] : try await migrator.rehearse(to: target, lockTimeout: lockTimeout, statementTimeout: statementTimeout)
                }
                let report = PlanReport(pending: pending, rehearsals: rehearsals, maxExclusiveRows: limit)
                print(json ? report.json : report.text)
                guard report.status != MigrationExit.ok else { return }
                if json { throw ExitCode(report.status) }
                fail("migrate plan", report.trouble, status: report.status)
            }
        }
    }
}
