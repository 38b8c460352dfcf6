public import Stockroom

/// Performs `payment.refund` jobs: a paid order was cancelled (or paid twice), so the
/// processor gives the money back. The job's idempotency key makes a retried refund the
/// same refund.
public struct RefundJobHandler: JobHandler {
    let payments: PaymentRepository
    let processor: PaymentProcessor

    public init(payments: PaymentRepository, processor: PaymentProcessor) {
        self.payments = payments
        self.processor = processor
    }

    public var kinds: Set<Job.Kind> { [.refund] }

    public func perform(_ job: Job) async -> JobOutcome {
        let payment: Payment?
        do {
            payment = try await payments.payment(orderID: job.orderID)
        } catch {
            return .retry(error: "the payment could not be read")
        }
        guard let payment, let intentID = payment.intentID else { return .failed(error: "the order has no processor payment") }
        guard payment.status == .refundPending else { return .done }
        do {
            let refundID = try await processor.refund(intentID: intentID, orderID: job.orderID, idempotencyKey: job.idempotencyKey)
            try await payments.markRefunded(orderID: job.orderID, refundID: refundID)
            return .done
        } catch let error as PaymentProcessorError {
            return error.kind == .transient ? .retry(error: error.message) : .failed(error: error.message)
        } catch {
            // Refunded at the processor, not yet recorded: the same key makes the next
            // try return the same refund.
            return .retry(error: "the refund could not be recorded")
        }
    }
}
