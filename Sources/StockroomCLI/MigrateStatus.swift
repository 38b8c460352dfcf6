import ArgumentParser
import Foundation
import Migrations

struct MigrateStatus: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Every version with its state; exits 1 when anything needs attention (pending, failed, running, modified, missing)."
    )

    @OptionGroup var options: MigrationOptions

    func run() async throws {
        try await reportingFailures("migrate status") {
            let statuses = try await options.migrator().status()
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
                fail("migrate status", "needs attention: \(counts.joined(separator: ", "))")
            }
        }
    }
}
