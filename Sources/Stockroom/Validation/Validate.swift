/// Input rules checked before anything reaches the database. The database enforces the
/// same limits with constraints; checking here gives a clear message naming the field.
enum Validate {
    /// The address as typed, trimmed (see `Email.normalized` for comparing).
    static func email(_ value: String) throws -> String {
        let email = value.trimmingSpaces()
        guard email.count <= 254 else { throw StockroomError.invalid("email", "must be at most 254 characters") }
        let parts = email.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, let local = parts.first, let domain = parts.last,
              !local.isEmpty, local.count <= 64, !domain.isEmpty,
              domain.contains("."), !domain.hasPrefix("."), !domain.hasSuffix("."), !domain.contains(".."),
              !local.hasPrefix("."), !local.hasSuffix("."), !local.contains(".."),
              email.unicodeScalars.allSatisfy({ $0.value > 32 && $0.value != 127 && $0 != "\"" && $0 != "," && $0 != ";" && $0 != "<" && $0 != ">" && $0 != "(" && $0 != ")" && $0 != "[" && $0 != "]" && $0 != "\\" }),
              domain.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "." })
        else { throw StockroomError.invalid("email", "is not a valid email address") }
        return email
    }

    static func name(_ value: String, field: String = "name") throws -> String {
        let name = value.trimmingSpaces()
        guard (1...200).contains(name.count) else { throw StockroomError.invalid(field, "must be 1 to 200 characters") }
        try noControlCharacters(name, field: field)
        return name
    }

    static func password(_ value: String) throws {
        guard (8...1024).contains(value.count) else { throw StockroomError.invalid("password", "must be 8 to 1024 characters") }
        guard value.utf8.count <= 4096 else { throw StockroomError.invalid("password", "is too long") }
    }

    static func noControlCharacters(_ value: String, field: String) throws {
        if value.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
            throw StockroomError.invalid(field, "must not contain control characters")
        }
    }

    /// The `product_sku` domain's rule (`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`), on bytes:
    /// every PRODUCT.GET checks its key here, and Unicode property lookups took a
    /// twelfth of the service's CPU under pipelined lookups.
    static func sku(_ value: String) throws -> String {
        func isLetterOrDigit(_ byte: UInt8) -> Bool {
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte | 0x20) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
        }
        func isValid(_ bytes: some Collection<UInt8>) -> Bool {
            guard (1...64).contains(bytes.count), let first = bytes.first, isLetterOrDigit(first) else { return false }
            return bytes.allSatisfy { isLetterOrDigit($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") }
        }
        guard value.utf8.withContiguousStorageIfAvailable(isValid) ?? isValid(value.utf8) else {
            throw StockroomError.invalid("sku", "must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit")
        }
        return value
    }

    static func description(_ value: String) throws -> String {
        guard value.count <= 10_000 else { throw StockroomError.invalid("description", "must be at most 10000 characters") }
        if value.unicodeScalars.contains(where: { $0.properties.generalCategory == .control && $0 != "\n" && $0 != "\t" && $0 != "\r" }) {
            throw StockroomError.invalid("description", "must not contain control characters other than newlines and tabs")
        }
        return value
    }

    /// Prices up to 10^13 minor units: far above any real price, far below overflow
    /// even when multiplied by the largest quantity.
    static let maxPriceCents: Int64 = 10_000_000_000_000

    static func price(_ value: Int64) throws -> Int64 {
        guard (0...maxPriceCents).contains(value) else { throw StockroomError.invalid("price_cents", "must be between 0 and \(maxPriceCents)") }
        return value
    }

    static func currency(_ value: String) throws -> String {
        guard ISO4217.codes.contains(value) else { throw StockroomError.invalid("currency", "must be an ISO 4217 code such as EUR or USD") }
        return value
    }

    static let maxStock = 1_000_000_000

    static func stock(_ value: Int, field: String = "stock") throws -> Int {
        guard (0...maxStock).contains(value) else { throw StockroomError.invalid(field, "must be between 0 and \(maxStock)") }
        return value
    }

    static func id(_ value: Int64, field: String = "id") throws -> Int64 {
        guard value > 0 else { throw StockroomError.invalid(field, "must be a positive integer") }
        return value
    }

    static func limit(_ value: Int) throws -> Int {
        guard (1...500).contains(value) else { throw StockroomError.invalid("limit", "must be between 1 and 500") }
        return value
    }
}

extension String {
    func trimmingSpaces() -> String {
        var text = Substring(self)
        while let first = text.first, first.isWhitespace { text = text.dropFirst() }
        while let last = text.last, last.isWhitespace { text = text.dropLast() }
        return String(text)
    }
}
