internal import CLibPQ

extension PostgresConnection {
    /// Bulk-loads rows with `COPY … FROM STDIN (FORMAT binary)`, the fastest way in.
    ///
    /// ```swift
    /// try await connection.copyFrom(table: "products", columns: ["sku", "price_cents"]) { rows in
    ///     for i in 0..<100_000 { try rows.append("SKU-\(i)", 100 + i) }
    /// }
    /// ```
    /// `writeRows` runs on the connection's thread. When it throws, the COPY is aborted
    /// and nothing is loaded. Returns the number of rows copied.
    @discardableResult
    public func copyFrom(
        table: String,
        schema: String? = nil,
        columns: [String],
        timeout: Duration? = nil,
        _ writeRows: @escaping @Sendable (inout PostgresCopyWriter) throws -> Void
    ) async throws -> Int {
        precondition(!columns.isEmpty, "COPY needs at least one column")
        var target = PostgresQuery.quoteIdentifier(table)
        if let schema { target = PostgresQuery.quoteIdentifier(schema) + "." + target }
        let sql = "COPY \(target) (\(columns.map(PostgresQuery.quoteIdentifier).joined(separator: ", "))) FROM STDIN (FORMAT binary)"
        return try await perform(timeout: timeout) { connection in
            try connection.revalidateIfIdle()
            return try connection.runCopy(sql, columnCount: columns.count, writeRows)
        }
    }

    /// Ends a COPY that a statement started outside `copyFrom`, where there is no data to
    /// send or anyone to take it: COPY IN is aborted with an error, so the server loads
    /// nothing; COPY OUT's rows are read and thrown away (the client cannot stop it).
    /// Without this, the connection waits in COPY state forever.
    func abandonCopy(_ status: ExecStatusType) -> PostgresError {
        if status == PGRES_COPY_IN {
            // A failure to send shows up as the broken connection's next result.
            _ = PQputCopyEnd(raw, "COPY is not supported through simpleQuery or query; use copyFrom")
        } else {
            var row: UnsafeMutablePointer<CChar>?
            // -1 when the COPY is done, -2 when it failed; both leave its result to read.
            while PQgetCopyData(raw, &row, 0) >= 0 {
                PQfreemem(row)
                row = nil
            }
        }
        return PostgresError(
            code: .unsupported,
            message: "COPY cannot run as a statement, which has no way to send or receive its data; use copyFrom to load rows"
        )
    }

    private func runCopy(_ sql: String, columnCount: Int, _ writeRows: (inout PostgresCopyWriter) throws -> Void) throws -> Int {
        guard let start = PQexec(raw, sql) else { throw connectionError("could not start COPY") }
        if let failure = error(from: start) {
            PQclear(start)
            throw failure
        }
        let status = PQresultStatus(start)
        PQclear(start)
        guard status == PGRES_COPY_IN else { throw connectionError("the server did not enter COPY mode") }

        var writer = PostgresCopyWriter(columnCount: columnCount) { [raw] chunk in
            let sent = chunk.withUnsafeBufferPointer { bytes in
                bytes.withMemoryRebound(to: CChar.self) { PQputCopyData(raw, $0.baseAddress, Int32($0.count)) }
            }
            guard sent == 1 else { throw self.connectionError("could not send COPY data") }
        }
        var clientFailure: (any Error)?
        do {
            try writeRows(&writer)
            try writer.finish()
        } catch {
            clientFailure = error
        }
        // A reason string makes the server abort the COPY, so no row of it remains.
        guard PQputCopyEnd(raw, clientFailure == nil ? nil : "COPY aborted by the client") == 1 else {
            throw connectionError("could not end COPY")
        }
        var outcome: Result<Int, any Error> = .success(0)
        while let result = PQgetResult(raw) {
            if let failure = error(from: result) {
                outcome = .failure(failure)
            } else {
                outcome = outcome.map { _ in Int(String(cString: PQcmdTuples(result))) ?? 0 }
            }
            PQclear(result)
        }
        if let clientFailure { throw clientFailure }
        return try outcome.get()
    }
}
