public import Foundation
public import Stockroom

/// The text of the mails a customer gets about an order: plain, in English, with the
/// order's lines and total as they were when it was placed (lines are snapshots).
public enum OrderMail {
    /// The message for `kind` about `order`, to `customer`. Nil for a kind that is not
    /// mail. `messageKey` is the job's idempotency key: the same on every retry.
    public static func message(
        _ kind: Job.Kind, order: Order, customer: User, from: MailAddress, messageKey: String, date: Date = Date()
    ) throws(MailAddress.InvalidAddress) -> MailMessage? {
        let subject: String
        let opening: String
        switch kind {
        case .orderConfirmation:
            subject = "Order \(order.id) confirmed"
            opening = "Thank you for your order \(order.id). We have received your payment, and this is what you bought:"
        case .shippingNotice:
            subject = "Order \(order.id) has shipped"
            opening = "Your order \(order.id) is on its way. It holds:"
        case .refund:
            return nil
        }
        let to = try MailAddress(address: customer.email, name: customer.name)
        var body = "Hello \(MailAddress.oneLine(customer.name)),\n\n\(opening)\n\n"
        for line in order.lines {
            body += "  \(line.quantity) x \(MailAddress.oneLine(line.name)) (\(MailAddress.oneLine(line.sku)))"
            body += " at \(money(line.unitPriceCents, order.currency)): \(money(line.lineTotalCents, order.currency))\n"
        }
        body += "\nTotal: \(money(order.totalCents, order.currency))\n"
        if order.subtotalCents != order.totalCents {
            body += "(subtotal \(money(order.subtotalCents, order.currency)))\n"
        }
        body += "\nThis message was sent automatically; please do not reply to it.\n"
        return MailMessage(from: from, to: to, subject: subject, body: body, messageKey: messageKey, date: date)
    }

    /// `EUR 12.50` from 1250: amounts are in the currency's minor unit, which is a
    /// hundredth for most, none for a few (JPY 1250) and a thousandth for others (BHD).
    public static func money(_ minorUnits: Int64, _ currency: String) -> String {
        let digits = decimals(currency)
        let sign = minorUnits < 0 ? "-" : ""
        let magnitude = minorUnits.magnitude
        guard digits > 0 else { return "\(currency) \(sign)\(magnitude)" }
        var scale: UInt64 = 1
        for _ in 0..<digits { scale *= 10 }
        let fraction = String(magnitude % scale)
        return "\(currency) \(sign)\(magnitude / scale).\(String(repeating: "0", count: digits - fraction.count))\(fraction)"
    }

    /// ISO 4217's minor-unit exponents where they are not 2.
    static func decimals(_ currency: String) -> Int {
        switch currency {
        case "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF": 0
        case "BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND": 3
        default: 2
        }
    }
}
