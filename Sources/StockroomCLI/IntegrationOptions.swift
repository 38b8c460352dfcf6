import ArgumentParser
import Foundation
import Logging
import Stockroom
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

    @Option(name: .customLong("mail-url"), help: "The SMTP relay for order e-mails: smtp://[user[:password]@]host[:port] (STARTTLS when offered; ?starttls=required) or smtps://… (default: $STOCKROOM_MAIL_URL, the better place for a password; none: no e-mail is sent).")
    var mailURL: String?

    @Option(name: .customLong("mail-from"), help: "The From address of order e-mails, e.g. \"Shop <shop@example.com>\" (default: $STOCKROOM_MAIL_FROM).")
    var mailFrom: String?

    @Option(name: .customLong("mail-ca-file"), help: "PEM certificates to trust for the relay instead of the system's.")
    var mailCAFile: String?

    /// The e-mail job handler, or nil when no relay is configured.
    func mail(_ environment: [String: String], stockroom: Stockroom, logger: Logger) throws -> MailJobHandler? {
        guard let url = nonEmpty(mailURL) ?? nonEmpty(environment["STOCKROOM_MAIL_URL"]) else {
            if mailFrom != nil || mailCAFile != nil { throw ValidationError("--mail-from and --mail-ca-file need --mail-url (or $STOCKROOM_MAIL_URL)") }
            return nil
        }
        guard let from = nonEmpty(mailFrom) ?? nonEmpty(environment["STOCKROOM_MAIL_FROM"]) else {
            throw ValidationError("e-mail needs a From address: --mail-from \"Shop <shop@example.com>\" or $STOCKROOM_MAIL_FROM")
        }
        do {
            return try MailJobHandler(stockroom: stockroom, url: url, from: from, trustedCAFile: mailCAFile, logger: logger)
        } catch {
            throw ValidationError("\(error)")
        }
    }

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
