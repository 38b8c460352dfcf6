public import LibPQ

/// Stockroom's repositories over one connection pool: what the TCP service calls, and
/// what other Swift services embed to work on the same data.
///
/// ```swift
/// let pool = PostgresPool(configuration: .init(connection: .init(StockroomDatabase.urlFromEnvironment(env))))
/// let stockroom = Stockroom(pool: pool)
/// let low = try await stockroom.products.list(limit: 100).filter { $0.stock < 5 }
/// ```
public struct Stockroom: Sendable {
    public let pool: PostgresPool
    public let accounts: AccountRepository
    public let products: ProductRepository
    public let orders: OrderRepository
    public let events: EventRepository
    public let payments: PaymentRepository

    /// `orderConcurrency`: order transactions (placing, and moving between states) that
    /// run at once, the rest waiting in a short line (`AdmissionGate`); nil for no limit
    /// beyond the pool's.
    public init(
        pool: PostgresPool, passwordHasher: PasswordHasher = .interactive, sessionLifetime: Duration = .seconds(7 * 24 * 3600),
        orderConcurrency: Int? = AdmissionGate.defaultLimit
    ) {
        self.pool = pool
        self.accounts = AccountRepository(pool: pool, hasher: passwordHasher, sessionLifetime: sessionLifetime)
        self.products = ProductRepository(pool: pool)
        self.orders = OrderRepository(pool: pool, admission: orderConcurrency.map { AdmissionGate(limit: $0, timeout: pool.configuration.acquireTimeout, work: "orders") })
        self.events = EventRepository(pool: pool)
        self.payments = PaymentRepository(pool: pool)
    }
}
