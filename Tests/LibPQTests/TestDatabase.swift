import Foundation
import LibPQ
import Logging

/// The database `make db` starts, or wherever DATABASE_URL points. Every test works in a
/// schema of its own, so the suite runs in parallel without tests seeing each other.
enum TestDatabase {
    static let url = ProcessInfo.processInfo.environment["DATABASE_URL"] ?? "postgres://stockroom:stockroom@127.0.0.1:54320/stockroom"

    static let logger = Logger(label: "LibPQTests")

    /// A connection string whose sessions use `schema` as their search path.
    static func connectionString(schema: String) -> String {
        let option = "options=-csearch_path%3D\(schema)"
        if url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") {
            return url + (url.contains("?") ? "&" : "?") + option
        }
        return url + " options='-csearch_path=\(schema)'"
    }

    /// Creates a fresh schema, runs `body` with a connection whose search path is that
    /// schema and with the schema's connection string, then drops the schema.
    static func withSchema<T>(
        isolation actor: isolated (any Actor)? = #isolation,
        _ body: (PostgresConnection, String) async throws -> T
    ) async throws -> T {
        let schema = "t_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        let admin = try await PostgresConnection.connect(url, logger: logger)
        try await admin.query("SET client_min_messages = warning")  // no "drop cascades to …"
        try await admin.query("CREATE SCHEMA \(identifier: schema)")
        let conninfo = connectionString(schema: schema)
        let connection = try await PostgresConnection.connect(conninfo, logger: logger)
        do {
            let value = try await body(connection, conninfo)
            await connection.close()
            try await admin.query("DROP SCHEMA \(identifier: schema) CASCADE")
            await admin.close()
            return value
        } catch {
            await connection.close()
            _ = try? await admin.query("DROP SCHEMA \(identifier: schema) CASCADE")
            await admin.close()
            throw error
        }
    }

    static func withSchema<T>(
        isolation actor: isolated (any Actor)? = #isolation,
        _ body: (PostgresConnection) async throws -> T
    ) async throws -> T {
        try await withSchema { connection, _ in try await body(connection) }
    }
}

extension PostgresRows {
    /// The single value of a one-row, one-column result.
    func scalar<T: PostgresDecodable>(_ type: T.Type = T.self) throws -> T {
        guard count == 1 else { throw PostgresError(code: .decoding, message: "expected one row, got \(count)") }
        return try self[0][0, as: T.self]
    }
}
