public import NIOCore

/// Cuts requests out of the bytes a client sent, deciding per request by its first byte:
/// `*` starts a RESP array of bulk strings (what Redis clients send), anything else an
/// inline line typed by a person (`PING`, `PRODUCT.GET 42`).
///
/// A plain struct, free of I/O, so every malformed input can be tested byte by byte.
/// Parsing is incremental: `next` returns nil until a whole request has arrived, and
/// consumes nothing then. It also remembers how far it got, so a request that arrives a
/// byte at a time costs time linear in its length: the arguments already complete are
/// not parsed again, and an inline line is not searched again for its end. (Offsets
/// from the request's start, not slices: a slice kept across reads would make every
/// read's append copy the whole buffer.) The buffer handed back must hold the same
/// unread bytes as before, with more appended — what `ByteToMessageDecoder` guarantees.
public struct RequestParser: Sendable {
    public let limits: ProtocolLimits
    private var partial: Partial?
    /// How much of an inline line has been searched for its end without finding it.
    private var inlineSearched = 0

    /// Offset of each complete argument of the RESP array being parsed from the start of
    /// the request, and its length. Kept from one request to the next, so that a request
    /// allocates only the array it returns; dropped after an unusually long one.
    private var arguments: [(offset: Int, length: Int)] = []
    private static let argumentsKept = 64

    /// A RESP array whose arguments have not all arrived (those that have are in
    /// `arguments`).
    private struct Partial: Sendable {
        let count: Int
        /// Offset where the next argument's header starts.
        var next: Int
    }

    public init(limits: ProtocolLimits = ProtocolLimits()) {
        self.limits = limits
    }

    /// The next request's arguments, or nil when more bytes are needed. Empty inline lines
    /// and empty arrays are skipped.
    public mutating func next(_ buffer: inout ByteBuffer) throws(ProtocolError) -> [ByteBuffer]? {
        while let first = buffer.readableBytesView.first {
            let request: [ByteBuffer]?
            if first == UInt8(ascii: "*") {
                request = try multibulk(&buffer)
            } else {
                request = try inline(&buffer)
            }
            guard let request else { return nil }
            if !request.isEmpty { return request }
        }
        return nil
    }

    // MARK: - RESP arrays

    private mutating func multibulk(_ buffer: inout ByteBuffer) throws(ProtocolError) -> [ByteBuffer]? {
        var cursor = buffer
        var state: Partial
        if let partial {
            state = partial
            cursor.moveReaderIndex(forwardBy: state.next)
        } else {
            guard let countLine = try line(&cursor, tooLong: "too big mbulk count string") else { return nil }
            guard let count = Self.integer(countLine.dropFirst()), count <= 1024 * 1024 else {
                throw ProtocolError("invalid multibulk length")
            }
            if count <= 0 {
                buffer = cursor
                return []
            }
            guard count <= limits.maxArguments else {
                throw ProtocolError("too many arguments (\(count), at most \(limits.maxArguments))")
            }
            state = Partial(count: count, next: cursor.readerIndex - buffer.readerIndex)
            arguments.removeAll(keepingCapacity: true)
            arguments.reserveCapacity(count)
        }
        while arguments.count < state.count {
            guard let header = try line(&cursor, tooLong: "too big bulk count string") else {
                partial = state
                return nil
            }
            guard header.first == UInt8(ascii: "$") else {
                let got = header.first.map { Character(Unicode.Scalar($0)) } ?? " "
                throw ProtocolError("expected '$', got '\(got)'")
            }
            guard let length = Self.integer(header.dropFirst()), length >= 0 else {
                throw ProtocolError("invalid bulk length")
            }
            guard length <= limits.maxArgumentLength else {
                throw ProtocolError("invalid bulk length (\(length) bytes, at most \(limits.maxArgumentLength))")
            }
            // What the request has announced so far, this argument included: refused as
            // soon as the headers say it is too big, not once it has all arrived.
            let offset = cursor.readerIndex - buffer.readerIndex
            guard offset + length + 2 <= limits.maxRequestLength else {
                throw ProtocolError("request too big (more than \(limits.maxRequestLength) bytes)")
            }
            guard cursor.readableBytes >= length + 2 else {
                // The header is read again with the rest: a few bytes, once per read.
                partial = state
                return nil
            }
            cursor.moveReaderIndex(forwardBy: length)
            guard cursor.readInteger(as: UInt16.self) == 0x0D0A else {
                throw ProtocolError("expected CRLF after a bulk string")
            }
            arguments.append((offset, length))
            state.next = cursor.readerIndex - buffer.readerIndex
        }
        partial = nil
        let start = buffer.readerIndex
        let request = arguments.map { buffer.getSlice(at: start + $0.offset, length: $0.length)! }
        if arguments.capacity > Self.argumentsKept {
            arguments = []
        } else {
            arguments.removeAll(keepingCapacity: true)
        }
        buffer = cursor
        return request
    }

