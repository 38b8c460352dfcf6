import Foundation

/// The encodings a message needs to travel as 7-bit ASCII with lines of at most 76
/// characters: RFC 2047 encoded-words for header text, quoted-printable (RFC 2045) for
/// the body, and RFC 5322's date. Pure functions, tested without I/O.
enum MIMEEncoding {
    /// Whether `text` can go into a header as it is: printable ASCII and spaces, short
    /// enough that the header line needs no folding, and nothing a reader would take
    /// for an encoded-word (`=?`).
    static func isPlainHeaderText(_ text: String, limit: Int = 60) -> Bool {
        text.utf8.count <= limit && text.utf8.allSatisfy { $0 >= 32 && $0 < 127 } && !text.contains("=?")
    }

    /// `text` as `=?UTF-8?B?…?=` words of at most 75 characters each (RFC 2047 §2), split
    /// between characters, never inside one, so each word decodes on its own. Joined by
    /// a folding (CRLF and a space), which decoders drop between encoded words.
    static func encodedWords(_ text: String) -> String {
        // 42 bytes make 56 base64 characters; with "=?UTF-8?B?" and "?=" that is 68,
        // which leaves room for "Subject: " in 78.
        let maxBytes = 42
        var words: [String] = []
        var chunk: [UInt8] = []
        for character in text {
            let bytes = Array(String(character).utf8)
            if !chunk.isEmpty, chunk.count + bytes.count > maxBytes {
                words.append(word(chunk))
                chunk = []
            }
            // A single character longer than a word (a long emoji sequence) is split by
            // scalars instead; still never inside a UTF-8 sequence.
            if bytes.count > maxBytes {
                for scalar in String(character).unicodeScalars {
                    let scalarBytes = Array(String(scalar).utf8)
                    if chunk.count + scalarBytes.count > maxBytes { words.append(word(chunk)); chunk = [] }
                    chunk += scalarBytes
                }
            } else {
                chunk += bytes
            }
        }
        if !chunk.isEmpty || words.isEmpty { words.append(word(chunk)) }
        return words.joined(separator: "\r\n ")
    }

    private static func word(_ bytes: [UInt8]) -> String {
        "=?UTF-8?B?" + Data(bytes).base64EncodedString() + "?="
    }

    /// A display name or subject as a header wants it: as is when plain and short, as a
    /// quoted-string when it has specials (for names), else encoded-words.
    static func headerText(_ text: String, quotingSpecials: Bool) -> String {
        guard isPlainHeaderText(text) else { return encodedWords(text) }
        guard quotingSpecials else { return text }
        let atext = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~ ".utf8)
        if text.utf8.allSatisfy({ atext.contains($0) }) { return text }
        return "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    /// `text` in quoted-printable, lines ending in CRLF, none longer than 76 characters
    /// (soft breaks `=` where a line is longer). Line ends in `text` (LF, CRLF or CR)
    /// become hard line breaks; spaces and tabs before one are encoded so that no relay
    /// can strip them.
    static func quotedPrintable(_ text: String) -> String {
        var output = ""
        for line in lines(of: text) {
            var current = ""
            let bytes = Array(line.utf8)
            for (index, byte) in bytes.enumerated() {
                let isLast = index == bytes.count - 1
                let token: String
                if (byte >= 33 && byte <= 126 && byte != UInt8(ascii: "=")) || ((byte == 32 || byte == 9) && !isLast) {
                    token = String(UnicodeScalar(byte))
                } else {
                    token = "=" + hex(byte)
                }
                // Room for the token and, unless this is the line's last token, a soft break.
                let room = isLast ? 76 : 75
                if current.utf8.count + token.utf8.count > room {
                    output += current + "=\r\n"
                    current = ""
                }
                current += token
            }
            output += current + "\r\n"
        }
        return output
    }

    /// The lines of `text`, split at LF, CRLF or a lone CR; a final line end adds no
    /// empty line.
    static func lines(of text: String) -> [String] {
        let normalized = text.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n")
        var lines = normalized.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if lines.count > 1, lines.last == "" { lines.removeLast() }
        return lines
    }

    private static func hex(_ byte: UInt8) -> String {
        let digits = Array("0123456789ABCDEF")
        return String(digits[Int(byte >> 4)]) + String(digits[Int(byte & 0x0F)])
    }

    /// `Sat, 05 Dec 2026 02:29:03 +0000` (RFC 5322 §3.3), in UTC: English names whatever
    /// the machine's locale.
    static func date(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second, .weekday], from: date)
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func two(_ value: Int?) -> String { let v = value ?? 0; return v < 10 ? "0\(v)" : "\(v)" }
        return "\(days[(c.weekday ?? 1) - 1]), \(two(c.day)) \(months[(c.month ?? 1) - 1]) \(c.year ?? 1970) \(two(c.hour)):\(two(c.minute)):\(two(c.second)) +0000"
    }
}
