import Foundation
import Testing

/// aiosmtpd (scripts/smtp-sink.py, from .build/venv: `make pyclients`) on a free
/// loopback port, saving what it receives into a folder of its own; stopped (SIGTERM to
/// its pid) and the folder removed when `body` returns.
struct SMTPSink {
    let port: Int
    let folder: URL

    struct Options {
        var starttls = false
        var implicitTLS = false
        /// "user:password" for AUTH PLAIN.
        var auth: String?
        var authWithoutTLS = false
        var rejectRecipients: Int?
    }

    /// A throwaway CA, and a certificate it signed for localhost and 127.0.0.1.
    typealias Certificates = TestCertificates

    static func certificates(in folder: URL) async throws -> Certificates {
        try await TestCertificates.make(in: folder)
    }

    static func with<T>(
        _ options: Options = Options(), isolation actor: isolated (any Actor)? = #isolation,
        _ body: (SMTPSink, Certificates) async throws -> T
    ) async throws -> T {
        let python = TestServer.root.appendingPathComponent(".build/venv/bin/python").path
        try #require(FileManager.default.isExecutableFile(atPath: python), "aiosmtpd is missing: run `make pyclients` (it creates .build/venv)")
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("smtp-sink-" + UUID().uuidString)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let certificates = try await certificates(in: folder)

        var arguments = [TestServer.root.appendingPathComponent("scripts/smtp-sink.py").path, "--dir", folder.path]
        if options.starttls { arguments += ["--starttls", certificates.certificate, certificates.key] }
        if options.implicitTLS { arguments += ["--tls", certificates.certificate, certificates.key] }
        if let auth = options.auth { arguments += ["--auth", auth] }
        if options.authWithoutTLS { arguments.append("--auth-without-tls") }
        if let code = options.rejectRecipients { arguments += ["--reject-rcpt", "\(code)"] }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = arguments
        let log = folder.appendingPathComponent("sink.log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let logHandle = try FileHandle(forWritingTo: log)
        process.standardOutput = logHandle
        process.standardError = logHandle
        try process.run()
        // Its own SIGTERM handler stops it; SIGKILL (by its pid) if that did not.
        func stop() async {
            process.terminate()
            for _ in 0..<100 where process.isRunning { try? await Task.sleep(for: .milliseconds(10)) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            try? logHandle.close()
        }
        do {
            // It writes its port once it accepts connections.
            let portFile = folder.appendingPathComponent("port")
            let deadline = ContinuousClock.now + .seconds(20)
            var port: Int?
            while port == nil, ContinuousClock.now < deadline, process.isRunning {
                port = (try? String(contentsOf: portFile, encoding: .utf8)).flatMap { Int($0) }
                if port == nil { try await Task.sleep(for: .milliseconds(20)) }
            }
            let started = try #require(port, "the SMTP sink did not start: \((try? String(contentsOf: log, encoding: .utf8)) ?? "")")
            let value = try await body(SMTPSink(port: started, folder: folder), certificates)
            await stop()
            return value
        } catch {
            await stop()
            throw error
        }
    }

    /// What it received, in order: each message's envelope, `tls`, `auth_login`, raw
    /// `data`, and the fields Python's email module parsed (`to_name`, `subject`, …).
    var messages: [[String: Any]] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        let files = names.filter { $0.hasPrefix("msg-") && $0.hasSuffix(".json") }
            .sorted { Int($0.dropFirst(4).dropLast(5)) ?? 0 < Int($1.dropFirst(4).dropLast(5)) ?? 0 }
        return files.compactMap { name in
            (try? Data(contentsOf: folder.appendingPathComponent(name))).flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] }
        }
    }
}
