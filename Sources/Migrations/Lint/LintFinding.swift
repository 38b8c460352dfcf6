import Foundation

/// One statement a lint rule objects to.
public struct LintFinding: Sendable, Equatable, Encodable, CustomStringConvertible {
    public let rule: LintRule
    public let path: String
    /// The line the statement starts on (1-based).
    public let line: Int
    /// The statement's first line, shortened: enough to find it.
    public let statement: String
    /// The table, index or setting the finding is about, when there is one.
    public let target: String?

    init(rule: LintRule, path: String, statement: SQLStatement, target: String?) {
        self.rule = rule
        self.path = path
        self.line = statement.line
        let first = statement.text.split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
        let trimmed = first.trimmingCharacters(in: .whitespaces)
        self.statement = trimmed.count > 100 ? String(trimmed.prefix(99)) + "…" : trimmed
        self.target = target
    }

    /// `path:line: rule-id: statement (target)`; the rule's reason and alternative are
    /// in `rule`, said once per rule by the command.
    public var description: String {
        "\(path):\(line): \(rule.id): \(statement)\(target.map { " [\($0)]" } ?? "")"
    }

    private enum CodingKeys: String, CodingKey {
        case rule, path, line, statement, target, reason, alternative
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(rule.id, forKey: .rule)
        try container.encode(path, forKey: .path)
        try container.encode(line, forKey: .line)
        try container.encode(statement, forKey: .statement)
        try container.encode(target, forKey: .target)
        try container.encode(rule.reason, forKey: .reason)
        try container.encode(rule.alternative, forKey: .alternative)
    }
}
