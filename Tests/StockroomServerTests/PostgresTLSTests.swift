import Foundation
import LibPQ
import Migrations
import NIOCore
import NIOPosix
import Testing

/// `sslmode=verify-full` to PostgreSQL, for real: a PostgreSQL cluster of the test's own
/// with `ssl = on` and a certificate from a CA made in the test. A throwaway cluster, not
/// the shared one the rest of the suite uses, so its TLS settings are the test's to choose
/// and nothing else is touched; it costs a few seconds of initdb.
@Suite("PostgreSQL over TLS")
struct PostgresTLSTests {
    @Test(.timeLimit(.minutes(3)))
    func verifyFullConnectsOnlyWithTheRightCAAndHostName() async throws {
        try await TestCertificates.withFolder { folder in
            let rightFolder = folder.appendingPathComponent("right"), wrongFolder = folder.appendingPathComponent("wrong")
            for sub in [rightFolder, wrongFolder] { try FileManager.default.createDirectory(at: sub, withIntermediateDirectories: true) }
            let right = try await TestCertificates.make(in: rightFolder)
            let wrong = try await TestCertificates.make(in: wrongFolder)
            try await ThrowawayPostgres.with(certificates: right, in: folder.appendingPathComponent("pg")) { port in
                // Over TLS, with the server's certificate checked against the CA and the host
                // name, as a URL — what DATABASE_URL would hold — and as keywords.
                for url in [
                    "postgresql://postgres@127.0.0.1:\(port)/postgres?sslmode=verify-full&sslrootcert=\(right.ca)",
                    "postgresql://postgres@localhost:\(port)/postgres?sslmode=verify-full&sslrootcert=\(right.ca)",
                    "host=127.0.0.1 port=\(port) user=postgres dbname=postgres sslmode=verify-full sslrootcert=\(right.ca)",
                ] {
                    let connection = try await PostgresConnection.connect(url)
                    let ssl = try await connection.query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").first?[0, as: Bool.self]
                    #expect(ssl == true, "\(url)")
                    await connection.close()
                }

                // Another CA's certificate is refused…
                let stranger = await #expect(throws: PostgresError.self) {
                    try await PostgresConnection.connect("postgresql://postgres@127.0.0.1:\(port)/postgres?sslmode=verify-full&sslrootcert=\(wrong.ca)")
                }
                #expect(stranger?.message.contains("certificate verify failed") == true, "\(stranger.map { "\($0)" } ?? "")")
                // …and so is the right certificate for another name (hostaddr connects to
                // 127.0.0.1; host is the name checked).
                let misnamed = await #expect(throws: PostgresError.self) {
                    try await PostgresConnection.connect("host=db.example.com hostaddr=127.0.0.1 port=\(port) user=postgres dbname=postgres sslmode=verify-full sslrootcert=\(right.ca)")
                }
                #expect(misnamed?.message.contains("does not match host name") == true, "\(misnamed.map { "\($0)" } ?? "")")
                // verify-ca checks the CA only and lets the wrong name through: why verify-full.
                let unnamed = try await PostgresConnection.connect("host=db.example.com hostaddr=127.0.0.1 port=\(port) user=postgres dbname=postgres sslmode=verify-ca sslrootcert=\(right.ca)")
                await unnamed.close()

                // The service's own path: migrations and the pool over verify-full.
                let url = "postgresql://postgres@127.0.0.1:\(port)/postgres?sslmode=verify-full&sslrootcert=\(right.ca)"
                try await Migrator(databaseURL: url, configuration: .init(directory: TestServer.root.appendingPathComponent("migrations"))).up()
                let pool = PostgresPool(configuration: .init(connection: .init(url), maxConnections: 2))
                let encrypted = try await pool.withConnection { connection in
                    try await connection.query("SELECT count(*)::int FROM pg_stat_ssl WHERE ssl AND pid = pg_backend_pid()").first?[0, as: Int.self]
                }
                #expect(encrypted == 1)
                await pool.close()
            }
        }
    }
}

