import LibPQ
import Stockroom
import Testing

/// What a client is told for database failures that mean "not done, try again": never
/// `-INTERNAL`, which tells it not to retry.
@Suite("Database failures that a retry heals map to UNAVAILABLE")
struct ErrorMappingTests {
    @Test(arguments: [PostgresError.Code.connection, .poolExhausted, .closed, .readOnlyServer])
    func aFailoverOrAnOutageIsUnavailable(code: PostgresError.Code) {
        var error = PostgresError(code: code, message: "cannot execute INSERT in a read-only transaction")
        if code == .readOnlyServer { error.sqlState = .readOnlySQLTransaction }
        #expect((StockroomError.mapping(error) as? StockroomError)?.code == .unavailable)
    }

    /// A write in a read-only transaction on a primary is a bug, and stays one.
    @Test func aReadOnlyTransactionOnAPrimaryIsNotHidden() {
        let error = PostgresError(code: .server, message: "cannot execute INSERT in a read-only transaction", sqlState: .readOnlySQLTransaction)
        #expect(StockroomError.mapping(error) is PostgresError)
    }
}
