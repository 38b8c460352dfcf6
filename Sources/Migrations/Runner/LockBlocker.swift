import Foundation

/// A session that holds (or waits ahead for) a lock a migration's statement waits for, as
/// `pg_blocking_pids` and `pg_stat_activity` name it. Never its query text: another
/// session's SQL may carry passwords or personal data, and this ends up in logs.
public struct LockBlocker: Sendable, Codable, Equatable, CustomStringConvertible {
    /// Its server process, for `pg_terminate_backend` or a look in `pg_stat_activity`.
    public var pid: Int32
    /// Its `application_name`, "-" when it set none.
    public var application: String
    /// Its role, when this role may see it.
    public var user: String?
    /// `active`, `idle in transaction`…; nil when this role may not see it.
    public var state: String?
    /// How long its transaction has been open, in seconds.
    public var transactionSeconds: Double?
    /// How long since its current (or, when idle, its last) statement started, in seconds.
    public var querySeconds: Double?

    public init(pid: Int32, application: String, user: String? = nil, state: String? = nil, transactionSeconds: Double? = nil, querySeconds: Double? = nil) {
        self.pid = pid
        self.application = application
        self.user = user
        self.state = state
        self.transactionSeconds = transactionSeconds
        self.querySeconds = querySeconds
    }

    /// `pid 4242 (application "billing", role app, idle in transaction, transaction open 3.2 s)`
    public var description: String {
        var parts = ["application \"\(application)\""]
        if let user { parts.append("role \(user)") }
        if let state { parts.append(state) }
        if let transactionSeconds { parts.append("transaction open \(Self.seconds(transactionSeconds))") }
        if let querySeconds {
            parts.append(state == "active" ? "statement running \(Self.seconds(querySeconds))" : "last statement \(Self.seconds(querySeconds)) ago")
        }
        return "pid \(pid) (\(parts.joined(separator: ", ")))"
    }

    private static func seconds(_ value: Double) -> String {
        value < 10 ? String(format: "%.1f s", value) : "\(Int(value.rounded())) s"
    }
}

extension [LockBlocker] {
    /// "pid 1 (…); pid 2 (…)", for messages.
    var listed: String { map(\.description).joined(separator: "; ") }
}
