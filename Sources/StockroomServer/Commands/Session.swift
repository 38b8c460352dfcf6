import Stockroom

/// What one connection knows about itself: who is logged in, which protocol version it
/// speaks, its name. Owned by the connection's task; never shared.
struct Session: Sendable {
    let id: Int
    /// The client's IP address, for limits per address; nil when unknown (a Unix socket).
    let address: String?
    var protocolVersion = 2
    var name: String?
    var user: User?
    /// The session token of this connection's login, revoked by SESSION.LOGOUT.
    var token: String?
    var failedLogins = 0
    /// Set by `CommandDispatcher.revalidate` for the request that asked for it, which
    /// then runs on the login as just confirmed, whatever the clocks say.
    var loginJustConfirmed = false
    /// Set by QUIT and by too many failed logins: close after this reply.
    var closeAfterReply = false
    /// Event types (SUBSCRIBE) and patterns (PSUBSCRIBE) this connection listens to.
    var channels: Set<String> = []
    var patterns: Set<String> = []
    /// When this connection's last command that may have written was answered: its
    /// product reads go to the standbys only once they have replayed past it.
    var lastWriteAt: ContinuousClock.Instant?

    init(id: Int, address: String? = nil) {
        self.id = id
        self.address = address
    }

    var principal: Principal? { user.map(Principal.init) }

    /// In subscribe mode: with RESP2, only (P)(UN)SUBSCRIBE, PING and QUIT are accepted.
    var isSubscribed: Bool { !channels.isEmpty || !patterns.isEmpty }
}
