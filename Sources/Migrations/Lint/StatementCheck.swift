import Foundation

/// The rules applied to one statement's tokens: a small recursive-descent reading of the
/// statements that take locks (CREATE/DROP INDEX, ALTER TABLE and its actions, …), not
/// a SQL parser. Anything it does not recognise is no finding: a linter that cries wolf
/// gets switched off.
struct StatementCheck {
    private let tokens: [SQLToken]
    private var position = 0
    private(set) var findings: [(rule: LintRule, target: String?)] = []

    init(tokens: [SQLToken]) {
        self.tokens = tokens
    }

    mutating func run(file: inout MigrationLinter.FileFacts, folder: inout MigrationLinter.FolderFacts) {
        switch keyword(at: 0) {
        case "CREATE": create(&file)
        case "ALTER":
            if keyword(at: 1) == "TABLE" { alterTable(&file, &folder) }
            if keyword(at: 1) == "DOMAIN" { alterDomain(file) }
        case "DROP": drop(file)
        case "REINDEX":
            if !hasKeyword("CONCURRENTLY") { report(.reindexNotConcurrent, nil) }
        case "VACUUM":
            if hasKeyword("FULL") { report(.tableRewrite, "VACUUM FULL") }
        case "CLUSTER":
            report(.tableRewrite, "CLUSTER")
        case "REFRESH":
            position = 3  // REFRESH MATERIALIZED VIEW
            let concurrently = accept("CONCURRENTLY")
            if let view = qualifiedName(), !concurrently, !file.tables.contains(view) { report(.refreshNotConcurrent, view) }
        case "SET", "RESET", "SELECT":
            lockTimeout()
        default:
            break
        }
    }

    // MARK: Statements

    private mutating func create(_ file: inout MigrationLinter.FileFacts) {
        position = 1
        _ = accept("OR", "REPLACE")
        while accept("TEMP") || accept("TEMPORARY") || accept("UNLOGGED") || accept("GLOBAL") || accept("LOCAL") {}
        if accept("TABLE") || accept("MATERIALIZED", "VIEW") {
            _ = accept("IF", "NOT", "EXISTS")
            if let table = qualifiedName() { file.tables.insert(table) }
        } else if accept("DOMAIN") {
            if let domain = qualifiedName() { file.domains.insert(domain) }
        } else if accept("UNIQUE", "INDEX") || accept("INDEX") {
            let concurrently = accept("CONCURRENTLY")
            _ = accept("IF", "NOT", "EXISTS")
            if keyword(at: position) != "ON", let index = qualifiedName() { file.indexes.insert(index) }
            guard accept("ON") else { return }
            _ = accept("ONLY")
            guard let table = qualifiedName() else { return }
            if !concurrently && !file.tables.contains(table) { report(.indexNotConcurrent, table) }
        }
    }

    private mutating func drop(_ file: MigrationLinter.FileFacts) {
        position = 1
        if accept("INDEX") {
            let concurrently = accept("CONCURRENTLY")
            _ = accept("IF", "EXISTS")
            let names = nameList()
            if !concurrently, let index = names.first(where: { !file.indexes.contains($0) }) { report(.dropIndexNotConcurrent, index) }
        } else if accept("TABLE") {
            _ = accept("IF", "EXISTS")
            let names = nameList()
            if !file.breaksOlderBinaries, let table = names.first(where: { !file.tables.contains($0) }) { report(.dropWithoutContract, table) }
        }
    }

    private mutating func alterTable(_ file: inout MigrationLinter.FileFacts, _ folder: inout MigrationLinter.FolderFacts) {
        position = 2
        _ = accept("IF", "EXISTS")
        _ = accept("ONLY")
        guard let table = qualifiedName() else { return }
        if peek()?.isSymbol("*") == true { position += 1 }
        let isNew = file.tables.contains(table)
        for action in actions() {
            var check = StatementCheck(tokens: action)
            check.alterTableAction(table: table, isNew: isNew, &file, &folder)
            if !isNew { findings += check.findings }
        }
    }

