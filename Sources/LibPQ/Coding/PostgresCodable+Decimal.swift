public import Foundation

/// `Decimal` is `numeric`, exact in both directions. `numeric` values with more than
/// 38 significant digits (Decimal's limit), or ±Infinity, fail to decode instead of
/// being rounded.
extension Decimal: PostgresArrayElement {
    public static var postgresDataType: PostgresDataType { .numeric }
    public static var postgresArrayDataType: PostgresDataType { .numericArray }

    private static let positive: UInt16 = 0x0000, negative: UInt16 = 0x4000, notANumber: UInt16 = 0xC000

    public func encode(into buffer: inout [UInt8]) throws {
        if isNaN {
            buffer.appendBigEndian(Int16(0)); buffer.appendBigEndian(Int16(0))
            buffer.appendBigEndian(Decimal.notANumber); buffer.appendBigEndian(Int16(0))
            return
        }
        // Decimal's description is plain digits with a '.' (never an exponent), in any locale.
        var text = Substring(description)
        let isNegative = text.first == "-"
        if isNegative { text = text.dropFirst() }
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        let integerDigits = Array(parts[0].utf8.map { Int16($0 - 48) })
        let fractionDigits = parts.count > 1 ? Array(parts[1].utf8.map { Int16($0 - 48) }) : []

        // Group into base-10000 digits aligned on the decimal point.
        var groups: [Int16] = []
        let leadingPad = (4 - integerDigits.count % 4) % 4
        let paddedInteger = Array(repeating: Int16(0), count: leadingPad) + integerDigits
        for start in stride(from: 0, to: paddedInteger.count, by: 4) {
            groups.append(paddedInteger[start..<start + 4].reduce(0) { $0 * 10 + $1 })
        }
        var weight = groups.count - 1
        let trailingPad = (4 - fractionDigits.count % 4) % 4
        let paddedFraction = fractionDigits + Array(repeating: Int16(0), count: trailingPad)
        for start in stride(from: 0, to: paddedFraction.count, by: 4) {
            groups.append(paddedFraction[start..<start + 4].reduce(0) { $0 * 10 + $1 })
        }
        while let first = groups.first, first == 0 { groups.removeFirst(); weight -= 1 }
        while let last = groups.last, last == 0 { groups.removeLast() }
        if groups.isEmpty { weight = 0 }

        buffer.appendBigEndian(Int16(groups.count))
        buffer.appendBigEndian(Int16(weight))
        buffer.appendBigEndian(isNegative ? Decimal.negative : Decimal.positive)
        buffer.appendBigEndian(Int16(fractionDigits.count))
        for group in groups { buffer.appendBigEndian(group) }
    }

    public static func decode(from bytes: UnsafeRawBufferPointer, type: PostgresDataType) throws -> Decimal {
        switch type {
        case .int2, .int4, .int8: return Decimal(try Int64.decode(from: bytes, type: type))
        case .numeric: break
        default: throw PostgresDecodingFailure.typeMismatch(type)
        }
        try PostgresDecodingFailure.require(bytes.count >= 8, "numeric of \(bytes.count) bytes")
        let count = Int(bytes.readBigEndian(Int16.self, at: 0))
        let weight = Int(bytes.readBigEndian(Int16.self, at: 2))
        let sign = bytes.readBigEndian(UInt16.self, at: 4)
        let scale = Int(bytes.readBigEndian(Int16.self, at: 6))
        try PostgresDecodingFailure.require(bytes.count == 8 + 2 * count, "numeric of \(bytes.count) bytes")
        if sign == notANumber { return .nan }
        guard sign == positive || sign == negative else {
            throw PostgresDecodingFailure.invalidBytes("numeric infinity does not fit in Decimal")
        }
        var integer = ""
        var fraction = ""
        for index in 0..<count {
            let group = Int(bytes.readBigEndian(Int16.self, at: 8 + 2 * index))
            let digits = String(group)
            let padded = String(repeating: "0", count: 4 - digits.count) + digits
            if index <= weight { integer += padded } else { fraction += padded }
        }
        if weight >= count { integer += String(repeating: "0000", count: weight - count + 1) }
        if weight < -1 { fraction = String(repeating: "0000", count: -weight - 1) + fraction }
        if fraction.count < scale { fraction += String(repeating: "0", count: scale - fraction.count) }
        fraction = String(fraction.prefix(scale))
        let significant = (integer + fraction).drop { $0 == "0" }.count
        guard significant <= 38 else {
            throw PostgresDecodingFailure.invalidBytes("numeric with \(significant) significant digits does not fit in Decimal (38)")
        }
        let text = (sign == negative ? "-" : "") + (integer.isEmpty ? "0" : integer) + (fraction.isEmpty ? "" : "." + fraction)
        guard let value = Decimal(string: text, locale: Locale(identifier: "en_US_POSIX")) else {
            throw PostgresDecodingFailure.invalidBytes("numeric")
        }
        return value
    }

    /// numeric's text is plain digits with a '.', never an exponent; the same limits as
    /// in binary apply: no rounding past 38 digits, no infinity.
    public static func decode(text: String, type: PostgresDataType) throws -> Decimal {
        switch type {
        case .int2, .int4, .int8: return Decimal(try Int64.decode(text: text, type: type))
        case .numeric: break
        default: throw PostgresDecodingFailure.typeMismatch(type)
        }
        switch text {
        case "NaN": return .nan
        case "Infinity", "-Infinity": throw PostgresDecodingFailure.invalidBytes("numeric infinity does not fit in Decimal")
        default: break
        }
        let significant = text.utf8.filter { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }.drop { $0 == UInt8(ascii: "0") }.count
        guard significant <= 38 else {
            throw PostgresDecodingFailure.invalidBytes("numeric with \(significant) significant digits does not fit in Decimal (38)")
        }
        guard let value = Decimal(string: text, locale: Locale(identifier: "en_US_POSIX")) else {
            throw PostgresDecodingFailure.invalidBytes("numeric text that is not a number")
        }
        return value
    }
}
