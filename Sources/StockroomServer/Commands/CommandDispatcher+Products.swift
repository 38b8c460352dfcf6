import Stockroom

extension CommandDispatcher {
    static let productCommands: [Command] = [
        // Concurrent lookups share one statement; see ProductLookupBatcher. The dispatcher
        // finishes the reply (`visibleProduct`, `finishLookup`).
        Command(name: "PRODUCT.GET", arity: -2, access: .anyone, body: .lookup({ arguments in
            switch arguments.count {
            case 1:
                return .id(try arguments.id(0))
            case 2 where arguments[0].readableBytesView.elementsEqual("SKU".utf8, by: { $0 & 0xDF == $1 }):
                // Checked here, before it joins a statement shared with other
                // clients' lookups: a NUL or a megabyte of sku fails this request alone.
                return .sku(try Product.validSKU(try arguments.string(1, field: "sku")))
            default:
                throw CommandError.syntax("syntax error: PRODUCT.GET <id> or PRODUCT.GET SKU <sku>")
            }
        })),
        Command(name: "PRODUCT.LIST", arity: -1, access: .anyone) { dispatcher, session, arguments in
            let options = try arguments.options(from: 0, allowed: ["AFTER", "LIMIT"])
            let limit = try limit(arguments, options)
            let after = try after(arguments, options)
            let products = try await dispatcher.readProducts(session) { try await $0.list(after: after, limit: limit, includeInactive: session.user?.role == .admin) }
            return page(products, limit: limit, id: \.id)
        },
        Command(name: "PRODUCT.SEARCH", arity: -2, access: .anyone) { dispatcher, session, arguments in
            let text = try arguments.string(0, field: "text")
            let options = try arguments.options(from: 1, allowed: ["LIMIT"])
            let limit = options["LIMIT"] == nil ? 20 : try limit(arguments, options)
            let products = try await dispatcher.readProducts(session) { try await $0.search(text, limit: limit, includeInactive: session.user?.role == .admin) }
            struct Results: Encodable { let items: [Product] }
            return json(Results(items: products))
        },
        Command(name: "PRODUCT.CREATE", arity: 2, access: .admin) { dispatcher, session, arguments in
            let payload = try arguments.json(0)
            let product = NewProduct(
                sku: try payload["sku"].string(), name: try payload["name"].string(),
                description: try payload["description"].optionalString(),
                priceCents: try payload["price_cents"].integer(), currency: try payload["currency"].string(),
                stock: try payload["stock"].optionalInteger().map { Int($0) }
            )
            return json(try await dispatcher.stockroom.products.create(product, as: session.principal!))
        },
        Command(name: "PRODUCT.UPDATE", arity: 3, access: .admin) { dispatcher, session, arguments in
            let id = try arguments.id(0)
            let payload = try arguments.json(1)
            guard try payload["stock"].isMissing else { throw CommandError.invalid("stock", "changes only through PRODUCT.RESTOCK and orders") }
            let changes = ProductChanges(
                sku: try payload["sku"].optionalString(), name: try payload["name"].optionalString(),
                description: try payload["description"].optionalString(),
                priceCents: try payload["price_cents"].optionalInteger(), currency: try payload["currency"].optionalString()
            )
            return json(try await dispatcher.stockroom.products.update(id: id, changes, as: session.principal!))
        },
        Command(name: "PRODUCT.RESTOCK", arity: 3, access: .admin) { dispatcher, session, arguments in
            let id = try arguments.id(0)
            let quantity = try arguments.integer(1, field: "quantity")
            return json(try await dispatcher.stockroom.products.restock(id: id, quantity: quantity, as: session.principal!))
        },
        Command(name: "PRODUCT.DEACTIVATE", arity: 2, access: .admin) { dispatcher, session, arguments in
            json(try await dispatcher.stockroom.products.deactivate(id: try arguments.id(0), as: session.principal!))
        },
    ]
}

extension CommandDispatcher {
    /// PRODUCT.GET's reply once its batch has run.
    /// The product a lookup found, if the session may see it: inactive products are
    /// hidden from customers and anonymous readers.
    func visibleProduct(_ product: Product?, session: Session) throws(CommandError) -> Product {
        guard let product, product.active || session.user?.role == .admin else { throw CommandError.notFound("product") }
        return product
    }
}
