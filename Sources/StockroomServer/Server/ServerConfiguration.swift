import Foundation
public import StockroomDelivery

/// Everything `stockroom serve` can be told.
public struct ServerConfiguration: Sendable {
    /// Loopback unless told otherwise. Any other address needs `tls`, or
    /// `allowsPlaintextBeyondLoopback` (see `validateListening()`).
    public var host = "127.0.0.1"
    /// 7379: Redis's port with a 7 in front. 0 picks a free port (tests).
    public var port = 7379
    /// Connections beyond this get `-ERR max number of clients reached` and are closed.
    public var maxClients = 10_000
    /// The protocol over TLS (docs/OPERATIONS.md#tls); nil: plaintext.
    public var tls: TLS?
    /// Plaintext on an address other than loopback (`--insecure-no-tls`), for a service
    /// behind a proxy that terminates TLS on a private network.
    public var allowsPlaintextBeyondLoopback = false
    /// A TLS handshake not finished this long after the connection opened ends it: a
    /// client that connects and says nothing, or nothing TLS, holds its slot no longer.
    public var tlsHandshakeTimeout: Duration = .seconds(10)
    /// A connection with no request read and no reply written for this long is closed —
    /// never in the middle of a command. Counted from the last reply too: a command that
    /// ran nearly as long still leaves the client the whole timeout for its next.
    public var idleTimeout: Duration = .seconds(300)
    /// A client that does not read its replies: once the server holds `maxPendingReplyBytes`
    /// for it, it stops reading its requests; if it still has not read anything after
    /// `slowReaderTimeout`, it is closed.
    public var maxPendingReplyBytes = 1 << 20
    public var slowReaderTimeout: Duration = .seconds(30)
    /// How long a graceful shutdown waits for commands in progress.
    public var shutdownDeadline: Duration = .seconds(10)
    /// After this many failed logins a connection is closed.
    public var maxFailedLogins = 5
    /// Failed logins from one client address: past the burst, one more per `refill`;
    /// beyond that a login is refused at once. A service that logs in many people from
    /// one address (a web front end) needs a larger burst.
    public var failedLoginsPerAddress = RateLimit(burst: 60, refill: .seconds(1))
    /// Registrations from one client address.
    public var registrationsPerAddress = RateLimit(burst: 20, refill: .seconds(6))
    /// A connection's login is confirmed with the database at most this long before a
    /// command that uses it: the longest a logout, revocation, deactivation or role change
    /// made elsewhere takes to reach a live connection.
    public var sessionCheckInterval: Duration = .seconds(1)
    /// How often expired and revoked sessions are purged from the database (0: never).
    public var sessionPurgeInterval: Duration = .seconds(600)
    public var limits = ProtocolLimits()
    /// Events older than this are deleted (hourly); 0 keeps them for ever.
    public var eventRetention: Duration = .seconds(7 * 24 * 3600)
    /// Product lookups run as batches, at most this many statements at a time; lookups
    /// arriving meanwhile join the next batch. About the database's core count: more
    /// statements in flight buy parallelism, fewer buy bigger batches.
    public var maxLookupStatementsInFlight = max(1, min(4, ProcessInfo.processInfo.activeProcessorCount))

    /// Webhook delivery inside the service (docs/EVENTS.md#webhooks); nil leaves it to
    /// `stockroom worker` processes.
    public var webhooks: WebhookWorker.Configuration? = WebhookWorker.Configuration()
    /// The payment processor (docs/EVENTS.md#payments): ORDER.CHECKOUT, refunds, and
    /// `POST /webhooks/payments` when it has a webhook secret. nil: checkout is refused.
    public var payments: PaymentProcessor.Configuration?
    /// Refunds and e-mails inside the service; nil leaves them to `stockroom worker`.
    public var jobs: JobWorker.Configuration? = JobWorker.Configuration()
    /// How often the primary's WAL position and the standbys' replay position are read,
    /// with a read pool (`StockroomServer(stockroom:readPool:…)`): how long after a write a
    /// client's reads go back to the standbys, at best.
    public var replicaPollInterval: Duration = .milliseconds(10)
    /// Handlers of jobs besides refunds (which come with `payments`): the e-mails.
    public var jobHandlers: [any JobHandler] = []
    public init() {}
}

/// At most `burst` at once, then one more per `refill`.
public struct RateLimit: Sendable, Equatable {
    public var burst: Int
    public var refill: Duration

    public init(burst: Int, refill: Duration) {
        self.burst = burst
        self.refill = refill
    }
}
