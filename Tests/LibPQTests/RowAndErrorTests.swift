import Foundation
import LibPQ
import Logging
import Testing

@Suite("Rows, decoding and errors")
struct RowAndErrorTests {
    struct Product: Decodable, Equatable {
        struct Details: Codable, Equatable, Sendable { var color: String }
        var id: Int
        var sku: String
        var priceCents: Int64
        var description: String?
        var details: Details
        var tags: [String]
    }

    @Test func columnsByIndexAndNameAndWholeRows() async throws {
        try await TestDatabase.withSchema { connection in
            let rows = try await connection.query("""
                SELECT 1 AS id, 'SKU-1' AS sku, 250::bigint AS price_cents, NULL::text AS description,
                       '{"color":"red"}'::jsonb AS details, ARRAY['a','b'] AS tags
                """)
            #expect(rows.columns == ["id", "sku", "price_cents", "description", "details", "tags"])
            let row = try #require(rows.first)
            #expect(try row[0, as: Int.self] == 1)
            #expect(try row["sku", as: String.self] == "SKU-1")
            #expect(try row["description", as: String?.self] == nil)
            let product = try row.decode(Product.self)
            #expect(product == Product(id: 1, sku: "SKU-1", priceCents: 250, description: nil, details: .init(color: "red"), tags: ["a", "b"]))
        }
    }

    @Test func decodingErrorsNameTheColumnAndTheTypes() async throws {
        try await TestDatabase.withSchema { connection in
            let rows = try await connection.query("SELECT 'x'::text AS name, NULL::int AS qty")
            let row = try #require(rows.first)
            let mismatch = #expect(throws: PostgresError.self) { try row["name", as: Int.self] }
            #expect(mismatch?.code == .decoding)
            #expect(mismatch?.column == "name")
            #expect(mismatch?.message == "column \"name\": a text column cannot be read as Int")
            let null = #expect(throws: PostgresError.self) { try row["qty", as: Int.self] }
            #expect(null?.message == "column \"qty\": unexpected NULL for non-optional Int")
            let missing = #expect(throws: PostgresError.self) { try row["nope", as: Int.self] }
            #expect(missing?.message.contains("no column named \"nope\"") == true)
            struct Wrong: Decodable { var name: String; var qty: Int }
            let whole = #expect(throws: PostgresError.self) { try row.decode(Wrong.self) }
            #expect(whole?.column == "qty")
        }
    }

    @Test func rowsOutOfRangeFailInsteadOfReadingAsNull() async throws {
        try await TestDatabase.withSchema { connection in
            let rows = try await connection.query("SELECT n FROM generate_series(1, 2) AS n")
            #expect(try rows[1][0, as: Int.self] == 2)
            #expect(try rows[1].isNull(0) == false)
            for index in [2, -1, Int(Int32.max) + 1] {
                let past = #expect(throws: PostgresError.self) { try rows[index][0, as: Int?.self] }
                #expect(past?.code == .decoding)
                #expect(past?.message == "row \(index) is out of range (the result has 2 rows)")
                let null = #expect(throws: PostgresError.self) { try rows[index].isNull(0) }
                #expect(null?.message == "row \(index) is out of range (the result has 2 rows)")
            }
            struct N: Decodable { var n: Int? }
            let whole = #expect(throws: PostgresError.self) { try rows[2].decode(N.self) }
            #expect(whole?.message == "row 2 is out of range (the result has 2 rows)")
            let column = #expect(throws: PostgresError.self) { try rows[0].isNull(1) }
            #expect(column?.message == "no column at index 1 (the row has 1)")
            let empty = try await connection.query("SELECT 1 AS n WHERE false")
            let none = #expect(throws: PostgresError.self) { try empty[0]["n", as: Int?.self] }
            #expect(none?.message == "row 0 is out of range (the result has 0 rows)")
        }
    }

