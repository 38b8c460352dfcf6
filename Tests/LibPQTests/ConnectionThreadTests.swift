@testable import LibPQ
import Foundation
import Synchronization
import Testing

@Suite("The connection's thread as a task executor")
struct ConnectionThreadTests {
    /// A program that exits right after closing its pool must not race OpenSSL's exit
    /// handler (see `OpenSSLExitHandler`). What can be checked in-process: once a
    /// connection opened, OpenSSL was found and took the request.
    @Test func openSSLsExitHandlerIsOffOnceAConnectionOpened() async throws {
        try await TestDatabase.withSchema { (connection: PostgresConnection) async throws -> Void in
            #expect(try await connection.query("SELECT 1").scalar(Int32.self) == 1)
            #expect(OpenSSLExitHandler.disabled)
        }
    }

    @Test func jobsOfATaskThatPrefersItRunOnIt() async {
        let thread = ConnectionThread(name: "test")
        defer { thread.stop() }
        #expect(!thread.isCurrent)
        let onThread = await withTaskExecutorPreference(thread) {
            await Task.yield()  // a suspension: the job that resumes must come back here
            return thread.isCurrent
        }
        #expect(onThread)
        // A child task inherits the preference.
        let child = await withTaskExecutorPreference(thread) {
            await withTaskGroup(of: Bool.self) { group in
                group.addTask { thread.isCurrent }
                return await group.next()!
            }
        }
        #expect(child)
    }

    /// What `top -H`, `ps -L` and perf show for the thread.
    @Test func theKernelKnowsTheThreadByItsName() async throws {
        let thread = ConnectionThread(name: "LibPQ.named")
        defer { thread.stop() }
        let name = await withCheckedContinuation { (continuation: CheckedContinuation<String?, Never>) in
            thread.execute { continuation.resume(returning: try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8)) }
        }
        #expect(name == "LibPQ.named\n")
    }

    @Test func closuresRunInOrder() async {
        let thread = ConnectionThread(name: "test")
        defer { thread.stop() }
        let seen = Mutex<[Int]>([])
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            for n in 0..<100 {
                thread.execute {
                    precondition(thread.isCurrent)
                    seen.withLock { $0.append(n) }
                    if n == 99 { continuation.resume() }
                }
            }
        }
        #expect(seen.withLock { $0 } == Array(0..<100))
    }

    @Test func workArrivingAfterItStoppedStillRuns() async {
        let thread = ConnectionThread(name: "test")
        thread.stop()
        // Once the thread has exited, a task preferring it runs on the global executor,
        // and closures on Dispatch: neither is lost.
        try? await Task.sleep(for: .milliseconds(50))
        let value = await withTaskExecutorPreference(thread) {
            await Task.yield()
            return thread.isCurrent ? -1 : 42
        }
        #expect(value == 42)
        let ran = await withCheckedContinuation { continuation in
            thread.execute { continuation.resume(returning: true) }
        }
        #expect(ran)
    }

    @Test func joinReturnsOnceTheThreadHasExited() async {
        let thread = ConnectionThread(name: "test")
        let probe = ThreadExitProbe()
        await withCheckedContinuation { continuation in
            thread.execute {
                probe.attachToCurrentThread()
                continuation.resume()
            }
        }
        // Two at once, and one after: each returns, after the thread's destructors ran.
        await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<2 { group.addTask { await thread.join(); return probe.hasRun } }
            for await seen in group { #expect(seen) }
        }
        await thread.join()
        #expect(probe.hasRun)
    }
}

@Suite("Closing waits for the connection's thread")
struct ThreadExitTests {
    /// OpenSSL frees a thread's state in a thread-local destructor; a program that exits
    /// while that runs can crash in it. So `close()` returns only once the thread is gone.
    @Test func aClosedConnectionsThreadIsGone() async throws {
        let connection = try await PostgresConnection.connect(TestDatabase.url, logger: TestDatabase.logger)
        let probe = ThreadExitProbe()
        await withCheckedContinuation { continuation in
            connection.thread.execute {
                probe.attachToCurrentThread()
                continuation.resume()
            }
        }
        #expect(try await connection.query("SELECT 1").scalar(Int32.self) == 1)
        await connection.close()
        #expect(probe.hasRun)
        await connection.close()  // again: nothing left to wait for
    }

