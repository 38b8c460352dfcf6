/// The invariants the migration lexer's fuzz target (`Fuzz/`) holds it to; also run by the
/// tests that replay the committed corpus. Nil when they hold, or what broke. SPI, not API.
@_spi(Fuzzing) public enum MigrationFuzzChecks {
    /// Each statement's text is the input's, at its offset; statements come in order and
    /// never overlap; each one's line is where its offset falls.
    public static func lexer(_ bytes: [UInt8]) -> String? {
        let sql = String(decoding: bytes, as: UTF8.self)
        guard let statements = try? SQLLexer.statements(in: sql) else { return nil }
        let scalars = Array(sql.unicodeScalars)
        var end = 0
        for statement in statements {
            let text = Array(statement.text.unicodeScalars)
            guard statement.offset >= end, statement.offset + text.count <= scalars.count else {
                return "statement at \(statement.offset) overlaps or runs past the end"
            }
            guard Array(scalars[statement.offset..<(statement.offset + text.count)]) == text else {
                return "statement at \(statement.offset) is not the input's text"
            }
            let line = 1 + scalars[..<statement.offset].filter { $0 == "\n" }.count
            guard statement.line == line else { return "statement at \(statement.offset) says line \(statement.line), is on \(line)" }
            guard !text.isEmpty else { return "an empty statement at \(statement.offset)" }
            end = statement.offset + text.count
        }
        return nil
    }
}
