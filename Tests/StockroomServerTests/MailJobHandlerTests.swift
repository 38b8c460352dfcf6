import Foundation
import Logging
import NIOCore
import NIOPosix
import Stockroom
import StockroomDelivery
import Testing

/// Order mail end to end: an order and its customer in a test database, a mail job
/// performed by `MailJobHandler`, and what aiosmtpd received.
@Suite("Mail jobs: order confirmation and shipping notice through a real relay")
struct MailJobHandlerTests {
    static let logger = Logger(label: "test.mail")

    static func job(_ kind: Job.Kind, order: Int64) -> Job {
        Job(id: 1, kind: kind, orderID: order, attempts: 0, idempotencyKey: "\(kind.rawValue):\(order)", createdAt: Date())
    }

    /// A customer named in UTF-8 with an order of two mugs at 12.50 and one at 3.00.
    static func order(_ server: TestServer) async throws -> (user: User, order: Order) {
        let mug = try await server.product(price: 1250, stock: 10)
        let spoon = try await server.product(price: 300, stock: 10)
        let email = "zoe\(UUID().uuidString.prefix(8).lowercased())@example.com"
        let user = try await server.stockroom.accounts.register(email: email, name: "Zoë Ångström", password: "password123")
        let order = try await server.stockroom.orders.place(
            OrderRequest(lines: [.init(productID: Int64(mug), quantity: 2), .init(productID: Int64(spoon), quantity: 1)]),
            as: Principal(user))
        return (user, order)
    }

    @Test func anOrderConfirmationReachesTheCustomerWithTheOrdersTotal() async throws {
        try await SMTPSink.with { sink, _ in
            try await TestServer.with { server in
                let (user, order) = try await Self.order(server)
                let handler = try MailJobHandler(
                    stockroom: server.stockroom, url: "smtp://127.0.0.1:\(sink.port)", from: "Stockroom Shop <shop@example.com>", logger: Self.logger)
                #expect(handler.kinds == [.orderConfirmation, .shippingNotice])
                #expect(await handler.perform(Self.job(.orderConfirmation, order: order.id)) == .done)
                let received = try #require(sink.messages.first)
                #expect(received["rcpt_tos"] as? [String] == [user.email])
                #expect(received["to_name"] as? String == "Zoë Ångström" && received["to_address"] as? String == user.email)
                #expect(received["subject"] as? String == "Order \(order.id) confirmed")
                #expect(received["message_id"] as? String == "<stockroom.mail=2Eorder_confirmation=3A\(order.id)@example.com>")
                let body = try #require(received["body"] as? String).replacingOccurrences(of: "\r\n", with: "\n")
                #expect(body.hasPrefix("Hello Zoë Ångström,\n"))
                #expect(body.contains("2 x Mug") && body.contains("at EUR 12.50: EUR 25.00"))
                #expect(body.contains("1 x Mug") && body.contains("at EUR 3.00: EUR 3.00"))
                #expect(body.contains("Total: EUR 28.00\n"))

                #expect(await handler.perform(Self.job(.shippingNotice, order: order.id)) == .done)
                #expect(sink.messages.last?["subject"] as? String == "Order \(order.id) has shipped")
            }
        }
    }

    @Test func anOrderThatNoLongerExistsFailsWithoutMail() async throws {
        try await SMTPSink.with { sink, _ in
            try await TestServer.with { server in
                let handler = try MailJobHandler(stockroom: server.stockroom, url: "smtp://127.0.0.1:\(sink.port)", from: "shop@example.com", logger: Self.logger)
                guard case .failed(let error) = await handler.perform(Self.job(.orderConfirmation, order: 987_654_321)) else {
                    Issue.record("not failed")
                    return
                }
                #expect(error.contains("order 987654321 not found"))
                #expect(sink.messages.isEmpty)
            }
        }
    }

    @Test func aRelayThatIsDownIsRetriedAndARefusalIsFinal() async throws {
        try await TestServer.with { server in
            let (_, order) = try await Self.order(server)
            let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
            let port = try #require(channel.localAddress?.port)
            try await channel.close()
            let down = try MailJobHandler(stockroom: server.stockroom, url: "smtp://mailer:hunter2@127.0.0.1:\(port)", from: "shop@example.com", logger: Self.logger)
            guard case .retry(let error) = await down.perform(Self.job(.orderConfirmation, order: order.id)) else {
                Issue.record("not retried")
                return
            }
            #expect(error.contains("could not connect") && !error.contains("hunter2"))

            var options = SMTPSink.Options()
            options.rejectRecipients = 550
            try await SMTPSink.with(options) { sink, _ in
                let refusing = try MailJobHandler(stockroom: server.stockroom, url: "smtp://127.0.0.1:\(sink.port)", from: "shop@example.com", logger: Self.logger)
                guard case .failed(let error) = await refusing.perform(Self.job(.shippingNotice, order: order.id)) else {
                    Issue.record("not failed")
                    return
                }
                #expect(error.hasPrefix("RCPT TO: the server answered 550"))
            }
        }
    }
}
