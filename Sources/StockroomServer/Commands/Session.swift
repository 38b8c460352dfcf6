import Stockroom

/// What one connection knows about itself: who is logged in, which protocol version it
/// speaks, its name. Owned by the connection's task; never shared.
struct Session: Sendable {
    let id: Int
    var protocolVersion = 2
    var name: String?
    var user: User?
    /// The session token of this connection's login, revoked by SESSION.LOGOUT.
    var token: String?
    var failedLogins = 0
    /// Set by QUIT and by too many failed logins: close after this reply.
    var closeAfterReply = false

    init(id: Int) { self.id = id }

    var principal: Principal? { user.map(Principal.init) }
}
