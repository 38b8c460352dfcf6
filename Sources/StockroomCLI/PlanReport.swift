import Foundation
import Migrations

/// What `migrate plan` prints, and the exit status it ends with: the pending files, their
/// rehearsals when there were any, and what `--max-exclusive-rows` refuses.
struct PlanReport {
    let pending: [Migration]
    /// nil without --rehearse.
    let rehearsals: [Rehearsal]?
    let maxExclusiveRows: Int64?

    /// The locks `--max-exclusive-rows` refuses; none without it.
    var refused: [(rehearsal: Rehearsal, lock: Rehearsal.Lock)] {
        guard let maxExclusiveRows, let rehearsals else { return [] }
        return rehearsals.tableBlockingLocks(aboveRows: maxExclusiveRows)
    }

    var failed: [Rehearsal] { (rehearsals ?? []).filter { $0.failure != nil } }

    /// A failed file first: the deploy would fail, whatever it locks.
    var status: Int32 {
        if !failed.isEmpty { return MigrationExit.error }
        if !refused.isEmpty { return MigrationExit.refusedByPlanLimits }
        return MigrationExit.ok
    }

    /// One line for standard error, when the status is not 0.
    var trouble: String {
        if let failure = failed.first?.failure { return "the rehearsal failed: \(failure.message)" }
        let locks = refused.map { "\($0.rehearsal.version) takes \($0.lock.mode.rawValue) on \($0.lock.relation) (\(Self.rows($0.lock)) rows\($0.lock.rewritten ? ", rewritten" : ""))" }
        return "refused by --max-exclusive-rows \(maxExclusiveRows ?? 0): " + locks.joined(separator: "; ")
    }

    // MARK: - Text

    var text: String {
        guard !pending.isEmpty else { return "nothing pending: the database is up to date" }
        guard let rehearsals else {
            let rows = [["VERSION", "STATEMENTS", "TITLE", "RUNS"]] + pending.map { [$0.version.digits, "\($0.up.statements.count)", $0.title, $0.up.mode.summary] }
            return Self.table(rows).joined(separator: "\n")
        }
        var lines: [String] = []
        var skipped: [MigrationVersion] = []
        for rehearsal in rehearsals {
            let name = "\(rehearsal.version) \(rehearsal.title)"
            switch rehearsal.outcome {
            case .notRehearsed(let reason):
                lines.append("\(name): not rehearsed: \(reason)")
                skipped.append(rehearsal.version)
                continue
            case .rehearsed:
                lines.append("\(name): rehearsed in \(rehearsal.duration.short)")
            case .failed(let failure):
                lines.append("\(name): FAILED after \(rehearsal.duration.short): \(failure.message)")
                if !skipped.isEmpty {
                    lines.append("  not rehearsed before it: \(skipped.map(\.digits).joined(separator: ", ")); if this file needs what they do, that is why")
                }
            }
            lines += Self.table(rehearsal.statements.map { ["line \($0.line)", $0.command, $0.duration.short] }, indent: "  ")
            if rehearsal.locks.isEmpty {
                lines.append(rehearsal.failure == nil ? "  no new locks" : "  no new locks before it failed")
            } else {
                let header = ["LINE", "RELATION", "KIND", "MODE", "BLOCKS", "ROWS", "SIZE", ""]
                lines += Self.table([header] + rehearsal.locks.map(Self.row), indent: "  ")
            }
        }
        lines.append("")
        lines += summary(rehearsals)
        return lines.joined(separator: "\n")
    }

    private func summary(_ rehearsals: [Rehearsal]) -> [String] {
        var lines: [String] = []
        let blocking = rehearsals.tableBlockingLocks(aboveRows: -1)
        if blocking.isEmpty {
            let all = rehearsals.allSatisfy { $0.outcome == .rehearsed }
            lines.append("\(all ? "no file" : "no file rehearsed") takes ACCESS EXCLUSIVE on, or rewrites, a table that exists now")
        } else {
            lines.append("ACCESS EXCLUSIVE on tables that exist now (their readers and writers wait while it is held):")
            for (rehearsal, lock) in blocking {
                lines.append("  \(rehearsal.version) \(rehearsal.title): \(lock.relation), \(Self.rows(lock)) rows, \(Self.size(lock.bytes))\(lock.rewritten ? ", rewritten" : "")")
            }
        }
        if rehearsals.contains(where: { $0.locks.contains(where: \.rowsEstimated) }) {
            lines.append("~ rows estimated from the planner's statistics")
        }
        var counts = ["\(rehearsals.filter { $0.outcome == .rehearsed }.count) rehearsed"]
        let skipped = rehearsals.filter { if case .notRehearsed = $0.outcome { true } else { false } }.count
        if skipped > 0 { counts.append("\(skipped) not rehearsed") }
        if !failed.isEmpty { counts.append("\(failed.count) failed") }
        lines.append("\(rehearsals.count) pending: \(counts.joined(separator: ", ")); rolled back, nothing changed (sequences advanced by nextval() excepted)")
        return lines
    }

