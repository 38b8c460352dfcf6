import Hummingbird
import NIOCore
import StockroomDelivery

extension OperationsServer {
    /// `POST /webhooks/payments`: the processor's events (docs/EVENTS.md#payments). The
    /// only POST of the listener and the only route that writes; unauthenticated but for
    /// the signature, which `PaymentWebhook` checks before it reads anything else. The
    /// body is read up to `PaymentWebhook.maxBodyBytes`, and a larger one is refused
    /// with 413 before it is all in memory.
    func addPaymentWebhookRoute(to router: Router<BasicRequestContext>, webhook: PaymentWebhook) {
        router.post("webhooks/payments") { request, _ -> Response in
            let body: ByteBuffer
            do {
                body = try await request.body.collect(upTo: PaymentWebhook.maxBodyBytes)
            } catch {
                return .plain(.contentTooLarge, "body too large\n")
            }
            let answer = await webhook.handle(body: Array(body.readableBytesView), signature: request.headers[.init("Stripe-Signature")!])
            return .plain(.init(code: answer.status), answer.message + "\n")
        }
    }
}

extension Response {
    static func plain(_ status: HTTPResponse.Status, _ text: String) -> Response {
        Response(status: status, headers: [.contentType: "text/plain; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}
