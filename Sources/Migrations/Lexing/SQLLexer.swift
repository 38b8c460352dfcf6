/// Splits SQL into statements the way psql does, knowing PostgreSQL's quoting: `--` and
/// nested `/* */` comments, '…' strings (with `''`), E'…' strings (with backslash
/// escapes), "…" identifiers, and dollar quotes (`$$…$$`, `$tag$…$tag$`). A semicolon
/// inside any of those does not end a statement, nor does one inside parentheses or in
/// the body of a `CREATE FUNCTION … BEGIN ATOMIC … END` (tracked by BEGIN/CASE … END
/// depth, as psql does).
///
/// It does not parse SQL; it finds statement boundaries, words and string literals, which
/// is what the runner needs to decide how to run a file.
public struct SQLLexer {
    private let scalars: [Unicode.Scalar]
    private var position = 0
    private var line = 1

    private init(_ sql: String) {
        scalars = Array(sql.unicodeScalars)
    }

    /// The statements of `sql`; empty when it holds only whitespace and comments.
    public static func statements(in sql: String) throws(SQLLexerError) -> [SQLStatement] {
        var lexer = SQLLexer(sql)
        return try lexer.run()
    }

    private mutating func run() throws(SQLLexerError) -> [SQLStatement] {
        var statements: [SQLStatement] = []
        var start: (offset: Int, line: Int)?
        var words: [String] = []
        var literals: [String] = []
        var blockDepth = 0
        // Like psql, a semicolon inside parentheses does not end a statement: a rule's
        // `DO (INSERT …; UPDATE …)` is one statement.
        var parenDepth = 0

        func finish(through end: Int, into statements: inout [SQLStatement]) {
            guard let begin = start else { return }
            var text = String.UnicodeScalarView()
            text.append(contentsOf: scalars[begin.offset..<end])
            statements.append(SQLStatement(text: String(text), offset: begin.offset, line: begin.line, words: words, literals: literals))
            start = nil
            words = []
            literals = []
            blockDepth = 0
            parenDepth = 0
        }

        while position < scalars.count {
            let c = scalars[position]
            let next = peek(1)
            if c == "\n" { line += 1; position += 1; continue }
            if c == " " || c == "\t" || c == "\r" || c == "\u{0C}" { position += 1; continue }
            if c == "-" && next == "-" { skipLineComment(); continue }
            if c == "/" && next == "*" { try skipBlockComment(); continue }
            if start == nil { start = (position, line) }
            switch c {
            case "(":
                parenDepth += 1
                position += 1
            case ")":
                parenDepth = max(0, parenDepth - 1)
                position += 1
            case ";" where blockDepth == 0 && parenDepth == 0:
                position += 1
                // A lone semicolon is an empty statement: the server skips it, and so do we.
                if start?.offset == position - 1 { start = nil } else { finish(through: position, into: &statements) }
            case "'":
                literals.append(try readQuoted(quote: "'", backslashEscapes: false))
            case "\"":
                words.append(try readQuoted(quote: "\"", backslashEscapes: false))
            case "$" where dollarTagLength() != nil:
                try skipDollarQuoted()
            case _ where isIdentifierStart(c):
                let word = readWord()
                // E'…' (and e'…') is an escape string; U&'…' and B'…'/X'…' are plain.
                if (word == "E" || word == "e") && position < scalars.count && scalars[position] == "'" {
                    literals.append(try readQuoted(quote: "'", backslashEscapes: true))
                    continue
                }
                let upper = word.uppercased()
                words.append(upper)
                if isRoutineDefinition(words) {
                    if upper == "BEGIN" || upper == "CASE" { blockDepth += 1 }
                    if upper == "END" && blockDepth > 0 { blockDepth -= 1 }
                }
            default:
                position += 1
            }
        }
        finish(through: scalars.count, into: &statements)
        return statements
    }

    private func peek(_ ahead: Int) -> Unicode.Scalar? {
        position + ahead < scalars.count ? scalars[position + ahead] : nil
    }