/// A PostgreSQL cluster in `folder` on a free loopback port with `ssl = on` and the given
/// server certificate, trusting every local connection (the test checks TLS, not
/// passwords); stopped (immediate shutdown, by the postmaster's pid) when `body` returns.
/// Run as root, the server runs as `postgres`, as in scripts/db.sh. The postmaster runs in
/// the foreground as this process's child, not daemonized by pg_ctl: a daemon would
/// outlive a test process that is killed.
enum ThrowawayPostgres {
    static func with<T>(certificates: TestCertificates, in folder: URL, isolation actor: isolated (any Actor)? = #isolation, _ body: (Int) async throws -> T) async throws -> T {
        let bin = try #require(
            (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql"))?
                .compactMap { Int($0) }.sorted().last.map { "/usr/lib/postgresql/\($0)/bin" },
            "no PostgreSQL server binaries in /usr/lib/postgresql (make deps)")
        let asRoot = getuid() == 0
        func asServer(_ arguments: [String]) -> (String, [String]) {
            asRoot ? ("/usr/sbin/runuser", ["-u", "postgres", "--"] + arguments) : (arguments[0], Array(arguments.dropFirst()))
        }
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let dir = folder.path
        for (source, name) in [(certificates.certificate, "server.pem"), (certificates.key, "server.key")] {
            try FileManager.default.copyItem(atPath: source, toPath: "\(dir)/\(name)")
        }
        // PostgreSQL refuses a key that others can read.
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: "\(dir)/server.key")
        if asRoot {
            let chown = try await run("chown", ["-R", "postgres:", dir])
            try #require(chown.status == 0, "chown: \(chown.output)")
        }
        let (initdbProgram, initdbArguments) = asServer(["\(bin)/initdb", "-D", "\(dir)/data", "-U", "postgres", "-E", "UTF8", "--auth=trust", "--no-sync"])
        let initdb = try await run(initdbProgram, initdbArguments)
        try #require(initdb.status == 0, "initdb: \(initdb.output)")

        let log = URL(fileURLWithPath: "\(dir)/server.log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let logHandle = try FileHandle(forWritingTo: log)
        defer { try? logHandle.close() }
        var started: (port: Int, process: Process)?
        for _ in 0..<3 where started == nil {
            let port = try await freePort()
            let (program, arguments) = asServer([
                "\(bin)/postgres", "-D", "\(dir)/data", "-p", "\(port)", "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=\(dir)",
                "-c", "ssl=on", "-c", "ssl_cert_file=\(dir)/server.pem", "-c", "ssl_key_file=\(dir)/server.key",
                "-c", "fsync=off", "-c", "max_connections=20", "-c", "shared_buffers=16MB",
            ])
            let process = Process()
            process.executableURL = URL(fileURLWithPath: program)
            process.arguments = arguments
            process.standardOutput = logHandle
            process.standardError = logHandle
            try process.run()
            let deadline = ContinuousClock.now + .seconds(60)
            while ContinuousClock.now < deadline, process.isRunning {
                if let probe = try? await PostgresConnection.connect("host=127.0.0.1 port=\(port) user=postgres dbname=postgres sslmode=disable connect_timeout=2") {
                    await probe.close()
                    started = (port, process)
                    break
                }
                try await Task.sleep(for: .milliseconds(100))
            }
            if started == nil { await stop(dir: dir, process: process) }
        }
        let (port, process) = try #require(started, "PostgreSQL did not start: \((try? String(contentsOf: log, encoding: .utf8)) ?? "")")
        do {
            let value = try await body(port)
            await stop(dir: dir, process: process)
            return value
        } catch {
            await stop(dir: dir, process: process)
            throw error
        }
    }

    /// SIGQUIT to the postmaster (its pid from postmaster.pid): an immediate shutdown.
    private static func stop(dir: String, process: Process) async {
        let pidLine = (try? String(contentsOfFile: "\(dir)/data/postmaster.pid", encoding: .utf8))?.split(separator: "\n").first
        if let pid = pidLine.flatMap({ pid_t($0) }), pid > 1 {
            kill(pid, SIGQUIT)
            for _ in 0..<200 where kill(pid, 0) == 0 { try? await Task.sleep(for: .milliseconds(25)) }
        }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    /// A port nothing listens on right now (bound to port 0, then closed).
    static func freePort() async throws -> Int {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(channel.localAddress?.port)
        try await channel.close()
        return port
    }
}
