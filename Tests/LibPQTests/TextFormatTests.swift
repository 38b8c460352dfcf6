import Foundation
import LibPQ
import Testing

/// `simpleQuery` results come in text format, unlike `query()`'s binary ones; a text
/// column must read as its text or fail, never be misread as binary.
///
/// The closures spell out `async throws`: when every `try` sits inside `#expect`, Swift
/// does not see them and infers a closure that cannot throw.
@Suite("Text-format rows from simpleQuery")
struct TextFormatTests {
    @Test func booleansAndIntegers() async throws {
        try await TestDatabase.withSchema { connection async throws in
            #expect(try await connection.simpleScalar("false", Bool.self) == false)
            #expect(try await connection.simpleScalar("true", Bool.self) == true)
            #expect(try await connection.simpleScalar("1234", Int.self) == 1234)
            #expect(try await connection.simpleScalar("(-32768)::int2", Int16.self) == -32768)
            #expect(try await connection.simpleScalar("2147483647::int4", Int32.self) == .max)
            #expect(try await connection.simpleScalar("(-9223372036854775808)::int8", Int64.self) == .min)
            #expect(try await connection.simpleScalar("7::int2", Int64.self) == 7)
            #expect(try await connection.simpleScalar("4294967295::oid", UInt32.self) == .max)
            #expect(try await connection.simpleScalar("4294967295::oid", Int64.self) == 4_294_967_295)
            #expect(try await connection.simpleScalar("NULL::int", Int?.self) == nil)
            #expect(try await connection.simpleScalar("12::int4", Int?.self) == 12)

            let narrow = await #expect(throws: PostgresError.self) { try await connection.simpleScalar("70000::int8", Int16.self) }
            #expect(narrow?.code == .decoding)
            #expect(narrow?.message == "column \"v\": cannot read int8 as Int16: value 70000 does not fit in Int16")
            let negative = await #expect(throws: PostgresError.self) { try await connection.simpleScalar("-1", UInt32.self) }
            #expect(negative?.message == "column \"v\": cannot read int4 as UInt32: value -1 does not fit in UInt32")
            let mismatch = await #expect(throws: PostgresError.self) { try await connection.simpleScalar("'12'::text", Int.self) }
            #expect(mismatch?.message == "column \"v\": a text column cannot be read as Int")
            let boolAsInt = await #expect(throws: PostgresError.self) { try await connection.simpleScalar("true", Int.self) }
            #expect(boolAsInt?.message == "column \"v\": a bool column cannot be read as Int")
        }
    }

    @Test func floatingPointIncludingItsSpecialSpellings() async throws {
        try await TestDatabase.withSchema { connection async throws in
            #expect(try await connection.simpleScalar("1.5::float8", Double.self) == 1.5)
            #expect(try await connection.simpleScalar("pi()", Double.self) == .pi)
            #expect(try await connection.simpleScalar("'-0'::float8", Double.self).sign == .minus)
            #expect(try await connection.simpleScalar("'Infinity'::float8", Double.self) == .infinity)
            #expect(try await connection.simpleScalar("'-Infinity'::float8", Double.self) == -.infinity)
            #expect(try await connection.simpleScalar("'NaN'::float8", Double.self).isNaN)
            #expect(try await connection.simpleScalar("1.7976931348623157e308::float8", Double.self) == .greatestFiniteMagnitude)
            #expect(try await connection.simpleScalar("5e-324::float8", Double.self) == .leastNonzeroMagnitude)
            #expect(try await connection.simpleScalar("0.1::float4", Float.self) == 0.1)
            #expect(try await connection.simpleScalar("0.1::float4", Double.self) == Double(Float(0.1)))
            #expect(try await connection.simpleScalar("'-Infinity'::float4", Float.self) == -.infinity)
            #expect(try await connection.simpleScalar("'NaN'::float4", Float.self).isNaN)
            let mismatch = await #expect(throws: PostgresError.self) { try await connection.simpleScalar("1.5::float8", Float.self) }
            #expect(mismatch?.message == "column \"v\": a float8 column cannot be read as Float")
        }
    }

