public import Logging
public import Stockroom

/// Sends the customer's order confirmation (`mail.order_confirmation`) and shipping
/// notice (`mail.shipping_notice`): reads the order and its owner, composes the message
/// (`OrderMail`), and sends it to the relay (`SMTPClient`).
///
/// Outcomes, as `JobWorker` records them:
/// - `.done` when the relay accepted the message;
/// - `.retry` when the database or the relay could not be reached or answered 4xx, or
///   the relay does not match the configured policy (the operator can fix it while the
///   job waits);
/// - `.failed` when the order or its owner no longer exists, the address cannot be
///   mailed, or the relay answered 5xx.
/// A relay may receive a message twice when its answer to the end of DATA is lost; both
/// copies carry the same Message-ID (from the job's idempotency key).
public struct MailJobHandler: JobHandler {
    public let kinds: Set<Job.Kind> = [.orderConfirmation, .shippingNotice]

    private let stockroom: Stockroom
    private let client: SMTPClient
    private let logger: Logger

    public init(stockroom: Stockroom, client: SMTPClient, logger: Logger) {
        self.stockroom = stockroom
        self.client = client
        self.logger = logger
    }

    /// From the relay's URL (`smtp://…` or `smtps://…`), the From address (`"Shop
    /// <shop@example.com>"`) and an optional CA file; throws `SMTPConfigurationError`
    /// or `MailAddress.InvalidAddress` with a message fit for the command line.
    public init(stockroom: Stockroom, url: String, from: String, trustedCAFile: String? = nil, logger: Logger) throws {
        let configuration = try SMTPConfiguration(url: url, from: try MailAddress(parsing: from), trustedCAFile: trustedCAFile)
        self.init(stockroom: stockroom, client: try SMTPClient(configuration: configuration), logger: logger)
    }

    /// Reads as the system: the job is Stockroom's own, not a customer's request.
    private static let system = Principal(userID: 0, role: .admin)

    public func perform(_ job: Job) async -> JobOutcome {
        let order: Order
        let customer: User
        do {
            order = try await stockroom.orders.order(id: job.orderID, as: Self.system)
            customer = try await stockroom.accounts.user(id: order.userID, as: Self.system)
        } catch let error as StockroomError where error.code == .notFound {
            return .failed(error: "\(error.message); no mail sent")
        } catch let error as StockroomError {
            return .retry(error: "the order could not be read: \(error.description)")
        } catch {
            return .retry(error: "the order could not be read: \(String(describing: error).prefix(300))")
        }
        let message: MailMessage
        do {
            guard let composed = try OrderMail.message(job.kind, order: order, customer: customer, from: client.configuration.from, messageKey: job.idempotencyKey) else {
                return .failed(error: "\(job.kind.rawValue) is not a mail")
            }
            message = composed
        } catch {
            return .failed(error: "the customer's \(error); no mail sent")
        }
        do {
            try await client.send(message)
            logger.debug("mail sent", metadata: ["job.id": "\(job.id)", "job.kind": "\(job.kind.rawValue)", "order.id": "\(order.id)"])
            return .done
        } catch {
            switch error.kind {
            case .transient: return .retry(error: error.message)
            case .permanent: return .failed(error: error.message)
            }
        }
    }
}