    /// One action of ALTER TABLE, from its first token.
    private mutating func alterTableAction(table: String, isNew: Bool, _ file: inout MigrationLinter.FileFacts, _ folder: inout MigrationLinter.FolderFacts) {
        if accept("ADD") {
            if ["CONSTRAINT", "CHECK", "FOREIGN", "UNIQUE", "PRIMARY", "EXCLUDE"].contains(keyword(at: position) ?? "") {
                addConstraint(table: table, &folder)
            } else {
                _ = accept("COLUMN")
                _ = accept("IF", "NOT", "EXISTS")
                addColumn(table: table)
            }
        } else if accept("ALTER") {
            if keyword(at: position) == "CONSTRAINT" { return }
            _ = accept("COLUMN")
            guard let column = name() else { return }
            if accept("TYPE") || accept("SET", "DATA", "TYPE") {
                report(.alterColumnType, "\(table).\(column)")
                if !isNew, let type = qualifiedName(), file.domains.contains(type) { file.domainsInUse.insert(type) }
            } else if accept("SET", "NOT", "NULL") {
                if !folder.provenNotNull.contains("\(table).\(column)") { report(.setNotNull, "\(table).\(column)") }
            }
        } else if accept("DROP") {
            if keyword(at: position) == "CONSTRAINT" { return }
            _ = accept("COLUMN")
            _ = accept("IF", "EXISTS")
            if let column = name(), !file.breaksOlderBinaries { report(.dropWithoutContract, "\(table).\(column)") }
        } else if accept("RENAME") {
            if keyword(at: position) == "CONSTRAINT" { return }
            if accept("TO") {
                report(.rename, table)
                if isNew, let renamed = qualifiedName() { file.tables.insert(renamed) }
            } else {
                _ = accept("COLUMN")
                if let column = name() { report(.rename, "\(table).\(column)") }
            }
        } else if accept("SET") {
            if accept("TABLESPACE") || accept("LOGGED") || accept("UNLOGGED") || accept("ACCESS", "METHOD") {
                report(.tableRewrite, table)
            }
        } else if accept("VALIDATE", "CONSTRAINT"), let constraint = name(), let proven = folder.notNullChecks[constraint] {
            folder.provenNotNull.insert("\(proven.table).\(proven.column)")
        }
    }

    private mutating func addConstraint(table: String, _ folder: inout MigrationLinter.FolderFacts) {
        let constraint = accept("CONSTRAINT") ? name() : nil
        let notValid = hasKeywords("NOT", "VALID")
        if accept("CHECK") {
            if !notValid { report(.constraintNotValid, table) }
            // CHECK (column IS NOT NULL), or with the column in parentheses.
            let inner = tokens[position...].filter { !$0.isSymbol("(") && !$0.isSymbol(")") }
            if inner.count >= 4, let column = inner.first?.name, inner.dropFirst().prefix(3).map(\.keyword) == ["IS", "NOT", "NULL"] {
                if let constraint { folder.notNullChecks[constraint] = (table, column) }
                if !notValid { folder.provenNotNull.insert("\(table).\(column)") }
            }
        } else if accept("FOREIGN") {
            if !notValid { report(.constraintNotValid, table) }
        } else if accept("UNIQUE") || accept("PRIMARY", "KEY") || accept("EXCLUDE") {
            if !hasKeywords("USING", "INDEX") { report(.constraintBuildsIndex, table) }
        }
    }

    private mutating func addColumn(table: String) {
        guard let column = name() else { return }
        let target = "\(table).\(column)"
        let rest = tokens[position...]
        let type = rest.first?.keyword ?? ""
        let generated = hasKeyword("GENERATED")
        let hasDefault = hasKeyword("DEFAULT")
        if ["SERIAL", "BIGSERIAL", "SMALLSERIAL", "SERIAL2", "SERIAL4", "SERIAL8"].contains(type)
            || (generated && (hasKeyword("IDENTITY") || hasKeyword("STORED"))) {
            report(.addColumnRewrites, target)
        } else if hasDefault, defaultIsVolatile() {
            report(.addColumnRewrites, target)
        } else if hasKeywords("NOT", "NULL") && !hasDefault && !generated {
            report(.addColumnNotNullWithoutDefault, target)
        }
        if hasKeyword("REFERENCES") && !hasKeywords("NOT", "VALID") { report(.constraintNotValid, target) }
        if hasKeyword("UNIQUE") || hasKeywords("PRIMARY", "KEY") { report(.constraintBuildsIndex, target) }
    }

    private mutating func alterDomain(_ file: MigrationLinter.FileFacts) {
        position = 2
        guard let domain = qualifiedName(), accept("ADD") else { return }
        let isNewAndUnused = file.domains.contains(domain) && !file.domainsInUse.contains(domain)
        if !hasKeywords("NOT", "VALID") && !isNewAndUnused { report(.domainConstraintNotValid, domain) }
    }

