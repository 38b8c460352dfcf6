import Foundation
import Stockroom
import Testing
@testable import StockroomServer

@Suite("Commands end to end over TCP")
struct CommandTests {
    @Test func connectionCommandsAnswerLikeRedis() async throws {
        try await TestServer.with { server in
            try await server.client { (c: TestClient) async throws -> Void in
                #expect(try await c.call("PING") == .simple("PONG"))
                #expect(try await c.call("ping", "hi") == .bulk("hi"))
                #expect(try await c.call("ECHO", "a\r\nb\u{0}c") == .bulk("a\r\nb\u{0}c"))
                #expect(try await c.call("SELECT", "0") == .simple("OK"))
                #expect(try await c.call("SELECT", "1").errorCode == "ERR")
                #expect(try await c.call("CLIENT", "GETNAME") == .bulk(nil))
                #expect(try await c.call("CLIENT", "SETNAME", "worker-1") == .simple("OK"))
                #expect(try await c.call("CLIENT", "GETNAME") == .bulk("worker-1"))
                #expect(try await c.call("CLIENT", "SETINFO", "LIB-NAME", "tests") == .simple("OK"))
                guard case .integer(let id) = try await c.call("CLIENT", "ID") else { Issue.record("CLIENT ID"); return }
                #expect(id > 0)
                #expect(try await c.call("CONFIG", "GET", "save") == .array([.bulk("save"), .bulk("")]))
                #expect(try await c.call("CONFIG", "GET", "nothing*") == .array([]))
                guard case .bulk(let info?) = try await c.call("INFO") else { Issue.record("INFO"); return }
                #expect(info.contains("# Server") && info.contains("connected_clients:") && info.contains("total_commands_processed:") && info.contains("pool_max_connections:8"))
                #expect(info.contains("order_transactions_running:0\r\norder_transactions_waiting:0\r\norder_transactions_limit:\(AdmissionGate.defaultLimit)\r\n"))
                guard case .array(let commands) = try await c.call("COMMAND") else { Issue.record("COMMAND"); return }
                #expect(commands.count >= 30)
                #expect(try await c.call("COMMAND", "DOCS") == .array([]))

                #expect(try await c.call("NOPE", "x") == .error("ERR unknown command 'NOPE'"), "never the arguments: they may be a password")
                #expect(try await c.call("ECHO") == .error("ERR wrong number of arguments for 'echo' command"))
                #expect(try await c.call("HELLO", "4").errorCode == "NOPROTO")

                guard case .array(let hello2) = try await c.call("HELLO", "2", "SETNAME", "named") else { Issue.record("HELLO 2"); return }
                #expect(hello2.prefix(6) == [.bulk("server"), .bulk("stockroom"), .bulk("version"), .bulk(StockroomServer.version), .bulk("proto"), .integer(2)])
                guard case .map(let hello3) = try await c.call("HELLO", "3") else { Issue.record("HELLO 3"); return }
                #expect(hello3.contains(.bulk("modules")) && hello3.contains(.bulk("limits")))
                #expect(try await c.call("CLIENT", "GETNAME") == .bulk("named"))
            }
        }
    }

    @Test func inlineQuotedAndRespFormsGiveTheSameReply() async throws {
        try await TestServer.with { server in
            let id = try await server.product(sku: "MUG-01")
            try await server.client { (c: TestClient) async throws -> Void in
                let resp = try await c.call("PRODUCT.GET", "SKU", "MUG-01")
                try await c.send("PRODUCT.GET SKU MUG-01\r\n")
                let inline = try await c.reply()
                try await c.send("product.get \"SKU\" 'MUG-01'\n")
                let quoted = try await c.reply()
                try await c.send("PRODUCT.GET 00\(id)\n")
                let byPaddedID = try await c.reply()
                // Command name and keyword in any case; a keyword that only looks alike is refused.
                let lowercase = try await c.call("Product.Get", "sku", "MUG-01")
                #expect(resp == inline); #expect(inline == quoted); #expect(quoted == byPaddedID); #expect(byPaddedID == lowercase)
                #expect(try resp.json()["sku"] as? String == "MUG-01")
                #expect(try await c.call("PRODUCT.GET", "SKX", "MUG-01").errorCode == "ERR")
                #expect(try await c.call("PRODUCT.GET", "SK", "MUG-01").errorCode == "ERR")
            }
        }
    }