    /// The thread exits while the task waits for it, and the task resumes elsewhere.
    @Test func closingFromATaskOnTheConnectionsOwnThreadDoesNotDeadlock() async throws {
        let connection = try await PostgresConnection.connect(TestDatabase.url, logger: TestDatabase.logger)
        let probe = ThreadExitProbe()
        await withTaskExecutorPreference(connection.executor) {
            #expect(connection.thread.isCurrent)
            probe.attachToCurrentThread()
            await connection.close()
            #expect(!connection.thread.isCurrent)
        }
        #expect(probe.hasRun)
    }

    @Test func aClosedPoolLeavesNoConnectionThreadBehind() async throws {
        let pool = PostgresPool(configuration: .init(connection: .init(TestDatabase.url), maxConnections: 3))
        let probes = (0..<3).map { _ in ThreadExitProbe() }
        final class Count: Sendable { let value = Atomic<Int>(0) }
        let leased = Count()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for probe in probes {
                group.addTask {
                    try await pool.withConnection { connection in
                        precondition(connection.thread.isCurrent)
                        probe.attachToCurrentThread()
                        // Held until all three are out, so each probe marks a thread of its own.
                        leased.value.add(1, ordering: .relaxed)
                        while leased.value.load(ordering: .relaxed) < 3 { try await Task.sleep(for: .milliseconds(5)) }
                    }
                }
            }
            try await group.waitForAll()
        }
        await pool.close()
        #expect(probes.allSatisfy { $0.hasRun })
    }
}

/// A thread-local value whose destructor takes 100 ms and then records that it ran: the
/// last thing a thread does as it exits, as OpenSSL's cleanup of its per-thread state is.
/// Whoever sees `hasRun` true right after waiting for a thread did wait for its exit.
final class ThreadExitProbe: Sendable {
    private let ran = Atomic<Bool>(false)

    var hasRun: Bool { ran.load(ordering: .acquiring) }

    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        let created = pthread_key_create(&key) { value in
            usleep(100_000)
            Unmanaged<ThreadExitProbe>.fromOpaque(value!).takeRetainedValue().ran.store(true, ordering: .releasing)
        }
        precondition(created == 0, "pthread_key_create failed")
        return key
    }()

    /// Marks the calling thread.
    func attachToCurrentThread() {
        pthread_setspecific(Self.key, Unmanaged.passRetained(self).toOpaque())
    }
}

@Suite("Statements inline on the connection's thread")
struct InlineStatementTests {
    @Test func aPooledBodyRunsItsStatementsOnTheConnectionsThread() async throws {
        let pool = PostgresPool(configuration: .init(connection: .init(TestDatabase.url), maxConnections: 1))
        try await pool.withConnection { connection throws in
            #expect(connection.thread.isCurrent)
            let one = try await connection.query("SELECT 1").scalar(Int.self)
            #expect(one == 1)
            #expect(connection.thread.isCurrent, "no thread switch for the statement")
        }
        await pool.close()
    }

    @Test func inlineStatementsStayCancellable() async throws {
        let pool = PostgresPool(configuration: .init(connection: .init(TestDatabase.url), maxConnections: 1))
        let clock = ContinuousClock()
        let start = clock.now
        let task = Task {
            try await pool.withConnection { connection in
                precondition(connection.thread.isCurrent)
                return try await connection.query("SELECT pg_sleep(30)")
            }
        }
        try await Task.sleep(for: .milliseconds(300))
        task.cancel()
        await #expect(throws: CancellationError.self) { try await task.value }
        let error = await #expect(throws: PostgresError.self) {
            try await pool.withConnection { try await $0.query("SELECT pg_sleep(30)", timeout: .milliseconds(150)) }
        }
        #expect(error?.code == .timeout)
        // Far from pg_sleep's 30 s, with room for a loaded machine.
        #expect(clock.now - start < .seconds(20))
        #expect(try await pool.query("SELECT 2").scalar(Int.self) == 2)
        await pool.close()
    }

    @Test func otherTasksStatementsOnTheSameConnectionWaitTheirTurn() async throws {
        let pool = PostgresPool(configuration: .init(connection: .init(TestDatabase.url), maxConnections: 1))
        let values = try await pool.withConnection { connection in
            // Tasks elsewhere share this connection: theirs are queued to its thread and
            // run between ours, never at the same time.
            try await withThrowingTaskGroup(of: Int.self) { group in
                for n in 0..<20 {
                    group.addTask(executorPreference: globalConcurrentExecutor) {
                        try await connection.query("SELECT \(n) FROM pg_sleep(0.001)").scalar(Int.self)
                    }
                }
                for n in 20..<40 {
                    _ = try await connection.query("SELECT \(n)").scalar(Int.self)
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
        }
        #expect(values.sorted() == Array(0..<20))
        await pool.close()
    }
}
