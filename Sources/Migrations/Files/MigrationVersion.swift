/// A migration's version: the leading integer of its file name, of any width.
///
/// Versions compare numerically (9 before 10, `0010` equal to `10`), so they are kept as
/// their digits without leading zeros rather than as a fixed-width integer: timestamp
/// versions (`20240826120919`) and plain counters (`0001`) both fit.
public struct MigrationVersion: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The digits without leading zeros ("0" for zero).
    public let digits: String

    public init?(_ text: some StringProtocol) {
        guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return nil }
        let trimmed = text.drop(while: { $0 == "0" })
        digits = trimmed.isEmpty ? "0" : String(trimmed)
    }

    public var description: String { digits }

    public static func < (a: MigrationVersion, b: MigrationVersion) -> Bool {
        (a.digits.count, a.digits) < (b.digits.count, b.digits)
    }
}

/// A JSON string of its digits, as `stockroom migrate status --json` writes it: a version
/// of any width (a timestamp) would not fit every reader's integers.
extension MigrationVersion: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let version = MigrationVersion(text) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "not a migration version: \(text)")
        }
        self = version
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(digits)
    }
}
