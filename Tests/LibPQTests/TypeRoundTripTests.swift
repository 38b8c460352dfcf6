import Foundation
import LibPQ
import Testing

@Suite("Types round trip through the server")
struct TypeRoundTripTests {
    /// Sends `value` as a parameter and reads it back, both through `SELECT $1` and
    /// through a table column of `columnType`.
    func roundTrip<T: PostgresEncodable & PostgresDecodable & Equatable>(_ value: T, column columnType: String, on connection: PostgresConnection) async throws {
        let echoed = try await connection.query("SELECT \(value) AS v").scalar(T.self)
        #expect(echoed == value, "SELECT $1 of \(T.self)")
        try await connection.query("CREATE TEMP TABLE IF NOT EXISTS rt (v \(unsafeRaw: columnType))")
        try await connection.query("INSERT INTO rt (v) VALUES (\(value))")
        let stored = try await connection.query("SELECT v FROM rt").scalar(T.self)
        #expect(stored == value, "\(columnType) column of \(T.self)")
        try await connection.query("DROP TABLE rt")
    }

    @Test func integers() async throws {
        try await TestDatabase.withSchema { connection in
            for value in [Int64.min, -1, 0, 1, Int64.max] { try await roundTrip(value, column: "bigint", on: connection) }
            for value in [Int.min, 0, Int.max] { try await roundTrip(value, column: "bigint", on: connection) }
            for value in [Int32.min, 0, Int32.max] { try await roundTrip(value, column: "integer", on: connection) }
            for value in [Int16.min, 0, Int16.max] { try await roundTrip(value, column: "smallint", on: connection) }
            // Widening and checked narrowing between integer widths.
            #expect(try await connection.query("SELECT 7::int2 AS v").scalar(Int64.self) == 7)
            #expect(try await connection.query("SELECT 70000::int8 AS v").scalar(Int32.self) == 70000)
            let error = await #expect(throws: PostgresError.self) {
                _ = try await connection.query("SELECT 70000::int8 AS v").scalar(Int16.self)
            }
            #expect(error?.code == .decoding)
            #expect(error?.message.contains("does not fit in Int16") == true)
        }
    }

    @Test func floatingPoint() async throws {
        try await TestDatabase.withSchema { connection in
            for value in [0.0, -0.0, 1.5, .pi, .infinity, -.infinity, .greatestFiniteMagnitude, .leastNonzeroMagnitude] {
                try await roundTrip(value, column: "double precision", on: connection)
            }
            for value: Float in [0, 1.25, .infinity, -.infinity, .greatestFiniteMagnitude] {
                try await roundTrip(value, column: "real", on: connection)
            }
            let nan = try await connection.query("SELECT \(Double.nan) AS v").scalar(Double.self)
            #expect(nan.isNaN)
            let nanFloat = try await connection.query("SELECT \(Float.nan) AS v").scalar(Float.self)
            #expect(nanFloat.isNaN)
        }
    }

    @Test func booleansAndStrings() async throws {
        try await TestDatabase.withSchema { connection in
            try await roundTrip(true, column: "boolean", on: connection)
            try await roundTrip(false, column: "boolean", on: connection)
            let strings = [
                "", "plain", "emoji 🧑🏽‍🚀👩‍👩‍👧‍👦", "combining e\u{301} a\u{308}", "right-to-left שלום مرحبا",
                "quote ' double \" backslash \\ newline \n tab \t", String(repeating: "x", count: 100_000),
            ]
            for value in strings { try await roundTrip(value, column: "text", on: connection) }
            // Composed and decomposed forms stay distinct: nothing normalizes on the way.
            let decomposed = try await connection.query("SELECT length(\("e\u{301}")) AS v").scalar(Int.self)
            #expect(decomposed == 2)
        }
    }

    @Test func textWithNULIsRejectedBeforeReachingTheServer() async throws {
        try await TestDatabase.withSchema { connection in
            let error = await #expect(throws: PostgresError.self) {
                try await connection.query("SELECT \("a\u{0}b") AS v")
            }
            #expect(error?.code == .encoding)
        }
    }

    @Test func bytes() async throws {
        try await TestDatabase.withSchema { connection in
            let megabyte = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
            for value in [[], [0], [0, 255, 0], megabyte] as [[UInt8]] {
                try await roundTrip(value, column: "bytea", on: connection)
            }
            try await roundTrip(Data(megabyte), column: "bytea", on: connection)
            #expect(try await connection.query("SELECT length(\(megabyte)) AS v").scalar(Int.self) == 1 << 20)
        }
    }

    @Test func datesUUIDsAndDecimals() async throws {
        try await TestDatabase.withSchema { connection in
            let microsecond = Date(timeIntervalSince1970: 1_700_000_000.123456)
            let echoed = try await connection.query("SELECT \(microsecond) AS v").scalar(Date.self)
            #expect(abs(echoed.timeIntervalSince1970 - microsecond.timeIntervalSince1970) < 0.000_001)
            for value in [Date(timeIntervalSince1970: 0), Date(timeIntervalSince1970: -1_000_000_000), Date(timeIntervalSince1970: 946_684_800)] {
                try await roundTrip(value, column: "timestamptz", on: connection)
            }
            #expect(try await connection.query("SELECT 'infinity'::timestamptz AS v").scalar(Date.self) == .distantFuture)
            #expect(try await connection.query("SELECT '2000-01-02'::date AS v").scalar(Date.self) == Date(timeIntervalSince1970: 946_684_800 + 86_400))

            for value in [UUID(), UUID(uuidString: "00000000-0000-0000-0000-000000000000")!, UUID(uuidString: "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF")!] {
                try await roundTrip(value, column: "uuid", on: connection)
            }
            let fromServer = try await connection.query("SELECT 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS v").scalar(UUID.self)
            #expect(fromServer.uuidString == "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11")

            let decimals = ["0", "1", "-1", "0.1", "-0.0001", "12345.6789", "10000", "0.00000001", "99999999999999999999999999999999999999", "-1234567890123456789.0123456789"]
            for text in decimals {
                let value = Decimal(string: text, locale: Locale(identifier: "en_US_POSIX"))!
                try await roundTrip(value, column: "numeric", on: connection)
                // And the server reads the same number we meant.
                let asText = try await connection.query("SELECT (\(value))::text AS v").scalar(String.self)
                #expect(Decimal(string: asText, locale: Locale(identifier: "en_US_POSIX")) == value)
            }
            #expect(try await connection.query("SELECT 12.50::numeric(10,2) AS v").scalar(Decimal.self) == Decimal(string: "12.5"))
            let tooPrecise = await #expect(throws: PostgresError.self) {
                _ = try await connection.query("SELECT 1.000000000000000000000000000000000000001::numeric AS v").scalar(Decimal.self)
            }
            #expect(tooPrecise?.message.contains("significant digits") == true)
        }
    }

    struct Address: Codable, Equatable, Sendable {
        var street: String
        var tags: [String]
        var floor: Int?
    }

    @Test func jsonValues() async throws {
        try await TestDatabase.withSchema { connection in
            let address = Address(street: "Main St 1 🏠", tags: ["home", "\"quoted\""], floor: nil)
            let echoed = try await connection.query("SELECT \(json: address) AS v").scalar(PostgresJSON<Address>.self)
            #expect(echoed.value == address)
            let street = try await connection.query("SELECT (\(json: address))->>'street' AS v").scalar(String.self)
            #expect(street == address.street)
            let text = try await connection.query("SELECT '{\"a\": 1}'::json AS v").scalar(String.self)
            #expect(text == "{\"a\": 1}")
        }
    }

    @Test func arrays() async throws {
        try await TestDatabase.withSchema { connection in
            try await roundTrip([1, 2, 3] as [Int], column: "bigint[]", on: connection)
            try await roundTrip([] as [Int], column: "bigint[]", on: connection)
            try await roundTrip(["a", "", "🧑🏽‍🚀", "with,comma", "{brace}"], column: "text[]", on: connection)
            try await roundTrip([1, nil, 3] as [Int32?], column: "integer[]", on: connection)
            try await roundTrip([true, false], column: "boolean[]", on: connection)
            try await roundTrip([1.5, -.infinity], column: "double precision[]", on: connection)
            try await roundTrip([UUID(), UUID()], column: "uuid[]", on: connection)
            try await roundTrip([Decimal(string: "1.5")!, Decimal(-2)], column: "numeric[]", on: connection)
            let ids = try await connection.query("SELECT x FROM unnest(\([10, 20, 30])) AS x WHERE x = ANY(\([20, 30]))")
            #expect(try ids.map { try $0[0, as: Int.self] } == [20, 30])
            let multi = await #expect(throws: PostgresError.self) {
                _ = try await connection.query("SELECT ARRAY[[1,2],[3,4]] AS v").scalar([Int].self)
            }
            #expect(multi?.message.contains("dimensional") == true)
        }
    }

    @Test func nulls() async throws {
        try await TestDatabase.withSchema { connection in
            try await roundTrip(Int?.none, column: "bigint", on: connection)
            try await roundTrip(String?.none, column: "text", on: connection)
            try await roundTrip(Date?.none, column: "timestamptz", on: connection)
            try await roundTrip(UUID?.none, column: "uuid", on: connection)
            try await roundTrip([UInt8]?.none, column: "bytea", on: connection)
            try await roundTrip(Optional("present"), column: "text", on: connection)
            #expect(try await connection.query("SELECT \(Int?.none) IS NULL AS v").scalar(Bool.self))
            #expect(try await connection.query("SELECT \("") IS NULL AS v").scalar(Bool.self) == false)
        }
    }

    /// Each value's length travels in the bindings' byte buffer just ahead of it: NULLs,
    /// empty values and values of different widths side by side, and queries joined with
    /// `append`, must each come back in their own place.
    @Test func mixedParametersEachKeepTheirPlace() async throws {
        try await TestDatabase.withSchema { connection in
            let row = try await connection.query("""
                SELECT \(Int64(-2)) AS a, \(String?.none) AS b, \("") AS c, \([UInt8]()) AS d,
                       \(Int16(7)) AS e, \(Int?.none) AS f, \("tail é") AS g, \([UInt8]([0, 255])) AS h
                """).first!
            #expect(try row["a", as: Int64.self] == -2)
            #expect(try row["b", as: String?.self] == nil)
            #expect(try row["c", as: String.self] == "")
            #expect(try row["d", as: [UInt8].self] == [])
            #expect(try row["e", as: Int16.self] == 7)
            #expect(try row["f", as: Int?.self] == nil)
            #expect(try row["g", as: String.self] == "tail é")
            #expect(try row["h", as: [UInt8].self] == [0, 255])

            var joined: PostgresQuery = "SELECT \(String?.none)::text AS a, \("left") AS b"
            joined.append(", \(Int32(41)) + 1 AS c, \(Int?.none)::int8 IS NULL AS d, \("") AS e")
            let second = try await connection.query(joined).first!
            #expect(try second["a", as: String?.self] == nil)
            #expect(try second["b", as: String.self] == "left")
            #expect(try second["c", as: Int32.self] == 42)
            #expect(try second["d", as: Bool.self])
            #expect(try second["e", as: String.self] == "")
        }
    }

    @Test func injectionStringsAreStoredVerbatim() async throws {
        try await TestDatabase.withSchema { connection in
            try await connection.query("CREATE TABLE notes (body text)")
            let attacks = [
                "'; DROP TABLE notes; --", "\\'; DELETE FROM notes; --", "$1", "$$ || pg_sleep(1) || $$",
                "' OR '1'='1", "\"); DROP SCHEMA public CASCADE; --", "E'\\x27'",
            ]
            for attack in attacks {
                try await connection.query("INSERT INTO notes (body) VALUES (\(attack))")
            }
            let stored = try await connection.query("SELECT body FROM notes").map { try $0[0, as: String.self] }
            #expect(stored == attacks)
            #expect(try await connection.query("SELECT count(*) FROM notes WHERE body = \(attacks[0])").scalar(Int.self) == 1)
        }
    }

    @Test func identifierInterpolationQuotes() async throws {
        try await TestDatabase.withSchema { connection in
            let table = "odd \"name\"; DROP TABLE x"
            try await connection.query("CREATE TABLE \(identifier: table) (id int)")
            try await connection.query("INSERT INTO \(identifier: table) VALUES (1)")
            #expect(try await connection.query("SELECT count(*) FROM \(identifier: table)").scalar(Int.self) == 1)
        }
    }
}
