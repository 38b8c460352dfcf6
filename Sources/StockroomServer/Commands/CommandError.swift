import Stockroom

/// An error reply: a code from the protocol's fixed list, and a message for people.
struct CommandError: Error, Sendable {
    let code: String
    let message: String

    init(_ code: String, _ message: String) {
        self.code = code
        self.message = message
    }

    static func syntax(_ message: String = "syntax error") -> CommandError { CommandError("ERR", message) }
    static func wrongArity(_ name: String) -> CommandError { CommandError("ERR", "wrong number of arguments for '\(name.lowercased())' command") }
    static func invalid(_ field: String, _ message: String) -> CommandError { CommandError("INVALID", "\(field): \(message)") }
    static let noAuth = CommandError("NOAUTH", "Authentication required: AUTH <email> <password>, AUTH <token> or SESSION.LOGIN")
    static let noPerm = CommandError("NOPERM", "this command is for admins")
    static func notFound(_ what: String) -> CommandError { CommandError("NOTFOUND", "\(what) not found") }

    init(_ error: StockroomError) {
        self.init(error.code.rawValue, error.message)
    }
}
