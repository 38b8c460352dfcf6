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
    typealias Immediate = @Sendable (CommandDispatcher, inout Session, Arguments) throws -> Reply
    typealias Lookup = @Sendable (Arguments) throws -> ProductLookupBatcher.Key

    /// How a command runs, which decides where the connection handler runs it.
    enum Body: Sendable {
        /// Answers at once from what the server knows: runs on the event loop.
        case immediate(Immediate)
        /// A product lookup, read-only: joins the next batched statement without waiting
        /// for the commands before it (their replies still go out first).
        case lookup(Lookup)
        /// Anything else: runs as a task, after the commands before it have finished and
        /// before any after it starts.
        case deferred(Run)
    }

    let name: String
    /// Redis's convention, counting the name: n means exactly n, -n at least n.
    let arity: Int
    let access: Access
    let body: Body

    init(name: String, arity: Int, access: Access, run: @escaping Run) {
        self.init(name: name, arity: arity, access: access, body: .deferred(run))
    }

    init(name: String, arity: Int, access: Access, immediate: @escaping Immediate) {
        self.init(name: name, arity: arity, access: access, body: .immediate(immediate))
    }

    init(name: String, arity: Int, access: Access, body: Body) {
        self.name = name
        self.arity = arity
        self.access = access
        self.body = body
    }

    func accepts(argumentCount: Int) -> Bool {
        let total = argumentCount + 1
        return arity >= 0 ? total == arity : total >= -arity
    }
}
