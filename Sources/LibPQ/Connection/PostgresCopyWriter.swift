/// Rows for `PostgresConnection.copyFrom`, in COPY's binary format. Buffered and sent to
/// the server in chunks as they are appended.
public struct PostgresCopyWriter: ~Copyable {
    let columnCount: Int
    var buffer: [UInt8] = []
    let send: ([UInt8]) throws -> Void
    public private(set) var rowCount = 0

    static let chunkSize = 256 * 1024

    init(columnCount: Int, send: @escaping ([UInt8]) throws -> Void) {
        self.columnCount = columnCount
        self.send = send
        buffer.reserveCapacity(Self.chunkSize + 4096)
        // Signature, flags, header extension length.
        buffer.append(contentsOf: Array("PGCOPY\n".utf8) + [0xFF, 0x0D, 0x0A, 0x00])
        buffer.appendBigEndian(Int32(0))
        buffer.appendBigEndian(Int32(0))
    }

    /// Appends one row; it must have one value per column named in `copyFrom`.
    public mutating func append<each Value: PostgresEncodable>(_ values: repeat each Value) throws {
        var count = 0
        for _ in repeat each values { count += 1 }
        guard count == columnCount else {
            throw PostgresError(code: .encoding, message: "COPY row \(rowCount + 1) has \(count) values for \(columnCount) columns")
        }
        buffer.appendBigEndian(Int16(count))
        for value in repeat each values {
            if value.isPostgresNull {
                buffer.appendBigEndian(Int32(-1))
                continue
            }
            let lengthAt = buffer.count
            buffer.appendBigEndian(Int32(0))
            try value.encode(into: &buffer)
            let length = Int32(buffer.count - lengthAt - 4)
            Swift.withUnsafeBytes(of: length.bigEndian) { buffer.replaceSubrange(lengthAt..<lengthAt + 4, with: $0) }
        }
        rowCount += 1
        if buffer.count >= Self.chunkSize { try flush() }
    }

    mutating func flush() throws {
        if buffer.isEmpty { return }
        try send(buffer)
        buffer.removeAll(keepingCapacity: true)
    }

    mutating func finish() throws {
        buffer.appendBigEndian(Int16(-1))
        try flush()
    }
}
