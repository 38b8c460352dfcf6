import Foundation
public import LibPQ
import Synchronization

/// Users and their sessions: registration, login, authentication by token, logout.
public struct AccountRepository: Sendable {
    let pool: PostgresPool
    let hasher: PasswordHasher
    /// How long a session lasts after login.
    public var sessionLifetime: Duration
    private let dummyHash: DummyHash

    public init(pool: PostgresPool, hasher: PasswordHasher = .interactive, sessionLifetime: Duration = .seconds(7 * 24 * 3600)) {
        self.pool = pool
        self.hasher = hasher
        self.sessionLifetime = sessionLifetime
        self.dummyHash = DummyHash()
    }

    static let userColumns = "id, email, name, role, created_at, updated_at"

    /// Registers a customer (or, from the command line, an admin).
    public func register(email: String, name: String, password: String, role: Role = .customer) async throws -> User {
        let email = try Validate.email(email)
        let name = try Validate.name(name)
        try Validate.password(password)
        let hash = try await hasher.hash(password)
        return try await mappingErrors {
            let rows = try await pool.query("""
                INSERT INTO users (email, name, role, password_hash) VALUES (\(email), \(name), \(role.rawValue), \(hash))
                RETURNING \(unsafeRaw: Self.userColumns)
                """)
            return try rows.first(as: User.self)!
        }
    }

    /// Logs in with email and password. Takes as long for an unknown email as for a
    /// wrong password (a hash is verified either way) and says only "wrong email or
    /// password".
    public func login(email: String, password: String) async throws -> LoginResult {
        struct Candidate: Decodable {
            var id: Int64, email: String, name: String, role: Role, createdAt: Date, updatedAt: Date, passwordHash: String
        }
        let candidate = try await mappingErrors {
            try await pool.query("""
                SELECT \(unsafeRaw: Self.userColumns), password_hash FROM users WHERE lower(email) = lower(\(email.trimmingSpaces()))
                """).first(as: Candidate.self)
        }
        let acceptable = password.utf8.count <= 4096
        let hash: String
        if let candidate { hash = candidate.passwordHash } else { hash = try await dummyHash.value(hasher) }
        let verified = await hasher.verify(acceptable ? password : "", against: hash)
        guard verified, acceptable, let candidate else { throw StockroomError.wrongCredentials }
        let user = User(id: candidate.id, email: candidate.email, name: candidate.name, role: candidate.role, createdAt: candidate.createdAt, updatedAt: candidate.updatedAt)
        if hasher.needsRehash(hash) {
            // Parameters were raised since this hash was made: upgrade it now that we
            // know the password.
            let upgraded = try await hasher.hash(password)
            _ = try await mappingErrors { try await pool.query("UPDATE users SET password_hash = \(upgraded) WHERE id = \(user.id)") }
        }
        let token = SessionToken.generate()
        let seconds = Double(sessionLifetime.components.seconds)
        let expiresAt = try await mappingErrors {
            try await pool.query("""
                INSERT INTO sessions (token_hash, user_id, expires_at)
                VALUES (\(token.hash), \(user.id), now() + make_interval(secs => \(seconds)))
                RETURNING expires_at
                """)[0][0, as: Date.self]
        }
        return LoginResult(token: token.text, expiresAt: expiresAt, user: user)
    }

    /// The user a session token belongs to; expired, revoked and unknown tokens
    /// authenticate nobody.
    public func authenticate(token: String) async throws -> User {
        guard let hash = SessionToken.hash(of: token) else { throw StockroomError(.unauthenticated, "invalid or expired session") }
        let user = try await mappingErrors {
            try await pool.query("""
                SELECT u.id, u.email, u.name, u.role, u.created_at, u.updated_at
                FROM sessions s JOIN users u ON u.id = s.user_id
                WHERE s.token_hash = \(hash) AND s.revoked_at IS NULL AND s.expires_at > now()
                """).first(as: User.self)
        }
        guard let user else { throw StockroomError(.unauthenticated, "invalid or expired session") }
        return user
    }

    /// Revokes one session. Revoking an unknown or already revoked token is not an error.
    public func logout(token: String) async throws {
        guard let hash = SessionToken.hash(of: token) else { return }
        _ = try await mappingErrors {
            try await pool.query("UPDATE sessions SET revoked_at = now() WHERE token_hash = \(hash) AND revoked_at IS NULL")
        }
    }

    /// Revokes every session of a user (after a password change, or a compromise).
    /// Returns how many were active.
    @discardableResult
    public func revokeAllSessions(userID: Int64) async throws -> Int {
        try await mappingErrors {
            try await pool.query("UPDATE sessions SET revoked_at = now() WHERE user_id = \(userID) AND revoked_at IS NULL").affectedRows
        }
    }

    /// A user, for themself or an admin.
    public func user(id: Int64, as principal: Principal) async throws -> User {
        let id = try Validate.id(id)
        guard principal.isAdmin || principal.userID == id else {
            throw StockroomError(.permissionDenied, "only admins can read other users")
        }
        let user = try await mappingErrors {
            try await pool.query("SELECT \(unsafeRaw: Self.userColumns) FROM users WHERE id = \(id)").first(as: User.self)
        }
        guard let user else { throw StockroomError.notFound("user \(id)") }
        return user
    }

    /// Users by id, for admins, `limit` at a time after `after`.
    public func users(after: Int64 = 0, limit: Int = 50, as principal: Principal) async throws -> [User] {
        guard principal.isAdmin else { throw StockroomError(.permissionDenied, "only admins can list users") }
        let limit = try Validate.limit(limit)
        return try await mappingErrors {
            try await pool.query("SELECT \(unsafeRaw: Self.userColumns) FROM users WHERE id > \(after) ORDER BY id LIMIT \(limit)")
                .decode(User.self)
        }
    }
}

/// A hash of a random password made with the same parameters as real ones, verified
/// when the email is unknown so that the answer takes as long either way.
private final class DummyHash: Sendable {
    private let hash = Mutex<String?>(nil)

    func value(_ hasher: PasswordHasher) async throws -> String {
        if let existing = hash.withLock({ $0 }) { return existing }
        let made = try await hasher.hash(Sodium.base64URL(Sodium.randomBytes(24)))
        return hash.withLock { stored in
            if stored == nil { stored = made }
            return stored!
        }
    }
}