    private func isIdentifierStart(_ c: Unicode.Scalar) -> Bool {
        c == "_" || c.properties.isAlphabetic
    }

    private func isIdentifierPart(_ c: Unicode.Scalar) -> Bool {
        isIdentifierStart(c) || ("0"..."9").contains(c) || c == "$"
    }

    /// CREATE [OR REPLACE] FUNCTION|PROCEDURE: the only statements whose bodies may hold
    /// bare semicolons (SQL-standard bodies, `BEGIN ATOMIC … END`).
    private func isRoutineDefinition(_ words: [String]) -> Bool {
        guard words.first == "CREATE", words.count >= 2 else { return false }
        let kind = words[1] == "OR" && words.count >= 4 ? words[3] : words[1]
        return kind == "FUNCTION" || kind == "PROCEDURE"
    }

    private mutating func readWord() -> String {
        var word = String.UnicodeScalarView()
        while position < scalars.count, isIdentifierPart(scalars[position]) {
            word.append(scalars[position])
            position += 1
        }
        return String(word)
    }

    private mutating func skipLineComment() {
        while position < scalars.count, scalars[position] != "\n" { position += 1 }
    }

    private mutating func skipBlockComment() throws(SQLLexerError) {
        let startLine = line
        var depth = 0
        while position < scalars.count {
            let c = scalars[position]
            if c == "/" && peek(1) == "*" { depth += 1; position += 2; continue }
            if c == "*" && peek(1) == "/" {
                depth -= 1
                position += 2
                if depth == 0 { return }
                continue
            }
            if c == "\n" { line += 1 }
            position += 1
        }
        throw SQLLexerError(reason: "unterminated /* comment", line: startLine)
    }

    /// Reads '…' or "…" (doubling the quote escapes it; with `backslashEscapes`, so does a
    /// backslash) and returns the contents.
    private mutating func readQuoted(quote: Unicode.Scalar, backslashEscapes: Bool) throws(SQLLexerError) -> String {
        let startLine = line
        var contents = String.UnicodeScalarView()
        position += 1
        while position < scalars.count {
            let c = scalars[position]
            if c == "\n" { line += 1 }
            if backslashEscapes && c == "\\" && position + 1 < scalars.count {
                if scalars[position + 1] == "\n" { line += 1 }
                contents.append(scalars[position + 1])
                position += 2
                continue
            }
            if c == quote {
                if peek(1) == quote {
                    contents.append(quote)
                    position += 2
                    continue
                }
                position += 1
                return String(contents)
            }
            contents.append(c)
            position += 1
        }
        let what = quote == "'" ? "string literal" : "quoted identifier"
        throw SQLLexerError(reason: "unterminated \(what)", line: startLine)
    }

    /// At a `$`: the length of a dollar-quote opening tag (`$$` or `$tag$`) here, or nil
    /// when this `$` is something else (`$1`, or part of an identifier).
    private func dollarTagLength() -> Int? {
        if position > 0, isIdentifierPart(scalars[position - 1]) { return nil }
        var end = position + 1
        if end < scalars.count, scalars[end] == "$" { return 2 }
        guard end < scalars.count, isIdentifierStart(scalars[end]) else { return nil }
        while end < scalars.count, scalars[end] != "$" {
            let c = scalars[end]
            guard isIdentifierStart(c) || ("0"..."9").contains(c) else { return nil }
            end += 1
        }
        return end < scalars.count ? end - position + 1 : nil
    }

    private mutating func skipDollarQuoted() throws(SQLLexerError) {
        let startLine = line
        let length = dollarTagLength()!
        let tag = Array(scalars[position..<position + length])
        position += length
        while position < scalars.count {
            if scalars[position] == "$", position + length <= scalars.count, Array(scalars[position..<position + length]) == tag {
                position += length
                return
            }
            if scalars[position] == "\n" { line += 1 }
            position += 1
        }
        var name = String.UnicodeScalarView()
        name.append(contentsOf: tag)
        throw SQLLexerError(reason: "unterminated dollar-quoted string \(String(name))", line: startLine)
    }
}
