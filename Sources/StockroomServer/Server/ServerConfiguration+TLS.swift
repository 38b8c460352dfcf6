import Foundation
import NIOSSL

extension ServerConfiguration {
    /// The protocol over TLS: the server's certificate chain and private key, as PEM files,
    /// and optionally a CA whose certificates clients must present.
    ///
    /// The files are read once, when the server starts (and by `validate()`, which
    /// `stockroom serve` calls before anything else); a new certificate takes a restart.
    public struct TLS: Sendable, Equatable {
        /// The server's certificate, then any intermediates, in PEM.
        public var certificateChainFile: String
        /// The private key of the first certificate, in PEM, unencrypted.
        public var privateKeyFile: String
        /// With a CA file, every client must present a certificate it signed (no host name
        /// is checked: clients have none); without, any client may connect and log in.
        public var clientCAFile: String?

        public init(certificateChainFile: String, privateKeyFile: String, clientCAFile: String? = nil) {
            self.certificateChainFile = certificateChainFile
            self.privateKeyFile = privateKeyFile
            self.clientCAFile = clientCAFile
        }

        /// Reads the files and checks that they make a usable server: throws a
        /// `TLSSetupError` saying which file is wrong, never what is in it.
        public func validate() throws(TLSSetupError) {
            _ = try makeContext()
        }

        func makeContext() throws(TLSSetupError) -> NIOSSLContext {
            let chain = try Self.certificates(certificateChainFile, role: "certificate")
            try Self.requireReadable(privateKeyFile, role: "private key")
            let key: NIOSSLPrivateKey
            do {
                key = try NIOSSLPrivateKey(file: privateKeyFile, format: .pem)
            } catch {
                // BoringSSL's reason names the PEM problem, never the key's bytes.
                throw TLSSetupError("the private key file \(privateKeyFile) holds no readable unencrypted PEM private key")
            }
            var configuration = TLSConfiguration.makeServerConfiguration(
                certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
            configuration.minimumTLSVersion = .tlsv12
            if let clientCAFile {
                let roots = try Self.certificates(clientCAFile, role: "client CA")
                configuration.trustRoots = .certificates(roots)
                // Clients have no host name to check; a certificate from this CA is the
                // whole requirement, and one must be presented.
                configuration.certificateVerification = .noHostnameVerification
            }
            do {
                return try NIOSSLContext(configuration: configuration)
            } catch NIOSSLError.failedToLoadPrivateKey {
                // Setting a key on a context that has a certificate checks they are a pair.
                throw TLSSetupError("the private key in \(privateKeyFile) does not match the certificate in \(certificateChainFile)")
            } catch {
                throw TLSSetupError("cannot set up TLS with \(certificateChainFile) and \(privateKeyFile): \(error)")
            }
        }

        private static func requireReadable(_ path: String, role: String) throws(TLSSetupError) {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw TLSSetupError("the \(role) file \(path) does not exist")
            }
            guard !isDirectory.boolValue, FileManager.default.isReadableFile(atPath: path) else {
                throw TLSSetupError("the \(role) file \(path) cannot be read")
            }
        }

        private static func certificates(_ path: String, role: String) throws(TLSSetupError) -> [NIOSSLCertificate] {
            try requireReadable(path, role: role)
            let certificates = try? NIOSSLCertificate.fromPEMFile(path)
            guard let certificates, !certificates.isEmpty else {
                throw TLSSetupError("the \(role) file \(path) holds no PEM certificate")
            }
            return certificates
        }
    }

    /// Whether the service may listen on `host` as configured: on loopback always; on any
    /// other address only with TLS, or when told `allowsPlaintextBeyondLoopback`
    /// (`--insecure-no-tls`): logins and session tokens would otherwise cross the network
    /// in the clear. Throws a `TLSSetupError` that says what to do.
    public func validateListening() throws(TLSSetupError) {
        if let tls {
            try tls.validate()
        } else if !allowsPlaintextBeyondLoopback, !Self.isLoopback(host) {
            throw TLSSetupError("refusing to listen on \(host) without TLS: passwords and session tokens would cross the network in the clear; give --tls-cert and --tls-key, listen on 127.0.0.1, or pass --insecure-no-tls (behind a TLS-terminating proxy on a private network)")
        }
    }

    /// 127.0.0.0/8, ::1 (also as ::ffff:127.x.x.x) and the name `localhost`. Any other
    /// name is not: what it resolves to is not ours to know.
    public static func isLoopback(_ host: String) -> Bool {
        var host = host.trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        if let zone = host.firstIndex(of: "%") { host = String(host[..<zone]) }
        if host.lowercased() == "localhost" { return true }
        var v4 = in_addr()
        if inet_pton(AF_INET, host, &v4) == 1 {
            return UInt32(bigEndian: v4.s_addr) >> 24 == 127
        }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, host, &v6) == 1 else { return false }
        let bytes = withUnsafeBytes(of: v6) { Array($0) }
        if bytes[0..<15].allSatisfy({ $0 == 0 }) && bytes[15] == 1 { return true }
        // ::ffff:127.x.x.x, an IPv4 loopback address in IPv6 clothing.
        return bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xFF && bytes[11] == 0xFF && bytes[12] == 127
    }
}

/// A TLS setting the server cannot start with, or an address it will not listen on
/// without TLS. The message names files, never their contents.
public struct TLSSetupError: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ description: String) { self.description = description }
}
