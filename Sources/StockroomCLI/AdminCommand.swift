import ArgumentParser
import Foundation
import LibPQ
import Logging
import Stockroom

/// `stockroom admin …`: tasks for operators.
struct AdminCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "admin",
        abstract: "Administrative tasks.",
        subcommands: [CreateAdmin.self]
    )
}

/// `stockroom admin create <email> --name <name>`, password on standard input. This is
/// how the first admin comes to be: customers register themselves over the service.
struct CreateAdmin: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Create an admin user; reads the password (one line) from standard input.",
        discussion: "Example: printf '%s\\n' \"$ADMIN_PASSWORD\" | stockroom admin create ops@example.com --name 'Ops Team'"
    )

    @Argument(help: "The admin's email address.")
    var email: String

    @Option(help: "The admin's display name.")
    var name: String

    @Option(name: .customLong("database-url"), help: "PostgreSQL URL or connection string (default: $DATABASE_URL, else the local database).")
    var databaseURL: String?

    func run() async throws {
        guard let password = readLine(strippingNewline: true), !password.isEmpty else {
            throw ValidationError("expected the password on standard input (one line)")
        }
        let url = databaseURL ?? StockroomDatabase.urlFromEnvironment(ProcessInfo.processInfo.environment)
        let pool = PostgresPool(configuration: .init(connection: .init(url), maxConnections: 1))
        let stockroom = Stockroom(pool: pool)
        do {
            let user = try await stockroom.accounts.register(email: email, name: name, password: password, role: .admin)
            await pool.close()
            print("created admin \(user.id) <\(user.email)>")
        } catch {
            await pool.close()
            var message = "\(error)"
            if let error = error as? PostgresError, error.sqlState == .undefinedTable {
                message = "the database has no Stockroom schema yet; run `stockroom migrate up` first"
            }
            FileHandle.standardError.write(Data("stockroom admin create: \(message)\n".utf8))
            throw ExitCode.failure
        }
    }
}
