/// A PostgreSQL type OID. Only built-in types have fixed OIDs; extension and user-defined
/// types (enums, composites, ranges, citext) get OIDs ≥ 16384 that differ per database.
/// Domains never show up in results: the server reports a domain column as its base type.
public struct PostgresDataType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public init(_ rawValue: UInt32) { self.rawValue = rawValue }

    public static let bool = Self(16)
    public static let bytea = Self(17)
    public static let char = Self(18)
    public static let name = Self(19)
    public static let int8 = Self(20)
    public static let int2 = Self(21)
    public static let int4 = Self(23)
    public static let text = Self(25)
    public static let oid = Self(26)
    public static let oidArray = Self(1028)
    public static let json = Self(114)
    public static let xml = Self(142)
    public static let float4 = Self(700)
    public static let float8 = Self(701)
    public static let unknown = Self(705)
    public static let bpchar = Self(1042)
    public static let varchar = Self(1043)
    public static let date = Self(1082)
    public static let timestamp = Self(1114)
    public static let timestamptz = Self(1184)
    public static let numeric = Self(1700)
    public static let uuid = Self(2950)
    public static let jsonb = Self(3802)

    public static let boolArray = Self(1000)
    public static let byteaArray = Self(1001)
    public static let int2Array = Self(1005)
    public static let int4Array = Self(1007)
    public static let textArray = Self(1009)
    public static let varcharArray = Self(1015)
    public static let int8Array = Self(1016)
    public static let float4Array = Self(1021)
    public static let float8Array = Self(1022)
    public static let timestamptzArray = Self(1185)
    public static let numericArray = Self(1231)
    public static let uuidArray = Self(2951)
    public static let jsonArray = Self(199)
    public static let jsonbArray = Self(3807)

    /// The first OID the server hands to user-defined objects.
    static let firstUserOID: UInt32 = 16384

    /// Types whose binary representation is their text: decodable as `String`.
    ///
    /// No user-defined type is: an enum's or citext's binary form happens to be its text,
    /// but a composite's or a range's is not, and the OID alone cannot tell them apart.
    var isTextual: Bool {
        switch self {
        case .text, .varchar, .bpchar, .name, .char, .unknown, .json, .xml: true
        default: false
        }
    }

    /// Created in the database (an enum, composite, range, or an extension's type):
    /// its binary format is unknown here, so reading it needs a cast to a built-in type.
    var isUserDefined: Bool { rawValue >= Self.firstUserOID }

    static let names: [PostgresDataType: String] = [
        .bool: "bool", .bytea: "bytea", .char: "char", .name: "name", .int8: "int8", .int2: "int2",
        .int4: "int4", .text: "text", .oid: "oid", .json: "json", .xml: "xml", .float4: "float4",
        .float8: "float8", .unknown: "unknown", .bpchar: "bpchar", .varchar: "varchar", .date: "date",
        .timestamp: "timestamp", .timestamptz: "timestamptz", .numeric: "numeric", .uuid: "uuid",
        .jsonb: "jsonb", .boolArray: "bool[]", .byteaArray: "bytea[]", .int2Array: "int2[]",
        .int4Array: "int4[]", .textArray: "text[]", .varcharArray: "varchar[]", .int8Array: "int8[]",
        .float4Array: "float4[]", .float8Array: "float8[]", .timestamptzArray: "timestamptz[]",
        .numericArray: "numeric[]", .uuidArray: "uuid[]", .jsonArray: "json[]", .jsonbArray: "jsonb[]",
        .oidArray: "oid[]",
    ]

    public var description: String { Self.names[self] ?? "oid \(rawValue)" }
}