    @Test func stringsOfAnyTypeDecimalsUUIDsAndBytes() async throws {
        try await TestDatabase.withSchema { connection async throws in
            #expect(try await connection.simpleScalar("'héllo 🧑🏽‍🚀'::text", String.self) == "héllo 🧑🏽‍🚀")
            #expect(try await connection.simpleScalar("42", String.self) == "42")
            #expect(try await connection.simpleScalar("ARRAY[1,2]", String.self) == "{1,2}")
            #expect(try await connection.simpleScalar("'{\"a\": 1}'::jsonb", String.self) == "{\"a\": 1}")
            #expect(try await connection.simpleScalar("'2024-01-02'::date", String.self) == "2024-01-02")

            #expect(try await connection.simpleScalar("'-12345678901234567890.123456789'::numeric", Decimal.self) == Decimal(string: "-12345678901234567890.123456789"))
            #expect(try await connection.simpleScalar("0.10::numeric", Decimal.self) == Decimal(string: "0.1"))
            #expect(try await connection.simpleScalar("'NaN'::numeric", Decimal.self).isNaN)
            #expect(try await connection.simpleScalar("12::int8", Decimal.self) == 12)
            let infinity = await #expect(throws: PostgresError.self) { try await connection.simpleScalar("'Infinity'::numeric", Decimal.self) }
            #expect(infinity?.message == "column \"v\": cannot read numeric as Decimal: numeric infinity does not fit in Decimal")
            let tooPrecise = await #expect(throws: PostgresError.self) {
                try await connection.simpleScalar("'1.\(String(repeating: "1", count: 40))'::numeric", Decimal.self)
            }
            #expect(tooPrecise?.message.contains("41 significant digits does not fit in Decimal") == true)

            let uuid = UUID(uuidString: "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11")!
            #expect(try await connection.simpleScalar("'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid", UUID.self) == uuid)

            #expect(try await connection.simpleScalar("'\\x00ff10'::bytea", [UInt8].self) == [0x00, 0xFF, 0x10])
            #expect(try await connection.simpleScalar("''::bytea", [UInt8].self) == [])
            #expect(try await connection.simpleScalar("'\\xDEAD'::bytea", Data.self) == Data([0xDE, 0xAD]))
            try await connection.simpleQuery(unsafeSQL: "SET bytea_output = escape")
            let escaped = await #expect(throws: PostgresError.self) { try await connection.simpleScalar("'\\x00ff'::bytea", [UInt8].self) }
            #expect(escaped?.message.contains("bytea_output") == true)
        }
    }

    @Test func jsonReadsFromItsText() async throws {
        struct Item: Codable, Equatable, Sendable { var color: String }
        try await TestDatabase.withSchema { connection async throws in
            #expect(try await connection.simpleScalar("'{\"color\":\"red\"}'::jsonb", PostgresJSON<Item>.self).value == Item(color: "red"))
            #expect(try await connection.simpleScalar("'{\"color\":\"blue\"}'::json", PostgresJSON<Item>.self).value == Item(color: "blue"))
            struct Row: Decodable, Equatable { var id: Int; var item: Item; var flag: Bool }
            let rows = try await connection.simpleQuery(unsafeSQL: "SELECT 3 AS id, '{\"color\":\"red\"}'::jsonb AS item, false AS flag")
            #expect(try rows[0].decode(Row.self) == Row(id: 3, item: Item(color: "red"), flag: false))
        }
    }

    @Test func typesWithoutATextReaderFailLoudly() async throws {
        try await TestDatabase.withSchema { connection async throws in
            let date = await #expect(throws: PostgresError.self) { try await connection.simpleScalar("'2024-01-02'::date", Date.self) }
            #expect(date?.code == .decoding)
            #expect(date?.column == "v")
            #expect(date?.message == "column \"v\": the date column came in text format (from simpleQuery), which Date cannot read; run the statement through query(), whose results are binary, or read the column as String")
            let array = await #expect(throws: PostgresError.self) { try await connection.simpleScalar("ARRAY[1,2]", [Int].self) }
            #expect(array?.message.contains("the int4[] column came in text format (from simpleQuery)") == true)
            // The same columns through query() are binary and read as before.
            #expect(try await connection.query("SELECT ARRAY[1,2] AS v").scalar([Int].self) == [1, 2])
        }
    }
}

extension PostgresConnection {
    /// The one value of `SELECT <expression> AS v` sent through the simple query protocol.
    fileprivate func simpleScalar<T: PostgresDecodable>(_ expression: String, _ type: T.Type) async throws -> T {
        try await simpleQuery(unsafeSQL: "SELECT \(expression) AS v").scalar(T.self)
    }
}
