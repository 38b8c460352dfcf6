import Foundation
import Stockroom
import Testing
@testable import StockroomServer

@Suite("Orders' hand-written JSON")
struct OrderJSONTests {
    static func order(key: String?, changedBy: Int64?, lines: Int, seconds: Double) throws -> Order {
        var history: [[String: Any]] = [["status": "pending", "changed_at": seconds]]
        if let changedBy { history.append(["status": "paid", "changed_at": seconds + 60, "changed_by": changedBy]) }
        let object: [String: Any] = [
            "id": 7, "user_id": 3, "status": history.count > 1 ? "paid" : "pending", "currency": "EUR",
            "subtotal_cents": 5500, "total_cents": 5500, "created_at": seconds, "updated_at": seconds + 60,
            "idempotency_key": key as Any? ?? NSNull(),
            "lines": (0..<lines).map(Self.line),
            "history": history,
        ]
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        decoder.dateDecodingStrategy = .secondsSince1970
        return try decoder.decode(Order.self, from: JSONSerialization.data(withJSONObject: object))
    }

    static func line(_ n: Int) -> [String: Any] {
        let name: String = n == 0 ? "Tea \"pot\" \\ 🫖\n" : "Mug \(n)"
        var line: [String: Any] = ["product_id": 100 + n, "sku": "SKU-\(n)", "name": name]
        line["unit_price_cents"] = 1250
        line["quantity"] = n + 1
        line["line_total_cents"] = 1250 * (n + 1)
        return line
    }

    @Test(arguments: [
        (nil, nil, 1, 1_764_059_055.0),
        ("checkout-1 ✓", 9, 3, 1_709_164_800.0),
        ("quote \" key", 1, 0, 0.0),
    ] as [(String?, Int64?, Int, Double)])
    func matchesJSONEncoder(key: String?, changedBy: Int64?, lines: Int, seconds: Double) throws {
        let order = try Self.order(key: key, changedBy: changedBy, lines: lines, seconds: seconds)
        let fast = OrderJSON.encode(order)
        let reference = JSONPayload.encode(order)
        #expect(fast == reference, "\(fast)\n\(reference)")
        #expect(!fast.contains("\n") && !fast.contains("\r"))
    }
}
