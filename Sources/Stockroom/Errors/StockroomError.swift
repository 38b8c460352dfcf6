internal import LibPQ

/// The one error type of Stockroom's business rules. `code` is stable and is what
/// callers (and the TCP service's error codes) match on; `message` is for people and
/// never contains passwords, tokens or other secrets.
public struct StockroomError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable, Equatable {
        /// A bad argument; `field` names it.
        case invalidInput = "INVALID"
        case notFound = "NOTFOUND"
        /// A uniqueness or idempotency conflict.
        case conflict = "CONFLICT"
        /// Not enough stock; `productID` and `available` say where and how much is left.
        case outOfStock = "OUTOFSTOCK"
        /// An illegal order transition; `currentState` names the order's state.
        case invalidState = "STATE"
        /// Wrong email or password, or an expired, revoked or unknown session token.
        case unauthenticated = "WRONGPASS"
        /// The caller may not do this.
        case permissionDenied = "NOPERM"
        /// The database is unreachable or overloaded; safe to retry.
        case unavailable = "UNAVAILABLE"
        /// The database did not answer in time: the request was cancelled and nothing
        /// it would have written was kept.
        case timeout = "TIMEOUT"
        /// The connection to the database broke while a change was being committed, and
        /// the database could not be asked in time whether it committed. Retry only
        /// with the same idempotency key, or read the state first.
        case inDoubt = "INDOUBT"
        /// The payment processor refused the request (a declined amount, a bad key);
        /// `message` gives its reason. Trying again unchanged will not help.
        case paymentFailed = "PAYMENT"
    }

    public var code: Code
    public var message: String
    public var field: String?
    public var productID: Int64?
    public var available: Int?
    public var currentState: OrderStatus?

    public init(_ code: Code, _ message: String, field: String? = nil) {
        self.code = code
        self.message = message
        self.field = field
    }

    public var description: String { "\(code.rawValue) \(message)" }

    static func invalid(_ field: String, _ message: String) -> StockroomError {
        StockroomError(.invalidInput, "\(field): \(message)", field: field)
    }

    static func notFound(_ what: String) -> StockroomError {
        StockroomError(.notFound, "\(what) not found")
    }

    static func outOfStock(product: Int64, available: Int, requested: Int) -> StockroomError {
        var error = StockroomError(.outOfStock, "product \(product) has \(available) in stock, \(requested) requested")
        error.productID = product
        error.available = available
        return error
    }

    static func invalidState(_ current: OrderStatus, action: String) -> StockroomError {
        var error = StockroomError(.invalidState, "cannot \(action) an order that is \(current.rawValue)")
        error.currentState = current
        return error
    }

    static let wrongCredentials = StockroomError(.unauthenticated, "wrong email or password")
}

extension StockroomError {
    /// Maps database failures to domain errors by SQLSTATE and constraint name — never
    /// by message text. Anything unrecognized is returned as is: it is a bug. Public for
    /// services that run statements of their own on Stockroom's pool.
    public static func mapping(_ error: any Error) -> any Error {
        guard let error = error as? PostgresError else { return error }
        switch error.code {
        case .connection, .poolExhausted, .closed, .readOnlyServer:
            return StockroomError(.unavailable, "the database is unavailable, try again")
        case .timeout:
            return StockroomError(.timeout, "the database did not answer in time")
        case .commitOutcomeUnknown:
            return StockroomError(.inDoubt, "the connection to the database broke during the commit and whether it committed is not known yet; retry with the same idempotency key, or read before writing again")
        default:
            break
        }
        if let field = constraintFields[error.constraint ?? ""] {
            let code: Code = error.sqlState == .uniqueViolation ? .conflict : .invalidInput
            let message = code == .conflict ? "\(field.name) already exists" : "\(field.name): \(field.rule)"
            return StockroomError(code, message, field: field.name)
        }
        switch error.sqlState {
        case .serializationFailure?, .deadlockDetected?, .tooManyConnections?, .adminShutdown?, .cannotConnectNow?, .crashShutdown?:
            return StockroomError(.unavailable, "the database is busy, try again")
        case .queryCanceled?:
            return StockroomError(.timeout, "the database did not answer in time")
        case .lockNotAvailable?:
            return StockroomError(.timeout, "the data is locked by another transaction; try again")
        case .idleInTransactionSessionTimeout?:
            return StockroomError(.unavailable, "the database is unavailable, try again")
        case .numericValueOutOfRange?:
            return StockroomError(.invalidInput, "a number is out of range")
        default:
            return error
        }
    }

    /// Constraint names of the schema in migrations/, and the field each one judges.
    private static let constraintFields: [String: (name: String, rule: String)] = [
        "users_email_unique": ("email", "already registered"),
        "users_email_length": ("email", "must be 3 to 254 characters"),
        "users_name_length": ("name", "must be 1 to 200 characters"),
        "products_sku_unique": ("sku", "already exists"),
        "products_sku_format": ("sku", "must be 1 to 64 letters, digits, '.', '_' or '-'"),
        "products_name_length": ("name", "must be 1 to 200 characters"),
        "products_description_length": ("description", "must be at most 10000 characters"),
        "products_price_nonnegative": ("price_cents", "must not be negative"),
        "products_currency_format": ("currency", "must be an ISO 4217 code"),
        "products_stock_nonnegative": ("stock", "must not be negative"),
        "orders_idempotency_key_length": ("idempotency_key", "must be 1 to 200 characters"),
    ]
}