    /// `SET [SESSION | LOCAL] lock_timeout …`, `RESET lock_timeout`, and
    /// `SELECT set_config('lock_timeout', …)`.
    private mutating func lockTimeout() {
        let value: String?
        switch keyword(at: 0) {
        case "RESET":
            guard tokens.dropFirst().first?.name == "lock_timeout" else { return }
            report(.lockTimeoutDisabled, "RESET lock_timeout")
            return
        case "SET":
            position = 1
            _ = accept("SESSION") || accept("LOCAL")
            guard name() == "lock_timeout", accept("TO") || peek()?.isSymbol("=") == true else { return }
            if peek()?.isSymbol("=") == true { position += 1 }
            value = peek()?.text
        default:
            guard let call = tokens.firstIndex(where: { $0.name == "set_config" }),
                  call + 4 < tokens.count, tokens[call + 2].kind == .string, tokens[call + 2].text.lowercased() == "lock_timeout" else { return }
            value = tokens[call + 4].text
        }
        guard let value else { return }
        if value.uppercased() == "DEFAULT" {
            report(.lockTimeoutDisabled, "lock_timeout = DEFAULT")
            return
        }
        guard let milliseconds = Self.milliseconds(value) else { return }
        if milliseconds == 0 || milliseconds > 10_000 { report(.lockTimeoutDisabled, "lock_timeout = \(value)") }
    }

    /// A lock_timeout setting in milliseconds: a bare number is milliseconds; units as
    /// PostgreSQL takes them.
    static func milliseconds(_ text: String) -> Double? {
        let trimmed = text.trimmingCharacters(in: .whitespaces).lowercased()
        let digits = trimmed.prefix { $0.isNumber || $0 == "." }
        guard let number = Double(digits) else { return nil }
        let unit = trimmed.dropFirst(digits.count).trimmingCharacters(in: .whitespaces)
        let scale: [String: Double] = ["": 1, "us": 0.001, "ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000, "d": 86_400_000]
        return scale[unit].map { number * $0 }
    }

    // MARK: Tokens

    private static let volatileFunctions: Set<String> = [
        "random", "gen_random_uuid", "uuid_generate_v1", "uuid_generate_v1mc", "uuid_generate_v4",
        "clock_timestamp", "timeofday", "nextval", "txid_current", "pg_current_xact_id",
    ]

    /// True when the column's DEFAULT expression calls a function known to be volatile:
    /// such a default is evaluated per row, so the table is rewritten.
    private func defaultIsVolatile() -> Bool {
        guard let start = tokens[position...].firstIndex(where: { $0.keyword == "DEFAULT" }) else { return false }
        return tokens[(start + 1)...].contains { token in token.name.map(Self.volatileFunctions.contains) ?? false }
    }

    private mutating func report(_ rule: LintRule, _ target: String?) {
        findings.append((rule, target))
    }

    private func peek() -> SQLToken? { position < tokens.count ? tokens[position] : nil }

    private func keyword(at index: Int) -> String? { index < tokens.count ? tokens[index].keyword : nil }

    private func hasKeyword(_ keyword: String) -> Bool {
        tokens[position...].contains { $0.keyword == keyword }
    }

    /// The keywords appear in a row anywhere from the current token on.
    private func hasKeywords(_ keywords: String...) -> Bool {
        guard tokens.count - position >= keywords.count else { return false }
        return (position...(tokens.count - keywords.count)).contains { start in
            keywords.indices.allSatisfy { tokens[start + $0].keyword == keywords[$0] }
        }
    }

    /// Consumes the keywords if the next tokens are exactly they.
    private mutating func accept(_ keywords: String...) -> Bool {
        guard position + keywords.count <= tokens.count,
              keywords.indices.allSatisfy({ tokens[position + $0].keyword == keywords[$0] }) else { return false }
        position += keywords.count
        return true
    }

    private mutating func name() -> String? {
        guard let name = peek()?.name else { return nil }
        position += 1
        return name
    }

    /// `a`, `s.a`, `"S"."A"`: the last part, which is how the linter tells tables apart
    /// (it cannot know the search_path).
    private mutating func qualifiedName() -> String? {
        guard var last = name() else { return nil }
        while peek()?.isSymbol(".") == true, position + 1 < tokens.count, let next = tokens[position + 1].name {
            last = next
            position += 2
        }
        return last
    }

    /// Comma-separated names up to CASCADE/RESTRICT or the end.
    private mutating func nameList() -> [String] {
        var names: [String] = []
        while let name = qualifiedName() {
            names.append(name)
            guard peek()?.isSymbol(",") == true else { break }
            position += 1
        }
        return names
    }

    /// The remaining tokens split at commas outside parentheses: ALTER TABLE's actions.
    private func actions() -> [[SQLToken]] {
        var actions: [[SQLToken]] = [[]]
        var depth = 0
        for token in tokens[position...] {
            if token.isSymbol("(") { depth += 1 }
            if token.isSymbol(")") { depth = max(0, depth - 1) }
            if token.isSymbol(",") && depth == 0 { actions.append([]); continue }
            if token.isSymbol(";") && depth == 0 { continue }
            actions[actions.count - 1].append(token)
        }
        return actions.filter { !$0.isEmpty }
    }
}
