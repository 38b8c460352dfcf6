import ArgumentParser
import Foundation
import StockroomDelivery

/// The payment processor and the mail relay, for `serve` and `worker` alike. Secrets come
/// from the environment or from files, never from the command line, where `ps` shows
/// them to every user of the machine.
struct IntegrationOptions: ParsableArguments {
    @Option(name: .customLong("payments-url"), help: "Base URL of a Stripe-shaped payment processor, e.g. https://api.stripe.com (default: $STOCKROOM_PAYMENTS_URL; none: ORDER.CHECKOUT is refused). Its secret key comes from $STOCKROOM_PAYMENTS_KEY or --payments-key-file, its webhook signing secret from $STOCKROOM_PAYMENTS_WEBHOOK_SECRET or --payments-webhook-secret-file.")
    var paymentsURL: String?

    @Option(name: .customLong("payments-key-file"), help: "A file holding the processor's secret key (sk_…).")
    var paymentsKeyFile: String?

    @Option(name: .customLong("payments-webhook-secret-file"), help: "A file holding the processor's webhook signing secret (whsec_…); without one, POST /webhooks/payments is not served.")
    var paymentsWebhookSecretFile: String?

    /// The processor's configuration, or nil when none is configured.
    func payments(_ environment: [String: String]) throws -> PaymentProcessor.Configuration? {
        guard let url = nonEmpty(paymentsURL) ?? nonEmpty(environment["STOCKROOM_PAYMENTS_URL"]) else {
            if paymentsKeyFile != nil || paymentsWebhookSecretFile != nil {
                throw ValidationError("--payments-key-file and --payments-webhook-secret-file need --payments-url")
            }
            return nil
        }
        guard let key = try secret(file: paymentsKeyFile, flag: "--payments-key-file", environment: environment["STOCKROOM_PAYMENTS_KEY"]) else {
            throw ValidationError("a payment processor needs its secret key: $STOCKROOM_PAYMENTS_KEY or --payments-key-file")
        }
        let webhookSecret = try secret(file: paymentsWebhookSecretFile, flag: "--payments-webhook-secret-file", environment: environment["STOCKROOM_PAYMENTS_WEBHOOK_SECRET"])
        let configuration = PaymentProcessor.Configuration(baseURL: url, secretKey: key, webhookSecret: webhookSecret)
        do {
            try configuration.validate()
        } catch {
            throw ValidationError("\(error)")
        }
        return configuration
    }

    private func secret(file: String?, flag: String, environment: String?) throws -> String? {
        if let file {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { throw ValidationError("\(flag): cannot read \(file)") }
            guard let value = nonEmpty(text.trimmingCharacters(in: .whitespacesAndNewlines)) else { throw ValidationError("\(flag): \(file) is empty") }
            return value
        }
        return nonEmpty(environment)
    }

    private func nonEmpty(_ text: String?) -> String? {
        guard let text, !text.isEmpty else { return nil }
        return text
    }
}
