public import Foundation

public enum Role: String, Codable, Sendable, CaseIterable {
    case customer
    case admin
}

/// A user as everyone but the password hasher sees it: no hash.
public struct User: Codable, Sendable, Equatable {
    public var id: Int64
    public var email: String
    public var name: String
    public var role: Role
    public var createdAt: Date
    public var updatedAt: Date
}

/// Who is asking: the logged-in user a repository checks permissions against.
public struct Principal: Sendable, Equatable {
    public var userID: Int64
    public var role: Role

    public init(userID: Int64, role: Role) {
        self.userID = userID
        self.role = role
    }

    public init(_ user: User) { self.init(userID: user.id, role: user.role) }

    public var isAdmin: Bool { role == .admin }
}

/// What a successful login returns: the token is shown once and never stored.
public struct LoginResult: Codable, Sendable {
    public var token: String
    public var expiresAt: Date
    public var user: User
}

/// A session that is valid now: whose it is, and until when.
public struct ActiveSession: Sendable, Equatable {
    public var user: User
    public var expiresAt: Date

    public init(user: User, expiresAt: Date) {
        self.user = user
        self.expiresAt = expiresAt
    }
}
