/// A value inside a parsed payload with its path (`lines[0].quantity`), read as the type a
/// command expects. Failures are `INVALID` replies naming the path, worded as
/// `JSONPayload`'s Decodable errors are, so that a command can switch from one to the
/// other without its clients noticing.
struct JSONField {
    /// Nil when the key is absent.
    let value: JSONValue?
    let path: String

    /// Whether this is the document itself, whose members' paths start with their key.
    private let isRoot: Bool

    /// The document itself, named `json` in errors.
    init(root: JSONValue) {
        self.init(value: root, path: "json", isRoot: true)
    }

    private init(value: JSONValue?, path: String, isRoot: Bool = false) {
        self.value = value
        self.path = path
        self.isRoot = isRoot
    }

    /// A member of an object; absent when the key is.
    subscript(key: String) -> JSONField {
        get throws(CommandError) {
            guard case .object(let members) = try present() else { throw mismatch("an object") }
            let value = members.first(where: { $0.key == key })?.value
            return JSONField(value: value, path: isRoot ? key : "\(path).\(key)")
        }
    }

    /// The elements of an array.
    func elements() throws(CommandError) -> [JSONField] {
        guard case .array(let elements) = try present() else { throw mismatch("an array") }
        return elements.enumerated().map { JSONField(value: $0.element, path: "\(path)[\($0.offset)]") }
    }

    func integer() throws(CommandError) -> Int64 {
        guard case .number(let text) = try present() else { throw mismatch("an integer") }
        guard let value = Int64(text) else {
            // Written without fraction or exponent, yet no Int64: it does not fit.
            if text.utf8.allSatisfy({ $0 == UInt8(ascii: "-") || ($0 >= 48 && $0 <= 57) }) { throw .invalid(path, "is out of range") }
            throw mismatch("an integer")
        }
        return value
    }

    func string() throws(CommandError) -> String {
        guard case .string(let text) = try present() else { throw mismatch("a string") }
        return text
    }

    /// Absent and null both read as nil.
    var isMissing: Bool { value == nil || value == .null }

    /// nil when absent or null.
    func optionalString() throws(CommandError) -> String? {
        isMissing ? nil : try string()
    }

    func optionalInteger() throws(CommandError) -> Int64? {
        isMissing ? nil : try integer()
    }

    private func present() throws(CommandError) -> JSONValue {
        switch value {
        case nil: throw .invalid(path, "is required")
        case .null?: throw .invalid(path, "must not be null")
        case let value?: return value
        }
    }

    private func mismatch(_ kind: String) -> CommandError { .invalid(path, "must be \(kind)") }
}
