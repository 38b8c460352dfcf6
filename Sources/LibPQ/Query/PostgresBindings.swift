/// Parameter values for libpq's `PQexecParams`, all in binary format.
///
/// Each value's length (-1 for NULL) goes into `bytes` ahead of it, as on the wire,
/// rather than into an array of its own: every array is an allocation, retains and
/// releases per statement, and a point query binds one value. `withUnsafeParameters`
/// lays the lengths out the way libpq wants them, on the stack.
public struct PostgresBindings: Sendable, Hashable {
    /// Also part of the statement cache's key, so kept as an array of its own.
    var types: [UInt32] = []
    var bytes: [UInt8] = []
    /// The first value that failed to encode; thrown when the query runs, because string
    /// interpolation cannot throw.
    var encodingFailure: String?

    public init() {}

    /// Room for `count` values of up to 8 bytes without growing either array.
    init(reservingCapacity count: Int) {
        types.reserveCapacity(count)
        bytes.reserveCapacity(count * (MemoryLayout<Int32>.size + 8))
    }

    public var count: Int { types.count }

    public mutating func append<Value: PostgresEncodable>(_ value: Value) {
        types.append(Value.postgresDataType.rawValue)
        let header = bytes.count
        // -1 (NULL) reads the same in either byte order; replaced by the length below.
        withUnsafeBytes(of: Int32(-1)) { bytes.append(contentsOf: $0) }
        if value.isPostgresNull { return }
        let start = bytes.count
        do {
            try value.encode(into: &bytes)
        } catch {
            bytes.removeSubrange(start...)
            encodingFailure = encodingFailure ?? "parameter $\(types.count): \((error as? PostgresError)?.message ?? "\(Value.self) cannot be encoded")"
            return
        }
        guard let length = Int32(exactly: bytes.count - start) else {
            bytes.removeSubrange(start...)
            encodingFailure = encodingFailure ?? "parameter $\(types.count) is larger than 2 GiB"
            return
        }
        bytes.withUnsafeMutableBytes { $0.storeBytes(of: length, toByteOffset: header, as: Int32.self) }
    }

    /// Appends all of `other`'s values after these.
    public mutating func append(contentsOf other: PostgresBindings) {
        types += other.types
        bytes += other.bytes
        encodingFailure = encodingFailure ?? other.encodingFailure
    }

    /// Calls `body` with the C arrays libpq takes. Pointers are valid only inside `body`.
    ///
    /// The value pointers, lengths and formats live on the stack (heap only for very
    /// many parameters).
    func withUnsafeParameters<R>(
        _ body: (_ values: UnsafePointer<UnsafePointer<CChar>?>?, _ lengths: UnsafePointer<Int32>?, _ formats: UnsafePointer<Int32>?, _ types: UnsafePointer<UInt32>?) throws -> R
    ) rethrows -> R {
        let count = self.count
        return try withUnsafeTemporaryAllocation(of: UnsafePointer<CChar>?.self, capacity: count) { values in
            try withUnsafeTemporaryAllocation(of: Int32.self, capacity: 2 * count) { integers in
                let lengths = UnsafeMutableBufferPointer(rebasing: integers[..<count])
                let formats = UnsafeMutableBufferPointer(rebasing: integers[count...])
                formats.initialize(repeating: 1)  // binary, every one
                return try bytes.withUnsafeBytes { buffer in
                    var offset = 0
                    for index in 0..<count {
                        let length = buffer.loadUnaligned(fromByteOffset: offset, as: Int32.self)
                        offset += MemoryLayout<Int32>.size
                        lengths[index] = length
                        // A zero-length value still needs a non-NULL pointer, or libpq
                        // reads it as NULL: the header in front of it is always there.
                        values[index] = length < 0 ? nil : (buffer.baseAddress! + offset).assumingMemoryBound(to: CChar.self)
                        offset += Int(max(length, 0))
                    }
                    return try types.withUnsafeBufferPointer { types in
                        try body(UnsafePointer(values.baseAddress), UnsafePointer(lengths.baseAddress), UnsafePointer(formats.baseAddress), types.baseAddress)
                    }
                }
            }
        }
    }
}
