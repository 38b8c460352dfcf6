import NIOCore

/// An event loop as a `TaskExecutor`, so that a command's task runs on the loop of the
/// connection that sent it.
///
/// A command that reaches the database hops to the connection's thread for the statement
/// and back. Started on Swift's global executor it would hop four times (event loop →
/// global → connection thread → global → event loop) and wake a thread at each; started
/// here it hops twice, and its reply is written without another hand-over. Slow work
/// never runs here: statements run on their connection's thread and password hashing on
/// threads of its own, so what a command computes on the loop is parsing its arguments
/// and encoding its reply.
final class EventLoopExecutor: TaskExecutor, @unchecked Sendable {
    let eventLoop: any EventLoop

    init(_ eventLoop: any EventLoop) { self.eventLoop = eventLoop }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
