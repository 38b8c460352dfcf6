/// Who may run a command.
enum Access: Sendable {
    /// Anyone, logged in or not.
    case anyone
    /// A logged-in user.
    case user
    /// A logged-in admin.
    case admin
}

/// One command of the protocol.
struct Command: Sendable {
    typealias Run = @Sendable (CommandDispatcher, inout Session, Arguments) async throws -> Reply

    let name: String
    /// Redis's convention, counting the name: n means exactly n, -n at least n.
    let arity: Int
    let access: Access
    let run: Run

    func accepts(argumentCount: Int) -> Bool {
        let total = argumentCount + 1
        return arity >= 0 ? total == arity : total >= -arity
    }
}
