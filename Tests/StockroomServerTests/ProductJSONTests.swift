import Foundation
import NIOCore
import Stockroom
import Testing
@testable import StockroomServer

@Suite("PRODUCT.GET's hand-written JSON")
struct ProductJSONTests {
    static func product(name: String, description: String, at seconds: Double) throws -> Product {
        let object: [String: Any] = [
            "id": 42, "sku": "MUG-01", "name": name, "description": description, "price_cents": 1250,
            "currency": "EUR", "stock": 7, "active": true, "created_at": seconds, "updated_at": seconds + 86_399.999,
        ]
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        decoder.dateDecodingStrategy = .secondsSince1970
        return try decoder.decode(Product.self, from: JSONSerialization.data(withJSONObject: object))
    }

    @Test(arguments: [
        ("Enamel mug", "plain", 1_764_059_055.123456),
        ("Quote \" and back\\slash", "line\nbreak\r\ttab \u{08}\u{0C} \u{01}\u{1F} slash / emoji 🫖 é", 0),
        ("Ünïcödé مرحبا", "", -86_400.5),
        ("Leap day", "2024-02-29", 1_709_164_800),
        ("Far future", "y10k", 253_402_300_800),
    ])
    func matchesJSONEncoder(name: String, description: String, seconds: Double) throws {
        let product = try Self.product(name: name, description: description, at: seconds)
        // As PRODUCT.GET writes it: into its reply, after the simple string's "+".
        var reply = ByteBuffer(string: "+")
        ProductJSON.write(product, to: &reply)
        let fast = String(buffer: reply).dropFirst()
        let reference = JSONPayload.encode(product)
        let parsedFast = try JSONSerialization.jsonObject(with: Data(fast.utf8)) as! NSDictionary
        let parsedReference = try JSONSerialization.jsonObject(with: Data(reference.utf8)) as! NSDictionary
        #expect(parsedFast == parsedReference, "\(fast)\n\(reference)")
        #expect(!fast.contains("\n") && !fast.contains("\r"))
        if seconds.rounded(.down) == seconds && seconds < 253_402_300_800 { #expect(fast == reference) }
    }
}
