import ArgumentParser
import Migrations

struct MigrateVerify: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check that every applied migration's file is present and unchanged; exits 1 otherwise."
    )

    @OptionGroup var options: MigrationOptions

    func run() async throws {
        try await reportingFailures("migrate verify") {
            let mismatches = try await options.migrator().verify()
            for status in mismatches {
                print("\(status.state.rawValue): \(status.version) \(status.title)\(status.path.map { " (\($0))" } ?? "")")
            }
            if !mismatches.isEmpty { fail("migrate verify", "\(mismatches.count) applied migration(s) do not match their files") }
            print("ok: every applied migration matches its file")
        }
    }
}
