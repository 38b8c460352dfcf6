public import NIOCore
import NIOPosix
import NIOSSL
import Synchronization

/// Sends mail to one relay: a connection per message, closed after QUIT. Simple and
/// correct beats reuse here: order mail is a few messages a minute, and a fresh
/// connection never inherits a broken or half-finished session.
///
/// Rules it keeps:
/// - Every wait has a deadline: connecting (`connectTimeout`), and each command's write
///   and reply, TLS handshakes included (`replyTimeout`). A server that goes quiet makes
///   a transient error, never a hung job.
/// - What a server sends is bounded (`SMTPReplyDecoder`): no unbounded buffering.
/// - TLS (NIOSSL) verifies the certificate and the host name, against the system's roots
///   or `trustedCAFile`; STARTTLS is used whenever offered, and AUTH PLAIN is only ever
///   sent over TLS or to loopback.
/// - All I/O is NIO's, on its event loops: nothing blocks the cooperative pool.
/// - `send` throws only `SMTPError`, whose message never holds the credentials.
public struct SMTPClient: Sendable {
    public let configuration: SMTPConfiguration
    let tls: NIOSSLContext
    let group: any EventLoopGroup

    /// Loads the trust roots now, so a bad CA file is an error at start-up, not at the
    /// first order. Runs on NIO's shared event loops unless given a group.
    public init(configuration: SMTPConfiguration, eventLoopGroup: (any EventLoopGroup)? = nil) throws(SMTPConfigurationError) {
        var tlsConfiguration = TLSConfiguration.makeClientConfiguration()
        if let file = configuration.trustedCAFile {
            do {
                tlsConfiguration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(file))
            } catch {
                throw SMTPConfigurationError("the CA file \(file) could not be read as PEM certificates: \(error)")
            }
        }
        do {
            tls = try NIOSSLContext(configuration: tlsConfiguration)
        } catch {
            throw SMTPConfigurationError("TLS could not be set up: \(error)")
        }
        self.configuration = configuration
        self.group = eventLoopGroup ?? MultiThreadedEventLoopGroup.singleton
    }

    /// Sends `message` to its To address, from `configuration.from`.
    public func send(_ message: MailMessage) async throws(SMTPError) {
        let channel: NIOAsyncChannel<SMTPReply, ByteBuffer>
        let upgrade = STARTTLSGuard()
        do {
            channel = try await connect(upgrade)
        } catch {
            throw SMTPError(.transient, "could not connect to \(configuration.host):\(configuration.port): \(Self.describe(error))")
        }
        do {
            try await channel.executeThenClose { inbound, outbound in
                var conversation = SMTPConversation(
                    channel: channel.channel, replies: inbound.makeAsyncIterator(), outbound: outbound, client: self, upgrade: upgrade)
                try await conversation.send(message)
            }
        } catch let error as SMTPError {
            throw error
        } catch {
            throw SMTPError(.transient, "the connection to \(configuration.host):\(configuration.port) failed: \(Self.describe(error))")
        }
    }

    private func connect(_ upgrade: STARTTLSGuard) async throws -> NIOAsyncChannel<SMTPReply, ByteBuffer> {
        let implicitTLS = configuration.security == .implicitTLS
        let tls = self.tls
        let serverName = serverHostname
        return try await ClientBootstrap(group: group)
            .connectTimeout(Self.timeAmount(configuration.connectTimeout))
            .connect(host: configuration.host, port: configuration.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    if implicitTLS {
                        try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: tls, serverHostname: serverName))
                    }
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(SMTPReplyDecoder(upgrade: upgrade)))
                    return try NIOAsyncChannel<SMTPReply, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
    }

    /// The name TLS checks the certificate against and sends as SNI. SNI cannot carry an
    /// IP address; for one, NIOSSL checks the certificate against the peer's address.
    var serverHostname: String? {
        let host = configuration.host
        let isIPv4 = host.split(separator: ".").count == 4 && host.allSatisfy { $0.isNumber || $0 == "." }
        return isIPv4 || host.contains(":") ? nil : host
    }

    /// Adds TLS in front of the reply decoder, after STARTTLS was accepted. On the event
    /// loop, so that no byte can pass between the guard and the handler.
    func startTLS(on channel: any Channel, _ upgrade: STARTTLSGuard) async throws {
        let tls = self.tls
        let serverName = serverHostname
        try await channel.eventLoop.submit {
            try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: tls, serverHostname: serverName), position: .first)
            upgrade.handshakeStarted()
        }.get()
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? ChannelError, case .connectTimeout = error { return "timed out" }
        return String(String(describing: error).prefix(300))
    }

    static func timeAmount(_ duration: Duration) -> TimeAmount {
        .nanoseconds(duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000)
    }
}
