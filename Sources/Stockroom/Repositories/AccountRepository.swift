import Foundation
public import LibPQ
import Synchronization

/// Users and their sessions: registration, login, authentication by token, logout.
public struct AccountRepository: Sendable {
    let pool: PostgresPool
    let hasher: PasswordHasher
    /// How long a session lasts after login.
    public var sessionLifetime: Duration
    /// Sessions one user may hold at once; a login beyond it ends the oldest. Without a
    /// bound, anyone with a password could fill the table one login at a time.
    public var maxSessionsPerUser = 100
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
                SELECT \(unsafeRaw: Self.userColumns), password_hash FROM users
                WHERE lower(email) = lower(\(Email.normalized(email))) AND deactivated_at IS NULL
                """).first(as: Candidate.self)
        }
        let acceptable = password.utf8.count <= 4096
        let hash: String
        if let candidate { hash = candidate.passwordHash } else { hash = try await dummyHash.value(hasher) }
        let verified = try await hasher.verify(acceptable ? password : "", against: hash)
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
        // The new session, and the oldest beyond the cap gone, in one statement. (The
        // DELETE's snapshot does not see the new row: it keeps the newest cap − 1 others.)
        let keep = max(0, maxSessionsPerUser - 1)
        let expiresAt = try await mappingErrors {
            try await pool.query("""
                WITH created AS (
                    INSERT INTO sessions (token_hash, user_id, expires_at)
                    VALUES (\(token.hash), \(user.id), now() + make_interval(secs => \(seconds)))
                    RETURNING expires_at
                ), oldest AS (
                    DELETE FROM sessions WHERE id IN (
                        SELECT id FROM sessions WHERE user_id = \(user.id)
                        ORDER BY id DESC OFFSET \(keep)
                    )
                )
                SELECT expires_at FROM created
                """)[0][0, as: Date.self]
        }
        return LoginResult(token: token.text, expiresAt: expiresAt, user: user)
    }

    /// The user a session token belongs to; expired, revoked and unknown tokens
    /// authenticate nobody.
    public func authenticate(token: String) async throws -> User {
        try await session(token: token).user
    }

    /// The session a token opens, with its user as they are now (a role changed since
    /// login shows). What a server holding a login on a live connection checks again
    /// from time to time: revoked, expired and deactivated all fail.
    public func session(token: String) async throws -> ActiveSession {
        struct Row: Decodable {
            var id: Int64, email: String, name: String, role: Role, createdAt: Date, updatedAt: Date, expiresAt: Date
        }
        guard let hash = SessionToken.hash(of: token) else { throw StockroomError(.unauthenticated, "invalid or expired session") }
        let row = try await mappingErrors {
            try await pool.query("""
                SELECT u.id, u.email, u.name, u.role, u.created_at, u.updated_at, s.expires_at
                FROM sessions s JOIN users u ON u.id = s.user_id
                WHERE s.token_hash = \(hash) AND s.revoked_at IS NULL AND s.expires_at > now()
                  AND u.deactivated_at IS NULL
                """).first(as: Row.self)
        }
        guard let row else { throw StockroomError(.unauthenticated, "invalid or expired session") }
        let user = User(id: row.id, email: row.email, name: row.name, role: row.role, createdAt: row.createdAt, updatedAt: row.updatedAt)
        return ActiveSession(user: user, expiresAt: row.expiresAt)
    }

    // MARK: - Failed logins, shared by every instance (migration 0011)

    /// Counts a login attempt for `email` as a failure from now on, across every instance,
    /// and returns how many failures it had before this one; a count idle for longer than
    /// `forgetAfter` starts over. One statement, so parallel attempts count too.
    public func countLoginAttempt(email: String, forgetAfter: Duration) async throws -> Int {
        let seconds = Double(forgetAfter.components.seconds)
        return Int(try await mappingErrors {
            try await pool.write("""
                INSERT INTO login_failures AS f (email_hash, failures) VALUES (sha256(convert_to(\(Email.normalized(email)), 'UTF8')), 1)
                ON CONFLICT (email_hash) DO UPDATE SET
                    failures = CASE WHEN f.last_failed_at < now() - make_interval(secs => \(seconds)) THEN 1 ELSE f.failures + 1 END,
                    last_failed_at = now()
                RETURNING failures - 1
                """)[0][0, as: Int32.self]
        })
    }

    /// A login for `email` succeeded: its failures are forgotten everywhere.
    public func clearLoginFailures(email: String) async throws {
        _ = try await mappingErrors {
            try await pool.write("DELETE FROM login_failures WHERE email_hash = sha256(convert_to(\(Email.normalized(email)), 'UTF8'))")
        }
    }

    /// Deletes failure counts idle for longer than `idle`; returns how many.
    @discardableResult
    public func pruneLoginFailures(idle: Duration) async throws -> Int {
        let seconds = Double(idle.components.seconds)
        return try await mappingErrors {
            try await pool.write("DELETE FROM login_failures WHERE last_failed_at < now() - make_interval(secs => \(seconds))").affectedRows
        }
    }

    /// Deletes sessions that expired or were revoked more than `grace` ago, at most
    /// `limit` of them (so a backlog is worked off in short statements); returns how
    /// many. A server calls this periodically.
    @discardableResult
    public func purgeSessions(grace: Duration = .seconds(24 * 3600), limit: Int = 10_000) async throws -> Int {
        let seconds = Double(grace.components.seconds)
        return try await mappingErrors {
            try await pool.query("""
                DELETE FROM sessions WHERE id IN (
                    SELECT id FROM sessions
                    WHERE expires_at < now() - make_interval(secs => \(seconds))
                    UNION ALL
                    SELECT id FROM sessions
                    WHERE revoked_at < now() - make_interval(secs => \(seconds))
                    LIMIT \(limit)
                )
                """).affectedRows
        }
    }

    /// Makes a user an admin or a customer. Sessions stay; their next check sees the
    /// new role.
    public func setRole(userID: Int64, to role: Role, as principal: Principal) async throws -> User {
        guard principal.isAdmin else { throw StockroomError(.permissionDenied, "only admins can change roles") }
        let id = try Validate.id(userID)
        let user = try await mappingErrors {
            try await pool.query("""
                UPDATE users SET role = \(role.rawValue), updated_at = now() WHERE id = \(id) AND deactivated_at IS NULL
                RETURNING \(unsafeRaw: Self.userColumns)
                """).first(as: User.self)
        }
        guard let user else { throw StockroomError.notFound("user \(id)") }
        return user
    }

    /// Deactivates a user: no more logins, and every session of theirs ends. Their
    /// orders stay theirs. Deactivating a deactivated user is not an error.
    public func deactivate(userID: Int64, as principal: Principal) async throws {
        guard principal.isAdmin else { throw StockroomError(.permissionDenied, "only admins can deactivate users") }
        let id = try Validate.id(userID)
        guard id != principal.userID else { throw StockroomError.invalid("id", "admins cannot deactivate themselves") }
        let found = try await mappingErrors {
            try await pool.query("""
                WITH user_row AS (
                    UPDATE users SET deactivated_at = coalesce(deactivated_at, now()), updated_at = now() WHERE id = \(id)
                    RETURNING id
                ), ended AS (
                    UPDATE sessions SET revoked_at = now() WHERE user_id = \(id) AND revoked_at IS NULL
                )
                SELECT count(*) FROM user_row
                """)[0][0, as: Int64.self]
        }
        guard found == 1 else { throw StockroomError.notFound("user \(id)") }
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
