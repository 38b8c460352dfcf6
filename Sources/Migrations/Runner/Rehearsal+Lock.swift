extension Rehearsal {
    /// A lock a file took on a relation, with what it weighs: how many rows and bytes the
    /// relation had, so that a deploy can tell a lock on an empty table from one on a
    /// table its service reads all day.
    public struct Lock: Sendable, Codable, Equatable {
        /// What kind of relation (`pg_class.relkind`).
        public enum Kind: String, Sendable, Codable {
            case table
            case partitionedTable = "partitioned_table"
            case index
            case partitionedIndex = "partitioned_index"
            case sequence
            case view
            case materializedView = "materialized_view"
            case foreignTable = "foreign_table"
            case compositeType = "composite_type"
            case toast
            case other

            init(relkind: String) {
                self = switch relkind {
                case "r": .table
                case "p": .partitionedTable
                case "i": .index
                case "I": .partitionedIndex
                case "S": .sequence
                case "v": .view
                case "m": .materializedView
                case "f": .foreignTable
                case "c": .compositeType
                case "t": .toast
                default: .other
                }
            }
        }

        /// PostgreSQL's table-level lock modes, weakest first, named as `pg_locks` names
        /// them.
        public enum Mode: String, Sendable, Codable, Comparable, CaseIterable {
            case accessShare = "AccessShareLock"
            case rowShare = "RowShareLock"
            case rowExclusive = "RowExclusiveLock"
            case shareUpdateExclusive = "ShareUpdateExclusiveLock"
            case share = "ShareLock"
            case shareRowExclusive = "ShareRowExclusiveLock"
            case exclusive = "ExclusiveLock"
            case accessExclusive = "AccessExclusiveLock"

            /// What other sessions can no longer do on the relation while it is held.
            public var blocks: String {
                switch self {
                case .accessExclusive: "reads and writes"
                case .exclusive: "writes (reads go on)"
                case .share, .shareRowExclusive: "writes"
                case .shareUpdateExclusive: "schema changes and vacuum"
                case .rowShare, .rowExclusive, .accessShare: "only stronger locks"
                }
            }

            public static func < (a: Mode, b: Mode) -> Bool {
                allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
            }
        }

        /// `schema.name`, as it was before the rehearsal when it existed then.
        public var relation: String
        public var kind: Kind
        /// The strongest mode the file newly took on it.
        public var mode: Mode
        /// The line of the statement that took it; nil when it is inferred from a rewrite.
        public var line: Int?
        /// The relation existed before the rehearsal. A lock on one the pending files
        /// create themselves keeps nobody waiting.
        public var existedBefore: Bool
        /// The file rewrote it (see `Rehearsal.rewritten`).
        public var rewritten: Bool
        /// An earlier file of the rehearsal already held the lock (see `Rehearsal`); the
        /// file's rewrite shows it needs it too.
        public var heldByEarlierFile: Bool
        /// For tables and materialized views that existed before: `count(*)` as the file
        /// left them, or, for big ones, the planner's estimate (`rowsEstimated`). nil
        /// when not known (a big table never analyzed; other kinds of relation).
        public var rows: Int64?
        public var rowsEstimated: Bool
        /// `pg_total_relation_size` (indexes and TOAST included), for relations that
        /// existed before; an estimate from `relpages` for one the file dropped.
        public var bytes: Int64?

        /// Whether the lock stops the readers and writers of a table that other sessions
        /// use: ACCESS EXCLUSIVE on, or a rewrite of, a table (or materialized view) that
        /// existed before the rehearsal. A partitioned table's partitions are locked and
        /// listed one by one, so they count instead of it.
        public var blocksTable: Bool {
            existedBefore && (kind == .table || kind == .materializedView) && (mode == .accessExclusive || rewritten)
        }
    }
}
