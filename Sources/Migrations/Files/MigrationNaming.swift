public import Foundation

/// Names for new migration files.
public enum MigrationNaming {
    /// The version after `versions`: a UTC timestamp (yyyyMMddHHmmss) when the folder
    /// already uses timestamps, otherwise the next integer, zero-padded to the width of
    /// the newest file's version (4 digits in an empty folder).
    public static func nextVersion(after versions: [MigrationVersion], widthOf newestName: String?, now: Date = Date()) -> String {
        let width = newestName.map { $0.prefix(while: \.isNumber).count } ?? 4
        if width >= 12 {
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_US_POSIX")
            formatter.timeZone = TimeZone(identifier: "UTC")
            formatter.dateFormat = "yyyyMMddHHmmss"
            let stamp = formatter.string(from: now)
            if let newest = versions.max(), let candidate = MigrationVersion(stamp), candidate <= newest {
                return increment(newest.digits)
            }
            return stamp
        }
        let next = increment(versions.max()?.digits ?? "0")
        return String(repeating: "0", count: max(0, width - next.count)) + next
    }

    /// Decimal digits plus one, at any length.
    static func increment(_ digits: String) -> String {
        var result = Array(digits.utf8)
        var index = result.count - 1
        while index >= 0 {
            if result[index] == UInt8(ascii: "9") { result[index] = UInt8(ascii: "0"); index -= 1 } else { result[index] += 1; return String(decoding: result, as: UTF8.self) }
        }
        return "1" + String(decoding: result, as: UTF8.self)
    }
}