    @Test func userDefinedTypesFailClearlyAndReadWhenCastInSQL() async throws {
        try await TestDatabase.withSchema { connection in
            try await connection.query("CREATE TYPE mood AS ENUM ('ok', 'sad')")
            try await connection.query("CREATE TYPE pair AS (a int, b text)")
            try await connection.query("CREATE TABLE t (status mood, p pair)")
            try await connection.query("INSERT INTO t VALUES ('sad', ROW(1, 'x'))")
            let oid = try await connection.query("SELECT 'mood'::regtype::oid").scalar(UInt32.self)
            let rows = try await connection.query("SELECT status, p FROM t")
            let status = #expect(throws: PostgresError.self) { try rows[0]["status", as: String.self] }
            #expect(status?.code == .decoding)
            #expect(status?.column == "status")
            #expect(status?.dataType == "oid \(oid)")
            #expect(status?.message == "column \"status\": its type (oid \(oid)) is user-defined (an enum, composite, range or extension type such as citext), whose binary format LibPQ does not read; cast it to a built-in type in SQL, e.g. `status::text`")
            let optional = #expect(throws: PostgresError.self) { try rows[0]["status", as: String?.self] }
            #expect(optional?.message.contains("cast it to a built-in type in SQL, e.g. `status::text`") == true)
            let composite = #expect(throws: PostgresError.self) { try rows[0]["p", as: String.self] }
            #expect(composite?.message.contains("user-defined") == true)
            #expect(composite?.message.contains("`p::text`") == true)
            enum Mood: String, Decodable { case ok, sad }
            struct Row: Decodable { var status: Mood }
            let whole = #expect(throws: PostgresError.self) { try rows[0].decode(Row.self) }
            #expect(whole?.message.contains("`status::text`") == true)

            let cast = try await connection.query("SELECT status::text AS status, p::text AS p FROM t")
            #expect(try cast[0]["status", as: String.self] == "sad")
            #expect(try cast[0]["p", as: String.self] == "(1,x)")
            #expect(try cast[0].decode(Row.self).status == .sad)
            // Text format is each type's own output, so simpleQuery reads them as String.
            let simple = try await connection.simpleQuery(unsafeSQL: "SELECT status FROM t")
            #expect(try simple[0]["status", as: String.self] == "sad")
        }
    }

    @Test func domainsReadAsTheirBaseType() async throws {
        try await TestDatabase.withSchema { connection in
            try await connection.query("CREATE DOMAIN sku AS text CHECK (VALUE <> '')")
            try await connection.query("CREATE DOMAIN cents AS bigint CHECK (VALUE >= 0)")
            try await connection.query("CREATE TABLE t (sku sku, price cents)")
            try await connection.query("INSERT INTO t VALUES ('SKU-1', 250)")
            let rows = try await connection.query("SELECT sku, price FROM t")
            #expect(try rows[0]["sku", as: String.self] == "SKU-1")
            #expect(try rows[0]["price", as: Int64.self] == 250)
        }
    }

    @Test func affectedRowsAndCommandTag() async throws {
        try await TestDatabase.withSchema { connection in
            try await connection.query("CREATE TABLE t (n int)")
            let insert = try await connection.query("INSERT INTO t SELECT generate_series(1, 5)")
            #expect(insert.affectedRows == 5)
            #expect(insert.commandTag == "INSERT 0 5")
            #expect(try await connection.query("DELETE FROM t WHERE n > 3").affectedRows == 2)
        }
    }

