public import LibPQ

/// The catalogue: products, their prices and stock.
public struct ProductRepository: Sendable {
    let pool: PostgresPool

    public init(pool: PostgresPool) { self.pool = pool }

    static let columns = "id, sku, name, description, price_cents, currency, stock, active, created_at, updated_at"

    /// A row of `columns`, by position: lookups decode thousands of these a second, and
    /// going through `Decodable` (a decoder and a key per field) cost more than the JSON
    /// reply written from them.
    static func product(from row: PostgresRow) throws -> Product {
        Product(
            id: try row[0], sku: try row[1], name: try row[2], description: try row[3], priceCents: try row[4],
            currency: try row[5], stock: try row[6], active: try row[7], createdAt: try row[8], updatedAt: try row[9]
        )
    }

    public func create(_ product: NewProduct, as principal: Principal) async throws -> Product {
        try requireAdmin(principal, "create products")
        let sku = try Validate.sku(product.sku)
        let name = try Validate.name(product.name)
        let description = try Validate.description(product.description ?? "")
        let price = try Validate.price(product.priceCents)
        let currency = try Validate.currency(product.currency)
        let stock = Int32(try Validate.stock(product.stock ?? 0))
        return try await mappingErrors {
            try await pool.write("""
                INSERT INTO products (sku, name, description, price_cents, currency, stock)
                VALUES (\(sku), \(name), \(description), \(price), \(currency), \(stock))
                RETURNING \(unsafeRaw: Self.columns)
                """).first(as: Product.self)!
        }
    }

    public func product(id: Int64) async throws -> Product {
        let id = try Validate.id(id)
        let product = try await mappingErrors {
            try await pool.query("SELECT \(unsafeRaw: Self.columns) FROM products WHERE id = \(id)").first(as: Product.self)
        }
        guard let product else { throw StockroomError.notFound("product \(id)") }
        return product
    }

    public func product(sku: String) async throws -> Product {
        let sku = try Validate.sku(sku)
        let product = try await mappingErrors {
            try await pool.query("SELECT \(unsafeRaw: Self.columns) FROM products WHERE sku = \(sku)").first(as: Product.self)
        }
        guard let product else { throw StockroomError.notFound("product \(sku)") }
        return product
    }

    /// Changes name, description, price, currency or sku. Orders already placed keep the
    /// prices and names they were placed with.
    public func update(id: Int64, _ changes: ProductChanges, as principal: Principal) async throws -> Product {
        try requireAdmin(principal, "update products")
        let id = try Validate.id(id)
        guard !changes.isEmpty else { throw StockroomError.invalid("changes", "name at least one of sku, name, description, price_cents, currency") }
        let sku = try changes.sku.map(Validate.sku)
        let name = try changes.name.map { try Validate.name($0) }
        let description = try changes.description.map(Validate.description)
        let price = try changes.priceCents.map(Validate.price)
        let currency = try changes.currency.map(Validate.currency)
        let product = try await mappingErrors {
            try await pool.write("""
                UPDATE products SET
                    sku = coalesce(\(sku), sku), name = coalesce(\(name), name),
                    description = coalesce(\(description), description),
                    price_cents = coalesce(\(price), price_cents), currency = coalesce(\(currency), currency),
                    updated_at = now()
                WHERE id = \(id)
                RETURNING \(unsafeRaw: Self.columns)
                """).first(as: Product.self)
        }
        guard let product else { throw StockroomError.notFound("product \(id)") }
        return product
    }

    /// Hides a product from customers' lists and searches; it can no longer be ordered.
    public func deactivate(id: Int64, as principal: Principal) async throws -> Product {
        try requireAdmin(principal, "deactivate products")
        let id = try Validate.id(id)
        let product = try await mappingErrors {
            try await pool.write("UPDATE products SET active = false, updated_at = now() WHERE id = \(id) RETURNING \(unsafeRaw: Self.columns)")
                .first(as: Product.self)
        }
        guard let product else { throw StockroomError.notFound("product \(id)") }
        return product
    }

    /// Adds `quantity` to the stock, atomically.
    public func restock(id: Int64, quantity: Int, as principal: Principal) async throws -> Product {
        try requireAdmin(principal, "restock products")
        let id = try Validate.id(id)
        guard (1...Validate.maxStock).contains(quantity) else {
            throw StockroomError.invalid("quantity", "must be between 1 and \(Validate.maxStock)")
        }
        let product = try await mappingErrors {
            try await pool.write("""
                UPDATE products SET stock = stock + \(Int32(quantity)), updated_at = now()
                WHERE id = \(id) RETURNING \(unsafeRaw: Self.columns)
                """).first(as: Product.self)
        }
        guard let product else { throw StockroomError.notFound("product \(id)") }
        return product
    }

    /// Many products in one statement, by ids and skus together: what a service batching
    /// concurrent lookups sends instead of one round trip each. Each product comes back
    /// once, however often it was asked for; missing ones are simply absent; inactive ones
    /// are included (the caller decides who may see them).
    public func products(ids: [Int64], skus: [String]) async throws -> [Product] {
        try await pool.withConnection { try await products(ids: ids, skus: skus, on: $0) }
    }

    /// The same on a connection the caller holds — a batcher that keeps one between
    /// batches, or a transaction.
    public func products(ids: [Int64], skus: [String], on connection: PostgresConnection) async throws -> [Product] {
        guard !ids.isEmpty || !skus.isEmpty else { return [] }
        return try await mappingErrors {
            try await connection.query("""
                SELECT \(unsafeRaw: Self.columns) FROM products
                WHERE id = ANY(\(ids)) OR sku = ANY(\(skus))
                """).map(Self.product(from:))
        }
    }

    /// Products by id, `limit` (1–500) at a time after `after`. Customers see active
    /// products only; admins may ask for all.
    public func list(after: Int64 = 0, limit: Int = 50, includeInactive: Bool = false) async throws -> [Product] {
        let limit = try Validate.limit(limit)
        return try await mappingErrors {
            try await pool.query("""
                SELECT \(unsafeRaw: Self.columns) FROM products
                WHERE id > \(after) AND (active OR \(includeInactive))
                ORDER BY id LIMIT \(limit)
                """).map(Self.product(from:))
        }
    }

    /// Full-text search over name, sku and description, most relevant first. The text
    /// is read as a web search (`"exact phrase"`, `-excluded`, `or`).
    public func search(_ text: String, limit: Int = 20, includeInactive: Bool = false) async throws -> [Product] {
        let limit = try Validate.limit(limit)
        let text = text.trimmingSpaces()
        guard (1...200).contains(text.count) else { throw StockroomError.invalid("text", "must be 1 to 200 characters") }
        try Validate.noControlCharacters(text, field: "text")
        return try await mappingErrors {
            try await pool.query("""
                SELECT \(unsafeRaw: Self.columns) FROM products,
                       websearch_to_tsquery('english', \(text)) AS query
                WHERE search @@ query AND (active OR \(includeInactive))
                ORDER BY ts_rank(search, query) DESC, id
                LIMIT \(limit)
                """).map(Self.product(from:))
        }
    }
}

func requireAdmin(_ principal: Principal, _ action: String) throws {
    guard principal.isAdmin else { throw StockroomError(.permissionDenied, "only admins can \(action)") }
}