    @Test func accountsSessionsAndAuthentication() async throws {
        try await TestServer.with { server in
            try await server.client { (c: TestClient) async throws -> Void in
                #expect(try await c.call("WHOAMI").errorCode == "NOAUTH")
                #expect(try await c.call("ORDER.LIST").errorCode == "NOAUTH")
                let registered = try await c.call("USER.REGISTER", #"{"email":"Ann@Example.com","name":"Ann Lee","password":"correct horse"}"#)
                let user = try registered.json()
                #expect(user["email"] as? String == "Ann@Example.com" && user["role"] as? String == "customer")
                #expect(user["password_hash"] == nil && user["created_at"] is String)
                #expect(try await c.call("USER.REGISTER", #"{"email":"ann@example.com","name":"Ann","password":"correct horse"}"#).errorCode == "CONFLICT")
                let invalid = try await c.call("USER.REGISTER", #"{"email":"nope","name":"Ann","password":"correct horse"}"#)
                #expect(invalid.errorCode == "INVALID" && "\(invalid)".contains("email"))
                #expect("\(try await c.call("USER.REGISTER", #"{"email":"b@example.com","name":"B"}"#))" == "-INVALID password: is required")
                #expect(try await c.call("USER.REGISTER", "not json").errorCode == "INVALID")

                let wrong = try await c.call("SESSION.LOGIN", #"{"email":"ann@example.com","password":"wrong password"}"#)
                #expect(wrong == .error("WRONGPASS wrong email or password"))
                let login = try await c.call("SESSION.LOGIN", #"{"email":"ann@example.com","password":"correct horse"}"#).json()
                let token = try #require(login["token"] as? String)
                #expect(token.count >= 43 && login["expires_at"] is String)
                #expect(try await c.call("WHOAMI").json()["email"] as? String == "Ann@Example.com")
                let id = (login["user"] as! [String: Any])["id"] as! Int
                #expect(try await c.call("USER.GET", "\(id)").json()["id"] as? Int == id)
                #expect(try await c.call("USER.LIST").errorCode == "NOPERM")

                try await server.client { (other: TestClient) async throws -> Void in
                    #expect(try await other.call("AUTH", token) == .simple("OK"))
                    #expect(try await other.call("WHOAMI").json()["id"] as? Int == id)
                    #expect(try await other.call("AUTH", "ann@example.com", "correct horse") == .simple("OK"))
                    #expect(try await other.call("USER.GET", "\(id + 1000)").errorCode == "NOTFOUND")
                }
                #expect(try await c.call("SESSION.LOGOUT") == .simple("OK"))
                #expect(try await c.call("WHOAMI").errorCode == "NOAUTH")
                #expect(try await c.call("AUTH", token).errorCode == "WRONGPASS", "a revoked token logs nobody in")
            }
        }
    }

    @Test func fiveFailedLoginsCloseTheConnection() async throws {
        try await TestServer.with { server in
            try await server.client { (c: TestClient) async throws -> Void in
                for _ in 0..<4 {
                    #expect(try await c.call("AUTH", "nobody@example.com", "wrong password").errorCode == "WRONGPASS")
                }
                #expect(try await c.call("AUTH", "nobody@example.com", "wrong password").errorCode == "WRONGPASS")
                #expect(try await c.isClosed())
            }
        }
    }

    @Test func productsAndAuthorization() async throws {
        try await TestServer.with { server in
            try await server.client { (admin: TestClient) async throws -> Void in
                try await server.logIn(admin, admin: true)
                let created = try await admin.call("PRODUCT.CREATE", #"{"sku":"TEA-1","name":"Green tea","description":"Sencha, loose leaf","price_cents":799,"currency":"EUR","stock":5}"#).json()
                let id = created["id"] as! Int
                #expect(created["price_cents"] as? Int == 799 && created["active"] as? Bool == true)
                #expect(try await admin.call("PRODUCT.CREATE", #"{"sku":"TEA-1","name":"Again","price_cents":1,"currency":"EUR"}"#).errorCode == "CONFLICT")
                #expect("\(try await admin.call("PRODUCT.CREATE", #"{"sku":"X-1","name":"Bad","price_cents":1,"currency":"EURO"}"#))".hasPrefix("-INVALID currency"))
                #expect(try await admin.call("PRODUCT.UPDATE", "\(id)", #"{"price_cents":899}"#).json()["price_cents"] as? Int == 899)
                #expect("\(try await admin.call("PRODUCT.UPDATE", "\(id)", #"{"stock":100}"#))".hasPrefix("-INVALID stock"))
                #expect(try await admin.call("PRODUCT.RESTOCK", "\(id)", "3").json()["stock"] as? Int == 8)
                #expect(try await admin.call("PRODUCT.RESTOCK", "\(id)", "-1").errorCode == "INVALID")
                #expect(try await admin.call("PRODUCT.GET", "999999").errorCode == "NOTFOUND")
                #expect(try await admin.call("PRODUCT.GET", "abc").errorCode == "INVALID")
                #expect(try await admin.call("PRODUCT.LIST", "LIMIT", "501").errorCode == "INVALID")
                #expect(try await admin.call("PRODUCT.LIST", "LIMIT").errorCode == "ERR")

                try await server.client { (anonymous: TestClient) async throws -> Void in
                    #expect(try await anonymous.call("PRODUCT.GET", "\(id)").json()["sku"] as? String == "TEA-1")
                    let list = try await anonymous.call("PRODUCT.LIST", "LIMIT", "1").json()
                    #expect((list["items"] as! [Any]).count == 1 && list["next"] as? Int == id)
                    let search = try await anonymous.call("PRODUCT.SEARCH", "sencha").json()
                    #expect((search["items"] as! [[String: Any]]).first?["id"] as? Int == id)
                    #expect(try await anonymous.call("PRODUCT.CREATE", "{}").errorCode == "NOAUTH")
                    try await server.logIn(anonymous)
                    #expect(try await anonymous.call("PRODUCT.RESTOCK", "\(id)", "1").errorCode == "NOPERM")
                    #expect(try await anonymous.call("PRODUCT.DEACTIVATE", "\(id)").errorCode == "NOPERM")
                }
                #expect(try await admin.call("PRODUCT.DEACTIVATE", "\(id)").json()["active"] as? Bool == false)
                try await server.client { (anonymous: TestClient) async throws -> Void in
                    #expect(try await anonymous.call("PRODUCT.GET", "\(id)").errorCode == "NOTFOUND", "inactive products are hidden")
                    #expect((try await anonymous.call("PRODUCT.LIST").json()["items"] as! [Any]).isEmpty)
                }
            }
        }
    }

    @Test func ordersFromPlacementToDelivery() async throws {
        try await TestServer.with { server in
            let mug = try await server.product(price: 1250, stock: 3)
            let tea = try await server.product(price: 500, stock: 10)
            try await server.client { (customer: TestClient) async throws -> Void in
                let me = try await server.logIn(customer)
                let place = #"{"lines":[{"product_id":\#(mug),"quantity":2},{"product_id":\#(tea),"quantity":1}],"idempotency_key":"cart-1"}"#
                let order = try await customer.call("ORDER.PLACE", place).json()
                let id = order["id"] as! Int
                #expect(order["status"] as? String == "pending" && order["total_cents"] as? Int == 3000 && order["user_id"] as? Int == me.id)
                #expect(try await customer.call("ORDER.PLACE", place).json()["id"] as? Int == id, "same key, same order")
                #expect(try await customer.call("ORDER.PLACE", #"{"lines":[{"product_id":\#(tea),"quantity":5}],"idempotency_key":"cart-1"}"#).errorCode == "CONFLICT")
                let short = try await customer.call("ORDER.PLACE", #"{"lines":[{"product_id":\#(mug),"quantity":2}]}"#)
                #expect(short.errorCode == "OUTOFSTOCK" && "\(short)".contains("1 in stock"))
                #expect(try await customer.call("ORDER.PLACE", #"{"lines":[]}"#).errorCode == "INVALID")
                // Every bad payload names its field, in the payload's own spelling.
                #expect("\(try await customer.call("ORDER.PLACE", #"{"lines":[{"product_id":"x","quantity":1}]}"#))" == "-INVALID lines[0].product_id: must be an integer")
                #expect("\(try await customer.call("ORDER.PLACE", #"{"lines":[{"product_id":1}]}"#))" == "-INVALID lines[0].quantity: is required")
                #expect("\(try await customer.call("ORDER.PLACE", #"{"items":[]}"#))" == "-INVALID lines: is required")
                #expect("\(try await customer.call("ORDER.PLACE", #"{"lines":[{"product_id":1,"quantity":1}],"idempotency_key":5}"#))" == "-INVALID idempotency_key: must be a string")
                #expect("\(try await customer.call("ORDER.PLACE", #"{"lines":[{"product_id":1,"quantity":1}],"user_id":"me"}"#))" == "-INVALID user_id: must be an integer")
                #expect("\(try await customer.call("ORDER.PLACE", #"{"lines":"#))" == "-INVALID json: not valid JSON")
                #expect(try await customer.call("ORDER.PLACE", #"{"lines":[{"product_id":\#(mug),"quantity":1}],"user_id":1}"#).errorCode == "INVALID")
                #expect(try await customer.call("ORDER.SHIP", "\(id)").errorCode == "NOPERM")
                #expect(try await customer.call("ORDER.PAY", "\(id)").errorCode == "NOPERM", "customers pay through the processor")
                #expect(try await customer.call("ORDER.CHECKOUT", "\(id)") == .error("ERR payments are not configured on this server (serve --payments-url)"))
                #expect(try await server.payByHand(id).json()["status"] as? String == "paid")
                #expect(try await server.payByHand(id) == .error("STATE cannot pay an order that is paid"))
                let list = try await customer.call("ORDER.LIST", "STATUS", "paid").json()
                #expect((list["items"] as! [[String: Any]]).map { $0["id"] as! Int } == [id])
                #expect(try await customer.call("ORDER.LIST", "STATUS", "lost").errorCode == "INVALID")
                #expect(try await customer.call("ORDER.LIST", "USER", "\(me.id + 1)").errorCode == "NOTFOUND")

                try await server.client { (other: TestClient) async throws -> Void in
                    try await server.logIn(other)
                    #expect(try await other.call("ORDER.GET", "\(id)").errorCode == "NOTFOUND", "never confirm it exists")
                    #expect(try await other.call("ORDER.CANCEL", "\(id)").errorCode == "NOTFOUND")
                }
                try await server.client { (admin: TestClient) async throws -> Void in
                    try await server.logIn(admin, admin: true)
                    #expect(try await admin.call("ORDER.LIST", "USER", "\(me.id)").json()["items"] is [Any])
                    #expect(try await admin.call("ORDER.SHIP", "\(id)").json()["status"] as? String == "shipped")
                    let delivered = try await admin.call("ORDER.DELIVER", "\(id)").json()
                    #expect((delivered["history"] as! [[String: Any]]).map { $0["status"] as! String } == ["pending", "paid", "shipped", "delivered"])
                }
                #expect(try await customer.call("ORDER.CANCEL", "\(id)") == .error("STATE cannot cancel an order that is delivered"))
            }
        }
    }
}