    /// A header line up to CRLF (without it), or nil when it has not fully arrived. A view
    /// into the buffer, not a copy: every request has one or more of these.
    private func line(_ buffer: inout ByteBuffer, tooLong: String) throws(ProtocolError) -> ByteBufferView? {
        // A header is short: look no further than the longest one allowed.
        let view = buffer.readableBytesView.prefix(limits.maxInlineLength + 2)
        guard let newline = view.firstIndex(of: UInt8(ascii: "\n")) else {
            if view.count > limits.maxInlineLength { throw ProtocolError(tooLong) }
            return nil
        }
        let length = newline - view.startIndex
        guard length <= limits.maxInlineLength else { throw ProtocolError(tooLong) }
        guard length > 0, view[newline - 1] == UInt8(ascii: "\r") else {
            throw ProtocolError("expected CRLF at the end of a header line")
        }
        buffer.moveReaderIndex(forwardBy: length + 1)
        return view[view.startIndex..<(newline - 1)]
    }

    static func integer<Digits: Collection<UInt8>>(_ digits: Digits) -> Int? {
        guard !digits.isEmpty, digits.count <= 18 else { return nil }
        var value = 0
        var negative = false
        for (offset, byte) in digits.enumerated() {
            if offset == 0 && byte == UInt8(ascii: "-") && digits.count > 1 { negative = true; continue }
            guard byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + Int(byte - UInt8(ascii: "0"))
        }
        return negative ? -value : value
    }

    // MARK: - Inline lines

    private mutating func inline(_ buffer: inout ByteBuffer) throws(ProtocolError) -> [ByteBuffer]? {
        let view = buffer.readableBytesView
        // Only the bytes that arrived since the last search.
        let unsearched = view[(view.startIndex + min(inlineSearched, view.count))...].prefix(limits.maxInlineLength + 2)
        guard let newline = unsearched.firstIndex(of: UInt8(ascii: "\n")) else {
            if view.count > limits.maxInlineLength { throw ProtocolError("too big inline request") }
            inlineSearched = view.count
            return nil
        }
        inlineSearched = 0
        var length = newline - view.startIndex
        guard length <= limits.maxInlineLength else { throw ProtocolError("too big inline request") }
        let bytes = buffer.readBytes(length: length + 1)!
        if length > 0 && bytes[length - 1] == UInt8(ascii: "\r") { length -= 1 }
        let line = bytes[0..<length]
        guard let arguments = InlineArguments.split(line) else {
            throw ProtocolError("unbalanced quotes in request")
        }
        guard arguments.count <= limits.maxArguments else {
            throw ProtocolError("too many arguments (\(arguments.count), at most \(limits.maxArguments))")
        }
        if Self.isHTTPRequestLine(arguments) { throw ProtocolError("HTTP requests are not supported") }
        return arguments.map { ByteBuffer(bytes: $0) }
    }

    /// `GET / HTTP/1.1`, `POST /x HTTP/1.0` …: someone pointed a browser or a proxy here.
    static func isHTTPRequestLine(_ arguments: [[UInt8]]) -> Bool {
        guard arguments.count == 3, let last = arguments.last else { return false }
        return last.starts(with: Array("HTTP/".utf8))
    }
}
