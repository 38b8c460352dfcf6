/// Bounds on what a client may send, enforced while parsing so a hostile or broken
/// client cannot make the server buffer without limit.
public struct ProtocolLimits: Sendable, Equatable {
    /// The longest inline request line, and the longest `*<n>`/`$<n>` header line.
    public var maxInlineLength = 64 * 1024
    /// The most arguments in one request.
    public var maxArguments = 1024
    /// The longest single argument.
    public var maxArgumentLength = 1024 * 1024
    /// The most bytes of one request, headers included. Enforced from the headers, as
    /// the request arrives: a request announcing more is refused before its bytes are
    /// buffered, so a connection never holds more than this (plus one read) of input.
    public var maxRequestLength = 16 * 1024 * 1024

    public init() {}
}

/// A request the server cannot parse. The connection gets `-ERR Protocol error: …` and
/// is closed; nothing after it is executed.
public struct ProtocolError: Error, Sendable, Equatable, CustomStringConvertible {
    public let reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { "Protocol error: \(reason)" }
}
