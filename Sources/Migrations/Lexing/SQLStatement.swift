/// One statement of a migration file.
public struct SQLStatement: Sendable, Equatable {
    /// The statement's text, from its first token to its terminating semicolon (included
    /// when there is one).
    public let text: String
    /// Where `text` starts in the file, in Unicode scalars — the unit of the server's
    /// error positions — and on which line (1-based).
    public let offset: Int
    public let line: Int
    /// Its words outside comments, quotes and dollar quotes, uppercased: enough to tell
    /// what kind of statement it is.
    public let words: [String]
    /// The contents of its string literals ('…', E'…', $$…$$ bodies are not included).
    public let literals: [String]

    /// True when the statement starts with `prefix`.
    func starts(with prefix: String...) -> Bool {
        words.starts(with: prefix)
    }
}

/// What the lexer could not make sense of.
public struct SQLLexerError: Error, Sendable, Equatable {
    public let reason: String
    public let line: Int
}