    @Test func serverErrorsCarryEveryField() async throws {
        try await TestDatabase.withSchema { connection in
            try await connection.query("""
                CREATE TABLE parent (id int PRIMARY KEY);
                """)
            try await connection.query("""
                CREATE TABLE child (id int PRIMARY KEY, parent_id int CONSTRAINT child_parent_fk REFERENCES parent (id),
                                    email text NOT NULL UNIQUE, qty int CONSTRAINT qty_positive CHECK (qty > 0))
                """)
            try await connection.query("INSERT INTO parent VALUES (1)")
            try await connection.query("INSERT INTO child VALUES (1, 1, \("ann@example.com"), 1)")

            let unique = await #expect(throws: PostgresError.self) {
                try await connection.query("INSERT INTO child VALUES (2, 1, \("ann@example.com"), 1)")
            }
            #expect(unique?.sqlState == .uniqueViolation)
            #expect(unique?.constraint == "child_email_key")
            #expect(unique?.table == "child")
            #expect(unique?.detail?.contains("ann@example.com") == true)
            #expect(unique?.schema?.hasPrefix("t_") == true)
            // The detail quotes the row; the description must not.
            #expect(unique.map { "\($0)" }?.contains("ann@example.com") == false)

            let foreignKey = await #expect(throws: PostgresError.self) {
                try await connection.query("INSERT INTO child VALUES (3, 99, 'b@example.com', 1)")
            }
            #expect(foreignKey?.sqlState == .foreignKeyViolation)
            #expect(foreignKey?.constraint == "child_parent_fk")

            let check = await #expect(throws: PostgresError.self) {
                try await connection.query("INSERT INTO child VALUES (4, 1, 'c@example.com', 0)")
            }
            #expect(check?.sqlState == .checkViolation)
            #expect(check?.constraint == "qty_positive")

            let notNull = await #expect(throws: PostgresError.self) {
                try await connection.query("INSERT INTO child (id) VALUES (5)")
            }
            #expect(notNull?.sqlState == .notNullViolation)
            #expect(notNull?.column == "email")

            let syntax = await #expect(throws: PostgresError.self) {
                try await connection.query("SELECT 1 FROM WHERE")
            }
            #expect(syntax?.sqlState == .syntaxError)
            #expect(syntax?.position == 15)
            #expect(syntax?.severity == "ERROR")

            let hinted = await #expect(throws: PostgresError.self) {
                try await connection.query("SELECT nosuchfunction(1)")
            }
            #expect(hinted?.sqlState == .undefinedFunction)
            #expect(hinted?.hint?.isEmpty == false)

            let datatype = await #expect(throws: PostgresError.self) {
                try await connection.simpleQuery(unsafeSQL: "CREATE DOMAIN positive AS int CHECK (VALUE > 0); SELECT (-1)::positive")
            }
            #expect(datatype?.dataType == "positive")
        }
    }

    @Test func descriptionNeverEchoesBoundValues() async throws {
        try await TestDatabase.withSchema { connection in
            let secret = "hunter2-secret"
            let error = await #expect(throws: PostgresError.self) {
                try await connection.query("SELECT \(secret)::int")
            }
            #expect(error?.sqlState == .invalidTextRepresentation)
            #expect(error?.message.contains(secret) == true)  // the server did quote it…
            #expect(error.map { "\($0)" }?.contains(secret) == false)  // …but logs won't
            #expect(error.map { String(reflecting: $0) }?.contains(secret) == true)
        }
    }

    @Test func simpleQueryRunsScriptsAsPsqlWould() async throws {
        try await TestDatabase.withSchema { connection in
            try await connection.simpleQuery(unsafeSQL: """
                -- a comment; with a semicolon
                CREATE TABLE t (body text);
                CREATE FUNCTION f() RETURNS text LANGUAGE plpgsql AS $body$
                BEGIN
                    RETURN 'semi;colon';
                END
                $body$;
                DO $$ BEGIN INSERT INTO t VALUES (f()); END $$;
                """)
            let rows = try await connection.simpleQuery(unsafeSQL: "SELECT body FROM t")
            #expect(try rows.scalar(String.self) == "semi;colon")
        }
    }

    @Test func noticesGoToTheLogger() async throws {
        let recorder = LogRecorder()
        var logger = Logger(label: "notices") { _ in recorder }
        logger.logLevel = .debug
        let connection = try await PostgresConnection.connect(TestDatabase.url, logger: logger)
        defer { Task { await connection.close() } }
        try await connection.simpleQuery(unsafeSQL: "DO $$ BEGIN RAISE NOTICE 'stock is low: %', 3; END $$")
        #expect(recorder.messages.contains { $0.message == "stock is low: 3" && $0.level == .info })
    }
}
