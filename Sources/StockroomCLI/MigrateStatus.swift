import ArgumentParser
import Foundation
import Migrations

struct MigrateStatus: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Every version with its state; exits 3 when something is pending, 4 failed or running, 5 modified or missing, 6 when a newer binary is required.",
        discussion: "Versions a newer binary applied are listed as newer and need nothing (unless they mark themselves as breaking older binaries: exit 6)."
    )

    @OptionGroup var options: MigrationOptions

    @Flag(help: "One JSON object per version, in an array, instead of the table.")
    var json = false

    func run() async throws {
        try await reportingFailures("migrate status") {
            let statuses = try await options.migrator().status()
            if json {
                print(Self.json(statuses))
                let status = MigrationExit.status(for: statuses)
                if status != MigrationExit.ok { throw ExitCode(status) }
                return
            }
            let width = max(7, statuses.map(\.version.digits.count).max() ?? 0)
            print("VERSION".padding(toLength: width, withPad: " ", startingAt: 0) + "  STATE     APPLIED AT            TITLE")
            for status in statuses {
                var state = status.state.rawValue
                if status.outOfOrder { state += "*" }
                let applied = status.appliedAt.map { $0.formatted(.iso8601) } ?? "-"
                print(status.version.digits.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + state.padding(toLength: 8, withPad: " ", startingAt: 0) + "  " + applied.padding(toLength: 20, withPad: " ", startingAt: 0) + "  " + status.title)
                if let error = status.error, status.state == .failed { print("    \(error)") }
            }
            if statuses.contains(where: \.outOfOrder) { print("* pending, but older than the newest applied version (apply with --allow-out-of-order)") }
            if statuses.contains(where: { $0.state == .newer }) { print("newer: applied by a newer binary than this one, which has no file for it; `up` leaves it be") }
            let attention = statuses.filter(\.needsAttention)
            if !attention.isEmpty {
                let counts = Dictionary(grouping: attention, by: \.state).map { "\($0.value.count) \($0.key.rawValue)" }.sorted()
                fail("migrate status", "needs attention: \(counts.joined(separator: ", "))", status: MigrationExit.status(for: statuses))
            }
        }
    }

    /// `[{"version","title","state","applied_at","path","out_of_order","breaks_older_binaries","error"}, …]`
    static func json(_ statuses: [MigrationStatus]) -> String {
        struct Row: Encodable {
            var version, title, state: String
            var appliedAt: String?
            var path: String?
            var outOfOrder, breaksOlderBinaries: Bool
            var error: String?
        }
        let rows = statuses.map {
            Row(version: $0.version.digits, title: $0.title, state: $0.state.rawValue, appliedAt: $0.appliedAt.map { $0.formatted(.iso8601) },
                path: $0.path, outOfOrder: $0.outOfOrder, breaksOlderBinaries: $0.breaksOlderBinaries, error: $0.error)
        }
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: (try? encoder.encode(rows)) ?? Data("[]".utf8), as: UTF8.self)
    }
}
