import LibPQ

/// Runs database work and turns its failures into `StockroomError`s where the database
/// judged the input (constraints) or could not serve (unavailable, timeout).
@discardableResult
func mappingErrors<T>(
    isolation actor: isolated (any Actor)? = #isolation,
    _ body: () async throws -> T
) async throws -> T {
    do {
        return try await body()
    } catch {
        throw StockroomError.mapping(error)
    }
}

/// Where Stockroom's programs and tests find the database.
public enum StockroomDatabase {
    public static let defaultURL = "postgres://stockroom:stockroom@127.0.0.1:54320/stockroom"

    /// `DATABASE_URL` from the environment, or the project-local database `make db` starts.
    public static func urlFromEnvironment(_ environment: [String: String]) -> String {
        if let url = environment["DATABASE_URL"], !url.isEmpty { return url }
        return defaultURL
    }
}

extension PostgresRows {
    /// The first row decoded as `T`, or nil when there are no rows.
    func first<T: Decodable>(as type: T.Type) throws -> T? {
        try first.map { try $0.decode(T.self) }
    }
}