    private static func row(_ lock: Rehearsal.Lock) -> [String] {
        var notes: [String] = []
        if !lock.existedBefore { notes.append("new") }
        if lock.rewritten { notes.append("rewritten") }
        if lock.heldByEarlierFile { notes.append("held since an earlier file") }
        // Rows are counted for tables only; on a relation the rehearsal made, a lock
        // blocks no one.
        let counted = lock.existedBefore && (lock.kind == .table || lock.kind == .materializedView)
        return [lock.line.map(String.init) ?? "-", lock.relation, lock.kind.rawValue, lock.mode.rawValue, lock.existedBefore ? lock.mode.blocks : "-",
                counted ? rows(lock) : "-", size(lock.bytes), notes.joined(separator: ", ")]
    }

    private static func rows(_ lock: Rehearsal.Lock) -> String {
        guard let rows = lock.rows else { return "unknown" }
        return lock.rowsEstimated ? "~\(rows)" : "\(rows)"
    }

    /// "72 kB", "1.2 MB", as pg_size_pretty would say it.
    private static func size(_ bytes: Int64?) -> String {
        guard let bytes else { return "-" }
        var value = Double(bytes)
        for unit in ["bytes", "kB", "MB", "GB"] {
            if value < 1024 || unit == "GB" {
                return unit == "bytes" ? "\(bytes) bytes" : (value < 10 ? String(format: "%.1f \(unit)", value) : "\(Int(value.rounded())) \(unit)")
            }
            value /= 1024
        }
        return "\(bytes) bytes"
    }

    /// Rows of cells as columns padded to their widest cell.
    private static func table(_ rows: [[String]], indent: String = "") -> [String] {
        let widths = rows.reduce(into: [Int]()) { widths, row in
            for (index, cell) in row.enumerated() {
                if index == widths.count { widths.append(0) }
                widths[index] = max(widths[index], cell.count)
            }
        }
        return rows.map { row in
            let cells = row.enumerated().map { index, cell in index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0) }
            return indent + cells.joined(separator: "  ").trimmingCharacters(in: .whitespaces)
        }
    }

    // MARK: - JSON

    /// `{"status", "pending": [{"version","title","path","transaction_mode","transaction_mode_reason","statement_count"}],
    /// "rehearsals": [Rehearsal…], "max_exclusive_rows", "refused": [{"version","relation","mode","rows","rewritten"}]}`;
    /// snake_case keys, as `status --json`.
    var json: String {
        struct PendingFile: Encodable {
            var version, title, path, transactionMode: String
            var transactionModeReason: String?
            var statementCount: Int
        }
        struct Refusal: Encodable {
            var version, relation, mode: String
            var rows: Int64?
            var rewritten: Bool
        }
        struct Document: Encodable {
            var status: String
            var pending: [PendingFile]
            var rehearsals: [Rehearsal]?
            var maxExclusiveRows: Int64?
            var refused: [Refusal]?
        }
        let files = pending.map { migration -> PendingFile in
            let (mode, reason): (String, String?) = switch migration.up.mode {
            case .transaction: ("transaction", nil)
            case .ownTransaction: ("own_transaction", nil)
            case .noTransaction(let reason): ("no_transaction", reason)
            }
            return PendingFile(version: migration.version.digits, title: migration.title, path: migration.up.path, transactionMode: mode,
                               transactionModeReason: reason, statementCount: migration.up.statements.count)
        }
        let status = switch self.status {
        case MigrationExit.ok: "ok"
        case MigrationExit.refusedByPlanLimits: "refused"
        default: "failed"
        }
        let refusals = maxExclusiveRows.map { _ in
            refused.map { Refusal(version: $0.rehearsal.version.digits, relation: $0.lock.relation, mode: $0.lock.mode.rawValue, rows: $0.lock.rows, rewritten: $0.lock.rewritten) }
        }
        let document = Document(status: status, pending: files, rehearsals: rehearsals, maxExclusiveRows: maxExclusiveRows, refused: refusals)
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: (try? encoder.encode(document)) ?? Data("{}".utf8), as: UTF8.self)
    }
}
