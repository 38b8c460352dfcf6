import Foundation
import Testing

/// A throwaway CA made with the `openssl` command, a server certificate it signed for
/// localhost and 127.0.0.1, and a client certificate it signed, as PEM files in `folder`.
/// Two calls in two folders make two CAs that trust nothing of each other's.
struct TestCertificates {
    let ca: String
    let certificate: String
    let key: String
    let clientCertificate: String
    let clientKey: String

    static func make(in folder: URL) async throws -> TestCertificates {
        let dir = folder.path
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        try await openssl(["req", "-x509"] + ec + ["-keyout", "\(dir)/ca.key", "-out", "\(dir)/ca.pem", "-days", "2", "-subj", "/CN=Stockroom test CA"])
        try await sign(name: "server", subject: "/CN=localhost", extensions: "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n", in: dir)
        try await sign(name: "client", subject: "/CN=stockroom test client", extensions: "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n", in: dir)
        return TestCertificates(
            ca: "\(dir)/ca.pem", certificate: "\(dir)/server.pem", key: "\(dir)/server.key",
            clientCertificate: "\(dir)/client.pem", clientKey: "\(dir)/client.key")
    }

    private static func sign(name: String, subject: String, extensions: String, in dir: String) async throws {
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        try await openssl(["req"] + ec + ["-keyout", "\(dir)/\(name).key", "-out", "\(dir)/\(name).csr", "-subj", subject])
        try extensions.write(toFile: "\(dir)/\(name).cnf", atomically: true, encoding: .utf8)
        try await openssl(["x509", "-req", "-in", "\(dir)/\(name).csr", "-CA", "\(dir)/ca.pem", "-CAkey", "\(dir)/ca.key", "-CAcreateserial",
                           "-out", "\(dir)/\(name).pem", "-days", "2", "-extfile", "\(dir)/\(name).cnf"])
    }

    private static func openssl(_ arguments: [String]) async throws {
        let result = try await run("openssl", arguments)
        try #require(result.status == 0, "openssl \(arguments.first ?? ""): \(result.output)")
    }

    /// A fresh folder for `body`'s certificates, removed afterwards.
    static func withFolder<T>(isolation actor: isolated (any Actor)? = #isolation, _ body: (URL) async throws -> T) async throws -> T {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("stockroom-tls-" + UUID().uuidString)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        return try await body(folder)
    }
}
