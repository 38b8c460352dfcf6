/// A token of one statement, for the linter: enough of PostgreSQL's lexical rules to
/// tell keywords from quoted names and string contents, and to see commas and
/// parentheses. The statement comes from `SQLLexer`, so it is known to be well formed.
struct SQLToken: Equatable, Sendable {
    enum Kind: Equatable, Sendable {
        /// A keyword or an unquoted name.
        case word
        /// A "quoted" name; `text` is its contents.
        case quotedName
        /// A string or dollar-quoted body; `text` is its contents.
        case string
        case number
        /// One character of punctuation or an operator.
        case symbol
    }

    let kind: Kind
    let text: String

    /// The word in upper case, for comparing with keywords; nil for anything but a word.
    var keyword: String? { kind == .word ? text.uppercased() : nil }

    /// How PostgreSQL names the object: unquoted names fold to lower case.
    var name: String? {
        switch kind {
        case .word: text.lowercased()
        case .quotedName: text
        default: nil
        }
    }

    func isSymbol(_ symbol: String) -> Bool { kind == .symbol && text == symbol }

    /// The tokens of `sql`, comments left out.
    static func tokens(of sql: String) -> [SQLToken] {
        let s = Array(sql.unicodeScalars)
        var tokens: [SQLToken] = []
        var i = 0
        func string(_ range: Range<Int>) -> String {
            var view = String.UnicodeScalarView()
            view.append(contentsOf: s[range])
            return String(view)
        }
        func isWordStart(_ c: Unicode.Scalar) -> Bool { c == "_" || c.properties.isAlphabetic }
        func isWordPart(_ c: Unicode.Scalar) -> Bool { isWordStart(c) || ("0"..."9").contains(c) || c == "$" }
        /// Reads a quoted run from the opening quote at `i`; doubled quotes escape it.
        func quoted(_ quote: Unicode.Scalar, backslashes: Bool) -> String {
            var contents = String.UnicodeScalarView()
            i += 1
            while i < s.count {
                if backslashes && s[i] == "\\" && i + 1 < s.count { contents.append(s[i + 1]); i += 2; continue }
                if s[i] == quote {
                    if i + 1 < s.count && s[i + 1] == quote { contents.append(quote); i += 2; continue }
                    i += 1
                    break
                }
                contents.append(s[i])
                i += 1
            }
            return String(contents)
        }
        while i < s.count {
            let c = s[i]
            let next: Unicode.Scalar? = i + 1 < s.count ? s[i + 1] : nil
            if c.properties.isWhitespace { i += 1; continue }
            if c == "-" && next == "-" {
                while i < s.count && s[i] != "\n" { i += 1 }
                continue
            }
            if c == "/" && next == "*" {
                var depth = 0
                while i < s.count {
                    if s[i] == "/" && i + 1 < s.count && s[i + 1] == "*" { depth += 1; i += 2; continue }
                    if s[i] == "*" && i + 1 < s.count && s[i + 1] == "/" {
                        depth -= 1
                        i += 2
                        if depth == 0 { break }
                        continue
                    }
                    i += 1
                }
                continue
            }
            if c == "'" {
                tokens.append(SQLToken(kind: .string, text: quoted("'", backslashes: false)))
                continue
            }
            if c == "\"" {
                tokens.append(SQLToken(kind: .quotedName, text: quoted("\"", backslashes: false)))
                continue
            }
            if c == "$", let tagEnd = dollarTagEnd(s, from: i) {
                let tag = Array(s[i...tagEnd])
                var j = tagEnd + 1
                while j + tag.count <= s.count && Array(s[j..<j + tag.count]) != tag { j += 1 }
                let bodyEnd = min(j, s.count)
                tokens.append(SQLToken(kind: .string, text: string(tagEnd + 1..<bodyEnd)))
                i = min(s.count, j + tag.count)
                continue
            }
            if isWordStart(c) {
                if (c == "E" || c == "e") && next == "'" {
                    i += 1
                    tokens.append(SQLToken(kind: .string, text: quoted("'", backslashes: true)))
                    continue
                }
                let start = i
                while i < s.count && isWordPart(s[i]) { i += 1 }
                tokens.append(SQLToken(kind: .word, text: string(start..<i)))
                continue
            }
            if ("0"..."9").contains(c) {
                let start = i
                while i < s.count && (("0"..."9").contains(s[i]) || s[i] == "." || s[i] == "_") { i += 1 }
                tokens.append(SQLToken(kind: .number, text: string(start..<i)))
                continue
            }
            tokens.append(SQLToken(kind: .symbol, text: String(Character(c))))
            i += 1
        }
        return tokens
    }

    /// The index of the closing `$` of a dollar-quote tag opening at `start`, if one does.
    private static func dollarTagEnd(_ s: [Unicode.Scalar], from start: Int) -> Int? {
        if start > 0 && (s[start - 1] == "_" || s[start - 1].properties.isAlphabetic || ("0"..."9").contains(s[start - 1])) { return nil }
        var end = start + 1
        while end < s.count && s[end] != "$" {
            guard s[end] == "_" || s[end].properties.isAlphabetic || (end > start + 1 && ("0"..."9").contains(s[end])) else { return nil }
            end += 1
        }
        return end < s.count ? end : nil
    }
}
