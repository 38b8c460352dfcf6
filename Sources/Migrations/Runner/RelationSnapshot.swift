import LibPQ

/// The database's own relations as the rehearsal's transaction sees them at one moment:
/// enough to tell afterwards which a file rewrote (its data file, `relfilenode`, was
/// replaced), which existed before the rehearsal, and what a relation a file dropped was
/// called and how big it was. The system schemas are left out: every statement touches
/// their catalogs, and no migration's lock on them keeps a service waiting.
///
/// Every name in these queries is qualified with `pg_catalog`: a file may change the
/// `search_path` of the transaction they run in.
struct RelationSnapshot {
    struct Relation {
        let oid: Int64
        let schema: String
        let name: String
        let kind: Rehearsal.Lock.Kind
        /// `relfilenode`; 0 for relations without storage (views, partitioned tables).
        let fileNode: Int64
        /// `reltuples`: the planner's estimate of its rows; -1 when never vacuumed or
        /// analyzed.
        let estimatedRows: Double
        let pages: Int64

        var qualifiedName: String { "\(schema).\(name)" }
    }

    /// A relation lock the rehearsal's session holds.
    struct HeldLock: Hashable {
        let oid: Int64
        let mode: Rehearsal.Lock.Mode
    }

    private let relations: [Int64: Relation]

    subscript(oid: Int64) -> Relation? { relations[oid] }

    static func take(on connection: PostgresConnection) async throws -> RelationSnapshot {
        let rows = try await connection.query("""
            SELECT c.oid::int8, n.nspname::text, c.relname::text, c.relkind::text, c.relfilenode::int8,
                   c.reltuples::float8, c.relpages::int8
            FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
              AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'
            """)
        var relations: [Int64: Relation] = [:]
        for row in rows {
            let relation = Relation(
                oid: try row[0, as: Int64.self], schema: try row[1, as: String.self], name: try row[2, as: String.self],
                kind: Rehearsal.Lock.Kind(relkind: try row[3, as: String.self]), fileNode: try row[4, as: Int64.self],
                estimatedRows: try row[5, as: Double.self], pages: try row[6, as: Int64.self])
            relations[relation.oid] = relation
        }
        return RelationSnapshot(relations: relations)
    }

    /// The relations of this snapshot that `later` still has, with another data file.
    func rewritten(in later: RelationSnapshot) -> [Relation] {
        relations.values.filter { relation in
            guard let now = later[relation.oid] else { return false }
            return now.fileNode != relation.fileNode
        }
    }

    /// The relation locks this session holds now, granted, in this database. A relation
    /// a file dropped keeps its lock to the end of the transaction, so it is here even
    /// when no snapshot taken after has it.
    static func heldLocks(on connection: PostgresConnection) async throws -> Set<HeldLock> {
        let rows = try await connection.query("""
            SELECT l.relation::int8, l.mode
            FROM pg_catalog.pg_locks l
            WHERE l.pid = pg_catalog.pg_backend_pid() AND l.locktype = 'relation' AND l.granted
              AND l.database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())
            """)
        var locks: Set<HeldLock> = []
        for row in rows {
            // Other modes (SIReadLock, under SERIALIZABLE) are not table locks.
            guard let mode = Rehearsal.Lock.Mode(rawValue: try row[1, as: String.self]) else { continue }
            locks.insert(HeldLock(oid: try row[0, as: Int64.self], mode: mode))
        }
        return locks
    }
}
