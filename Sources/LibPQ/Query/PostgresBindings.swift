/// Parameter values in the layout libpq's `PQexecParams` wants: one contiguous byte buffer
/// with a length per value (-1 for NULL), all in binary format.
public struct PostgresBindings: Sendable, Hashable {
    var types: [UInt32] = []
    var lengths: [Int32] = []
    var bytes: [UInt8] = []
    /// The first value that failed to encode; thrown when the query runs, because string
    /// interpolation cannot throw.
    var encodingFailure: String?

    public init() {}

    public var count: Int { types.count }

    public mutating func append<Value: PostgresEncodable>(_ value: Value) {
        types.append(Value.postgresDataType.rawValue)
        if value.isPostgresNull {
            lengths.append(-1)
            return
        }
        let start = bytes.count
        do {
            try value.encode(into: &bytes)
        } catch {
            bytes.removeSubrange(start...)
            encodingFailure = encodingFailure ?? "parameter $\(types.count): \((error as? PostgresError)?.message ?? "\(Value.self) cannot be encoded")"
        }
        guard let length = Int32(exactly: bytes.count - start) else {
            bytes.removeSubrange(start...)
            lengths.append(-1)
            encodingFailure = encodingFailure ?? "parameter $\(types.count) is larger than 2 GiB"
            return
        }
        lengths.append(length)
    }

    /// Appends all of `other`'s values after these.
    public mutating func append(contentsOf other: PostgresBindings) {
        types += other.types
        lengths += other.lengths
        bytes += other.bytes
        encodingFailure = encodingFailure ?? other.encodingFailure
    }

    /// Calls `body` with the C arrays libpq takes. Pointers are valid only inside `body`.
    ///
    /// The value pointers and formats live on the stack (heap only for very many
    /// parameters): two arrays allocated and freed per statement were a visible share of
    /// LibPQ's cost per point query.
    func withUnsafeParameters<R>(
        _ body: (_ values: UnsafePointer<UnsafePointer<CChar>?>?, _ lengths: UnsafePointer<Int32>?, _ formats: UnsafePointer<Int32>?, _ types: UnsafePointer<UInt32>?) throws -> R
    ) rethrows -> R {
        let count = self.count
        return try withUnsafeTemporaryAllocation(of: UnsafePointer<CChar>?.self, capacity: count) { values in
            try withUnsafeTemporaryAllocation(of: Int32.self, capacity: count) { formats in
                formats.initialize(repeating: 1)  // binary, every one
                return try bytes.withUnsafeBufferPointer { buffer in
                    // A zero-length value still needs a non-NULL pointer, or libpq reads it as NULL.
                    let base = UnsafeRawPointer(buffer.baseAddress) ?? UnsafeRawPointer(bitPattern: 1)!
                    var offset = 0
                    for (index, length) in lengths.enumerated() {
                        if length < 0 {
                            values[index] = nil
                        } else {
                            values[index] = (base + offset).assumingMemoryBound(to: CChar.self)
                            offset += Int(length)
                        }
                    }
                    return try lengths.withUnsafeBufferPointer { lengths in
                        try types.withUnsafeBufferPointer { types in
                            try body(UnsafePointer(values.baseAddress), lengths.baseAddress, UnsafePointer(formats.baseAddress), types.baseAddress)
                        }
                    }
                }
            }
        }
    }
}
